"""`EnvState` keeps defense and detection in one array laid out as the defender's observation; the
`defense` and `detection` views, `EnvState.create` and `replace` keep the two apart for readers and
writers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.types import EnvState


@pytest.fixture(scope="module")
def v3():
    env, params = idsjax.make("idsgame-v3")
    _, state = env.reset(jax.random.PRNGKey(0), params)
    return env, params, state


def test_views_are_the_columns_of_defense_detection(v3):
    env, params, state = v3
    a = env.config.attack_types
    np.testing.assert_array_equal(state.defense, state.defense_detection[:, :a])
    np.testing.assert_array_equal(state.detection, state.defense_detection[:, a])
    np.testing.assert_array_equal(state.defense, params.initial_defense)
    np.testing.assert_array_equal(state.detection, params.initial_detection)


def test_defender_observation_is_the_stored_array(v3):
    env, params, state = v3
    obs = env.get_obs(state, params)["defender"]
    np.testing.assert_array_equal(obs, state.defense_detection)
    assert obs.shape == env.config.defender_observation_shape


def test_replace_writes_either_half_and_keeps_the_other(v3):
    _, _, state = v3
    defense = state.defense.at[1, 3].set(7)
    only_defense = state.replace(defense=defense)
    np.testing.assert_array_equal(only_defense.defense, defense)
    np.testing.assert_array_equal(only_defense.detection, state.detection)

    detection = state.detection.at[2].set(5)
    only_detection = state.replace(detection=detection)
    np.testing.assert_array_equal(only_detection.detection, detection)
    np.testing.assert_array_equal(only_detection.defense, state.defense)

    both = state.replace(defense=defense, detection=detection, position=jnp.int32(3))
    np.testing.assert_array_equal(both.defense, defense)
    np.testing.assert_array_equal(both.detection, detection)
    assert int(both.position) == 3
    assert both.defense_detection.dtype == state.defense_detection.dtype


def test_create_joins_the_halves_and_refuses_one_alone(v3):
    _, _, state = v3
    fields = {name: getattr(state, name) for name in state.__dataclass_fields__ if name != "defense_detection"}
    rebuilt = EnvState.create(defense=state.defense, detection=state.detection, **fields)
    for a, b in zip(jax.tree.leaves(rebuilt), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="together"):
        EnvState.create(defense=state.defense, **fields)


def test_views_and_replace_under_a_batch_axis(v3):
    env, params, _ = v3
    _, batch = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.PRNGKey(1), 4), params)
    n, a = env.config.num_nodes, env.config.attack_types
    assert batch.defense.shape == (4, n, a)
    assert batch.detection.shape == (4, n)
    bumped = batch.replace(detection=batch.detection + 1)
    np.testing.assert_array_equal(bumped.detection, batch.detection + 1)
    np.testing.assert_array_equal(bumped.defense, batch.defense)


def test_a_defense_id_raises_the_cell_it_indexes(v3):
    """The step's single write: defense id `node·(A+1) + type` raises `defense_detection[node, type]`,
    detection included (type A), and nothing else."""
    env, params, state = v3
    width = env.config.attack_types + 1
    start = env.config.network.start_node
    for node, kind in ((1, 0), (2, width - 1), (5, 4)):
        action = {"attacker": jnp.int32(-1), "defender": jnp.int32(node * width + kind)}
        _, stepped, *_ = env.step_env(jax.random.PRNGKey(2), state, action, params)
        diff = np.asarray(stepped.defense_detection, np.int32) - np.asarray(state.defense_detection, np.int32)
        expected = np.zeros_like(diff)
        if state.defense_detection[node, kind] < params.max_value:
            expected[node, kind] = 1
        np.testing.assert_array_equal(diff, expected)
        assert int(stepped.position) == start


def test_subclasses_keep_the_views_in_replace(v3):
    """`GeneratedState` (a scenario family's state) is declared with `types.state_dataclass`, so its
    `replace` takes defense and detection apart like `EnvState`'s."""
    from idsjax.scenario.generated import GeneratedState

    _, _, state = v3
    fields = {name: getattr(state, name) for name in state.__dataclass_fields__}
    generated = GeneratedState(**fields)
    bumped = generated.replace(detection=state.detection + 1)
    assert isinstance(bumped, GeneratedState)
    np.testing.assert_array_equal(bumped.detection, state.detection + 1)
    np.testing.assert_array_equal(bumped.defense, state.defense)
