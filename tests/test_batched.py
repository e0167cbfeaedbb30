"""`idsjax.batched.step` is `vmap(env.step)`, bit for bit: observations, state, rewards, flags and info,
through steps where the games that end fit in one reset round and steps that need several."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest

import idsjax
from benchmarks._harness import sample_actions
from idsjax import batched
from idsjax.versions import Mode, env_id

# Every version whose reset draws, a bot on each side (the bots' draws share the step's key), and
# fixed-layout versions of each size, whose resets are a constant.
IDS = [env_id(v, Mode.TWO_AGENT) for v in (12, 14, 15, 16, 17, 18, 19, 20, 21)] + [
    env_id(19, Mode.MINIMAL_DEFENSE),
    env_id(19, Mode.MAXIMAL_ATTACK),
    env_id(0, Mode.TWO_AGENT),
    env_id(3, Mode.RANDOM_DEFENSE),
    env_id(5, Mode.TWO_AGENT),
    env_id(7, Mode.RANDOM_ATTACK),
]
BATCH, STEPS = 256, 30
ROUND = 8  # games reset per round: every id has steps where more end


def lockstep(env, params, chunk):
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
            out_batched = batched.step(env, keys, s_batched, action, params, chunk)
            same = jax.tree.map(lambda x, y: jnp.array_equal(x, y), out_vmap, out_batched)
            num_done = jnp.sum(out_vmap[3] | out_vmap[4])
            return (out_vmap[1], out_batched[1]), (jnp.all(jnp.stack(jax.tree.leaves(same))), num_done)

        _, (same, num_done) = jax.lax.scan(body, (state, state), jax.random.split(key, STEPS))
        return same, num_done

    return jax.jit(run)(jax.random.PRNGKey(3))


@pytest.mark.parametrize("eid", IDS)
def test_batched_step_equals_vmap_step(eid):
    env, params = idsjax.make(eid)
    same, num_done = lockstep(env, params, ROUND / BATCH)
    assert bool(same.all()), f"first difference at step {int(jnp.argmin(same))}"
    assert bool((num_done > ROUND).any()), "no step needed several reset rounds"


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
