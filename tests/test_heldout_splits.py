"""Held-out splits by construction (idsjax.scenario.splits and GeneratedParams.exclude): training resets
never play an excluded network, exclusion off is today's environment bit for bit, a family too small
to escape its exclusion set is flagged, and the held-out sets are what they say."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from idsjax import threefry
from idsjax.network import SERVER
from idsjax.scenario.builtin import builtin_scenario
from idsjax.scenario.canonical import as_ints, hash_networks
from idsjax.scenario.env import ScenarioEnv, _construction_params, make_scenario
from idsjax.scenario.generated import MAX_DRAWS, GeneratedEnv, make_generated
from idsjax.scenario.generator import Family, generate
from idsjax.scenario.schema import ScenarioError
from idsjax.scenario.splits import (
    FAMILY_VARIATIONS,
    Splits,
    builtin_sets,
    draw_distinct,
    heldout_pool,
    pad_network,
    shape_sets,
)

# One layer of one or two servers, one attack type, fixed values, each server vulnerable or not: five
# networks up to renumbering (width 1: 2; width 2: {none, one, both} vulnerable).
TINY = Family(
    min_layers=1, max_layers=1, min_width=1, max_width=2, attack_types=1,
    defense=(2, 2), detection=(2, 2), vulnerability=(0, 0), vulnerable_p=0.5,
)  # fmt: skip
TINY_NETWORKS = 5


@pytest.fixture(scope="module")
def tiny():
    env, params = make_generated(TINY, mode="random_defense")
    _, every = draw_distinct(env, jax.random.PRNGKey(1), TINY_NETWORKS)
    return env, params, every


RESETS = 2048  # one batch size for every reset check: the tests share their compiled programs


@functools.cache
def _batched_reset(env):
    return jax.jit(jax.vmap(env.reset, in_axes=(0, None)))


def _reset_many(env, params, seed=5):
    return _batched_reset(env)(jax.random.split(jax.random.PRNGKey(seed), RESETS), params)[1]


def test_the_tiny_family_has_exactly_its_networks(tiny):
    env, params, every = tiny
    assert len(set(as_ints(every))) == TINY_NETWORKS
    with pytest.raises(ScenarioError, match=f"found only {TINY_NETWORKS} distinct networks"):
        draw_distinct(env, jax.random.PRNGKey(2), TINY_NETWORKS + 1)


def test_resets_never_play_an_excluded_network(tiny):
    env, params, every = tiny
    excluded = every[:3]
    states = _reset_many(env, env.excluding(excluded, params))
    drawn = set(as_ints(hash_networks(states.network, env.shape)))
    assert not drawn & set(as_ints(excluded)), "a reset played an excluded network"
    assert drawn == set(as_ints(every[3:])), "the networks outside the set should all be drawn"
    assert not np.asarray(states.exhausted).any()
    env.check_exclusion(states)  # passes


def test_a_network_outside_the_set_is_the_one_drawn_without_exclusion(tiny):
    """The first draw uses the reset's own key: exclusion only replaces excluded networks."""
    env, params, every = tiny
    plain = _reset_many(env, params)
    excluding = _reset_many(env, env.excluding(every[:3], params))
    outside = ~np.isin(as_ints(hash_networks(plain.network, env.shape)), as_ints(every[:3]))
    assert 0 < outside.sum() < RESETS
    for a, b in zip(jax.tree.leaves(plain.network), jax.tree.leaves(excluding.network)):
        np.testing.assert_array_equal(np.asarray(a)[outside], np.asarray(b)[outside])


GAMES, STEPS = 64, 64


@functools.cache
def _rollout(env):
    """A jitted `(key, state, params) -> (final state, (done, in-jit hashes, networks) per step)` of
    uniformly random legal actions: GAMES games of STEPS steps, auto-resets included."""

    def run(key, state, params):
        def body(state, k):
            ka, ks = jax.random.split(k)
            mask = jax.vmap(env.legal_action_mask, in_axes=(0, None))(state, params)
            action = jax.random.categorical(ka, jnp.where(mask, 0.0, -jnp.inf))
            _, state, _, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(ks, GAMES), state, action, params
            )
            return state, (term | trunc, jax.vmap(env.network_hash)(state.network), state.network)

        return jax.lax.scan(body, state, jax.random.split(key, STEPS))

    return jax.jit(run)


def test_auto_resets_of_a_rollout_never_play_an_excluded_network(tiny):
    env, params, every = tiny
    params = env.excluding(every[:3], params)
    state = jax.tree.map(lambda x: x[:GAMES], _reset_many(env, params))
    final, (done, in_jit, networks) = _rollout(env)(jax.random.PRNGKey(9), state, params)
    assert int(np.asarray(done).sum()) >= 1000, "the check should see at least a thousand auto-resets"
    # The networks of every step's state, hashed on the host, are the in-jit hashes and none is excluded.
    flat = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), networks)
    host = hash_networks(flat, env.shape)
    np.testing.assert_array_equal(host, np.asarray(in_jit).reshape(-1, 2))
    assert not set(as_ints(host)) & set(as_ints(every[:3]))
    assert not np.asarray(final.exhausted).any()


