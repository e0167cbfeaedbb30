"""Scenarios: games described as data (a network from a start node to a data node, and its numbers).

- `load_scenario(path | dict | Scenario) -> Scenario`: the checked schema (`idsjax.scenario.schema`).
- `to_arrays(scenario, shape) -> ScenarioArrays`: the padded array form a compiled program plays
  (`idsjax.scenario.arrays`), with the movement rules written over it.
- `builtin_scenario(k)`: the 22 built-in versions as scenarios (`idsjax.scenario.builtin`).
- `generate(key, family) -> ScenarioArrays`: random networks drawn inside jit (`idsjax.scenario.generator`).

See docs/scenarios.md for the format and what is not built yet.
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
from idsjax.scenario.schema import Scenario, ScenarioError, dump_scenario, load_scenario

__all__ = [
    "Scenario",
    "ScenarioArrays",
    "ScenarioError",
    "ScenarioShape",
    "attack_mask",
    "attack_reachable",
    "builtin_scenario",
    "defense_mask",
    "dump_scenario",
    "load_scenario",
    "shape_of",
    "stack",
    "to_arrays",
    "version_scenario",
]
