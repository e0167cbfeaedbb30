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
        return jax.vmap(lambda k, s: env.bot_action(name, k, s, env_params))(jax.random.split(key, n), state)

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


def exploit_responders(config: dict) -> dict[str, list[str]]:
    """The responders exploitability scores against each assessed final policy, besides the trained
    best response, in the order of `make_evaluate`'s selection arrays: the responder side's scripted
    bots, then every pool slot of the responder side."""
    slots = [f"pool:{i}" for i in range(config["pool_size"])]
    return {
        "defender": [f"bot:{b}" for b in OPPONENT_BOTS["defender"]] + slots,  # attackers against the defender
        "attacker": [f"bot:{b}" for b in OPPONENT_BOTS["attacker"]] + slots,  # defenders against the attacker
    }


def make_evaluate(config: dict, env, env_params):
    """(runner, key) -> evaluation pytree of one seed (vmappable).

    `eval_episodes` games per block: the final policies against each other and against the other
    side's bots; the population's payoff matrix (`payoff_games(config)` games per pair). For
    exploitability, every responder of `exploit_responders` (bots and pool slots) is scored against
    the final policy it responds to on the same `br_eval_episodes` games as the trained best
    response (`exploit_select_*`: the selection games), and the best of them on those games is
    replayed on as many fresh games (`exploit_fresh_*`): the value that chose it carries the luck
    that chose it, the fresh games do not (`run.exploitability` finishes the selection with the best
    response's own selection games)."""
    pols = side_policies(config, env)
    masked = config["mask_illegal"]
    n_eval, n_pay, n_x = config["eval_episodes"], payoff_games(config), config["br_eval_episodes"]
    n_bots = len(OPPONENT_BOTS["attacker"])  # the defence bots; as many attack bots (asserted below)
    assert len(OPPONENT_BOTS["defender"]) == n_bots

    def evaluate_seed(runner: Runner, key):
        keys = jax.random.split(key, 8)
        # the population: pool snapshots plus the final policies (last row / column)
        lg = runner.league
        stack = lambda pool, p: jax.tree.map(lambda s, x: jnp.concatenate([s, x[None]]), pool.params, p)  # noqa: E731
        atts, dfns = stack(lg.att_pool, runner.att.params), stack(lg.def_pool, runner.dfn.params)

        def pair(pa, pd, k, n):
            a = policy_actor(env, env_params, pols["attacker"], pa, "attacker", masked)
            d = policy_actor(env, env_params, pols["defender"], pd, "defender", masked)
            return summarise(play(env, env_params, a, d, k, n))["hack_probability"]

        size = config["pool_size"] + 1
        pk = jax.random.split(keys[5], size * size).reshape(size, size, -1)
        payoff = jax.vmap(lambda pa, kr: jax.vmap(lambda pd, k: pair(pa, pd, k, n_pay))(dfns, kr))(atts, pk)
        valid_att = jnp.concatenate([lg.att_pool.valid, jnp.ones((1,), bool)])
        valid_def = jnp.concatenate([lg.def_pool.valid, jnp.ones((1,), bool)])

        att = policy_actor(env, env_params, pols["attacker"], runner.att.params, "attacker", masked)
        dfn = policy_actor(env, env_params, pols["defender"], runner.dfn.params, "defender", masked)
        att_bots = [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["defender"]]
        def_bots = [bot_actor(env, env_params, b) for b in OPPONENT_BOTS["attacker"]]
        # one batch of games: final vs final, the attacker vs its two bots, the defender vs its two bots
        blocks = (
            [("final", 0, 0)]
            + [(f"attacker_vs_{b}", 0, i + 1) for i, b in enumerate(OPPONENT_BOTS["attacker"])]
            + [(f"defender_vs_{b}", i + 1, 0) for i, b in enumerate(OPPONENT_BOTS["defender"])]
        )
        att_kind = jnp.repeat(jnp.array([a for _, a, _ in blocks]), n_eval)
        def_kind = jnp.repeat(jnp.array([d for _, _, d in blocks]), n_eval)
        played = play(
            env, env_params, mixed_actor([att, *att_bots], att_kind), mixed_actor([dfn, *def_bots], def_kind), keys[0],
            n_eval * len(blocks),
        )  # fmt: skip
        out = {name: summarise(games(played, i * n_eval, (i + 1) * n_eval)) for i, (name, _, _) in enumerate(blocks)}

        # Exploitability's selection games: every bot and pool slot against the final policy of the other
        # side, n_x games each (the best response is scored on as many). Batches of their own, so that
        # the games above are the same whatever the pool holds.
        kind = jnp.repeat(jnp.arange(2 * n_bots) % n_bots + 1, n_x)  # attack bots vs dfn, then defence bots vs att
        first = jnp.arange(2 * n_bots * n_x) < n_bots * n_x
        bots_played = play(
            env, env_params, mixed_actor([att, *att_bots], jnp.where(first, kind, 0)),
            mixed_actor([dfn, *def_bots], jnp.where(first, 0, kind)), keys[2], 2 * n_bots * n_x,
        )  # fmt: skip
        bot_hack = jnp.stack(
            [summarise(games(bots_played, i * n_x, (i + 1) * n_x))["hack_probability"] for i in range(2 * n_bots)]
        )
        slot_keys = jax.random.split(keys[3], 2 * config["pool_size"]).reshape(2, config["pool_size"], -1)
        pool_att_hack = jax.vmap(lambda pa, k: pair(pa, runner.dfn.params, k, n_x))(lg.att_pool.params, slot_keys[0])
        pool_def_hack = jax.vmap(lambda pd, k: pair(runner.att.params, pd, k, n_x))(lg.def_pool.params, slot_keys[1])
        always = jnp.ones((n_bots,), bool)
        # per assessed side: the responders' scores (higher: a stronger responder) and which exist
        select = {
            "defender": jnp.concatenate([bot_hack[:n_bots], pool_att_hack]),
            "attacker": 1.0 - jnp.concatenate([bot_hack[n_bots:], pool_def_hack]),
        }
        valid = {
            "defender": jnp.concatenate([always, lg.att_pool.valid]),
            "attacker": jnp.concatenate([always, lg.def_pool.valid]),
        }
        choice = {side: jnp.argmax(jnp.where(valid[side], select[side], -jnp.inf)) for side in select}
        # the chosen responders on fresh games: first the final attacker against the defender chosen to
        # respond to it, then the attacker chosen to respond to the final defender against it
        slot = {side: jnp.maximum(choice[side] - n_bots, 0) for side in choice}
        resp_kind = {side: jnp.minimum(choice[side], n_bots) + 1 for side in choice}  # a bot, or the pool member
        pool_att = policy_actor(
            env, env_params, pols["attacker"], pool_get(lg.att_pool, slot["defender"]), "attacker", masked
        )
        pool_def = policy_actor(
            env, env_params, pols["defender"], pool_get(lg.def_pool, slot["attacker"]), "defender", masked
        )
        first = jnp.arange(2 * n_x) < n_x
        fresh = play(
            env, env_params,
            mixed_actor([att, *att_bots, pool_att], jnp.where(first, 0, resp_kind["defender"])),
            mixed_actor([dfn, *def_bots, pool_def], jnp.where(first, resp_kind["attacker"], 0)),
            keys[4], 2 * n_x,
        )  # fmt: skip
        out["exploit_fresh_attacker"] = summarise(games(fresh, 0, n_x))
        out["exploit_fresh_defender"] = summarise(games(fresh, n_x, 2 * n_x))
        out["exploit_select"] = select
        out["exploit_valid"] = valid
        out["exploit_choice"] = choice
        out["payoff"], out["valid_att"], out["valid_def"] = payoff, valid_att, valid_def
        return out

    return evaluate_seed
