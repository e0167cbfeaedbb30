"""Tests of baselines.selfplay: the meta-solver, PFSP and quality weights, the on-device pool, the
autoregressive policy, a smoke run of every league mode, resume == uninterrupted, exit code 2."""

from __future__ import annotations

import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines import selfplay
from kit_runs import SELFPLAY_TINY, trained_run

# --- meta-solver ----------------------------------------------------------------------------------


def nash_fully_mixed(m: np.ndarray):
    """The fully mixed equilibrium of a square zero-sum game: x^T M = v 1, M y = v 1, sums 1."""
    n = m.shape[0]
    a = np.block([[m.T, -np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    b = np.concatenate([np.zeros(n), [1.0]])
    x = np.linalg.solve(a, b)[:n]
    a = np.block([[m, -np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    y = np.linalg.solve(a, b)[:n]
    return x, y


def test_meta_solver_rock_paper_scissors():
    rps = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], np.float32)
    x, y = jax.jit(selfplay.solve_zero_sum, static_argnames="iters")(rps, iters=2000)
    np.testing.assert_allclose(x, [1 / 3] * 3, atol=0.02)
    np.testing.assert_allclose(y, [1 / 3] * 3, atol=0.02)


def test_meta_solver_biased_rock_paper_scissors():
    # rock beats scissors for 2, paper beats rock for 1, scissors beats paper for 3: equilibrium
    # (rock, paper, scissors) = (1/2, 1/3, 1/6) for both players (symmetric game).
    biased = np.array([[0, -1, 2], [1, 0, -3], [-2, 3, 0]], np.float32)
    x_star, y_star = nash_fully_mixed(biased)
    np.testing.assert_allclose(x_star, [1 / 2, 1 / 3, 1 / 6], atol=1e-6)
    x, y = selfplay.solve_zero_sum(biased, iters=3000)
    np.testing.assert_allclose(x, x_star, atol=0.02)
    np.testing.assert_allclose(y, y_star, atol=0.02)
    # a non-symmetric game (hack probabilities): value of the mixture is the game's value
    m = np.array([[0.9, 0.2], [0.3, 0.6]], np.float32)
    x, y = selfplay.solve_zero_sum(m, iters=3000)
    x_star, y_star = nash_fully_mixed(m)
    np.testing.assert_allclose(x, x_star, atol=0.02)
    np.testing.assert_allclose(y, y_star, atol=0.02)


def test_meta_solver_respects_valid_strategies():
    rps = np.array([[0, -1, 1, 5], [1, 0, -1, 5], [-1, 1, 0, 5], [9, 9, 9, 9]], np.float32)
    valid = np.array([True, True, True, False])
    x, y = selfplay.solve_zero_sum(rps, valid, valid, iters=2000)
    assert float(x[3]) == 0.0 and float(y[3]) == 0.0
    np.testing.assert_allclose(x[:3], [1 / 3] * 3, atol=0.02)
    # dominance: a strictly dominant row gets all the weight
    x, _ = selfplay.solve_zero_sum(np.array([[1.0, 1.0], [0.0, 0.5]]), iters=500)
    np.testing.assert_allclose(x, [1.0, 0.0], atol=0.01)


# --- PFSP and quality weights ---------------------------------------------------------------------


def test_pfsp_weights():
    win = jnp.array([0.0, 0.5, 0.9, 1.0, 0.5])
    valid = jnp.array([1.0, 1.0, 1.0, 1.0, 0.0])
    w = np.asarray(selfplay.pfsp_weights(win, valid, eps=0.0))
    raw = np.array([0.0, 0.25, 0.09, 0.0, 0.0])
    np.testing.assert_allclose(w, raw / raw.sum(), rtol=1e-5)
    w = np.asarray(selfplay.pfsp_weights(win, valid))  # eps keeps every valid opponent reachable
    assert (w[:4] > 0).all() and w[4] == 0 and abs(w.sum() - 1) < 1e-6
    assert w[1] == w.max()  # the even match is preferred


def test_quality_weights():
    q = jnp.array([0.1, 0.9, 0.5])
    w = np.asarray(selfplay.quality_weights(q, jnp.array([1.0, 1.0, 0.0]), 0.1))
    np.testing.assert_allclose(w, [1 / (1 + np.exp(8)), 1 / (1 + np.exp(-8)), 0.0], rtol=1e-5)


# --- the pool -------------------------------------------------------------------------------------


def test_pool_ring_buffer():
    params = {"w": jnp.zeros((2, 3)), "b": jnp.zeros((3,))}
    pool = selfplay.pool_init(params, 3)
    assert pool.valid.tolist() == [True, False, False] and int(pool.count) == 1
    insert = jax.jit(selfplay.pool_insert)
    for v in range(1, 5):  # slots 1, 2, then 0 and 1 again (the oldest are overwritten)
        pool, slot = insert(pool, jax.tree.map(lambda x: jnp.full_like(x, v), params))
        assert int(slot) == v % 3
    assert pool.valid.all() and int(pool.count) == 5
    np.testing.assert_array_equal(pool.params["b"][:, 0], [3, 4, 2])
    np.testing.assert_array_equal(pool.params["w"][:, 0, 0], [3, 4, 2])
    same, _ = selfplay.pool_insert(pool, jax.tree.map(lambda x: jnp.full_like(x, 9), params), False)
    np.testing.assert_array_equal(same.params["b"][:, 0], [3, 4, 2])
    assert int(same.count) == 5
    got = selfplay.pool_get(pool, jnp.array([[2, 0], [1, 1]]))
    np.testing.assert_array_equal(got["b"][..., 0], [[2, 3], [4, 4]])
    assert got["w"].shape == (2, 2, 2, 3)
    idx = selfplay.pool_sample(jax.random.PRNGKey(0), jnp.array([0.0, 0.75, 0.25]), (4000,))
    counts = np.bincount(np.asarray(idx), minlength=3) / 4000
    assert counts[0] == 0 and abs(counts[1] - 0.75) < 0.03


# --- autoregressive policy ------------------------------------------------------------------------


def test_autoregressive_distribution():
    pol = selfplay.make_policy("autoregressive", num_nodes=3, width=4, hidden=16, layers=1)
    obs = jnp.zeros((5, 3, 2), jnp.int8).at[:, :, 0].set(jnp.arange(3, dtype=jnp.int8))
    params = pol.network.init(jax.random.PRNGKey(0), obs.reshape(5, -1).astype(jnp.float32))
    mask = jnp.zeros((5, 12), bool).at[:, jnp.array([1, 2, 9])].set(True)
    d, value = pol.dist(params, obs, mask)
    assert value.shape == (5,)
    probs = np.exp(np.asarray(d.joint.logits))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert probs[:, ~np.asarray(mask[0])].max() < 1e-6
    # node 0 (ids 1, 2) and node 2 (id 9) are the legal nodes: p(node 2) = p(id 9)
    node_p = np.exp(np.asarray(d.node_logits))
    np.testing.assert_allclose(node_p[:, 2], probs[:, 9], rtol=1e-5)
    ent = np.asarray(d.entropy())
    np.testing.assert_allclose(ent, -(probs * np.log(np.maximum(probs, 1e-30))).sum(-1), rtol=1e-4)


# --- command line: smoke runs, resume, errors -----------------------------------------------------

TINY = SELFPLAY_TINY


# Each mode compiles its own trainer (about a minute each on 2 cores): the default suite smoke-tests
# "pool", which the resume test below reuses; `make test-all` runs every mode.
@pytest.mark.parametrize(
    "mode", [m if m == "pool" else pytest.param(m, marks=pytest.mark.slow) for m in selfplay.MODES]
)
def test_smoke_every_mode(mode, tmp_path, tmp_path_factory, capsys):
    extra = {"psro": ["--policy", "autoregressive", "--br-timesteps", "-1"], "pfsp": ["--bot-share", "0.5"]}
    if mode == "pool":  # the run the checkpoint tests share (tests/kit_runs.py)
        out, result, stdout = trained_run(tmp_path_factory, "selfplay")
    else:
        out = tmp_path / mode
        result = selfplay.main([*TINY, "--mode", mode, "--output-dir", str(out), *extra.get(mode, [])])
        stdout = capsys.readouterr().out
    last = json.loads(stdout.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(result))
    for key in ("algo", "env", "seed", "env_steps", "train_seconds", "steps_per_second", "eval_episodes",
                "eval_hack_probability", "eval_attacker_return", "eval_defender_return",
                "attacker_vs_random_defense_hack_probability", "attacker_vs_defend_minimal_hack_probability",
                "defender_vs_random_attack_hack_probability", "defender_vs_attack_maximal_hack_probability",
                "attacker_vs_pool_hack_probability", "defender_vs_pool_hack_probability"):
        assert key in result, key
    assert result["algo"] == "selfplay" and result["env_steps"] == 512 and result["eval_episodes"] == 16
    assert 0 <= result["eval_hack_probability"] <= 1
    if mode == "psro":
        assert result["br_timesteps"] == result["env_steps"]  # as long as the policies it attacks
    for name in ("metrics.csv", "learning_curves.png", "config.json", "eval.json", "payoff_matrix.csv",
                 "payoff_matrix.png", "checkpoints"):
        assert (out / name).exists(), name
    with open(out / "payoff_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "final" and rows[-1][1] == "final"
    assert len(rows) - 1 == 3 + 1  # 8 updates, a snapshot every 2: the ring of 3 is full, plus the final


def test_resume_matches_uninterrupted(tmp_path, tmp_path_factory, capsys):
    args = [*TINY, "--mode", "pool"]  # the smoke run's configuration: its compiled programs are cached
    full_dir, full, _ = trained_run(tmp_path_factory, "selfplay")
    part = str(tmp_path / "part")
    stopped = selfplay.main([*args, "--output-dir", part, "--stop-after", "256"])
    assert stopped.get("stopped") and stopped["env_steps"] == 256
    resumed = selfplay.main(["--resume", "--output-dir", part, "--no-progress"])
    capsys.readouterr()
    skip = {"train_seconds", "compile_seconds", "steps_per_second", "output_dir", "eval_seconds"}
    assert {k: v for k, v in resumed.items() if k not in skip} == {k: v for k, v in full.items() if k not in skip}

    def read(path):
        with open(os.path.join(path, "metrics.csv"), newline="") as f:
            return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]

    assert read(part) == read(str(full_dir))


@pytest.mark.parametrize(
    "argv",
    [
        ["--env", "idsgame-minimal_defense-v19"],  # a single-agent id: use baselines.ppo
        ["--env", "idsgame-v99"],
        ["--mode", "league"],
        ["--policy", "tree"],
        ["--pool-share", "1.5"],
        ["--pool-size", "0"],
        ["--num-envs", "4", "--pool-share", "1.0"],  # no learner-vs-learner game left
        ["--num-minibatches", "7"],
        ["--total-timesteps", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main([*argv, "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    if argv[1] == "idsgame-minimal_defense-v19":
        assert "baselines.ppo" in err


def test_resume_without_checkpoint_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main(["--resume", "--output-dir", str(tmp_path / "nothing"), "--no-progress"])
    assert e.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_best_response_path_and_exploitability_is_the_max_over_responders(tmp_path, capsys):
    """The best-response path on a tiny budget: trained as long as the policies it attacks, evaluated
    greedy and sampled on 2,000 games each, and each reported exploitability is the largest of every
    responder's (best response, scripted bots, pool members), with its standard error."""
    out = tmp_path / "br"
    result = selfplay.main([*TINY[:-3], "--br-timesteps", "-1", "--no-progress", "--mode", "pool",
                            "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert "evaluation: best-response attacker vs the final defender" in err
    assert result["br_timesteps"] == result["env_steps"] == 512
    report = json.loads((out / "eval.json").read_text())["exploitability"]
    for side in ("defender", "attacker"):
        name = f"{side}_exploitability"
        responders = report[name]["responders"]
        assert {"best_response:greedy", "best_response:sampled"} <= set(responders)
        assert any(k.startswith("bot:") for k in responders) and any(k.startswith("pool:") for k in responders)
        assert result[name] == max(r["value"] for r in responders.values())
        assert result[f"{name}_se"] == responders[result[f"{name}_by"]]["se"] >= 0  # 0 at p = 0 or 1
    br = report["defender_exploitability"]["responders"]["best_response:sampled"]
    assert br["se"] <= 0.5 / np.sqrt(2000) + 1e-4  # 2,000 games


def test_best_response_shorter_than_the_policy_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main([*TINY[:-3], "--br-timesteps", "100", "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "at least as long as the policy it attacks" in capsys.readouterr().err
