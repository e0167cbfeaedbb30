"""A whole batch of games stepped at once: the same results as `jax.vmap(env.step)`, bit for bit, with
the auto-reset done only for the games that ended.

Under `vmap`, gymnax's auto-reset builds a fresh game for *every* game at *every* step and selects it
where the game is done: one more pass over every game's state and observation, and, in the randomised
versions (v12, v14-v21), a fresh layout drawn per game that costs several times the transition. Yet
only 5-8% of games end on a given step of random play (23% in v12). `step` instead ranks the done games
with a prefix sum, resets the first `capacity` of them from their own reset keys, and scatters their
rows into the batch in place: every game gets exactly the reset that `vmap(env.step)` would give it.
When more games end than the largest capacity, it falls back to resetting all of them and selecting.
Fixed-layout versions with large grids (v4-v6) keep vmap's select, which is cheaper there.

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
# XLA's scatter on the CPU pays per element: past this many (node, type) cells per game, a fixed reset
# is cheaper as vmap's select over every game (v4-v6, 220 cells: 4-20% faster; v0-v3 and v7-v13, at
# most 80 cells: batched is 15-45% faster; benchmarks/NOTES.md §5).
SCATTER_ROW_LIMIT = 128


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
    if not env.reset_is_random and env.config.num_nodes * env.config.attack_types > SCATTER_ROW_LIMIT:
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
    keys, keys_reset = jax.vmap(env.split_reset_key)(keys)
    _, state_st, reward, terminated, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
        keys, state, action, params
    )
    truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(state_st, params)
    obs_st = jax.vmap(env.get_obs, in_axes=(0, None))(state_st, params)
    state, obs = reset_done(env, keys_reset, state_st, obs_st, terminated | truncated, params, capacities)
    info = {**info, "terminated": terminated, "truncated": truncated, "final_observation": obs_st}
    return obs, state, reward, terminated, truncated, info


def reset_done(
    env: IdsGameEnv,
    keys: jax.Array,
    state: EnvState,
    obs: Any,
    done: jax.Array,
    params: EnvParams,
    capacities: Sequence[float] = DEFAULT_CAPACITIES,
) -> tuple[EnvState, Any]:
    """`(state, obs)` with every done game's rows replaced by `env.reset(keys[i], params)`'s."""
    batch = done.shape[0]
    sizes = sorted({min(batch, max(1, int(c * batch))) for c in capacities} - {batch})
    rank = jax.lax.associative_scan(jnp.add, done.astype(jnp.int32)) - 1  # rank among the done games
    num_done = rank[-1] + 1
    fresh_for = jax.vmap(env.reset_env, in_axes=(0, None))  # (obs, state) of fresh games

    def compact(size: int):
        def draw(_):
            slot = jnp.where(done, rank, size)  # `size` is out of range: dropped
            # Unused slots point past the batch: the scatter below drops their rows, and writes
            # the others in place, so the games that go on are not copied.
            games = jnp.full((size,), batch, jnp.int32).at[slot].set(jnp.arange(batch, dtype=jnp.int32), mode="drop")
            fresh = fresh_for(keys[jnp.minimum(games, batch - 1)], params)
            return jax.tree.map(lambda old, new: old.at[games].set(new, mode="drop"), (state, obs), fresh[::-1])

        return draw

    def everyone(_):
        def one(new, old):
            return jnp.where(done.reshape(done.shape + (1,) * (old.ndim - 1)), new, old)

        return jax.tree.map(one, fresh_for(keys, params)[::-1], (state, obs))

    branches = [compact(size) for size in sizes] + [everyone]
    which = jnp.sum(num_done > jnp.asarray(sizes, jnp.int32)) if sizes else jnp.int32(0)
    return jax.lax.switch(which, branches, None)
