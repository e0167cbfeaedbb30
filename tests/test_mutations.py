"""Mutations of generated networks (`idsjax.scenario.mutations`), checked against an oracle written
here in NumPy: every applied edit keeps the data node reachable and the network valid (the schema's
own check too, through a round trip), every refusal is a network on which no valid edit of that kind
exists (so nothing valid is refused), a refused edit changes nothing, and mutated networks play."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idsjax.network import DATA, EMPTY, SERVER, START
from idsjax.scenario import load_scenario
from idsjax.scenario import mutations as mu
from idsjax.scenario.arrays import to_scenario_dict
from idsjax.scenario.env import ScenarioEnv
from idsjax.scenario.generator import Family, generate, named_family
from idsjax.scenario.schema import MAX_DETECTION

NETWORKS = 96  # per family
FAMILIES = {
    "small": named_family("small"),
    "default_lateral": Family(max_layers=4, lateral_p=0.3, edge_p=0.4),
    # One server in one layer and no padding: no node can be added, removed, and no edge removed.
    "chain": Family(min_layers=1, max_layers=1, min_width=1, max_width=1),
    # Full layers (no padding) and sparse edges: removals are often refused.
    "full": Family(min_layers=2, max_layers=2, min_width=2, max_width=2, edge_p=0.0),
}


@functools.cache
def _networks(name: str):
    keys = jax.random.split(jax.random.PRNGKey(hash(name) % 1000), NETWORKS)
    return jax.jit(jax.vmap(generate, in_axes=(0, None)), static_argnums=1)(keys, FAMILIES[name])


@functools.cache
def _mutated(name: str, kind: str):
    nets = _networks(name)
    keys = jax.random.split(jax.random.PRNGKey(7), NETWORKS)
    out, applied = jax.jit(jax.vmap(mu.MUTATORS[kind]))(keys, nets)
    return jax.tree.map(np.asarray, nets), jax.tree.map(np.asarray, out), np.asarray(applied)


def _one(batch, i):
    return jax.tree.map(lambda x: x[i], batch)


# -- the oracle -------------------------------------------------------------------------------------
def path(reach: np.ndarray, mask: np.ndarray, start: int, data: int) -> bool:
    seen, frontier = {start}, [start]
    while frontier:
        frontier = [q for p in frontier for q in np.flatnonzero(reach[p] & mask) if q not in seen]
        seen.update(int(q) for q in frontier)
    return data in seen


def problems(a) -> list[str]:
    """What makes one network's arrays (NumPy) an invalid game, or [] when valid."""
    out = []
    real, role, reach = a.node_mask, a.role, a.reach
    s, d = int(a.start_node), int(a.data_node)
    if not (real[s] and real[d] and role[s] == START and role[d] == DATA):
        out.append("start or data node lost")
    if not path(reach, real, s, d):
        out.append("no path from the start to the data node")
    if reach[d].any():
        out.append("an edge leaves the data node")
    if reach[:, s].any():
        out.append("an edge enters the start node")
    if (reach & ~(real[:, None] & real[None, :])).any():
        out.append("an edge touches padding")
    if np.diagonal(reach).any():
        out.append("a self-loop")
    servers = real & (role == SERVER)
    linked = reach.any(0) | reach.any(1)
    if (servers & ~linked).any():
        out.append("an unlinked server")
    if not (a.neighbors == (reach | reach.T)).all():
        out.append("neighbors out of date")
    pad = ~real
    if (role[pad] != EMPTY).any() or (a.layer[pad] != 0).any() or (a.draw_slot[pad] != -1).any():
        out.append("a padding node holds a role, layer or draw slot")
    for f in mu.VALUE_FIELDS:
        r = getattr(a, f)
        if (r[pad] != 0).any():
            out.append(f"padding holds {f}")
        if (r[..., 0] > r[..., 1]).any() or (r < 0).any():
            out.append(f"{f} out of order or negative")
    caps = {"detection_range": MAX_DETECTION}
    for f in mu.VALUE_FIELDS:
        if (getattr(a, f)[..., 1] > caps.get(f, int(a.max_value))).any():
            out.append(f"{f} above its cap")
    if a.vulnerable_fixed[pad].any() or a.vulnerable_candidate[pad].any():
        out.append("padding is vulnerable")
    return out


