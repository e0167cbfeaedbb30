"""Third-party code that the project did not write, run on idsjax ids: gymnax's own wrappers, rejax's
DQN (and, slow, PPO) through `idsjax.wrappers`, JaxMARL's `LogWrapper` and an IPPO-style example on
`idsjax.marl`."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.wrappers.gym import GymnaxToGymWrapper, GymnaxToVectorGymWrapper
from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper, StickyActionWrapper

import idsjax
from idsjax.wrappers import ActionMaskObservation, LegacyStepAPI

# A defender id, and an attacker id with a local view and reconnaissance (low bound -1).
GYMNAX_IDS = ["idsgame-maximal_attack-v3", "idsgame-random_defense-v18"]


def _legal(key, mask):
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf)).astype(jnp.int32)


@pytest.mark.parametrize("env_id", GYMNAX_IDS)
def test_gymnax_wrappers(env_id):
    env, params = idsjax.make(env_id)
    space = env.observation_space(params)
    for bound in (space.low, space.high):
        assert isinstance(bound, jax.Array) and bound.dtype == space.dtype == jnp.int8

    gym_env = GymnaxToGymWrapper(env, params, seed=0)
    obs, _ = gym_env.reset(seed=1)
    assert gym_env.observation_space.contains(np.asarray(obs)) and gym_env.action_space.n == env.num_actions
    obs, reward, terminated, truncated, info = gym_env.step(0)
    assert gym_env.observation_space.contains(np.asarray(obs)) and "legal_action_mask" in info

    vec = GymnaxToVectorGymWrapper(env, num_envs=4, params=params, seed=0)
    obs, _ = vec.reset(seed=2)
    assert vec.observation_space.contains(np.asarray(obs))
    obs, reward, terminated, truncated, info = vec.step(jnp.zeros(4, jnp.int32))
    assert vec.observation_space.contains(np.asarray(obs)) and reward.shape == (4,)

    flat = FlattenObservationWrapper(env)
    flat_space = flat.observation_space(params)
    obs, state = flat.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == flat_space.shape and bool(flat_space.contains(obs))

    # LogWrapper over StickyActionWrapper, random legal play past the horizon: every logged episode
    # is at most max_steps_in_episode long.
    logged = LogWrapper(StickyActionWrapper(env, sticky_action_prob=0.25))
    obs, state = logged.reset(jax.random.PRNGKey(1), params)

    def body(state, key):
        k_act, k_step = jax.random.split(key)
        action = _legal(k_act, env.legal_action_mask(state.env_state.env_state, params))
        _, state, _, _, _, info = logged.step(k_step, state, action, params)
        return state, (info["returned_episode"], info["returned_episode_lengths"])

    _, (ended, lengths) = jax.lax.scan(body, state, jax.random.split(jax.random.PRNGKey(2), 150))
    assert bool(ended.any()) and int(lengths.max()) <= int(params.max_steps_in_episode)


def test_wrappers_copy_hash_and_masks():
    env, params = idsjax.make("idsgame-random_defense-v3")
    legacy = LegacyStepAPI(env)
    assert copy.deepcopy(legacy) == legacy == LegacyStepAPI(env) and hash(legacy) == hash(LegacyStepAPI(env))
    assert legacy.num_actions == env.num_actions  # attributes forward to the environment
    masked = LegacyStepAPI(ActionMaskObservation(env))
    obs, state = masked.reset(jax.random.PRNGKey(0), params)
    space = masked.observation_space(params)
    assert set(obs) == {"observation", "action_mask"} == set(space.spaces)
    assert all(bool(space.spaces[k].contains(obs[k])) for k in obs)
    np.testing.assert_array_equal(obs["action_mask"], env.legal_action_mask(state, params))
    for k in jax.random.split(jax.random.PRNGKey(1), 30):
        action = _legal(k, obs["action_mask"] > 0)
        obs, state, reward, done, info = masked.step(k, state, action, params)
        np.testing.assert_array_equal(obs["action_mask"], env.legal_action_mask(state, params))
        assert done == (info["terminated"] | info["truncated"])


def test_gymnax_vector_wrapper_copies_the_callers_wrapper():
    """gymnax's `GymnaxToVectorGymWrapper` deep-copies the environment it is given and replaces `reset`
    and `step` on the copy with vmapped ones: the caller's wrapper must be left as it was, so that a
    second vector wrapper over it works and it still resets one game."""
    env, params = idsjax.make("idsgame-random_defense-v3")
    legacy = LegacyStepAPI(env)
    one_game, _ = legacy.reset(jax.random.PRNGKey(0), params)
    first = GymnaxToVectorGymWrapper(legacy, num_envs=4, params=params, seed=0)
    second = GymnaxToVectorGymWrapper(legacy, num_envs=3, params=params, seed=0)
    assert first.reset(seed=1)[0].shape == (4, *one_game.shape)
    assert second.reset(seed=1)[0].shape == (3, *one_game.shape)
    obs, state = legacy.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == one_game.shape and "reset" not in vars(legacy) and "step" not in vars(legacy)
    obs, state, reward, done, info = legacy.step(jax.random.PRNGKey(1), state, 0, params)
    assert obs.shape == one_game.shape and reward.shape == ()
    # The vectorised copy is not interchangeable with the original under jit's static-argument cache.
    assert first._env != legacy


def rejax_dqn_vs_random(game, seed: int = 0):
    """rejax's DQN trained on `game` (an `(env, params)` pair) through `LegacyStepAPI`: the last
    evaluation's lengths and returns, and those of uniform random ids (also tests/test_bridges_any_game)."""
    rejax = pytest.importorskip("rejax")
    from rejax.evaluate import evaluate

    env, params = game
    wrapped = LegacyStepAPI(env)
    steps = 6_000
    dqn = rejax.DQN.create(
        env=wrapped,
        env_params=params,
        total_timesteps=steps,
        eval_freq=steps,
        num_envs=8,
        buffer_size=8_000,
        fill_buffer=512,
        batch_size=64,
        learning_rate=1e-3,
        target_update_freq=200,
        exploration_fraction=0.3,
        skip_initial_evaluation=True,
    )
    _, (lengths, returns) = jax.jit(dqn.train)(jax.random.PRNGKey(seed))
    space = wrapped.action_space(params)
    random_lengths, random_returns = evaluate(
        lambda obs, rng: space.sample(rng), jax.random.PRNGKey(seed + 1), wrapped, params, 128
    )
    return np.asarray(lengths)[-1], np.asarray(returns)[-1], np.asarray(random_lengths), np.asarray(random_returns)


