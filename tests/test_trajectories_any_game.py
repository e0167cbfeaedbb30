"""Trajectories of every kind of game: a recording names its game so that loading it rebuilds exactly
that game without the files it was made from, and `replay` plays the recorded actions again with the
recorded keys and gives every recorded array bit for bit (states, actions, rewards, flags, both sides'
observations). Files of format 1 (registered ids only) still load and replay."""

import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

import idsjax
from idsjax.scenario import load_scenario
from idsjax.scenario.generator import Family
from idsjax.trajectories import (
    OBSERVATION_FIELDS,
    STATE_FIELDS,
    ReplayError,
    load_trajectories,
    record,
    replay,
    save_trajectories,
    trajectory_frames,
)

ROOT = Path(__file__).resolve().parent.parent
OFFICE = ROOT / "scenarios" / "examples" / "office_dmz.yaml"
FORMAT1 = Path(__file__).with_name("test_trajectories_format1.npz")


def _assert_same(a: dict, b: dict, fields):
    for f in fields:
        assert a[f].dtype == b[f].dtype and a[f].shape == b[f].shape, f
        assert a[f].tobytes() == b[f].tobytes(), f


def test_a_scenario_recording_replays_without_its_file(tmp_path):
    """The recording keeps the scenario's content: the file changed or gone, it loads, names its
    nodes and replays bit for bit."""
    path = tmp_path / "office.yaml"
    shutil.copy(OFFICE, path)
    scenario = load_scenario(path)
    game = idsjax.make_scenario(scenario, mode="", seed=3, max_nodes=10)  # two-agent, padded, seed 3 layout
    traj = record(game, "random_attack", "random_defense", num_games=12, seed=5, scenario=scenario, observations=True)
    saved = save_trajectories(tmp_path / "office.npz", traj)
    path.unlink()
    back = load_trajectories(saved)
    assert back.kind == "scenario" and back.scenario().name == scenario.name
    assert [n.id for n in back.scenario().nodes] == [n.id for n in scenario.nodes]
    env, params = back.make_game()
    assert env == game[0] and env.shape.max_nodes == 10
    for mine, theirs in zip(jax.tree.leaves(params), jax.tree.leaves(game[1])):
        assert np.asarray(mine).tobytes() == np.asarray(theirs).tobytes()
    played = replay(back)  # raises at the first difference
    assert set(played.arrays) == set(traj.arrays)
    _assert_same(played.arrays, traj.arrays, traj.arrays)
    assert np.unique(traj.arrays["length"]).size > 1 and traj.arrays["valid"].sum() > 12  # real games
    g = int(np.argmax(traj.arrays["length"]))
    assert len(trajectory_frames(back, g)) == traj.arrays["length"][g] + 1


@pytest.fixture(scope="module")
def family_games(tmp_path_factory):
    """Ten games of a generated family, saved and loaded (one recording and one replay program for
    the tests below)."""
    family = Family(max_layers=2, max_width=3, lateral_p=0.5)
    env, params = idsjax.make_generated(family, mode="minimal_defense")
    traj = record((env, params), "random", None, num_games=10, seed=2, observations=True)
    back = load_trajectories(save_trajectories(tmp_path_factory.mktemp("family") / "family.npz", traj))
    return env, params, traj, back


def test_a_generated_family_recording_replays_each_game_on_its_own_network(family_games):
    env, params, traj, back = family_games
    assert back.kind == "generated" and back.defender == "defend_minimal"
    rebuilt, rebuilt_params = back.make_game()
    assert rebuilt == env and rebuilt_params == params
    # Every game's network is kept, and they differ (a family draws one at every reset).
    nets = {back.network(g).scenario.node_mask.tobytes() + back.network(g).scenario.reach.tobytes() for g in range(10)}
    assert len(nets) > 1
    # The network kept is the one the game was reset onto: its reset from the recorded key gives it.
    first = jax.jit(env.initial_state)(jax.numpy.asarray(traj.arrays["reset_key"][4]), params)
    for a, b in zip(jax.tree.leaves(first.network), jax.tree.leaves(back.network(4))):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    # keys after a game's end play no part and are kept as zeros (they would not compress)
    valid = traj.arrays["valid"]
    assert traj.arrays["step_key"][valid].any(axis=-1).all() and not traj.arrays["step_key"][~valid].any()
    played = replay(back)
    assert set(played.arrays) == set(traj.arrays)
    _assert_same(played.arrays, traj.arrays, traj.arrays)
    state = back.state(4, 1)
    assert int(state.position) == int(traj.arrays["position"][4, 1])
    assert np.array_equal(np.asarray(state.network.scenario.reach), back.network(4).scenario.reach)


