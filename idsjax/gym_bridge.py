"""Gymnasium interfaces for the 88 single-agent ids.

    import gymnasium, idsjax.gym_bridge
    env = gymnasium.make("idsjax/idsgame-minimal_defense-v3")          # registered on import
    env = gymnasium.make("idsjax.gym_bridge:idsjax/idsgame-random_attack-v4")  # no import needed
    envs = idsjax.gym_bridge.IdsGameVectorEnv("idsgame-minimal_defense-v3", num_envs=1024)

`IdsGameGymEnv` (a `gymnasium.Env`) plays one game; every call is one jitted JAX call, shared by all
bridges of the same id. Any game that is not a registered id is bridged the same way, given as the pair
that made it: `IdsGameGymEnv(game=idsjax.make_scenario("net.yaml", mode="minimal_defense"))`, or
`game=idsjax.make_generated("small", mode="random_defense")` (a new network every game). Semantics:

- **No auto-reset.** Gymnasium's single-env contract: after `terminated` (hacked or detected) or
  `truncated` (the step-limit transition, the `max_steps_in_episode`-th: 102 by default, 101 moves
  and then the call paying -100 to both players, spec Q4) call `reset()`. Stepping on regardless is allowed and follows the reference (the game keeps
  simulating), but is not meaningful.
- `reset(seed=s)` seeds the game's randomness (bots, detection draws, randomised layouts) so that
  equal seeds replay equal games; `instance_seed` (constructor) picks the construction-time instance,
  as `idsjax.make(env_id, seed=instance_seed)`.
- Observations are the learner's view, `int8` NumPy arrays inside the declared `Box`; actions are
  `Discrete` global ids (illegal ids are legal inputs that the game punishes, as in the reference).
- `info`: `action_mask` (int8 0/1 as `Discrete.sample(mask=...)` wants: the learner's legal ids for
  the *next* step), `hacked`, `detected`, `attack_action`, `defense_action`, `attacker_reward`,
  `defender_reward`, `timed_out`, `moved`, `attack_legal`.
- `render_mode="rgb_array"`: `render()` returns `idsjax.frames.render_frame` of the current state
  (`render_view` picks "full", "attacker" or "defender"), with the running hack probability.

`IdsGameVectorEnv` (a `gymnasium.vector.VectorEnv`) steps a whole batch in one jitted, `vmap`ped call.
Its auto-reset follows `autoreset_mode` (also in `metadata["autoreset_mode"]`):

- `AutoresetMode.NEXT_STEP` (the default, gymnasium's default, which its vector wrappers such as
  `RecordEpisodeStatistics` assume): a finished game returns its last observation; the next `step`
  resets it, ignoring its action, and returns the new game's first observation with reward 0 and
  neither flag set.
- `AutoresetMode.SAME_STEP`: the returned observation of a finished game is the next game's first
  one; the finished game's last observation is in `info["final_obs"]` (object array, Gymnasium's
  convention, mask `info["_final_obs"]`) and, batched, in `info["final_observation"]`.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium import spaces as gspaces
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from idsjax.gym_registration import GYM_IDS, gym_id, register_all, single_agent_ids
from idsjax.registry import one_game

try:  # gymnasium >= 1.1
    from gymnasium.vector import AutoresetMode

    SAME_STEP, NEXT_STEP = AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP
except ImportError:  # pragma: no cover - gymnasium 1.0 names the modes with strings
    SAME_STEP, NEXT_STEP = "same-step", "next-step"


def to_gym_space(space) -> gymnasium.Space:
    """A gymnax space of idsjax (Discrete, Box or Dict of those) as a gymnasium space with NumPy dtypes."""
    name = type(space).__name__
    if name == "Discrete":
        return gspaces.Discrete(int(space.n))
    if name == "Box":
        low, high = np.asarray(space.low), np.asarray(space.high)
        dtype = np.dtype(space.dtype)
        if low.ndim == 0 and high.ndim == 0:
            return gspaces.Box(
                low=low.astype(dtype).item(), high=high.astype(dtype).item(), shape=tuple(space.shape), dtype=dtype
            )
        return gspaces.Box(
            low=np.broadcast_to(low, space.shape).astype(dtype),
            high=np.broadcast_to(high, space.shape).astype(dtype),
            dtype=dtype,
        )
    if name == "Dict":
        return gspaces.Dict({k: to_gym_space(v) for k, v in space.spaces.items()})
    raise TypeError(f"cannot convert {space!r}")


DEFAULT_ID = "idsgame-minimal_defense-v3"


class _Compiled:
    """The jitted functions of one environment (shared by all bridges of that id); `jit=False` runs
    them op by op (no compilation: quicker for a handful of steps, slower for many)."""

    def __init__(self, env, jit: bool = True):
        self.env = env

        def reset(key, params):
            state = env.initial_state(key, params)
            return env.get_obs(state, params), state, env.legal_action_mask(state, params)

        def step(key, state, action, params):
            obs, next_state, reward, terminated, info = env.step_env(key, state, action, params)
            truncated = env.is_truncated(next_state, params)
            mask = env.legal_action_mask(next_state, params)
            return obs, next_state, reward, terminated, truncated, info, mask

        def vstep(keys, states, actions, params):
            obs, next_states, reward, terminated, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                keys, states, actions, params
            )
            truncated = next_states.timed_out
            done = terminated | truncated
            reset_obs, reset_states, _ = jax.vmap(reset, in_axes=(0, None))(
                jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), params
            )
            pick = lambda r, s: jnp.where(done.reshape(done.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
            states_out = jax.tree.map(pick, reset_states, next_states)
            obs_out = pick(reset_obs, obs)
            masks = jax.vmap(env.legal_action_mask, in_axes=(0, None))(states_out, params)
            return obs_out, states_out, reward, terminated, truncated, info, obs, masks

        def vstep_next(keys, states, actions, params, resetting):
            """NEXT_STEP: the games in `resetting` (they finished on the previous call) start anew
            instead of stepping: reward 0, no flags, the info of a step in which nothing happened."""
            obs, next_states, reward, terminated, info = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))(
                keys, states, actions, params
            )
            truncated = next_states.timed_out
            reset_obs, reset_states, _ = jax.vmap(reset, in_axes=(0, None))(
                jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys), params
            )
            pick = lambda r, s: jnp.where(resetting.reshape(resetting.shape + (1,) * (s.ndim - 1)), r, s)  # noqa: E731
            states_out = jax.tree.map(pick, reset_states, next_states)
            obs_out = pick(reset_obs, obs)
            info = jax.tree.map(lambda x: jnp.where(resetting, jnp.zeros_like(x), x), info)
            reward = jnp.where(resetting, 0.0, reward)
            terminated, truncated = terminated & ~resetting, truncated & ~resetting
            masks = jax.vmap(env.legal_action_mask, in_axes=(0, None))(states_out, params)
            return obs_out, states_out, reward, terminated, truncated, info, masks

        wrap = jax.jit if jit else (lambda f: f)
        self.reset = wrap(reset)
        self.step = wrap(step)
        self.vreset = wrap(jax.vmap(reset, in_axes=(0, None)))
        self.vstep = wrap(vstep)
        self.vstep_next = wrap(vstep_next)


@functools.cache
def _compiled(env, jit: bool = True) -> _Compiled:
    return _Compiled(env, jit)


def _host_info(info: dict, mask) -> dict[str, Any]:
    keys = (
        "hacked",
        "detected",
        "attack_action",
        "defense_action",
        "attacker_reward",
        "defender_reward",
        "timed_out",
        "moved",
        "attack_legal",
    )
    out = {k: np.asarray(info[k]) for k in keys if k in info}
    out["action_mask"] = np.asarray(mask).astype(np.int8)
    return out


class IdsGameGymEnv(gymnasium.Env):
    """One single-agent idsjax game as a `gymnasium.Env` (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        env_id: str | None = None,
        instance_seed: int = 0,
        render_mode: str | None = None,
        render_view: str = "full",
        jit: bool = True,
        *,
        game: tuple | None = None,
    ):
        env, params, env_id = one_game(env_id, instance_seed, game, DEFAULT_ID)
        if env.learner == "both":
            raise ValueError(
                f"{env_id} is a two-agent id: use idsjax.pettingzoo_bridge.IdsGameParallelEnv, or a "
                "single-agent id idsgame-<mode>-vN with mode random_defense, minimal_defense, "
                "random_attack or maximal_attack"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.env_id, self.jax_env, self.params = env_id, env, params
        self.render_mode, self.render_view = render_mode, render_view
        self.observation_space = to_gym_space(env.observation_space(params))
        self.action_space = to_gym_space(env.action_space(params))
        self._fns = _compiled(env, bool(jit))
        self._key = None
        self._state = None
        self._last_action = None
        self._attack_from = None
        self._games = self._hacks = 0

    # -- gymnasium API -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = jax.random.PRNGKey(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k_reset = jax.random.split(self._key)
        obs, self._state, mask = self._fns.reset(k_reset, self.params)
        self._last_action = None
        return np.asarray(obs), {"action_mask": np.asarray(mask).astype(np.int8)}

    def step(self, action):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        self._key, k_step = jax.random.split(self._key)
        self._attack_from = int(self._state.position)
        action = jnp.int32(int(np.asarray(action).reshape(())))
        obs, self._state, reward, terminated, truncated, info, mask = self._fns.step(
            k_step, self._state, action, self.params
        )
        info = _host_info(info, mask)
        self._last_action = (int(info["attack_action"]), int(info["defense_action"]))
        terminated, truncated = bool(terminated), bool(truncated)
        if terminated or truncated:
            self._games += 1
            self._hacks += int(info["hacked"])
        return np.asarray(obs), float(reward), terminated, truncated, info

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without render_mode; use render_mode='rgb_array'")
            return None
        if self._state is None:
            raise RuntimeError("call reset() before render()")
        from idsjax.frames import render_frame

        return render_frame(
            self.jax_env,
            self._state,
            self.params,
            view=self.render_view,
            last_action=self._last_action,
            attack_from=self._attack_from,
            hack_probability=self._hacks / self._games if self._games else 0.0,
        )

    # -- extras ------------------------------------------------------------------------------------
    @property
    def state(self):
        """The current `EnvState` (JAX arrays)."""
        return self._state

    def action_masks(self) -> np.ndarray:
        """The learner's legal ids now (the interface of sb3-contrib's MaskablePPO)."""
        return np.asarray(self.jax_env.legal_action_mask(self._state, self.params))


def _autoreset_mode(mode):
    """NEXT_STEP or SAME_STEP from the mode or a spelling of its name ("next-step", "NextStep", ...)."""

    def key(m):
        return str(getattr(m, "value", m)).lower().replace("-", "").replace("_", "")

    modes = {key(m): m for m in (NEXT_STEP, SAME_STEP)}
    if key(mode) not in modes:
        raise ValueError(f"autoreset_mode must be next-step or same-step, got {mode!r}")
    return modes[key(mode)]


class IdsGameVectorEnv(VectorEnv):
    """`num_envs` games of one single-agent id, stepped together in one jitted call (see the module
    docstring for the two auto-reset modes; `autoreset_mode` takes an `AutoresetMode` or a name such
    as "next-step" or "SameStep")."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": NEXT_STEP}

    def __init__(
        self,
        env_id: str | None = None,
        num_envs: int = 8,
        instance_seed: int = 0,
        render_mode: str | None = None,
        render_view: str = "full",
        autoreset_mode=NEXT_STEP,
        *,
        game: tuple | None = None,
    ):
        mode = _autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        env, params, env_id = one_game(env_id, instance_seed, game, DEFAULT_ID)
        if env.learner == "both":
            raise ValueError(f"{env_id} is a two-agent id; IdsGameVectorEnv takes single-agent ids")
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.env_id, self.jax_env, self.params = env_id, env, params
        self.num_envs = int(num_envs)
        self.render_mode, self.render_view = render_mode, render_view
        self.single_observation_space = to_gym_space(env.observation_space(params))
        self.single_action_space = to_gym_space(env.action_space(params))
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._fns = _compiled(env)
        self._key = None
        self._states = None
        self._resetting = np.zeros(self.num_envs, bool)  # NEXT_STEP: games that ended on the last call

    @property
    def autoreset_mode(self):
        return self.metadata["autoreset_mode"]

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        if isinstance(seed, (list, tuple)):
            seed = int(seed[0]) if seed and seed[0] is not None else None
        super().reset(seed=seed)
        if seed is not None or self._key is None:
            self._key = jax.random.PRNGKey(int(self.np_random.integers(0, 2**31 - 1)))
        self._key, k_reset = jax.random.split(self._key)
        obs, self._states, masks = self._fns.vreset(jax.random.split(k_reset, self.num_envs), self.params)
        self._resetting = np.zeros(self.num_envs, bool)
        return np.asarray(obs), {"action_mask": np.asarray(masks).astype(np.int8)}

    def step(self, actions):
        if self._states is None:
            raise RuntimeError("call reset() before step()")
        self._key, k_step = jax.random.split(self._key)
        actions = jnp.asarray(np.asarray(actions), jnp.int32).reshape(self.num_envs)
        if self.autoreset_mode == NEXT_STEP:
            obs, self._states, reward, terminated, truncated, info, masks = self._fns.vstep_next(
                jax.random.split(k_step, self.num_envs),
                self._states,
                actions,
                self.params,
                jnp.asarray(self._resetting),
            )
            terminated, truncated = np.asarray(terminated), np.asarray(truncated)
            self._resetting = terminated | truncated
            return np.asarray(obs), np.asarray(reward, np.float32), terminated, truncated, _host_info(info, masks)
        obs, self._states, reward, terminated, truncated, info, final_obs, masks = self._fns.vstep(
            jax.random.split(k_step, self.num_envs), self._states, actions, self.params
        )
        terminated, truncated = np.asarray(terminated), np.asarray(truncated)
        done = terminated | truncated
        infos = _host_info(info, masks)
        final = np.asarray(final_obs)
        infos["final_observation"] = final
        if done.any():
            boxed = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done):
                boxed[i] = final[i]
            infos["final_obs"] = boxed
            infos["_final_obs"] = done.copy()
        return np.asarray(obs), np.asarray(reward, np.float32), terminated, truncated, infos

    def render(self):
        if self.render_mode is None or self._states is None:
            return None
        from idsjax.frames import render_frame

        return tuple(
            render_frame(
                self.jax_env, jax.tree.map(lambda x, i=i: x[i], self._states), self.params, view=self.render_view
            )
            for i in range(self.num_envs)
        )


__all__ = [
    "GYM_IDS",
    "IdsGameGymEnv",
    "IdsGameVectorEnv",
    "gym_id",
    "register_all",
    "single_agent_ids",
    "to_gym_space",
]
