"""The league: the meta-solver, the opponent-sampling weights of each mode, and the pool of
snapshots (a ring buffer of stacked parameters on the device)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from baselines.selfplay.config import OPPONENT_BOTS


def _regret_strategy(regret, valid):
    pos = jnp.maximum(regret, 0.0) * valid
    total = pos.sum()
    uniform = valid / jnp.maximum(valid.sum(), 1)
    return jnp.where(total > 0, pos / jnp.where(total > 0, total, 1.0), uniform)


def solve_zero_sum(payoff, row_valid=None, col_valid=None, iters: int = 1000):
    """Approximate Nash mixtures (row, column) of the zero-sum matrix game `payoff` (the row player
    maximises `x^T M y`): regret matching+ with alternating updates and linear averaging, restricted to
    the valid strategies. Pure JAX (`lax.scan`)."""
    payoff = jnp.asarray(payoff, jnp.float32)
    r, c = payoff.shape
    rv = jnp.ones((r,), jnp.float32) if row_valid is None else jnp.asarray(row_valid, jnp.float32)
    cv = jnp.ones((c,), jnp.float32) if col_valid is None else jnp.asarray(col_valid, jnp.float32)
    m = jnp.where(rv[:, None] * cv[None, :] > 0, payoff, 0.0)

    def body(carry, t):
        rx, ry, sx, sy = carry
        y = _regret_strategy(ry, cv)
        x = _regret_strategy(rx, rv)
        u_row = m @ y
        rx = jnp.maximum(rx + (u_row - x @ u_row) * rv, 0.0)
        x = _regret_strategy(rx, rv)
        u_col = -(x @ m)
        ry = jnp.maximum(ry + (u_col - u_col @ y) * cv, 0.0)
        y = _regret_strategy(ry, cv)
        w = t + 1.0
        return (rx, ry, sx + w * x, sy + w * y), None

    zero_r, zero_c = jnp.zeros((r,)), jnp.zeros((c,))
    (_, _, sx, sy), _ = jax.lax.scan(body, (zero_r, zero_c, zero_r, zero_c), jnp.arange(iters, dtype=jnp.float32))
    return sx / sx.sum(), sy / sy.sum()


def pfsp_weights(win_rate, valid, eps: float = 1e-3):
    """Prioritised fictitious self-play: opponent weight w (1 - w), w = the learner's win rate against
    it, normalised over the valid opponents (`eps` keeps every valid one reachable)."""
    w = (win_rate * (1.0 - win_rate) + eps) * valid
    return w / jnp.maximum(w.sum(), 1e-12)


def quality_weights(quality, valid, temperature: float):
    """The opponent pool's quality-weighted sampling: softmax(quality / temperature) over valid slots."""
    logits = jnp.where(valid > 0, quality / temperature, -jnp.inf)
    return jax.nn.softmax(logits)


# --- the pool: a ring buffer of stacked parameters ------------------------------------------------


class Pool(NamedTuple):
    params: Any  # pytree with a leading [capacity] axis
    valid: jax.Array  # bool[capacity]
    count: jax.Array  # int32: snapshots inserted so far (the next slot is count % capacity)


def pool_init(params, capacity: int) -> Pool:
    """A pool holding `params` in slot 0."""
    stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (capacity,) + x.shape), params)
    return Pool(stacked, jnp.arange(capacity) == 0, jnp.int32(1))


def pool_insert(pool: Pool, params, enabled=True) -> tuple[Pool, jax.Array]:
    """Insert `params` at the next slot (overwriting the oldest when full) when `enabled`; returns the
    pool and the slot."""
    capacity = pool.valid.shape[0]
    slot = pool.count % capacity
    hit = (jnp.arange(capacity) == slot) & enabled
    stacked = jax.tree.map(
        lambda s, p: jnp.where(hit.reshape((capacity,) + (1,) * p.ndim), p[None], s), pool.params, params
    )
    return Pool(stacked, pool.valid | hit, pool.count + jnp.asarray(enabled, jnp.int32)), slot


def pool_get(pool: Pool, index: jax.Array):
    """Parameters of the slots `index` (any shape): a gather on the stacked leaves."""
    return jax.tree.map(lambda s: s[index], pool.params)


def pool_sample(key, probs, shape):
    return jax.random.choice(key, probs.shape[0], shape, p=probs)


class League(NamedTuple):
    att_pool: Pool  # attacker snapshots (the defender's opponents)
    def_pool: Pool  # defender snapshots (the attacker's opponents)
    att_rate: jax.Array  # [P] hack rate of the attacker learner vs defender snapshot j
    def_rate: jax.Array  # [P] hack rate of attacker snapshot i vs the defender learner
    self_rate: jax.Array  # hack rate learner vs learner
    payoff: jax.Array  # [P, P] hack rate of attacker snapshot i vs defender snapshot j
    att_opp: jax.Array  # int32[n_pool] opponent of the attacker learner per pool game (>= P: a bot)
    def_opp: jax.Array  # int32[n_pool] opponent of the defender learner per pool game
    att_probs: jax.Array  # [P] the attacker learner's sampling distribution over defender snapshots
    def_probs: jax.Array  # [P] the defender learner's sampling distribution over attacker snapshots


def sampling_probs(config: dict, league: League, side: str):
    """The learner `side`'s distribution over the other side's snapshots."""
    if side == "attacker":
        valid, win = league.def_pool.valid.astype(jnp.float32), league.att_rate
    else:
        valid, win = league.att_pool.valid.astype(jnp.float32), 1.0 - league.def_rate
    mode = config["mode"]
    if mode == "pfsp":
        return pfsp_weights(win, valid)
    if mode == "psro":
        x, y = solve_zero_sum(league.payoff, league.att_pool.valid, league.def_pool.valid, config["meta_iters"])
        return y if side == "attacker" else x
    return quality_weights(1.0 - win, valid, config["pool_temperature"])


def with_probs(config: dict, league: League) -> League:
    """The league with both learners' sampling distributions recomputed (once per update)."""
    return league._replace(
        att_probs=sampling_probs(config, league, "attacker"), def_probs=sampling_probs(config, league, "defender")
    )


def draw_opponents(key, config: dict, league: League, side: str, n: int):
    """Opponent indices for `n` new games: a snapshot slot, or P + b for scripted bot b."""
    k_pool, k_bot, k_which = jax.random.split(key, 3)
    capacity = config["pool_size"]
    probs = league.att_probs if side == "attacker" else league.def_probs
    slot = pool_sample(k_pool, probs, (n,))
    bot = capacity + jax.random.randint(k_which, (n,), 0, len(OPPONENT_BOTS[side]))
    return jnp.where(jax.random.uniform(k_bot, (n,)) < config["bot_share"], bot, slot).astype(jnp.int32)


def ema(rate, wins, games, alpha):
    keep = (1.0 - alpha) ** games
    return jnp.where(games > 0, keep * rate + (1 - keep) * wins / jnp.maximum(games, 1), rate)
