"""Policies with memory (`python -m baselines.ppo --network gru`, `baselines.recurrent`) and the
library's `RecurrentPolicy` protocol: the GRU's memory resets where an episode starts, recurrent PPO
trains and beats random, a checkpoint loads as `checkpoint:DIR` and plays the trainer's own actions
in `idsjax.rollout`, `idsjax.play`, `idsjax.render` and the server's engine, with its memory carried
and reset at every episode's start."""

from __future__ import annotations

import contextlib
import io
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from baselines import checkpoints, evaluation, ppo, recurrent
from idsjax.policies import RecurrentPolicy, is_recurrent, load_policy, resolve_policy
from idsjax.rollout import per_game, rollout

ENV = "idsgame-random_defense-v0"  # the attacker against random defenses: easy, 2 steps to the data
TINY = [
    "--env",
    ENV,
    "--network",
    "gru",
    "--hidden",
    "16",
    "--total-timesteps",
    "16384",
    "--num-envs",
    "16",
    "--num-steps",
    "16",
    "--num-minibatches",
    "4",
    "--chunks",
    "4",
    "--eval-episodes",
    "500",
    "--no-progress",
]


# -- the network's reset -----------------------------------------------------------------------------
def _network(hidden=8, actions=5):
    net = recurrent.GRUActorCritic(actions, hidden)
    x = jax.random.normal(jax.random.PRNGKey(1), (6, 3, 4))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((3, hidden)), x, jnp.zeros((6, 3), bool))
    return net, params, x


def test_a_reset_sets_the_memory_back_to_a_fresh_games():
    net, params, x = _network()
    h0 = jax.random.normal(jax.random.PRNGKey(2), (3, 8))  # a game in progress: some memory
    reset = jnp.zeros((6, 3), bool).at[3].set(True)  # step 3 starts a new episode in every env
    _, logits, value = net.apply(params, h0, x, reset)
    _, fresh_logits, fresh_value = net.apply(params, jnp.zeros((3, 8)), x[3:], jnp.zeros((3, 3), bool))
    np.testing.assert_allclose(logits[3:], fresh_logits, atol=1e-6)
    np.testing.assert_allclose(value[3:], fresh_value, atol=1e-6)
    # Without the reset the memory of the old game shows (so the check above can fail).
    _, kept, _ = net.apply(params, h0, x, jnp.zeros((6, 3), bool))
    assert np.abs(np.asarray(kept[3:]) - np.asarray(fresh_logits)).max() > 1e-4
    # And the memory matters before the reset: a recurrent network, not a feed-forward one.
    _, early, _ = net.apply(params, jnp.zeros((3, 8)), x, reset)
    assert np.abs(np.asarray(early[1]) - np.asarray(logits[1])).max() > 1e-4


def test_recurrent_policy_protocol():
    def step(key, obs, state, carry):
        return carry.sum().astype(jnp.int32), carry + obs

    policy = RecurrentPolicy(jnp.zeros(2), step, "counter")
    assert is_recurrent(policy) and resolve_policy(policy, "attacker", None, None) is policy
    with pytest.raises(TypeError, match="has memory"):
        policy(jax.random.PRNGKey(0), jnp.ones(2), None)
    carry = policy.init_carry(3) + 5.0
    reset = policy.reset(carry, jnp.array([True, False, True]))
    np.testing.assert_array_equal(reset, [[0, 0], [5, 5], [0, 0]])
    batched = per_game(policy)
    a, c = batched.step(jax.random.PRNGKey(0), jnp.ones((3, 2)), jnp.zeros(3), carry)
    np.testing.assert_array_equal(a, [10, 10, 10])
    np.testing.assert_array_equal(c, np.full((3, 2), 6.0))
    with pytest.raises(ValueError, match="batched"):
        env, params = idsjax.make(ENV)
        rollout(env, params, policy, jax.random.PRNGKey(0), 2)