def some_valid_edit(kind: str, a) -> bool:
    """Whether an edit of `kind` that keeps the network valid exists (brute force over all of them)."""
    real, role, reach = a.node_mask, a.role, a.reach
    s, d, n = int(a.start_node), int(a.data_node), real.shape[0]
    if kind == "add_edge":
        return any(
            real[p] and real[q] and p != q and role[p] != DATA and role[q] != START and not reach[p, q]
            for p in range(n)
            for q in range(n)
        )
    if kind == "remove_edge":
        for p, q in zip(*np.nonzero(reach)):
            cut = reach.copy()
            cut[p, q] = False
            if path(cut, real, s, d):
                return True
        return False
    if kind == "add_node":
        return bool((~real).any())
    if kind == "remove_node":
        for k in np.flatnonzero(real & (role == SERVER)):
            mask = real.copy()
            mask[k] = False
            if path(reach, mask, s, d):
                return True
        return False
    defendable = real & ((role == SERVER) | (role == DATA))
    if kind == "change_value":
        caps = [int(a.max_value), int(a.max_value), MAX_DETECTION, int(a.max_value)]
        return any(
            defendable[i] and (getattr(a, f)[i, 0] > 0 or getattr(a, f)[i, 1] < cap)
            for i in range(n)
            for f, cap in zip(mu.VALUE_FIELDS, caps)
        )
    return bool(defendable.any() and a.type_mask.any())


def differs(x, y) -> list[str]:
    return [
        name for name in x.__dataclass_fields__ if not np.array_equal(np.asarray(getattr(x, name)), getattr(y, name))
    ]


# -- the tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generated_networks_are_valid_to_the_oracle(family):
    nets = jax.tree.map(np.asarray, _networks(family))
    for i in range(NETWORKS):
        assert problems(_one(nets, i)) == [], i


