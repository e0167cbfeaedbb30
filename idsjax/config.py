"""The static configuration of one environment id: shapes and code paths, hashable, never traced."""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from idsjax.arrays import ScenarioArrays, ScenarioShape
from idsjax.network import Network, build_network
from idsjax.versions import Mode, RewardFamily, VersionSpec, env_id, version_spec

# Reconnaissance state of a defense that the attacker has not seen (spec §2.1, R0).
UNKNOWN_DEFENSE = 10


@dataclasses.dataclass(frozen=True)
class GameConfig:
    """What decides array shapes and which code runs. Numbers that can vary per instance live in
    `EnvParams` instead, so one compiled program can play many instances and settings.

    The reference's unregistered options (reconnaissance reward, extra reconnaissance reward) are static
    switches here too, off by default as in every registered version (spec §7.5).
    """

    version: int
    mode: Mode
    spec: VersionSpec
    reconnaissance_reward: bool = False
    extra_reconnaissance_reward: bool = False

    @classmethod
    def create(cls, version: int, mode: Mode, **options) -> GameConfig:
        return cls(version=version, mode=mode, spec=version_spec(version, mode), **options)

    @property
    def env_id(self) -> str:
        return env_id(self.version, self.mode)

    @functools.cached_property
    def network(self) -> Network:
        s = self.spec
        return build_network(s.layers, s.servers_per_layer, s.connected_layers)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return self.network.num_nodes

    @property
    def attack_types(self) -> int:
        return self.spec.attack_types

    @property
    def reconnaissance(self) -> bool:
        return self.spec.reconnaissance

    @property
    def attack_id_width(self) -> int:
        """Attack ids per node: one per type, plus one reconnaissance id when enabled (§4.1)."""
        return self.attack_types + 1 if self.reconnaissance else self.attack_types

    @property
    def num_attack_ids(self) -> int:
        """Global attack ids that `step` decodes: `N·A`, or `N·(A+1)` with reconnaissance."""
        return self.num_nodes * self.attack_id_width

    @property
    def max_neighbors(self) -> int:
        override = self.spec.max_neighbors_override
        return self.network.max_neighbors if override is None else override

    @property
    def num_attack_actions(self) -> int:
        """The reference's advertised count: v18 advertises local ids, `max_neighbors·(A+1)` (§4.1)."""
        if self.reconnaissance and self.spec.local_view:
            return self.max_neighbors * self.attack_id_width
        return self.num_attack_ids

    @property
    def num_defense_actions(self) -> int:
        return self.num_nodes * (self.attack_types + 1)

    @property
    def reward_family(self) -> RewardFamily:
        return self.spec.reward

    # -- observation shapes (§6) ---------------------------------------------------------------
    @property
    def attacker_observation_shape(self) -> tuple[int, int]:
        a = self.attack_types
        width = 2 * a + 2 if self.reconnaissance else a + 1
        rows = self.max_neighbors if self.spec.local_view else self.num_nodes
        return (rows, width)

    @property
    def defender_observation_shape(self) -> tuple[int, int]:
        return (self.num_nodes, self.attack_types + 1)

    @functools.cached_property
    def local_view_slots(self) -> np.ndarray:
        return self.network.local_view_slots(self.max_neighbors)

    # -- the network as arrays: the form the game is played over (`idsjax.arrays`) --------------
    @functools.cached_property
    def _scenario(self):
        """This id's game as a checked scenario: its version's built-in scenario, from `spec` (so a
        config whose spec was changed, e.g. another reward family, plays that change)."""
        from idsjax.scenario.builtin import spec_scenario
        from idsjax.scenario.schema import load_scenario

        return load_scenario(spec_scenario(self.spec, self.version, self.mode), source=f"<{self.env_id}>")

    @functools.cached_property
    def shape(self) -> ScenarioShape:
        """The static shape of this version's network, with this id's reward switches."""
        from idsjax.scenario.arrays import shape_of

        return shape_of(self._scenario)._replace(
            reconnaissance_reward=self.reconnaissance_reward,
            extra_reconnaissance_reward=self.extra_reconnaissance_reward,
        )

    @functools.cached_property
    def fixed_arrays(self) -> ScenarioArrays:
        """This version's network as NumPy arrays (its built-in scenario): closed over as constants,
        so every rule that tests the network is decided when a program is traced."""
        from idsjax.scenario.arrays import to_arrays

        with jax.ensure_compile_time_eval():  # first read may be while a program is traced
            return jax.tree.map(np.asarray, to_arrays(self._scenario))

    def network_arrays(self, params=None) -> ScenarioArrays:
        """The arrays the game is played over: the fixed network with the numbers of `params` (an
        `EnvParams`; users may `replace` them, so they stay traced). Without params: the version's
        own numbers (what observations and masks that read no number need)."""
        if params is None:
            return self.fixed_arrays
        return self.fixed_arrays.replace(max_value=params.max_value, detection_factor=params.detection_factor)
