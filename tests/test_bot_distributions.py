"""The exact distributions of `idsjax.bot_distributions` against the samplers of `idsjax.bots`:
same support, and frequencies within 5 standard errors, on states reached by random play."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.bot_distributions import BOT_PROBS
from idsjax.bots import BOTS

SAMPLES = 4000
SIDE_BOTS = {"attacker": ("attack_maximal", "random_attack"), "defender": ("defend_minimal", "random_defense")}


def visited_states(version: int, games: int = 3, steps: int = 24, seed: int = 0):
    """States of a few two-agent games of random (mostly legal) play, stacked along a leading axis."""
    env, params = idsjax.make(f"idsgame-v{version}", seed=seed)
    cfg = env.config

    def play(key):
        def body(state, key):
            k_a, k_d, k_s = jax.random.split(key, 3)
            attack = jax.random.randint(k_a, (), 0, cfg.num_attack_ids)
            defense = jax.random.randint(k_d, (), 0, cfg.num_defense_actions)
            _, nxt, *_ = env.step(k_s, state, {"attacker": attack, "defender": defense}, params)
            return nxt, state

        k_reset, k_steps = jax.random.split(key)
        _, state = env.reset(k_reset, params)
        _, states = jax.lax.scan(body, state, jax.random.split(k_steps, steps))
        return states

    states = jax.vmap(play)(jax.random.split(jax.random.PRNGKey(seed), games))
    every = jnp.arange(0, steps, 4)
    states = jax.tree.map(lambda x: x[:, every].reshape((-1,) + x.shape[2:]), states)
    return env, params, states


def check_against_sampler(env, params, states, bot_name):
    cfg = env.config
    bot, probs_fn = BOTS[bot_name], BOT_PROBS[bot_name]
    probs = jax.jit(jax.vmap(lambda s: probs_fn(s, cfg, params)))(states)
    keys = jax.random.split(jax.random.PRNGKey(1), SAMPLES)
    picks = jax.jit(jax.vmap(lambda s: jax.vmap(lambda k: bot(k, s, cfg, params))(keys)))(states)
    probs, picks = np.asarray(probs, np.float64), np.asarray(picks)
    size = probs.shape[1]
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    for p, sample in zip(probs, picks):
        assert ((sample >= 0) & (sample < size)).all()
        freq = np.bincount(sample, minlength=size) / SAMPLES
        assert (p[freq > 0] > 0).all(), "the sampler picked an id outside the exact support"
        se = np.sqrt(p * (1 - p) / SAMPLES)
        assert np.all(np.abs(freq - p) <= 5 * se + 1e-9), (bot_name, p, freq)


@pytest.mark.parametrize("version", [3, 18, 19])
def test_exact_distribution_matches_the_sampler(version):
    """v3: Q12 ties; v18: local view and reconnaissance (Q11); v19:
    reconnaissance."""
    env, params, states = visited_states(version)
    for name in SIDE_BOTS["attacker"] + SIDE_BOTS["defender"]:
        check_against_sampler(env, params, states, name)


def test_defend_minimal_tie_rule_q12():
    """v3's start: every node has a zero defense; the data node (first holder) is never chosen and
    the six servers share the probability (spec Q12)."""
    env, params = idsjax.make("idsgame-minimal_defense-v3")
    cfg = env.config
    _, state = env.reset(jax.random.PRNGKey(0), params)
    probs = np.asarray(BOT_PROBS["defend_minimal"](state, cfg, params))
    per_node = probs.reshape(cfg.num_nodes, cfg.attack_types + 1).sum(axis=1)
    assert per_node[0] == 0.0 and per_node[-1] == 0.0
    np.testing.assert_allclose(per_node[1:-1], 1 / 6, rtol=1e-6)


def test_attack_maximal_falls_back_to_every_id_when_nothing_is_legal():
    """All attack values at the maximum: no legal id, the bot picks uniformly among all ids (Q13)."""
    env, params = idsjax.make("idsgame-maximal_attack-v11")
    cfg = env.config
    _, state = env.reset(jax.random.PRNGKey(0), params)
    state = state.replace(attack=jnp.full_like(state.attack, int(params.max_value)))
    probs = np.asarray(BOT_PROBS["attack_maximal"](state, cfg, params))
    np.testing.assert_allclose(probs, np.full(cfg.num_attack_ids, 1 / cfg.num_attack_ids), rtol=1e-6)


@pytest.mark.parametrize("row_width, num_rows", [(1, 8), (10, 8), (11, 22), (3, 5), (4, 1), (1, 1)])
def test_uniform_choice_is_the_kth_true_entry(row_width, num_rows):
    """`bots.uniform_choice` returns the k-th True entry of the mask (all entries when none is True),
    k being `uniform_index(key, count)`: checked against NumPy's `flatnonzero` on masks of every
    density, empty and full ones included."""
    from idsjax.bots import uniform_choice, uniform_index

    size = row_width * num_rows
    rng = np.random.default_rng(size)
    masks = np.concatenate([rng.random((96, size)) < p for p in (0.0, 0.03, 0.3, 0.8, 1.0)])
    keys = jax.random.split(jax.random.PRNGKey(size), len(masks))
    chosen = jax.vmap(lambda k, m: uniform_choice(k, m, row_width))(keys, jnp.asarray(masks))
    counts = np.where(masks.any(axis=1), masks.sum(axis=1), size)
    ks = np.asarray(jax.vmap(uniform_index)(keys, jnp.asarray(counts, jnp.int32)))
    for mask, k, got in zip(masks, ks, np.asarray(chosen), strict=True):
        candidates = np.flatnonzero(mask) if mask.any() else np.arange(size)
        assert got == candidates[k]


def test_inclusive_prefix_is_cumsum():
    from idsjax.bots import _inclusive_prefix

    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 8, 10, 11, 16, 17, 22, 33):
        x = rng.integers(0, 300, size=(2, n))
        np.testing.assert_array_equal(_inclusive_prefix(jnp.asarray(x)), np.cumsum(x, axis=-1))
