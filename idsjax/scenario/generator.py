"""Random networks drawn inside jit: `generate(key, family) -> ScenarioArrays`, pure, jittable, vmappable.

The family (`Family`, static and hashable) is layered like the built-in grids but irregular:

- `L` server layers, uniform on `min_layers … max_layers`; layer `r` has `w_r` servers, each width
  uniform on `min_width … max_width`, independently.
- The start node links to every server of the deepest layer `L`, every server of layer 1 links to the
  data node. Between consecutive layers each (deeper server, shallower server) pair is an edge with
  probability `edge_p`; in addition every deeper server gets one edge to a uniformly chosen server of
  the layer above it and every shallower server one edge from a uniformly chosen server of the layer
  below it, so every server is reachable from the start node and reaches the data node.
- Horizontally adjacent servers of a layer are laterally linked (both directions) with probability
  `lateral_p`.
- Each server and the data node get attack, defense and detection values uniform on the family's
  ranges, drawn once with the network (a node's types share its defense value); each server has one
  vulnerable type (uniform over the types) with probability `vulnerable_p`, the data node always has
  one when `data_vulnerable`; vulnerable types take a value uniform on `vulnerability`.

Nothing is drawn again at a reset (`randomize` False, no per-layer draw): draw a new network at every
reset for fresh values. Padded node `i`: 0 is the data node, `1 + (r-1)·max_width + c` the server in
column `c` of layer `r`, `max_nodes - 1` the start node; absent servers have `node_mask` False.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.network import DATA, EMPTY, SERVER, START
from idsjax.scenario.arrays import VIEW_CODES, ScenarioArrays, ScenarioShape
from idsjax.scenario.schema import MAX_ATTACK_TYPES, MAX_DETECTION, MAX_VALUE_CAP, REWARD_FAMILIES, ScenarioError


@dataclasses.dataclass(frozen=True)
class Family:
    """The parameters of a family of generated networks (static: they fix the padded shape)."""

    min_layers: int = 1
    max_layers: int = 3
    min_width: int = 1
    max_width: int = 3
    edge_p: float = 0.3
    lateral_p: float = 0.0
    attack_types: int = 4
    max_value: int = 9
    attack: tuple[int, int] = (0, 0)
    defense: tuple[int, int] = (2, 4)
    detection: tuple[int, int] = (1, 3)
    vulnerability: tuple[int, int] = (0, 1)
    vulnerable_p: float = 0.5
    data_vulnerable: bool = True
    rewards: str = "sparse"
    view: str = "partial"
    max_steps: int = 102

    def __post_init__(self):
        self.check()

    @property
    def max_nodes(self) -> int:
        return self.max_layers * self.max_width + 2

    @property
    def shape(self) -> ScenarioShape:
        return ScenarioShape(max_nodes=self.max_nodes, attack_types=self.attack_types, draw_slots=self.max_nodes)

    def check(self) -> None:
        """Refuse, with one sentence naming the field, parameters that draw no valid network."""

        def fail(field, expected, got):
            raise ScenarioError(f"generator family: field `{field}`: expected {expected}, got {got!r}.")

        for name in ("min_layers", "max_layers", "min_width", "max_width", "attack_types", "max_value", "max_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                fail(name, "a positive integer", v)
        if self.min_layers > self.max_layers:
            fail("min_layers", f"at most max_layers = {self.max_layers}", self.min_layers)
        if self.min_width > self.max_width:
            fail("min_width", f"at most max_width = {self.max_width}", self.min_width)
        if self.attack_types > MAX_ATTACK_TYPES:
            fail("attack_types", f"at most {MAX_ATTACK_TYPES}", self.attack_types)
        if self.max_value > MAX_VALUE_CAP:
            fail("max_value", f"at most {MAX_VALUE_CAP}", self.max_value)
        if not 2 <= self.max_steps <= 127:
            fail("max_steps", "2 … 127", self.max_steps)
        for name in ("edge_p", "lateral_p", "vulnerable_p"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                fail(name, "a probability in [0, 1]", v)
        for name in ("attack", "defense", "detection", "vulnerability"):
            v, cap = getattr(self, name), MAX_DETECTION if name == "detection" else self.max_value
            if not (
                isinstance(v, tuple)
                and len(v) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
                and 0 <= v[0] <= v[1] <= cap
            ):
                fail(name, f"a pair (low, high) of integers with 0 <= low <= high <= {cap}", v)
        if self.rewards not in REWARD_FAMILIES:
            fail("rewards", f"one of {', '.join(REWARD_FAMILIES)}", self.rewards)
        if self.view not in ("partial", "full"):
            fail("view", "partial or full", self.view)


# Named families, for the command lines of the views (`idsjax.game_arguments`) and of the research kit
# (`baselines.scenarios`). The numbers of versions 0, 2-4 and 7-9 (ten attack types, cap 9, defense and
# detection 2, one vulnerable type of value 0 on every server), so that a policy trained on a family
# reads those versions' observations and plays their game; the networks are random, sized as named.
_LIKE_V3 = dict(attack_types=10, max_value=9, defense=(2, 2), detection=(2, 2), vulnerability=(0, 0), vulnerable_p=1.0)
FAMILIES: dict[str, dict] = {
    "small": dict(min_layers=1, max_layers=2, min_width=1, max_width=3, **_LIKE_V3),  # <= 8 nodes
    "medium": dict(min_layers=2, max_layers=3, min_width=2, max_width=4, **_LIKE_V3),  # <= 14 nodes
    "large": dict(min_layers=3, max_layers=5, min_width=3, max_width=5, **_LIKE_V3),  # <= 27 nodes
    "default": dict(),  # the generator's own defaults (4 attack types, varied values)
}


def named_family(name: str, overrides=()) -> Family:
    """The `Family` named `name` (`FAMILIES`) with `K=V` overrides of its fields (the command lines'
    `--generator NAME --generator-arg K=V`); a bad name or override raises `ScenarioError` with one
    sentence naming the option."""
    if name not in FAMILIES:
        raise ScenarioError(f"--generator {name!r} is not a generator family; use one of {', '.join(FAMILIES)}")
    fields = {f.name: f for f in dataclasses.fields(Family)}
    values = dict(FAMILIES[name])
    for arg in overrides:
        key, sep, text = arg.partition("=")
        if not sep or key not in fields:
            raise ScenarioError(
                f"--generator-arg {arg!r}: expected K=V with K a field of the family ({', '.join(fields)})"
            )
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            elif isinstance(default, tuple):
                value = tuple(int(x) for x in text.split(","))
            else:
                value = type(default)(text)
        except ValueError:
            shown = "LOW,HIGH" if isinstance(default, tuple) else type(default).__name__
            raise ScenarioError(f"--generator-arg {arg!r}: expected {key}={shown}") from None
        values[key] = value
    try:
        return Family(**values)
    except ScenarioError as err:
        raise ScenarioError(f"--generator {name}: {err}") from None


def _uniform_int(u: jax.Array, low, high) -> jax.Array:
    """Integers uniform on `low … high` (inclusive) from uniforms on [0, 1)."""
    span = high - low + 1
    return (low + jnp.minimum(jnp.floor(u * span), span - 1)).astype(jnp.int32)


def _uniforms(key: jax.Array, shapes: dict[str, tuple[int, ...]]) -> dict[str, jax.Array]:
    """Independent uniforms on [0, 1) of the given shapes from one draw: one threefry call compiles
    far faster than a dozen (seconds per compile on a loaded CPU)."""
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    flat = jax.random.uniform(key, (sum(sizes),))
    out, start = {}, 0
    for (name, shape), size in zip(shapes.items(), sizes):
        out[name] = flat[start : start + size].reshape(shape)
        start += size
    return out


def generate(key: jax.Array, family: Family) -> ScenarioArrays:
    """One network of `family` as padded arrays of `family.shape`; pure, so `jit`/`vmap` it freely."""
    lmax, w, a, n = family.max_layers, family.max_width, family.attack_types, family.max_nodes
    u = _uniforms(
        key,
        {
            "layers": (),
            "widths": (lmax,),
            "edges": (lmax - 1, w, w),
            "up": (lmax - 1, w),
            "from": (lmax - 1, w),
            "lateral": (lmax, w - 1),
            "vulnerable": (n,),
            "type": (n,),
            "attack": (n,),
            "defense": (n,),
            "detection": (n,),
            "vulnerability": (n,),
        },
    )
    num_layers = _uniform_int(u["layers"], family.min_layers, family.max_layers)
    widths = _uniform_int(u["widths"], family.min_width, family.max_width)  # layer r+1 at index r
    layer_live = jnp.arange(lmax) < num_layers
    widths = jnp.where(layer_live, widths, 0)
    active = jnp.arange(w)[None, :] < widths[:, None]  # [lmax, w]

    # Index grids (static): server (r, c) -> padded node id.
    server_id = 1 + np.arange(lmax)[:, None] * w + np.arange(w)[None, :]
    data, start = 0, n - 1

    # Between layer r+1 (index r, shallower) and r+2 (index r+1, deeper): down[r, u, v] is the edge from
    # deeper server u to shallower server v.
    pair_live = active[1:, :, None] & active[:-1, None, :]  # [lmax-1, u (deeper), v (shallower)]
    random_edge = u["edges"] < family.edge_p
    # Each deeper server's guaranteed edge up, and each shallower server's guaranteed edge from below.
    up_pick = jnp.floor(u["up"] * widths[:-1, None]).astype(jnp.int32)
    from_pick = jnp.floor(u["from"] * widths[1:, None]).astype(jnp.int32)
    cols = jnp.arange(w)
    guaranteed = (up_pick[:, :, None] == cols[None, None, :]) | (from_pick[:, None, :] == cols[None, :, None])
    down = pair_live & (random_edge | guaranteed)

    reach = jnp.zeros((n, n), bool)
    if lmax > 1:
        src = np.broadcast_to(server_id[1:, :, None], down.shape)
        dst = np.broadcast_to(server_id[:-1, None, :], down.shape)
        reach = reach.at[src, dst].set(down)
    reach = reach.at[server_id[0], data].set(active[0])  # layer 1 -> data
    deepest = jnp.arange(lmax)[:, None] == num_layers - 1
    reach = reach.at[start, server_id].set(active & deepest)  # start -> layer L
    lateral = active[:, 1:] & active[:, :-1] & (u["lateral"] < family.lateral_p)
    reach = reach.at[server_id[:, :-1], server_id[:, 1:]].set(lateral)
    reach = reach.at[server_id[:, 1:], server_id[:, :-1]].set(lateral)

    node_mask = jnp.zeros(n, bool).at[server_id].set(active).at[data].set(True).at[start].set(True)
    role = jnp.full(n, EMPTY, jnp.int32).at[server_id].set(jnp.where(active, SERVER, EMPTY))
    role = role.at[data].set(DATA).at[start].set(START)
    layer = jnp.zeros(n, jnp.int32).at[server_id].set(jnp.where(active, np.arange(1, lmax + 1)[:, None], 0))
    layer = layer.at[start].set(num_layers + 1)
    x = jnp.where(active, cols[None, :] - (widths[:, None] - 1) / 2.0, 0.0)
    position = (
        jnp.zeros((n, 2), jnp.float32).at[server_id].set(jnp.stack([x, jnp.where(active, layer[server_id], 0)], -1))
    )
    position = position.at[start].set(jnp.array([0.0, 1.0]) * (num_layers + 1))

    defendable = (role == SERVER) | (role == DATA)

    def fixed_values(name, bounds):
        v = jnp.where(defendable, _uniform_int(u[name], bounds[0], bounds[1]), 0)
        return jnp.stack([v, v], axis=1)

    vulnerable_node = (role == SERVER) & (u["vulnerable"] < family.vulnerable_p)
    vulnerable_node = vulnerable_node | ((role == DATA) & family.data_vulnerable)
    vulnerable_type = _uniform_int(u["type"], 0, a - 1)
    vulnerable_fixed = vulnerable_node[:, None] & (jnp.arange(a)[None, :] == vulnerable_type[:, None])

    return ScenarioArrays(
        node_mask=node_mask,
        role=role,
        start_node=jnp.int32(start),
        data_node=jnp.int32(data),
        reach=reach,
        neighbors=reach | reach.T,
        layer=layer,
        position=position,
        num_attack_types=jnp.int32(a),
        type_mask=jnp.ones(a, bool),
        max_value=jnp.int32(family.max_value),
        attack_range=fixed_values("attack", family.attack),
        defense_range=fixed_values("defense", family.defense),
        detection_range=fixed_values("detection", family.detection),
        vulnerability_range=fixed_values("vulnerability", family.vulnerability),
        randomize=jnp.bool_(False),
        vulnerable_fixed=vulnerable_fixed,
        vulnerable_candidate=role == SERVER,
        vulnerable_always=jnp.zeros(n, bool),
        vulnerable_per_layer=jnp.int32(0),
        vulnerabilities_per_node=jnp.int32(0),
        draw_slot=jnp.where(node_mask, jnp.arange(n, dtype=jnp.int32), -1),
        start_weight=(jnp.arange(n) == start).astype(jnp.int32),
        view=jnp.int32(VIEW_CODES[family.view]),
        local_view=jnp.full((n, 2), -1, jnp.int32),
        visibility_p=jnp.float32(0.0),
        detection_factor=jnp.float32(1.0),
        reward_family=jnp.int32(REWARD_FAMILIES.index(family.rewards)),
        max_steps=jnp.int32(family.max_steps),
    )