def test_replay_refuses_a_recording_it_does_not_reproduce(family_games):
    traj = family_games[3]
    # a reward changed after the fact
    rewards = traj.arrays["rewards"].copy()
    rewards[1, 0, 0] += 1.0
    with pytest.raises(ReplayError, match=r"at game 1, step 1: its rewards element \(0,\) was ") as err:
        replay(_with(traj, arrays={**traj.arrays, "rewards": rewards}))
    assert "\n" not in str(err.value)
    # a game replayed on another network than the one recorded: its states differ from the reset on
    networks = dict(traj.game_arrays)
    networks["network.initial_defense"] = networks["network.initial_defense"] + np.int8(1)
    with pytest.raises(ReplayError, match="at game 0, step 0: its defense element"):
        replay(_with(traj, game_arrays=networks))
    # without its keys a recording is replayed with the keys its seed gives to `record`: not another seed's
    keyless = {k: v for k, v in traj.arrays.items() if not k.endswith("_key")}
    replay(_with(traj, arrays=keyless))
    with pytest.raises(ReplayError):
        replay(_with(traj, seed=1, arrays=keyless))


def test_replay_stops_where_a_recording_stops_an_episode_short(family_games):
    """A recorder may keep an episode it stopped short (the server: the one a game is left in):
    replay plays the steps recorded and no further, and the episode stays unfinished."""
    traj = family_games[3]
    a = {k: v.copy() for k, v in traj.arrays.items()}
    g = int(np.argmax(a["length"]))
    cut = int(a["length"][g]) - 1
    assert cut >= 1 and a["hacked_final"][g] | a["detected_final"][g] | a["timed_out_final"][g]
    for f in ("valid", "attack_legal", "moved"):
        a[f][g, cut:] = False
    for f in ("attack_action", "defense_action"):
        a[f][g, cut:] = -1
    a["rewards"][g, cut:] = 0.0
    a["step_key"][g, cut:] = 0
    for f in STATE_FIELDS + OBSERVATION_FIELDS:  # a game stopped repeats its last state
        a[f][g, cut + 1 :] = a[f][g, cut]
    a["length"][g] = cut
    for f in ("hacked_final", "detected_final", "timed_out_final"):
        a[f][g] = False
    a["returns"] = a["rewards"].sum(axis=1)
    replay(_with(traj, arrays=a))
    # the episode as recorded in full does not replay as the stopped one
    with pytest.raises(ReplayError, match=f"at game {g}, step {cut + 1}:"):
        replay(_with(traj, arrays={**a, "valid": traj.arrays["valid"]}))


def _with(traj, **changes):
    import dataclasses

    return dataclasses.replace(traj, **changes)


def test_a_format_1_file_still_loads_and_replays():
    """tests/test_trajectories_format1.npz was written by the format-1 code (commit 1d61785):
    `record("idsgame-v0", "attack_maximal", "defend_minimal", num_games=4, seed=7)`, saved."""
    old = load_trajectories(FORMAT1)
    assert old.kind == "registered" and old.game is None and old.game_arrays == {}
    assert (old.env_id, old.seed, old.attacker, old.defender) == ("idsgame-v0", 7, "attack_maximal", "defend_minimal")
    assert "reset_key" not in old.arrays
    replay(old)  # the keys `record` derives from the seed
    now = record("idsgame-v0", "attack_maximal", "defend_minimal", num_games=4, seed=7)
    _assert_same(now.arrays, old.arrays, old.arrays)  # today's recorder keeps every array as it was
    assert set(now.arrays) - set(old.arrays) == {"reset_key", "step_key"}
    assert len(trajectory_frames(old, 1)) == old.arrays["length"][1] + 1


def test_a_registered_recording_keeps_its_params():
    """A registered id's recording replays the params it was played with, also when they are not the
    id's default instance (here instance seed 4, recorded under the default instance_seed 0)."""
    game = idsjax.make("idsgame-minimal_defense-v2", seed=4)
    traj = record(game, "random", num_games=6, seed=1)
    env, params = traj.make_game()
    assert env is game[0] or env == game[0]
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(game[1])):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    replay(traj)


def test_a_batch_of_scenarios_is_refused_in_one_sentence():
    chain = ROOT / "scenarios" / "examples" / "chain_with_shortcut.yaml"
    batch = idsjax.make_scenario_batch([OFFICE, chain], max_nodes=10)
    with pytest.raises(ValueError, match=r"^trajectories record one game's params") as err:
        record(batch, num_games=2)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"has \d+ nodes but the game recorded has 8"):
        record(idsjax.make_scenario(OFFICE), num_games=1, scenario=load_scenario(chain))
