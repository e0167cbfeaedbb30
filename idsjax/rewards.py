"""The reward families (spec §7): what each outcome of a legal attack pays to both players.

Every reward is a float32 pair (attacker, defender). Illegal attacks (-1, 0) and the step-limit
penalty (-100, -100) are common to all families and handled by the transition.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.config import GameConfig
from idsjax.types import EnvParams
from idsjax.versions import RewardFamily


def defense_score(config: GameConfig, defense: jax.Array, max_value: jax.Array) -> jax.Array:
    """The reference's `defense_score` (§1.8, Q24): running sum of per-row minimum defenses, row by row
    from the data row, stopping at the first row whose minimum is below `M`; +inf if none is."""
    net = config.network
    node_min = jnp.where(jnp.asarray(net.defendable), defense.min(axis=1).astype(jnp.float32), jnp.inf)
    in_row = jnp.asarray(net.node_row)[None, :] == jnp.arange(net.rows)[:, None]  # bool[R, N]
    row_min = jnp.where(in_row, node_min[None, :], jnp.inf).min(axis=1)
    below = row_min < max_value
    return jnp.where(below.any(), jnp.cumsum(row_min)[jnp.argmax(below)], jnp.inf)


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
            success = jnp.where(
                deeper, _pair(1, -1), jnp.where(new_row > furthest_row, _pair(-1, 1), _pair(0, 0))
            )
            detected = _pair(-100, 100)
        return success, hack, detected, jnp.where(deeper, new_row, furthest_row)

    # DENSE_V3 (§7.4): "informed" attacks pay G; the min-set is taken over nodes 0…k-1 of the row
    # (row-local indices used as node ids, Q9), the row being the new one on success and the current
    # one on detection.
    n = config.num_nodes
    node_defense = jnp.where(jnp.arange(n)[:, None] == node, defense, 0).max(axis=0)  # int8[A]
    node_type_defense = jnp.where(jnp.arange(config.attack_types) == attack_type, node_defense, 0).max()
    row_count = jnp.asarray(net.row_prefix_count)
    # bool[N, 1, 2]: node n is among the first row_count[row] nodes, for the (new, current) rows.
    first_rows = jnp.arange(n)[:, None, None] < row_count[jnp.array([new_row, attacker_row])][None, None, :]
    row_min = jnp.where(first_rows, defense[:, :, None], jnp.iinfo(jnp.int8).max).min(axis=(0, 1))
    is_revealed = revealed[node]
    informed_new = is_revealed & (node_type_defense <= row_min[0])
    informed_current = is_revealed & (node_type_defense <= row_min[1])

    good = 1 + failed[node, attack_type].astype(jnp.int32)
    bad = jnp.sum((failed > 0) & (jnp.arange(n) != node)[:, None])
    gain = jnp.maximum(good - bad * bad, 0)
    score = defense_score(config, defense, params.max_value)
    score_change = score - params.reference_defense_score
    max_score = (params.max_value * net.rows).astype(jnp.float32)
    success = jnp.where(informed_new, _pair(gain, 0), _pair(-1, 0))
    hack = _pair(jnp.where(informed_new, gain, -1), score - max_score)
    detected = _pair(jnp.where(~is_recon & informed_current, 0, -1), score_change)
    return success, hack, detected, furthest_row