def test_rejax_dqn_beats_a_random_policy():
    """rejax's DQN, unchanged, on LegacyStepAPI: its evaluation plays episodes up to the real horizon
    (`max_steps_in_episode`) and the trained greedy policy earns more than uniform random ids."""
    lengths, returns, random_lengths, random_returns = rejax_dqn_vs_random(idsjax.make("idsgame-random_defense-v0"))
    assert returns.mean() > random_returns.mean() + 0.5, (returns.mean(), random_returns.mean())
    assert lengths.max() <= 102 and random_lengths.max() <= 102


@pytest.mark.slow
def test_rejax_ppo_beats_a_random_policy():
    rejax = pytest.importorskip("rejax")
    env, params = idsjax.make("idsgame-random_defense-v0")
    wrapped = LegacyStepAPI(env)
    ppo = rejax.PPO.create(
        env=wrapped,
        env_params=params,
        total_timesteps=40_000,
        eval_freq=40_000,
        num_envs=16,
        num_steps=64,
        num_epochs=4,
        num_minibatches=4,
        learning_rate=3e-3,
        skip_initial_evaluation=True,
    )
    _, (_, returns) = jax.jit(ppo.train)(jax.random.PRNGKey(0))
    space = wrapped.action_space(params)
    from rejax.evaluate import evaluate

    _, random_returns = evaluate(lambda obs, rng: space.sample(rng), jax.random.PRNGKey(1), wrapped, params, 128)
    assert float(returns[-1].mean()) > float(random_returns.mean()) + 0.5


