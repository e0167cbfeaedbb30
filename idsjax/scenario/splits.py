"""Held-out sets of networks, disjoint from training by construction (canonical hashes).

    env, params = idsjax.make_generated(named_family("small"), mode="random_defense")
    splits = make_splits(env, jax.random.PRNGKey(7), heldout=100, shape_size=50)
    train_params = splits.train_params(env, params)     # resets never play a held-out network
    ...train on (env, train_params); GeneratedEnv.check_exclusion(final_state) after training...
    for s in splits.sets: evaluate on (s.env, s.params)  # pools (GeneratedParams) or stacked built-ins

A set is K networks with distinct canonical hashes (`idsjax.scenario.canonical`): a pool drawn from the
training family (`heldout_pool`), pools of other shapes (`FAMILY_VARIATIONS`: deeper, wider, denser,
larger than the family), and the 22 built-in versions (`builtin_sets`), each group of versions that
share their observation switches padded to one `max_nodes`. Every set carries its hashes; training
excludes all of them (`Splits.exclude`), so no training reset plays a network of any set.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.arrays import ScenarioShape
from idsjax.config import UNKNOWN_DEFENSE
from idsjax.network import EMPTY
from idsjax.scenario.arrays import shape_of, stack, to_arrays
from idsjax.scenario.builtin import builtin_scenario
from idsjax.scenario.canonical import as_ints, exclusion_set, hash_networks
from idsjax.scenario.env import ScenarioEnv, _check_mode
from idsjax.scenario.game import ScenarioParams
from idsjax.scenario.generated import GeneratedEnv, GeneratedParams
from idsjax.scenario.generator import Family
from idsjax.scenario.schema import ScenarioError
from idsjax.versions import VERSIONS, Mode

# Draw rounds (each of the set's size) before a family is declared too small for a set of that size.
MAX_DRAW_ROUNDS = 32


@dataclasses.dataclass(frozen=True)
class HeldOutSet:
    """One evaluation set: `env` plays it with `params` (a `GeneratedEnv` and `GeneratedParams` whose
    pool holds the networks, or a `ScenarioEnv` and the networks' stacked `ScenarioParams`: vmap over
    them); `hashes` uint32[K, 2], one per network, distinct; `names` one per network."""

    name: str
    env: Any
    params: Any
    hashes: np.ndarray
    names: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.hashes.shape[0])


@dataclasses.dataclass(frozen=True)
class Splits:
    """The held-out sets of one training family and the exclusion set of all their hashes."""

    sets: tuple[HeldOutSet, ...]

    @property
    def exclude(self) -> np.ndarray:
        """uint32[M, 2]: every set's hashes, sorted and unique (`GeneratedParams.exclude`)."""
        return exclusion_set(*(s.hashes for s in self.sets))

    def train_params(self, env: GeneratedEnv, params: GeneratedParams | None = None) -> GeneratedParams:
        """`params` under which `env`'s resets play no network of any set (`GeneratedEnv.excluding`)."""
        return env.excluding(self.exclude, params)

    def __getitem__(self, name: str) -> HeldOutSet:
        for s in self.sets:
            if s.name == name:
                return s
        raise KeyError(f"no held-out set {name!r}; the sets are {', '.join(s.name for s in self.sets)}")


def draw_distinct(
    env: GeneratedEnv, key: jax.Array, size: int, params: GeneratedParams | None = None, avoid=None
) -> tuple[ScenarioParams, np.ndarray]:
    """`size` networks of `env`'s family with distinct canonical hashes, none in `avoid` (uint32[M, 2]
    or None): `(stacked ScenarioParams [size], hashes uint32[size, 2])`. Draws rounds of `size` networks
    from `fold_in(key, round)` and keeps each new hash's first network; raises `ScenarioError` when
    `MAX_DRAW_ROUNDS` rounds find fewer (the family has too few distinct networks for this size)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"a held-out set holds at least one network, got size {size!r}")
    params = (env.default_params if params is None else params).replace(pool=None, exclude=None)
    seen = set(as_ints(avoid)) if avoid is not None else set()
    kept: list[ScenarioParams] = []
    hashes: list[np.ndarray] = []
    draw = jax.jit(jax.vmap(env.draw_network, in_axes=(0, None)))
    for round_ in range(MAX_DRAW_ROUNDS):
        networks = draw(jax.random.split(jax.random.fold_in(key, round_), size), params)
        round_hashes = hash_networks(networks, env.shape)
        for i, h in enumerate(as_ints(round_hashes)):
            if h not in seen and len(kept) < size:
                seen.add(h)
                kept.append(jax.tree.map(lambda x, i=i: x[i], networks))
                hashes.append(round_hashes[i])
        if len(kept) == size:
            return stack(kept), np.stack(hashes).astype(np.uint32)
    raise ScenarioError(
        f"{env.family}: found only {len(kept)} distinct networks in {MAX_DRAW_ROUNDS * size} draws, "
        f"fewer than the {size} asked for; ask for a smaller set or widen the family."
    )


def heldout_pool(
    env: GeneratedEnv,
    key: jax.Array,
    size: int,
    params: GeneratedParams | None = None,
    name: str = "heldout",
    avoid=None,
) -> HeldOutSet:
    """`size` distinct networks of `env`'s own family as a `GeneratedEnv` pool (`GeneratedParams.pool`)."""
    pool, hashes = draw_distinct(env, key, size, params, avoid)
    params = (env.default_params if params is None else params).replace(pool=pool, exclude=None)
    return HeldOutSet(name, env, params, hashes, tuple(f"{name}-{i}" for i in range(size)))


