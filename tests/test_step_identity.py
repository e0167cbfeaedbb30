"""`jax.vmap(env.step)` returns, bit for bit, what gymnax's per-game step returned before `IdsGameEnv.step`
got its batching rule (issue 16): observations, state, rewards, flags and every info field, through
auto-resets (one round and several) and step-limit truncations, on every randomised version, bots on
either side and fixed layouts of each size; and for the other ways users call `vmap`.

`step_reference` is a frozen copy of `IdsGameEnv.step` as it was (commit 877948c): gymnax's step
for one game, which `vmap` then ran per game. It is the yardstick; do not "fix" it along with
`env.step`.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import pytest

import idsjax
from benchmarks._harness import sample_actions
from idsjax import batched
from idsjax.versions import Mode, env_id


def step_reference(env, key, state, action, params):
    """`IdsGameEnv.step` before issue 16, for one game."""
    key, key_reset = env.split_reset_key(key)
    _, state_st, reward, terminated, info = env.step_env(key, state, action, params)
    truncated = env.is_truncated(state_st, params)
    done = terminated | truncated
    state_re = env.initial_state(key_reset, params)
    state = jax.tree.map(lambda reset, stepped: jax.lax.select(done, reset, stepped), state_re, state_st)
    obs_st = env.get_obs(state_st, params)
    if env.reset_is_random:
        obs = env.get_obs(state, params)
    else:
        obs_re = env.get_obs(state_re, params)
        obs = jax.tree.map(lambda reset, stepped: jax.lax.select(done, reset, stepped), obs_re, obs_st)
    info = {**info, **env.step_info(state, terminated, truncated, obs_st, params)}
    return obs, state, reward, terminated, truncated, info


# Every version whose reset draws, a bot on each side (the bots' draws share the step's key), and
# fixed-layout versions of each size, whose resets are a constant (v13, v11: the select reset).
IDS = (
    [env_id(v, Mode.TWO_AGENT) for v in (12, 14, 18, 19, 21)]
    + [
        env_id(19, Mode.MINIMAL_DEFENSE),
        env_id(19, Mode.MAXIMAL_ATTACK),
        env_id(0, Mode.TWO_AGENT),
        env_id(13, Mode.TWO_AGENT),
        env_id(11, Mode.MINIMAL_DEFENSE),
        env_id(3, Mode.RANDOM_DEFENSE),
        env_id(7, Mode.RANDOM_ATTACK),
    ]
    + [  # the other randomised versions and a connected-layers one: the same code paths, in `-m slow`
        pytest.param(eid, marks=pytest.mark.slow)
        for eid in [env_id(v, Mode.TWO_AGENT) for v in (15, 16, 17, 20)] + [env_id(5, Mode.TWO_AGENT)]
    ]
)
BATCH, STEPS = 256, 30
HORIZON = 12  # every game not ended by its 12th transition is truncated: truncations within the run


def same_tree(a, b) -> jax.Array:
    if jax.tree.structure(a) != jax.tree.structure(b):
        return jnp.bool_(False)
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: x.dtype == y.dtype and jnp.array_equal(x, y), a, b))
    return jnp.all(jnp.stack([jnp.asarray(x) for x in leaves]))


def equal(a, b) -> bool:
    return bool(jax.device_get(same_tree(a, b)))


@pytest.mark.parametrize("eid", IDS)
def test_vmap_step_equals_the_reference(eid):
    env, params = idsjax.make(eid)
    params = params.replace(max_steps_in_episode=HORIZON)
    space = env.action_space(params)
    new = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    ref = jax.vmap(lambda k, s, a, p: step_reference(env, k, s, a, p), in_axes=(0, 0, 0, None))

    def run(key):
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, BATCH), params)

        def body(carry, k):
            s_new, s_ref = carry
            k_action, k_games = jax.random.split(k)
            action = sample_actions(space, k_action, BATCH)
            keys = jax.random.split(k_games, BATCH)
            out_new = new(keys, s_new, action, params)
            out_ref = ref(keys, s_ref, action, params)
            return (out_new[1], out_ref[1]), (same_tree(out_new, out_ref), out_ref[3].sum(), out_ref[4].sum())

        _, per_step = jax.lax.scan(body, (state, state), jax.random.split(key, STEPS))
        return per_step

    same, terminated, truncated = jax.jit(run)(jax.random.PRNGKey(7))
    assert bool(same.all()), f"first difference at step {int(jnp.argmin(same))}"
    assert int(terminated.sum()) > 0 and int(truncated.sum()) > 0
    # More games ended on some step than one reset round of the default chunk holds.
    assert int((terminated + truncated).max()) > int(batched.DEFAULT_CHUNK * BATCH)


def _inputs(eid, n=32, seed=1):
    env, params = idsjax.make(eid)

    @jax.jit
    def inputs(key):
        k_reset, k_steps, k_action, k_keys = jax.random.split(key, 4)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n), params)

        def play(state, k):  # a few steps, so that not every state is a reset one
            k_a, k_g = jax.random.split(k)
            action = sample_actions(env.action_space(params), k_a, n)
            return step_reference_batch(env, jax.random.split(k_g, n), state, action, params)[1], None

        state, _ = jax.lax.scan(play, state, jax.random.split(k_steps, 3))
        return jax.random.split(k_keys, n), state, sample_actions(env.action_space(params), k_action, n)

    return (env, params, *inputs(jax.random.PRNGKey(seed)))


def step_reference_batch(env, keys, state, action, params):
    return jax.vmap(lambda k, s, a: step_reference(env, k, s, a, params))(keys, state, action)


def _check_ways(eid, ways):
    """`transform(env.step)` against `transform(step_reference)` for each `(name, transform, args)`
    that `ways(env, params, keys, state, action)` lists."""
    env, params, keys, state, action = _inputs(eid)

    def ref(k, s, a, p):
        return step_reference(env, k, s, a, p)

    for name, transform, args in ways(env, params, keys, state, action):
        assert equal(jax.jit(transform(env.step))(*args), jax.jit(transform(ref))(*args)), name


def _first(tree):
    return jax.tree.map(lambda x: x[0], tree)


def test_unbatched_key_batched_params_nested_vmap():
    def ways(env, params, keys, state, action):
        n = keys.shape[0]
        inner = (0, 0, 0, None)

        def split(x):
            return x.reshape((4, n // 4) + x.shape[1:])

        stacked = jax.tree.map(lambda x: jnp.stack([x] * n), params)
        return [
            ("one key", lambda f: jax.vmap(f, in_axes=(None, 0, 0, None)), (keys[0], state, action, params)),
            ("batched params", jax.vmap, (keys, state, action, stacked)),
            (
                "nested",
                lambda f: jax.vmap(jax.vmap(f, in_axes=inner), in_axes=inner),
                (*jax.tree.map(split, (keys, state, action)), params),
            ),
        ]

    _check_ways("idsgame-v12", ways)  # a randomised reset, the smallest game


@pytest.mark.slow
def test_unbatched_state_or_action_typed_keys_one_game():
    def ways(env, params, keys, state, action):
        typed = jax.random.split(jax.random.key(4), keys.shape[0])
        return [
            ("one action", lambda f: jax.vmap(f, in_axes=(0, 0, None, None)), (keys, state, _first(action), params)),
            ("one state", lambda f: jax.vmap(f, in_axes=(0, None, 0, None)), (keys, _first(state), action, params)),
            ("typed keys", lambda f: jax.vmap(f, in_axes=(0, 0, 0, None)), (typed, state, action, params)),
            ("one game", lambda f: f, (*_first((keys, state, action)), params)),
        ]

    for eid in ("idsgame-v12", "idsgame-minimal_defense-v19"):
        _check_ways(eid, ways)


def test_vmap_takes_the_batched_path():
    """The batching rule fires for shared params (the reset rounds' loop is in the program), not for
    batched ones, and `batched.step` is the same program as `vmap(env.step)`."""
    env, params, keys, state, action = _inputs("idsgame-v3")
    shared = jax.make_jaxpr(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(keys, state, action, params)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * keys.shape[0]), params)
    per_game = jax.make_jaxpr(jax.vmap(env.step))(keys, state, action, stacked)
    assert "while" in str(shared) and "while" not in str(per_game)
    assert equal(
        jax.jit(partial(batched.step, env))(keys, state, action, params),
        jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))(keys, state, action, params),
    )
    # With params None, `step` uses the default ones: still shared, still the batched path.
    default = jax.make_jaxpr(jax.vmap(env.step))(keys, state, action)
    assert "while" in str(default)


def test_derivatives_are_the_per_game_steps():
    """`jax.grad` through `vmap(env.step)` (a `custom_vmap` has no reverse mode of its own; `step`'s
    `custom_jvp` gives it `step_game`'s, which `grad` linearises and transposes)."""
    env, params, keys, state, action = _inputs("idsgame-v19", n=8)

    def total(step):
        def f(score):
            p = params.replace(reference_defense_score=score)
            out = jax.vmap(step, in_axes=(0, 0, 0, None))(keys, state, action, p)
            return out[2]["defender"].sum() + out[5]["discount"].sum()

        return f

    def ref(k, s, a, p):
        return step_reference(env, k, s, a, p)

    x = jnp.asarray(params.reference_defense_score, jnp.float32)
    assert equal(jax.jit(jax.grad(total(env.step)))(x), jax.jit(jax.grad(total(ref)))(x))


def test_callers_take_the_batched_path():
    """The rollout (evaluation, trajectories, rendering) and the trainers' `step_envs` step their
    games with `vmap(env.step)`, so its batching rule serves them: the reset rounds' loop is in
    their programs."""
    from baselines.env_steps import reset_envs, step_envs
    from idsjax.rollout import rollout

    env, params = idsjax.make("idsgame-random_defense-v3")
    n = 8

    def policy(key, obs, state):
        return sample_actions(env.action_space(params), key, n)

    key = jax.random.PRNGKey(0)
    played = jax.make_jaxpr(lambda k: rollout(env, params, policy, k, n, num_steps=2))(key)
    carry = reset_envs(env, params, key, n)
    trained = jax.make_jaxpr(lambda c, k: step_envs(env, params, c, policy(k, None, None), k))(carry, key)
    assert "while" in str(played) and "while" in str(trained)
