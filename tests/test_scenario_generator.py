"""Generated networks: every draw is a valid game (reachability, ranges), the drawn sizes and values follow
the documented family (chi-square and binomial tests, stated tolerances), and a draw survives the round
trip through the scenario schema, which checks reachability independently."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from idsjax.network import DATA, SERVER, START
from idsjax.scenario import ScenarioError, load_scenario, to_arrays
from idsjax.scenario import arrays as sa
from idsjax.scenario.generator import Family, generate

FAMILY = Family(
    min_layers=1,
    max_layers=4,
    min_width=1,
    max_width=3,
    edge_p=0.3,
    lateral_p=0.3,
    defense=(2, 4),
    detection=(1, 3),
    vulnerability=(0, 1),
    vulnerable_p=0.5,
)
DRAWS = 2000
# Every statistical test below must reach p > P_MIN on its fixed seed: a correct generator fails one
# such test with probability 1e-3 per seed, a wrong distribution of the sizes tested is rejected.
P_MIN = 1e-3


@functools.cache
def _batch():
    keys = jax.random.split(jax.random.PRNGKey(13), DRAWS)
    batch = jax.jit(jax.vmap(generate, in_axes=(0, None)), static_argnums=1)(keys, FAMILY)
    return jax.tree.map(np.asarray, batch)


def _closure(reach: np.ndarray) -> np.ndarray:
    """bool[B, N, N]: `[b, p, q]` iff q is reachable from p in zero or more moves."""
    r = reach | np.eye(reach.shape[-1], dtype=bool)
    for _ in range(int(np.ceil(np.log2(reach.shape[-1]))) + 1):
        r = r | (r.astype(np.int32) @ r.astype(np.int32) > 0)
    return r


def test_every_node_is_reachable_from_the_start_and_reaches_the_data_node():
    b = _batch()
    n = FAMILY.max_nodes
    assert (b.start_node == n - 1).all() and (b.data_node == 0).all()
    closure = _closure(b.reach)
    mask = b.node_mask
    assert (closure[:, n - 1, :] | ~mask).all(), "a node not reachable from the start"
    assert (closure[:, :, 0] | ~mask).all(), "a node that cannot reach the data node"
    # Padding takes no part in the graph, and nobody attacks itself or leaves the data node.
    assert not (b.reach & ~mask[:, :, None]).any() and not (b.reach & ~mask[:, None, :]).any()
    assert not b.reach[:, np.arange(n), np.arange(n)].any()
    assert not b.reach[:, 0, :].any()
    np.testing.assert_array_equal(b.neighbors, b.reach | b.reach.transpose(0, 2, 1))


def test_sizes_roles_layers_and_values_stay_in_their_ranges():
    b = _batch()
    lmax, w = FAMILY.max_layers, FAMILY.max_width
    servers = b.role[:, 1:-1].reshape(DRAWS, lmax, w) == SERVER
    widths = servers.sum(axis=2)
    layers = (widths > 0).sum(axis=1)
    assert ((layers >= FAMILY.min_layers) & (layers <= FAMILY.max_layers)).all()
    live = np.arange(lmax)[None, :] < layers[:, None]
    assert ((widths[live] >= FAMILY.min_width) & (widths[live] <= FAMILY.max_width)).all()
    assert (widths[~live] == 0).all()
    # Servers fill each layer from column 0, and the mask says which nodes exist.
    assert (servers == (np.arange(w)[None, None, :] < widths[:, :, None])).all()
    np.testing.assert_array_equal(b.node_mask.sum(1), widths.sum(1) + 2)
    assert (b.role[:, 0] == DATA).all() and (b.role[:, -1] == START).all()
    np.testing.assert_array_equal(b.layer[:, -1], layers + 1)
    server_layer = b.layer[:, 1:-1].reshape(DRAWS, lmax, w)
    assert (np.where(servers, server_layer, 0) == np.where(servers, np.arange(1, lmax + 1)[None, :, None], 0)).all()

    defendable = np.isin(b.role, (SERVER, DATA))
    for name, (low, high) in (
        ("attack", FAMILY.attack),
        ("defense", FAMILY.defense),
        ("detection", FAMILY.detection),
        ("vulnerability", FAMILY.vulnerability),
    ):
        r = getattr(b, f"{name}_range")
        assert (r[..., 0] == r[..., 1]).all(), name  # drawn once with the network
        assert ((r[..., 0] >= low) & (r[..., 0] <= high))[defendable].all(), name
        assert (r[~defendable] == 0).all(), name
    per_node = b.vulnerable_fixed.sum(-1)
    assert (per_node <= 1).all() and (per_node[:, 0] == 1).all()  # one type at most; the data node always
    assert not b.vulnerable_fixed[~defendable].any()
    assert not b.randomize.any() and (b.start_weight.sum(1) == 1).all() and (b.start_weight[:, -1] == 1).all()


def test_drawn_sizes_and_values_follow_the_family():
    b = _batch()
    lmax, w = FAMILY.max_layers, FAMILY.max_width
    servers = b.role[:, 1:-1].reshape(DRAWS, lmax, w) == SERVER
    widths = servers.sum(axis=2)
    layers = (widths > 0).sum(axis=1)
    # Layer counts and the widths of live layers: uniform (chi-square).
    counts = np.bincount(layers - FAMILY.min_layers, minlength=FAMILY.max_layers - FAMILY.min_layers + 1)
    assert stats.chisquare(counts).pvalue > P_MIN, counts
    live = widths[widths > 0]
    counts = np.bincount(live - FAMILY.min_width, minlength=FAMILY.max_width - FAMILY.min_width + 1)
    assert stats.chisquare(counts).pvalue > P_MIN, counts
    # Defense values of defendable nodes: uniform on the family's range (chi-square).
    defendable = np.isin(b.role, (SERVER, DATA))
    d = b.defense_range[..., 0][defendable]
    counts = np.bincount(d - FAMILY.defense[0], minlength=FAMILY.defense[1] - FAMILY.defense[0] + 1)
    assert stats.chisquare(counts).pvalue > P_MIN, counts
    # Vulnerable servers and lateral links: Bernoulli with the family's probabilities (binomial).
    vuln = b.vulnerable_fixed.any(-1)[b.role == SERVER]
    assert stats.binomtest(int(vuln.sum()), vuln.size, FAMILY.vulnerable_p).pvalue > P_MIN
    ids = 1 + np.arange(lmax)[:, None] * w + np.arange(w)[None, :]
    left, right = ids[:, :-1], ids[:, 1:]
    pair_live = servers[:, :, :-1] & servers[:, :, 1:]
    linked = b.reach[:, left, right]
    np.testing.assert_array_equal(linked, b.reach[:, right, left])  # lateral links go both ways
    assert not (linked & ~pair_live).any()
    assert stats.binomtest(int(linked[pair_live].sum()), int(pair_live.sum()), FAMILY.lateral_p).pvalue > P_MIN


def test_edges_between_layers_have_the_documented_probability():
    """A (deeper u, shallower v) pair is an edge with probability 1 - (1-p)(1 - 1/w_v)(1 - 1/w_u):
    the random edge, u's guaranteed pick among the w_v servers above, v's among the w_u below. The
    total count over all draws is within 4 standard deviations of its expectation."""
    b = _batch()
    lmax, w, p = FAMILY.max_layers, FAMILY.max_width, FAMILY.edge_p
    servers = b.role[:, 1:-1].reshape(DRAWS, lmax, w) == SERVER
    widths = servers.sum(axis=2)
    ids = 1 + np.arange(lmax)[:, None] * w + np.arange(w)[None, :]
    observed, mean, var = 0, 0.0, 0.0
    for r in range(lmax - 1):  # deeper layer r+1 -> shallower layer r (0-based)
        live = servers[:, r + 1, :, None] & servers[:, r, None, :]
        edges = b.reach[:, ids[r + 1][:, None], ids[r][None, :]]
        assert not (edges & ~live).any()
        wv, wu = np.maximum(widths[:, r, None, None], 1), np.maximum(widths[:, r + 1, None, None], 1)  # 0: no pair
        q = 1 - (1 - p) * (1 - 1 / wv) * (1 - 1 / wu)
        q = np.broadcast_to(q, live.shape)[live]
        observed += int(edges[live].sum())
        mean += q.sum()
        var += (q * (1 - q)).sum()
    assert abs(observed - mean) < 4 * np.sqrt(var), (observed, mean, var)


def test_a_draw_round_trips_through_the_schema():
    b = _batch()
    for i in range(0, 40, 4):
        one = jax.tree.map(lambda x: x[i], b)
        scenario = load_scenario(sa.to_scenario_dict(one, name=f"draw{i}"))  # checks the path independently
        again = jax.tree.map(np.asarray, to_arrays(scenario, FAMILY.shape))
        real = np.flatnonzero(one.node_mask)
        k = len(real)
        np.testing.assert_array_equal(again.reach[:k, :k], one.reach[np.ix_(real, real)])
        np.testing.assert_array_equal(again.role[:k], one.role[real])
        np.testing.assert_array_equal(again.defense_range[:k], one.defense_range[real])
        np.testing.assert_array_equal(again.vulnerable_fixed[:k], one.vulnerable_fixed[real])
        np.testing.assert_array_equal(again.layer[:k], one.layer[real])


def test_generated_arrays_play_the_movement_rule():
    """The attack mask over a generated network: from each node, exactly the node's targets (all types
    below the cap), and nothing from a padding node."""
    b = _batch()
    one = jax.tree.map(lambda x: jnp.asarray(x[7]), b)
    n, a = FAMILY.max_nodes, FAMILY.attack_types
    masks = jax.jit(jax.vmap(lambda p: sa.attack_mask(FAMILY.shape, one, p, jnp.zeros((n, a), jnp.int8))))(
        jnp.arange(n)
    )
    masks = np.asarray(masks).reshape(n, n, a)
    np.testing.assert_array_equal(masks.all(-1), np.asarray(one.reach) & np.asarray(one.node_mask)[:, None])
    np.testing.assert_array_equal(masks.any(-1), masks.all(-1))


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(min_layers=3, max_layers=2), "min_layers"),
        (dict(max_width=0), "max_width"),
        (dict(edge_p=1.5), "edge_p"),
        (dict(defense=(3, 12)), "defense"),
        (dict(defense=(4, 2)), "defense"),
        (dict(rewards="shiny"), "rewards"),
        (dict(view="local"), "view"),
        (dict(max_value=11), "max_value"),
    ],
)
def test_the_family_refuses_parameters_that_draw_no_valid_game(change, field):
    with pytest.raises(ScenarioError, match=rf"^generator family: field `{field}`: expected .*\.$"):
        Family(**change)
