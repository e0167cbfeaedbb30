"""The reference's switches that no registered version turns on (spec §7.5): the combined dense
reward family, the reconnaissance reward and the reconnaissance detection factor. Expected values
are the spec's reading of the reference code (ENV:453-577, GS:307-323)."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from idsjax.config import GameConfig
from idsjax.env import IdsGameEnv
from idsjax.transition import transition
from idsjax.versions import Mode, RewardFamily


def _env(version, **options):
    config = GameConfig.create(version, Mode.TWO_AGENT, **options)
    return IdsGameEnv(config)


def _start(env, params, **fields):
    state = env.initial_state(jax.random.PRNGKey(0), params)
    return state.replace(**fields)


def _step(env, state, attack, defense, u, params):
    step = jax.jit(lambda s, a, d, u, p: transition(env.shape, env.network_arrays(p), s, a, d, u, p))
    return step(state, attack, defense, jnp.float32(u), params)


def _dense12_env():
    base = GameConfig.create(8, Mode.TWO_AGENT)  # 1 server; dense rewards
    spec = dataclasses.replace(base.spec, reward=RewardFamily.DENSE_V1_V2)
    return IdsGameEnv(dataclasses.replace(base, spec=spec))


def test_dense_v1_v2_pays_plus_minus_one_for_a_new_layer_and_100_for_detection():
    env = _dense12_env()
    params = env.default_params
    a = env.config.attack_types
    defense = jnp.full((3, a), 5, jnp.int8).at[1, 0].set(0)
    state = _start(env, params, defense=defense, detection=jnp.array([2, 2, 0], jnp.int8))
    # Attack server 1 (node 1, type 0) from the start: 1 > 0 succeeds and reaches a new row.
    state, reward, info = _step(env, state, 1 * a + 0, 2 * (a + 1), 0.99, params)
    assert bool(info["moved"]) and reward.tolist() == [1.0, -1.0]
    assert int(state.furthest_row) == 1
    # A failed, detected attack on the data node: (-100, +100).
    state, reward, info = _step(env, state, 0 * a + 3, 2 * (a + 1), 0.0, params)
    assert bool(info["detected"]) and reward.tolist() == [-100.0, 100.0]


def test_dense_v1_v2_hack_pays_like_dense():
    env = _dense12_env()
    params = env.default_params
    a = env.config.attack_types
    defense = jnp.zeros((3, a), jnp.int8)
    state = _start(env, params, defense=defense, position=jnp.int32(1), num_hacked=jnp.int32(1))
    state, reward, info = _step(env, state, 0 * a + 4, 2 * (a + 1), 0.99, params)
    # First-try hack: attacker 1 + 1, defender minus the successful moves (2 with this one).
    assert bool(info["hacked"]) and reward.tolist() == [2.0, -2.0]


@pytest.mark.parametrize("already_known, expected", [(False, 0.5), (True, -0.5)])
def test_reconnaissance_reward(already_known, expected):
    env = _env(19, reconnaissance_reward=True)
    params = env.default_params
    width = env.config.attack_id_width
    state = _start(env, params, position=jnp.int32(3), detection=jnp.zeros(4, jnp.int8))
    if already_known:
        state = state.replace(recon=state.recon.at[1].set(state.defense[1]))
    scout_server_1 = 1 * width + env.config.attack_types
    next_state, reward, info = _step(env, state, scout_server_1, 3 * (env.config.attack_types + 1), 0.5, params)
    assert reward.tolist() == [expected, 0.0]
    assert bool(next_state.revealed[1])


def test_reconnaissance_without_the_switch_pays_nothing():
    env = _env(19)
    params = env.default_params
    width = env.config.attack_id_width
    state = _start(env, params, position=jnp.int32(3), detection=jnp.zeros(4, jnp.int8))
    _, reward, _ = _step(
        env, state, 1 * width + env.config.attack_types, 3 * (env.config.attack_types + 1), 0.5, params
    )
    assert reward.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("u, caught", [(0.29, True), (0.31, False)])
def test_reconnaissance_detection_factor_scales_only_reconnaissance(u, caught):
    env = _env(19)
    params = env.default_params.replace(detection_factor=jnp.float32(0.5))
    width, a = env.config.attack_id_width, env.config.attack_types
    detection = jnp.array([6, 6, 6, 0], jnp.int8)  # p = 0.6 for attacks, 0.3 for reconnaissance
    state = _start(env, params, position=jnp.int32(3), detection=detection, defense=jnp.full((4, a), 9, jnp.int8))
    _, _, scout = _step(env, state, 1 * width + a, 3 * (a + 1), u, params)
    assert bool(scout["detected"]) is caught
    _, _, strike = _step(env, state, 1 * width + 0, 3 * (a + 1), u, params)  # failed attack: factor 1
    assert bool(strike["detected"])