# -- JaxMARL -------------------------------------------------------------------------------------


def test_jaxmarl_view_of_every_two_agent_id():
    pytest.importorskip("jaxmarl")
    from idsjax.marl import IdsGameMARL, two_agent_ids

    assert len(two_agent_ids()) == 22
    for env_id in two_agent_ids():
        view = IdsGameMARL(env_id)
        env = view.env
        assert view.agents == ["attacker", "defender"] and view.num_agents == 2
        assert view.action_space("attacker").n == env.config.num_attack_ids
        assert view.action_space("defender").n == env.config.num_defense_actions
        assert view.observation_space("attacker").shape == env.config.attacker_observation_shape
        assert view.observation_space("defender").shape == env.config.defender_observation_shape
    with pytest.raises(ValueError, match="single-agent"):
        IdsGameMARL("idsgame-minimal_defense-v3")


@pytest.mark.parametrize("env_id", ["idsgame-v3", "idsgame-v18"])
def test_jaxmarl_log_wrapper_runs(env_id):
    pytest.importorskip("jaxmarl")
    from jaxmarl.wrappers.baselines import LogWrapper as MARLLogWrapper

    from idsjax.marl import IdsGameMARL

    view = IdsGameMARL(env_id)
    env = MARLLogWrapper(view)
    obs, state = env.reset(jax.random.PRNGKey(0))
    horizon = int(view.params.max_steps_in_episode)

    def body(state, key):
        k_a, k_d, k_s = jax.random.split(key, 3)
        avail = env.get_avail_actions(state.env_state)
        np_masks = view.env.legal_action_mask(state.env_state, view.params)
        same = jnp.array_equal(avail["attacker"], np_masks["attacker"]) & jnp.array_equal(
            avail["defender"], np_masks["defender"]
        )
        action = {"attacker": _legal(k_a, avail["attacker"]), "defender": _legal(k_d, avail["defender"])}
        obs, state, rewards, dones, info = env.step(k_s, state, action)
        all_done = (dones["__all__"] == dones["attacker"]) & (dones["attacker"] == dones["defender"])
        return state, (
            same & all_done,
            info["returned_episode"],
            info["returned_episode_lengths"],
            info["returned_episode_returns"],
            info["hacked"],
            rewards["attacker"],
        )

    _, (ok, ended, lengths, returns, hacked, r_att) = jax.jit(
        lambda k: jax.lax.scan(body, state, jax.random.split(k, 250))
    )(jax.random.PRNGKey(1))
    assert bool(ok.all())
    ended = np.asarray(ended[:, 0])
    assert ended.sum() >= 2 and int(np.asarray(lengths)[ended].max()) <= horizon
    # The logged return of each episode is the sum of its rewards.
    r_att, returns = np.asarray(r_att), np.asarray(returns)[:, 0]
    starts = np.concatenate([[0], np.flatnonzero(ended)[:-1] + 1])
    for start, end in zip(starts, np.flatnonzero(ended)):
        assert np.isclose(returns[end], r_att[start : end + 1].sum())


def test_ippo_example_trains_both_sides():
    """examples/jaxmarl_ippo.py (independent PPO through JaxMARL's LogWrapper): each trained player
    does better against a random opponent than a random player does."""
    pytest.importorskip("jaxmarl")
    path = Path(__file__).resolve().parent.parent / "examples" / "jaxmarl_ippo.py"
    spec = importlib.util.spec_from_file_location("jaxmarl_ippo", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example  # flax modules are dataclasses, which look their module up
    spec.loader.exec_module(example)
    result = example.main(["--updates", "15", "--eval-games", "500"])
    base = result["random_vs_random"]
    assert result["trained_attacker_vs_random"] > base + 0.2, result
    assert result["random_attacker_vs_trained_defender"] < base - 0.04, result
