"""A network as arrays, the one form the game is played over (spec §1-§8 over `ScenarioArrays`).

`ScenarioShape` is static (hashable; it fixes array shapes and code paths). `ScenarioArrays` holds one
network and its numbers in fixed-size arrays up to `shape.max_nodes`. Padding nodes have `node_mask`
False, role `EMPTY`, no edges and zero values, so no rule can select them.

Where the arrays come from decides what the compiled program keeps:
- a registered id closes over its version's network as NumPy constants (`IdsGameEnv.network`), so
  every rule that tests the network (an all-True mask, the reward family, the view) is decided when
  the program is traced and leaves nothing behind (`fixed`, `all_true`);
- a scenario file, a heterogeneous batch or a generated network carries jax arrays in its params, so
  one program plays any network of its shape, and the same rules are computed.

Node `i` of the arrays is the `i`-th node of the scenario (the built-in versions list theirs in the
reference's order: data node first, start node last).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from idsjax.network import DATA, SERVER, START

ROLE_CODES = {"start": START, "server": SERVER, "data": DATA}
VIEW_PARTIAL, VIEW_FULL, VIEW_LOCAL = 0, 1, 2
VIEW_CODES = {"partial": VIEW_PARTIAL, "full": VIEW_FULL, "local": VIEW_LOCAL}


class ScenarioShape(NamedTuple):
    """What one compiled program fixes: array sizes, and the switches that change shapes.

    `draw_slots` is the number of per-node uniforms a layout draw uses to pick vulnerable servers per
    layer (`ScenarioArrays.draw_slot`); a built-in grid needs `rows × cols` of them, as `layout.draw_layout`.
    """

    max_nodes: int
    attack_types: int
    reconnaissance: bool = False
    local_view: bool = False
    local_slots: int = 2
    draw_slots: int = 0  # 0: max_nodes
    # The reference's unregistered reward options (spec §7.5): static switches, off in every version.
    reconnaissance_reward: bool = False
    extra_reconnaissance_reward: bool = False

    @property
    def num_draw_slots(self) -> int:
        return self.draw_slots or self.max_nodes

    @property
    def attack_id_width(self) -> int:
        return self.attack_types + 1 if self.reconnaissance else self.attack_types

    @property
    def num_attack_ids(self) -> int:
        """Global attack ids: `max_nodes · attack_id_width`."""
        return self.max_nodes * self.attack_id_width

    @property
    def num_defense_ids(self) -> int:
        """Defense ids: `max_nodes · (attack_types + 1)`, type `A` raising detection."""
        return self.max_nodes * (self.attack_types + 1)


@struct.dataclass
class ScenarioArrays:
    """One scenario as fixed-size arrays (N = max_nodes, A = shape.attack_types).

    Graph: `node_mask` bool[N]; `role` int32[N] (`idsjax.network` codes, EMPTY on padding);
    `start_node`, `data_node` int32; `reach` bool[N, N], the edge mask: `reach[p, q]` iff an attacker on
    `p` may attack `q`; `neighbors` bool[N, N] = reach | reachᵀ, the nodes a partial view shows;
    `layer` int32[N], moves to the data node (the grid's row); `position` float32[N, 2] for drawing.
    Values: `num_attack_types` int32 and `type_mask` bool[A]; `max_value` int32; `attack_range`,
    `defense_range`, `detection_range`, `vulnerability_range` int32[N, 2] inclusive bounds per node;
    `randomize` bool: draw at every reset (else the upper ends, the vulnerability's lower end).
    Vulnerabilities: `vulnerable_fixed` bool[N, A]; `vulnerable_candidate` bool[N], servers in the
    per-layer draw of `vulnerable_per_layer` distinct nodes; `vulnerable_always` bool[N], nodes that always
    get the `vulnerabilities_per_node` type draws (the data node); `draw_slot` int32[N], the uniform each
    node ranks by in the per-layer draw (ties: the lower slot first).
    Game: `start_weight` int32[N], weights of the starting node (one 1 on the start node unless random
    starts); `view` int32 (0 partial, 1 full, 2 local); `local_view` int32[N, slots], -1 empty;
    `visibility_p`, `detection_factor` float32; `reward_family` int32 (`idsjax.versions.RewardFamily`);
    `max_steps` int32.
    """

    node_mask: jax.Array
    role: jax.Array
    start_node: jax.Array
    data_node: jax.Array
    reach: jax.Array
    neighbors: jax.Array
    layer: jax.Array
    position: jax.Array
    num_attack_types: jax.Array
    type_mask: jax.Array
    max_value: jax.Array
    attack_range: jax.Array
    defense_range: jax.Array
    detection_range: jax.Array
    vulnerability_range: jax.Array
    randomize: jax.Array
    vulnerable_fixed: jax.Array
    vulnerable_candidate: jax.Array
    vulnerable_always: jax.Array
    vulnerable_per_layer: jax.Array
    vulnerabilities_per_node: jax.Array
    draw_slot: jax.Array
    start_weight: jax.Array
    view: jax.Array
    local_view: jax.Array
    visibility_p: jax.Array
    detection_factor: jax.Array
    reward_family: jax.Array
    max_steps: jax.Array

    @property
    def defendable(self) -> jax.Array:
        """bool[N]: servers and the data node, the reference's legal defense targets."""
        return (self.role == SERVER) | (self.role == DATA)


def fixed(x):
    """`x` as a NumPy value when it is fixed when the program is traced (a registered id's network,
    closed over as NumPy constants), else None (a jax array: traced, or a scenario's params)."""
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    return None


def all_true(mask) -> bool:
    """Whether `mask` is fixed at trace time and True everywhere: a rule gated on it needs no gate."""
    value = fixed(mask)
    return value is not None and bool(value.all())


def attack_reachable(arrays: ScenarioArrays, position: jax.Array) -> jax.Array:
    """bool[N]: the nodes an attacker on `position` may attack, the grid's "adjacent, not below, not self".

    For a built-in grid, `reach` holds exactly `Network.attack_reachable`; padding rows and columns are
    all False, and a position outside `0 … N-1` reaches nothing (it never aliases a real node).
    """
    n = arrays.node_mask.shape[-1]
    in_range = (position >= 0) & (position < n)
    return arrays.reach[jnp.clip(position, 0, n - 1)] & in_range & arrays.node_mask