def test_a_family_too_small_to_escape_its_set_is_flagged(tiny):
    env, params, every = tiny
    state = _reset_many(env, env.excluding(every, params))  # every network of the family excluded
    assert np.asarray(state.exhausted).all()
    with pytest.raises(RuntimeError, match=f"no network outside it in {MAX_DRAWS} tries"):
        env.check_exclusion(state)

    # The flag is sticky: auto-resets that find a network outside a smaller set do not clear it.
    state = jax.tree.map(lambda x: x[:GAMES], state)
    final, (done, _, _) = _rollout(env)(jax.random.PRNGKey(9), state, env.excluding(every[:3], params))
    assert np.asarray(done).any(axis=0).all(), "every game should have reset at least once"
    assert np.asarray(final.exhausted).all()


def test_without_exclusion_resets_are_todays_draws():
    """exclude None: the reset splits its key into (network, game), draws the family's network with
    the first and starts the game with the second (the code before exclusion existed), and the state
    carries no `exhausted` leaf."""
    family = Family(max_layers=3, max_width=3, lateral_p=0.3)
    env, params = make_generated(family, mode="random_defense")
    assert params.exclude is None
    keys = jax.random.split(jax.random.PRNGKey(11), 8)
    _, states = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, params)
    assert states.exhausted is None

    def todays_reset(key):
        k_network, k_game = threefry.split(key)
        network = _construction_params(env.shape, generate(k_network, family), k_network)
        network = network.replace(max_steps_in_episode=jnp.asarray(params.max_steps_in_episode, jnp.int32))
        return network, ScenarioEnv.initial_state(env, k_game, network)

    networks, games = jax.jit(jax.vmap(todays_reset))(keys)
    for a, b in zip(jax.tree.leaves(states.network), jax.tree.leaves(networks)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    game_leaves = jax.tree.leaves(dataclasses.replace(states, network=None))
    for a, b in zip(game_leaves, jax.tree.leaves(games), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_heldout_pool_is_distinct_and_excluded_from_training():
    env, params = make_generated(Family(max_layers=2, max_width=3), mode="random_defense")
    held = heldout_pool(env, jax.random.PRNGKey(3), 40)
    assert held.size == 40 and len(set(as_ints(held.hashes))) == 40
    np.testing.assert_array_equal(hash_networks(held.params.pool, env.shape), held.hashes)
    splits = Splits((held,))
    states = _reset_many(env, splits.train_params(env, params))
    drawn = set(as_ints(hash_networks(states.network, env.shape)))
    assert not drawn & set(as_ints(held.hashes))
    # The family repeats networks: without exclusion the same resets do meet held-out networks.
    plain = set(as_ints(hash_networks(_reset_many(env, params).network, env.shape)))
    assert plain & set(as_ints(held.hashes)), "this family is meant to repeat networks (else the test proves nothing)"


def test_shape_sets_are_deeper_wider_denser_larger():
    family = Family(min_layers=1, max_layers=2, min_width=1, max_width=2, edge_p=0.2)
    env, params = make_generated(family, mode="random_defense")
    sets = {s.name: s for s in shape_sets(env, jax.random.PRNGKey(5), 6, params)}
    assert set(sets) == set(FAMILY_VARIATIONS)
    for name, s in sets.items():
        assert len(set(as_ints(s.hashes))) == 6, name
        assert isinstance(s.env, GeneratedEnv) and s.params.max_steps_in_episode == params.max_steps_in_episode
        np.testing.assert_array_equal(hash_networks(s.params.pool, s.env.shape), s.hashes)
    layers = lambda s: np.asarray(s.params.pool.scenario.layer).max(axis=1) - 1  # the start's layer is L + 1  # noqa: E731

    def layer_widths(s):
        """The server count of every live layer of every network of the set."""
        arr = jax.tree.map(np.asarray, s.params.pool.scenario)
        rows = [np.bincount(arr.layer[k][arr.role[k] == SERVER]) for k in range(s.size)]
        return np.concatenate([r[1:] for r in rows])

    assert (layers(sets["deeper"]) > family.max_layers).all() and (layers(sets["larger"]) > family.max_layers).all()
    for name in ("wider", "larger"):
        assert (layer_widths(sets[name]) > family.max_width).all(), name
    assert (layer_widths(sets["deeper"]) <= family.max_width).all()
    assert sets["denser"].env.family.edge_p > family.edge_p and sets["denser"].env.shape == env.shape


def test_builtin_sets_hold_the_22_versions_as_they_are_played():
    sets = builtin_sets()
    names = [n for s in sets for n in s.names]
    assert sorted(names) == sorted(f"v{k}" for k in range(22))
    every = [h for s in sets for h in as_ints(s.hashes)]
    assert len(set(every)) == 22, "two built-in versions hashed equal"
    partial = next(s for s in sets if s.name == "builtin-partial-or-full")
    # Padded into the group, a version keeps its own construction-time layout and hash.
    for version in (0, 3, 11):
        env, own = make_scenario(builtin_scenario(version))
        i = partial.names.index(f"v{version}")
        row = jax.tree.map(lambda x, i=i: x[i], partial.params)
        n, a = env.shape.max_nodes, env.shape.attack_types
        np.testing.assert_array_equal(np.asarray(row.initial_defense)[:n, :a], np.asarray(own.initial_defense))
        assert as_ints(partial.hashes[i]) == as_ints(hash_networks(own, env.shape))


def test_pad_network_refuses_shrinking():
    env, params = make_scenario(builtin_scenario(3))
    with pytest.raises(ScenarioError, match="max_nodes"):
        pad_network(params, env.shape, env.shape.max_nodes - 1)
