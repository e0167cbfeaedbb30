"""Edits of one network's arrays (`ScenarioArrays`), pure and jittable: the mutations an ACCEL-style
autocurriculum applies to networks it replays (`baselines.ued`).

    arrays, applied = remove_edge(key, arrays)        # applied: bool, False leaves `arrays` unchanged
    arrays, edits = mutate(key, arrays, num_edits=3)  # edits: how many of the 3 random edits applied

Every edit keeps the network a valid game: a path from the start node to the data node, no edge
leaving the data node, no edge into the start node, every real server linked to some node (the
schema's rules, `idsjax.scenario.schema`), and everything inside the padding (`max_nodes`, the shape
never changes). Each mutator draws uniformly among the edits of its kind that keep those rules and is
refused (`applied` False, arrays unchanged) only when there is none, so it refuses nothing valid:

- `add_edge`: a new edge between two real nodes (not from the data node, not into the start node);
- `remove_edge`: an existing edge whose removal keeps the path;
- `add_node`: a padding slot becomes a server, linked from a node the start reaches and to a node that
  reaches the data node (so it sits on a path), with that node's values;
- `remove_node`: a server whose removal keeps the path;
- `change_value`: one node's attack, defense, detection or vulnerability value (its whole range) one
  step up or down, within 0 … the cap (`max_value`, detection: the schema's `MAX_DETECTION`);
- `toggle_vulnerability`: one (node, attack type) of a server or the data node made vulnerable or not.

A removal that leaves a server with no link at all drops that server too (the schema refuses an
unlinked server, and it could never be attacked): it carries no path, so the path survives.
Works on one network's arrays (vmap for a batch); written for generated networks (no local views, no
per-layer draws), which is what the autocurriculum edits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.arrays import ScenarioArrays
from idsjax.network import DATA, EMPTY, SERVER, START
from idsjax.scenario.schema import MAX_DETECTION

KINDS = ("add_edge", "remove_edge", "add_node", "remove_node", "change_value", "toggle_vulnerability")
VALUE_FIELDS = ("attack_range", "defense_range", "detection_range", "vulnerability_range")


# -- the rules --------------------------------------------------------------------------------------
def reachable(reach: jax.Array, node_mask: jax.Array, source) -> jax.Array:
    """bool[N]: the real nodes reachable from `source` along `reach` (zero or more moves)."""
    n = reach.shape[-1]
    start = (jnp.arange(n) == source) & node_mask

    def grow(_, r):
        return r | (jnp.any(reach & r[:, None], axis=0) & node_mask)

    return jax.lax.fori_loop(0, n - 1, grow, start)


def has_path(arrays: ScenarioArrays) -> jax.Array:
    """bool: the data node is reachable from the start node."""
    return reachable(arrays.reach, arrays.node_mask, arrays.start_node)[arrays.data_node]


def _path_without(arrays: ScenarioArrays, reach: jax.Array, node_mask: jax.Array) -> jax.Array:
    return reachable(reach, node_mask, arrays.start_node)[arrays.data_node]


def _pick(key: jax.Array, candidates: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(flat index, any): one of the True entries of `candidates`, uniformly (the largest of iid
    uniforms over them), and whether there was one."""
    flat = candidates.reshape(-1)
    u = jax.random.uniform(key, flat.shape)
    return jnp.argmax(jnp.where(flat, u, -1.0)), flat.any()


def _finish(old: ScenarioArrays, new: ScenarioArrays, applied: jax.Array) -> tuple[ScenarioArrays, jax.Array]:
    """`new` with `neighbors` recomputed where `applied`, else `old` unchanged, and the flag."""
    new = new.replace(neighbors=new.reach | new.reach.T)
    return jax.tree.map(lambda a, b: jnp.where(applied, b, a), old, new), applied


def _clear(arrays: ScenarioArrays, drop: jax.Array) -> ScenarioArrays:
    """The nodes `drop` (bool[N]) turned into padding: no edges, role EMPTY, zero values."""
    keep = ~drop

    def rows(x, empty=0):
        return jnp.where(drop.reshape((-1,) + (1,) * (x.ndim - 1)), jnp.asarray(empty, x.dtype), x)

    reach = arrays.reach & keep[:, None] & keep[None, :]
    return arrays.replace(
        node_mask=arrays.node_mask & keep,
        role=rows(arrays.role, EMPTY),
        reach=reach,
        layer=rows(arrays.layer),
        position=rows(arrays.position),
        attack_range=rows(arrays.attack_range),
        defense_range=rows(arrays.defense_range),
        detection_range=rows(arrays.detection_range),
        vulnerability_range=rows(arrays.vulnerability_range),
        vulnerable_fixed=rows(arrays.vulnerable_fixed, False),
        vulnerable_candidate=rows(arrays.vulnerable_candidate, False),
        vulnerable_always=rows(arrays.vulnerable_always, False),
        draw_slot=rows(arrays.draw_slot, -1),
        start_weight=rows(arrays.start_weight),
        local_view=rows(arrays.local_view, -1),
    )


