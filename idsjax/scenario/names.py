"""What descriptions read of a scenario game: node ids, roles and id sizes (`ScenarioNames`, the
scenario's counterpart of a `GameConfig`), and a network's links for drawing. Host-side data only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idsjax.network import EMPTY


@dataclass(frozen=True)
class ScenarioNames:
    """What the descriptions below read of a `GameConfig`, for a scenario game: id sizes from the
    environment's shape, node ids and roles from the `Scenario` (the arrays know only indices).
    `scenario_names(env, params, scenario)` builds one."""

    env_id: str
    node_ids: tuple[str, ...]
    roles: tuple[int, ...]
    attack_types: int
    reconnaissance: bool
    max_nodes: int

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def attack_id_width(self) -> int:
        return self.attack_types + 1 if self.reconnaissance else self.attack_types

    @property
    def num_attack_ids(self) -> int:
        return self.max_nodes * self.attack_id_width

    @property
    def num_defense_actions(self) -> int:
        return self.max_nodes * (self.attack_types + 1)


def scenario_links(arrays) -> list[tuple[int, int, bool]]:
    """The links of one scenario network (its `ScenarioParams.scenario` arrays) for drawing:
    `(i, j, False)` for a link both ways (i < j), `(i, j, True)` where the attacker may go only
    from i to j (`reach`); padding nodes have none."""
    mask = np.asarray(arrays.node_mask)
    reach = np.asarray(arrays.reach) & mask[:, None] & mask[None, :]
    real = np.flatnonzero(mask)
    links = []
    for i in real:
        for j in real:
            if i < j and (reach[i, j] or reach[j, i]):
                if reach[i, j] and reach[j, i]:
                    links.append((int(i), int(j), False))
                else:
                    links.append((int(i), int(j), True) if reach[i, j] else (int(j), int(i), True))
    return links


def scenario_names(env, params, scenario=None) -> ScenarioNames:
    """The `ScenarioNames` of a `ScenarioEnv` game, indexed by node (`network_names`: a generated
    network's absent servers are `-`); node ids from `scenario` (a `Scenario`), else `n<i>`."""
    title = f"{scenario.name} ({env.name})" if scenario is not None else env.name
    ids = None if scenario is None else [n.id for n in scenario.nodes]
    return network_names(title, env.shape, params.scenario.node_mask, params.scenario.role, ids)


ABSENT = "-"  # the name of a node index the network leaves empty (a generated network's missing server)


def network_names(env_id: str, shape, node_mask, role, node_ids=None) -> ScenarioNames:
    """`ScenarioNames` indexed by node, so that node `i` is always `node_ids[i]`, up to the last real
    node: a generated network's absent servers leave gaps among its real nodes, each named `-` with
    role EMPTY. `node_mask`, `role`: one network's arrays (`ScenarioArrays`); `shape`: its
    `ScenarioShape`; `node_ids`: one name per real node, in index order (default `n<i>`). A network
    whose real nodes come first (every scenario file's) gets the names `scenario_names` gives it."""
    mask = np.asarray(node_mask, bool)
    real = np.flatnonzero(mask)
    if node_ids is not None and len(node_ids) != len(real):
        raise ValueError(f"{env_id}: {len(node_ids)} node ids for a network of {len(real)} nodes")
    size = int(real[-1]) + 1 if len(real) else 0
    ids, roles = [ABSENT] * size, [EMPTY] * size
    kinds = np.asarray(role)
    for k, i in enumerate(real):
        ids[i] = node_ids[k] if node_ids is not None else f"n{i}"
        roles[i] = int(kinds[i])
    return ScenarioNames(
        env_id=env_id,
        node_ids=tuple(ids),
        roles=tuple(roles),
        attack_types=shape.attack_types,
        reconnaissance=bool(shape.reconnaissance),
        max_nodes=shape.max_nodes,
    )
