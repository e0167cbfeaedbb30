"""The trainers' side of the environments: vectorised reset and step with running episode returns,
the learner's legal-action mask, and the statistics of the episodes that finished in a rollout."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class EpisodeTracker(NamedTuple):
    """Running returns of the episodes in progress, one per environment."""

    learner: jax.Array
    attacker: jax.Array
    defender: jax.Array

    @staticmethod
    def zeros(n: int) -> EpisodeTracker:
        z = jnp.zeros((n,), jnp.float32)
        return EpisodeTracker(z, z, z)


class EnvCarry(NamedTuple):
    state: Any
    obs: jax.Array
    tracker: EpisodeTracker


class Step(NamedTuple):
    """One vectorised environment step, as the learners need it, plus the finished-episode stats."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    done: jax.Array  # terminated or truncated: both end the game (the truncation pays -100, Q4)
    next_obs: jax.Array  # the observation after the step (the final one when done)
    mask: jax.Array | None
    next_mask: jax.Array | None  # legal ids after the step (the fresh game's after a reset: never bootstrapped)
    finished: jax.Array
    hacked: jax.Array
    ep_return: jax.Array  # learner's return of the episode finished here (0 elsewhere)
    ep_attacker: jax.Array
    ep_defender: jax.Array


def reset_envs(env, env_params, key: jax.Array, n: int) -> EnvCarry:
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, n), env_params)
    return EnvCarry(state, obs, EpisodeTracker.zeros(n))


def legal_mask(env, env_params, carry: EnvCarry, enabled: bool):
    if not enabled:
        return None
    return jax.vmap(env.legal_action_mask, in_axes=(0, None))(carry.state, env_params)


def step_envs(env, env_params, carry: EnvCarry, action: jax.Array, key: jax.Array, mask=None):
    """Step every environment (auto-reset) and update the running episode returns."""
    n = action.shape[0]
    obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
        jax.random.split(key, n), carry.state, action, env_params
    )
    done = term | trunc
    # The successor's legal ids, for targets that bootstrap over them (the post-reset state's when
    # `done`, where nothing is bootstrapped).
    next_mask = None if mask is None else jax.vmap(env.legal_action_mask, in_axes=(0, None))(state, env_params)
    t = carry.tracker
    ret = EpisodeTracker(t.learner + reward, t.attacker + info["attacker_reward"], t.defender + info["defender_reward"])
    step = Step(
        obs=carry.obs,
        action=action,
        reward=reward,
        done=done,
        next_obs=info["final_observation"],
        mask=mask,
        next_mask=next_mask,
        finished=done,
        hacked=info["hacked"] & done,
        ep_return=jnp.where(done, ret.learner, 0.0),
        ep_attacker=jnp.where(done, ret.attacker, 0.0),
        ep_defender=jnp.where(done, ret.defender, 0.0),
    )
    ret = jax.tree.map(lambda x: jnp.where(done, 0.0, x), ret)
    return EnvCarry(state, obs, EpisodeTracker(*ret)), step


def episode_metrics(steps: Step) -> dict:
    """Training statistics of the episodes that finished in a batch of steps (any leading shape)."""
    finished = steps.finished.sum()
    denom = jnp.maximum(finished, 1)
    nan = jnp.float32(jnp.nan)
    some = finished > 0
    return {
        "episodes": finished.astype(jnp.int32),
        "hack_probability": jnp.where(some, steps.hacked.sum() / denom, nan),
        "return": jnp.where(some, steps.ep_return.sum() / denom, nan),
        "attacker_return": jnp.where(some, steps.ep_attacker.sum() / denom, nan),
        "defender_return": jnp.where(some, steps.ep_defender.sum() / denom, nan),
    }
