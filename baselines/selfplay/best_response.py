"""Best responses to a frozen self-play policy: a single-agent view of a two-agent id with the other
side played by the frozen policy, and `baselines.ppo`'s trainer on it."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from baselines import ppo
from baselines.evaluation import evaluate
from baselines.selfplay.policies import Policy

@struct.dataclass
class FrozenParams:
    inner: Any
    opponent: Any


class FrozenOpponentEnv:
    """A single-agent view of a two-agent id: the learner plays `side`, the other side is a frozen
    policy whose parameters live in the env params (so per-seed opponents vmap). It has what
    `baselines.evaluation` and `baselines.ppo` use of an environment: reset, step (auto-reset, info with
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
    ev = evaluate(wenv, wparams, trainer.act, runner, k_eval, config["eval_episodes"], config["mask_illegal"])
    return {"hack_probability": ev["hack_probability"], "attacker_return": ev["attacker_return"],
            "defender_return": ev["defender_return"]}
