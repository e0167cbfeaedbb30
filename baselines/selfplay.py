"""Self-play for the two-agent ids `idsgame-vN`: simultaneous PPO for the attacker and the defender
in one compiled training loop, with an opponent pool (Hammar & Stadler, CNSM 2020) and league modes.

Each update plays `num_steps` steps in `num_envs` games split statically into three groups:

    [ attacker learner vs pool defender | learner vs learner | pool attacker vs defender learner ]
      n_pool games                        n_self games         n_pool games

(`n_pool = round(num_envs * pool_share / 2)`; `--mode naive` has no pool games). The attacker learns
from the first two groups, the defender from the last two, each with its own PPO update (clipped
surrogate, GAE) of the same shape. A pool game's opponent is drawn when its episode starts: a
scripted bot with probability `bot_share`, otherwise a snapshot from the other side's pool, which
lives on the device as stacked parameters in a ring buffer of `pool_size` slots (a snapshot of both
players every `snapshot_every` updates; slot 0 holds the initial policies). Per-snapshot parameters
are gathered and the opponents' policies vmapped over the pool games.

Opponent sampling distribution (`--mode`):
    naive  only learner vs learner.
    pool   quality-weighted: softmax(q / pool_temperature), q = the snapshot's win rate against the
           current learner (an exponential moving average tracked on the device).
    pfsp   prioritised fictitious self-play: weight w (1 - w), w = the learner's win rate against
           the snapshot (the "hard-but-beatable" weighting).
    psro   the meta-solver's approximate Nash mixture of the population's payoff matrix M
           (M[i, j]: hack probability of attacker snapshot i vs defender snapshot j; zero-sum, the
           attacker maximises), solved by regret matching+ with linear averaging each update.

M is filled on the device without extra games: when snapshot i is taken, row i (column i) is the
current attacker's (defender's) win-rate estimates against the other side's snapshots and M[i, i]
is the learner-vs-learner rate. The payoff matrix in `payoff_matrix.csv` is measured afresh at the
end with `--payoff-episodes` games per pair.

`--policy autoregressive` factorises each player's action into the node, then the attack/defense
type given the node: p(node) p(type | node), masked stage by stage when `--mask-illegal`.

After training: the final attacker vs the final defender (`eval_*`), each final policy against the two
scripted bots of the other side and against the other side's pool, the population's payoff matrix
(CSV and heatmap), and exploitability: a fresh best response, `baselines.ppo`'s trainer on a
single-agent view of the game with the frozen final policy as the opponent, trained for
`--br-timesteps` steps against each side.

    python -m baselines.selfplay --env idsgame-v19
    python -m baselines.selfplay --env idsgame-v7 --mode pfsp --policy autoregressive
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from typing import Any, Callable, NamedTuple

import chex
import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

import idsjax
from baselines import common, policy_gradient, ppo
from idsjax.bots import BOTS

ALGO = "selfplay"
MODES = ("naive", "pool", "pfsp", "psro")
POLICIES = ("flat", "autoregressive")
SIDES = ("attacker", "defender")
# The scripted opponents of each learner: the attacker faces the defence bots and vice versa.
OPPONENT_BOTS = {"attacker": ("random_defense", "defend_minimal"), "defender": ("random_attack", "attack_maximal")}

ENV_DEFAULTS = {"env": "idsgame-v19", "total_timesteps": 100_000, "num_envs": 32, "mask_illegal": True, "chunks": 20}
_PPO = {k: v for k, v in ppo.HYPERPARAMETERS.items() if k != "eval_greedy"}
HYPERPARAMETERS = {
    **_PPO,
    "mode": ("pool", "any", "league mode: " + " | ".join(MODES)),
    "policy": ("flat", "any", "policy head of both players: flat | autoregressive (node, then type)"),
    "pool_size": (8, "pos", "snapshots kept per side (ring buffer on the device)"),
    "snapshot_every": (5, "pos", "updates between snapshots"),
    "pool_share": (0.5, "prob", "share of the games played against an opponent from the pool (half per side)"),
    "bot_share": (0.0, "prob", "probability that a pool game's opponent is a scripted bot"),
    "pool_temperature": (0.1, "pos", "--mode pool: softmax temperature of the quality weights"),
    "rate_ema": (0.05, "unit", "per-game weight of the win-rate moving averages"),
    "meta_iters": (200, "pos", "--mode psro: regret-matching+ iterations of the meta-solver per update"),
    "payoff_episodes": (100, "pos", "evaluation games per pair of the payoff matrix"),
    "br_timesteps": (30_000, "nonneg", "steps of each best-response PPO for exploitability (0: skip)"),
}


def validate(config: dict) -> None:
    if config["mode"] not in MODES:
        raise common.UsageError(f"--mode must be one of {', '.join(MODES)}, got {config['mode']!r}")
    if config["policy"] not in POLICIES:
        raise common.UsageError(f"--policy must be one of {', '.join(POLICIES)}, got {config['policy']!r}")
    n_pool, n_self = split_envs(config)
    if n_self < 1:
        raise common.UsageError("--pool-share leaves no learner-vs-learner game; lower it or raise --num-envs")
    if ((n_self + n_pool) * config["num_steps"]) % config["num_minibatches"]:
        raise common.UsageError(
            f"each player's batch ({n_self + n_pool} games x --num-steps {config['num_steps']}) must be "
            f"divisible by --num-minibatches {config['num_minibatches']}"
        )
    if config["num_envs"] * config["num_steps"] % config["num_minibatches"]:  # the best responses (ppo)
        raise common.UsageError("--num-envs x --num-steps must be divisible by --num-minibatches")


def split_envs(config: dict) -> tuple[int, int]:
    """(pool games per side, learner-vs-learner games)."""
    n = config["num_envs"]
    n_pool = 0 if config["mode"] == "naive" else int(round(n * config["pool_share"] / 2))
    return n_pool, n - 2 * n_pool


def check_env_id(env_id: str) -> None:
    if env_id not in idsjax.registered_envs():
        try:
            idsjax.make(env_id)
        except ValueError as e:
            raise common.UsageError(str(e)) from None
    env, _ = idsjax.make(env_id)
    if env.learner != "both":
        raise common.UsageError(
            f"{env_id!r} is a single-agent id (the {env.learner} against a scripted bot); train it with "
            f"python -m baselines.ppo --env {env_id} (or another single-agent baseline). Self-play takes "
            f"the two-agent ids idsgame-vN."
        )
    cfg = env.config
    if cfg.num_attack_ids != cfg.num_nodes * cfg.attack_id_width:
        raise common.UsageError(f"{env_id!r}: attack ids are not node x type; self-play does not support it")


def parse_config(argv) -> dict:
    parser = common.build_parser(ALGO, HYPERPARAMETERS, ENV_DEFAULTS)
    parser.description = (
        "Self-play PPO for both players of a two-agent idsjax environment (idsgame-vN), "
        "with an opponent pool and league modes."
    )
    for action in parser._actions:  # argparse has no public way to amend an option
        if action.dest == "env":
            action.help = "two-agent environment id idsgame-vN (idsjax.registered_envs())"
        elif action.dest == "mode":
            action.choices = MODES
        elif action.dest == "policy":
            action.choices = POLICIES
    config = vars(parser.parse_args(argv))
    try:
        for key in common.POSITIVE_COMMON:
            if config[key] <= 0:
                raise common.UsageError(f"--{key.replace('_', '-')} must be positive, got {config[key]}")
        for key in common.NONNEG_COMMON:
            if config[key] < 0:
                raise common.UsageError(f"--{key.replace('_', '-')} must be >= 0, got {config[key]}")
        for name, (_, check, _) in HYPERPARAMETERS.items():
            ok, text = common.CHECKS[check]
            if not ok(config[name]):
                raise common.UsageError(f"--{name.replace('_', '-')} {text}, got {config[name]}")
        validate(config)
        check_env_id(config["env"])
    except common.UsageError as e:
        parser.error(str(e))
    config["algo"] = ALGO
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("runs", ALGO, config["env"], f"seed{config['seed']}")
    return config


# --- policies -------------------------------------------------------------------------------------


class AutoregressiveActorCritic(nn.Module):
    """p(node) p(type | node): a node head on the observation and a type head on the observation and
    the node (one-hot), evaluated for every node so that log-probabilities and entropy are exact.
    Returns (node logits [B, N], type logits [B, N, W], value [B])."""

    num_nodes: int
    width: int
    hidden: int = 64
    layers: int = 2

    @nn.compact
    def __call__(self, x):
        b, n = x.shape[0], self.num_nodes
        node_logits = common.MLP(n, self.hidden, self.layers, "tanh", 0.01)(x)
        onehot = jnp.broadcast_to(jnp.eye(n, dtype=x.dtype), (b, n, n))
        xn = jnp.concatenate([jnp.broadcast_to(x[:, None, :], (b, n, x.shape[-1])), onehot], axis=-1)
        type_logits = common.MLP(self.width, self.hidden, self.layers, "tanh", 0.01)(xn)
        value = common.MLP(1, self.hidden, self.layers, "tanh", 1.0)(x)
        return node_logits, type_logits, value.squeeze(-1)


class Autoregressive(NamedTuple):
    """The joint distribution of (node, type) over global ids `node * W + type`, sampled in order."""

    node_logits: jax.Array  # [B, N], masked, normalised
    type_logits: jax.Array  # [B, N, W], masked, normalised per node

    @property
    def joint(self) -> distrax.Categorical:
        b = self.node_logits.shape[0]
        return distrax.Categorical(logits=(self.node_logits[..., None] + self.type_logits).reshape(b, -1))

    def sample(self, seed):
        k_node, k_type = jax.random.split(seed)
        node = distrax.Categorical(logits=self.node_logits).sample(seed=k_node)
        types = jnp.take_along_axis(self.type_logits, node[:, None, None], axis=1)[:, 0]
        kind = distrax.Categorical(logits=types).sample(seed=k_type)
        return node * self.type_logits.shape[-1] + kind

    def log_prob(self, action):
        return self.joint.log_prob(action)

    def entropy(self):
        return self.joint.entropy()

    def mode(self):
        return self.joint.mode()


class Policy(NamedTuple):
    network: nn.Module
    dist: Callable  # (params, obs [B, ...], mask [B, A] | None) -> (distribution, value)
    num_actions: int


def make_policy(kind: str, num_nodes: int, width: int, hidden: int, layers: int) -> Policy:
    num_actions = num_nodes * width
    if kind == "flat":
        network = common.ActorCritic(num_actions, hidden, layers)

        def dist(params, obs, mask):
            logits, value = network.apply(params, common.preprocess(obs))
            return distrax.Categorical(logits=common.mask_logits(logits, mask)), value

        return Policy(network, dist, num_actions)

    network = AutoregressiveActorCritic(num_nodes, width, hidden, layers)

    def dist(params, obs, mask):
        node_logits, type_logits, value = network.apply(params, common.preprocess(obs))
        if mask is not None:
            m = mask.reshape(mask.shape[0], num_nodes, width)
            node_logits = common.mask_logits(node_logits, m.any(-1))
            type_logits = common.mask_logits(type_logits, m)
        return Autoregressive(jax.nn.log_softmax(node_logits), jax.nn.log_softmax(type_logits)), value

    return Policy(network, dist, num_actions)


def side_policies(config: dict, env) -> dict[str, Policy]:
    cfg = env.config
    return {
        "attacker": make_policy(config["policy"], cfg.num_nodes, cfg.attack_id_width, config["hidden"], config["layers"]),
        "defender": make_policy(config["policy"], cfg.num_nodes, cfg.attack_types + 1, config["hidden"], config["layers"]),
    }


def masks(env, env_params, state, enabled: bool) -> dict:
    if not enabled:
        return {"attacker": None, "defender": None}
    return {
        "attacker": jax.vmap(env.attack_mask, in_axes=(0, None))(state, env_params),
        "defender": jax.vmap(env.defense_mask, in_axes=(0, None))(state, env_params),
    }


# --- the meta-solver and the league's sampling weights ---------------------------------------------


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


# --- the trainer ----------------------------------------------------------------------------------


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


class Runner(NamedTuple):
    att: TrainState
    dfn: TrainState
    league: League
    state: Any
    obs: dict
    returns: jax.Array  # [2, num_envs] running returns (attacker, defender)
    update: jax.Array
    rng: jax.Array


class SideBatch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    mask: jax.Array | None
    advantage: jax.Array
    target: jax.Array


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
        x, y = solve_zero_sum(
            league.payoff, league.att_pool.valid, league.def_pool.valid, config["meta_iters"]
        )
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


def _ema(rate, wins, games, alpha):
    keep = (1.0 - alpha) ** games
    return jnp.where(games > 0, keep * rate + (1 - keep) * wins / jnp.maximum(games, 1), rate)


def make_train(config: dict, env, env_params) -> common.Trainer:
    n_envs, n_steps = config["num_envs"], config["num_steps"]
    n_pool, n_self = split_envs(config)
    n_side = n_pool + n_self
    n_opp = max(n_pool, 1)  # opponent slots of the pool games (one unused slot without: orbax saves no empty array)
    capacity = config["pool_size"]
    steps_per_update = n_envs * n_steps
    num_updates, _ = common.plan_updates(config, steps_per_update)
    n_mb, epochs = config["num_minibatches"], config["update_epochs"]
    batch_size = n_side * n_steps
    masked = config["mask_illegal"]
    pols = side_policies(config, env)
    cfg = env.config

    def schedule(count):
        frac = 1.0 - (count // (n_mb * epochs)) / num_updates
        return config["lr"] * frac if config["anneal_lr"] else config["lr"]

    tx = optax.chain(optax.clip_by_global_norm(config["max_grad_norm"]), optax.adam(schedule, eps=1e-5))

    def init(rng):
        rng, k_att, k_def, k_env, k_opp = jax.random.split(rng, 5)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_env, n_envs), env_params)
        p_att = pols["attacker"].network.init(k_att, common.preprocess(obs["attacker"][:1]))
        p_def = pols["defender"].network.init(k_def, common.preprocess(obs["defender"][:1]))
        att = TrainState.create(apply_fn=pols["attacker"].network.apply, params=p_att, tx=tx)
        dfn = TrainState.create(apply_fn=pols["defender"].network.apply, params=p_def, tx=tx)
        half = jnp.full((capacity,), 0.5, jnp.float32)
        league = League(
            pool_init(p_att, capacity), pool_init(p_def, capacity), half, half, jnp.float32(0.5),
            jnp.full((capacity, capacity), 0.5, jnp.float32), jnp.zeros((n_opp,), jnp.int32),
            jnp.zeros((n_opp,), jnp.int32), half, half,
        )
        league = with_probs(config, league)
        k1, k2 = jax.random.split(k_opp)
        league = league._replace(
            att_opp=draw_opponents(k1, config, league, "attacker", n_opp),
            def_opp=draw_opponents(k2, config, league, "defender", n_opp),
        )
        returns = jnp.zeros((2, n_envs), jnp.float32)
        return Runner(att, dfn, league, state, obs, returns, jnp.int32(0), rng)

    def opponent_actions(key, side, pool: Pool, opp, state, obs, mask):
        """Actions of the pool opponents (snapshots or bots) of the learner `side` in its pool games."""
        other = "defender" if side == "attacker" else "attacker"
        k_pol, k_bot = jax.random.split(key)
        params = pool_get(pool, jnp.minimum(opp, capacity - 1))

        def one(p, o, m, k):
            d, _ = pols[other].dist(p, o[None], None if m is None else m[None])
            return d.sample(seed=k)[0]

        keys = jax.random.split(k_pol, n_pool)
        snap = jax.vmap(one, in_axes=(0, 0, None if mask is None else 0, 0))(params, obs, mask, keys)
        bot_keys = jax.random.split(k_bot, n_pool)
        bots = [jax.vmap(BOTS[b], in_axes=(0, 0, None, None))(bot_keys, state, cfg, env_params)
                for b in OPPONENT_BOTS[side]] if config["bot_share"] > 0 else []  # static: no bot, no code
        action = snap
        for b, a in enumerate(bots):
            action = jnp.where(opp == capacity + b, a, action)
        return action.astype(jnp.int32)

    sl = lambda x, a, b: jax.tree.map(lambda v: v[a:b], x)  # noqa: E731

    def env_step(runner: Runner, _):
        rng, k_att, k_def, k_oa, k_od, k_env, k_new_a, k_new_d = jax.random.split(runner.rng, 8)
        lg = runner.league
        mk = masks(env, env_params, runner.state, masked)
        obs = runner.obs
        pi_a, v_a = pols["attacker"].dist(runner.att.params, obs["attacker"], mk["attacker"])
        pi_d, v_d = pols["defender"].dist(runner.dfn.params, obs["defender"], mk["defender"])
        a_att, a_def = pi_a.sample(seed=k_att), pi_d.sample(seed=k_def)
        lp_att, lp_def = pi_a.log_prob(a_att), pi_d.log_prob(a_def)
        if n_pool:
            # attacker learner's pool games [0, n_pool): the defender is a pool opponent
            lo = n_envs - n_pool
            opp_def = opponent_actions(
                k_oa, "attacker", lg.def_pool, lg.att_opp, sl(runner.state, 0, n_pool),
                obs["defender"][:n_pool], None if mk["defender"] is None else mk["defender"][:n_pool],
            )
            opp_att = opponent_actions(
                k_od, "defender", lg.att_pool, lg.def_opp, sl(runner.state, lo, n_envs),
                obs["attacker"][lo:], None if mk["attacker"] is None else mk["attacker"][lo:],
            )
            act_att = jnp.concatenate([a_att[:lo], opp_att])
            act_def = jnp.concatenate([opp_def, a_def[n_pool:]])
        else:
            act_att, act_def = a_att, a_def
        obs2, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n_envs), runner.state, {"attacker": act_att, "defender": act_def}, env_params
        )
        done = term | trunc
        r = jnp.stack([reward["attacker"], reward["defender"]])
        returns = runner.returns + r
        ep_returns = jnp.where(done, returns, 0.0)
        hacked = info["hacked"] & done
        if n_pool:
            fa = done[:n_pool]
            fd = done[n_envs - n_pool:]
            lg = lg._replace(
                att_opp=jnp.where(fa, draw_opponents(k_new_a, config, lg, "attacker", n_pool), lg.att_opp),
                def_opp=jnp.where(fd, draw_opponents(k_new_d, config, lg, "defender", n_pool), lg.def_opp),
            )
        out = {
            "obs": obs, "mask": mk, "action": {"attacker": a_att, "defender": a_def},
            "log_prob": {"attacker": lp_att, "defender": lp_def}, "value": {"attacker": v_a, "defender": v_d},
            "reward": {"attacker": reward["attacker"], "defender": reward["defender"]},
            "done": done, "hacked": hacked, "ep_returns": ep_returns,
            "att_opp": runner.league.att_opp, "def_opp": runner.league.def_opp,
        }
        runner = runner._replace(
            league=lg, state=state, obs=obs2, returns=jnp.where(done, 0.0, returns), rng=rng
        )
        return runner, out

    def loss_fn(params, b: SideBatch, side):
        pi, value = pols[side].dist(params, b.obs, b.mask)
        return policy_gradient.clipped_loss(
            pi, value, b.action, b.log_prob, b.advantage, b.target,
            config["clip_eps"], config["vf_coef"], config["ent_coef"],
        )

    def ppo_update(ts: TrainState, side: str, traj: dict, lo: int, hi: int, last_obs, last_mask, key):
        """One PPO update of `side` on the games [lo, hi) of the rollout."""
        cut = lambda x: None if x is None else x[:, lo:hi]  # noqa: E731
        _, last_value = pols[side].dist(ts.params, last_obs[lo:hi], None if last_mask is None else last_mask[lo:hi])
        rewards = cut(traj["reward"][side]) * config["reward_scale"]
        adv, target = policy_gradient.gae(
            rewards, cut(traj["done"]).astype(jnp.float32), cut(traj["value"][side]), last_value,
            config["gamma"], config["gae_lambda"],
        )
        batch = SideBatch(cut(traj["obs"][side]), cut(traj["action"][side]), cut(traj["log_prob"][side]),
                          cut(traj["mask"][side]), adv, target)
        chex.assert_shape([adv, target], (n_steps, hi - lo))
        batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)
        return policy_gradient.minibatch_epochs(ts, batch, lambda p, b: loss_fn(p, b, side), key, epochs, n_mb)

    def update(runner: Runner):
        runner, traj = jax.lax.scan(env_step, runner, None, n_steps)
        rng, k_att, k_def = jax.random.split(runner.rng, 3)
        mk = masks(env, env_params, runner.state, masked)
        att, info_a = ppo_update(runner.att, "attacker", traj, 0, n_side, runner.obs["attacker"], mk["attacker"], k_att)
        dfn, info_d = ppo_update(runner.dfn, "defender", traj, n_pool, n_envs, runner.obs["defender"], mk["defender"], k_def)

        # win-rate statistics of the league
        lg = runner.league
        done, hacked = traj["done"], traj["hacked"].astype(jnp.float32)
        alpha = config["rate_ema"]
        s_done, s_hack = done[:, n_pool:n_envs - n_pool], hacked[:, n_pool:n_envs - n_pool]
        self_rate = _ema(lg.self_rate, s_hack.sum(), s_done.sum(), alpha)
        metrics = {}
        if n_pool:
            def per_opp(opp, d, h):
                idx = jnp.where(d, opp, capacity + 2)  # finished games only; bots and others dropped
                games = jnp.zeros((capacity + 3,)).at[idx.reshape(-1)].add(1.0)[:capacity]
                wins = jnp.zeros((capacity + 3,)).at[idx.reshape(-1)].add(h.reshape(-1))[:capacity]
                return wins, games

            da, ha = done[:, :n_pool], hacked[:, :n_pool]
            dd, hd = done[:, n_envs - n_pool:], hacked[:, n_envs - n_pool:]
            att_rate = _ema(lg.att_rate, *per_opp(traj["att_opp"], da, ha), alpha)
            def_rate = _ema(lg.def_rate, *per_opp(traj["def_opp"], dd, hd), alpha)
            metrics["att_pool_hack_probability"] = jnp.where(da.sum() > 0, ha.sum() / jnp.maximum(da.sum(), 1), jnp.nan)
            metrics["def_pool_hack_probability"] = jnp.where(dd.sum() > 0, hd.sum() / jnp.maximum(dd.sum(), 1), jnp.nan)
        else:
            att_rate, def_rate = lg.att_rate, lg.def_rate

        # snapshots of both players every `snapshot_every` updates, into the same slot
        u = runner.update + 1
        snap = (u % config["snapshot_every"]) == 0
        att_pool, slot = pool_insert(lg.att_pool, att.params, snap)
        def_pool, _ = pool_insert(lg.def_pool, dfn.params, snap)
        hit = (jnp.arange(capacity) == slot) & snap
        payoff = jnp.where(hit[:, None], att_rate[None, :], lg.payoff)  # row: new attacker vs defenders
        payoff = jnp.where(hit[None, :], def_rate[:, None], payoff)  # column: attackers vs new defender
        payoff = jnp.where(hit[:, None] & hit[None, :], self_rate, payoff)
        att_rate = jnp.where(hit, self_rate, att_rate)
        def_rate = jnp.where(hit, self_rate, def_rate)
        lg = lg._replace(att_pool=att_pool, def_pool=def_pool, att_rate=att_rate, def_rate=def_rate,
                         self_rate=self_rate, payoff=payoff)
        lg = with_probs(config, lg) if n_pool else lg

        finished = s_done.sum()
        denom = jnp.maximum(finished, 1)
        some = finished > 0
        ep = traj["ep_returns"][:, :, n_pool:n_envs - n_pool]
        metrics = {
            "episodes": finished.astype(jnp.int32),
            "hack_probability": jnp.where(some, s_hack.sum() / denom, jnp.nan),
            "return": jnp.where(some, ep[:, 0].sum() / denom, jnp.nan),  # the attacker's
            "attacker_return": jnp.where(some, ep[:, 0].sum() / denom, jnp.nan),
            "defender_return": jnp.where(some, ep[:, 1].sum() / denom, jnp.nan),
            **metrics,
            "pool_size": lg.att_pool.valid.sum().astype(jnp.int32),
            **{f"att_{k}": v for k, v in info_a.items()},
            **{f"def_{k}": v for k, v in info_d.items()},
        }
        return runner._replace(att=att, dfn=dfn, league=lg, update=u, rng=rng), metrics

    def act(runner: Runner, obs, mask, key):  # the attacker's policy (the Trainer contract has one)
        pi, _ = pols["attacker"].dist(runner.att.params, obs, mask)
        return pi.sample(seed=key)

    return common.Trainer(
        init=init, update=update, act=act,
        num_updates=num_updates, steps_per_update=steps_per_update,
    )


# --- evaluation -----------------------------------------------------------------------------------

Actor = Callable[[jax.Array, Any, jax.Array], jax.Array]  # (key, states [n], obs [n, ...]) -> actions [n]


def policy_actor(env, env_params, pol: Policy, params, side: str, masked: bool) -> Actor:
    def actor(key, state, obs):
        mask = masks(env, env_params, state, masked)[side]
        d, _ = pol.dist(params, obs, mask)
        return d.sample(seed=key)

    return actor


def bot_actor(env, env_params, name: str) -> Actor:
    def actor(key, state, obs):
        n = obs.shape[0]
        return jax.vmap(BOTS[name], in_axes=(0, 0, None, None))(jax.random.split(key, n), state, env.config, env_params)

    return actor


def play(env, env_params, attacker: Actor, defender: Actor, key, num_episodes: int) -> dict:
    """`num_episodes` games in parallel, one episode each (as `common.evaluate`, for two players);
    per-game outcomes (`summarise` averages them)."""
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, num_episodes), env_params)
    length = int(env.default_params.max_steps_in_episode) + 2
    n = num_episodes

    def body(c, k):
        state, obs, alive, ret, out = c
        k_a, k_d, k_env = jax.random.split(k, 3)
        action = {"attacker": attacker(k_a, state, obs["attacker"]), "defender": defender(k_d, state, obs["defender"])}
        obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n), state, action, env_params
        )
        done = term | trunc
        ret = ret + jnp.stack([reward["attacker"], reward["defender"]])
        ended = alive & done
        out = {
            "finished": out["finished"] + ended,
            "hacked": out["hacked"] + (ended & info["hacked"]),
            "attacker_return": out["attacker_return"] + jnp.where(ended, ret[0], 0.0),
            "defender_return": out["defender_return"] + jnp.where(ended, ret[1], 0.0),
        }
        return (state, obs, alive & ~done, ret, out), None

    zi, zf = jnp.zeros((n,), jnp.int32), jnp.zeros((n,), jnp.float32)
    zeros = {"finished": zi, "hacked": zi, "attacker_return": zf, "defender_return": zf}
    init = (state, obs, jnp.ones((n,), bool), jnp.zeros((2, n)), zeros)
    (_, _, _, _, out), _ = jax.lax.scan(body, init, jax.random.split(k_run, length))
    return out


def summarise(out: dict) -> dict:
    denom = jnp.maximum(out["finished"].sum(), 1)
    return {
        "episodes": out["finished"].sum(),
        "hack_probability": out["hacked"].sum() / denom,
        "attacker_return": out["attacker_return"].sum() / denom,
        "defender_return": out["defender_return"].sum() / denom,
    }


def mixed_actor(actors: list, kind: jax.Array) -> Actor:
    """Game g is played by `actors[kind[g]]` (all are computed, one is selected: one scan body)."""

    def actor(key, state, obs):
        keys = jax.random.split(key, len(actors))
        out = actors[0](keys[0], state, obs)
        for i, a in enumerate(actors[1:], 1):
            out = jnp.where(kind == i, a(keys[i], state, obs), out)
        return out

    return actor


@struct.dataclass
class FrozenParams:
    inner: Any
    opponent: Any


class FrozenOpponentEnv:
    """A single-agent view of a two-agent id: the learner plays `side`, the other side is a frozen
    policy whose parameters live in the env params (so per-seed opponents vmap). It has what
    `baselines.common` and `baselines.ppo` use of an environment: reset, step (auto-reset, info with
    `final_observation`, `hacked`, both rewards), `legal_action_mask`, `action_space`, `default_params`."""

    def __init__(self, env, side: str, policy: Policy, masked: bool):
        self.env, self.side, self.policy, self.masked = env, side, policy, masked
        self.other = "defender" if side == "attacker" else "attacker"

    @property
    def default_params(self):
        return self.env.default_params

    def action_space(self, params=None):
        return self.env.action_space(None).spaces[self.side]

    def legal_action_mask(self, state, params: FrozenParams):
        if self.side == "attacker":
            return self.env.attack_mask(state, params.inner)
        return self.env.defense_mask(state, params.inner)

    def reset(self, key, params: FrozenParams):
        obs, state = self.env.reset(key, params.inner)
        return obs[self.side], state

    def step(self, key, state, action, params: FrozenParams):
        k_opp, k_env = jax.random.split(key)
        obs = self.env.get_obs(state, params.inner)[self.other]
        mask = None
        if self.masked:
            mask = (self.env.defense_mask if self.other == "defender" else self.env.attack_mask)(state, params.inner)[None]
        d, _ = self.policy.dist(params.opponent, obs[None], mask)
        other = d.sample(seed=k_opp)[0]
        joint = {self.side: jnp.asarray(action, jnp.int32), self.other: other.astype(jnp.int32)}
        obs, state, reward, term, trunc, info = self.env.step(k_env, state, joint, params.inner)
        info = {**info, "final_observation": info["final_observation"][self.side]}
        return obs[self.side], state, reward[self.side], term, trunc, info


def best_response(config: dict, env, env_params, pols, side: str, opponent_params, key) -> dict:
    """Train a fresh PPO `side` (baselines.ppo's trainer) against the frozen opponent for
    `br_timesteps` steps; evaluate it (sampled) for `eval_episodes` games. Traceable (vmaps over seeds)."""
    other = "defender" if side == "attacker" else "attacker"
    wenv = FrozenOpponentEnv(env, side, pols[other], config["mask_illegal"])
    wparams = FrozenParams(env_params, opponent_params)
    br_config = {**config, "total_timesteps": config["br_timesteps"], "eval_greedy": False}
    trainer = ppo.make_train(br_config, wenv, wparams)
    k_train, k_eval = jax.random.split(key)
    runner, _ = trainer.train(k_train)
    ev = common.evaluate(wenv, wparams, trainer.act, runner, k_eval, config["eval_episodes"], config["mask_illegal"])
    return {"hack_probability": ev["hack_probability"], "attacker_return": ev["attacker_return"],
            "defender_return": ev["defender_return"]}


def make_evaluate(config: dict, env, env_params):
    """(runner, key) -> evaluation pytree of one seed (vmappable)."""
    pols = side_policies(config, env)
    masked = config["mask_illegal"]
    n_eval, n_pay = config["eval_episodes"], config["payoff_episodes"]

    def evaluate_seed(runner: Runner, key):
        keys = jax.random.split(key, 8)
        att = policy_actor(env, env_params, pols["attacker"], runner.att.params, "attacker", masked)
        dfn = policy_actor(env, env_params, pols["defender"], runner.dfn.params, "defender", masked)
        # one batch of games: final vs final, the attacker vs its two bots, the defender vs its two bots
        blocks = [("final", 0, 0)] + [(f"attacker_vs_{b}", 0, i + 1) for i, b in enumerate(OPPONENT_BOTS["attacker"])] \
            + [(f"defender_vs_{b}", i + 1, 0) for i, b in enumerate(OPPONENT_BOTS["defender"])]
        att_kind = jnp.repeat(jnp.array([a for _, a, _ in blocks]), n_eval)
        def_kind = jnp.repeat(jnp.array([d for _, _, d in blocks]), n_eval)
        games = play(
            env, env_params,
            mixed_actor([att] + [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["defender"]], att_kind),
            mixed_actor([dfn] + [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["attacker"]], def_kind),
            keys[0], n_eval * len(blocks),
        )
        out = {
            name: summarise(jax.tree.map(lambda x: x[i * n_eval:(i + 1) * n_eval], games))
            for i, (name, _, _) in enumerate(blocks)
        }
        # the population: pool snapshots plus the final policies (last row / column)
        lg = runner.league
        stack = lambda pool, p: jax.tree.map(lambda s, x: jnp.concatenate([s, x[None]]), pool.params, p)  # noqa: E731
        atts, dfns = stack(lg.att_pool, runner.att.params), stack(lg.def_pool, runner.dfn.params)

        def pair(pa, pd, k):
            a = policy_actor(env, env_params, pols["attacker"], pa, "attacker", masked)
            d = policy_actor(env, env_params, pols["defender"], pd, "defender", masked)
            return summarise(play(env, env_params, a, d, k, n_pay))["hack_probability"]

        size = config["pool_size"] + 1
        pk = jax.random.split(keys[5], size * size).reshape(size, size, -1)
        out["payoff"] = jax.vmap(lambda pa, kr: jax.vmap(lambda pd, k: pair(pa, pd, k))(dfns, kr))(atts, pk)
        out["valid_att"] = jnp.concatenate([lg.att_pool.valid, jnp.ones((1,), bool)])
        out["valid_def"] = jnp.concatenate([lg.def_pool.valid, jnp.ones((1,), bool)])
        if config["br_timesteps"] > 0:
            out["br_attacker"] = best_response(config, env, env_params, pols, "attacker", runner.dfn.params, keys[6])
            out["br_defender"] = best_response(config, env, env_params, pols, "defender", runner.att.params, keys[7])
        return out

    return evaluate_seed


def write_payoff(out_dir: str, payoff, valid_att, valid_def, num_seeds: int) -> None:
    """payoff_matrix.csv (per seed: attacker snapshot rows, defender snapshot columns, hack probability;
    the last row/column are the final policies) and payoff_matrix.png (seed 0)."""
    size = payoff.shape[-1]
    names = [f"snap{i}" for i in range(size - 1)] + ["final"]
    with open(os.path.join(out_dir, "payoff_matrix.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "attacker \\ defender"] + names)
        for s in range(num_seeds):
            for i in range(size):
                if valid_att[s, i]:
                    w.writerow([s, names[i]] + [round(float(payoff[s, i, j]), 4) if valid_def[s, j] else "" for j in range(size)])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.where(valid_att[0][:, None] & valid_def[0][None, :], payoff[0], np.nan)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * size, 0.8 + 0.5 * size))
    im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(size), names, rotation=60, fontsize=7)
    ax.set_yticks(range(size), names, fontsize=7)
    ax.set_xlabel("defender")
    ax.set_ylabel("attacker")
    for i in range(size):
        for j in range(size):
            if not np.isnan(m[i, j]):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w" if m[i, j] < 0.5 else "k")
    fig.colorbar(im, ax=ax, label="hack probability")
    ax.set_title("payoff matrix (seed 0)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "payoff_matrix.png"), dpi=100)
    plt.close(fig)


# --- host loop ------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    config = parse_config(argv)
    try:
        return _run(config)
    except common.UsageError as e:
        print(f"python -m baselines.{ALGO}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _run(config: dict) -> dict:
    config = common.resumed_config(config, ALGO)
    out = config["output_dir"]
    env, env_params = idsjax.make(config["env"], seed=config["env_seed"])
    trainer = make_train(config, env, env_params)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    _, k_chunk = common.plan_updates(config, trainer.steps_per_update)
    runner, done_updates, train_seconds, stopped = common.train_chunks(
        config, trainer, rngs, jax.jit(jax.vmap(trainer.init)),
        jax.jit(jax.vmap(lambda r: jax.lax.scan(lambda c, _: trainer.update(c), r, None, k_chunk))),
        desc=f"{ALGO}/{config['mode']} {config['env']}",
        plot_title=f"self-play ({config['mode']}, {config['policy']}) on {config['env']} — learner vs learner",
    )
    spu = trainer.steps_per_update
    env_steps = done_updates * spu
    f = common._fmt
    result = {
        "algo": ALGO, "env": config["env"], "seed": config["seed"], "num_seeds": num_seeds,
        "mode": config["mode"], "policy": config["policy"], "env_steps": env_steps,
        "train_seconds": f(train_seconds), "steps_per_second": f(env_steps * num_seeds / max(train_seconds, 1e-9)),
    }
    if stopped:
        result["stopped"] = True
        print(f"stopped after {env_steps} steps per seed; continue with --resume --output-dir {out}")
        print(json.dumps(result))
        return result

    t_eval = time.perf_counter()
    eval_keys = jax.random.split(jax.random.PRNGKey(config["seed"] + 1_000_003), num_seeds)
    ev = jax.device_get(jax.jit(jax.vmap(make_evaluate(config, env, env_params)))(runner, eval_keys))
    payoff, va, vd = np.asarray(ev["payoff"]), np.asarray(ev["valid_att"]), np.asarray(ev["valid_def"])
    write_payoff(out, payoff, va, vd, num_seeds)
    # final policies vs the other side's pool (snapshots only: the last row / column is the final)
    att_vs_pool = [np.mean(payoff[s, -1, :-1][vd[s, :-1]]) for s in range(num_seeds)]
    def_vs_pool = [np.mean(payoff[s, :-1, -1][va[s, :-1]]) for s in range(num_seeds)]
    fin = ev["final"]
    result.update({
        "eval_episodes": int(np.sum(fin["episodes"])),
        "eval_hack_probability": f(np.mean(fin["hack_probability"])),
        "eval_attacker_return": f(np.mean(fin["attacker_return"])),
        "eval_defender_return": f(np.mean(fin["defender_return"])),
        "eval_hack_probability_per_seed": [f(x) for x in np.atleast_1d(fin["hack_probability"])],
    })
    for b in OPPONENT_BOTS["attacker"]:
        result[f"attacker_vs_{b}_hack_probability"] = f(np.mean(ev[f"attacker_vs_{b}"]["hack_probability"]))
        result[f"attacker_vs_{b}_return"] = f(np.mean(ev[f"attacker_vs_{b}"]["attacker_return"]))
    for b in OPPONENT_BOTS["defender"]:
        result[f"defender_vs_{b}_hack_probability"] = f(np.mean(ev[f"defender_vs_{b}"]["hack_probability"]))
        result[f"defender_vs_{b}_return"] = f(np.mean(ev[f"defender_vs_{b}"]["defender_return"]))
    result["attacker_vs_pool_hack_probability"] = f(np.mean(att_vs_pool))
    result["defender_vs_pool_hack_probability"] = f(np.mean(def_vs_pool))
    if config["br_timesteps"] > 0:
        # exploitability: what a fresh best response achieves against each frozen final policy
        result["br_attacker_hack_probability"] = f(np.mean(ev["br_attacker"]["hack_probability"]))
        result["br_attacker_return"] = f(np.mean(ev["br_attacker"]["attacker_return"]))
        result["br_defender_hack_probability"] = f(np.mean(ev["br_defender"]["hack_probability"]))
        result["br_defender_return"] = f(np.mean(ev["br_defender"]["defender_return"]))
        result["br_timesteps"] = config["br_timesteps"]
    result["eval_seconds"] = f(time.perf_counter() - t_eval)
    result["output_dir"] = out
    with open(os.path.join(out, "eval.json"), "w") as fh:
        json.dump({
            "result": result,
            "per_seed": {
                name: {k: np.atleast_1d(np.asarray(v)).round(4).tolist() for k, v in ev[name].items()}
                for name in ev if isinstance(ev[name], dict)
            },
        }, fh, indent=2)
    print(json.dumps(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