@pytest.mark.parametrize("kind", mu.KINDS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_each_mutation_keeps_the_network_valid_and_refuses_only_when_no_valid_edit_exists(family, kind):
    nets, out, applied = _mutated(family, kind)
    for i in range(NETWORKS):
        before, after = _one(nets, i), _one(out, i)
        assert bool(applied[i]) == some_valid_edit(kind, before), (family, kind, i)
        if applied[i]:
            assert problems(after) == [], (family, kind, i, problems(after))
            assert differs(before, after), "an applied edit changed nothing"
        else:
            assert differs(before, after) == [], "a refused edit changed the network"


def test_refusals_and_applications_both_happen():
    """The families above exercise both outcomes of the kinds that can be refused."""
    for kind in ("remove_edge", "add_node", "remove_node"):
        seen = {bool(x) for fam in FAMILIES for x in _mutated(fam, kind)[2]}
        assert seen == {True, False}, kind


def _counts(a):
    return int(a.node_mask.sum()), int(a.reach.sum())


@pytest.mark.parametrize("family", ["small", "default_lateral"])
def test_each_mutation_makes_the_edit_it_names(family):
    for kind in mu.KINDS:
        nets, out, applied = _mutated(family, kind)
        for i in np.flatnonzero(applied):
            b, a = _one(nets, i), _one(out, i)
            (nb, eb), (na, ea) = _counts(b), _counts(a)
            if kind == "add_edge":
                assert (na, ea) == (nb, eb + 1) and (a.reach >= b.reach).all()
            elif kind == "remove_edge":
                assert ea <= eb - 1 and (a.reach <= b.reach).all() and na <= nb
                assert (b.reach & ~a.reach & a.node_mask[:, None] & a.node_mask[None, :]).sum() == 1
            elif kind == "add_node":
                (k,) = np.flatnonzero(a.node_mask & ~b.node_mask)
                assert na == nb + 1 and a.role[k] == SERVER and ea == eb + 2
                assert path(a.reach, a.node_mask, int(a.start_node), k)
                assert path(a.reach, a.node_mask, k, int(a.data_node))
            elif kind == "remove_node":
                assert na <= nb - 1 and ea < eb and (a.node_mask <= b.node_mask).all()
            elif kind == "change_value":
                moved = sum(int((getattr(a, f) != getattr(b, f)).any(axis=1).sum()) for f in mu.VALUE_FIELDS)
                steps = {int(d) for f in mu.VALUE_FIELDS for d in np.unique(getattr(a, f) - getattr(b, f)) if d != 0}
                assert moved == 1 and len(steps) == 1 and steps <= {-1, 1} and (na, ea) == (nb, eb)
            else:
                assert (a.vulnerable_fixed != b.vulnerable_fixed).sum() == 1 and (na, ea) == (nb, eb)


def test_mutated_networks_pass_the_schema():
    """The scenario schema checks reachability, links and caps on its own."""
    nets = _networks("default_lateral")
    keys = jax.random.split(jax.random.PRNGKey(3), NETWORKS)
    out, edits = jax.jit(jax.vmap(lambda k, a: mu.mutate(k, a, 6)))(keys, nets)
    out = jax.tree.map(np.asarray, out)
    assert (np.asarray(edits) <= 6).all() and np.asarray(edits).mean() > 3
    for i in range(0, NETWORKS, 4):
        load_scenario(to_scenario_dict(_one(out, i), name=f"mutated{i}"))
    for i in range(NETWORKS):
        assert problems(_one(out, i)) == []


def test_mutate_refuses_unknown_kinds():
    net = _one(_networks("small"), 0)
    with pytest.raises(ValueError, match="mutation kinds"):
        mu.mutate(jax.random.PRNGKey(0), net, 2, kinds=("grow",))
    _, edits = mu.mutate(jax.random.PRNGKey(0), net, 3, kinds=("add_edge",))
    assert int(edits) == 3  # a small network always has a missing edge


def test_mutated_networks_play_on_scenario_env():
    """Random legal play, both players, on heavily mutated networks: finite rewards, legal ids only on
    real nodes, games that end, observations of the padded shape."""
    family = FAMILIES["default_lateral"]
    nets = _networks("default_lateral")
    keys = jax.random.split(jax.random.PRNGKey(5), NETWORKS)
    out, _ = jax.jit(jax.vmap(lambda k, a: mu.mutate(k, a, 8)))(keys, nets)
    env = ScenarioEnv(family.shape, "")
    params = env.make_params(out, keys)
    n, a = family.shape.max_nodes, family.shape.attack_types

    def play(key, p):
        obs, state = env.reset_env(key, p)

        def step(carry, k):
            state, ended = carry
            k_a, k_d, k_s = jax.random.split(k, 3)
            mask = env.legal_action_mask(state, p)
            act = {
                "attacker": jax.random.categorical(k_a, jnp.where(mask["attacker"], 0.0, -jnp.inf)),
                "defender": jax.random.categorical(k_d, jnp.where(mask["defender"], 0.0, -jnp.inf)),
            }
            obs, state, reward, term, trunc, info = env.step_game(k_s, state, act, p)
            return (state, ended | term | trunc), (reward["attacker"], mask["attacker"], obs["attacker"])

        (_, ended), (rewards, masks, obs) = jax.lax.scan(step, (state, False), jax.random.split(key, 130))
        return ended, rewards, masks, obs

    ended, rewards, masks, obs = jax.jit(jax.vmap(play))(keys, params)
    assert np.asarray(ended).all()
    assert np.isfinite(np.asarray(rewards)).all()
    assert obs.shape[-2:] == (n, a + 1)
    real = np.asarray(out.node_mask)
    legal = np.asarray(masks).reshape(NETWORKS, 130, n, a).any(axis=(1, 3))
    assert not (legal & ~real).any(), "a legal attack on a padding node"
