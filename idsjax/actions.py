"""Action ids over a network's arrays: decoding, legality masks and the local-to-global conversion
(spec §1.7, §4.1).

An attack id is `node·width + type` (`width = A`, or `A + 1` with reconnaissance, type `A` scouting);
a defense id is `node·(A+1) + type`, type `A` raising the node's detection. Out-of-range ids cannot
raise inside jit. They never alias a valid action: an attack id outside `0 … num_attack_ids-1`
(including the reference's `-1`, "no attack") is an illegal attack, and a defense id outside
`0 … num_defense_ids-1` is no defense at all. Ids of padded nodes and padded types are in range, and
the transition and the masks treat them as an illegal attack and no defense.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.arrays import ScenarioArrays, ScenarioShape, all_true, attack_reachable, fixed


def decode_attack(shape: ScenarioShape, action: jax.Array):
    """Global attack id -> (in_range, node, attack type, is_reconnaissance). Reconnaissance is type 0."""
    action = jnp.asarray(action, jnp.int32)
    width = shape.attack_id_width
    in_range = (action >= 0) & (action < shape.num_attack_ids)
    safe = jnp.where(in_range, action, 0)
    node, kind = safe // width, safe % width
    is_recon = (kind == shape.attack_types) if shape.reconnaissance else jnp.bool_(False)
    return in_range, node, jnp.where(is_recon, 0, kind), is_recon


def decode_defense(shape: ScenarioShape, action: jax.Array):
    """Defense id -> (in_range, node, type). Type `A` raises the node's detection value."""
    action = jnp.asarray(action, jnp.int32)
    width = shape.attack_types + 1
    in_range = (action >= 0) & (action < shape.num_defense_ids)
    safe = jnp.where(in_range, action, 0)
    return in_range, safe // width, safe % width


def reachable_from(arrays: ScenarioArrays, position: jax.Array) -> jax.Array:
    """bool[N]: the nodes an attacker on `position` may attack.

    A registered id's network is fixed and every node real, and its position is one the game wrote,
    so this is one row of the constant `reach`; where the network is in the params, padding and
    positions outside the network reach nothing (`idsjax.arrays.attack_reachable`)."""
    if fixed(arrays.reach) is not None and all_true(arrays.node_mask):
        return jnp.asarray(arrays.reach)[position]
    return attack_reachable(arrays, position)


def attack_mask(shape: ScenarioShape, arrays: ScenarioArrays, position: jax.Array, attack: jax.Array) -> jax.Array:
    """bool[num_attack_ids]: the reference's `is_attack_id_legal` for every global id.

    Positional legality (adjacent, not below, not self) and, for real attacks, a type of the network
    whose attack value is below `M`; a reconnaissance id (`type = A`) iff the node is reachable.
    `step` itself accepts positionally legal attacks on maxed types (Q6); bots and masks do not.
    """
    reachable = reachable_from(arrays, position)
    allowed = attack < arrays.max_value
    if not all_true(arrays.type_mask):
        allowed = allowed & arrays.type_mask
    if shape.reconnaissance:
        allowed = jnp.concatenate([allowed, jnp.ones((shape.max_nodes, 1), bool)], axis=1)
    return (reachable[:, None] & allowed).reshape(-1)


def defense_mask(shape: ScenarioShape, arrays: ScenarioArrays) -> jax.Array:
    """bool[num_defense_ids]: the reference's `is_defense_id_legal`: servers and the data node, the
    network's types and detection (type `A`).

    `step` also applies defenses of the start node (Q2); they are legal moves that help no one.
    """
    types = jnp.concatenate([jnp.asarray(arrays.type_mask), jnp.ones((1,), bool)])
    return (jnp.asarray(arrays.defendable)[:, None] & types[None, :]).reshape(-1)


def local_to_global_attack(
    shape: ScenarioShape, arrays: ScenarioArrays, position: jax.Array, local_action: jax.Array
) -> jax.Array:
    """Local-view ids (v18's advertised ids, `slot·width + kind`) -> global ids via the slots of
    `arrays.local_view` (§4.1); -1 where the id is out of range or its slot is empty."""
    width = shape.attack_id_width
    local_action = jnp.asarray(local_action, jnp.int32)
    in_range = (local_action >= 0) & (local_action < shape.local_slots * width)
    slot = jnp.where(in_range, local_action // width, 0)
    target = jnp.asarray(arrays.local_view)[position, slot]
    return jnp.where(in_range & (target >= 0), target * width + local_action % width, -1)
