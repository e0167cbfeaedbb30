"""What the scenario environment still has of its own: its params, and the layout draw and start over
arrays in the params. (The transition, rewards, action decoding, observations and bots are the game's
one copy: `idsjax.transition`, `rewards`, `actions`, `observations`, `bots`.)

For a built-in version's scenario these consume the random stream exactly as the registered ids'
`idsjax.layout` does and compute the same values bit for bit (tests/test_scenario_env.py): the
per-layer draw ranks the uniforms of `draw_slot` (the grid's cells), random starts follow
`start_weight`. Padded nodes and padded attack types never take part.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from idsjax import threefry
from idsjax.arrays import ScenarioArrays, ScenarioShape
from idsjax.config import UNKNOWN_DEFENSE
from idsjax.layout import _split_uniforms, _uniform_int
from idsjax.types import VALUE_DTYPE


@struct.dataclass
class ScenarioParams(environment.EnvParams):
    """The traced numbers of one game: its network and numbers (`scenario`), and the construction-time
    layout drawn from the seed (spec Q20) that non-randomised scenarios restore at every reset and
    dense-v3 rewards measure against. Stack several (`idsjax.scenario.stack`) and `vmap`.

    `max_steps_in_episode` is gymnax's horizon, set from `scenario.max_steps` when the params are made.
    """

    max_steps_in_episode: jax.Array = 102
    scenario: ScenarioArrays = None
    initial_attack: jax.Array = None
    initial_defense: jax.Array = None
    initial_detection: jax.Array = None
    initial_recon: jax.Array = None
    reference_defense_score: jax.Array = 0.0

    @property
    def max_value(self) -> jax.Array:
        return self.scenario.max_value


# -- layout and start (spec §3) ---------------------------------------------------------------------
def draw_layout(key: jax.Array, shape: ScenarioShape, arr: ScenarioArrays, randomize: bool):
    """`idsjax.layout.draw_layout` over the arrays, for one key: (attack, defense, detection, recon,
    revealed).

    The uniforms are split exactly as the grid code splits them (`draw_slots` cells, then per node and
    type), so a built-in scenario draws the same layout from the same key. Each layer gets
    `vulnerable_per_layer` distinct vulnerable candidates: those whose cell's uniform ranks below it
    among the layer's candidates (ties: the lower cell first). Each vulnerable node and each
    `vulnerable_always` node gets `vulnerabilities_per_node` type draws with replacement; the types of
    `vulnerable_fixed` are vulnerable in addition. With `randomize` values are uniform on each node's
    ranges, otherwise the upper ends (the vulnerability value: the lower end).
    """
    n, a = shape.max_nodes, shape.attack_types
    u = _split_uniforms(
        key,
        {
            "columns": (shape.num_draw_slots,),
            "types": (n, a),
            "defense": (n, a),
            "attack": (n, a),
            "detection": (n,),
            "vulnerability": (n,),
            "visibility": (n,),
        },
    )

    def values(name, ranges, use_low):
        low, high = ranges[:, 0], ranges[:, 1]
        if u[name].ndim == 2:
            low, high = low[:, None], high[:, None]
        if randomize:
            return _uniform_int(u[name], low, high)
        return jnp.broadcast_to(low if use_low else high, u[name].shape)

    cand = arr.vulnerable_candidate & arr.node_mask
    slot = jnp.maximum(arr.draw_slot, 0)
    cu = u["columns"][slot]
    same_layer = (arr.layer[:, None] == arr.layer[None, :]) & cand[None, :]
    beats = (cu[None, :] < cu[:, None]) | ((cu[None, :] == cu[:, None]) & (slot[None, :] < slot[:, None]))
    vulnerable_node = (cand & ((same_layer & beats).sum(axis=1) < arr.vulnerable_per_layer)) | arr.vulnerable_always

    draws = _uniform_int(u["types"], 0, arr.num_attack_types - 1)
    draw_used = jnp.arange(a) < arr.vulnerabilities_per_node
    type_ids = np.arange(a)
    drawn_type = jnp.any((draws[:, :, None] == type_ids[None, None, :]) & draw_used[None, :, None], axis=1)
    vulnerable_type = ((drawn_type & vulnerable_node[:, None]) | arr.vulnerable_fixed) & arr.type_mask

    live = arr.defendable[:, None] & arr.type_mask[None, :]
    defense = jnp.where(
        vulnerable_type,
        values("vulnerability", arr.vulnerability_range, True)[:, None],
        values("defense", arr.defense_range, False),
    )
    defense = jnp.where(live, defense, 0).astype(VALUE_DTYPE)
    attack = jnp.where(live, values("attack", arr.attack_range, False), 0).astype(VALUE_DTYPE)
    detection = jnp.where(arr.defendable, values("detection", arr.detection_range, False), 0).astype(VALUE_DTYPE)
    if randomize:
        revealed = (u["visibility"] < arr.visibility_p) & arr.node_mask
    else:
        revealed = jnp.zeros((n,), bool)
    recon = jnp.where(revealed[:, None], defense, UNKNOWN_DEFENSE).astype(VALUE_DTYPE)
    return attack, defense, detection, recon, revealed


def random_start(arr: ScenarioArrays) -> jax.Array:
    """Whether a reset draws the start: more than one node has a positive start weight."""
    return (arr.start_weight > 0).sum() > 1


def reset_is_random(arr: ScenarioArrays) -> jax.Array:
    """Whether a reset draws anything (a fresh layout, a random start), as `IdsGameEnv.reset_is_random`."""
    return arr.randomize | random_start(arr)


def start_position(key: jax.Array, arr: ScenarioArrays) -> jax.Array:
    """A node drawn with the weights `start_weight`: one uniform integer below the total weight, the
    node whose cumulative weight passes it. For a built-in grid (the start's weight the row's width,
    1 per server) this is `idsjax.layout.start_position`, draw for draw (Q17)."""
    total = arr.start_weight.sum()
    pick = _uniform_int(threefry.uniform(key), 0, total - 1)
    cumulative = jnp.cumsum(arr.start_weight)
    drawn = (cumulative <= pick).sum().astype(jnp.int32)
    return jnp.where(random_start(arr), drawn, arr.start_node).astype(jnp.int32)
