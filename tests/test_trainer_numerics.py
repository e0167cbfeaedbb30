"""Numeric tests of the trainers against hand computations: tabular Q's merged simultaneous updates
(and convergence at 1, 16, 64 and 256 games), masked bootstrap targets of DQN and tabular Q, GAE and
returns-to-go, the truncation path of a real game, the budget planning, and the refusals of settings
that cannot train."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from probe_envs import LoopEnv, ProbeEnv

import idsjax
from baselines import cli, dqn, env_steps, networks, policy_gradient, reinforce, tabular_q
from baselines.trainer import budget_note, plan_updates

# --- tabular Q ------------------------------------------------------------------------------------


def test_merge_updates_by_hand():
    q = jnp.zeros((2, 2), jnp.float32).at[1, 1].set(3.0)
    rows = jnp.array([0, 0, 0, 1, 1])
    ids = jnp.array([1, 1, 1, 0, 1])
    td = jnp.array([1.0, 2.0, 3.0, 4.0, -1.0])
    out = np.asarray(tabular_q.merge_updates(q, rows, ids, td, 0.5))
    # cell (0, 1): three updates, mean TD 2, step 1 - 0.5^3 = 0.875; (1, 0): one, 0.5 x 4; (1, 1): 3 - 0.5
    np.testing.assert_allclose(out, [[0.0, 1.75], [2.0, 2.5]], rtol=1e-6)
    # the order of the updates does not matter
    perm = jnp.array([4, 2, 0, 3, 1])
    out2 = np.asarray(tabular_q.merge_updates(q, rows[perm], ids[perm], td[perm], 0.5))
    np.testing.assert_array_equal(out, out2)


def _tabular_q_values(env, argv):
    config = cli.parse_config(tabular_q, argv + ["--chunks", "1"])
    trainer = tabular_q.make_train(config, env, env.default_params)
    runner, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    obs, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    index = tabular_q.make_hash(int(np.prod(obs.shape)), config["table_size_log2"])
    return runner, lambda o: np.asarray(runner.q[index(o[None])][0])


@pytest.mark.parametrize("num_envs", [1, 16, 64, 256])
def test_tabular_q_converges_at_any_number_of_games(num_envs):
    """The bandit: id 1 hacks (+1), id 0 fails (-1), one step. With summed updates 64 games on the
    one state step by lr x 64 and diverge (|Q| ~ 1e16); merged, every setting finds Q = [-1, +1]."""
    env = ProbeEnv(1)
    steps = max(2048, 8 * num_envs)
    _, q_of = _tabular_q_values(
        env,
        [
            "--total-timesteps",
            str(steps),
            "--num-envs",
            str(num_envs),
            "--num-steps",
            "4",
            "--table-size-log2",
            "6",
            "--lr",
            "0.1",
            "--no-mask-illegal",
        ],
    )
    obs, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    np.testing.assert_allclose(q_of(obs), [-1.0, 1.0], atol=0.02)


def test_tabular_q_bootstraps_over_legal_ids_only():
    """One state, id 0 pays -1 forever, id 1 illegal and never trained (Q = 0): with gamma 0.5 the
    masked target converges to -1 / (1 - 0.5) = -2; a max over all ids would stop at -1."""
    env = LoopEnv()
    _, q_of = _tabular_q_values(
        env,
        [
            "--total-timesteps",
            "4096",
            "--num-envs",
            "4",
            "--num-steps",
            "4",
            "--table-size-log2",
            "4",
            "--lr",
            "0.2",
            "--gamma",
            "0.5",
            "--mask-illegal",
        ],
    )
    obs, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    q = q_of(obs)
    assert q[1] == 0.0  # never taken, never trained
    np.testing.assert_allclose(q[0], -2.0, atol=1e-3)


@pytest.mark.parametrize("double_q", [True, False])
def test_dqn_bootstraps_over_legal_ids_only(double_q):
    env = LoopEnv()
    argv = [
        "--total-timesteps",
        "2048",
        "--num-envs",
        "4",
        "--num-steps",
        "4",
        "--learning-starts",
        "64",
        "--buffer-size",
        "512",
        "--batch-size",
        "32",
        "--hidden",
        "16",
        "--layers",
        "1",
        "--gamma",
        "0.5",
        "--reward-scale",
        "1",
        "--lr",
        "1e-2",
        "--gradient-steps",
        "4",
        "--target-update-every",
        "2",
        "--mask-illegal",
        "--chunks",
        "1",
        "--double-q" if double_q else "--no-double-q",
    ]
    config = cli.parse_config(dqn, argv)
    trainer = dqn.make_train(config, env, env.default_params)
    runner, _ = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    obs, _ = env.reset(jax.random.PRNGKey(0), env.default_params)
    q = np.asarray(runner.train_state.apply_fn(runner.train_state.params, networks.preprocess(obs[None])))[0]
    # The observation is all zeros, so id 1's value is its output bias: never trained, it stays 0 and
    # a max over all ids would give a target of -1 + 0.5 x 0 = -1.
    assert q[1] > q[0] + 1
    np.testing.assert_allclose(q[0], -2.0, atol=0.1)


def test_masked_max_and_argmax():
    values = jnp.array([[1.0, 5.0, 2.0], [-3.0, -1.0, 9.0]])
    mask = jnp.array([[True, False, True], [True, True, False]])
    np.testing.assert_array_equal(networks.masked_max(values, mask), [2.0, -1.0])
    np.testing.assert_array_equal(networks.masked_argmax(values, mask), [2, 1])
    np.testing.assert_array_equal(networks.masked_max(values, None), [5.0, 9.0])
    assert float(networks.masked_max(values[:1], jnp.zeros((1, 3), bool))[0]) == 0.0  # no legal id: finite


# --- GAE, returns, truncation ----------------------------------------------------------------------


def test_gae_by_hand():
    gamma, lam = 0.9, 0.8
    rewards = jnp.array([[1.0], [0.0], [2.0]])
    dones = jnp.array([[0.0], [1.0], [0.0]])
    values = jnp.array([[0.5], [0.2], [0.1]])
    last = jnp.array([0.3])
    adv, target = policy_gradient.gae(rewards, dones, values, last, gamma, lam)
    d2 = 2.0 + 0.9 * 0.3 - 0.1  # bootstraps from the value after the rollout
    d1 = 0.0 - 0.2  # the game ends here: no bootstrap
    d0 = 1.0 + 0.9 * 0.2 - 0.5
    a2, a1 = d2, d1  # nothing flows back across the end
    a0 = d0 + gamma * lam * a1
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(target)[:, 0], [a0 + 0.5, a1 + 0.2, a2 + 0.1], rtol=1e-6)
    # lam = 1: plain discounted returns up to the end, then bootstrapped
    adv1, target1 = policy_gradient.gae(rewards, dones, values, last, gamma, 1.0)
    np.testing.assert_allclose(np.asarray(target1)[:, 0], [1.0 + 0.9 * 0.0, 0.0, 2.0 + 0.9 * 0.3], rtol=1e-6)


def test_returns_to_go_by_hand():
    rewards = jnp.array([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0]])
    dones = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    ret, complete = reinforce.returns_to_go(rewards, dones, 0.5)
    np.testing.assert_allclose(np.asarray(ret)[:, 0], [1.0 + 0.5 * 2.0, 2.0, 4.0])
    np.testing.assert_array_equal(np.asarray(complete)[:, 0], [True, True, False])
    # the second game never ends in the rollout: no return is complete
    assert not np.asarray(complete)[:, 1].any()


def test_truncation_is_the_last_transition_and_is_not_bootstrapped():
    """A real game that never ends on its own (the attacker plays an illegal id every step): the
    step-limit transition is number `max_steps_in_episode`, it is `done`, it pays -100, and GAE puts
    no value of the next (fresh) game into its target."""
    env, params = idsjax.make("idsgame-random_defense-v0")
    horizon = int(params.max_steps_in_episode)
    carry = env_steps.reset_envs(env, params, jax.random.PRNGKey(0), 1)
    # find an id that is illegal at the start and stays so (nothing the defender does makes it legal)
    mask = np.asarray(env.legal_action_mask(jax.tree.map(lambda x: x[0], carry.state), params))
    illegal = jnp.array([int(np.flatnonzero(~mask)[0])])

    def body(c, k):
        c, step = env_steps.step_envs(env, params, c, illegal, k)
        return c, step

    _, steps = jax.lax.scan(body, carry, jax.random.split(jax.random.PRNGKey(1), horizon))
    done = np.asarray(steps.done)[:, 0]
    assert not done[:-1].any() and done[-1], "the game ends exactly at the step limit"
    assert float(steps.reward[-1, 0]) <= -100.0
    values = jnp.full((horizon, 1), 7.0)
    adv, target = policy_gradient.gae(
        steps.reward, steps.done.astype(jnp.float32), values, jnp.array([1000.0]), 0.99, 0.95
    )
    np.testing.assert_allclose(float(target[-1, 0]), float(steps.reward[-1, 0]), rtol=1e-6)


# --- budgets and refusals -------------------------------------------------------------------------


def test_plan_does_not_depend_on_chunks():
    for chunks in (1, 3, 7, 50):
        updates, k = plan_updates({"total_timesteps": 1000, "chunks": chunks}, 128)
        assert updates == 8 and k == -(-8 // chunks)
    assert budget_note({"total_timesteps": 1000}, 8, 128).startswith("--total-timesteps 1000 is rounded up to 1024")
    assert budget_note({"total_timesteps": 1024}, 8, 128) is None


@pytest.mark.parametrize(
    "module, argv, message",
    [
        (dqn, ["--learning-starts", "60000", "--buffer-size", "50000"], "exceeds --buffer-size"),
        (dqn, ["--learning-starts", "20000", "--total-timesteps", "10000"], "leaves no update to learn in"),
        (dqn, ["--target-update-every", "1000", "--total-timesteps", "6400"], "never be updated"),
        (tabular_q, ["--total-timesteps", "100"], "less than one update"),
        (reinforce, ["--num-envs", "32", "--num-steps", "128", "--total-timesteps", "4000"], "less than one update"),
    ],
)
def test_settings_that_cannot_train_are_refused(module, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(argv + ["--no-progress"])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
