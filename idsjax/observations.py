"""Both players' observations over a network's arrays, with the reference's values and shapes in int8
(spec §6). Rows are nodes, padded to `shape.max_nodes` (local views: `shape.local_slots` rows)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.arrays import VIEW_FULL, ScenarioArrays, ScenarioShape, fixed
from idsjax.types import VALUE_DTYPE, EnvState


def attacker_observation(shape: ScenarioShape, arrays: ScenarioArrays, state: EnvState) -> jax.Array:
    """The attacker's view (§6.1-6.4).

    Rows per node: attack values where visible (own node, its neighbours, or all when fully observed),
    then a flag for the attacker's node; with reconnaissance, the reconnaissance state and the
    revealed flag of every node follow. Local views (v14, v15, v18) instead show, per slot, the node
    of `arrays.local_view` (v14/v15/v18: the node above; the slot below is always empty, Q15) with its
    node id in place of the flag, -1 elsewhere.
    """
    n = shape.max_nodes
    here = jnp.arange(n) == state.position
    extra = [state.recon, state.revealed[:, None].astype(VALUE_DTYPE)] if shape.reconnaissance else []

    if shape.local_view:
        slots = jnp.asarray(arrays.local_view)[state.position]  # int32[slots]
        ids = jnp.arange(n, dtype=VALUE_DTYPE)[:, None]
        rows = jnp.concatenate([state.attack, ids] + extra, axis=1)
        shown = rows[jnp.maximum(slots, 0)]
        return jnp.where(slots[:, None] >= 0, shown, jnp.asarray(-1, VALUE_DTYPE))

    view = fixed(arrays.view)
    if view is None:  # the view is in the params: computed
        visible = here | arrays.neighbors[state.position] | (arrays.view == VIEW_FULL)
    elif view == VIEW_FULL:
        visible = jnp.ones((n,), bool)
    else:
        visible = here | jnp.asarray(arrays.neighbors)[state.position]
    attack = jnp.where(visible[:, None], state.attack, jnp.asarray(0, VALUE_DTYPE))
    return jnp.concatenate([attack, here[:, None].astype(VALUE_DTYPE)] + extra, axis=1)


def defender_observation(state: EnvState) -> jax.Array:
    """The defender's view (§6.5): every node's defense values and detection value, which is how the
    state stores them (`EnvState.defense_detection`): observing copies nothing."""
    return state.defense_detection
