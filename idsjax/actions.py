"""Action ids: decoding, legality masks and the v18 local-to-global conversion (spec §1.7, §4.1).

Out-of-range ids cannot raise inside jit. They never alias a valid action: an attack id outside
`0 … num_attack_ids-1` (including the reference's `-1`, "no attack") is an illegal attack, and a
defense id outside `0 … num_defense_actions-1` is no defense at all.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.config import GameConfig
from idsjax.types import EnvParams, EnvState


def decode_attack(config: GameConfig, action: jax.Array):
    """Global attack id -> (in_range, node, attack type, is_reconnaissance). Reconnaissance is type 0."""
    action = jnp.asarray(action, jnp.int32)
    in_range = (action >= 0) & (action < config.num_attack_ids)
    safe = jnp.where(in_range, action, 0)
    node, kind = safe // config.attack_id_width, safe % config.attack_id_width
    is_recon = (kind == config.attack_types) if config.reconnaissance else jnp.bool_(False)
    return in_range, node, jnp.where(is_recon, 0, kind), is_recon


def decode_defense(config: GameConfig, action: jax.Array):
    """Defense id -> (in_range, node, type). Type `A` raises the node's detection value."""
    action = jnp.asarray(action, jnp.int32)
    in_range = (action >= 0) & (action < config.num_defense_actions)
    safe = jnp.where(in_range, action, 0)
    return in_range, safe // (config.attack_types + 1), safe % (config.attack_types + 1)


def attack_mask(config: GameConfig, state: EnvState, params: EnvParams) -> jax.Array:
    """bool[num_attack_ids]: the reference's `is_attack_id_legal` for every global id.

    Positional legality (adjacent, not below, not self) and, for real attacks, a value below `M`.
    `step` itself accepts positionally legal attacks on maxed types (Q6); bots and masks do not.
    """
    reachable = jnp.asarray(config.network.attack_reachable)[state.position]
    allowed = state.attack < params.max_value
    if config.reconnaissance:
        allowed = jnp.concatenate([allowed, jnp.ones((config.num_nodes, 1), bool)], axis=1)
    return (reachable[:, None] & allowed).reshape(-1)


def defense_mask(config: GameConfig) -> jax.Array:
    """bool[num_defense_actions]: the reference's `is_defense_id_legal` (servers and data only).

    `step` also applies defenses of the start node (Q2); they are legal moves that help no one.
    """
    defendable = jnp.asarray(config.network.defendable)
    return jnp.repeat(defendable, config.attack_types + 1)


def local_to_global_attack(config: GameConfig, position: jax.Array, local_action: jax.Array) -> jax.Array:
    """v18's advertised local ids -> global ids via the local-view slots (§4.1); -1 where the slot is empty."""
    width = config.attack_id_width
    local_action = jnp.asarray(local_action, jnp.int32)
    in_range = (local_action >= 0) & (local_action < config.num_attack_actions)
    slot = jnp.where(in_range, local_action // width, 0)
    target = jnp.asarray(config.local_view_slots)[position, slot]
    return jnp.where(in_range & (target >= 0), target * width + local_action % width, -1)
