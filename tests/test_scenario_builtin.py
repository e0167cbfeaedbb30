"""The 22 built-in versions as scenarios: each file's arrays reproduce its version's network exactly,
and the movement rule over the arrays is `idsjax.actions.attack_mask` from every position."""

from __future__ import annotations

import pathlib
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.actions import attack_mask as grid_attack_mask
from idsjax.actions import defense_mask as grid_defense_mask
from idsjax.config import GameConfig
from idsjax.network import SERVER, START
from idsjax.scenario import arrays as sa
from idsjax.scenario import builtin, load_scenario, shape_of, to_arrays
from idsjax.scenario.schema import dump_scenario
from idsjax.types import EnvParams
from idsjax.versions import VERSIONS, Mode, version_spec

BUILTIN = pathlib.Path(__file__).resolve().parent.parent / "scenarios" / "builtin"
CASES = [(v, Mode.TWO_AGENT) for v in range(len(VERSIONS))] + list(builtin.MODE_VARIANTS)


def _case_id(case):
    return builtin.file_name(*case)[: -len(".yaml")]


def test_the_committed_files_are_the_generators_output():
    files = sorted(p.name for p in BUILTIN.glob("*.yaml"))
    assert files == sorted(builtin.file_name(v, m) for v, m in CASES)
    for version, mode in CASES:
        text = (BUILTIN / builtin.file_name(version, mode)).read_text()
        assert text.split("\n", 1)[1] == dump_scenario(builtin.builtin_scenario(version, mode)), (version, mode)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_scenario_arrays_reproduce_the_versions_network(case):
    version, mode = case
    cfg = GameConfig.create(version, mode)
    net, spec = cfg.network, cfg.spec
    assert spec == version_spec(version, mode)
    scenario = load_scenario(BUILTIN / builtin.file_name(version, mode))
    shape = shape_of(scenario)
    arr = jax.tree.map(np.asarray, to_arrays(scenario, shape))
    n = net.num_nodes

    assert shape.max_nodes == n and shape.attack_types == cfg.attack_types
    assert shape.reconnaissance == cfg.reconnaissance and shape.local_view == spec.local_view
    assert shape.attack_id_width == cfg.attack_id_width
    assert shape.num_draw_slots == net.rows * net.cols
    np.testing.assert_array_equal(arr.draw_slot, net.node_row * net.cols + net.node_col)
    assert arr.node_mask.all()
    np.testing.assert_array_equal(arr.role, net.node_type)
    assert arr.start_node == net.start_node and arr.data_node == net.data_node
    np.testing.assert_array_equal(arr.reach, net.attack_reachable)
    np.testing.assert_array_equal(arr.neighbors, net.adjacency)
    np.testing.assert_array_equal(arr.layer, net.node_row)
    np.testing.assert_array_equal(arr.position, np.stack([net.node_col, net.node_row], 1))
    np.testing.assert_array_equal(arr.defendable, net.defendable)

    assert arr.num_attack_types == cfg.attack_types and arr.type_mask.all()
    assert arr.max_value == spec.max_value
    d = net.defendable
    for name, bounds in (
        ("attack", (spec.min_attack, spec.attack_value)),
        ("defense", (spec.min_defense, spec.defense_value)),
        ("detection", (spec.min_detection, spec.detection_value)),
        ("vulnerability", (spec.vulnerability_value, spec.max_vulnerability_value)),
    ):
        got = getattr(arr, f"{name}_range")
        np.testing.assert_array_equal(got[d], np.broadcast_to(bounds, (d.sum(), 2)), err_msg=name)
        assert (got[~d] == 0).all(), name
    assert bool(arr.randomize) == spec.randomize_env
    assert arr.vulnerable_per_layer == spec.vulnerable_servers_per_layer
    assert arr.vulnerabilities_per_node == spec.vulnerabilities_per_node
    np.testing.assert_array_equal(arr.vulnerable_candidate, net.node_type == SERVER)
    np.testing.assert_array_equal(arr.vulnerable_always, np.arange(n) == net.data_node)
    assert not arr.vulnerable_fixed.any()

    # Starts: the start node alone, or Q17's weights (C for the start, 1 per server).
    if spec.random_start:
        expected = np.where(net.node_type == START, net.cols, np.where(net.node_type == SERVER, 1, 0))
    else:
        expected = (np.arange(n) == net.start_node).astype(int)
    np.testing.assert_array_equal(arr.start_weight, expected)
    assert arr.view == (sa.VIEW_LOCAL if spec.local_view else sa.VIEW_FULL if spec.fully_observed else sa.VIEW_PARTIAL)
    if spec.local_view:
        assert shape.local_slots == cfg.max_neighbors
        np.testing.assert_array_equal(arr.local_view, cfg.local_view_slots)
    np.testing.assert_allclose(arr.visibility_p, spec.visibility_p if spec.randomize_visibility else 0.0)
    assert arr.reward_family == int(spec.reward)
    assert arr.max_steps == idsjax.types.EnvParams.max_steps_in_episode
    assert arr.detection_factor == 1.0


