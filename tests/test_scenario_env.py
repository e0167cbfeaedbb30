"""The environment over scenario arrays (`idsjax.make_scenario`).

Lockstep: the scenario of built-in version k in mode m plays exactly like `idsgame-<m>-vk` from
`idsjax.make`: the same keys give the same construction-time layout, the same resets and, step after
step over several auto-reset episodes of random (mostly legal) actions, the same observations, states
(every field), rewards, done flags, legal masks and info. One jitted program per version runs its five
modes. Then: a heterogeneous batch (different graphs in one `vmap`) plays as each game alone, and bad
input is refused with a sentence.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax import GameConfig, IdsGameEnv, RewardFamily
from idsjax.env import ATTACKER, DEFENDER
from idsjax.scenario import builtin_scenario, version_scenario
from idsjax.scenario.generator import Family, generate
from idsjax.versions import VERSIONS, Mode, env_id, version_spec

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "scenarios" / "examples"
MODES = tuple(Mode)
STEPS, HORIZON = 64, 10  # a short horizon, so the rollouts see truncations and several episodes

# The default suite: every mode once, on fixed layouts (v3 sparse; v6 with lateral links and dense
# rewards), a randomised full view with visibility draws (v12), a local view with reconnaissance and
# random starts (v18), reconnaissance with dense-v3 rewards and the scouting bot (v20). Each pair costs
# 5-15 s of compiling on a loaded CPU; all 110 pairs run under `-m slow`.
DEFAULT_CASES = (
    (3, Mode.TWO_AGENT),
    (6, Mode.MINIMAL_DEFENSE),
    (12, Mode.RANDOM_DEFENSE),
    (18, Mode.RANDOM_ATTACK),
    (20, Mode.MAXIMAL_ATTACK),
)


def _sample(key, mask, num_actions):
    """A uniform legal id, or one time in eight a uniform id in `-1 … num_actions + 1` (illegal and
    out-of-range ids must agree too)."""
    k_legal, k_any, k_which = jax.random.split(key, 3)
    legal = jax.random.categorical(k_legal, jnp.where(mask, 0.0, -jnp.inf))
    legal = jnp.where(mask.any(), legal, 0)
    anything = jax.random.randint(k_any, (), -1, num_actions + 2)
    return jnp.where(jax.random.uniform(k_which) < 0.125, anything, legal).astype(jnp.int32)


def _actions(key, env, mask):
    """Random ids over the action space, whose size is the mask's (v18's registered environment
    advertises fewer attack ids in `num_attack_actions` than `step` decodes)."""
    if env.learner == "both":
        k_a, k_d = jax.random.split(key)
        return {
            "attacker": _sample(k_a, mask["attacker"], mask["attacker"].shape[-1]),
            "defender": _sample(k_d, mask["defender"], mask["defender"].shape[-1]),
        }
    return _sample(key, mask, mask.shape[-1])


def _rollout(env, params, key):
    """A reset and `STEPS` steps of one game (auto-resets included) with random actions."""
    k_reset, k_steps = jax.random.split(key)
    obs, state = env.reset(k_reset, params)
    mask = env.legal_action_mask(state, params)

    def body(carry, k):
        state, mask = carry
        k_act, k_step = jax.random.split(k)
        action = _actions(k_act, env, mask)
        out = env.step(k_step, state, action, params)
        return (out[1], out[5]["legal_action_mask"]), (action, out)

    _, steps = jax.lax.scan(body, (state, mask), jax.random.split(k_steps, STEPS))
    return (obs, state, mask), steps


# One program per environment and parameter shapes: the heterogeneous-batch test below plays its
# games alone with the program the v3 lockstep compiled. The default suite compiles without LLVM's
# optimisations (a quarter less compile time, the same values; both sides of every comparison are
# compiled alike); the slow lockstep compiles as users do.
FAST_COMPILE = {"xla_backend_optimization_level": 0}
_rollout_jit = jax.jit(_rollout, static_argnums=0, compiler_options=FAST_COMPILE)
_rollout_jit_optimised = jax.jit(_rollout, static_argnums=0)


def _pairs(version, modes, seed):
    pairs = []
    for mode in modes:
        genv, gparams = idsjax.make(env_id(version, mode), seed=seed)
        senv, sparams = idsjax.make_scenario(builtin_scenario(version, mode), mode=mode, seed=seed)
        gparams = gparams.replace(max_steps_in_episode=HORIZON)
        sparams = sparams.replace(max_steps_in_episode=jnp.int32(HORIZON))
        pairs.append((genv, gparams, senv, sparams))
    return pairs


def _check(version, modes, seed=0, rollout=_rollout_jit):
    """Lockstep of version `version` in `modes`: each environment's rollout is one jitted program."""
    pairs = _pairs(version, modes, seed)
    for genv, gparams, senv, sparams in pairs:
        for name in ("initial_attack", "initial_defense", "initial_detection", "initial_recon"):
            np.testing.assert_array_equal(getattr(gparams, name), getattr(sparams, name), err_msg=name)
        np.testing.assert_array_equal(gparams.reference_defense_score, sparams.reference_defense_score)
        assert senv.num_actions == genv.num_actions and senv.learner == genv.learner

    key = jax.random.PRNGKey(100 + version)
    results = [(rollout(g, gp, key), rollout(e, sp, key)) for g, gp, e, sp in pairs]
    for mode, (grid, scen) in zip(modes, results):
        label = f"v{version} mode {mode.value!r}"
        assert jax.tree.structure(grid) == jax.tree.structure(scen), label
        paths = jax.tree_util.tree_flatten_with_path(grid)[0]
        for (path, g), s in zip(paths, jax.tree.leaves(scen)):
            assert g.shape == s.shape and g.dtype == s.dtype, (label, jax.tree_util.keystr(path))
            np.testing.assert_array_equal(g, s, err_msg=f"{label} {jax.tree_util.keystr(path)}")
        done = np.asarray(grid[1][1][3] | grid[1][1][4])
        assert done.sum() >= 4, f"{label}: too few episodes ended ({done.sum()})"


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: f"v{c[0]}-{c[1].value or 'two_agent'}")
def test_builtin_scenarios_play_like_the_registered_ids(case):
    version, mode = case
    _check(version, (mode,))


