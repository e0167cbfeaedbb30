"""Gymnasium (88 single-agent ids) and PettingZoo (22 two-agent ids) bridges.

The exhaustive sweeps run the bridges op by op (`jit=False`): compiling 110 programs would dominate
the suite, and the jitted path runs the same functions (checked on a few ids below).
"""

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import idsjax
from idsjax.gym_bridge import (
    GYM_IDS,
    NEXT_STEP,
    SAME_STEP,
    IdsGameGymEnv,
    IdsGameVectorEnv,
    gym_id,
    single_agent_ids,
)
from idsjax.pettingzoo_bridge import IdsGameParallelEnv, two_agent_ids


def test_id_lists():
    assert len(single_agent_ids()) == 88 and len(two_agent_ids()) == 22
    assert set(single_agent_ids()) | set(two_agent_ids()) == set(idsjax.registered_envs())
    assert len(GYM_IDS) == 88 and all(i in gymnasium.registry for i in GYM_IDS)


# The default suite checks a version of every kind (small, the standard grid, linked rows, randomised
# full view, v13, local views, reconnaissance and random starts); the other 13 run under `slow`
# (`make test-all`), to keep the default suite within its 10 minutes.
_CHECKED_BY_DEFAULT = {0, 3, 5, 12, 13, 14, 18, 19, 20}


@pytest.mark.parametrize(
    "version", [v if v in _CHECKED_BY_DEFAULT else pytest.param(v, marks=pytest.mark.slow) for v in range(22)]
)
def test_every_id_passes_the_api_checkers(version):
    """`check_env` for the 4 single-agent ids of a version and `parallel_api_test` for its two-agent id
    (one test per version: the ids of a version share the shapes, hence most op-by-op compilations)."""
    ids = [i for i in idsjax.registered_envs() if i.endswith(f"-v{version}")]
    assert len(ids) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # both checkers report problems as UserWarnings
        for env_id in ids:
            if env_id == f"idsgame-v{version}":
                parallel_api_test(IdsGameParallelEnv(env_id, jit=False), num_cycles=25)
                continue
            env = IdsGameGymEnv(env_id, jit=False)
            check_env(env, skip_render_check=True)
            assert env.observation_space.dtype == np.int8, env_id
            obs, info = env.reset(seed=0)
            assert obs in env.observation_space and info["action_mask"].shape == (env.action_space.n,), env_id


@pytest.mark.parametrize("env_id", ["idsgame-minimal_defense-v3", "idsgame-maximal_attack-v18"])
def test_gymnasium_make_jitted_with_render(env_id):
    env = gymnasium.make(gym_id(env_id), render_mode="rgb_array")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=5)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3
    # Same seed, same game; no auto-reset: the terminal observation and state stay until reset().
    trace = []
    for seed in (5, 5):
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        steps = []
        for _ in range(200):
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, reward, terminated, truncated, info = env.step(action)
            steps.append((obs.tobytes(), reward, terminated, truncated))
            if terminated or truncated:
                break
        trace.append(steps)
        assert terminated or truncated
        state = env.unwrapped.state
        assert bool(state.done) or bool(state.timed_out)
        assert bool(info["hacked"]) or bool(info["detected"]) or truncated
    assert trace[0] == trace[1]
    assert not np.array_equal(env.render(), frame)


def test_module_prefixed_make_and_two_agent_rejection():
    env = gymnasium.make("idsjax.gym_bridge:idsjax/idsgame-random_defense-v0")
    assert env.unwrapped.env_id == "idsgame-random_defense-v0"
    with pytest.raises(ValueError, match="two-agent"):
        IdsGameGymEnv("idsgame-v3")


