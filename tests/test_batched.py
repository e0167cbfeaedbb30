"""`idsjax.batched.step` is `vmap(env.step)`, bit for bit: observations, state, rewards, flags and info,
on every id whose reset draws, through steps where few games end (the compact draw) and steps where more
games end than the capacity (the fallback draw)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import idsjax
from benchmarks._harness import sample_actions
from idsjax import batched
from idsjax.versions import Mode, env_id

# Every version whose reset draws, plus a bot on each side (the bots' draws share the step's key).
RANDOM_RESET_IDS = [env_id(v, Mode.TWO_AGENT) for v in (12, 14, 15, 16, 17, 18, 19, 20, 21)] + [
    env_id(19, Mode.MINIMAL_DEFENSE),
    env_id(19, Mode.MAXIMAL_ATTACK),
]
BATCH, STEPS = 256, 30


def lockstep(env, params, capacities):
    space = env.action_space(params)
    vstep = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        _, state = batched.reset(env, jax.random.split(key, BATCH), params)

        def body(carry, k):
            s_vmap, s_batched = carry
            k_action, k_games = jax.random.split(k)
            action = sample_actions(space, k_action, BATCH)
            keys = jax.random.split(k_games, BATCH)
            out_vmap = vstep(keys, s_vmap, action, params)
            out_batched = batched.step(env, keys, s_batched, action, params, capacities)
            same = jax.tree.map(lambda x, y: jnp.array_equal(x, y), out_vmap, out_batched)
            num_done = jnp.sum(out_vmap[3] | out_vmap[4])
            return (out_vmap[1], out_batched[1]), (jnp.all(jnp.stack(jax.tree.leaves(same))), num_done)

        _, (same, num_done) = jax.lax.scan(body, (state, state), jax.random.split(key, STEPS))
        return same, num_done

    return jax.jit(run)(jax.random.PRNGKey(3))


@pytest.mark.parametrize("eid", RANDOM_RESET_IDS)
def test_batched_step_equals_vmap_step(eid):
    env, params = idsjax.make(eid)
    # The games that end per step do not depend on the capacity: a first run finds them, and a
    # capacity at their median makes the second run take the compact draw and the fallback.
    same, num_done = lockstep(env, params, ())
    assert bool(same.all()), f"first difference at step {int(jnp.argmin(same))}"
    capacity = int(jnp.median(num_done))
    same, _ = lockstep(env, params, (capacity / BATCH,))
    assert bool(same.all()), f"first difference at step {int(jnp.argmin(same))}"
    assert bool(((num_done > 0) & (num_done <= capacity)).any()), "the compact draw was never used"
    assert bool((num_done > capacity).any()), "the fallback draw was never used"


def test_default_capacities_and_no_capacity_agree():
    env, params = idsjax.make("idsgame-v12")
    for capacities in (batched.DEFAULT_CAPACITIES, ()):
        same, _ = lockstep(env, params, capacities)
        assert bool(same.all())


def test_ids_without_random_resets_are_vmap_step():
    env, params = idsjax.make("idsgame-v3")
    same, num_done = lockstep(env, params, (1 / 16,))
    assert bool(same.all()) and int(num_done.sum()) > 0
