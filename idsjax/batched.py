"""A whole batch of games stepped at once: the same results as `jax.vmap(env.step)`, bit for bit, with
the auto-reset's fresh draws made only for the games that ended.

Under `vmap`, gymnax's auto-reset draws a fresh game for *every* game at *every* step and keeps it only
where the game is done. For the randomised versions (v12, v14-v21) that draw costs several times the
transition itself, while only 5-8% of games end on a given step of random play (23% in v12). `step`
instead ranks the done games with a prefix sum, gathers the reset keys of the first `capacity` of them,
draws those resets, and hands each done game its own: every game gets exactly the reset that
`vmap(env.step)` would give it, from the same key. When more games end than the largest capacity, it
falls back to drawing for all of them. Ids whose reset draws nothing take `vmap(env.step)` unchanged.

    obs, state = idsjax.batched.reset(env, keys, params)
    obs, state, reward, terminated, truncated, info = idsjax.batched.step(env, keys, state, action, params)
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp

from idsjax.env import IdsGameEnv
from idsjax.types import EnvParams, EnvState

# Fractions of the batch for which fresh games are drawn, tried in order; the full batch is the last
# resort. 1/16 covers random play on v14-v21 (5-8% of games end per step), 1/4 covers v12 (23%).
DEFAULT_CAPACITIES = (1 / 16, 1 / 4)


def reset(env: IdsGameEnv, keys: jax.Array, params: EnvParams):
    """`jax.vmap(env.reset)` over `keys` (one per game), for symmetry with `step`."""
    return jax.vmap(env.reset, in_axes=(0, None))(keys, params)


def step(
    env: IdsGameEnv,
    keys: jax.Array,
    state: EnvState,
    action: Any,
    params: EnvParams,
    capacities: Sequence[float] = DEFAULT_CAPACITIES,
):
    """`jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)`, computed faster.

    `keys`: one key per game; `state`, `action`: batched along the first axis; `params`: shared.
    `capacities`: fractions of the batch (static) for which resets are drawn before falling back to
    all games; they change the speed, never the result.
    """
    if not env.reset_is_random:
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
    keys, keys_reset = jax.vmap(env.split_reset_key)(keys)
    _, state_st, reward, terminated, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
        keys, state, action, params
    )
    truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(state_st, params)
    state = reset_done(env, keys_reset, state_st, terminated | truncated, params, capacities)
    observe = jax.vmap(env.get_obs, in_axes=(0, None))
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": observe(state_st, params)}
    return observe(state, params), state, reward, terminated, truncated, info


def reset_done(
    env: IdsGameEnv,
    keys: jax.Array,
    state: EnvState,
    done: jax.Array,
    params: EnvParams,
    capacities: Sequence[float] = DEFAULT_CAPACITIES,
) -> EnvState:
    """`state` with every done game replaced by `env.initial_state(keys[i], params)`."""
    batch = done.shape[0]
    sizes = sorted({min(batch, max(1, int(c * batch))) for c in capacities} - {batch})
    rank = jax.lax.associative_scan(jnp.add, done.astype(jnp.int32)) - 1  # rank among the done games
    num_done = rank[-1] + 1
    fresh_for = jax.vmap(env.initial_state, in_axes=(0, None))

    def select(fresh_rows: EnvState) -> EnvState:
        def one(fresh, stepped):
            mask = done.reshape(done.shape + (1,) * (stepped.ndim - 1))
            return jnp.where(mask, fresh, stepped)

        return jax.tree.map(one, fresh_rows, state)

    def compact(size: int):
        def draw(_):
            slot = jnp.where(done, rank, size)  # `size` is out of range: dropped
            games = jnp.zeros((size,), jnp.int32).at[slot].set(jnp.arange(batch, dtype=jnp.int32), mode="drop")
            fresh = fresh_for(keys[games], params)
            take = jnp.clip(rank, 0, size - 1)
            return select(jax.tree.map(lambda x: x[take], fresh))

        return draw

    def everyone(_):
        return select(fresh_for(keys, params))

    branches = [compact(size) for size in sizes] + [everyone]
    which = jnp.sum(num_done > jnp.asarray(sizes, jnp.int32)) if sizes else jnp.int32(0)
    return jax.lax.switch(which, branches, None)
