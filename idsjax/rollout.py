"""The one episode rollout: a batch of games, each played for exactly one episode, in one `lax.scan`.

Evaluation (`baselines.evaluation`), self-play's evaluation games, the trajectory recorder and the
renderer all play their games through `rollout`; they differ only in the environment view, the
policy, and what they keep of each step.

- `env` is anything with gymnax's `reset(key, params)` and `step(key, state, action, params) ->
  (obs, state, reward, terminated, truncated, info)`: an idsjax id (auto-reset), a wrapper of one,
  or `JointGame(env)`, any id as a two-player game without auto-reset (both ids chosen by policies,
  the state after the last step kept).
- `policy(key, obs, state) -> actions` acts for the whole batch at once (`obs`, `state` and the
  actions have a leading axis of `num_games`); `per_game` turns a one-game policy into one.
- A policy with memory (`idsjax.policies.RecurrentPolicy`, batched: `per_game` of a one-game one)
  starts every game from `init_carry(num_games)` and carries each game's memory from step to step;
  a finished game's memory is frozen with it. Each game plays one episode, so no memory crosses an
  episode's end.
- A game ends at its first terminated or truncated step. Its later steps are still computed (a scan
  has a fixed length) but they are marked invalid, count for nothing, and leave its state and
  observation as they were after its last step: a finished game is frozen.

Keys: `key` splits into a reset key and a run key; the run key into one key per step; each step's
key into the policy's key and the environment's, which splits into one key per game.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from idsjax.policies import ATTACKER, DEFENDER, RecurrentPolicy, is_recurrent, joint_step, side_observation


def episode_horizon(params) -> int:
    """The most transitions an episode can take, the step-limit one that truncates it included (spec
    Q4): gymnax's `max_steps_in_episode`, so a scan of this length finishes every game."""
    return int(params.max_steps_in_episode)


class Transition(NamedTuple):
    """One step of every game: what the policy saw and did and what the environment returned."""

    obs: Any
    state: Any
    action: Any
    reward: Any
    done: jax.Array  # terminated | truncated
    next_obs: Any  # after an auto-reset, the new game's (info["final_observation"] is the last one)
    next_state: Any
    info: dict
    valid: jax.Array  # the game was still in its episode at this step


class Episodes(NamedTuple):
    """The outcome of `rollout`, per game (leading axis `num_games`; `records`: [num_steps, num_games])."""

    length: jax.Array  # int32: valid steps (the episode's length when finished)
    finished: jax.Array  # bool: the episode ended within the scan
    totals: Any  # sum over the valid steps of `accumulate(transition)`
    outcome: Any  # `outcome(transition)` at the step that ended the episode (zeros when unfinished)
    records: Any  # `record(transition)` at every step, valid or not (None without `record`)
    initial_state: Any  # every game's state after its reset


def per_game(policy: Callable) -> Callable:
    """A one-game policy `(key, obs, state) -> id` as a batched one: one key per game, vmapped (a
    `RecurrentPolicy`: its batched form, keys split the same way)."""
    if is_recurrent(policy):
        return policy.per_game()

    def batched(key, obs, state):
        n = jax.tree.leaves(state)[0].shape[0]
        return jax.vmap(policy)(jax.random.split(key, n), obs, state)

    return batched


def _reward(t: Transition):
    return t.reward