def test_vector_env_same_step():
    envs = IdsGameVectorEnv("idsgame-minimal_defense-v0", num_envs=8, autoreset_mode="same-step")
    assert envs.metadata["autoreset_mode"] == SAME_STEP
    obs, info = envs.reset(seed=1)
    assert obs.shape == (8, *envs.single_observation_space.shape) and obs.dtype == np.int8
    assert obs in envs.observation_space
    finished = 0
    for _ in range(40):
        actions = np.array([np.flatnonzero(m)[0] for m in info["action_mask"]])
        obs, rewards, terminated, truncated, info = envs.step(actions)
        assert obs in envs.observation_space and rewards.dtype == np.float32
        done = terminated | truncated
        if done.any():
            finished += int(done.sum())
            assert info["_final_obs"].tolist() == done.tolist()
            for i in np.flatnonzero(done):
                assert info["final_obs"][i] in envs.single_observation_space
                assert np.array_equal(info["final_obs"][i], info["final_observation"][i])
    assert finished > 0
    vec = gymnasium.make_vec("idsjax/idsgame-minimal_defense-v0", num_envs=3, vectorization_mode="vector_entry_point")
    assert vec.reset(seed=0)[0].shape[0] == 3
    assert vec.metadata["autoreset_mode"] == NEXT_STEP  # gymnasium's default
    with pytest.raises(ValueError, match="autoreset_mode"):
        IdsGameVectorEnv("idsgame-minimal_defense-v0", autoreset_mode="sometimes")


def test_vector_env_next_step_statistics_match_a_manual_count():
    """gymnasium's default auto-reset: a finished game returns its last observation, the next call
    resets it (reward 0, no flags, action ignored). gymnasium's vector `RecordEpisodeStatistics`
    assumes exactly that; its episode returns and lengths must equal a count kept by hand."""
    from gymnasium.wrappers.vector import FlattenObservation, RecordEpisodeStatistics

    n = 16
    inner = IdsGameVectorEnv("idsgame-random_defense-v0", num_envs=n)
    assert inner.metadata["autoreset_mode"] == NEXT_STEP
    envs = RecordEpisodeStatistics(FlattenObservation(inner))
    obs, info = envs.reset(seed=0)
    assert obs.shape == (n, int(np.prod(inner.single_observation_space.shape)))
    rng = np.random.default_rng(0)
    returns, lengths = np.zeros(n), np.zeros(n, int)
    resetting = np.zeros(n, bool)
    manual, recorded = [], []
    for _ in range(300):
        # A finished game's mask may be empty (the attacker stands on the data node): any id will do,
        # the next call ignores it.
        actions = np.array([rng.choice(np.flatnonzero(m)) if m.any() else 0 for m in info["action_mask"]])
        obs, rewards, terminated, truncated, info = envs.step(actions)
        assert obs in envs.observation_space
        done = terminated | truncated
        assert not (done & resetting).any() and (rewards[resetting] == 0).all()
        returns[~resetting] += rewards[~resetting]
        lengths[~resetting] += 1
        manual += [(float(returns[i]), int(lengths[i])) for i in np.flatnonzero(done)]
        returns[done | resetting], lengths[done | resetting] = 0, 0
        if "episode" in info:
            recorded += [
                (float(info["episode"]["r"][i]), int(info["episode"]["l"][i])) for i in np.flatnonzero(info["_episode"])
            ]
        resetting = done
    assert len(manual) > 500 and envs.episode_count == len(manual)
    assert sorted(recorded) == sorted(manual)
    assert max(length for _, length in manual) <= int(inner.params.max_steps_in_episode)


def test_pettingzoo_jitted_game():
    env = IdsGameParallelEnv("idsgame-v3", render_mode="rgb_array")
    obs, infos = env.reset(seed=0)
    assert set(obs) == {"attacker", "defender"} and obs["defender"].shape == (8, 11)
    while env.agents:
        actions = {a: env.action_space(a).sample(infos[a]["action_mask"]) for a in env.agents}
        obs, rewards, terms, truncs, infos = env.step(actions)
        assert all(o in env.observation_space(a) for a, o in obs.items())
    assert terms["attacker"] or truncs["attacker"]
    assert env.render().shape == (96 + 120 * 4, 600, 3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"attacker": 0, "defender": 0})
    with pytest.raises(ValueError, match="single-agent"):
        IdsGameParallelEnv("idsgame-minimal_defense-v3")


def test_gymnasium_example_trains_an_attacker():
    """examples/gymnasium_q_learning.py learns through the plain gymnasium API. Random attacks hack
    about 0.11 of the games of v0 against the random defender (spec §13.4); the learner must do far better."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "gymnasium_q_learning.py"
    spec = importlib.util.spec_from_file_location("gymnasium_q_learning", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(["--episodes", "800", "--eval-episodes", "200"])
    assert result["eval_hack_probability"] >= 0.6, result
