"""Frames of scenario games: nodes at their positions, padding not drawn, the CLI's --scenario."""

import jax
import numpy as np
import pytest

import idsjax
from idsjax import frames
from idsjax.frames import BACKGROUND
from idsjax.render import episode_frames, frame_size, render_frame
from idsjax.render import main as render_main
from idsjax.scenario import load_scenario

EXAMPLES = ("office_dmz", "chain_with_shortcut", "grid_3x4_recon")


def _game(name, max_nodes=None):
    scenario = load_scenario(f"scenarios/examples/{name}.yaml")
    env, params = idsjax.make_scenario(scenario, max_nodes=max_nodes)
    return scenario, env, params, jax.jit(env.initial_state)(jax.random.PRNGKey(0), params)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_frame_draws_every_node_at_its_position(name):
    scenario, env, params, state = _game(name)
    frame = render_frame(env, state, params, scenario=scenario, title=name)
    assert frame.shape == (*frame_size(env, params), 3) and frame.dtype == np.uint8
    board = frames._scenario_board(env, params)
    centres = {(round(board.xs[n]), round(board.ys[n])) for n in range(len(scenario.nodes))}
    assert len(centres) == len(scenario.nodes)  # distinct positions
    for x, y in centres:
        assert tuple(frame[y, x]) != BACKGROUND, (name, x, y)
    # Padded nodes are not drawn: the same state padded to 3 more nodes draws the same frame.
    n = len(scenario.nodes)
    _, env_p, params_p, _ = _game(name, max_nodes=n + 3)
    state_p = jax.tree.map(lambda x: _pad(x, n, 3), state)
    padded = render_frame(env_p, state_p, params_p, scenario=scenario, title=name)
    assert np.array_equal(frame, padded)


def _pad(x, n, extra):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] != n:
        return x
    return np.concatenate([x, np.zeros((extra, *x.shape[1:]), x.dtype)])


def test_a_node_is_drawn_where_its_position_says():
    scenario, env, params, state = _game("office_dmz")
    board = frames._scenario_board(env, params)
    ws2 = [n.id for n in scenario.nodes].index("ws2")
    x, y = round(board.xs[ws2]), round(board.ys[ws2])
    before = render_frame(env, state, params)
    arr = params.scenario
    moved = params.replace(scenario=arr.replace(position=arr.position.at[ws2].set(arr.position[ws2] + 0.5)))
    after = render_frame(env, state, moved)
    assert tuple(before[y, x]) != BACKGROUND and tuple(after[y, x]) == BACKGROUND


def test_scenario_episode_frames():
    scenario, env, params, _ = _game("office_dmz")
    frames = episode_frames((env, params), "attack_maximal", "defend_minimal", max_steps=3, scenario=scenario)
    assert 2 <= len(frames) <= 4 and all(f.shape == frames[0].shape for f in frames)
    assert not np.array_equal(frames[0], frames[1])


def test_cli_refuses_a_bad_scenario_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: 1\nname: bad\nnodes: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        render_main(["--scenario", str(bad), "--out", str(tmp_path / "x.gif")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(bad) in err and "field" in err
    with pytest.raises(SystemExit) as exit_info:
        render_main(["--scenario", str(bad), "--env", "idsgame-v3"])
    assert exit_info.value.code == 2
