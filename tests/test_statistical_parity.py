"""Statistical parity with gym-idsgame where randomness cannot be matched draw for draw (spec §13.2-13.4).

Every expected number here comes from the specification (its tables and the laws it states) or from
the reference package itself (the construction layouts of §13.3), never from idsjax. All samples are
drawn with fixed keys, so every test is deterministic. Bounds:

* single proportions and means: |z| < Z_MAX = 3.89 (two-sided p > 1e-4);
* goodness of fit: Pearson chi-square p > P_MIN = 1e-4 (scipy);
* exact laws (supports, counts that the spec fixes) are asserted exactly;
* the outcome table of §13.4 (88 cells × 5 statistics): Bonferroni over its 440 comparisons at a
  family-wise false-alarm rate of 1e-3 (|z| < 4.73 each), each comparison against the reference's
  2000-episode measurement with the combined standard error of both samples, plus one global
  chi-square over the P(hack) z-scores of the cells with distinct dynamics (p > 1e-4).
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax import bots
from idsjax.layout import start_position

stats = pytest.importorskip("scipy.stats")

P_MIN = 1e-4
Z_MAX = float(stats.norm.isf(P_MIN / 2))  # 3.89


def _keys(seed, n):
    return jax.random.split(jax.random.PRNGKey(seed), n)


def _chi2_p(counts, probs):
    counts = np.asarray(counts, np.float64)
    probs = np.asarray(probs, np.float64)
    assert math.isclose(probs.sum(), 1.0, rel_tol=1e-9)
    return float(stats.chisquare(counts, counts.sum() * probs).pvalue)


def _assert_uniform(samples, support, what, n_min_per_cell=50):
    """Exact support and chi-square uniformity over it."""
    samples = np.asarray(samples).ravel()
    support = np.asarray(sorted(support))
    outside = np.setdiff1d(np.unique(samples), support)
    assert outside.size == 0, f"{what}: values {outside[:10].tolist()} outside the support {support.tolist()}"
    assert samples.size >= n_min_per_cell * support.size
    if support.size == 1:
        return
    counts = np.array([(samples == s).sum() for s in support])
    p = _chi2_p(counts, np.full(support.size, 1.0 / support.size))
    assert p > P_MIN, f"{what}: not uniform on {support.tolist()} (chi-square p = {p:.2e}, counts {counts.tolist()})"


def _assert_proportion(successes, n, p, what):
    phat = successes / n
    se = math.sqrt(p * (1 - p) / n)
    if se == 0:
        assert phat == p, f"{what}: {phat} != {p}"
        return
    z = (phat - p) / se
    assert abs(z) < Z_MAX, f"{what}: p̂ = {phat:.4f}, expected {p:.4f} (z = {z:.2f})"


# -- §5 / §13.2: detection --------------------------------------------------------------------


@functools.cache
def _detection_sampler(env_id):
    env, params = idsjax.make(env_id)

    @jax.jit
    def sample(keys, det, attack_id, factor):
        p = params.replace(detection_factor=jnp.float32(factor))
        state = env.initial_state(jax.random.PRNGKey(0), p)
        n = env.config.num_nodes
        # Attacker on the start node, node 1 fully defended at M: every attack on it fails (att ≤ M).
        state = state.replace(
            position=jnp.int32(n - 1),
            attack=jnp.zeros_like(state.attack),
            defense=state.defense.at[1].set(p.max_value.astype(state.defense.dtype)),
            detection=state.detection.at[1].set(det.astype(state.detection.dtype)),
            revealed=jnp.zeros_like(state.revealed),
        )
        action = {"attacker": attack_id, "defender": jnp.int32(0)}  # defend the data node, not node 1

        def one(key):
            _, _, _, _, _, info = env.step(key, state, action, p)
            return info["detected"], info["hacked"], info["attacker_reward"]

        return jax.vmap(one)(keys)

    return env, sample


@pytest.mark.parametrize("recon", [False, True], ids=["attack", "reconnaissance"])
@pytest.mark.parametrize("det", [0, 1, 3, 5, 9])
def test_detection_probability_is_det_over_10(det, recon):
    """A failed attack (or any reconnaissance) at a node with detection d is caught w.p. d/10 (§4.2, §5)."""
    env, sample = _detection_sampler("idsgame-v19")
    a = env.config.attack_types
    attack_id = 1 * (a + 1) + (a if recon else 0)
    n = 20_000
    detected, hacked, _ = sample(_keys(10 + det + 100 * recon, n), jnp.int32(det), jnp.int32(attack_id), 1.0)
    assert not np.asarray(hacked).any()
    _assert_proportion(int(np.asarray(detected).sum()), n, det / 10, f"detection d={det} recon={recon}")


def test_reconnaissance_detection_factor():
    """The reconnaissance factor scales only reconnaissance detection: det 6, factor 0.5 → 0.3 (§5)."""
    env, sample = _detection_sampler("idsgame-v19")
    a = env.config.attack_types
    n = 20_000
    det_r, _, _ = sample(_keys(21, n), jnp.int32(6), jnp.int32(1 * (a + 1) + a), 0.5)
    det_a, _, _ = sample(_keys(22, n), jnp.int32(6), jnp.int32(1 * (a + 1)), 0.5)
    _assert_proportion(int(np.asarray(det_r).sum()), n, 0.3, "recon, det 6, factor 0.5")
    _assert_proportion(int(np.asarray(det_a).sum()), n, 0.6, "attack, det 6, factor 0.5")


# -- §3.2: vulnerability layout --------------------------------------------------------------


@functools.cache
def _construction_defense(env_id, n, seed):
    env, _ = idsjax.make(env_id)
    return env, np.asarray(jax.jit(jax.vmap(lambda k: env.make_params(k).initial_defense))(_keys(seed, n)))


@functools.cache
def _reset_states(env_id, n, seed):
    env, params = idsjax.make(env_id)
    states = jax.jit(jax.vmap(lambda k: env.initial_state(k, params)))(_keys(seed, n))
    return env, params, jax.tree.map(np.asarray, states)


def _server_rows(layers, servers):
    """Node ids of each server row (spec §1.2: servers are nodes 1 … L·S, row by row)."""
    return [list(range(1 + r * servers, 1 + (r + 1) * servers)) for r in range(layers)]


@pytest.mark.parametrize(
    "env_id, layers, servers, vpl, construction",
    [
        ("idsgame-v5", 4, 5, 2, True),  # construction layout, 2 of 5 servers per row
        ("idsgame-v3", 2, 3, 3, True),  # every server vulnerable
        ("idsgame-v15", 1, 2, 1, False),  # reset layout, 1 of 2
        ("idsgame-v19", 1, 2, 1, False),
        ("idsgame-v20", 1, 2, 2, False),
    ],
)
def test_vulnerable_servers_per_layer(env_id, layers, servers, vpl, construction):
    """Exactly `vpl` distinct vulnerable columns per server row, a uniform subset (§3.2, §13.2)."""
    n = 6000
    if construction:
        # v3/v5: defense 2, vulnerability value 0 (spec §10.1)
        _, defense = _construction_defense(env_id, n, 1)
        vulnerable = (defense == 0).any(axis=2)
    else:
        _, _, states = _reset_states(env_id, n, 2)
        defense = states.defense
        # v15: defense ≥ 2, vulnerable ≤ 1; v19/v20: defense ≥ 3, vulnerable = 1 (spec §10.1)
        vulnerable = (defense[:, :, :] <= 1).any(axis=2)
    assert vulnerable[:, 0].all(), "the data node is always vulnerable"
    for row in _server_rows(layers, servers):
        v = vulnerable[:, row]
        np.testing.assert_array_equal(v.sum(axis=1), vpl)
        if vpl == servers:
            continue
        subsets = [frozenset(c) for c in itertools.combinations(range(servers), vpl)]
        index = {s: i for i, s in enumerate(subsets)}
        drawn = [index[frozenset(np.flatnonzero(x).tolist())] for x in v]
        counts = np.bincount(drawn, minlength=len(subsets))
        p = _chi2_p(counts, np.full(len(subsets), 1 / len(subsets)))
        assert p > P_MIN, f"{env_id} row {row}: vulnerable subsets not uniform (p = {p:.2e}, {counts.tolist()})"
        # Column frequencies (conservative: columns of one draw are negatively correlated).
        col_counts = v.sum(axis=0)
        p = _chi2_p(col_counts, np.full(servers, 1 / servers))
        assert p > P_MIN, f"{env_id} row {row}: column frequencies {col_counts.tolist()} (p = {p:.2e})"


def test_v1_distinct_vulnerable_types_per_node():
    """v1 draws 4 types with replacement from 10: P(1…4 distinct) = .001, .063, .432, .504 (§13.2)."""
    n = 30_000
    _, defense = _construction_defense("idsgame-v1", n, 3)
    # v1: defense 4, vulnerability value 0; the data node and the single server are vulnerable.
    distinct = (defense[:, :2, :] == 0).sum(axis=2).ravel()
    assert distinct.min() >= 1 and distinct.max() <= 4
    np.testing.assert_array_equal(np.isin(defense[:, :2, :], (0, 4)), True)
    counts = np.bincount(distinct, minlength=5)[1:]
    probs = [10 / 10**4, 45 * 14 / 10**4, 120 * 36 / 10**4, 5040 / 10**4]  # = .001, .063, .432, .504
    p = _chi2_p(counts, probs)
    assert p > P_MIN, f"distinct vulnerable types {counts.tolist()} (p = {p:.2e})"


# -- §3.2, §10.1: values drawn at reset --------------------------------------------------------

# From spec §10.1: (defense range, attack range, detection range, vulnerable-value range, vulnerable
# types per vulnerable node (None: no vulnerabilities)). Ranges are inclusive.
RANDOMIZED = {
    "idsgame-v12": ((0, 1), (0, 1), (0, 1), None, None),
    "idsgame-v14": ((3, 4), (0, 0), (1, 1), (0, 1), 1),
    "idsgame-v15": ((2, 4), (0, 0), (1, 2), (0, 1), 1),
    "idsgame-v16": ((3, 4), (0, 0), (1, 1), (0, 1), 1),
    "idsgame-maximal_attack-v16": ((1, 4), (0, 0), (1, 4), (0, 1), 1),
    "idsgame-v17": ((3, 4), (0, 0), (1, 1), (0, 1), 1),
    "idsgame-maximal_attack-v17": ((1, 4), (0, 0), (1, 4), (0, 1), 1),
    "idsgame-random_defense-v17": ((3, 4), (0, 0), (1, 1), (0, 1), 1),
    "idsgame-v18": ((7, 7), (0, 0), (1, 1), (1, 1), 1),
    "idsgame-v19": ((7, 9), (0, 0), (1, 1), (1, 1), 1),
    "idsgame-v20": ((3, 9), (0, 0), (1, 1), (1, 1), 1),
    "idsgame-v21": ((1, 1), (0, 0), (1, 1), None, None),
}


def _range(lo_hi):
    return list(range(lo_hi[0], lo_hi[1] + 1))


@pytest.mark.parametrize("env_id", sorted(RANDOMIZED))
def test_randomized_values_at_reset(env_id):
    """Every reset draws independent uniforms on the ranges of §10.1 (§3.2, §13.2)."""
    d_rng, a_rng, det_rng, v_rng, vpn = RANDOMIZED[env_id]
    n = 8000
    _, _, st = _reset_states(env_id, n, 4)
    start = st.defense.shape[1] - 1
    sd = slice(0, start)  # servers and data
    for name, arr in (("defense", st.defense), ("attack", st.attack), ("detection", st.detection)):
        assert (arr[:, start] == 0).all(), f"the start node's {name} must be 0"
    _assert_uniform(st.attack[:, sd], _range(a_rng), f"{env_id} attack values")
    _assert_uniform(st.detection[:, sd], _range(det_rng), f"{env_id} detection values")
    defense = st.defense[:, sd, :]
    if vpn is None:
        _assert_uniform(defense, _range(d_rng), f"{env_id} defense values")
        return
    if v_rng[1] < d_rng[0]:
        vulnerable = defense <= v_rng[1]
        np.testing.assert_array_equal(vulnerable[:, 0, :].sum(axis=1), 1)  # data: exactly one type (vpn 1)
        per_node = vulnerable.sum(axis=2)
        assert set(np.unique(per_node)) <= {0, 1}
        _assert_uniform(defense[~vulnerable], _range(d_rng), f"{env_id} non-vulnerable defense values")
        _assert_uniform(defense[vulnerable], _range(v_rng), f"{env_id} vulnerable defense values")
    else:
        # maximal_attack-v16/v17: vulnerable {0, 1} overlaps defense {1 … 4}. Each node (data and the
        # single, always vulnerable server) holds one vulnerable entry and A-1 = 3 defense entries.
        a = defense.shape[2]
        assert defense.min() >= v_rng[0] and defense.max() <= d_rng[1]
        zeros = (defense == 0).sum(axis=2)
        assert zeros.max() <= 1, "at most one vulnerable type per node"
        _assert_proportion(int(zeros.sum()), zeros.size, 1 / len(_range(v_rng)), f"{env_id} P(vulnerable = 0)")
        values = np.arange(d_rng[1] + 1)
        vp = np.isin(values, _range(v_rng)) / len(_range(v_rng))
        dp = np.isin(values, _range(d_rng)) / len(_range(d_rng))
        mix = (vp + (a - 1) * dp) / a
        counts = np.array([(defense == v).sum() for v in values])
        p = _chi2_p(counts, mix)  # conservative: one vulnerable entry per node, not a free multinomial
        assert p > P_MIN, f"{env_id}: defense value histogram {counts.tolist()} vs mixture (p = {p:.2e})"


def test_maximal_attack_v16_v17_construction_detection():
    """maximal_attack-v16/v17 start with detection 4, the other modes with 1 (§10.1)."""
    for version in (16, 17):
        for env_id, det in ((f"idsgame-maximal_attack-v{version}", 4), (f"idsgame-v{version}", 1)):
            _, params = idsjax.make(env_id)
            np.testing.assert_array_equal(np.asarray(params.initial_detection), [det, det, 0])


# -- §3.3, §6.4: revealed nodes at reset ------------------------------------------------------


def test_v18_revealed_nodes_are_binomial():
    """v18: each node, the start included, is revealed w.p. 0.5 at reset: Binomial(3, 0.5) (§13.2, Q18)."""
    n = 8000
    _, _, st = _reset_states("idsgame-v18", n, 5)
    counts = np.bincount(st.revealed.sum(axis=1), minlength=4)
    p = _chi2_p(counts, [1 / 8, 3 / 8, 3 / 8, 1 / 8])
    assert p > P_MIN, f"revealed-node counts {counts.tolist()} (p = {p:.2e})"
    for node in range(3):
        _assert_proportion(int(st.revealed[:, node].sum()), n, 0.5, f"v18 node {node} revealed")
    # Revealed rows show the defense, the others the unknown marker 10 (§6.4).
    revealed = st.revealed[:, :, None]
    np.testing.assert_array_equal(np.where(revealed, st.recon == st.defense, st.recon == 10), True)


@pytest.mark.parametrize("version", [19, 20, 21])
def test_v19_to_v21_reveal_nothing_at_reset(version):
    _, _, st = _reset_states(f"idsgame-v{version}", 2000, 6)
    assert not st.revealed.any()
    assert (st.recon == 10).all()


# -- §3.4: random start --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "version, probs",
    [
        (16, [0.5, 0.5]),
        (17, [0.5, 0.5]),
        (18, [0.5, 0.5]),
        (19, [0.25, 0.25, 0.5]),
        (20, [0.25, 0.25, 0.5]),
        (21, [0.25, 0.25, 0.5]),
    ],
)
def test_random_start_position(version, probs):
    """START w.p. C/(L·S+C), each server 1/(L·S+C) (§3.4, Q17); probs listed by node id (start last)."""
    env, _ = idsjax.make(f"idsgame-v{version}")
    n = 8000
    positions = np.asarray(jax.jit(jax.vmap(lambda k: start_position(k, env.config)))(_keys(7, n)))
    counts = np.bincount(positions - 1, minlength=len(probs))  # nodes 1 … N-1
    assert counts.sum() == n and positions.min() >= 1
    p = _chi2_p(counts, probs)
    assert p > P_MIN, f"v{version} start positions {counts.tolist()} vs {probs} (p = {p:.2e})"
    # ... and through reset.
    _, _, st = _reset_states(f"idsgame-v{version}", n, 8)
    counts = np.bincount(st.position - 1, minlength=len(probs))
    assert counts.sum() == n
    p = _chi2_p(counts, probs)
    assert p > P_MIN, f"v{version} reset positions {counts.tolist()} vs {probs} (p = {p:.2e})"


@pytest.mark.parametrize("version", [0, 3, 4, 13, 14, 15])
def test_fixed_start_position(version):
    _, _, st = _reset_states(f"idsgame-v{version}", 64, 9)
    assert (st.position == st.defense.shape[1] - 1).all()


# -- §8: bots ------------------------------------------------------------------------------------


def _bot_samples(env_id, bot, n, seed, edit=None):
    env, params = idsjax.make(env_id)
    state = env.initial_state(jax.random.PRNGKey(0), params)
    if edit is not None:
        state = edit(env, state)
    f = jax.jit(jax.vmap(lambda k: bots.BOTS[bot](k, state, env.config, params)))
    return np.asarray(f(_keys(seed, n)))


@pytest.mark.parametrize("version, n_nodes, a", [(0, 3, 10), (4, 22, 10), (11, 2, 2), (19, 4, 4)])
def test_random_defense_is_uniform_over_server_and_data_ids(version, n_nodes, a):
    """RandomDefense: uniform over ids 0 … (N-1)(A+1)-1 (§8.1)."""
    support = range((n_nodes - 1) * (a + 1))
    ids = _bot_samples(f"idsgame-v{version}", "random_defense", 100 * len(support), 11)
    _assert_uniform(ids, support, f"RandomDefense v{version}")


def _with_attack(values):
    def edit(env, state):
        attack = state.attack
        for (node, t), v in values.items():
            attack = attack.at[node, t].set(v)
        return state.replace(attack=attack)

    return edit


@pytest.mark.parametrize(
    "env_id, maxed, support",
    [
        # v3 from the start (node 7): the last-layer servers 4, 5, 6 × 10 types = ids 40-69 (§13.2).
        ("idsgame-v3", {}, range(40, 70)),
        # ... types at M = 9 are not id-legal (§1.7).
        ("idsgame-v3", {(5, t): 9 for t in range(5)}, [i for i in range(40, 70) if not 50 <= i <= 54]),
        # v19 (reconnaissance, width A+1 = 5) from the start (node 3): nodes 1, 2 → ids 5-14.
        ("idsgame-v19", {}, range(5, 15)),
        ("idsgame-v19", {(1, 0): 9, (2, 3): 9}, [i for i in range(5, 15) if i not in (5, 13)]),
    ],
)
def test_random_attack_is_uniform_over_legal_ids(env_id, maxed, support):
    """RandomAttack: uniform over the id-legal attack ids (§8.4; with reconnaissance Q10's intent)."""

    def edit(env, state):
        state = _with_attack(maxed)(env, state)
        return state.replace(position=jnp.int32(env.config.num_nodes - 1))

    ids = _bot_samples(env_id, "random_attack", 200 * len(support), 12, edit)
    _assert_uniform(ids, support, f"RandomAttack {env_id} {sorted(maxed)}")


def _v3_defense_state(defense_value, detection_value, low_defense=(), low_detection=()):
    """v3 (N = 8, A = 10): every server/data value equal, then some weakest spots (§8.2)."""

    def edit(env, state):
        n, a = env.config.num_nodes, env.config.attack_types
        defense = np.full((n, a), defense_value, np.int8)
        detection = np.full((n,), detection_value, np.int8)
        defense[n - 1] = 0
        detection[n - 1] = 0
        for node, t in low_defense:
            defense[node, t] = 1
        for node in low_detection:
            detection[node] = 1
        return state.replace(defense=jnp.asarray(defense), detection=jnp.asarray(detection))

    return edit


@pytest.mark.parametrize(
    "case, edit, support",
    [
        # All 7 values equal: nodes 1-6 uniformly (type 0), the first holder (data node 0) never (§8.2).
        ("7-way", _v3_defense_state(2, 2), [n * 11 for n in range(1, 7)]),
        # 3-way tie at nodes 2, 4, 6 (type 3): the later two uniformly, never node 2.
        ("3-way", _v3_defense_state(5, 5, low_defense=[(2, 3), (4, 3), (6, 3)]), [4 * 11 + 3, 6 * 11 + 3]),
        # A detection candidate holds the minimum first; the two later defense candidates tie with it.
        ("detection first", _v3_defense_state(5, 5, [(4, 3), (6, 3)], [2]), [4 * 11 + 3, 6 * 11 + 3]),
        # A 2-way tie keeps the first holder.
        ("2-way", _v3_defense_state(5, 5, low_defense=[(2, 3), (4, 3)]), [2 * 11 + 3]),
        # Equal detection candidates are never ties (dead branch): the first holder wins.
        ("detection later", _v3_defense_state(5, 5, [(2, 3)], [4, 6]), [2 * 11 + 3]),
    ],
)
def test_defend_minimal_ties(case, edit, support):
    """DefendMinimal: ≥3-way ties are uniform over the tied candidates except the first (§8.2, Q12)."""
    ids = _bot_samples("idsgame-v3", "defend_minimal", 300 * len(support), 13, edit)
    _assert_uniform(ids, support, f"DefendMinimal {case}")


# -- §13.4: outcome table ----------------------------------------------------------------------

PAIRS = (
    ("random att", "RandomDefense"),
    ("AttackMaximal", "DefendMinimal"),
    ("AttackMaximal", "RandomDefense"),
    ("random att", "DefendMinimal"),
)

# Spec §13.4, one row per (version, pair) in PAIRS order:
# P(hack), P(detected), P(timeout), mean length, mean attacker return, mean defender return.
TABLE = {
    0: [
        (0.1095, 0.8905, 0.0, 4.495, -0.781, 0.781),
        (0.3240, 0.6760, 0.0, 4.293, -0.352, 0.352),
        (0.3375, 0.6625, 0.0, 3.983, -0.325, 0.325),
        (0.0190, 0.9810, 0.0, 4.995, -0.962, 0.962),
    ],
    1: [
        (0.3375, 0.6625, 0.0, 2.909, -0.325, 0.325),
        (0.0595, 0.9405, 0.0, 3.383, -0.881, 0.881),
        (0.0445, 0.9555, 0.0, 3.342, -0.911, 0.911),
        (0.1495, 0.8505, 0.0, 3.584, -0.701, 0.701),
    ],
    2: [
        (0.1245, 0.8755, 0.0, 4.628, -0.751, 0.751),
        (0.4135, 0.5865, 0.0, 4.022, -0.173, 0.173),
        (0.3500, 0.6500, 0.0, 3.948, -0.300, 0.300),
        (0.0295, 0.9705, 0.0, 4.982, -0.941, 0.941),
    ],
    3: [
        (0.0520, 0.9480, 0.0, 5.105, -0.896, 0.896),
        (0.2620, 0.7380, 0.0, 4.995, -0.476, 0.476),
        (0.2370, 0.7630, 0.0, 5.015, -0.526, 0.526),
        (0.0105, 0.9895, 0.0, 5.079, -0.979, 0.979),
    ],
    4: [
        (0.0090, 0.9910, 0.0, 5.463, -0.982, 0.982),
        (0.2770, 0.7230, 0.0, 6.378, -0.446, 0.446),
        (0.2670, 0.7330, 0.0, 6.367, -0.466, 0.466),
        (0.0055, 0.9945, 0.0, 5.476, -0.989, 0.989),
    ],
    5: [
        (0.0000, 1.0000, 0.0, 5.135, -1.000, 1.000),
        (0.1355, 0.8645, 0.0, 5.872, -0.729, 0.729),
        (0.1635, 0.8365, 0.0, 5.858, -0.673, 0.673),
        (0.0000, 1.0000, 0.0, 5.245, -1.000, 1.000),
    ],
    6: [
        (0.0000, 1.0000, 0.0, 5.135, -0.715, 1.000),
        (0.1355, 0.8645, 0.0, 5.872, 1.587, 0.187),
        (0.1635, 0.8365, 0.0, 5.858, 1.700, 0.019),
        (0.0000, 1.0000, 0.0, 5.245, -0.794, 1.000),
    ],
    7: [
        (0.0520, 0.9480, 0.0, 5.105, -0.065, 0.792),
        (0.2620, 0.7380, 0.0, 4.995, 1.228, -0.048),
        (0.2370, 0.7630, 0.0, 5.015, 1.132, 0.052),
        (0.0105, 0.9895, 0.0, 5.079, -0.521, 0.958),
    ],
    8: [
        (0.1095, 0.8905, 0.0, 4.495, -0.130, 0.671),
        (0.3240, 0.6760, 0.0, 4.293, 0.708, 0.028),
        (0.3375, 0.6625, 0.0, 3.983, 0.722, -0.013),
        (0.0190, 0.9810, 0.0, 4.995, -0.558, 0.943),
    ],
    9: [
        (0.1245, 0.8755, 0.0, 4.628, -0.113, 0.626),
        (0.4135, 0.5865, 0.0, 4.022, 0.999, -0.240),
        (0.3500, 0.6500, 0.0, 3.948, 0.754, -0.050),
        (0.0295, 0.9705, 0.0, 4.982, -0.670, 0.911),
    ],
    10: [
        (0.1095, 0.8905, 0.0, 4.495, -0.130, 0.671),
        (0.3240, 0.6760, 0.0, 4.293, 0.708, 0.028),
        (0.3375, 0.6625, 0.0, 3.983, 0.722, -0.013),
        (0.0190, 0.9810, 0.0, 4.995, -0.558, 0.943),
    ],
    11: [
        (0.9500, 0.0500, 0.0, 1.470, 1.784, -0.900),
        (0.9005, 0.0995, 0.0, 1.901, 1.702, -0.801),
        (0.9385, 0.0615, 0.0, 1.532, 1.708, -0.877),
        (0.8115, 0.1885, 0.0, 2.545, 1.004, -0.623),
    ],
    12: [
        (0.8565, 0.1435, 0.0, 2.583, 1.046, -0.713),
        (0.7965, 0.2035, 0.0, 2.616, 0.849, -0.593),
        (0.9035, 0.0965, 0.0, 1.971, 1.419, -0.807),
        (0.7595, 0.2405, 0.0, 3.284, 0.479, -0.519),
    ],
    13: [
        (0.6720, 0.3280, 0.0, 1.000, 1.016, -0.344),
        (0.0000, 1.0000, 0.0, 1.000, -1.000, 1.000),
        (0.6870, 0.3130, 0.0, 1.000, 1.061, -0.374),
        (0.5015, 0.4985, 0.0, 1.000, 0.504, -0.003),
    ],
    14: [
        (0.2040, 0.7960, 0.0, 6.420, 0.279, 0.388),
        (0.1545, 0.8455, 0.0, 5.795, 0.260, 0.536),
        (0.2295, 0.7705, 0.0, 6.513, 0.398, 0.311),
        (0.0200, 0.9800, 0.0, 6.255, -0.418, 0.940),
    ],
    15: [
        (0.0425, 0.9575, 0.0, 6.037, -0.654, 0.873),
        (0.3255, 0.6745, 0.0, 4.901, 0.657, 0.024),
        (0.3750, 0.6250, 0.0, 4.945, 0.771, -0.125),
        (0.0030, 0.9970, 0.0, 5.527, -0.941, 0.991),
    ],
    16: [
        (0.3460, 0.6540, 0.0, 5.339, 0.254, 0.205),
        (0.3155, 0.6845, 0.0, 4.854, 0.219, 0.277),
        (0.3800, 0.6200, 0.0, 5.205, 0.346, 0.129),
        (0.0815, 0.9185, 0.0, 5.441, -0.552, 0.827),
    ],
    17: [
        (0.3460, 0.6540, 0.0, 5.339, 0.254, 0.205),
        (0.3155, 0.6845, 0.0, 4.854, 0.219, 0.277),
        (0.3800, 0.6200, 0.0, 5.205, 0.346, 0.129),
        (0.0815, 0.9185, 0.0, 5.441, -0.552, 0.827),
    ],
    18: [
        (0.1470, 0.8530, 0.0, 6.499, -0.493, 0.689),
        (0.4815, 0.5185, 0.0, 4.089, 0.832, -0.115),
        (0.7030, 0.2970, 0.0, 3.531, 1.537, -0.695),
        (0.0145, 0.9855, 0.0, 5.370, -0.907, 0.971),
    ],
    19: [
        (0.1655, 0.8345, 0.0, 6.623, -0.642, -3.859),
        (0.3590, 0.6410, 0.0, 4.573, 1.317, -8.018),
        (0.6215, 0.3785, 0.0, 4.218, 1.003, -15.868),
        (0.0275, 0.9725, 0.0, 5.434, -0.889, 0.806),
    ],
    20: [
        (0.1810, 0.8190, 0.0, 6.556, -0.677, -4.278),
        (0.4590, 0.5410, 0.0, 4.673, 1.403, -10.845),
        (0.6275, 0.3725, 0.0, 4.255, 1.028, -16.039),
        (0.0510, 0.9490, 0.0, 5.793, -0.787, -0.122),
    ],
    21: [
        (0.4895, 0.5105, 0.0, 5.012, -0.542, -12.705),
        (0.6485, 0.3515, 0.0, 4.476, 0.606, -16.780),
        (0.6280, 0.3720, 0.0, 4.029, 1.149, -16.323),
        (0.5145, 0.4855, 0.0, 5.287, -0.422, -13.213),
    ],
}
REFERENCE_EPISODES = 2000
EPISODES = 4000  # per cell, JAX side
# Versions whose rows repeat another's outcome rates (same layout and dynamics, §13.4 note):
# excluded from the global chi-square so no cell is counted twice.
REPEATS = {6: 5, 7: 3, 8: 0, 9: 2, 10: 0, 17: 16}
TABLE_TESTS = 5 * 4 * len(TABLE)
Z_TABLE = float(stats.norm.isf(1e-3 / TABLE_TESTS / 2))  # Bonferroni, family-wise 1e-3: 4.73


def _reference_layout(version):
    """The construction-time state of `IdsGameV{k}Env` after `np.random.seed(12345)` (§13.3, App. B)."""
    envs = pytest.importorskip("gym_idsgame.envs.idsgame_env", reason="the reference gym-idsgame is not installed")
    cls = getattr(envs, f"IdsGameV{version}Env", None)
    if cls is None:
        pytest.skip(f"the installed reference has no IdsGameV{version}Env")
    state = np.random.get_state()
    try:
        np.random.seed(12345)
        ref = cls()
    finally:
        np.random.set_state(state)
    s = ref.idsgame_config.game_config.initial_state
    return (
        np.asarray(s.attack_values),
        np.asarray(s.defense_values),
        np.asarray(s.defense_det),
        np.asarray(s.reconnaissance_state),
    )


def _outcome_program(env):
    """jit(batch of games) with the bot pair chosen per game by two traced flags: one compile per version."""
    cfg = env.config
    limit = 110  # > 101 transitions + the penalty transition

    def policy(key, state, params, attack_maximal, defend_minimal):
        k_a, k_d = jax.random.split(key)
        a = jnp.where(
            attack_maximal,
            bots.attack_maximal(k_a, state, cfg, params),
            bots.random_attack(k_a, state, cfg, params),
        )
        d = jnp.where(
            defend_minimal,
            bots.defend_minimal(k_d, state, cfg, params),
            bots.random_defense(k_d, state, cfg, params),
        )
        return {"attacker": a, "defender": d}

    def game_step(carry, params, attack_maximal, defend_minimal):
        state, key, alive, length, ret_a, ret_d, hacked, timed_out = carry
        key, k_policy, k_step = jax.random.split(key, 3)
        action = policy(k_policy, state, params, attack_maximal, defend_minimal)
        # The bots' game without auto-reset: one episode per game.
        _, state, reward, terminated, info = env.step_env(k_step, state, action, params)
        truncated = env.is_truncated(state, params)
        return (
            state,
            key,
            alive & ~(terminated | truncated),
            length + (alive & ~truncated).astype(jnp.int32),
            ret_a + jnp.where(alive, reward["attacker"], 0.0),
            ret_d + jnp.where(alive, reward["defender"], 0.0),
            hacked | (alive & info["hacked"]),
            timed_out | (alive & truncated),
        )

    # Level 1 compiles ~30% faster than the default and runs these games as fast.
    @functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 1})
    def run(keys, params, attack_maximal, defend_minimal):
        k_reset, k_play = jax.vmap(jax.random.split, out_axes=1)(keys)
        states = jax.vmap(env.initial_state, in_axes=(0, None))(k_reset, params)
        n = keys.shape[0]
        carry = (
            states,
            k_play,
            jnp.ones(n, bool),
            jnp.zeros(n, jnp.int32),
            jnp.zeros(n),
            jnp.zeros(n),
            jnp.zeros(n, bool),
            jnp.zeros(n, bool),
        )
        step = jax.vmap(game_step, in_axes=(0, None, 0, 0))

        def cond(c):
            t, carry = c
            return carry[2].any() & (t < limit)

        def body(c):
            t, carry = c
            return t + 1, step(carry, params, attack_maximal, defend_minimal)

        _, carry = jax.lax.while_loop(cond, body, (0, carry))
        _, _, alive, length, ret_a, ret_d, hacked, timed_out = carry
        return alive, length, ret_a, ret_d, hacked, timed_out

    return run


