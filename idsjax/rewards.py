"""The reward families (spec §7) over a network's arrays: what each outcome of a legal attack pays to
both players.

Every reward is a float32 pair (attacker, defender). Illegal attacks (-1, 0) and the step-limit
penalty (-100, -100) are common to all families and handled by the transition. Rows are the arrays'
`layer` (moves to the data node; a built-in grid's row).

A registered id's network is fixed when the program is traced (`idsjax.arrays.fixed`): its family is
chosen in Python and its per-layer sums and minima are unrolled over its few static layers, which
fuses into a handful of element-wise operations on a batch (benchmarks/NOTES.md §6). Where the network
is in the params, the family is a `lax.switch` and the layers are masks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.arrays import ScenarioArrays, ScenarioShape, all_true, fixed
from idsjax.batch_queries import batch_uniform
from idsjax.versions import RewardFamily

_INT8_MAX = int(np.iinfo(np.int8).max)


def _node_min(arrays: ScenarioArrays, defense: jax.Array) -> jax.Array:
    """Each node's weakest defense over the network's types (padded types never count)."""
    if all_true(arrays.type_mask):
        return defense.min(axis=1)
    return jnp.where(arrays.type_mask[None, :], defense, _INT8_MAX).min(axis=1).astype(defense.dtype)


def _static_layers(arrays: ScenarioArrays):
    """(layer int[N], node_mask bool[N], defendable bool[N]) as NumPy when the network is fixed."""
    layer, mask, role = fixed(arrays.layer), fixed(arrays.node_mask), fixed(arrays.role)
    if layer is None or mask is None or role is None:
        return None
    return layer, mask, np.asarray(arrays.defendable)


def defense_score(arrays: ScenarioArrays, defense: jax.Array) -> jax.Array:
    """The reference's `defense_score` (§1.8, Q24): the running sum of per-layer minimum defenses,
    layer by layer from the data node's outwards, stopping at the first layer whose minimum is below
    `M`; +inf if none is. Layers without defendable nodes add nothing and never stop the sum (the
    grid's start row, the last, is such a layer)."""
    max_value = arrays.max_value
    static = _static_layers(arrays)
    if static is not None:
        layer, _, defendable = static
        node_min = _node_min(arrays, defense).astype(jnp.float32)
        layer_mins = []
        for r in range(int(layer.max()) + 1):
            members = np.flatnonzero((layer == r) & defendable)
            if members.size:
                m = node_min[int(members[0])]
                for i in members[1:]:
                    m = jnp.minimum(m, node_min[int(i)])
                layer_mins.append(m)
        running, prefix = jnp.float32(0.0), []
        for m in layer_mins:
            running = running + m
            prefix.append(running)
        score = jnp.float32(jnp.inf)
        for m, total in zip(reversed(layer_mins), reversed(prefix)):
            score = jnp.where(m < max_value, total, score)
        return score
    n = arrays.layer.shape[-1]
    in_layer = (arrays.layer[None, :] == jnp.arange(n)[:, None]) & arrays.defendable[None, :]
    layer_min = jnp.where(in_layer, _node_min(arrays, defense).astype(jnp.int32)[None, :], _INT8_MAX).min(axis=1)
    occupied = in_layer.any(axis=1)
    prefix = jnp.cumsum(jnp.where(occupied, layer_min, 0)).astype(jnp.float32)
    stops = occupied & (layer_min < max_value)
    return jnp.where(stops.any(), prefix[jnp.argmax(stops)], jnp.float32(jnp.inf))


def _prefix_min(values: jax.Array) -> jax.Array:
    """`out[i] = min(values[:i + 1])` for a short vector, unrolled (fuses on a CPU; see above)."""
    out = [values[0]]
    for i in range(1, values.shape[0]):
        out.append(jnp.minimum(out[-1], values[i]))
    return jnp.stack(out)


def _layer_prefix_min(arrays: ScenarioArrays, defense: jax.Array):
    """`row_min(row)`: the minimum defense over nodes `0 … count-1` and every type, where `count` is
    the number of nodes in layer `row` (the reference uses row-local indices as node ids, Q9)."""
    static = _static_layers(arrays)
    if static is not None:
        # Layers are few and static: each layer's value is selected rather than gathered.
        layer, mask, _ = static
        prefix_min = _prefix_min(_node_min(arrays, defense))
        counts = [int(((layer == r) & mask).sum()) for r in range(int(layer.max()) + 1)]

        def row_min(row):
            out = jnp.asarray(_INT8_MAX, defense.dtype)
            for r, count in enumerate(counts):
                out = jnp.where(row == r, prefix_min[count - 1] if count > 0 else _INT8_MAX, out)
            return out

        return row_min
    node_min = jnp.where(arrays.node_mask, _node_min(arrays, defense).astype(jnp.int32), _INT8_MAX)
    index = jnp.arange(node_min.shape[0])

    def row_min(row):
        count = (arrays.node_mask & (arrays.layer == row)).sum()
        return jnp.where(index < count, node_min, _INT8_MAX).min()

    return row_min


def _pair(attacker, defender) -> jax.Array:
    return jnp.stack([jnp.asarray(attacker, jnp.float32), jnp.asarray(defender, jnp.float32)])


def outcome_rewards(
    shape: ScenarioShape,
    arrays: ScenarioArrays,
    reference_defense_score: jax.Array,
    *,
    defense: jax.Array,
    revealed: jax.Array,
    recon_targeted: jax.Array,
    failed: jax.Array,
    node: jax.Array,
    attack_type: jax.Array,
    is_recon: jax.Array,
    num_failed: jax.Array,
    furthest_row: jax.Array,
    num_hacked: jax.Array,
    attacker_row: jax.Array,
):
    """Rewards of the three outcomes of a legal attack on `node`, computed on the post-attack state.

    `num_failed` is the failure streak before this step, `num_hacked` counts this step's move,
    `attacker_row` is the layer the attacker attacked from, `reference_defense_score` the
    construction-time layout's `defense_score` (Q23). Returns `(success, hack, detected,
    furthest_row_after_success)`: three float32 pairs and an int.
    """
    new_row = jnp.asarray(arrays.layer)[node]
    deeper = new_row < furthest_row
    shallower = new_row > furthest_row

    def one_plus_bonus():
        # `1 + bonus` with bonus = 1/nf, as one division so float32 rounds it once (§4.4).
        nf = num_failed.astype(jnp.float32)
        return jnp.where(num_failed == 0, 2.0, (nf + 1.0) / jnp.maximum(nf, 1.0))

    def sparse():
        return _pair(0, 0), _pair(1, -1), _pair(-1, 1), furthest_row

    def dense():  # §7.2
        bonus = one_plus_bonus()
        # The extra reconnaissance reward is a switch of the reference that no version turns on.
        extra = jnp.where(recon_targeted[node], 1.0, 0.0) if shape.extra_reconnaissance_reward else 0.0
        success = jnp.where(deeper, _pair(bonus + extra, 0), jnp.where(shallower, _pair(-1, 0), _pair(0, 0)))
        return success, _pair(bonus, -num_hacked), _pair(-1, 1), jnp.where(deeper, new_row, furthest_row)

    def dense_v1_v2():  # §7.3
        success = jnp.where(deeper, _pair(1, -1), jnp.where(shallower, _pair(-1, 1), _pair(0, 0)))
        hack = _pair(one_plus_bonus(), -num_hacked)
        return success, hack, _pair(-100, 100), jnp.where(deeper, new_row, furthest_row)

    def dense_v3():  # §7.4: "informed" attacks pay G; the min-set of the new or current layer (Q9)
        node_type_defense = defense[node, attack_type]
        row_min = _layer_prefix_min(arrays, defense)
        is_revealed = revealed[node]
        informed_new = is_revealed & (node_type_defense <= row_min(new_row))
        informed_current = is_revealed & (node_type_defense <= row_min(attacker_row))
        good = 1 + failed[node, attack_type].astype(jnp.int32)
        failed_cells = (failed > 0).sum(axis=1, dtype=jnp.int32)  # per node
        bad = failed_cells.sum() - jnp.where(jnp.arange(failed_cells.shape[0]) == node, failed_cells, 0).sum()
        gain = jnp.maximum(good - bad * bad, 0)
        score = defense_score(arrays, defense)
        layers = jnp.where(arrays.node_mask, arrays.layer, 0).max() + 1
        max_score = (arrays.max_value * layers).astype(jnp.float32)
        success = jnp.where(informed_new, _pair(gain, 0), _pair(-1, 0))
        hack = _pair(jnp.where(informed_new, gain, -1), score - max_score)
        detected = _pair(jnp.where(~is_recon & informed_current, 0, -1), score - reference_defense_score)
        return success, hack, detected, furthest_row

    branches = {
        RewardFamily.SPARSE: sparse,
        RewardFamily.DENSE: dense,
        RewardFamily.DENSE_V3: dense_v3,
        RewardFamily.DENSE_V1_V2: dense_v1_v2,
    }
    family = fixed(arrays.reward_family)
    if family is not None:  # a registered id: its one family
        return branches[RewardFamily(int(family))]()
    branches = [branches[f] for f in sorted(branches)]
    # Where the whole batch plays one family (the usual case), only that family is computed.
    same, family = batch_uniform(arrays.reward_family)
    return jax.lax.cond(
        same,
        lambda: jax.lax.switch(family, branches),
        lambda: jax.lax.switch(arrays.reward_family, branches),
    )
