"""Both players' observations, with the reference's values and shapes in int8 (spec §6)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.config import GameConfig
from idsjax.types import VALUE_DTYPE, EnvState


def attacker_observation(config: GameConfig, state: EnvState) -> jax.Array:
    """The attacker's view (§6.1-6.4).

    Rows per node: attack values where visible (own node, adjacent nodes, or all when fully
    observed), then a flag for the attacker's node; with reconnaissance, the reconnaissance state and
    the revealed flag of every node follow. Local views (v14, v15, v18) instead show, per slot, the
    node above (the slot below is always empty, Q15) with its node id in place of the flag, -1 elsewhere.
    """
    net = config.network
    n = config.num_nodes
    here = jnp.arange(n) == state.position
    extra = [state.recon, state.revealed[:, None].astype(VALUE_DTYPE)] if config.reconnaissance else []

    if config.spec.local_view:
        slots = jnp.asarray(config.local_view_slots)[state.position]  # int32[slots]
        ids = jnp.arange(n, dtype=VALUE_DTYPE)[:, None]
        rows = jnp.concatenate([state.attack, ids] + extra, axis=1)
        shown = rows[jnp.maximum(slots, 0)]
        return jnp.where(slots[:, None] >= 0, shown, jnp.asarray(-1, VALUE_DTYPE))

    visible = here | jnp.asarray(net.adjacency)[state.position]
    if config.spec.fully_observed:
        visible = jnp.ones_like(visible)
    attack = jnp.where(visible[:, None], state.attack, jnp.asarray(0, VALUE_DTYPE))
    return jnp.concatenate([attack, here[:, None].astype(VALUE_DTYPE)] + extra, axis=1)


def defender_observation(config: GameConfig, state: EnvState) -> jax.Array:
    """The defender's view (§6.5): every node's defense values and detection value, which is how the
    state stores them (`EnvState.defense_detection`): observing copies nothing."""
    del config
    return state.defense_detection
