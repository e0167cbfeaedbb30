"""A JaxMARL `MultiAgentEnv` view of the 22 two-agent ids `idsgame-vN`, and of any scenario or generated
family in the two-agent mode (`IdsGameMARL(game=idsjax.make_scenario("net.yaml", mode=""))`).

    from jaxmarl.wrappers.baselines import LogWrapper
    from idsjax.marl import IdsGameMARL

    env = LogWrapper(IdsGameMARL("idsgame-v3"))
    obs, state = env.reset(key)
    avail = env.get_avail_actions(state.env_state)      # {"attacker": bool[80], "defender": bool[88]}
    obs, state, rewards, dones, info = env.step(key, state, {"attacker": a, "defender": d})

JaxMARL's API has no parameters argument: the view holds one instance's `EnvParams` (`make`'s for
`seed`, or the ones given). `agents` is `["attacker", "defender"]`; observations, actions and rewards
are dicts with those keys; `dones` has both agents and `"__all__"`, all equal (the game ends for both
at once; truncation at the step limit counts as done, and `info["truncated"]` tells it apart). Every
`info` value has one entry per agent (shape `(2,)`), as JaxMARL's IPPO reshapes info to its actors.
`step` auto-resets, JaxMARL's way (`MultiAgentEnv.step`, `reset_state` supported).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jaxmarl.environments import spaces as mspaces
from jaxmarl.environments.multi_agent_env import MultiAgentEnv

from idsjax.env import ATTACKER, DEFENDER
from idsjax.registry import one_game, registered_envs
from idsjax.types import EnvParams

AGENTS = [ATTACKER, DEFENDER]


def _marl_space(space):
    """A gymnax Box or Discrete of idsjax as JaxMARL's."""
    if hasattr(space, "n"):
        return mspaces.Discrete(int(space.n))
    return mspaces.Box(space.low, space.high, tuple(space.shape), space.dtype)


class IdsGameMARL(MultiAgentEnv):
    """One two-agent idsjax id as a JaxMARL `MultiAgentEnv` (see the module docstring)."""

    def __init__(
        self,
        env_id: str | None = None,
        seed: int = 0,
        params: EnvParams | None = None,
        *,
        game: tuple | None = None,
    ):
        env, made, _ = one_game(env_id, seed, game, "idsgame-v3")
        if env.learner != "both":
            raise ValueError(
                f"{env.name} is a single-agent game; the JaxMARL view takes the two-agent ids idsgame-vN or "
                "a scenario or generated family in mode two_agent (single-agent games are gymnax environments "
                "already)"
            )
        super().__init__(num_agents=len(AGENTS))
        self.agents = list(AGENTS)
        self.env = env
        self.params = made if params is None else params
        obs_space, act_space = env.observation_space(self.params), env.action_space(self.params)
        self.observation_spaces = {a: _marl_space(obs_space.spaces[a]) for a in AGENTS}
        self.action_spaces = {a: _marl_space(act_space.spaces[a]) for a in AGENTS}

    # Views of equal ids and equal parameters would compile the same programs, but parameters are
    # arrays; identity keeps jit's cache correct.
    def __repr__(self) -> str:
        return f"IdsGameMARL({self.env.name!r})"

    @property
    def name(self) -> str:
        return self.env.name

    @property
    def agent_classes(self) -> dict:
        return {ATTACKER: [ATTACKER], DEFENDER: [DEFENDER]}

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key: jax.Array):
        return self.env.reset(key, self.params)

    def step_env(self, key: jax.Array, state, actions):
        obs, state, rewards, terminated, info = self.env.step_env(key, state, actions, self.params)
        truncated = self.env.is_truncated(state, self.params)
        done = terminated | truncated
        dones = {ATTACKER: done, DEFENDER: done, "__all__": done}
        info = {**info, "terminated": terminated, "truncated": truncated}
        info = {k: jnp.broadcast_to(v, (self.num_agents,)) for k, v in info.items()}
        return obs, state, rewards, dones, info

    def get_obs(self, state):
        return self.env.get_obs(state, self.params)

    @partial(jax.jit, static_argnums=(0,))
    def get_avail_actions(self, state) -> dict:
        return self.env.legal_action_mask(state, self.params)


def two_agent_ids() -> tuple[str, ...]:
    return tuple(i for i in registered_envs() if i.startswith("idsgame-v"))


__all__ = ["AGENTS", "IdsGameMARL", "two_agent_ids"]