def _deeper(f: Family) -> Family:
    return dataclasses.replace(f, min_layers=f.max_layers + 1, max_layers=f.max_layers + 2)


def _wider(f: Family) -> Family:
    return dataclasses.replace(f, min_width=f.max_width + 1, max_width=f.max_width + 2)


def _denser(f: Family) -> Family:
    return dataclasses.replace(f, edge_p=min(1.0, f.edge_p + 0.4), lateral_p=max(f.lateral_p, 0.5))


def _larger(f: Family) -> Family:
    return _wider(_deeper(f))


# Shapes other than trained on. Deeper / wider / larger: every network has more layers / wider layers /
# both than the family ever draws (so more nodes: another compiled shape). Denser: the family's sizes
# with 0.4 more edge probability and lateral links at 0.5 at least (same shape; its networks may
# coincide with the family's, which the exclusion then removes from training).
FAMILY_VARIATIONS = {"deeper": _deeper, "wider": _wider, "denser": _denser, "larger": _larger}


def shape_sets(
    env: GeneratedEnv,
    key: jax.Array,
    size: int,
    params: GeneratedParams | None = None,
    variations=tuple(FAMILY_VARIATIONS),
) -> list[HeldOutSet]:
    """One pool of `size` distinct networks per variation of `env`'s family (`FAMILY_VARIATIONS`), each
    with its own `GeneratedEnv` (same mode) and the training params' horizon."""
    horizon = (env.default_params if params is None else params).max_steps_in_episode
    out = []
    for i, name in enumerate(variations):
        if name not in FAMILY_VARIATIONS:
            raise ValueError(f"unknown family variation {name!r}: expected one of {', '.join(FAMILY_VARIATIONS)}")
        variant = GeneratedEnv(FAMILY_VARIATIONS[name](env.family), env.mode, name=f"{env.name}-{name}")
        variant_params = variant.default_params.replace(max_steps_in_episode=horizon)
        out.append(heldout_pool(variant, jax.random.fold_in(key, 1000 + i), size, variant_params, name=name))
    return out


def pad_network(
    params: ScenarioParams, shape: ScenarioShape, max_nodes: int | None = None, attack_types: int | None = None
) -> tuple[ScenarioParams, ScenarioShape]:
    """One network's params (no batch axis) padded to `max_nodes` nodes and `attack_types` types (None:
    as they are), keeping its construction-time layout (re-making the scenario at another size would
    draw another one from the same seed). Padding is what `to_arrays` and `draw_layout` leave there: no
    mask, role or edges, zero values, unknown recon, slot -1. The same game: its canonical hash is
    unchanged. Returns the padded params and shape."""
    n, a = shape.max_nodes, shape.attack_types
    max_nodes = n if max_nodes is None else max_nodes
    attack_types = a if attack_types is None else attack_types
    if max_nodes < n:
        raise ScenarioError(
            f"pad_network: field `max_nodes`: expected at least the network's {n} nodes, got {max_nodes}."
        )
    if attack_types < a:
        raise ScenarioError(
            f"pad_network: field `attack_types`: expected at least the network's {a}, got {attack_types}."
        )
    extra, more = max_nodes - n, attack_types - a

    def pad(x, fill, nodes_axes=(0,), types_axes=()):
        x = jnp.asarray(x)
        widths = [(0, 0)] * x.ndim
        for ax in nodes_axes:
            widths[ax] = (0, extra)
        for ax in types_axes:
            widths[ax] = (0, more)
        return jnp.pad(x, widths, constant_values=np.asarray(fill, x.dtype))

    arr = params.scenario
    scenario = arr.replace(
        node_mask=pad(arr.node_mask, False),
        role=pad(arr.role, EMPTY),
        reach=pad(arr.reach, False, (0, 1)),
        neighbors=pad(arr.neighbors, False, (0, 1)),
        layer=pad(arr.layer, 0),
        position=pad(arr.position, 0.0),
        type_mask=pad(arr.type_mask, False, (), (0,)),
        attack_range=pad(arr.attack_range, 0),
        defense_range=pad(arr.defense_range, 0),
        detection_range=pad(arr.detection_range, 0),
        vulnerability_range=pad(arr.vulnerability_range, 0),
        vulnerable_fixed=pad(arr.vulnerable_fixed, False, (0,), (1,)),
        vulnerable_candidate=pad(arr.vulnerable_candidate, False),
        vulnerable_always=pad(arr.vulnerable_always, False),
        draw_slot=pad(arr.draw_slot, -1),
        start_weight=pad(arr.start_weight, 0),
        local_view=pad(arr.local_view, -1),
    )
    padded = params.replace(
        scenario=scenario,
        initial_attack=pad(params.initial_attack, 0, (0,), (1,)),
        initial_defense=pad(params.initial_defense, 0, (0,), (1,)),
        initial_detection=pad(params.initial_detection, 0),
        initial_recon=pad(params.initial_recon, UNKNOWN_DEFENSE, (0,), (1,)),
    )
    padded_shape = shape._replace(
        max_nodes=max_nodes, attack_types=attack_types, draw_slots=max(shape.num_draw_slots, max_nodes)
    )
    return padded, padded_shape