def test_rollout_carries_the_memory_and_freezes_it_with_a_finished_game():
    env, params = idsjax.make(ENV)

    def step(key, obs, state, carry):  # plays id t at its t-th step: only a carried memory knows t
        return carry, carry + 1

    policy = per_game(RecurrentPolicy(jnp.int32(0), step, "clock"))
    ep = rollout(env, params, policy, jax.random.PRNGKey(3), 16, record=lambda t: (t.action, t.valid))
    actions, valid = (np.asarray(x) for x in ep.records)
    steps = np.arange(actions.shape[0])[:, None]
    assert valid.sum() > valid.shape[1]  # some games last more than one step
    np.testing.assert_array_equal(np.where(valid, actions, -1), np.where(valid, steps, -1))
    # A finished game's memory is frozen: it keeps playing its last id in the steps that count for nothing.
    for g in np.flatnonzero(np.asarray(ep.finished)):
        n = int(ep.length[g])
        assert (actions[n:, g] == n).all()


def test_the_servers_engine_resets_an_opponents_memory_when_its_episode_ends():
    from idsjax.serve.engine import BatchEngine, game_key

    env, params = idsjax.make("idsgame-v0")

    def attack(key, obs, state, carry):  # remembers how many steps it played in this episode
        return jnp.argmax(env.attack_mask(state, params)).astype(jnp.int32), carry + 1

    engine = BatchEngine(env, params, RecurrentPolicy(jnp.int32(0), attack), _bot(env, params), max_games=2, initial=2)
    engine.reset(0, game_key(4), 0)
    steps, done = 0, False
    for t in range(50):
        out = engine.tick(*_tick_args(game_key(4), t, 0))
        steps += 1
        memory = int(np.asarray(engine.memories[0])[0])
        if bool(out["done"][0]):
            done = True
            assert memory == 0  # fresh for the next episode
            break
        assert memory == steps
    assert done, "no episode ended in 50 steps"


def _bot(env, params):
    return resolve_policy("random_defense", "defender", env, params)


def _tick_args(key, t, episode):
    keys = np.stack([key, key])
    i32 = np.int32
    return (
        keys,
        np.array([t, t], i32),
        np.array([episode, episode], i32),
        np.zeros(2, i32),
        np.zeros(2, i32),
        np.array([True, True]),
        np.array([True, True]),
        np.array([True, False]),
    )


# -- training and checkpoints ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gru_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gru") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        result = ppo.main([*TINY, "--output-dir", str(out)])
    return out, result


def _random_hack_probability(games: int = 2000) -> tuple[float, float]:
    env, params = idsjax.make(ENV)
    policy = per_game(resolve_policy("random", "attacker", env, params))
    ep = jax.jit(lambda k: rollout(env, params, policy, k, games, outcome=lambda t: t.info["hacked"]))(
        jax.random.PRNGKey(11)
    )
    p = float((ep.outcome & ep.finished).sum() / ep.finished.sum())
    return p, float(np.sqrt(p * (1 - p) / games))


@pytest.mark.slow  # trains a tiny recurrent run (~40 s on the loaded 2-core machine)
def test_tiny_recurrent_ppo_trains_and_beats_random(gru_run):
    out, result = gru_run
    config = json.loads((out / "config.json").read_text())
    assert config["network"] == "gru"
    p, se = result["eval_hack_probability"], result["eval_hack_probability_se"]
    random_p, random_se = _random_hack_probability()
    assert p - 4 * np.hypot(se, random_se) > random_p, (p, se, random_p, random_se)


@pytest.mark.slow
def test_a_recurrent_checkpoint_plays_the_trainers_own_actions(gru_run):
    out, _ = gru_run
    env, params = idsjax.make(ENV)
    # The restored run reproduces the trainer's evaluation exactly (same keys, same games).
    config, side, act, probs = checkpoints.load_run(str(out), env)
    assert probs is None and side == "attacker"
    saved = json.loads((out / "eval.json").read_text())
    from baselines.host_loop import evaluation_keys

    trainer = ppo.make_train({**config}, env, params)
    runner = _restored_runner(out, trainer, config)
    ev = jax.jit(lambda k: evaluation.evaluate(env, params, trainer.act, runner, k, config["eval_episodes"], True))(
        evaluation_keys(config["seed"], 1)[0]
    )
    assert round(float(ev["hack_probability"]), 4) == saved["per_seed"][0]["hack_probability"]
    # `checkpoint:DIR` (one game) takes the trainer's actions for the same keys, step after step.
    policy = load_policy(f"checkpoint:{out}", "attacker", env, params)
    assert is_recurrent(policy)

    def one_game(p):
        return RecurrentPolicy(
            p.initial_carry,
            lambda k, obs, state, c: jax.vmap(lambda o, s, cc: p.step(k, o, s, cc))(obs, state, c),
            batched=True,
        )

    trained = evaluation.as_rollout_policy(env, params, trainer.act, runner, True)
    record = lambda t: (t.action, t.valid)  # noqa: E731
    for seed in range(5):
        key = jax.random.PRNGKey(100 + seed)
        a = rollout(env, params, trained, key, 1, record=record).records
        b = rollout(env, params, one_game(policy), key, 1, record=record).records
        assert a[1].sum() >= 1
        np.testing.assert_array_equal(np.where(a[1], a[0], -1), np.where(b[1], b[0], -1))
    # Exact exploitability reads one distribution per state, which a policy with memory does not have.
    with pytest.raises(Exception, match="memory"):
        checkpoints.load_checkpoint_distribution(str(out), env, params, "attacker")


