"""API contract of every registered id (gymnax 1.0 / Jumanji conventions, spec §4.2, §9, Q4, Q5).

Per id, one jitted program (compiled once, `chex.assert_max_traces(n=1)`) resets a batch of games
built from the stacked parameters of different seeds and plays them for 106 steps with `jax.vmap`
over the batch and `lax.scan` over time. Roles inside the batch:

* `POKE`: the reset state is moved to `time = 101`, so the first call is the step-limit penalty
  transition (every mode, also the defender ids whose attacker is a bot);
* `ILLEGAL` (ids where the caller attacks): always attacks with `-1`, so 101 transitions pay `-1`,
  the 102nd (`max_steps_in_episode`, the default horizon) is the penalty transition (`truncated`, not
  `terminated`, -100 for both players), then a fresh episode starts;
* `RANDOM`: uniform legal actions from the legal-action masks, some games with short horizons
  (`HORIZONS`): no episode of any game has more than `max_steps_in_episode` transitions, and the
  step-limit transition is exactly the `max_steps_in_episode`-th.

Every step also checks gymnax's info fields: `discount` is 1 - terminated and `legal_action_mask` is
the learner's mask in the returned state (the fresh game's after an auto-reset).

At every step of every game the same program also replays the step with the gymnax internals
(`step_env` on the step key, `reset_env` on the reset key) to check the auto-reset and
`final_observation`, and with out-of-range attack ids (-1, -5, num_attack_ids, 10**6) and defense
ids (-1, -5, num_defense_actions, 10**6) to check they act exactly as an illegal attack / no defense.
"""

from __future__ import annotations

import difflib
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from idsjax.versions import VERSIONS, Mode, RewardFamily

IDS = idsjax.registered_envs()
BATCH = 8  # games per id: 1 POKE, 1 ILLEGAL, 6 RANDOM
STEPS = 106  # 101 transitions + the penalty transition + 4 steps of the next episode
POKE, ILLEGAL, RANDOM = 0, 1, 2
ROLES = np.array([POKE, ILLEGAL] + [RANDOM] * (BATCH - 2), np.int32)
DEFAULT_HORIZON = 102  # the reference's 101 moves, then its step-limit call
# params.max_steps_in_episode per game: the default, and random games with short horizons (1: every
# transition is the step-limit one), which play many truncated episodes in 106 steps.
HORIZONS = np.array([DEFAULT_HORIZON] * 4 + [1, 2, 5, 9], np.int32)
# The contract programs run 106 steps of 8 games: optimising them takes longer than running them.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


# Spec §10.1/§10.2 per version: N, A, the attacker observation shape the reference returns, and the
# number of global attack ids that `step` decodes (v18 advertises 10 local ids but decodes 15).
SPEC_SIZES = {
    0: (3, 10, (3, 11), 30),
    1: (3, 10, (3, 11), 30),
    2: (4, 10, (4, 11), 40),
    3: (8, 10, (8, 11), 80),
    4: (22, 10, (22, 11), 220),
    5: (22, 10, (22, 11), 220),
    6: (22, 10, (22, 11), 220),
    7: (8, 10, (8, 11), 80),
    8: (3, 10, (3, 11), 30),
    9: (4, 10, (4, 11), 40),
    10: (3, 10, (3, 11), 30),
    11: (2, 2, (2, 3), 4),
    12: (2, 2, (2, 3), 4),
    13: (2, 2, (2, 3), 4),
    14: (3, 4, (2, 5), 12),
    15: (4, 10, (2, 11), 40),
    16: (3, 4, (3, 5), 12),
    17: (3, 4, (3, 5), 12),
    18: (3, 4, (2, 10), 15),
    19: (4, 4, (4, 10), 20),
    20: (4, 4, (4, 10), 20),
    21: (4, 4, (4, 10), 20),
}


def _stack(trees):
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def _tree_equal(a, b) -> jax.Array:
    leaves = jax.tree.map(lambda x, y: jnp.array_equal(x, y), a, b)
    return jnp.all(jnp.stack(jax.tree.leaves(leaves)))


