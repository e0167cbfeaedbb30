"""`idsjax.batched.step` is gymnax's per-game step under `vmap` (`env.step_game`, what `vmap(env.step)`
ran before it got its batching rule), bit for bit: observations, state, rewards, flags and info,
through steps where the games that end fit in one reset round and steps that need several."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import idsjax
from benchmarks._harness import sample_actions
from idsjax import batched

# The lockstep of `vmap(env.step)`, which runs `batched.step`, against the frozen per-game step on
# every randomised id, bots and fixed layouts is tests/test_step_identity.py; here: chunk sizes,
# rounds, truncations and the parts.
BATCH, STEPS = 256, 30
ROUND = 8  # games reset per round: every id has steps where more end


def lockstep(env, params, chunk):
    space = env.action_space(params)
    vstep = jax.vmap(env.step_game, in_axes=(0, 0, 0, None))  # per game, without the batching rule

    def run(key):
        _, state = batched.reset(env, jax.random.split(key, BATCH), params)

        def body(carry, k):
            s_vmap, s_batched = carry
            k_action, k_games = jax.random.split(k)
            action = sample_actions(space, k_action, BATCH)
            keys = jax.random.split(k_games, BATCH)
            out_vmap = vstep(keys, s_vmap, action, params)
            out_batched = batched.step(env, keys, s_batched, action, params, chunk)
            same = jax.tree.map(lambda x, y: jnp.array_equal(x, y), out_vmap, out_batched)
            num_done = jnp.sum(out_vmap[3] | out_vmap[4])
            return (out_vmap[1], out_batched[1]), (jnp.all(jnp.stack(jax.tree.leaves(same))), num_done)

        _, (same, num_done) = jax.lax.scan(body, (state, state), jax.random.split(key, STEPS))
        return same, num_done

    return jax.jit(run)(jax.random.PRNGKey(3))


def test_steps_with_one_round_and_with_several():
    env, params = idsjax.make("idsgame-v19")  # about 14 of 256 games end per step
    same, num_done = lockstep(env, params, 14 / BATCH)
    assert bool(same.all())
    assert bool(((num_done > 0) & (num_done <= 14)).any()) and bool((num_done > 14).any())


def test_default_chunk_and_one_game_per_round_agree():
    env, params = idsjax.make("idsgame-v12")  # a quarter of its games end per step: many rounds
    for chunk in (batched.DEFAULT_CHUNK, 1 / BATCH):
        same, _ = lockstep(env, params, chunk)
        assert bool(same.all())


def test_step_limit_truncations_are_reset_too():
    env, params = idsjax.make("idsgame-v19")
    params = params.replace(max_steps_in_episode=3)  # every game not ended by then is truncated
    same, num_done = lockstep(env, params, 1 / 16)
    assert bool(same.all())
    assert int(num_done.max()) > BATCH // 2  # the truncation steps end most games at once


@pytest.mark.parametrize("eid", ["idsgame-v12", "idsgame-v15", "idsgame-v19", "idsgame-v3"])
def test_reset_draws_for_a_batch_are_each_keys_own(eid):
    """`env.reset_draws(keys)` (games along the last axis inside) equals the draws of each key alone,
    and a template with them is `env.initial_state`."""
    env, params = idsjax.make(eid)
    keys = jax.random.split(jax.random.PRNGKey(11), 64)
    many = jax.jit(env.reset_draws)(keys, params)
    one = jax.vmap(env.reset_draws, in_axes=(0, None))(keys, params)
    assert many.keys() == one.keys()
    assert bool(env.reset_is_random) == bool(many)
    for name in many:
        assert many[name].shape == one[name].shape and bool(jnp.array_equal(many[name], one[name])), name
    initial = jax.vmap(env.initial_state, in_axes=(0, None))(keys, params)
    for name in many:
        assert bool(jnp.array_equal(getattr(initial, name), many[name])), name


@pytest.mark.parametrize("eid", ["idsgame-v19", "idsgame-v0"])
def test_reset_done_with_observations(eid):
    """Given observations, `reset_done` replaces the done games' observations by their fresh games'."""
    env, params = idsjax.make(eid)
    n = 64
    key = jax.random.PRNGKey(5)
    _, state = batched.reset(env, jax.random.split(key, n), params)
    action = sample_actions(env.action_space(params), key, n)
    obs_st, state_st, *_ = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
        jax.random.split(key, n), state, action, params
    )
    done = jnp.arange(n) % 3 == 0
    keys = jax.random.split(jax.random.PRNGKey(6), n)
    state_new, obs_new = jax.jit(lambda k, s, d, o: batched.reset_done(env, k, s, d, params, 5 / n, obs=o))(
        keys, state_st, done, obs_st
    )
    fresh_obs, fresh = jax.vmap(env.reset_env, in_axes=(0, None))(keys, params)

    def expected(f, s):
        return jnp.where(done.reshape((n,) + (1,) * (s.ndim - 1)), f, s)

    for a, b in zip(jax.tree.leaves(state_new), jax.tree.leaves(jax.tree.map(expected, fresh, state_st))):
        assert bool(jnp.array_equal(a, b))
    for a, b in zip(jax.tree.leaves(obs_new), jax.tree.leaves(jax.tree.map(expected, fresh_obs, obs_st))):
        assert bool(jnp.array_equal(a, b))


def test_materialise_returns_its_input_for_every_dtype():
    tree = {
        "ints": jnp.arange(-5, 5, dtype=jnp.int32),
        "bools": jnp.arange(6) % 2 == 0,
        "floats": jnp.linspace(-1.0, 1.0, 7),
        "int8": jnp.arange(8, dtype=jnp.int8).reshape(2, 4),
        "scalar": jnp.int32(0),
        "keys": jax.random.split(jax.random.key(1), 3),
        "raw_keys": jax.random.split(jax.random.PRNGKey(1), 3),
    }
    zeros_first = {**tree, "ints": jnp.zeros(10, jnp.int32)}  # a witness of 0 must not flip the branch
    for t in (tree, zeros_first):
        for out in (batched.materialise(t), jax.jit(batched.materialise)(t)):
            for name in t:
                a, b = out[name], t[name]
                if jnp.issubdtype(b.dtype, jax.dtypes.prng_key):
                    a, b = jax.random.key_data(a), jax.random.key_data(b)
                assert bool(jnp.array_equal(a, b)), name
    batched_out = jax.vmap(batched.materialise)(jnp.arange(12).reshape(3, 4))
    assert bool(jnp.array_equal(batched_out, jnp.arange(12).reshape(3, 4)))


def test_batched_step_with_typed_keys():
    env, params = idsjax.make("idsgame-v19")
    keys = jax.random.split(jax.random.key(4), 64)
    _, state = batched.reset(env, keys, params)
    action = sample_actions(env.action_space(params), jax.random.PRNGKey(2), 64)
    for _ in range(3):
        ours = jax.jit(lambda k, s: batched.step(env, k, s, action, params))(keys, state)
        theirs = jax.vmap(env.step_game, in_axes=(0, 0, 0, None))(keys, state, action, params)
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
            assert bool(jnp.array_equal(a, b))
        state = ours[1]
        keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
