"""An environment whose every reset draws a fresh network from a generator family.

    env, params = idsjax.make_generated(Family(max_layers=3, max_width=3), mode="random_defense")
    obs, state = env.reset(key, params)           # state.network: the network of this episode
    jax.vmap(env.step)(keys, states, actions, params)

Design: the network lives in the state. `reset` (and the auto-reset of `step`) splits its key into
(network, game): `generate(network key, family)` draws the arrays, the construction-time layout is
made from them as `make_scenario` makes it, and the game starts on them as `ScenarioEnv` starts it.
The state is a `GeneratedState`: an `EnvState` (every field as usual, padded to the family's
`max_nodes`) plus `network`, the `ScenarioParams` of the episode's network, which every step,
observation and mask reads. The params (`GeneratedParams`) hold only the horizon. Keeping the network
rather than a key to redraw it costs memory (the arrays are O(max_nodes²)) but no recomputation
per step; a policy may read `state.network` (e.g. the graph for a message-passing network).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from idsjax import threefry
from idsjax.env import ATTACKER, DEFENDER, int8_box
from idsjax.scenario.env import ScenarioEnv, _construction_params
from idsjax.scenario.game import ScenarioParams
from idsjax.scenario.generator import Family, generate
from idsjax.scenario.schema import ScenarioError
from idsjax.types import EnvState, state_dataclass
from idsjax.versions import Mode


@state_dataclass
class GeneratedState(EnvState):
    """An `EnvState` and the params of the network it is played on (drawn at its reset)."""

    network: ScenarioParams = None


@struct.dataclass
class GeneratedParams(environment.EnvParams):
    """The horizon; the networks come from the environment's family."""

    max_steps_in_episode: jax.Array = 102


class GeneratedEnv(ScenarioEnv):
    """`ScenarioEnv` on a fresh network of `family` at every reset (see the module docstring)."""

    def __init__(self, family: Family, mode: Mode | str = Mode.TWO_AGENT):
        super().__init__(family.shape, mode)
        self.family = family

    def __hash__(self) -> int:
        return hash((type(self), self.family, self.mode))

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and (other.family, other.mode) == (self.family, self.mode)

    def __repr__(self) -> str:
        return f"GeneratedEnv({self.family}, mode={self.mode.value!r})"

    @property
    def default_params(self) -> GeneratedParams:
        return GeneratedParams(max_steps_in_episode=jnp.int32(self.family.max_steps))

    def game_params(self, state: GeneratedState, params: Any) -> ScenarioParams:
        return state.network

    def reset_is_random(self, state: GeneratedState, params: Any) -> jax.Array:
        return jnp.bool_(True)  # every reset draws a network

    def draw_network(self, key: jax.Array, params: GeneratedParams) -> ScenarioParams:
        """The params of one drawn network, with `params`' horizon."""
        arrays = generate(key, self.family)
        network = _construction_params(self.shape, arrays, key)
        return network.replace(max_steps_in_episode=jnp.asarray(params.max_steps_in_episode, jnp.int32))

    def initial_state(self, key: jax.Array, params: GeneratedParams) -> GeneratedState:
        k_network, k_game = threefry.split(key)
        network = self.draw_network(k_network, params)
        state = super().initial_state(k_game, network)
        fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(EnvState)}
        return GeneratedState(**fields, network=network)

    def observation_space(self, params: GeneratedParams | None = None):
        """int8 boxes bounded by the family's values (any network it draws)."""
        f, shape = self.family, self.shape
        a = shape.attack_types
        attacker = int8_box(0, f.max_value, (shape.max_nodes, a + 1))
        defender = int8_box(0, max(f.max_value, f.detection[1]), (shape.max_nodes, a + 1))
        if self.learner == "both":
            return spaces.Dict({ATTACKER: attacker, DEFENDER: defender})
        return self._for_learner((attacker, defender))


def make_generated(family: Family | dict | None = None, mode: Mode | str = ""):
    """`(env, params)` for games on a fresh network of `family` (a `Family`, or its fields as a
    dict; default `Family()`) at every reset. `mode` as in `make_scenario` (generated networks allow
    every bot)."""
    if family is None:
        family = Family()
    elif isinstance(family, dict):
        family = Family(**{k: tuple(v) if isinstance(v, list) else v for k, v in family.items()})
    elif not isinstance(family, Family):
        raise ScenarioError(
            f"generator family: expected a Family or a dict of its fields, got {type(family).__name__}."
        )
    try:
        mode = Mode(mode)
    except ValueError:
        modes = ", ".join(repr(m.value) for m in Mode)
        raise ValueError(f"unknown mode {mode!r}: expected one of {modes}.") from None
    env = GeneratedEnv(family, mode)
    return env, env.default_params