@functools.cache
def _outcomes(version):
    """JAX statistics of the 4 bot pairs on the reference's construction layout, EPISODES games each."""
    attack, defense, detection, recon = _reference_layout(version)
    env, params = idsjax.make(f"idsgame-v{version}")
    assert defense.shape == tuple(params.initial_defense.shape)
    params = env.with_initial_state(params, attack, defense, detection, recon)
    flags = np.array([[name == "AttackMaximal", d == "DefendMinimal"] for name, d in PAIRS])
    att_max = jnp.asarray(np.repeat(flags[:, 0], EPISODES))
    def_min = jnp.asarray(np.repeat(flags[:, 1], EPISODES))
    out = _outcome_program(env)(_keys(1000 + version, 4 * EPISODES), params, att_max, def_min)
    alive, length, ret_a, ret_d, hacked, timed_out = (np.asarray(x).reshape(4, EPISODES) for x in out)
    assert not alive.any(), "every game ends by the step limit"
    return {"length": length, "ret_a": ret_a, "ret_d": ret_d, "hacked": hacked, "timed_out": timed_out}


def _two_proportion_z(x1, n1, p2, n2):
    """z of JAX successes x1/n1 against the reference's rate p2 over n2 episodes (pooled)."""
    x2 = round(p2 * n2)
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    diff = x1 / n1 - x2 / n2
    return 0.0 if se == 0 else diff / se


