"""GIFs of a generated family: played through the trajectory recorder, each game drawn from the network
its reset drew (frames of different sizes centred on the largest)."""

import imageio.v3 as iio
import numpy as np
import pytest

import idsjax
from idsjax import frames
from idsjax.render import episode_frames, episode_gif, frame_size, render_frame
from idsjax.render import main as render_main
from idsjax.scenario.generator import Family
from idsjax.trajectories import record


@pytest.fixture(scope="module")
def family():
    return idsjax.make_generated(Family(max_layers=3, max_width=3, min_width=1), mode="minimal_defense")


def test_episode_frames_draw_each_game_on_its_own_network(family):
    env, params = family
    policies = ("attack_maximal", "defend_minimal")
    got = episode_frames((env, params), *policies, seed=4, episodes=3, max_steps=3)
    traj = record((env, params), *policies, num_games=3, seed=4, max_steps=3)
    lengths = traj.arrays["length"]
    assert len(got) == int(lengths.sum()) + 3
    nets = [traj.network(g) for g in range(3)]
    assert len({np.asarray(n.scenario.node_mask).tobytes() for n in nets}) > 1
    at = 0
    for g in range(3):  # each game's first frame: its reset state, on its network
        state = traj.state(g, 0)
        title = f"{env.names(nets[0]).env_id}: attack_maximal vs defend_minimal"
        first = render_frame(env, state, params, title=title, returns=(0.0, 0.0), hack_probability=got_rate(traj, g))
        assert np.array_equal(got[at], first), g
        assert got[at].shape == (*frame_size(env, nets[g]), 3)
        at += int(lengths[g]) + 1
    # Nodes are labelled by their index (absent servers leave gaps), absent ones not drawn.
    board = frames._scenario_board(env, nets[0])
    mask = np.asarray(nets[0].scenario.node_mask)
    assert board.nodes == tuple(np.flatnonzero(mask))
    assert all(board.labels[i] == (str(i) if mask[i] else "") for i in range(len(mask)))


def got_rate(traj, game: int) -> float:
    """The running P(breached) the frames print before game `game`'s first step."""
    if game == 0:
        return 0.0
    done = traj.arrays["hacked_final"][:game] | traj.arrays["detected_final"][:game]
    done |= traj.arrays["timed_out_final"][:game]
    return float(traj.arrays["hacked_final"][:game].sum() / max(int(done.sum()), 1))


def test_episode_gif_centres_frames_of_different_networks(family, tmp_path):
    env, params = family
    path = episode_gif((env, params), "attack_maximal", "defend_minimal", tmp_path / "family.gif", seed=4, episodes=3)
    frames_read = iio.imread(path, index=None)
    drawn = episode_frames((env, params), "attack_maximal", "defend_minimal", seed=4, episodes=3)
    # every frame drawn is in the GIF (the writer merges the last frame's 4 repeats into one)
    assert len(drawn) <= frames_read.shape[0] <= len(drawn) + 4
    assert frames_read.shape[1:3] == (max(f.shape[0] for f in drawn), max(f.shape[1] for f in drawn))
    assert len({f.shape for f in drawn}) > 1  # the networks span different sizes


def test_the_command_line_renders_a_generated_family(tmp_path):
    out = tmp_path / "small.gif"
    assert render_main(["--generator", "small", "--mode", "minimal_defense", "--episodes", "2", "--out", str(out)]) == 0
    assert iio.imread(out, index=None).shape[0] >= 2 + 4