@pytest.mark.slow
def test_dense_v1_v2_rewards_play_like_the_grid_code():
    """The reward family no version registers (both dense flags, spec §7.5): v7's grid with it in
    `IdsGameEnv` against its scenario with `rewards: dense_v1_v2`."""
    mode = Mode.RANDOM_DEFENSE
    spec = dataclasses.replace(version_spec(7, mode), reward=RewardFamily.DENSE_V1_V2)
    genv = IdsGameEnv(GameConfig(version=7, mode=mode, spec=spec))
    gparams = genv.make_params(jax.random.PRNGKey(0)).replace(max_steps_in_episode=HORIZON)
    senv, sparams = idsjax.make_scenario({**version_scenario(7, mode), "rewards": "dense_v1_v2"}, mode=mode)
    sparams = sparams.replace(max_steps_in_episode=jnp.int32(HORIZON))
    key = jax.random.PRNGKey(11)
    grid, scen = _rollout_jit_optimised(genv, gparams, key), _rollout_jit_optimised(senv, sparams, key)
    for g, s in zip(jax.tree.leaves(grid), jax.tree.leaves(scen)):
        np.testing.assert_array_equal(g, s)
    rewards = np.asarray(grid[1][1][2])
    assert (np.abs(rewards) == 100).any() or (rewards != 0).any()


@pytest.mark.slow
@pytest.mark.parametrize("version", range(len(VERSIONS)))
def test_builtin_scenarios_play_like_the_registered_ids_all_modes(version):
    _check(version, MODES, seed=version, rollout=_rollout_jit_optimised)