def _flat(tree) -> jax.Array:
    return jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(tree)])


def _sample(key, mask):
    """A uniform True index of `mask` (0 if none)."""
    logits = jnp.where(mask, 0.0, -jnp.inf)
    return jnp.where(mask.any(), jax.random.categorical(key, jnp.where(mask.any(), logits, 0.0)), 0).astype(jnp.int32)


def _sub_spaces(env, space):
    return dict(space.spaces) if env.learner == "both" else {"": space}


def _parts(env, tree):
    return dict(tree) if env.learner == "both" else {"": tree}


def _expected_defense(env, state, params, defense_action):
    """Spec §4.2 step 5 written out: raise one defense or detection value by one, capped at M."""
    a = env.config.attack_types
    n = env.config.num_nodes
    in_range = (defense_action >= 0) & (defense_action < env.num_defense_actions)
    node, kind = defense_action // (a + 1), defense_action % (a + 1)
    hot = (jnp.arange(n) == node) & in_range
    m = params.max_value
    det = state.detection + (hot & (kind == a) & (state.detection < m)).astype(state.detection.dtype)
    cell = hot[:, None] & (jnp.arange(a) == kind)[None, :]
    de = state.defense + (cell & (state.defense < m)).astype(state.defense.dtype)
    return de, det


@functools.cache
def _program(env_id: str):
    env, _ = idsjax.make(env_id)
    # chex counts traces per definition site, shared by the programs of all ids: restart the count.
    chex.clear_trace_counter()
    cfg = env.config
    learner = env.learner
    attacks = learner in ("attacker", "both")
    defends = learner in ("defender", "both")
    width = cfg.attack_id_width
    illegal_attack = (cfg.num_nodes - 1) * width  # the start node is never a legal target (§1.7)
    bad_attacks = jnp.array([-1, -5, cfg.num_attack_ids, 10**6], jnp.int32)
    bad_defenses = jnp.array([-1, -5, cfg.num_defense_actions, 10**6], jnp.int32)

    check_names: list[str] = []  # filled when the program is traced

    def joint(a, d):
        if learner == "both":
            return {"attacker": a, "defender": d}
        return a if learner == "attacker" else d

    @chex.assert_max_traces(n=1)
    def play_step(params, state, obs, key, role):
        k_att, k_def, k_step = jax.random.split(key, 3)
        attack_mask = env.attack_mask(state, params)
        defense_mask = env.defense_mask(state, params)
        a_legal, d_legal = _sample(k_att, attack_mask), _sample(k_def, defense_mask)
        a = jnp.where(role == ILLEGAL, -1, a_legal)
        action = joint(a, d_legal)
        # The chosen action first, then the same step with out-of-range ids, all on the same key.
        candidates = [action]
        if attacks:
            candidates += [joint(jnp.int32(illegal_attack), d_legal)] + [joint(b, d_legal) for b in bad_attacks]
        if defends:
            candidates += [joint(a, b) for b in bad_defenses]
        c_obs, c_state, c_reward, c_term, c_trunc, c_info = jax.vmap(env.step, in_axes=(None, None, 0, None))(
            k_step, state, _stack(candidates), params
        )
        pick = lambda tree, i: jax.tree.map(lambda x: x[i], tree)  # noqa: E731
        new_obs, new_state, reward, terminated, truncated, info = (
            pick(c_obs, 0),
            pick(c_state, 0),
            pick(c_reward, 0),
            c_term[0],
            c_trunc[0],
            pick(c_info, 0),
        )
        done = terminated | truncated
        in_time = state.time < params.max_steps_in_episode - 1  # this transition is a move
        # Trees are compared as one flat vector each: a few large reductions compile much faster
        # than one per leaf (all values are small integers or rewards, exact in float32).
        flat = jax.vmap(_flat)
        c_state_flat, c_obs_flat, c_reward_flat = flat(c_state), flat(c_obs), flat(c_reward)

        checks = {}
        space = env.observation_space(params)
        for name, sub in _sub_spaces(env, space).items():
            checks[f"obs{name} in space"] = sub.contains(_parts(env, new_obs)[name])
            checks[f"final obs{name} in space"] = sub.contains(_parts(env, info["final_observation"])[name])
        checks["finite"] = (
            jnp.all(jnp.isfinite(c_obs_flat[0]))
            & jnp.all(jnp.isfinite(c_reward_flat[0]))
            & (jnp.isfinite(info["attacker_reward"]) & jnp.isfinite(info["defender_reward"]))
        )
        act_space = env.action_space(params)
        if learner == "both":
            checks["actions in space"] = act_space.spaces["attacker"].contains(a_legal) & act_space.spaces[
                "defender"
            ].contains(d_legal)
        else:
            checks["actions in space"] = act_space.contains(a_legal if attacks else d_legal)

        # Auto-reset: gymnax resets with the second half of the step key.
        _, k_reset = jax.random.split(k_step)
        reset_obs, reset_state = env.reset_env(k_reset, params)
        checks["done steps return a fresh reset"] = ~done | (
            jnp.all(c_state_flat[0] == _flat(reset_state)) & jnp.all(c_obs_flat[0] == _flat(reset_obs))
        )
        checks["other steps return final_observation"] = done | jnp.all(
            _flat(info["final_observation"]) == c_obs_flat[0]
        )
        # The final observation shows the game after this step (spec §4.2, §6): the defender sees the
        # defense just applied; the attacker is on the data node after a hack, else where it was (a
        # detected attack does not move it). The penalty transition changes nothing (Q4).
        final = _parts(env, info["final_observation"])
        if defends:
            de, det = _expected_defense(env, state, params, info["defense_action"])
            final_def = final["defender"] if learner == "both" else final[""]
            checks["final defender observation"] = ~in_time | jnp.all(
                final_def == jnp.concatenate([de, det[:, None]], axis=1)
            )
        if learner != "defender" and not cfg.spec.local_view:
            final_att = final["attacker"] if learner == "both" else final[""]
            flag = final_att[:, cfg.attack_types]
            expected_pos = jnp.where(info["hacked"], 0, state.position)
            checks["final attacker observation position"] = (
                ~done | ~in_time | jnp.all(flag == (jnp.arange(cfg.num_nodes) == expected_pos).astype(flag.dtype))
            )
        checks["discount is 1 - terminated"] = (info["discount"] == 1.0 - terminated.astype(jnp.float32)) & (
            info["discount"].dtype == jnp.float32
        )
        checks["info legal_action_mask is the returned state's"] = _tree_equal(
            info["legal_action_mask"], env.legal_action_mask(new_state, params)
        )
        checks["terminated and truncated exclusive"] = ~(terminated & truncated)
        checks["terminated iff hacked or detected"] = terminated == (info["hacked"] | info["detected"])
        checks["truncated only past the step limit"] = truncated == ~in_time

        legal_taken = (role == RANDOM) & attack_mask.any() & in_time
        if attacks:
            if "attack_legal" in info:
                checks["a masked-legal attack is legal for step"] = ~legal_taken | info["attack_legal"]
            if cfg.reward_family in (RewardFamily.SPARSE, RewardFamily.DENSE):
                # Legal attacks pay -1 only when detected (spec §7.1, §7.2).
                checks["a masked-legal attack is not paid as illegal"] = ~legal_taken | (
                    (info["attacker_reward"] != -1.0) | info["detected"]
                )
            ref = pick(c_state, 1)
            checks["illegal attack: state unchanged but defense and time"] = ~in_time | (
                jnp.all(
                    _flat((ref.attack, ref.failed, ref.num_failed, ref.position))
                    == _flat((state.attack, state.failed, state.num_failed, state.position))
                )
                & (ref.time == state.time + 1)
                & ~ref.done
            )
            bad = slice(2, 2 + len(bad_attacks))
            same_state = jnp.all(c_state_flat[bad] == c_state_flat[1], axis=1)
            same_obs = jnp.all(c_obs_flat[bad] == c_obs_flat[1], axis=1)
            same_reward = jnp.all(c_reward_flat[bad] == c_reward_flat[1], axis=1)
            pays = (
                (c_info["attacker_reward"][bad] == -1.0)
                & (c_info["defender_reward"][bad] == 0.0)
                & ~c_info["detected"][bad]
                & ~c_term[bad]
                & ~c_trunc[bad]
            )
            de, det = jax.vmap(lambda d: _expected_defense(env, state, params, d))(c_info["defense_action"][bad])
            applied = jnp.all((c_state.defense[bad] == de).reshape(len(bad_attacks), -1), axis=1) & jnp.all(
                c_state.detection[bad] == det, axis=1
            )
            for i, b in enumerate(bad_attacks.tolist()):
                checks[f"attack {b} == illegal attack"] = same_state[i] & same_obs[i] & same_reward[i]
                checks[f"attack {b} pays -1, no detection"] = ~in_time | pays[i]
                checks[f"attack {b}: defense still applied"] = ~in_time | applied[i]
        if defends:
            first = len(candidates) - len(bad_defenses)
            bad = slice(first, first + len(bad_defenses))
            # The defender's view of the game after the step (before any auto-reset) is unchanged.
            c_final = c_info["final_observation"]
            c_final_def = (c_final["defender"] if learner == "both" else c_final)[bad]
            before = jnp.concatenate([state.defense, state.detection[:, None]], axis=1)
            unchanged = jnp.all((c_final_def == before).reshape(len(bad_defenses), -1), axis=1)
            same = jnp.all(c_state_flat[bad] == c_state_flat[first], axis=1)
            for i, b in enumerate(bad_defenses.tolist()):
                checks[f"defense {b} changes no defense"] = ~in_time | unchanged[i]
                checks[f"defense {b} == defense {bad_defenses[0]}"] = same[i]

        check_names[:] = list(checks)
        out = {
            "checks": jnp.stack([jnp.asarray(c, bool) for c in checks.values()]),
            "terminated": terminated,
            "truncated": truncated,
            "attacker_reward": info["attacker_reward"],
            "defender_reward": info["defender_reward"],
            "learner_reward": reward,
            "time_before": state.time,
            "time_after": new_state.time,
            "final_equals_previous_obs": jnp.all(_flat(info["final_observation"]) == _flat(obs)),
        }
        return new_obs, new_state, out

    def rollout(params, reset_keys, step_keys):
        obs, state = jax.vmap(env.reset)(reset_keys, params)
        poke = jnp.asarray(ROLES) == POKE
        state = state.replace(time=jnp.where(poke, DEFAULT_HORIZON - 1, state.time))

        def body(carry, keys):
            obs, state = carry
            obs, state, out = jax.vmap(play_step)(params, state, obs, keys, jnp.asarray(ROLES))
            return (obs, state), out

        first = (pick0(obs), env.legal_action_mask(pick0(state), pick0(params)))
        (obs, state), outs = jax.lax.scan(body, (obs, state), step_keys)
        masks = (env.attack_mask(pick0(state), pick0(params)), env.defense_mask(pick0(state), pick0(params)))
        return obs, outs, masks, first

    def pick0(tree):
        return jax.tree.map(lambda x: x[0], tree)

    traced_rollout = chex.assert_max_traces(rollout, n=1)
    return env, jax.jit(traced_rollout, compiler_options=FAST_COMPILE), check_names