def _drop_unlinked(arrays: ScenarioArrays) -> ScenarioArrays:
    """Servers left with no edge in or out become padding (see the module docstring)."""
    linked = arrays.reach.any(axis=0) | arrays.reach.any(axis=1)
    return _clear(arrays, arrays.node_mask & (arrays.role == SERVER) & ~linked)


def _edge_allowed(arrays: ScenarioArrays) -> jax.Array:
    """bool[N, N]: pairs that may hold an edge: two distinct real nodes, not from the data node, not
    into the start node."""
    n = arrays.node_mask.shape[-1]
    real = arrays.node_mask
    return (
        real[:, None]
        & real[None, :]
        & ~jnp.eye(n, dtype=bool)
        & (arrays.role != DATA)[:, None]
        & (arrays.role != START)[None, :]
    )


# -- what each mutator may do (the candidates; the tests check them against an independent oracle) ----
def add_edge_candidates(arrays: ScenarioArrays) -> jax.Array:
    """bool[N, N]: the edges `add_edge` may add."""
    return _edge_allowed(arrays) & ~arrays.reach


def remove_edge_candidates(arrays: ScenarioArrays) -> jax.Array:
    """bool[N, N]: the existing edges whose removal keeps the path."""
    n = arrays.node_mask.shape[-1]
    onehots = jnp.eye(n * n, dtype=bool).reshape(n * n, n, n)
    keeps = jax.vmap(lambda e: _path_without(arrays, arrays.reach & ~e, arrays.node_mask))(onehots)
    return arrays.reach & keeps.reshape(n, n)


