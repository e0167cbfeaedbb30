"""How a game's values are laid out: at construction (once per instance) and at reset (spec §3)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.config import UNKNOWN_DEFENSE, GameConfig
from idsjax.types import VALUE_DTYPE, EnvParams


def draw_layout(key: jax.Array, config: GameConfig, params: EnvParams, randomize: bool):
    """The reference's `set_state` (spec §3.2) as one vectorised draw.

    Each server row gets `vulnerable_servers_per_layer` distinct vulnerable columns; each vulnerable
    node, and always the data node, gets `vulnerabilities_per_node` type draws with replacement (Q19);
    vulnerable types take the node's vulnerability value, the others the defense value.
    With `randomize` every value is uniform on its range of `params`; without, the values are the
    construction values (the top of the defense/attack/detection ranges, the bottom of the
    vulnerability range). Distributions match the reference; its NumPy stream is not reproduced.

    Returns (attack, defense, detection, recon, revealed).
    """
    net = config.network
    n, a = config.num_nodes, config.attack_types
    k_cols, k_types, k_def, k_att, k_det, k_vul, k_vis = jax.random.split(key, 7)

    def values(k, shape, bounds, use_low):
        lo, hi = bounds[0], bounds[1]
        if randomize:
            return jax.random.randint(k, shape, lo, hi + 1)
        return jnp.broadcast_to(lo if use_low else hi, shape)

    # A uniform `vpl`-subset of columns per row: rank of i.i.d. uniforms below vpl.
    column_rank = jnp.argsort(jnp.argsort(jax.random.uniform(k_cols, (net.rows, net.cols)), axis=1), axis=1)
    vulnerable_cell = column_rank < params.vulnerable_servers_per_layer
    is_data = jnp.arange(n) == net.data_node
    vulnerable_node = vulnerable_cell[net.node_row, net.node_col] | is_data

    draws = jax.random.randint(k_types, (n, a), 0, a)
    draw_used = jnp.arange(a) < params.vulnerabilities_per_node
    vulnerable_type = jnp.any(
        (draws[:, :, None] == jnp.arange(a)[None, None, :]) & draw_used[None, :, None], axis=1
    ) & vulnerable_node[:, None]

    defendable = jnp.asarray(net.defendable)
    defense = jnp.where(
        vulnerable_type,
        values(k_vul, (n,), params.vulnerability_range, True)[:, None],
        values(k_def, (n, a), params.defense_range, False),
    )
    defense = jnp.where(defendable[:, None], defense, 0).astype(VALUE_DTYPE)
    attack = jnp.where(defendable[:, None], values(k_att, (n, a), params.attack_range, False), 0).astype(VALUE_DTYPE)
    detection = jnp.where(defendable, values(k_det, (n,), params.detection_range, False), 0).astype(VALUE_DTYPE)

    if randomize and config.spec.randomize_visibility:
        revealed = jax.random.uniform(k_vis, (n,)) < params.visibility_p
    else:
        revealed = jnp.zeros((n,), bool)
    recon = jnp.where(revealed[:, None], defense, UNKNOWN_DEFENSE).astype(VALUE_DTYPE)
    return attack, defense, detection, recon, revealed


def start_position(key: jax.Array, config: GameConfig) -> jax.Array:
    """The attacker's node at reset. With random starts the reference mistakes the empty cells of the
    start row for the start node, so the start gets `C/(L·S+C)` and each server `1/(L·S+C)` (Q17)."""
    net = config.network
    if not config.spec.random_start:
        return jnp.int32(net.start_node)
    servers = net.layers * net.servers_per_layer
    pick = jax.random.randint(key, (), 0, servers + net.cols)
    return jnp.where(pick < servers, pick + 1, net.start_node).astype(jnp.int32)