def _restored_runner(out, trainer, config):
    abstract = jax.eval_shape(jax.vmap(trainer.init), jax.random.split(jax.random.PRNGKey(0), config["num_seeds"]))
    runner, _, _ = checkpoints.restore_checkpoint(str(out), abstract)
    return jax.tree.map(lambda x: x[0], runner)


@pytest.mark.slow
def test_a_recurrent_checkpoint_plays_in_play_render_and_the_server(gru_run, tmp_path):
    out, _ = gru_run
    spec = f"checkpoint:{out}"
    env, params = idsjax.make("idsgame-v0")
    policy = load_policy(spec, "attacker", env, params)

    # idsjax.play: the opponent's memory is carried through a game and fresh in the next.
    from idsjax.play import run_script
    from idsjax.play_game import Game

    game = Game(env, params, "defender", policy, seed=3)
    carry = policy.init_carry()
    played = 0
    while not game.over:
        _, k_opp, _ = jax.random.split(game.key, 3)
        obs = env.side_observation(game.state, "attacker", params)
        want, carry = policy.step(k_opp, obs, game.state, carry)
        a, _, _, _ = game.play(int(game.legal()[0]))
        assert a == int(want)
        played += 1
    assert played >= 1 and not np.allclose(np.asarray(game.opponent_carry), 0)
    game.new_game()
    np.testing.assert_array_equal(game.opponent_carry, policy.init_carry())
    code, text = run_script(["--env", "idsgame-v0", "--side", "defender", "--opponent", spec], "q\n")
    assert code == 0, text

    # idsjax.render: a GIF of games with the recurrent attacker.
    from idsjax.render import main as render_main

    gif = tmp_path / "g.gif"
    with contextlib.redirect_stdout(io.StringIO()):
        assert render_main(["--env", "idsgame-v0", "--attacker", spec, "--out", str(gif), "--episodes", "2"]) == 0
    assert gif.stat().st_size > 0

    # The server's engine: the checkpoint plays the attacker with the keys of `step_keys`, its memory
    # carried per slot and fresh at every episode's start.
    from idsjax.serve.engine import BatchEngine, game_key, step_keys

    engine = BatchEngine(env, params, policy, _bot(env, params), max_games=2, initial=2)
    key = game_key(9)
    engine.reset(0, key, 0)
    carry, episode, ended = policy.init_carry(), 0, 0
    state = jax.tree.map(lambda x: x[0], engine.states)
    for t in range(40):
        k_att, _, _ = step_keys(jnp.asarray(key), t)
        want, carry = policy.step(k_att, env.side_observation(state, "attacker", params), state, carry)
        tick = engine.tick(*_tick_args(key, t, episode))
        assert int(tick["attack_action"][0]) == int(want)
        np.testing.assert_allclose(np.asarray(engine.memories[0])[0], carry if not tick["done"][0] else 0, atol=1e-6)
        if tick["done"][0]:
            carry, episode, ended = policy.init_carry(), episode + 1, ended + 1
        state = jax.tree.map(lambda x: x[0], engine.states)
    assert ended >= 2

    # Through the coordinator: a remote defender against the checkpoint's attacker.
    import asyncio
    import random

    from idsjax.serve.coordinator import Coordinator

    async def go():
        c = Coordinator(env_id="idsgame-v0", opponents={"attacker": spec}, max_games=2, initial_slots=2)
        loop = asyncio.create_task(c.run())
        try:
            token, view = c.join(None, "defender", seed=5)
            rng, views = random.Random(5), []
            for _ in range(20):
                view = await c.submit(token, rng.choice(view["legal_actions"]))
                views.append(view)
            return views
        finally:
            loop.cancel()
            c.close()

    views = asyncio.run(go())
    assert len(views) == 20 and any(v.get("done") for v in views)