def builtin_sets(mode: Mode | str = "", seed: int = 0, max_nodes: int | None = None) -> list[HeldOutSet]:
    """The 22 built-in versions (with `mode`'s numbers; those whose opponents refuse `mode`'s bot left
    out) as sets of stacked `ScenarioParams`, one set per group of versions that share observation
    switches (reconnaissance, local view: one compiled program plays one observation layout), each
    padded to its largest version's node count or `max_nodes`, attack types to the group's most.
    Every version keeps the construction-time layout `make_scenario(version, seed=seed)` draws. Named
    `builtin-<view>[-recon]`; `names` are `v<k>`."""
    mode = Mode(mode)
    groups: dict[tuple, list] = {}
    for version in range(len(VERSIONS)):
        scenario = builtin_scenario(version, mode)
        try:
            _check_mode(scenario, mode)
        except ValueError:
            continue
        shape = shape_of(scenario)
        groups.setdefault((shape.reconnaissance, shape.local_view, shape.local_slots), []).append((version, scenario))
    out = []
    key = jax.random.PRNGKey(seed)
    for (recon, local, slots), members in groups.items():
        shapes = [shape_of(s) for _, s in members]
        types = max(sh.attack_types for sh in shapes)
        nodes = max(sh.max_nodes for sh in shapes)
        if max_nodes is not None:
            if max_nodes < nodes:
                raise ScenarioError(
                    f"builtin_sets: field `max_nodes`: expected at least {nodes} (the largest version), got {max_nodes}."
                )
            nodes = max_nodes
        padded = []
        for (version, scenario), sh in zip(members, shapes):
            # The layout is drawn at the version's own shape (its uniforms split by that shape), then padded.
            params = ScenarioEnv(sh, mode).make_params(to_arrays(scenario, sh), key)
            padded.append(pad_network(params, sh, nodes, types))
        shape = padded[0][1]._replace(draw_slots=max(p[1].num_draw_slots for p in padded))
        params = stack([p[0] for p in padded])
        name = "builtin-" + ("local" if local else "partial-or-full") + ("-recon" if recon else "")
        hashes = hash_networks(params, shape)
        out.append(
            HeldOutSet(
                name,
                ScenarioEnv(shape, mode, default_params=params),
                params,
                hashes,
                tuple(f"v{v}" for v, _ in members),
            )
        )
    return out


def make_splits(
    env: GeneratedEnv,
    key: jax.Array,
    heldout: int,
    shape_size: int = 0,
    params: GeneratedParams | None = None,
    builtin: bool = True,
    seed: int = 0,
) -> Splits:
    """The held-out sets of `env`'s family: `heldout` distinct networks of the family itself, `shape_size`
    of each `FAMILY_VARIATIONS` shape (none if 0), and the built-in versions in `env`'s mode (if
    `builtin`; construction-time layouts from `seed`). Train with `Splits.train_params`."""
    sets = [heldout_pool(env, jax.random.fold_in(key, 0), heldout, params)]
    if shape_size:
        sets += shape_sets(env, jax.random.fold_in(key, 1), shape_size, params)
    if builtin:
        sets += builtin_sets(env.mode, seed)
    return Splits(tuple(sets))
