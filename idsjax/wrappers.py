"""Adapters for learners written against other conventions than gymnax 1.0's.

rejax (and other code written for gymnax 0.x) unpacks five values from `step`:

    import jax, rejax, idsjax
    from idsjax.wrappers import LegacyStepAPI

    env, params = idsjax.make("idsgame-random_defense-v0")
    dqn = rejax.DQN.create(env=LegacyStepAPI(env), env_params=params, total_timesteps=20_000)
    train_state, (episode_lengths, returns) = jax.jit(dqn.train)(jax.random.PRNGKey(0))

Learners that take legal-action masks read them from `info["legal_action_mask"]` (every idsjax `step`
provides it) or, with `ActionMaskObservation`, from the observation:
`{"observation": obs, "action_mask": mask}`, the convention of PettingZoo and Jumanji. Both compose:
`LegacyStepAPI(ActionMaskObservation(env))` steps with gymnax 0.x's API and a dict observation, for
learners that read masks. rejax is not one: its algorithms read `observation_space(...).shape`, which
a `Dict` space has not ('Dict' object has no attribute 'shape'), so with rejax use
`LegacyStepAPI(env)` (flat observations) only. rejax's learners do not mask actions: an illegal id
costs the attacker a move (spec §4.3), and they learn to avoid those ids from the reward
(`examples/rejax_ppo.py` trains rejax's PPO so).

The wrappers are pure and jittable like the environment; unlike gymnax's own `GymnaxWrapper`, they
can be deep-copied into an independent object (rejax and gymnax's Gym wrappers copy the environment
they are given, and gymnax's vector wrapper then replaces `reset` and `step` on its copy), and two
wrappers of equal environments are equal, so jit compiles them once.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

OBSERVATION, ACTION_MASK = "observation", "action_mask"


class Wrapper:
    """Forwards every attribute it does not define to the wrapped environment `env`."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        # Called only for attributes not found normally. `copy` and `pickle` look up dunders on an
        # instance whose `_env` is not set yet: forwarding those would recurse forever.
        if name == "_env" or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self._env, name)

    def __deepcopy__(self, memo) -> Wrapper:
        # A real copy: gymnax's Gym wrappers deep-copy the environment they are given and then assign
        # vmapped `reset` and `step` on the copy, which must not reach the caller's object. The wrapped
        # environment is copied too (environments compare by value, so the copy is equal to it and
        # jit, which keys static arguments by equality, still compiles one program for both).
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        copied.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return copied

    def __hash__(self) -> int:
        return hash((type(self), self._env))

    def __eq__(self, other: Any) -> bool:
        # All instance attributes, not just `_env`: a copy whose `step` was replaced (as gymnax's
        # vector wrapper does) computes something else and must not share the original's jit cache.
        return type(other) is type(self) and vars(other) == vars(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._env!r})"

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)


class LegacyStepAPI(Wrapper):
    """gymnax 0.x's `step -> (obs, state, reward, done, info)` with `done = terminated | truncated`.

    `info` keeps `terminated`, `truncated` and `discount`, so a learner that bootstraps through the
    step limit can still tell the two apart. `reset` is unchanged.
    """

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params=None):
        return self._env.reset(key, params)

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        return obs, state, reward, terminated | truncated, info


class ObservationWrapper(Wrapper):
    """A wrapper that changes what the learner observes: `observe(obs, state, params)` maps the wrapped
    environment's observation of `state` to this one's. `reset` applies it; each subclass's `step` says
    what its `final_observation` needs."""

    def observe(self, obs, state, params):
        raise NotImplementedError

    @partial(jax.jit, static_argnames=("self",))
    def reset(self, key: jax.Array, params=None):
        params = self._env.default_params if params is None else params
        obs, state = self._env.reset(key, params)
        return self.observe(obs, state, params), state


class ActionMaskObservation(ObservationWrapper):
    """The observation as `{"observation": obs, "action_mask": mask}`: `mask` is the learner's legal
    ids in the observed state (int8 0/1, as gymnasium and PettingZoo give masks; two-agent ids: a dict
    of both players' masks). The observation
    space is a `Dict` with a `{0, 1}` box for the mask; `info["final_observation"]` carries a mask
    too (see `step`).
    """

    def observe(self, obs, state, params) -> dict:
        return {OBSERVATION: obs, ACTION_MASK: _as_int8(self._env.legal_action_mask(state, params))}

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state, action, params=None):
        params = self._env.default_params if params is None else params
        obs, next_state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        mask = info["legal_action_mask"]
        # The mask of the game `final_observation` shows. A game that goes on: the returned one. The
        # step-limit transition changes nothing (spec Q4), so its game's mask is the pre-step one,
        # what a learner bootstrapping through truncation needs. After a hack or detection no
        # action follows: nothing is legal.
        before = self._env.legal_action_mask(state, params)
        final_mask = jax.tree.map(
            lambda now, pre: jnp.where(terminated, False, jnp.where(truncated, pre, now)), mask, before
        )
        final = {OBSERVATION: info["final_observation"], ACTION_MASK: _as_int8(final_mask)}
        info = {**info, "final_observation": final}
        return {OBSERVATION: obs, ACTION_MASK: _as_int8(mask)}, next_state, reward, terminated, truncated, info

    def observation_space(self, params=None):
        inner = self._env.observation_space(params)
        n = self._env.action_space(params)
        if isinstance(n, spaces.Dict):
            mask = spaces.Dict({k: _mask_box(v.n) for k, v in n.spaces.items()})
        else:
            mask = _mask_box(n.n)
        return spaces.Dict({OBSERVATION: inner, ACTION_MASK: mask})


def _as_int8(mask):
    return jax.tree.map(lambda m: m.astype(jnp.int8), mask)


def _mask_box(n: int) -> spaces.Box:
    return spaces.Box(jnp.asarray(0, jnp.int8), jnp.asarray(1, jnp.int8), (int(n),), jnp.dtype("int8"))


__all__ = ["ACTION_MASK", "OBSERVATION", "ActionMaskObservation", "LegacyStepAPI", "ObservationWrapper", "Wrapper"]