def test_a_heterogeneous_batch_plays_each_game_as_it_plays_alone():
    """Three networks (v3's grid, office_dmz, chain_with_shortcut: 8, 8 and 7 nodes, 10, 4 and 2 attack
    types, fixed and randomised values, partial and full views, horizons 12, 6, 9) in v3's shape,
    stacked: `vmap(env.step)` over the stacked params gives every game exactly what it gets alone,
    and padded nodes and types are never legal, never change and never show."""
    specs = [builtin_scenario(3), EXAMPLES / "office_dmz.yaml", EXAMPLES / "chain_with_shortcut.yaml"]
    env, params = idsjax.make_scenario_batch(specs, mode="", seed=[0, 1, 2])
    assert env == idsjax.make_scenario(builtin_scenario(3))[0]  # v3's own shape: 8 nodes, 10 types
    params = params.replace(max_steps_in_episode=jnp.array([12, 6, 9], jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    together = jax.jit(jax.vmap(lambda p, k: _rollout(env, p, k)), compiler_options=FAST_COMPILE)(params, keys)
    # Sliced as NumPy arrays: indexing JAX arrays compiles a program per shape.
    together, params, keys = jax.device_get((together, params, keys))
    for i in range(3):
        alone = _rollout_jit(env, jax.tree.map(lambda x: x[i], params), keys[i])
        for g, s in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
            np.testing.assert_array_equal(g[i], s, err_msg=f"game {i}")

    # Every output has the game axis first, then (for the steps) the step axis.
    (obs0, state0, _), (action, (obs, state, reward, terminated, truncated, info)) = together
    real_nodes = np.array([8, 8, 7])
    real_types = np.array([10, 4, 2])
    for i in range(3):
        node_pad = np.arange(8) >= real_nodes[i]
        type_pad = np.arange(10) >= real_types[i]
        for st in (jax.tree.map(lambda x: x[i], state0), jax.tree.map(lambda x: x[i], state)):
            assert (
                not np.asarray(st.attack)[..., node_pad, :].any() and not np.asarray(st.defense)[..., node_pad, :].any()
            )
            assert not np.asarray(st.attack)[..., type_pad].any() and not np.asarray(st.defense)[..., type_pad].any()
            assert not np.asarray(st.detection)[..., node_pad].any()
        masks = info["legal_action_mask"]
        attack_mask = np.asarray(masks["attacker"][i]).reshape(-1, 8, 10)
        defense_mask = np.asarray(masks["defender"][i]).reshape(-1, 8, 11)
        assert not attack_mask[:, node_pad].any() and not attack_mask[:, :, type_pad].any()
        assert not defense_mask[:, node_pad].any() and not defense_mask[:, :, :10][:, :, type_pad].any()
        assert not np.asarray(obs["attacker"][i])[:, node_pad].any()
        assert not np.asarray(obs["defender"][i])[:, node_pad].any()
        # Ids on padded nodes or types, and ids out of range, are illegal attacks: -1, nothing moves.
        a = np.asarray(action["attacker"][i])
        padded = (a < 0) | (a >= 80) | node_pad[np.clip(a // 10, 0, 7)] | type_pad[a % 10]
        live = ~np.asarray(info["timed_out"][i])
        assert (padded & live).any() or i == 0, "the rollout should try padded ids"
        assert not np.asarray(info["attack_legal"][i])[padded].any()
        np.testing.assert_array_equal(np.asarray(reward["attacker"][i])[padded & live], -1.0)
    assert np.asarray(truncated).any(axis=1).all() and np.asarray(terminated).any()


def test_a_batch_that_agrees_plays_each_game_as_it_plays_alone():
    """v3 with three seeds (three construction-time layouts), params stacked: no game randomises and
    all play one reward family, so under `vmap` the reset and the rewards take the batch-level
    branches (`batch_queries.batch_any`, `batch_queries.batch_uniform`: no layout draw, one family); every game still
    gets exactly what it gets alone."""
    specs = [builtin_scenario(3)] * 3
    env, params = idsjax.make_scenario_batch(specs, mode="", seed=[0, 1, 2])
    params = params.replace(max_steps_in_episode=jnp.array([12, 6, 9], jnp.int32))
    keys = jax.random.split(jax.random.PRNGKey(11), 3)
    together = jax.jit(jax.vmap(lambda p, k: _rollout(env, p, k)), compiler_options=FAST_COMPILE)(params, keys)
    together, params, keys = jax.device_get((together, params, keys))
    assert not np.array_equal(params.initial_defense[0], params.initial_defense[1])
    for i in range(3):
        alone = _rollout_jit(env, jax.tree.map(lambda x: x[i], params), keys[i])
        for g, s in zip(jax.tree.leaves(together), jax.tree.leaves(alone)):
            np.testing.assert_array_equal(g[i], s, err_msg=f"game {i}")
    (_, _, _), (_, (_, _, _, terminated, truncated, _)) = together
    assert np.asarray(truncated).any(axis=1).all()


@pytest.mark.parametrize("version", [12, 19])
def test_a_batch_with_shared_params_plays_each_game_as_it_plays_alone(version):
    """`vmap(env.step)` with one network for the batch, on versions whose resets draw (v12: fresh
    layouts, a quarter of the games end per step; v19: fresh layouts and random starts): only the
    games that ended draw their fresh games (`ScenarioEnv.auto_reset`'s batching rule), and every
    game gets exactly what it gets stepped alone."""
    env, params = idsjax.make_scenario(builtin_scenario(version))
    batch, steps = 16, 12
    keys = jax.random.split(jax.random.PRNGKey(version), batch)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    step_batch = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    step_one = jax.jit(env.step)
    alone = [jax.tree.map(lambda x, i=i: x[i], state) for i in range(batch)]
    key = jax.random.PRNGKey(1)
    ended = 0
    for _ in range(steps):
        key, k_a, k_d, k_s = jax.random.split(key, 4)
        action = {
            ATTACKER: jax.random.randint(k_a, (batch,), 0, env.num_attack_actions),
            DEFENDER: jax.random.randint(k_d, (batch,), 0, env.num_defense_actions),
        }
        step_keys = jax.random.split(k_s, batch)
        together = jax.device_get(step_batch(step_keys, state, action, params))
        state = together[1]
        for i in range(batch):
            one = step_one(step_keys[i], alone[i], jax.tree.map(lambda x, i=i: x[i], action), params)
            for g, s in zip(jax.tree.leaves(together), jax.tree.leaves(one)):
                np.testing.assert_array_equal(g[i], s, err_msg=f"game {i}")
            alone[i] = one[1]
        ended += int(np.sum(together[3] | together[4]))
    assert ended >= 4, f"too few episodes ended ({ended})"


def test_bad_input_is_refused_with_a_sentence():
    office = EXAMPLES / "office_dmz.yaml"
    with pytest.raises(ValueError, match=r"mode 'random_defense' needs the scripted defender 'random_defense'.*"):
        idsjax.make_scenario(office, mode="random_defense")
    with pytest.raises(ValueError, match=r"unknown mode 'bogus': expected one of"):
        idsjax.make_scenario(office, mode="bogus")
    with pytest.raises(ValueError, match=r"field `nodes`: expected at most 5 nodes \(the compiled maximum\), got 8\."):
        idsjax.make_scenario(office, max_nodes=5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        idsjax.make_scenario(office, seed=1.5)
    with pytest.raises(ValueError, match=r"expected at most 7 nodes \(max_nodes\), got 8\."):
        idsjax.make_scenario_batch([office, EXAMPLES / "chain_with_shortcut.yaml"], max_nodes=7)
    with pytest.raises(ValueError, match=r"expected the reconnaissance and view switches"):
        idsjax.make_scenario_batch([office, EXAMPLES / "grid_3x4_recon.yaml"])
    with pytest.raises(ValueError, match="mode .random_defense. needs"):
        idsjax.make_scenario_batch([builtin_scenario(3), office], mode="random_defense")
    with pytest.raises(ValueError, match="no default network"):
        idsjax.ScenarioEnv(idsjax.scenario.ScenarioShape(4, 2)).default_params  # noqa: B018


GENERATED = Family(max_layers=2, max_width=2)


def _network_keys(keys):
    """The network key of each reset key, as documented: the first half of the key."""
    return jax.vmap(lambda k: jax.random.split(k)[0])(keys)


def test_a_generated_environment_draws_its_network_at_reset():
    """`make_generated`: a reset's key draws the network (its first half) and the game on it; the
    state holds the network's params, the masks and observations cover its nodes only."""
    env, params = idsjax.make_generated(GENERATED, mode="random_defense")
    keys = jax.random.split(jax.random.PRNGKey(3), 6)

    def run(keys):
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
        mask = jax.vmap(env.legal_action_mask, in_axes=(0, None))(state, params)
        return obs, state, mask, jax.vmap(lambda k: generate(k, GENERATED))(_network_keys(keys))

    obs, state, mask, drawn = jax.device_get(jax.jit(run, compiler_options=FAST_COMPILE)(keys))
    for got, want in zip(jax.tree.leaves(state.network.scenario), jax.tree.leaves(drawn)):
        np.testing.assert_array_equal(got, want)
    assert len({bytes(r) for r in drawn.reach}) > 1, "different keys should draw different networks"
    assert obs.shape == (6, GENERATED.max_nodes, GENERATED.attack_types + 1)
    node_mask = drawn.node_mask
    assert not (mask.reshape(node_mask.shape + (-1,)) & ~node_mask[..., None]).any()
    assert not (obs[:, :, :-1] != 0)[~node_mask].any() and (state.position == drawn.start_node).all()
    assert env.observation_space(params).contains(jnp.asarray(obs))


@pytest.mark.slow
def test_a_generated_environment_draws_a_fresh_network_at_every_reset():
    """The network stays in the state for an episode and every auto-reset draws a new one."""
    env, params = idsjax.make_generated(GENERATED, mode="random_defense")
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    (_, state0, _), (_, (obs, state, reward, terminated, truncated, info)) = jax.device_get(
        jax.jit(jax.vmap(lambda k: _rollout(env, params, k)))(keys)
    )
    reach = np.concatenate([state0.network.scenario.reach[:, None], state.network.scenario.reach], 1)
    changed = (reach[:, 1:] != reach[:, :-1]).any(axis=(2, 3))
    done = terminated | truncated
    assert not changed[~done].any(), "the network changed within an episode"
    assert done.sum() >= 6 and changed[done].mean() > 0.5, "resets should draw new networks"
    node_mask = state.network.scenario.node_mask
    mask = info["legal_action_mask"].reshape(node_mask.shape + (GENERATED.attack_types,))
    assert not (mask & ~node_mask[..., None]).any()


def test_generated_default_params_are_read_while_tracing():
    """`idsjax.rollout` (and through it every evaluation) reads the horizon of `env.default_params`
    inside the jitted program: a generated environment's must be a number known then, not an array."""
    from idsjax.rollout import episode_horizon

    env, _ = idsjax.make_generated(None, mode="random_defense")
    horizon = jax.jit(lambda: jnp.int32(episode_horizon(env.default_params)))()
    assert int(horizon) == env.family.max_steps


def test_a_pool_of_generated_networks_starts_every_game_on_one_of_them():
    """`GeneratedEnv.with_pool`: each reset (and auto-reset) picks one of the pool's networks, each as a
    reset would have drawn it, and every network of the pool is played."""
    env, _ = idsjax.make_generated(None, mode="random_defense")
    params = env.with_pool(jax.random.PRNGKey(3), 4)
    pool = [jax.tree.map(lambda x, i=i: x[i], params.pool.scenario) for i in range(4)]
    keys = jax.random.split(jax.random.PRNGKey(0), 256)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    seen = set()
    for g in range(256):
        drawn = jax.tree.map(lambda x, g=g: x[g], state.network.scenario)
        same = [all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(drawn), jax.tree.leaves(p))) for p in pool]
        assert sum(same) >= 1, g
        seen.add(same.index(True))
    assert seen == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="at least one network"):
        env.with_pool(jax.random.PRNGKey(3), 0)