def _params(env_id, seeds):
    params = _stack([idsjax.make(env_id, seed=s)[1] for s in seeds])
    assert (np.asarray(params.max_steps_in_episode) == DEFAULT_HORIZON).all()
    return params.replace(max_steps_in_episode=jnp.asarray(HORIZONS))


def _keys(seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return jax.random.split(k1, BATCH), jax.random.split(k2, STEPS * BATCH).reshape(STEPS, BATCH, -1)


# Every id's contract is checked (`make test-all`); the default suite checks the 45 ids of a version of
# every kind (small, the standard grid, linked rows, randomised full view, v13, local views,
# reconnaissance, random starts) and leaves the other 65 to `slow`, to stay within its 10 minutes.
_CONTRACT_BY_DEFAULT = {0, 3, 5, 12, 13, 14, 18, 19, 20}


def _version_of(env_id: str) -> int:
    return int(env_id.rsplit("-v", 1)[1])


@pytest.mark.parametrize(
    "env_id",
    [i if _version_of(i) in _CONTRACT_BY_DEFAULT else pytest.param(i, marks=pytest.mark.slow) for i in IDS],
)
def test_contract(env_id):
    env, run, check_names = _program(env_id)
    cfg = env.config
    learner = env.learner
    seeds_a, seeds_b = range(BATCH), range(BATCH, 2 * BATCH)
    params_a = _params(env_id, seeds_a)
    obs, outs, (attack_mask, defense_mask), (obs0, lmask) = jax.block_until_ready(run(params_a, *_keys(0)))
    # Same shapes, other seeds: the program must not be traced again (assert_max_traces raises).
    params_b = _params(env_id, seeds_b)
    obs_b, outs_b, _, _ = jax.block_until_ready(run(params_b, *_keys(1)))

    # Stacked parameters of different seeds are different instances wherever the layout is random.
    spec = cfg.spec
    layouts = {np.asarray(d).tobytes() for d in np.asarray(params_a.initial_defense)}
    if spec.vulnerabilities_per_node > 0:
        assert len(layouts) > 1, "different seeds gave the same construction layout"
    else:
        assert len(layouts) == 1, "a layout without vulnerabilities cannot depend on the seed"

    # Masks, spaces, dtypes and shapes as declared.
    assert attack_mask.shape == (cfg.num_attack_ids,) and attack_mask.dtype == bool
    assert defense_mask.shape == (cfg.num_defense_actions,) and defense_mask.dtype == bool
    params0 = idsjax.make(env_id, seed=0)[1]
    space = env.observation_space(params0)
    act_space = env.action_space(params0)
    if learner == "both":
        assert set(obs0) == {"attacker", "defender"} and set(lmask) == {"attacker", "defender"}
        assert lmask["attacker"].shape == (cfg.num_attack_ids,)
        assert lmask["defender"].shape == (cfg.num_defense_actions,)
        assert act_space.spaces["attacker"].n == cfg.num_attack_ids
        assert act_space.spaces["defender"].n == cfg.num_defense_actions
    else:
        n = cfg.num_attack_ids if learner == "attacker" else cfg.num_defense_actions
        assert lmask.shape == (n,) and act_space.n == n
    for name, sub in _sub_spaces(env, space).items():
        for o in (_parts(env, obs0)[name], _parts(env, obs)[name][0], _parts(env, obs_b)[name][0]):
            assert o.shape == sub.shape, (name, o.shape, sub.shape)
            assert o.dtype == sub.dtype, (name, o.dtype, sub.dtype)
    n_nodes, a, attacker_shape, n_attack_ids = SPEC_SIZES[cfg.version]
    assert (cfg.num_attack_ids, cfg.num_defense_actions) == (n_attack_ids, n_nodes * (a + 1))
    if learner != "defender":
        assert (space.spaces["attacker"] if learner == "both" else space).shape == attacker_shape
    if learner != "attacker":
        assert (space.spaces["defender"] if learner == "both" else space).shape == (n_nodes, a + 1)

    for outs in (outs, outs_b):
        _check_rollout(env, outs, check_names)


def _check_rollout(env, outs, check_names):
    learner = env.learner
    checks = np.asarray(outs["checks"])  # [step, game, check]
    assert checks.shape[-1] == len(check_names)
    for k, name in enumerate(check_names):
        bad = np.argwhere(~checks[..., k])
        assert bad.size == 0, f"{name} fails at (step, game) {bad[:5].tolist()}"

    term = np.asarray(outs["terminated"])
    trunc = np.asarray(outs["truncated"])
    r_att = np.asarray(outs["attacker_reward"])
    r_def = np.asarray(outs["defender_reward"])
    t_before = np.asarray(outs["time_before"])
    t_after = np.asarray(outs["time_after"])
    learner_reward = jax.tree.map(np.asarray, outs["learner_reward"])

    def learner_r(step, game):
        return jax.tree.map(lambda x: float(x[step, game]), learner_reward)

    # POKE: the very first call is the penalty transition, then a fresh episode (Q4).
    g = POKE
    assert trunc[0, g] and not term[0, g]
    assert r_att[0, g] == -100.0 and r_def[0, g] == -100.0
    expected = {"attacker": -100.0, "defender": -100.0} if learner == "both" else -100.0
    assert learner_r(0, g) == expected
    assert bool(np.asarray(outs["final_equals_previous_obs"])[0, g]), "the penalty transition changed the game"
    assert t_after[0, g] == 0

    if learner in ("attacker", "both"):
        # ILLEGAL: 101 transitions paying -1, the 102nd the penalty, then a fresh episode.
        g = ILLEGAL
        assert not term[:, g].any()
        assert not trunc[:101, g].any() and trunc[101, g] and not trunc[102:, g].any()
        np.testing.assert_array_equal(r_att[:101, g], -1.0)
        np.testing.assert_array_equal(r_def[:101, g], 0.0)
        assert r_att[101, g] == -100.0 and r_def[101, g] == -100.0
        np.testing.assert_array_equal(t_before[:102, g], np.arange(102))
        assert t_after[101, g] == 0
        np.testing.assert_array_equal(r_att[102:, g], -1.0)
        np.testing.assert_array_equal(t_before[102:, g], np.arange(STEPS - 102))

    # Every game: the clock runs 0, 1, … and restarts after each done step.
    done = term | trunc
    np.testing.assert_array_equal(t_after, np.where(done, 0, t_before + 1))
    np.testing.assert_array_equal(t_before[1:], t_after[:-1])

    # The horizon: `time` counts an episode's moves, so `t_before + 1` numbers its transitions. None
    # is past `max_steps_in_episode`, and the step-limit (truncated) one is exactly that number.
    number = t_before + 1
    assert (number <= HORIZONS).all(), "an episode ran past max_steps_in_episode"
    np.testing.assert_array_equal(trunc, number == HORIZONS)
    assert trunc[:, HORIZONS == 1].all(), "with horizon 1 every transition is the step-limit one"


# -- registry ----------------------------------------------------------------------------------


def test_registry_has_exactly_the_110_reference_ids():
    ids = idsjax.registered_envs()
    assert len(ids) == 110 and len(set(ids)) == 110
    expected = {f"idsgame-v{v}" for v in range(22)} | {
        f"idsgame-{m}-v{v}"
        for m in ("random_defense", "minimal_defense", "random_attack", "maximal_attack")
        for v in range(22)
    }
    assert set(ids) == expected
    assert len(VERSIONS) == 22 and len(Mode) == 5


@pytest.mark.parametrize(
    "wrong, close",
    [
        ("idsgame-v22", "idsgame-v2"),
        ("idsgame-random_defence-v3", "idsgame-random_defense-v3"),
        ("idsgame-maximal-attack-v4", "idsgame-maximal_attack-v4"),
        ("IdsGame-v1", None),
        ("", None),
    ],
)
def test_unknown_id_raises_value_error_naming_the_closest(wrong, close):
    with pytest.raises(ValueError) as excinfo:
        idsjax.make(wrong)
    message = str(excinfo.value)
    assert repr(wrong) in message or wrong in message
    if close is not None:
        assert close in message, message
    for c in difflib.get_close_matches(wrong, IDS, n=1, cutoff=0.8):
        assert c in message, message


@pytest.mark.parametrize("seed", [1.5, "0", None, True, [0], np.float32(2.0)])
def test_bad_seed_types_raise(seed):
    with pytest.raises((TypeError, ValueError)):
        idsjax.make("idsgame-v0", seed=seed)


def test_seed_is_the_construction_layout():
    env, p1 = idsjax.make("idsgame-v3", seed=7)
    _, p2 = idsjax.make("idsgame-v3", seed=7)
    assert _tree_equal(p1, p2)
    assert env is idsjax.make("idsgame-v3", seed=8)[0] or env == idsjax.make("idsgame-v3", seed=8)[0]
