"""Batched episode recording on the device, the .npz round trip, and replay."""

import jax.numpy as jnp
import numpy as np
import pytest

from idsjax.trajectories import load_trajectories, record, save_trajectories, trajectory_frames


@pytest.fixture(scope="module")
def traj():
    return record("idsgame-v0", "attack_maximal", "defend_minimal", num_games=32, seed=0)


def test_record_shapes_and_consistency(traj):
    b, t = 32, 102  # the longest episode: 101 transitions and the step-limit call
    a = traj.arrays
    assert traj.num_games == b and traj.num_steps == t
    assert a["attack"].shape == (b, t + 1, 3, 10) and a["attack"].dtype == np.int8
    assert a["position"].shape == (b, t + 1) and a["rewards"].shape == (b, t, 2)
    assert np.array_equal(a["valid"].sum(axis=1), a["length"])
    # every game ended exactly once: hacked, detected or timed out, at its last valid step
    ended = a["hacked_final"].astype(int) + a["detected_final"] + a["timed_out_final"]
    assert np.all(ended == 1)
    for g in range(b):
        n = a["length"][g]
        assert a["valid"][g, :n].all() and not a["valid"][g, n:].any()
        assert np.all(a["attack_action"][g, n:] == -1)
        assert a["done"][g, n] or a["timed_out"][g, n]
        assert not (a["done"][g, :n].any() or a["timed_out"][g, :n].any())
        assert np.array_equal(a["attack"][g, n:], np.broadcast_to(a["attack"][g, n], a["attack"][g, n:].shape))
    assert np.allclose(a["returns"], a["rewards"].sum(axis=1))
    assert a["position"][:, 0].tolist() == [2] * b  # v0 starts at the start node
    assert 0.0 <= traj.hack_probability <= 1.0
    assert traj.attacker == "attack_maximal" and traj.defender == "defend_minimal"


def test_npz_round_trip(traj, tmp_path):
    path = save_trajectories(tmp_path / "games.npz", traj)
    back = load_trajectories(path)
    assert (back.env_id, back.seed, back.instance_seed, back.attacker, back.defender) == (
        "idsgame-v0",
        0,
        0,
        "attack_maximal",
        "defend_minimal",
    )
    assert back.arrays.keys() == traj.arrays.keys()
    for k, v in traj.arrays.items():
        assert back.arrays[k].dtype == v.dtype and np.array_equal(back.arrays[k], v), k
    g = int(np.argmax(traj.arrays["length"]))
    frames = trajectory_frames(back, g)
    assert len(frames) == traj.arrays["length"][g] + 1
    state = back.state(g, 1)
    assert int(state.position) == int(traj.arrays["position"][g, 1])
    with pytest.raises(ValueError, match="not an idsjax trajectory"):
        np.savez(tmp_path / "other.npz", a=np.zeros(2))
        load_trajectories(tmp_path / "other.npz")


def test_record_with_a_callable_policy_times_out():
    # id 0 attacks the data node from the start: always illegal, so every game runs into the step limit
    traj = record("idsgame-minimal_defense-v0", lambda key, obs, state: jnp.int32(0), None, num_games=4, seed=1)
    a = traj.arrays
    assert a["timed_out_final"].all() and (a["length"] == 102).all()
    assert np.all(a["rewards"][:, :101, 0] == -1.0) and np.all(a["rewards"][:, 101] == -100.0)
    assert traj.defender == "defend_minimal"


def test_rollout_counts_one_episode_per_game_on_an_auto_reset_id():
    """`idsjax.rollout` on a gymnax id (auto-reset): every game is counted for exactly its first
    episode, here the longest one (an always-illegal attack runs into the step limit)."""
    import jax

    import idsjax
    from idsjax.rollout import episode_horizon, rollout

    env, params = idsjax.make("idsgame-minimal_defense-v0")
    horizon = episode_horizon(params)
    games = 4
    episodes = jax.jit(
        lambda key: rollout(
            env,
            params,
            lambda k, obs, state: jnp.zeros(obs.shape[0], jnp.int32),
            key,
            games,
            num_steps=horizon + 5,
            outcome=lambda t: t.info["truncated"],
            record=lambda t: t.valid,
        )
    )(jax.random.PRNGKey(0))
    assert horizon == 102
    assert episodes.finished.all() and episodes.outcome.all()
    assert (np.asarray(episodes.length) == horizon).all()
    np.testing.assert_array_equal(np.asarray(episodes.totals), -(horizon - 1) - 100.0)
    valid = np.asarray(episodes.records)  # [steps, games]: the steps after the episode count for nothing
    assert valid[:horizon].all() and not valid[horizon:].any()