def add_node_candidates(arrays: ScenarioArrays) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(slots bool[N], sources bool[N], targets bool[N]): the padding slots a new server may fill, the
    nodes it may be linked from (reached from the start, not the data node) and to (reaching the data
    node, not the start node)."""
    real = arrays.node_mask
    from_start = reachable(arrays.reach, real, arrays.start_node)
    to_data = reachable(arrays.reach.T, real, arrays.data_node)
    slots = ~real
    return slots, from_start & (arrays.role != DATA), to_data & (arrays.role != START)


def remove_node_candidates(arrays: ScenarioArrays) -> jax.Array:
    """bool[N]: the servers whose removal keeps the path."""
    n = arrays.node_mask.shape[-1]
    servers = arrays.node_mask & (arrays.role == SERVER)
    keeps = jax.vmap(lambda d: _path_without(arrays, arrays.reach, arrays.node_mask & ~d))(jnp.eye(n, dtype=bool))
    return servers & keeps


def _value_caps(arrays: ScenarioArrays) -> jax.Array:
    """int32[4]: the highest value of each of `VALUE_FIELDS`."""
    cap = jnp.asarray(arrays.max_value, jnp.int32)
    return jnp.stack([cap, cap, jnp.int32(MAX_DETECTION), cap])


def change_value_candidates(arrays: ScenarioArrays) -> tuple[jax.Array, jax.Array]:
    """(down bool[N, 4], up bool[N, 4]): for each defendable node and field of `VALUE_FIELDS`, whether
    its range may move one step down (low end above 0) or up (high end below the cap)."""
    ranges = jnp.stack([getattr(arrays, f) for f in VALUE_FIELDS], axis=1)  # [N, 4, 2]
    live = (arrays.node_mask & arrays.defendable)[:, None]
    down = live & (ranges[..., 0] > 0)
    up = live & (ranges[..., 1] < _value_caps(arrays)[None, :])
    return down, up


def toggle_vulnerability_candidates(arrays: ScenarioArrays) -> jax.Array:
    """bool[N, A]: (defendable node, real attack type) pairs whose vulnerability may be flipped."""
    return (arrays.node_mask & arrays.defendable)[:, None] & arrays.type_mask[None, :]


# -- the mutators: (key, arrays) -> (arrays, applied) ------------------------------------------------
def add_edge(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    n = arrays.node_mask.shape[-1]
    idx, ok = _pick(key, add_edge_candidates(arrays))
    new = arrays.replace(reach=arrays.reach.at[idx // n, idx % n].set(True))
    return _finish(arrays, new, ok)


def remove_edge(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    n = arrays.node_mask.shape[-1]
    idx, ok = _pick(key, remove_edge_candidates(arrays))
    new = _drop_unlinked(arrays.replace(reach=arrays.reach.at[idx // n, idx % n].set(False)))
    return _finish(arrays, new, ok)


def add_node(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    k_slot, k_from, k_to = jax.random.split(key, 3)
    slots, sources, targets = add_node_candidates(arrays)
    k, has_slot = _pick(k_slot, slots)
    a, _ = _pick(k_from, sources)  # never empty on a valid network: the start node is a source
    b, _ = _pick(k_to, targets)  # and the data node a target
    # Below the start's layer, one above the node it attacks (the layers count moves to the data node).
    top = jnp.maximum(arrays.layer[arrays.start_node] - 1, 1)
    layer = jnp.clip(arrays.layer[b] + 1, 1, top)

    def copy(x):
        return x.at[k].set(x[b])

    new = arrays.replace(
        node_mask=arrays.node_mask.at[k].set(True),
        role=arrays.role.at[k].set(SERVER),
        reach=arrays.reach.at[a, k].set(True).at[k, b].set(True),
        layer=arrays.layer.at[k].set(layer),
        position=arrays.position.at[k].set(jnp.stack([arrays.position[b, 0] + 0.5, layer.astype(jnp.float32)])),
        attack_range=copy(arrays.attack_range),
        defense_range=copy(arrays.defense_range),
        detection_range=copy(arrays.detection_range),
        vulnerability_range=copy(arrays.vulnerability_range),
        vulnerable_fixed=copy(arrays.vulnerable_fixed),
        vulnerable_candidate=arrays.vulnerable_candidate.at[k].set(True),
        vulnerable_always=arrays.vulnerable_always.at[k].set(False),
        draw_slot=arrays.draw_slot.at[k].set(k.astype(arrays.draw_slot.dtype)),
        start_weight=arrays.start_weight.at[k].set(0),
    )
    return _finish(arrays, new, has_slot)


def remove_node(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    n = arrays.node_mask.shape[-1]
    idx, ok = _pick(key, remove_node_candidates(arrays))
    new = _drop_unlinked(_clear(arrays, jnp.arange(n) == idx))
    return _finish(arrays, new, ok)


def change_value(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    k_pick, k_dir = jax.random.split(key)
    down, up = change_value_candidates(arrays)
    idx, ok = _pick(k_pick, down | up)
    node, field = idx // len(VALUE_FIELDS), idx % len(VALUE_FIELDS)
    can_down, can_up = down[node, field], up[node, field]
    go_up = jnp.where(can_down & can_up, jax.random.bernoulli(k_dir), can_up)
    step = jnp.where(go_up, 1, -1).astype(jnp.int32)
    ranges = {
        f: jnp.where(field == i, getattr(arrays, f).at[node].add(step), getattr(arrays, f))
        for i, f in enumerate(VALUE_FIELDS)
    }
    return _finish(arrays, arrays.replace(**ranges), ok)


def toggle_vulnerability(key: jax.Array, arrays: ScenarioArrays) -> tuple[ScenarioArrays, jax.Array]:
    a = arrays.type_mask.shape[-1]
    idx, ok = _pick(key, toggle_vulnerability_candidates(arrays))
    node, t = idx // a, idx % a
    new = arrays.replace(vulnerable_fixed=arrays.vulnerable_fixed.at[node, t].set(~arrays.vulnerable_fixed[node, t]))
    return _finish(arrays, new, ok)


MUTATORS = {
    "add_edge": add_edge,
    "remove_edge": remove_edge,
    "add_node": add_node,
    "remove_node": remove_node,
    "change_value": change_value,
    "toggle_vulnerability": toggle_vulnerability,
}
assert tuple(MUTATORS) == KINDS


def mutate(
    key: jax.Array, arrays: ScenarioArrays, num_edits: int, kinds: tuple[str, ...] = KINDS
) -> tuple[ScenarioArrays, jax.Array]:
    """`num_edits` (static) edits in a row, each of a kind drawn uniformly from `kinds`: (arrays, how
    many were applied, int32). A refused edit leaves the network as it was and the next goes on."""
    unknown = [k for k in kinds if k not in MUTATORS]
    if unknown or not kinds:
        raise ValueError(f"mutation kinds: expected some of {', '.join(KINDS)}, got {list(kinds)!r}")
    branches = [MUTATORS[k] for k in kinds]

    def one(i, carry):
        arrays, count = carry
        k_kind, k_edit = jax.random.split(jax.random.fold_in(key, i))
        which = jax.random.randint(k_kind, (), 0, len(branches))
        arrays, applied = jax.lax.switch(which, branches, k_edit, arrays)
        return arrays, count + applied.astype(jnp.int32)

    return jax.lax.fori_loop(0, num_edits, one, (arrays, jnp.int32(0)))
