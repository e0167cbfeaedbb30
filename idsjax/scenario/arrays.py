"""A scenario as arrays: `to_arrays` pads a checked `Scenario` into `idsjax.arrays.ScenarioArrays` of a
`ScenarioShape` (what lives in `params`, so one compiled program plays many networks), `stack` batches
them, `to_scenario_dict` writes one back. The arrays, and the rules over them (`idsjax.actions`,
`idsjax.transition`, ...), are the game's own: this module only converts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.actions import attack_mask, defense_mask  # noqa: F401  (re-exported: the scenario API names them)
from idsjax.arrays import (  # noqa: F401  (re-exported: the scenario API names them here)
    ROLE_CODES,
    VIEW_CODES,
    VIEW_FULL,
    VIEW_LOCAL,
    VIEW_PARTIAL,
    ScenarioArrays,
    ScenarioShape,
    attack_reachable,
)
from idsjax.network import DATA, EMPTY, SERVER, START
from idsjax.scenario.schema import REWARD_FAMILIES, Scenario, ScenarioError, load_scenario


def _draw_slots(scenario: Scenario) -> tuple[np.ndarray, int]:
    """Each node's uniform in the per-layer vulnerability draw, and how many uniforms the draw uses.

    When every position is a distinct pair of non-negative integers (the built-in grids: x = column,
    y = row) the slot is the grid cell `y·cols + x` and the draw uses `rows·cols` uniforms, so a
    scenario-built game can consume the same random stream as `layout.draw_layout`. Otherwise the slot is
    the node index.
    """
    pos = [node.position for node in scenario.nodes]
    integral = all(v >= 0 and float(v).is_integer() for p in pos for v in p)
    if integral and len({tuple(p) for p in pos}) == len(pos):
        cols = int(max(p[0] for p in pos)) + 1
        rows = int(max(p[1] for p in pos)) + 1
        return np.array([int(p[1]) * cols + int(p[0]) for p in pos], np.int32), rows * cols
    return np.arange(len(pos), dtype=np.int32), len(pos)


def shape_of(scenario: Scenario, max_nodes: int | None = None) -> ScenarioShape:
    """The smallest shape that holds `scenario` (or with `max_nodes` nodes)."""
    _, slots = _draw_slots(scenario)
    n = len(scenario.nodes) if max_nodes is None else max_nodes
    return ScenarioShape(
        max_nodes=n,
        attack_types=scenario.attack_types,
        reconnaissance=scenario.observation.reconnaissance,
        local_view=scenario.observation.view == "local",
        local_slots=scenario.local_slots(),
        draw_slots=max(slots, n),
    )


def to_arrays(scenario, shape: ScenarioShape | None = None) -> ScenarioArrays:
    """`scenario` (a `Scenario`, a path or a dict) as padded arrays of `shape` (default: its own).

    Refuses, with one sentence naming the field, a scenario that does not fit `shape`: more nodes or
    attack types than compiled, or a reconnaissance / local-view switch other than the shape's.
    """
    s = load_scenario(scenario) if not isinstance(scenario, Scenario) else scenario
    shape = shape or shape_of(s)
    src, n_real = s.source, len(s.nodes)
    n, a = shape.max_nodes, shape.attack_types
    if n_real > n:
        raise ScenarioError(f"{src}: field `nodes`: expected at most {n} nodes (the compiled maximum), got {n_real}.")
    if s.attack_types > a:
        raise ScenarioError(
            f"{src}: field `attack_types`: expected at most {a} (the compiled maximum), got {s.attack_types}."
        )
    if s.observation.reconnaissance != shape.reconnaissance:
        raise ScenarioError(
            f"{src}: field `observation.reconnaissance`: expected {shape.reconnaissance} as compiled, got {s.observation.reconnaissance}."
        )
    if (s.observation.view == "local") != shape.local_view or (
        shape.local_view and s.local_slots() != shape.local_slots
    ):
        raise ScenarioError(
            f"{src}: field `observation`: expected a {'local view of ' + str(shape.local_slots) + ' slots' if shape.local_view else 'partial or full view'} as compiled, got view {s.observation.view!r}."
        )
    slot, num_slots = _draw_slots(s)
    if num_slots > shape.num_draw_slots:
        raise ScenarioError(
            f"{src}: field `nodes[].position`: expected a grid of at most {shape.num_draw_slots} cells as compiled, got {num_slots}."
        )

    ix = s.index()
    node_mask = np.arange(n) < n_real
    role = np.full(n, EMPTY, np.int32)
    role[:n_real] = [ROLE_CODES[node.role] for node in s.nodes]
    reach = np.zeros((n, n), bool)
    for p, q in s.attack_pairs():
        reach[p, q] = True
    layer = np.zeros(n, np.int32)
    layer[:n_real] = s.layers()
    position = np.zeros((n, 2), np.float32)
    position[:n_real] = [node.position for node in s.nodes]

    defendable = np.isin(role, (SERVER, DATA))

    def ranges(name):
        out = np.zeros((n, 2), np.int32)
        for i, node in enumerate(s.nodes):
            r = getattr(node, name) or getattr(s.values, name)
            out[i] = (r.min, r.max)
        return np.where(defendable[:, None], out, 0)  # start node and padding hold zeros (spec §3)

    vulnerable_fixed = np.zeros((n, a), bool)
    for i, node in enumerate(s.nodes):
        vulnerable_fixed[i, list(node.vulnerable or [])] = True
    vulnerable_always = np.zeros(n, bool)
    if s.vulnerabilities.data_always:
        vulnerable_always[ix[s.nodes[s.node_of_role("data")].id]] = True
    draw_slot = np.full(n, -1, np.int32)
    draw_slot[:n_real] = slot

    weights = [node.start_weight for node in s.nodes]
    start_weight = np.zeros(n, np.int32)
    if any(w is not None for w in weights):
        start_weight[:n_real] = [w or 0 for w in weights]
    else:
        start_weight[s.node_of_role("start")] = 1

    local_view = np.full((n, shape.local_slots), -1, np.int32)
    if shape.local_view:
        for i, node in enumerate(s.nodes):
            if node.local_view is not None:
                local_view[i] = [-1 if q is None else ix[q] for q in node.local_view]
            else:  # default: the nodes it may attack, in node order
                targets = np.flatnonzero(reach[i])[: shape.local_slots]
                local_view[i, : len(targets)] = targets

    return ScenarioArrays(
        node_mask=jnp.asarray(node_mask),
        role=jnp.asarray(role),
        start_node=jnp.int32(s.node_of_role("start")),
        data_node=jnp.int32(s.node_of_role("data")),
        reach=jnp.asarray(reach),
        neighbors=jnp.asarray(reach | reach.T),
        layer=jnp.asarray(layer),
        position=jnp.asarray(position),
        num_attack_types=jnp.int32(s.attack_types),
        type_mask=jnp.asarray(np.arange(a) < s.attack_types),
        max_value=jnp.int32(s.max_value),
        attack_range=jnp.asarray(ranges("attack")),
        defense_range=jnp.asarray(ranges("defense")),
        detection_range=jnp.asarray(ranges("detection")),
        vulnerability_range=jnp.asarray(ranges("vulnerability")),
        randomize=jnp.bool_(s.randomize),
        vulnerable_fixed=jnp.asarray(vulnerable_fixed),
        vulnerable_candidate=jnp.asarray(role == SERVER),
        vulnerable_always=jnp.asarray(vulnerable_always),
        vulnerable_per_layer=jnp.int32(s.vulnerabilities.per_layer),
        vulnerabilities_per_node=jnp.int32(s.vulnerabilities.per_node),
        draw_slot=jnp.asarray(draw_slot),
        start_weight=jnp.asarray(start_weight),
        view=jnp.int32(VIEW_CODES[s.observation.view]),
        local_view=jnp.asarray(local_view),
        visibility_p=jnp.float32(s.observation.visibility_p),
        detection_factor=jnp.float32(s.detection_factor),
        reward_family=jnp.int32(REWARD_FAMILIES.index(s.rewards)),
        max_steps=jnp.int32(s.max_steps),
    )


def stack(arrays: list[ScenarioArrays]) -> ScenarioArrays:
    """Several scenarios of one shape as one batch (leading axis), for `vmap`."""

    def stack_field(*xs):
        if any(isinstance(x, jax.core.Tracer) for x in xs):
            return jnp.stack(xs)
        # Concrete arrays are stacked on the host: `jnp.stack` would compile a program per field shape.
        return jnp.asarray(np.stack([np.asarray(x) for x in xs]))

    return jax.tree.map(stack_field, *arrays)


# -- the rules, over the arrays -----------------------------------------------------------------------
def to_scenario_dict(arrays: ScenarioArrays, name: str = "generated") -> dict:
    """One game's arrays (no batch axis) back as a scenario dict, e.g. to save a generated network as
    YAML or to check it with `load_scenario`. Padding nodes are dropped; node ids are `n<index>`
    (`data` and `start` for those roles); every node carries its own value ranges and layer.
    """
    arr = jax.tree.map(np.asarray, arrays)
    real = np.flatnonzero(arr.node_mask)
    codes = {v: k for k, v in ROLE_CODES.items()}
    ids = {int(i): {DATA: "data", START: "start"}.get(int(arr.role[i]), f"n{int(i)}") for i in real}
    nodes = []
    for i in real:
        node = {
            "id": ids[i],
            "role": codes[int(arr.role[i])],
            "position": [float(v) for v in arr.position[i]],
            "layer": int(arr.layer[i]),
        }
        if arr.role[i] != START:
            for field in ("attack", "defense", "detection", "vulnerability"):
                low, high = (int(v) for v in getattr(arr, f"{field}_range")[i])
                node[field] = {"min": low, "max": high}
        if arr.vulnerable_fixed[i].any():
            node["vulnerable"] = [int(t) for t in np.flatnonzero(arr.vulnerable_fixed[i])]
        if arr.start_weight.sum() != 1 or arr.start_weight[arr.start_node] != 1:
            node["start_weight"] = int(arr.start_weight[i])
        nodes.append(node)
    edges = [[ids[int(p)], ids[int(q)]] for p, q in zip(*np.nonzero(arr.reach))]
    views = {v: k for k, v in VIEW_CODES.items()}
    if views[int(arr.view)] == "local":
        raise ValueError("to_scenario_dict does not write local views")
    return {
        "format": 1,
        "name": name,
        "attack_types": int(arr.num_attack_types),
        "max_value": int(arr.max_value),
        "nodes": nodes,
        "edges": edges,
        "vulnerabilities": {
            "per_layer": int(arr.vulnerable_per_layer),
            "per_node": int(arr.vulnerabilities_per_node),
            "data_always": bool(arr.vulnerable_always[arr.data_node]),
        },
        "randomize": bool(arr.randomize),
        "rewards": REWARD_FAMILIES[int(arr.reward_family)],
        "observation": {"view": views[int(arr.view)], "visibility_p": float(arr.visibility_p)},
        "max_steps": int(arr.max_steps),
        "detection_factor": float(arr.detection_factor),
    }
