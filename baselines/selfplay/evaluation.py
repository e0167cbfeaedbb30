"""Self-play's evaluation: the final policies against each other, against the scripted bots and
against the pool, the population's payoff matrix, and the best responses (exploitability). Every game
is played by `idsjax.rollout`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from baselines.evaluation import summarise
from baselines.selfplay.config import OPPONENT_BOTS, payoff_games
from baselines.selfplay.league import pool_get
from baselines.selfplay.policies import Policy, masks, side_policies
from baselines.selfplay.trainer import Runner
from idsjax.bots import BOTS
from idsjax.rollout import rollout

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


def play(env, env_params, attacker: Actor, defender: Actor, key, num_episodes: int):
    """`num_episodes` games in parallel, one episode each (`idsjax.rollout`): per-game `Episodes` with
    both players' returns as totals and the hack as outcome (`summarise` averages them)."""

    def policy(k, obs, state):
        k_a, k_d = jax.random.split(k)
        return {"attacker": attacker(k_a, state, obs["attacker"]), "defender": defender(k_d, state, obs["defender"])}

    return rollout(
        env,
        env_params,
        policy,
        key,
        num_episodes,
        outcome=lambda t: t.info["hacked"],
        accumulate=lambda t: {"attacker_return": t.reward["attacker"], "defender_return": t.reward["defender"]},
    )


def games(episodes, lo: int, hi: int):
    """The games [lo, hi) of a rollout's `Episodes`."""
    return jax.tree.map(lambda x: x[lo:hi], episodes)


def mixed_actor(actors: list, kind: jax.Array) -> Actor:
    """Game g is played by `actors[kind[g]]` (all are computed, one is selected: one scan body)."""

    def actor(key, state, obs):
        keys = jax.random.split(key, len(actors))
        out = actors[0](keys[0], state, obs)
        for i, a in enumerate(actors[1:], 1):
            out = jnp.where(kind == i, a(keys[i], state, obs), out)
        return out

    return actor


def make_evaluate(config: dict, env, env_params):
    """(runner, key) -> evaluation pytree of one seed (vmappable).

    `eval_episodes` games per block: the final policies against each other and against the other
    side's bots; the population's payoff matrix (`payoff_games(config)` games per pair); and each
    final policy against the pool member that did best against it in the matrix, replayed on fresh
    games (`attacker_vs_pool_best`, `pool_best_vs_defender`): chosen on the matrix's few games, its
    value there would carry the luck that chose it, so exploitability reads the fresh games."""
    pols = side_policies(config, env)
    masked = config["mask_illegal"]
    n_eval, n_pay = config["eval_episodes"], payoff_games(config)

    def evaluate_seed(runner: Runner, key):
        keys = jax.random.split(key, 8)
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
        payoff = jax.vmap(lambda pa, kr: jax.vmap(lambda pd, k: pair(pa, pd, k))(dfns, kr))(atts, pk)
        valid_att = jnp.concatenate([lg.att_pool.valid, jnp.ones((1,), bool)])
        valid_def = jnp.concatenate([lg.def_pool.valid, jnp.ones((1,), bool)])
        # the pool members that did best against the final policies in the matrix
        best_def = jnp.argmin(jnp.where(lg.def_pool.valid, payoff[-1, :-1], jnp.inf))
        best_att = jnp.argmax(jnp.where(lg.att_pool.valid, payoff[:-1, -1], -jnp.inf))

        att = policy_actor(env, env_params, pols["attacker"], runner.att.params, "attacker", masked)
        dfn = policy_actor(env, env_params, pols["defender"], runner.dfn.params, "defender", masked)
        # one batch of games: final vs final, the attacker vs its two bots, the defender vs its two bots
        blocks = (
            [("final", 0, 0)]
            + [(f"attacker_vs_{b}", 0, i + 1) for i, b in enumerate(OPPONENT_BOTS["attacker"])]
            + [(f"defender_vs_{b}", i + 1, 0) for i, b in enumerate(OPPONENT_BOTS["defender"])]
        )
        att_kind = jnp.repeat(jnp.array([a for _, a, _ in blocks]), n_eval)
        def_kind = jnp.repeat(jnp.array([d for _, _, d in blocks]), n_eval)
        played = play(
            env,
            env_params,
            mixed_actor([att] + [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["defender"]], att_kind),
            mixed_actor([dfn] + [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["attacker"]], def_kind),
            keys[0],
            n_eval * len(blocks),
        )
        out = {name: summarise(games(played, i * n_eval, (i + 1) * n_eval)) for i, (name, _, _) in enumerate(blocks)}
        # each final policy against its best pool member, on fresh games (a batch of its own, so that the
        # games above are the same whatever the pool holds)
        pool_att = policy_actor(env, env_params, pols["attacker"], pool_get(lg.att_pool, best_att), "attacker", masked)
        pool_def = policy_actor(env, env_params, pols["defender"], pool_get(lg.def_pool, best_def), "defender", masked)
        kind = jnp.repeat(jnp.array([0, 1]), n_eval)  # final attacker vs pool defender, then pool attacker vs final
        rescored = play(
            env, env_params, mixed_actor([att, pool_att], kind), mixed_actor([pool_def, dfn], kind), keys[1], 2 * n_eval
        )
        out["attacker_vs_pool_best"] = summarise(games(rescored, 0, n_eval))
        out["pool_best_vs_defender"] = summarise(games(rescored, n_eval, 2 * n_eval))
        out["pool_best_slot"] = {"defender": best_def, "attacker": best_att}
        out["payoff"], out["valid_att"], out["valid_def"] = payoff, valid_att, valid_def
        return out

    return evaluate_seed
