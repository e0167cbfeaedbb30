"""Probe environments with known answers for the trainers' tests (gymnax environments)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


@struct.dataclass
class ProbeState:
    position: jax.Array
    time: jax.Array


@struct.dataclass
class ProbeParams:
    max_steps_in_episode: int = 4


class ProbeEnv(environment.Environment):
    """A chain of `length` states, 2 actions, int8 one-hot observations of the position.

    Action 0 moves on (reward 0) except in the last state, where action 1 "hacks" (+1, the episode
    ends) and action 0 fails (-1, the episode ends); action 1 before the last state also fails.
    `length = 1` is a 2-action bandit; `length = 2` needs the observation and credit assignment one
    step back. The answer: hack probability 1.
    """

    def __init__(self, length: int):
        super().__init__()
        self.length = length

    @property
    def default_params(self):
        return ProbeParams()

    def _obs(self, position):
        return (jnp.arange(self.length) == position).astype(jnp.int8)[:, None]

    def reset_env(self, key, params):
        state = ProbeState(jnp.int32(0), jnp.int32(0))
        return self._obs(state.position), state

    def step_env(self, key, state, action, params):
        last = state.position == self.length - 1
        hacked = last & (action == 1)
        failed = (action == 1) != last
        reward = jnp.where(hacked, 1.0, jnp.where(failed & (last | (action == 1)), -1.0, 0.0)).astype(jnp.float32)
        position = jnp.where(hacked | failed, state.position, state.position + 1)
        state = ProbeState(position, state.time + 1)
        info = {"hacked": hacked, "detected": failed, "attacker_reward": reward, "defender_reward": -reward}
        return self._obs(position), state, reward, hacked | failed, info

    def is_truncated(self, state, params):
        return jnp.bool_(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0, 1, (self.length, 1), jnp.int8)

    def legal_action_mask(self, state, params):
        return jnp.ones((2,), bool)


@struct.dataclass
class LoopState:
    time: jax.Array


class LoopEnv(environment.Environment):
    """One state, two ids: id 0 (legal) pays -1 and stays, id 1 is illegal (never legal, never
    taken by a masked learner). Nothing ends an episode (a long horizon). With discount gamma,
    Q(s, 0) = -1 / (1 - gamma); a target that bootstraps over the illegal id, whose value is never
    trained (it stays at its initial value, near 0), would see -1 instead."""

    @property
    def default_params(self):
        return ProbeParams(max_steps_in_episode=10_000)

    def reset_env(self, key, params):
        return jnp.zeros((1, 1), jnp.int8), LoopState(jnp.int32(0))

    def step_env(self, key, state, action, params):
        reward = jnp.float32(-1.0)
        false = jnp.bool_(False)
        info = {"hacked": false, "detected": false, "attacker_reward": reward, "defender_reward": -reward}
        return jnp.zeros((1, 1), jnp.int8), LoopState(state.time + 1), reward, false, info

    def is_truncated(self, state, params):
        return jnp.bool_(False)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0, 1, (1, 1), jnp.int8)

    def legal_action_mask(self, state, params):
        return jnp.array([True, False])
