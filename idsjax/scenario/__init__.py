"""Scenarios: games described as data (a network from a start node to a data node, and its numbers).

- `load_scenario(path | dict | Scenario) -> Scenario`: the checked schema (`idsjax.scenario.schema`).
- `to_arrays(scenario, shape) -> ScenarioArrays`: the padded array form a compiled program plays
  (`idsjax.scenario.arrays`), with the movement rules written over it.
- `builtin_scenario(k)`: the 22 built-in versions as scenarios (`idsjax.scenario.builtin`).
- `generate(key, family) -> ScenarioArrays`: random networks drawn inside jit (`idsjax.scenario.generator`).
- `ScenarioEnv`, `make_scenario`, `make_scenario_batch`: the gymnax environment over the arrays
  (`idsjax.scenario.env`, the game itself in `idsjax.scenario.game`); `make_generated`: a fresh
  generated network at every reset (`idsjax.scenario.generated`).

See docs/scenarios.md for the format, the environments and what is not built yet.
"""

from idsjax.scenario.arrays import (
    ScenarioArrays,
    ScenarioShape,
    attack_mask,
    attack_reachable,
    defense_mask,
    shape_of,
    stack,
    to_arrays,
)
from idsjax.scenario.builtin import builtin_scenario, version_scenario
from idsjax.scenario.env import ScenarioEnv, make_scenario, make_scenario_batch
from idsjax.scenario.game import ScenarioParams
from idsjax.scenario.generated import GeneratedEnv, GeneratedParams, GeneratedState, make_generated
from idsjax.scenario.schema import Scenario, ScenarioError, dump_scenario, load_scenario

__all__ = [
    "GeneratedEnv",
    "GeneratedParams",
    "GeneratedState",
    "Scenario",
    "ScenarioArrays",
    "ScenarioEnv",
    "ScenarioError",
    "ScenarioParams",
    "ScenarioShape",
    "attack_mask",
    "attack_reachable",
    "builtin_scenario",
    "defense_mask",
    "dump_scenario",
    "load_scenario",
    "make_generated",
    "make_scenario",
    "make_scenario_batch",
    "shape_of",
    "stack",
    "to_arrays",
    "version_scenario",
]