def _mean_z(sample, reference_mean, rounding=0.0005):
    """Welch-style z of a JAX sample mean against the reference's 2000-episode mean, using the JAX
    sample variance for both (the table has no variances); the table's 3-decimal rounding is forgiven."""
    sample = np.asarray(sample, np.float64)
    var = sample.var(ddof=1)
    se = math.sqrt(var / sample.size + var / REFERENCE_EPISODES)
    gap = max(abs(sample.mean() - reference_mean) - rounding, 0.0)
    if se == 0:
        return 0.0 if gap == 0 else math.inf
    return gap / se


@pytest.mark.parametrize("version", sorted(TABLE))
def test_outcome_table(version):
    """The 4 bot pairs of §13.4 on the reference's layout: P(hack), P(timeout), mean length and both
    mean returns (timeout transition included) agree with the reference's 2000-episode measurement."""
    res = _outcomes(version)
    failures = []
    for i, (pair, row) in enumerate(zip(PAIRS, TABLE[version])):
        p_hack, _, p_timeout, mean_len, mean_a, mean_d = row
        zs = {
            "P(hack)": _two_proportion_z(int(res["hacked"][i].sum()), EPISODES, p_hack, REFERENCE_EPISODES),
            "P(timeout)": _two_proportion_z(int(res["timed_out"][i].sum()), EPISODES, p_timeout, REFERENCE_EPISODES),
            "mean length": _mean_z(res["length"][i], mean_len),
            "mean attacker return": _mean_z(res["ret_a"][i], mean_a),
            "mean defender return": _mean_z(res["ret_d"][i], mean_d),
        }
        ours = {
            "P(hack)": res["hacked"][i].mean(),
            "P(timeout)": res["timed_out"][i].mean(),
            "mean length": res["length"][i].mean(),
            "mean attacker return": res["ret_a"][i].mean(),
            "mean defender return": res["ret_d"][i].mean(),
        }
        expected = dict(zip(zs, (p_hack, p_timeout, mean_len, mean_a, mean_d)))
        for name, z in zs.items():
            if abs(z) >= Z_TABLE:
                failures.append(
                    f"v{version} {pair[0]} vs {pair[1]}: {name} {ours[name]:.4f}, reference {expected[name]:.4f}"
                    f" (|z| = {abs(z):.2f} ≥ {Z_TABLE:.2f})"
                )
    assert not failures, "\n".join(failures)


def test_outcome_table_hack_rates_jointly():
    """Σ z² of P(hack) over the cells with distinct dynamics ~ chi-square(cells): p > 1e-4."""
    z2 = []
    for version in sorted(TABLE):
        if version in REPEATS:
            continue
        res = _outcomes(version)
        for i, row in enumerate(TABLE[version]):
            z2.append(_two_proportion_z(int(res["hacked"][i].sum()), EPISODES, row[0], REFERENCE_EPISODES) ** 2)
    p = float(stats.chi2.sf(sum(z2), len(z2)))
    assert p > P_MIN, f"P(hack) over {len(z2)} cells: Σz² = {sum(z2):.1f} (p = {p:.2e})"
