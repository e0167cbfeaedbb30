"""`idsjax.threefry` returns exactly what `jax.random` returns, for every key format it accepts, under
`jit` and `vmap`, and defers to `jax.random` for the keys and settings it does not cover."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idsjax import threefry

KEYS = jax.random.split(jax.random.PRNGKey(20201121), 64)


def raw_and_typed(fn_raw):
    """(raw keys result, typed keys result) of `fn_raw` vmapped over KEYS."""
    typed = jax.random.wrap_key_data(KEYS, impl="threefry2x32")
    return jax.vmap(fn_raw)(KEYS), jax.vmap(fn_raw)(typed)


def same(a, b):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert a.dtype == b.dtype and a.shape == b.shape


@pytest.mark.parametrize("num", [1, 2, 3, 7, 4096])
def test_split_matches_jax(num):
    for ours, theirs in zip(
        raw_and_typed(jax.jit(lambda k: threefry.split(k, num))), raw_and_typed(lambda k: jax.random.split(k, num))
    ):
        same(ours, theirs)


def test_split_default_is_two_keys():
    same(threefry.split(KEYS[0]), jax.random.split(KEYS[0]))


@pytest.mark.parametrize("data", [0, 1, 12345, 2**31 + 7, 2**32 - 1])
def test_fold_in_matches_jax(data):
    same(threefry.fold_in(KEYS[3], data), jax.random.fold_in(KEYS[3], data))
    same(jax.jit(threefry.fold_in)(KEYS[3], np.uint32(data)), jax.random.fold_in(KEYS[3], data))
    for ours, theirs in zip(
        raw_and_typed(lambda k: threefry.fold_in(k, data)), raw_and_typed(lambda k: jax.random.fold_in(k, data))
    ):
        same(ours, theirs)


def test_fold_in_traced_data_matches_jax():
    data = jnp.arange(300, dtype=jnp.int32) * 7919
    ours = jax.jit(jax.vmap(threefry.fold_in, in_axes=(None, 0)))(KEYS[5], data)
    same(ours, jax.vmap(jax.random.fold_in, in_axes=(None, 0))(KEYS[5], data))


@pytest.mark.parametrize("shape", [(), (1,), (2,), (5,), (3, 4), (2, 3, 5), (8192,)])
def test_bits_and_uniform_match_jax(shape):
    pairs = [
        (lambda k: threefry.bits(k, shape), lambda k: jax.random.bits(k, shape, jnp.uint32)),
        (lambda k: threefry.uniform(k, shape), lambda k: jax.random.uniform(k, shape)),
    ]
    for ours_fn, theirs_fn in pairs:
        for ours, theirs in zip(raw_and_typed(jax.jit(ours_fn)), raw_and_typed(theirs_fn)):
            same(ours, theirs)


def test_uniform_is_in_unit_interval():
    u = threefry.uniform(KEYS[9], (100_000,))
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 4 * (1 / 12 / 100_000) ** 0.5


def test_chains_of_draws_match_jax():
    """A key split, split again and drawn from, as the environment does, inside one fused program."""

    def ours(key):
        k1, k2 = threefry.split(key)
        k3, k4 = threefry.split(k1)
        return threefry.uniform(k3), threefry.bits(k4, (7,)), threefry.split(k2, 3)

    def theirs(key):
        k1, k2 = jax.random.split(key)
        k3, k4 = jax.random.split(k1)
        return jax.random.uniform(k3), jax.random.bits(k4, (7,), jnp.uint32), jax.random.split(k2, 3)

    for a, b in zip(jax.jit(jax.vmap(ours))(KEYS), jax.vmap(theirs)(KEYS)):
        same(a, b)


def test_other_key_implementations_defer_to_jax():
    key = jax.random.key(3, impl="rbg")
    same(threefry.split(key, 3), jax.random.split(key, 3))
    same(threefry.fold_in(key, 9), jax.random.fold_in(key, 9))
    same(threefry.bits(key, (4,)), jax.random.bits(key, (4,), jnp.uint32))
    same(threefry.uniform(key, (4,)), jax.random.uniform(key, (4,)))


def test_non_partitionable_setting_defers_to_jax():
    previous = jax.config.jax_threefry_partitionable
    jax.config.update("jax_threefry_partitionable", False)
    try:
        key = KEYS[11]
        same(threefry.split(key, 5), jax.random.split(key, 5))
        same(threefry.bits(key, (6,)), jax.random.bits(key, (6,), jnp.uint32))
        same(threefry.uniform(key, (3,)), jax.random.uniform(key, (3,)))
        same(threefry.fold_in(key, 4), jax.random.fold_in(key, 4))
    finally:
        jax.config.update("jax_threefry_partitionable", previous)


def test_environment_draws_are_unchanged_by_the_fused_hash():
    """A reset and a step of a randomised id with a random bot equal the same code run with
    jax.random (the unjitted `reset_env` / `step_env`, so no cached program is reused)."""
    import idsjax
    from idsjax import bots, layout
    from idsjax import env as env_module

    env, params = idsjax.make("idsgame-random_defense-v19")
    keys = KEYS[:32]
    actions = jnp.arange(32, dtype=jnp.int32) % env.num_actions

    def draws(keys):
        _, state = jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)
        stepped = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(keys, state, actions, params)
        return state, stepped

    class JaxRandom:
        split = staticmethod(jax.random.split)
        uniform = staticmethod(jax.random.uniform)
        fold_in = staticmethod(jax.random.fold_in)

        @staticmethod
        def bits(key, shape=()):
            return jax.random.bits(key, shape, jnp.uint32)

    ours = jax.jit(draws)(keys)
    modules = (env_module, layout, bots)
    saved = [m.threefry for m in modules]
    try:
        for m in modules:
            m.threefry = JaxRandom
        theirs = jax.jit(draws)(keys)
    finally:
        for m, saved_module in zip(modules, saved):
            m.threefry = saved_module
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        same(a, b)