# -- interrupted and resumed -------------------------------------------------------------------------
GRU_INTERRUPT = [
    "--env",
    ENV,
    "--network",
    "gru",
    "--hidden",
    "16",
    "--total-timesteps",
    "12800",
    "--num-envs",
    "4",
    "--num-steps",
    "16",
    "--num-minibatches",
    "2",
    "--chunks",
    "200",
    "--eval-episodes",
    "30",
    "--num-seeds",
    "2",
    "--no-progress",
]


@pytest.mark.slow  # a real process stopped by a real SIGINT, then resumed, then run uninterrupted (~90 s)
def test_gru_sigint_then_resume_equals_uninterrupted(tmp_path, capsys):
    import signal

    from kit_runs import run_metrics
    from test_interrupt import check_interrupted, interrupt

    part, full = tmp_path / "part", tmp_path / "full"
    code, err = interrupt("ppo", GRU_INTERRUPT, part, signal.SIGINT)
    stopped_at = check_interrupted("ppo", code, err, signal.SIGINT, part, 12800)
    resumed = ppo.main(["--resume", "--output-dir", str(part), "--no-progress"])
    uninterrupted = ppo.main([*GRU_INTERRUPT, "--output-dir", str(full)])
    capsys.readouterr()
    # The memories and the flags of the episodes in progress are part of the checkpoint: without them
    # the resumed rollout would start every game's memory afresh and the metrics would differ.
    assert run_metrics(part) == run_metrics(full)
    for key in ("env_steps", "eval_hack_probability_per_seed", "eval_attacker_return", "eval_defender_return"):
        assert resumed[key] == uninterrupted[key], key
    assert resumed["resumed_at_env_steps"] == stopped_at * 4 * 16
    assert json.loads((part / "eval.json").read_text()) == json.loads((full / "eval.json").read_text())


def test_the_training_rollout_resets_where_episodes_ended_and_the_update_replays_it():
    env, params = idsjax.make(ENV)
    config = {**ppo.ENV_DEFAULTS, **{k: v[0] for k, v in ppo.HYPERPARAMETERS.items()}}
    config.update(network="gru", hidden=8, num_envs=4, num_steps=24, num_minibatches=2, total_timesteps=96, chunks=1)
    parts = recurrent.build(config, env, params)

    @jax.jit
    def run(key):
        runner = parts.init(key)
        runner, steps, resets, log_prob, values, h0 = parts.collect(runner)
        mask = steps.mask
        _, pi, replayed_values = parts.policy(runner.train_state.params, h0, steps.obs, resets, mask)
        _, leaky, _ = parts.policy(runner.train_state.params, h0, steps.obs, jnp.zeros_like(resets), mask)
        replayed = (pi.log_prob(steps.action), replayed_values, leaky.log_prob(steps.action))
        return steps.done, resets, log_prob, values, replayed, runner.reset

    done, resets, log_prob, values, (replayed, replayed_values, leaky), last_reset = run(jax.random.PRNGKey(0))
    done, resets = np.asarray(done), np.asarray(resets)
    assert done[:-1].any(), "no episode ended inside the rollout: the test checks nothing"
    # Each step starts from a fresh memory exactly where the previous step ended an episode (the first
    # step of a run starts fresh too), and the runner keeps the last flags for the next rollout.
    np.testing.assert_array_equal(resets[1:], done[:-1])
    assert resets[0].all()
    np.testing.assert_array_equal(np.asarray(last_reset), done[-1])
    # Replaying the sequences from their initial memories with those resets gives the rollout's own
    # log-probabilities and values: the update learns from the policy that acted.
    np.testing.assert_allclose(replayed, log_prob, atol=1e-5)
    np.testing.assert_allclose(replayed_values, values, atol=1e-5)
    # Replayed without the resets, the memories of ended games leak into the next ones and differ.
    assert np.abs(np.asarray(leaky) - np.asarray(log_prob)).max() > 1e-4


