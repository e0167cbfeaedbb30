"""`idsjax.node_features`: the role and depth columns on a hand-made scenario whose depths are known,
the same numbers traced and in NumPy, registered ids, generated families (the network of the state,
also in `final_observation`), two-agent ids, observation shapes, and refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.node_features import FEATURES, NodeFeatures, depth_hops, network_of, node_features
from idsjax.scenario.generated import GeneratedEnv
from idsjax.scenario.generator import Family

CHAIN = "scenarios/examples/chain_with_shortcut.yaml"
# chain_with_shortcut's nodes in file order: start, hop1, hop2, hop3, gate, hop4, data. Edges
# start-hop1-hop2-hop3-hop4-data and start-gate-hop4: the shortcut puts hop4 at 2 hops and data at 3.
CHAIN_HOPS = [0, 1, 2, 3, 1, 2, 3]
CHAIN_ROLES = ["start", "server", "server", "server", "server", "server", "data"]


@pytest.fixture(scope="module")
def chain():
    return idsjax.make_scenario(CHAIN, mode="minimal_defense", max_nodes=9)  # two padding nodes


def test_hand_made_scenario_roles_and_depths(chain):
    env, params = chain
    arrays = env.network_arrays(params)
    hops = np.asarray(depth_hops(arrays.reach, arrays.node_mask, arrays.start_node))
    assert hops.tolist() == CHAIN_HOPS + [-1, -1]
    feats = np.asarray(node_features(arrays))
    assert feats.dtype == np.int8 and feats.shape == (9, len(FEATURES))
    for i, role in enumerate(CHAIN_ROLES):
        expected = [10 * (role == r) for r in ("start", "server", "data")]
        assert feats[i, :3].tolist() == expected, (i, role)
    # Depth over the deepest (3 hops), on the scale of 10, rounded.
    assert feats[:7, 3].tolist() == [round(10 * h / 3) for h in CHAIN_HOPS]
    assert not feats[7:].any()  # padding rows stay all zero


def test_traced_features_equal_the_numpy_ones(chain):
    env, params = chain
    arrays = env.network_arrays(params)
    as_numpy = jax.tree.map(np.asarray, arrays)
    traced = jax.jit(node_features)(arrays)
    np.testing.assert_array_equal(np.asarray(traced), node_features(as_numpy))
    assert isinstance(node_features(as_numpy), np.ndarray)  # a fixed network: computed at trace time


def test_wrapper_appends_columns_and_keeps_the_rest(chain):
    env, params = chain
    wrapped = NodeFeatures(env)
    key = jax.random.PRNGKey(3)
    obs, state = wrapped.reset(key, params)
    raw, raw_state = env.reset(key, params)
    np.testing.assert_array_equal(obs[:, : raw.shape[1]], raw)
    np.testing.assert_array_equal(obs[:, raw.shape[1] :], node_features(env.network_arrays(params)))
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), state, raw_state))
    assert wrapped.observation_shape("attacker") == obs.shape
    assert wrapped.observation_space(params).shape == obs.shape
    action = jnp.argmax(wrapped.legal_action_mask(state, params))
    out = wrapped.step(key, state, action, params)
    ref = env.step(key, state, action, params)
    np.testing.assert_array_equal(out[0][:, : raw.shape[1]], ref[0])
    assert out[0].shape == obs.shape and out[5]["final_observation"].shape == obs.shape


@pytest.mark.parametrize("env_id", ["idsgame-minimal_defense-v3", "idsgame-maximal_attack-v5", "idsgame-v4"])
def test_registered_ids(env_id):
    env, params = idsjax.make(env_id)
    wrapped = NodeFeatures(env)
    obs, state = jax.jit(wrapped.reset)(jax.random.PRNGKey(0), params)
    raw, _ = env.reset(jax.random.PRNGKey(0), params)
    arrays = env.network_arrays(params)
    feats = node_features(arrays)
    for o, r in zip(jax.tree.leaves(obs), jax.tree.leaves(raw), strict=True):  # two-agent ids: both views
        np.testing.assert_array_equal(o[:, : r.shape[1]], r)
        np.testing.assert_array_equal(o[:, r.shape[1] :], feats)
    # One start and one data node; the data node is the deepest (the grid's top row).
    assert (feats[:, 0] == 10).sum() == 1 and (feats[:, 2] == 10).sum() == 1
    assert feats[int(arrays.data_node), 3] == 10 and feats[int(arrays.start_node), 3] == 0


def test_generated_family_reads_the_network_of_the_state():
    env = GeneratedEnv(Family(max_layers=3, max_width=3), "minimal_defense")
    wrapped = NodeFeatures(env)
    params = env.default_params
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    obs, state = jax.vmap(wrapped.reset, in_axes=(0, None))(keys, params)
    expected = jax.vmap(lambda s: node_features(network_of(env, s, params)))(state)
    np.testing.assert_array_equal(obs[..., -4:], expected)
    assert len({np.asarray(e).tobytes() for e in expected}) > 1  # the networks differ, so do the features

    def play(carry, key):
        state = carry
        mask = jax.vmap(wrapped.legal_action_mask, in_axes=(0, None))(state, params)
        action = jax.vmap(lambda k, m: jax.random.choice(k, m.shape[0], p=m / m.sum()))(
            jax.random.split(key, 16), mask.astype(jnp.float32)
        )
        before = jax.vmap(lambda s: node_features(network_of(env, s, params)))(state)
        obs, nxt, _, term, trunc, info = jax.vmap(wrapped.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key, 16), state, action, params
        )
        after = jax.vmap(lambda s: node_features(network_of(env, s, params)))(nxt)
        ok_final = (info["final_observation"][..., -4:] == before).all()
        ok_obs = (obs[..., -4:] == after).all()
        return nxt, (ok_final, ok_obs, (term | trunc).any())

    _, (ok_final, ok_obs, ended) = jax.jit(
        lambda s: jax.lax.scan(play, s, jax.random.split(jax.random.PRNGKey(1), 40))
    )(state)
    assert bool(ok_final.all()) and bool(ok_obs.all())
    assert bool(ended.any())  # some games ended and drew a new network within the 40 steps


def test_refusals():
    env, _ = idsjax.make("idsgame-minimal_defense-v18")  # the attacker's local view: slots, not nodes
    with pytest.raises(ValueError, match="one observation row per node"):
        NodeFeatures(env)
    v3, _ = idsjax.make("idsgame-minimal_defense-v3")
    with pytest.raises(ValueError, match="already has node features"):
        NodeFeatures(NodeFeatures(v3))
    import gymnax

    cartpole, _ = gymnax.make("CartPole-v1")
    with pytest.raises(ValueError, match="need an idsjax environment"):
        NodeFeatures(cartpole)


def test_defaults_unchanged():
    """Wrapping is opt-in: the environment itself observes exactly what it did."""
    env, params = idsjax.make("idsgame-minimal_defense-v3")
    NodeFeatures(env)
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    assert obs.shape == env.observation_space(params).shape == env.observation_shape("attacker")