def _mask_classes() -> list[int]:
    """One version per distinct input of the attack mask (grid, attack types, cap, reconnaissance): the
    test above shows every version's arrays hold its grid, so these cover every version's rule."""
    seen, out = set(), []
    for v, s in enumerate(VERSIONS):
        key = (s.layers, s.servers_per_layer, s.connected_layers, s.attack_types, s.max_value, s.reconnaissance)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


@pytest.mark.parametrize("version", _mask_classes(), ids=lambda v: f"v{v}")
def test_attack_mask_over_arrays_is_the_grids_from_every_state(version):
    """From every node, with attack values drawn over 0 … M (a quarter of them at the cap), the rule over
    the arrays gives `idsjax.actions.attack_mask`'s legal ids; from positions outside the network, none."""
    cfg = GameConfig.create(version, Mode.TWO_AGENT)
    params = EnvParams(max_value=jnp.int32(cfg.spec.max_value))
    scenario = load_scenario(BUILTIN / f"v{version}.yaml")
    shape = shape_of(scenario)
    arr = to_arrays(scenario, shape)
    n, a, m = cfg.num_nodes, cfg.attack_types, cfg.spec.max_value

    per_node = 6
    bad_positions = np.array([-1, n, n + 7], np.int32)
    positions = np.concatenate([np.repeat(np.arange(n), per_node), bad_positions]).astype(np.int32)
    rng = np.random.default_rng(version)
    attack = rng.integers(0, m + 1, size=(len(positions), n, a))
    attack = np.where(rng.random(attack.shape) < 0.25, m, attack).astype(np.int8)

    def both(position, attack_values):
        # The grid's mask reads only the position and the attack values of the state.
        state = types.SimpleNamespace(position=jnp.clip(position, 0, n - 1), attack=attack_values)
        fixed = grid_attack_mask(cfg.shape, cfg.network_arrays(params), state.position, state.attack)
        return fixed, sa.attack_mask(shape, arr, position, attack_values)

    want, got = map(np.asarray, jax.jit(jax.vmap(both))(jnp.asarray(positions), jnp.asarray(attack)))
    valid = len(positions) - len(bad_positions)
    np.testing.assert_array_equal(got[:valid], want[:valid])
    assert want[:valid].any() and not want[:valid].all()  # neither side is trivially constant
    assert not got[valid:].any()
    np.testing.assert_array_equal(
        np.asarray(sa.defense_mask(shape, arr)), np.asarray(grid_defense_mask(cfg.shape, cfg.fixed_arrays))
    )


def test_padding_adds_no_legal_action():
    """v3 padded to 12 nodes and 12 attack types: the real ids keep their legality, padding none."""
    scenario = load_scenario(BUILTIN / "v3.yaml")
    own, padded = shape_of(scenario), shape_of(scenario, max_nodes=12)._replace(attack_types=12)
    small, big = to_arrays(scenario, own), to_arrays(scenario, padded)
    attack = np.zeros((8, 10), np.int8)
    attack[3, 4] = 9  # at the cap
    attack_big = np.zeros((12, 12), np.int8)
    attack_big[:8, :10] = attack
    positions = jnp.arange(8)
    masks_small = jax.jit(jax.vmap(lambda p: sa.attack_mask(own, small, p, jnp.asarray(attack))))(positions)
    masks_big = jax.jit(jax.vmap(lambda p: sa.attack_mask(padded, big, p, jnp.asarray(attack_big))))(positions)
    for position in range(8):
        m_small = np.asarray(masks_small[position]).reshape(8, 10)
        m_big = np.asarray(masks_big[position]).reshape(12, 12)
        np.testing.assert_array_equal(m_big[:8, :10], m_small)
        assert not m_big[8:].any() and not m_big[:, 10:].any()
    d = np.asarray(sa.defense_mask(padded, big)).reshape(12, 13)
    assert not d[8:].any() and not d[:, 10:12].any() and d[1:7, 12].all()
