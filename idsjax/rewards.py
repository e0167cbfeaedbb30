"""The reward families (spec §7): what each outcome of a legal attack pays to both players.

Every reward is a float32 pair (attacker, defender). Illegal attacks (-1, 0) and the step-limit
penalty (-100, -100) are common to all families and handled by the transition.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.config import GameConfig
from idsjax.types import EnvParams
from idsjax.versions import RewardFamily


def defense_score(config: GameConfig, defense: jax.Array, max_value: jax.Array) -> jax.Array:
    """The reference's `defense_score` (§1.8, Q24): running sum of per-row minimum defenses, row by row
    from the data row, stopping at the first row whose minimum is below `M`; +inf if none is.

    Rows and their nodes are static, so the sums and the stop are unrolled over rows: on a CPU this
    fuses into a handful of elementwise operations on the batch instead of masked reductions and a
    cumulative sum over a [rows, nodes] grid per game (benchmarks/NOTES.md §6).
    """
    net = config.network
    node_min = defense.min(axis=1).astype(jnp.float32)
    row_mins = []
    for r in range(net.rows):
        m = jnp.float32(jnp.inf)
        for i in np.flatnonzero((np.asarray(net.node_row) == r) & np.asarray(net.defendable)):
            m = jnp.minimum(m, node_min[int(i)])
        row_mins.append(m)
    running, prefix = jnp.float32(0.0), []
    for m in row_mins:
        running = running + m
        prefix.append(running)
    score = jnp.float32(jnp.inf)
    for m, total in zip(reversed(row_mins), reversed(prefix)):
        score = jnp.where(m < max_value, total, score)
    return score


def _prefix_min(values: jax.Array) -> jax.Array:
    """`out[i] = min(values[:i + 1])` for a short vector, unrolled (fuses on a CPU; see above)."""
    out = [values[0]]
    for i in range(1, values.shape[0]):
        out.append(jnp.minimum(out[-1], values[i]))
    return jnp.stack(out)


def _pair(attacker, defender) -> jax.Array:
    return jnp.stack([jnp.asarray(attacker, jnp.float32), jnp.asarray(defender, jnp.float32)])


def outcome_rewards(
    config: GameConfig,
    params: EnvParams,
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
    `attacker_row` is the row the attacker attacked from. Returns
    `(success, hack, detected, furthest_row_after_success)`: three float32 pairs and an int.
    """
    family = config.reward_family
    net = config.network
    new_row = jnp.asarray(net.node_row)[node]

    if family == RewardFamily.SPARSE:
        return _pair(0, 0), _pair(1, -1), _pair(-1, 1), furthest_row

    if family in (RewardFamily.DENSE, RewardFamily.DENSE_V1_V2):
        # `1 + bonus` with bonus = 1/nf, as one division so float32 rounds it once (§4.4).
        nf = num_failed.astype(jnp.float32)
        one_plus_bonus = jnp.where(num_failed == 0, 2.0, (nf + 1.0) / jnp.maximum(nf, 1.0))
        deeper = new_row < furthest_row
        hack = _pair(one_plus_bonus, -num_hacked)
        if family == RewardFamily.DENSE:
            # The extra reconnaissance reward is a switch of the reference that no version turns on.
            extra = jnp.where(recon_targeted[node], 1.0, 0.0) if config.extra_reconnaissance_reward else 0.0
            success = jnp.where(
                deeper,
                _pair(one_plus_bonus + extra, 0),
                jnp.where(new_row > furthest_row, _pair(-1, 0), _pair(0, 0)),
            )
            detected = _pair(-1, 1)
        else:
            success = jnp.where(deeper, _pair(1, -1), jnp.where(new_row > furthest_row, _pair(-1, 1), _pair(0, 0)))
            detected = _pair(-100, 100)
        return success, hack, detected, jnp.where(deeper, new_row, furthest_row)

    # DENSE_V3 (§7.4): "informed" attacks pay G; the min-set is taken over nodes 0…k-1 of the row
    # (row-local indices used as node ids, Q9), the row being the new one on success and the current
    # one on detection.
    n = config.num_nodes
    node_type_defense = defense[node, attack_type]
    # Minimum defense over nodes 0 … count-1 and every type, where count is the new or current row's
    # cell count; rows are few and static, so each row's value is selected rather than gathered.
    prefix_min = _prefix_min(defense.min(axis=1))
    none = jnp.iinfo(jnp.int8).max

    def row_min(row):
        out = jnp.asarray(none, defense.dtype)
        for r, count in enumerate(np.asarray(net.row_prefix_count)):
            out = jnp.where(row == r, prefix_min[count - 1] if count > 0 else none, out)
        return out

    is_revealed = revealed[node]
    informed_new = is_revealed & (node_type_defense <= row_min(new_row))
    informed_current = is_revealed & (node_type_defense <= row_min(attacker_row))

    good = 1 + failed[node, attack_type].astype(jnp.int32)
    failed_cells = (failed > 0).sum(axis=1, dtype=jnp.int32)  # per node
    bad = failed_cells.sum() - jnp.where(jnp.arange(n) == node, failed_cells, 0).sum()
    gain = jnp.maximum(good - bad * bad, 0)
    score = defense_score(config, defense, params.max_value)
    score_change = score - params.reference_defense_score
    max_score = (params.max_value * net.rows).astype(jnp.float32)
    success = jnp.where(informed_new, _pair(gain, 0), _pair(-1, 0))
    hack = _pair(jnp.where(informed_new, gain, -1), score - max_score)
    detected = _pair(jnp.where(~is_recon & informed_current, 0, -1), score_change)
    return success, hack, detected, furthest_row
