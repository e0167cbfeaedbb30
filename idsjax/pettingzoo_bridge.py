"""A PettingZoo `ParallelEnv` for the 22 two-agent ids `idsgame-vN`.

    from idsjax.pettingzoo_bridge import IdsGameParallelEnv, parallel_env
    env = parallel_env("idsgame-v3")
    obs, infos = env.reset(seed=0)
    while env.agents:
        actions = {agent: env.action_space(agent).sample(infos[agent]["action_mask"]) for agent in env.agents}
        obs, rewards, terminations, truncations, infos = env.step(actions)

Agents `"attacker"` and `"defender"` move simultaneously; each observes its own view (spec §6) as an
`int8` array and acts with a `Discrete` global id. One game per `reset`: when the attacker hacks the
data node or is detected both agents terminate; at the step-limit transition, the
`max_steps_in_episode`-th (102 by default: 101 moves, then the call paying -100 to both, spec Q4),
both are truncated; then `agents` is empty until the next `reset`.
Each `infos[agent]` carries that agent's `action_mask` for the next step and the step's `hacked`,
`detected`, `attack_action`, `defense_action`. Every call is one jitted JAX call, shared per id.
A scenario or generated family in the two-agent mode is bridged the same way, given as the pair that
made it: `IdsGameParallelEnv(game=idsjax.make_scenario("net.yaml", mode=""))`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from pettingzoo import ParallelEnv

from idsjax.gym_bridge import to_gym_space
from idsjax.registry import one_game, registered_envs

AGENTS = ("attacker", "defender")


def two_agent_ids() -> tuple[str, ...]:
    """The 22 two-agent ids, `idsgame-vN`."""
    return tuple(i for i in registered_envs() if i.startswith("idsgame-v"))


class _Compiled:
    def __init__(self, env, jit: bool):
        def reset(key, params):
            state = env.initial_state(key, params)
            return env.get_obs(state, params), state, env.legal_action_mask(state, params)

        def step(key, state, action, params):
            obs, next_state, reward, terminated, info = env.step_env(key, state, action, params)
            truncated = env.is_truncated(next_state, params)
            return obs, next_state, reward, terminated, truncated, info, env.legal_action_mask(next_state, params)

        wrap = jax.jit if jit else (lambda f: f)
        self.reset, self.step = wrap(reset), wrap(step)


@functools.cache
def _compiled(env, jit: bool = True) -> _Compiled:
    return _Compiled(env, jit)


class IdsGameParallelEnv(ParallelEnv):
    """One two-agent idsjax game as a PettingZoo `ParallelEnv` (see the module docstring)."""

    metadata = {"name": "idsgame_v3", "render_modes": ["rgb_array"], "render_fps": 4, "is_parallelizable": True}

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
        env, params, env_id = one_game(env_id, instance_seed, game, "idsgame-v3")
        if env.learner != "both":
            raise ValueError(
                f"{env_id} is a single-agent id: use idsjax.gym_bridge (gymnasium) for it, or a two-agent id idsgame-vN"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.metadata = {**type(self).metadata, "name": env_id.replace("-", "_")}
        self.env_id, self.jax_env, self.params = env_id, env, params
        self.render_mode, self.render_view = render_mode, render_view
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        obs_spaces = to_gym_space(env.observation_space(params))
        act_spaces = to_gym_space(env.action_space(params))
        self.observation_spaces = {a: obs_spaces[a] for a in AGENTS}
        self.action_spaces = {a: act_spaces[a] for a in AGENTS}
        self._fns = _compiled(env, bool(jit))
        self._key = None
        self._state = None
        self._last_action = None
        self._attack_from = None
        self._games = self._hacks = 0

    def observation_space(self, agent):
        return self.observation_spaces[agent]

    def action_space(self, agent):
        return self.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        if seed is not None or self._key is None:
            if seed is None:
                seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
            self._key = jax.random.PRNGKey(int(seed))
            for i, agent in enumerate(AGENTS):
                self.action_spaces[agent].seed(int(seed) + i)
        self._key, k_reset = jax.random.split(self._key)
        obs, self._state, masks = self._fns.reset(k_reset, self.params)
        self.agents = list(AGENTS)
        self._last_action = None
        observations = {a: np.asarray(obs[a]) for a in AGENTS}
        infos = {a: {"action_mask": np.asarray(masks[a]).astype(np.int8)} for a in AGENTS}
        return observations, infos

    def step(self, actions: dict):
        if not self.agents:
            raise RuntimeError("the game is over (no live agents): call reset()")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"step needs an action for every live agent; missing {missing}")
        self._key, k_step = jax.random.split(self._key)
        self._attack_from = int(self._state.position)
        joint = {a: jnp.asarray(np.asarray(actions[a]).item(), jnp.int32) for a in AGENTS}
        obs, self._state, reward, terminated, truncated, info, masks = self._fns.step(
            k_step, self._state, joint, self.params
        )
        terminated, truncated = bool(terminated), bool(truncated)
        flags = {k: np.asarray(info[k]) for k in ("hacked", "detected", "attack_action", "defense_action", "timed_out")}
        self._last_action = (int(flags["attack_action"]), int(flags["defense_action"]))
        observations = {a: np.asarray(obs[a]) for a in AGENTS}
        rewards = {a: float(reward[a]) for a in AGENTS}
        terminations = {a: terminated for a in AGENTS}
        truncations = {a: truncated for a in AGENTS}
        infos = {a: {**flags, "action_mask": np.asarray(masks[a]).astype(np.int8)} for a in AGENTS}
        if terminated or truncated:
            self._games += 1
            self._hacks += int(flags["hacked"])
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self):
        if self.render_mode is None:
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

    def close(self):
        pass

    def state(self):
        """The current `EnvState` (JAX arrays); PettingZoo's global state."""
        return self._state


def parallel_env(env_id: str | None = None, **kwargs) -> IdsGameParallelEnv:
    """PettingZoo's conventional constructor name."""
    return IdsGameParallelEnv(env_id, **kwargs)


__all__ = ["AGENTS", "IdsGameParallelEnv", "parallel_env", "two_agent_ids"]
