"""Best responses to a frozen self-play policy: a single-agent view of a two-agent id with the other
side played by the frozen policy, and `baselines.ppo`'s trainer on it, trained (by default) for as
many steps as the policy it attacks and evaluated both greedily and sampled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from baselines import ppo
from baselines.evaluation import evaluate
from baselines.selfplay.policies import Policy
from baselines.trainer import plan_updates


@struct.dataclass
class FrozenParams:
    inner: Any
    opponent: Any


# A frozen opponent as one game's actor: `(key, obs, state, opponent_params, env_params) -> id`.
# Its parameters ride in the env params (`FrozenParams.opponent`), so per-seed opponents vmap.
OpponentAct = Callable[[jax.Array, jax.Array, Any, Any, Any], jax.Array]


def network_opponent(env, side: str, policy: Policy, masked: bool) -> OpponentAct:
    """A frozen self-play network playing `side` (the opponent of the best response): it samples its
    policy on its own observation, masked as it was trained."""

    def act(key, obs, state, opponent_params, env_params):
        mask = None
        if masked:
            mask = (env.defense_mask if side == "defender" else env.attack_mask)(state, env_params)[None]
        d, _ = policy.dist(opponent_params, obs[None], mask)
        return d.sample(seed=key)[0]

    return act


def bot_opponent(env, name: str) -> OpponentAct:
    """A scripted bot of `idsjax.bots` as the frozen opponent (it reads the state, as in the game);
    its "parameters" are a placeholder, one per seed."""
    from idsjax.bots import BOTS

    if name not in BOTS:
        raise ValueError(f"unknown bot {name!r}: one of {', '.join(BOTS)}")

    def act(key, obs, state, opponent_params, env_params):
        del obs, opponent_params
        return env.bot_action(name, key, state, env_params)

    return act


class FrozenOpponentEnv:
    """A single-agent view of a two-agent id: the learner plays `side`, the other side is a frozen
    opponent (`network_opponent` or `bot_opponent`) whose parameters live in the env params (so
    per-seed opponents vmap). It has what `baselines.evaluation` and `baselines.ppo` use of an
    environment: reset, step (auto-reset, info with `final_observation`, `hacked`, both rewards),
    `legal_action_mask`, `action_space`, `default_params`."""

    def __init__(self, env, side: str, opponent: OpponentAct):
        self.env, self.side, self.opponent = env, side, opponent
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
        other = self.opponent(k_opp, obs, state, params.opponent, params.inner)
        joint = {self.side: jnp.asarray(action, jnp.int32), self.other: jnp.asarray(other, jnp.int32)}
        obs, state, reward, term, trunc, info = self.env.step(k_env, state, joint, params.inner)
        info = {**info, "final_observation": info["final_observation"][self.side]}
        return obs[self.side], state, reward[self.side], term, trunc, info


def best_response_steps(config: dict) -> int:
    """Steps per seed of each best response: `--br-timesteps`, or (-1) as many as the policy it attacks."""
    return config["total_timesteps"] if config["br_timesteps"] < 0 else config["br_timesteps"]


class BestResponse(NamedTuple):
    """Programs over seeds (each seed's best response attacks that seed's frozen policy):
    `init(keys, opp) -> runner`, `chunk(runner, opp, n_active) -> (runner, metrics, finite)` and
    `evaluate(runner, opp, keys) -> {"greedy": ..., "sampled": ...}` (evaluation summaries)."""

    init: Callable
    chunk: Callable
    evaluate: Callable
    num_updates: int
    k_chunk: int
    steps_per_update: int


def make_best_response(
    config: dict, env, env_params, pols, side: str, opponent: OpponentAct | None = None
) -> BestResponse:
    """A fresh PPO `side` (baselines.ppo's trainer) trained against the other side's frozen policy
    (`opponent`; by default the self-play network `pols[other]`, whose parameters are passed to the
    programs) for `best_response_steps(config)` steps, then evaluated greedily and sampled on
    `br_eval_episodes` games each (`greedy`, `sampled`) and on as many fresh games each
    (`greedy_fresh`, `sampled_fresh`: what exploitability reports once the first ones chose)."""
    from baselines.host_loop import make_chunk

    other = "defender" if side == "attacker" else "attacker"
    masked = config["mask_illegal"]
    if opponent is None:
        opponent = network_opponent(env, other, pols[other], masked)
    wenv = FrozenOpponentEnv(env, side, opponent)
    br_config = {**config, "total_timesteps": best_response_steps(config), "chunks": 20}

    def trainer(opp, greedy=False):
        return ppo.make_train({**br_config, "eval_greedy": greedy}, wenv, FrozenParams(env_params, opp))

    spu = config["num_envs"] * config["num_steps"]
    num_updates, k_chunk = plan_updates(br_config, spu)

    def chunk(runner, opp, n_active):
        return make_chunk(trainer(opp), k_chunk)[0](runner, n_active)

    def evaluate_both(runner, opp, key):
        wparams = FrozenParams(env_params, opp)
        k_greedy, k_sampled = jax.random.split(key)
        n = config["br_eval_episodes"]
        played = {
            "greedy": evaluate(wenv, wparams, trainer(opp, True).act, runner, k_greedy, n, masked),
            "sampled": evaluate(wenv, wparams, trainer(opp, False).act, runner, k_sampled, n, masked),
        }
        # as many fresh games of each, apart from the ones exploitability selects its responder on (the
        # first ones keep their keys: the calibration figures published from them stay the same)
        k_greedy, k_sampled = jax.random.split(jax.random.fold_in(key, 0xF2E5))
        played["greedy_fresh"] = evaluate(wenv, wparams, trainer(opp, True).act, runner, k_greedy, n, masked)
        played["sampled_fresh"] = evaluate(wenv, wparams, trainer(opp, False).act, runner, k_sampled, n, masked)
        return played

    return BestResponse(
        init=jax.jit(jax.vmap(lambda key, opp: trainer(opp).init(key))),
        chunk=jax.jit(jax.vmap(chunk, in_axes=(0, 0, None))),
        evaluate=jax.jit(jax.vmap(evaluate_both)),
        num_updates=num_updates,
        k_chunk=k_chunk,
        steps_per_update=spu,
    )
