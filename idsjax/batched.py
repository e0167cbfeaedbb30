"""A whole batch of games stepped at once: the same results as gymnax's `jax.vmap` of one game's step,
bit for bit, with the auto-reset done only for the games that ended. `jax.vmap(env.step)` itself runs
this (`IdsGameEnv.step` carries `vmap_rule` as its batching rule), so every caller gets it.

Under `vmap`, gymnax's auto-reset builds a fresh game for *every* game at *every* step and selects it
where the game is done: one more pass over every game's state and observation, and, in the randomised
versions (v12, v14-v21), a fresh layout drawn per game that costs several times the transition. Yet
only 5-8% of games end on a given step of random play (23% in v12). `step` instead ranks the done games
with a prefix sum, draws their fresh layouts a chunk at a time from their own reset keys (all of a
chunk's games at once, games along the last axis, where the work vectorises), and writes their rows
into the batch in place: every game gets exactly the reset that `vmap(env.step)` would give it.
Each game's random draws are computed once into memory first (`materialise`): left to XLA's CPU
fusion, they were recomputed inside every kernel that reads them.

    obs, state = idsjax.batched.reset(env, keys, params)
    obs, state, reward, terminated, truncated, info = idsjax.batched.step(env, keys, state, action, params)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

from idsjax.backend import materialise
from idsjax.types import EnvParams, EnvState

if TYPE_CHECKING:  # idsjax.env imports this module for its batching rule; names only, for the hints
    from idsjax.env import IdsGameEnv

# Games reset per round, as a fraction of the batch. Random play ends 5-8% of games per step on v0-v3
# and v14-v21 (one or two rounds) and 23% on v12 (four); smaller chunks measured no faster
# (benchmarks/NOTES.md §5).
DEFAULT_CHUNK = 1 / 16

# Fixed-layout games with at most this many state and observation values are reset by a select over
# the batch instead (v11, v13: 43 values, +16-17% in random play; v0 with 204 values, v3 and v4 lost
# 15-31% that way; benchmarks/NOTES.md §8.3).
SELECT_RESET_MAX_VALUES = 64


def reset(env: IdsGameEnv, keys: jax.Array, params: EnvParams):
    """`jax.vmap(env.reset)` over `keys` (one per game), for symmetry with `step`."""
    return jax.vmap(env.reset, in_axes=(0, None))(keys, params)


def step(
    env: Any,
    keys: jax.Array,
    state: EnvState,
    action: Any,
    params: EnvParams,
    chunk: float = DEFAULT_CHUNK,
):
    """`jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)`: the one batched step
    that the trainers, evaluation, rollouts and benchmarks call.

    `keys`: one key per game; `state`, `action`: batched along the first axis; `params`: shared.
    For an `IdsGameEnv` (a class with `steps_batches_by_rounds`) the games that ended are reset `chunk`
    of the batch (static) at a time; it changes the speed, never the result. Any other gymnax environment (e.g. a wrapper, whose own
    `vmap` reaches `IdsGameEnv.step`'s batching rule) is stepped by `jax.vmap(env.step)`.
    """
    # Read on the class: a wrapper that forwards attributes to the game it wraps has its own `step`.
    if not getattr(type(env), "steps_batches_by_rounds", False):
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
    keys, keys_reset = jax.vmap(env.split_reset_key)(materialise(keys))
    drawn = materialise(jax.vmap(env.draw_step, in_axes=(0, 0, 0, None))(keys, state, action, params))
    _, state_st, reward, terminated, info = jax.vmap(env.apply_step, in_axes=(0, 0, 0, 0, None))(state, *drawn, params)
    truncated = jax.vmap(env.is_truncated, in_axes=(0, None))(state_st, params)
    observe = jax.vmap(env.get_obs, in_axes=(0, None))
    obs_st = observe(state_st, params)
    done = terminated | truncated
    if env.reset_is_random:
        # Observations are a function of the state: observing the new batch once costs less than
        # observing each fresh game apart, whose rows of 2-10 values do not vectorise (NOTES §7).
        state = reset_done(env, keys_reset, state_st, done, params, chunk)
        obs = observe(state, params)
    elif _values_per_game((state_st, obs_st)) <= SELECT_RESET_MAX_VALUES:
        # A game this small is cheaper to select over the whole batch than to write row by row in
        # rounds of a few dozen small kernels. `done` is materialised first: otherwise every select
        # kernel would recompute the transition that decides it.
        fresh = env.reset_template(params)
        fresh_obs = env.get_obs(fresh, params)
        done = materialise(done)

        def select(new, old):
            return jnp.where(done.reshape(done.shape + (1,) * new.ndim), new, old)

        state, obs = jax.tree.map(select, (fresh, fresh_obs), (state_st, obs_st))
    else:
        # A fresh game and its observation are constants here: their rows are written in place into
        # the observations that the transition's fused kernels produced.
        state, obs = reset_done(env, keys_reset, state_st, done, params, chunk, obs=obs_st)
    extra = jax.vmap(env.step_info, in_axes=(0, 0, 0, 0, None))(state, terminated, truncated, obs_st, params)
    return obs, state, reward, terminated, truncated, {**info, **extra}


def vmap_rule(env: IdsGameEnv, axis_size: int, in_batched: list, key, state, action, params):
    """`IdsGameEnv.step`'s batching rule (`jax.custom_batching.custom_vmap`): `(outputs, batched)`.

    With `params` shared, `step` above; arguments `vmap` left unbatched (one key, state or action for
    every game) are broadcast first, which gives each game what `vmap` would. With `params` batched
    (or an empty batch), `jax.vmap(env.step_game)`: gymnax's step per game, exact, without the
    rounds. Every output is batched. Under a second, outer `vmap` (e.g. over training seeds) the
    rounds' loop and conditionals are batched in turn: still exact.
    """
    params_batched = any(jax.tree.leaves(in_batched[3]))
    if params_batched or axis_size == 0:
        in_axes = tuple(jax.tree.map(lambda b: 0 if b else None, b) for b in in_batched)
        out = jax.vmap(env.step_game, in_axes=in_axes)(key, state, action, params)
    else:

        def per_game(x, is_batched):
            return x if is_batched else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x))

        key, state, action = (jax.tree.map(per_game, x, b) for x, b in zip((key, state, action), in_batched[:3]))
        out = step(env, key, state, action, params)
    return out, jax.tree.map(lambda _: True, out)


def reset_done(
    env: IdsGameEnv,
    keys: jax.Array,
    state: EnvState,
    done: jax.Array,
    params: EnvParams,
    chunk: float = DEFAULT_CHUNK,
    obs: Any = None,
):
    """`state` with every done game `i` replaced by `env.initial_state(keys[i], params)`; given the
    batch's observations `obs`, returns `(state, obs)` with theirs replaced too.

    The done games are reset `chunk · batch` at a time, in rank order, in a loop that runs as many
    rounds as needed (none when no game ended), so one compiled draw serves every number of ended
    games. A round draws only what a reset draws (`env.reset_draws`, for the round's games at once);
    the rest of a fresh game is `env.reset_template`, the same for all.
    """
    batch = done.shape[0]
    size = min(batch, max(1, int(chunk * batch)))
    rank = jax.lax.associative_scan(jnp.add, done.astype(jnp.int32)) - 1  # rank among the done games
    num_done = rank[-1] + 1
    template = env.reset_template(params)

    # order[j]: the game of rank j among the done games; past the last one, `batch`, which the
    # scatters below drop. Built once, so a round costs in proportion to its chunk, not to the batch.
    slot = jnp.where(done, rank, batch + size)  # out of range: dropped
    order = jnp.full((batch + size,), batch, jnp.int32).at[slot].set(jnp.arange(batch, dtype=jnp.int32), mode="drop")

    def one_round(j, carry):
        state, obs = carry
        games = jax.lax.dynamic_slice(order, (j * size,), (size,))
        drawn = env.reset_draws(keys[jnp.minimum(games, batch - 1)], params)
        # Rows are written in place, so the games that go on are not copied; the template's values
        # are broadcast over the round's rows.
        fresh = {name: drawn.get(name, getattr(template, name)) for name in _fields(template)}
        state = state.replace(
            **{name: getattr(state, name).at[games].set(value, mode="drop") for name, value in fresh.items()}
        )
        if obs is not None:
            if drawn:
                rows = jax.tree.map(lambda v: jnp.broadcast_to(v, (size,) + v.shape), template)
                fresh_obs = jax.vmap(env.get_obs, in_axes=(0, None))(rows.replace(**drawn), params)
            else:
                fresh_obs = env.get_obs(template, params)
            obs = jax.tree.map(lambda old, new: old.at[games].set(new, mode="drop"), obs, fresh_obs)
        return state, obs

    state, obs = jax.lax.fori_loop(0, (num_done + size - 1) // size, one_round, (state, obs))
    return state if obs is None else (state, obs)


def _fields(state: EnvState) -> list[str]:
    return [f.name for f in dataclasses.fields(state)]


def _values_per_game(tree: Any) -> int:
    """Values per game in a batched pytree (static)."""
    return sum(leaf.size // leaf.shape[0] for leaf in jax.tree.leaves(tree))