# -- the memory experiment's comparison ---------------------------------------------------------------
def _fake_run(path, network, hack, games=400, **changes):
    config = {"algo": "ppo", "env": "idsgame-maximal_attack-v19", "seed": 0, "num_seeds": len(hack)}
    config |= {"total_timesteps": 1000, "num_envs": 8, "num_steps": 8, "eval_episodes": games, "hidden": 16}
    config |= {"network": network, **changes}
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    per_seed = [{"episodes": games, "hack_probability": p} for p in hack]
    (path / "eval.json").write_text(json.dumps({"per_seed": per_seed}))
    return str(path)


@pytest.mark.slow  # rliable's bootstraps (20,000 resamples each): ~50 s on the loaded 2-core machine
def test_compare_pairs_seeds(tmp_path):
    mlp = _fake_run(tmp_path / "mlp", "mlp", [0.30, 0.20, 0.25])
    gru = _fake_run(tmp_path / "gru", "gru", [0.20, 0.15, 0.25])
    out = recurrent.compare_runs(mlp, gru)
    assert out["side"] == "defender" and out["seeds"] == 3
    np.testing.assert_allclose(out["paired_difference"]["per_seed"], [-0.10, -0.05, 0.0], atol=1e-9)
    assert out["paired_difference"]["mean"] == pytest.approx(-0.05)
    low, high = out["paired_difference"]["t95"]
    assert low < -0.05 < high
    assert out["hack_probability"]["memoryless_se_per_seed"][0] == pytest.approx(np.sqrt(0.3 * 0.7 / 400), abs=1e-4)
    # The defender's score is 1 - hack probability: the recurrent arm is never worse here.
    assert out["probability_of_improvement_recurrent_over_memoryless_95ci"][0] > 0.5


def test_compare_refuses_what_is_not_a_pair(tmp_path, capsys):
    mlp = _fake_run(tmp_path / "mlp", "mlp", [0.30, 0.20, 0.25])
    gru = _fake_run(tmp_path / "gru", "gru", [0.20, 0.15, 0.25])
    for argv, why in (
        ([gru, mlp], "memoryless run first"),
        ([mlp, _fake_run(tmp_path / "g2", "gru", [0.2, 0.2, 0.2], total_timesteps=5)], "differ in total_timesteps"),
        ([mlp, str(tmp_path / "none")], "no finished run"),
    ):
        assert recurrent.main(["--compare", *argv]) == 2
        assert why in capsys.readouterr().err


def test_the_memoryless_control_wipes_the_memory_before_every_step(capsys):
    env, params = idsjax.make(ENV)
    config = {**ppo.ENV_DEFAULTS, **{k: v[0] for k, v in ppo.HYPERPARAMETERS.items()}}
    config.update(network="gru", hidden=8, num_envs=4, num_steps=8, num_minibatches=2, total_timesteps=32, chunks=1)

    def acts(memoryless):
        parts = recurrent.build({**config, "memoryless_gru": memoryless}, env, params)
        runner = parts.init(jax.random.PRNGKey(0))
        _, _, resets, _, _, _ = parts.collect(runner)
        obs = runner.env.obs
        outs = [
            parts.act.step(runner, obs, None, jax.random.PRNGKey(1), carry)[1]
            for carry in (jnp.zeros((4, 8)), jax.random.normal(jax.random.PRNGKey(2), (4, 8)))
        ]
        return np.asarray(resets), outs

    resets, (fresh, remembered) = acts(True)
    assert resets.all()
    np.testing.assert_allclose(fresh, remembered, atol=1e-6)  # what it remembered changes nothing
    resets, (fresh, remembered) = acts(False)
    assert not resets[1:].all() and np.abs(fresh - remembered).max() > 1e-4
    with pytest.raises(SystemExit) as e:
        ppo.main(["--env", ENV, "--memoryless-gru", "--output-dir", "/nonexistent/x"])
    assert e.value.code == 2 and "--memoryless-gru goes with --network gru" in capsys.readouterr().err