def rollout(
    env,
    params,
    policy: Callable,
    key: jax.Array,
    num_games: int,
    *,
    num_steps: int | None = None,
    accumulate: Callable[[Transition], Any] = _reward,
    outcome: Callable[[Transition], Any] | None = None,
    record: Callable[[Transition], Any] | None = None,
) -> Episodes:
    """Play `num_games` games, one episode each, for `num_steps` steps (default: `episode_horizon`).

    Pure and traceable (jit and vmap it). See the module docstring for `env`, `policy` and the keys.
    """
    n = int(num_games)
    steps = episode_horizon(env.default_params) if num_steps is None else int(num_steps)
    if n < 1 or steps < 1:
        raise ValueError(f"num_games and num_steps must be positive, got {n} and {steps}")
    memory = is_recurrent(policy)
    if memory and not policy.batched:
        raise ValueError("rollout takes a batched policy: pass per_game(policy) for a one-game RecurrentPolicy")
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n), params)

    def act(k, obs, state, carry):
        if memory:
            return policy.step(k, obs, state, carry)
        return policy(k, obs, state), carry

    def play(state, obs, alive, k, carry) -> tuple[Transition, Any]:
        k_act, k_env = jax.random.split(k)
        action, carry = act(k_act, obs, state, carry)
        next_obs, next_state, reward, terminated, truncated, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(k_env, n), state, action, params
        )
        return Transition(obs, state, action, reward, terminated | truncated, next_obs, next_state, info, alive), carry

    def keep(t: Transition):
        return (accumulate(t), None if outcome is None else outcome(t), None if record is None else record(t))

    def where(mask, x, y):  # per-game `mask` over leaves with any trailing shape
        return jnp.where(mask.reshape(mask.shape + (1,) * (jnp.ndim(x) - 1)), x, y)

    def body(carry, k):
        state, obs, alive, length, totals, outcomes, memories = carry
        t, new_memories = play(state, obs, alive, k, memories)
        memories = jax.tree.map(lambda new, old: where(alive, new, old), new_memories, memories)
        acc, out, rec = keep(t)
        ended = alive & t.done
        totals = jax.tree.map(lambda s, x: s + where(alive, x, 0).astype(s.dtype), totals, acc)
        outcomes = jax.tree.map(lambda o, x: where(ended, x, o), outcomes, out)
        state = jax.tree.map(lambda new, old: where(alive, new, old), t.next_state, state)
        obs = jax.tree.map(lambda new, old: where(alive, new, old), t.next_obs, obs)
        return (state, obs, alive & ~t.done, length + alive, totals, outcomes, memories), rec

    alive = jnp.ones((n,), bool)
    memories = policy.init_carry(n) if memory else ()
    acc_shape, out_shape, _ = jax.eval_shape(lambda: keep(play(state, obs, alive, k_run, memories)[0]))
    zeros = lambda tree: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)  # noqa: E731
    init = (state, obs, alive, jnp.zeros((n,), jnp.int32), zeros(acc_shape), zeros(out_shape), memories)
    (_, _, alive, length, totals, outcomes, _), records = jax.lax.scan(body, init, jax.random.split(k_run, steps))
    return Episodes(length, ~alive, totals, outcomes, records, state)


class JointGame:
    """Any id as a two-player game without auto-reset: `step` takes `{"attacker": a, "defender": d}`
    (the id's own bot, if any, is not asked), returns both views as `{"attacker", "defender"}`, the
    rewards as float32[2] (attacker, defender), and keeps the state a game ends in (`joint_step`)."""

    def __init__(self, env):
        self.env = env

    @property
    def default_params(self):
        return self.env.default_params

    def _obs(self, state):
        return {
            ATTACKER: side_observation(self.env, state, ATTACKER),
            DEFENDER: side_observation(self.env, state, DEFENDER),
        }

    def reset(self, key, params):
        state = self.env.initial_state(key, params)
        return self._obs(state), state

    def step(self, key, state, action, params):
        next_state, rewards, info = joint_step(self.env, key, state, action[ATTACKER], action[DEFENDER], params)
        return self._obs(next_state), next_state, rewards, info["terminated"], info["truncated"], info


def joint_policy(choose: Callable) -> Callable:
    """`choose(key, state) -> (attack id, defense id)` for one game (`make_joint_policy_step`) as a
    batched policy of `JointGame` (a `RecurrentPolicy` over the pair: a batched one, its memories carried)."""
    if is_recurrent(choose):

        def step(key, obs, state, carry):
            (a, d), carry = choose.step(key, obs, state, carry)
            return {ATTACKER: a, DEFENDER: d}, carry

        return RecurrentPolicy(choose.initial_carry, step, choose.__name__).per_game()

    def one(key, obs, state):
        a, d = choose(key, state)
        return {ATTACKER: a, DEFENDER: d}

    return per_game(one)


__all__ = ["Episodes", "JointGame", "Transition", "episode_horizon", "joint_policy", "per_game", "rollout"]
