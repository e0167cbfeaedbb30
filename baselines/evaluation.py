"""Evaluation of a trained policy: fresh games, one episode each, through `idsjax.rollout`."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.policies import RecurrentPolicy
from idsjax.rollout import Transition, rollout


def learner_mask(env, env_params, state, enabled: bool):
    """The learner's legal ids in a batch of states, or None (every id possible)."""
    if not enabled:
        return None
    return jax.vmap(env.legal_action_mask, in_axes=(0, None))(state, env_params)


def _returns(t: Transition):
    return {
        "return": t.reward,
        "attacker_return": t.info["attacker_reward"],
        "defender_return": t.info["defender_reward"],
    }


def summarise(episodes) -> dict:
    """Means over the finished games of a rollout accumulated with `_returns` and `info["hacked"]`."""
    finished = episodes.finished
    count = finished.sum()
    denom = jnp.maximum(count, 1)
    out = {"episodes": count, "hack_probability": (episodes.outcome & finished).sum() / denom}
    for name, total in episodes.totals.items():
        out[name] = jnp.where(finished, total, 0.0).sum() / denom
    return out


def as_rollout_policy(env, env_params, act, runner, masked: bool):
    """The trainer's `act` as `idsjax.rollout`'s batched policy: `(key, obs, state) -> ids`, or for a
    policy with memory (`baselines.recurrent.RecurrentAct`, which has `init_carry`) a batched
    `RecurrentPolicy` whose memory starts fresh in every game. The whole batch acts on one key, as in
    training."""
    if hasattr(act, "init_carry"):

        def step(k, obs, state, carry):
            return act.step(runner, obs, learner_mask(env, env_params, state, masked), k, carry)

        one_game = jax.tree.map(lambda x: x[0], act.init_carry(runner, 1))
        return RecurrentPolicy(one_game, step, "trained", batched=True)

    def policy(k, obs, state):
        return act(runner, obs, learner_mask(env, env_params, state, masked), k)

    return policy


def evaluate(env, env_params, act, runner, key: jax.Array, num_episodes: int, masked: bool) -> dict:
    """Play `num_episodes` games in parallel, one episode each, with the trained policy
    `act(runner, obs, mask, key)`: episodes, hack probability and mean returns (learner, attacker,
    defender) over the finished games."""

    policy = as_rollout_policy(env, env_params, act, runner, masked)
    episodes = rollout(
        env, env_params, policy, key, num_episodes, accumulate=_returns, outcome=lambda t: t.info["hacked"]
    )
    out = summarise(episodes)
    return {k: out[k] for k in ("episodes", "hack_probability", "return", "attacker_return", "defender_return")}
