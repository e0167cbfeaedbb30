"""`baselines.tabular_q` draws its random numbers through `idsjax.threefry` (the hash fused on the
CPU) and its own `categorical`: the draws, and so everything it learns and plays, are exactly what
`jax.random` gave before."""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from baselines import cli, tabular_q
from idsjax import backend

KEYS = jax.random.split(jax.random.PRNGKey(20250611), 64)


@pytest.fixture
def fast_paths():
    """Set the fast paths for one test; `auto` (the CPU's default, fused) again afterwards."""
    yield backend.set_fast_paths
    backend.set_fast_paths(None)


@pytest.mark.parametrize("shape", [(80,), (1, 80), (16, 9)])
@pytest.mark.parametrize("typed", [False, True])
def test_categorical_is_jax_random_categorical(shape, typed, fast_paths):
    fast_paths("on")
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(KEYS), *shape)).astype(np.float32)
    logits[rng.random(logits.shape) < 0.5] = -1e9  # masked ids, as `networks.mask_logits` writes them
    logits[..., 0] = 0.0  # at least one legal id per row
    keys = jax.random.wrap_key_data(KEYS, impl="threefry2x32") if typed else KEYS
    ours = jax.jit(jax.vmap(tabular_q.categorical))(keys, jnp.asarray(logits))
    theirs = jax.vmap(jax.random.categorical)(keys, jnp.asarray(logits))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    # and the test can tell: another key's draws differ
    shifted = jax.jit(jax.vmap(tabular_q.categorical))(jnp.roll(keys, 1, axis=0), jnp.asarray(logits))
    assert not np.array_equal(np.asarray(shifted), np.asarray(theirs))


def train(flags: list[str]):
    """Final state, per-update metrics and evaluation actions of a short run of 5 seeds."""
    config = cli.parse_config(
        tabular_q,
        ["--env", "idsgame-minimal_defense-v0", "--total-timesteps", "2048", "--num-envs", "4", "--mask-illegal"]
        + flags,
    )
    env, params = idsjax.make(config["env"])
    trainer = tabular_q.make_train(config, env, params)
    runner, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.PRNGKey(7), 5))
    obs = runner.env.obs[:, :1]  # one observation per seed
    mask = jnp.ones((5, 1, env.action_space(params).n), bool)
    acts = jax.jit(jax.vmap(trainer.act))(runner, obs, mask, jax.random.split(jax.random.PRNGKey(8), 5))
    return runner, metrics, acts


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param([], marks=pytest.mark.slow),  # the hashed observation, ties broken at random
        ["--table-key", "attacker_node", "--tie-break", "first", "--bootstrap", "all_always", "--eps-schedule",
         "exponential", "--eps-end", "0.1"],  # the reference grid's mapping
    ],
)  # fmt: skip
def test_training_is_what_jax_random_trained(flags, monkeypatch):
    """The trainer as it was (its draws from `jax.random`, the environment's own fast paths as they
    are) and as it is: the same table, states, metrics and evaluation actions, bit for bit."""
    with monkeypatch.context() as m:
        m.setattr(tabular_q, "threefry", SimpleNamespace(split=jax.random.split, uniform=jax.random.uniform))
        m.setattr(tabular_q, "categorical", jax.random.categorical)
        before = train(flags)
    after = train(flags)
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(before)[0]]
    leaves_before, leaves_after = jax.tree.leaves(before), jax.tree.leaves(after)
    assert len(leaves_before) == len(leaves_after)
    for path, x, y in zip(paths, leaves_before, leaves_after):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=path)
    assert np.abs(np.asarray(after[0].q)).sum() > 0  # something was learnt
