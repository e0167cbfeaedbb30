"""Tests of baselines.selfplay: the meta-solver, PFSP and quality weights, the on-device pool, the
autoregressive policy, a smoke run of every league mode, resume == uninterrupted, exit code 2."""

from __future__ import annotations

import csv
import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kit_runs import SELFPLAY_TINY, SELFPLAY_TINY_BR_GAMES, trained_run

from baselines import selfplay

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
    for key in (
        "algo",
        "env",
        "seed",
        "env_steps",
        "train_seconds",
        "steps_per_second",
        "eval_episodes",
        "eval_hack_probability",
        "eval_attacker_return",
        "eval_defender_return",
        "attacker_vs_random_defense_hack_probability",
        "attacker_vs_defend_minimal_hack_probability",
        "defender_vs_random_attack_hack_probability",
        "defender_vs_attack_maximal_hack_probability",
        "attacker_vs_pool_hack_probability",
        "defender_vs_pool_hack_probability",
    ):
        assert key in result, key
    assert result["algo"] == "selfplay" and result["env_steps"] == 512 and result["eval_episodes"] == 16
    assert 0 <= result["eval_hack_probability"] <= 1
    if mode == "psro":
        assert result["br_timesteps"] == result["env_steps"]  # as long as the policies it attacks
    for name in (
        "metrics.csv",
        "learning_curves.png",
        "config.json",
        "eval.json",
        "payoff_matrix.csv",
        "payoff_matrix.png",
        "checkpoints",
    ):
        assert (out / name).exists(), name
    with open(out / "payoff_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "final" and rows[-1][1] == "final"
    assert len(rows) - 1 == 3 + 1  # 8 updates, a snapshot every 2: the ring of 3 is full, plus the final
    # Exploitability's responders (bots and every pool slot) are each scored on the same selection games
    # (--br-eval-episodes), and the chosen one is reported from as many fresh games.
    saved = json.loads((out / "eval.json").read_text())
    for side, block in (("attacker", "exploit_fresh_attacker"), ("defender", "exploit_fresh_defender")):
        report = saved["exploitability"][f"{side}_exploitability"]
        games = SELFPLAY_TINY_BR_GAMES
        assert report["games"] == games and saved["per_seed"][block]["episodes"] == [games]
        trained = {"best_response:greedy", "best_response:sampled"} if result.get("br_timesteps") else set()
        assert set(report["responders"]) == {
            *(f"bot:{b}" for b in selfplay.OPPONENT_BOTS[side]),
            "pool:0",
            "pool:1",
            "pool:2",
            *trained,  # psro trains a best response as long as the policies it attacks
        }
        # the chosen responder is the best on the selection games, and the value is its fresh score
        by = report["per_seed_by"][0]
        assert report["responders"][by]["value"] == max(r["value"] for r in report["responders"].values())
        assert report["per_seed_selected_on"][0] == report["responders"][by]["value"]
        fresh = saved["per_seed"][block]["hack_probability"][0]
        assert report["per_seed"][0] == pytest.approx(fresh if side == "defender" else 1 - fresh, abs=1e-4)
        # fresh games are other games of the same responder: the two scores agree within their noise
        se = np.sqrt(2 * report["per_seed_se"][0] ** 2)
        assert abs(report["per_seed"][0] - report["per_seed_selected_on"][0]) < 5 * se + 1e-3


def test_exploitability_selection_is_not_biased_by_the_max_of_noisy_estimates():
    """Eight responders of exactly equal value (p = 0.05, 200 games each, as pool members were scored):
    the maximum of their selection scores is high by about 0.02 (issue 25), while the fresh score of
    the one chosen is unbiased, on average over many simulated seeds, within its standard error."""
    from baselines.selfplay.run import select_and_replay

    rng = np.random.default_rng(7)
    p, n, responders, seeds = 0.05, 200, 8, 20_000
    select = rng.binomial(n, p, size=(responders, seeds)) / n
    fresh = rng.binomial(n, p, size=(responders, seeds)) / n
    chosen, value, se = select_and_replay(select, fresh, n)
    assert (chosen == select.argmax(axis=0)).all()
    assert (value == fresh[chosen, np.arange(seeds)]).all()
    np.testing.assert_allclose(se, np.sqrt(value * (1 - value) / n))
    se_mean = np.sqrt(p * (1 - p) / n / seeds)  # of the mean over seeds: 0.00011
    assert abs(value.mean() - p) < 4 * se_mean  # the rule: unbiased
    assert select.max(axis=0).mean() - p > 0.015  # the max of the selection scores: biased, as the issue says
    # unequal responders: the stronger one is chosen most of the time and its fresh value is reported
    strong = np.full((2, seeds), 0.05)
    strong[1] = 0.10
    select = rng.binomial(n, strong) / n
    fresh = rng.binomial(n, strong) / n
    chosen, value, _ = select_and_replay(select, fresh, n)
    assert (chosen == 1).mean() > 0.9
    assert value.mean() < 0.10 + 4 * np.sqrt(0.1 * 0.9 / n / seeds)  # at most the better one's value
    # a responder that does not exist (NaN selection score, e.g. an empty pool slot) is never chosen
    chosen, _, _ = select_and_replay([[np.nan, 0.2], [0.1, 0.1]], [[0.9, 0.3], [0.2, 0.2]], 100)
    assert chosen.tolist() == [1, 0]
    with pytest.raises(ValueError, match="differ in shape"):
        select_and_replay(np.zeros((2, 3)), np.zeros((3, 3)), 10)


def test_resume_matches_uninterrupted(tmp_path, tmp_path_factory, capsys):
    args = [*TINY, "--mode", "pool"]  # the smoke run's configuration: its compiled programs are cached
    full_dir, full, _ = trained_run(tmp_path_factory, "selfplay")
    part = str(tmp_path / "part")
    stopped = selfplay.main([*args, "--output-dir", part, "--stop-after", "256"])
    assert stopped.get("stopped") and stopped["env_steps"] == 256
    resumed = selfplay.main(["--resume", "--output-dir", part, "--no-progress"])
    err = capsys.readouterr().err
    assert resumed["resumed_at_env_steps"] == 256 and "resumed_at_env_steps" not in full
    # The run ends in a summary for people: the phases as they run, the final policies against each
    # other, the bots and the pools, exploitability with its responder, the times, where the results are.
    assert "[2/2] evaluation games and payoff matrix" in err  # --br-timesteps 0: no best-response phases
    for row in (
        "final attacker vs final defender",
        "final attacker vs defend_minimal",
        "final attacker vs the defender pool",
        "attack_maximal vs final defender",
        "the attacker pool vs final defender",
    ):
        assert row in err, row
    from baselines.selfplay.run import _probability

    for side in ("attacker", "defender"):
        e, se = resumed[f"{side}_exploitability"], resumed[f"{side}_exploitability_se"]
        # "p ± se", or the rule-of-three bound where none or all of its fresh games were won
        text = _probability(e, se, SELFPLAY_TINY_BR_GAMES)
        assert f"{side} " in err and f"{text}  by {resumed[f'{side}_exploitability_by']}" in err
    assert "(over every session: resumed at 256 steps)" in err
    assert resumed["wall_seconds"] >= resumed["eval_seconds"] and set(resumed["phase_seconds"]) == {"evaluation_games"}
    assert err.strip().splitlines()[-1] == f"results in {part}"
    assert_resumed_equals_uninterrupted(resumed, full, part, full_dir)


def assert_resumed_equals_uninterrupted(resumed: dict, full: dict, part, full_dir) -> None:
    """A resumed self-play run's result and metrics are the uninterrupted run's, times apart (also
    tests/test_selfplay_games on scenario and generated games)."""
    skip = {"train_seconds", "compile_seconds", "steps_per_second", "output_dir", "eval_seconds"}
    skip |= {"phase_seconds", "wall_seconds", "resumed_at_env_steps"}  # times, and the resume itself
    assert {k: v for k, v in resumed.items() if k not in skip} == {k: v for k, v in full.items() if k not in skip}

    def read(path):
        with open(os.path.join(path, "metrics.csv"), newline="") as f:
            return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]

    assert read(part) == read(full_dir)


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
        ["--payoff-episodes", "0"],
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


def test_payoff_games_scale_with_the_run():
    """-1: the matrix plays about total_timesteps / 20 games in all, 10 to 100 per pair."""
    config = {"payoff_episodes": -1, "pool_size": 8}
    assert selfplay.payoff_games({**config, "total_timesteps": 100_000}) == 62  # 81 pairs x 62 ~ 5,000 games
    assert selfplay.payoff_games({**config, "total_timesteps": 1_000}) == 10
    assert selfplay.payoff_games({**config, "total_timesteps": 10_000_000}) == 100
    assert selfplay.payoff_games({**config, "payoff_episodes": 200, "total_timesteps": 1_000}) == 200


def test_resume_without_checkpoint_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main(["--resume", "--output-dir", str(tmp_path / "nothing"), "--no-progress"])
    assert e.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_best_response_shorter_than_the_policy_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main([*TINY[:-3], "--br-timesteps", "100", "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    assert "at least as long as the policy it attacks" in capsys.readouterr().err


# --- the league comparison (baselines.league_comparison) ---------------------------------------------


def test_sign_flip_p_exact_values():
    from baselines.league_statistics import sign_flip_p

    # all five differences positive: only the observed pattern and its mirror are as extreme, 2 / 32
    assert sign_flip_p([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]) == pytest.approx(2 / 32)
    # d = (2, 1, -1), |sum| = 2: of the 8 sign patterns, sums (4, 2, 2, 0, 0, -2, -2, -4) -> 6 reach 2
    assert sign_flip_p([2, 1, -1], [0, 0, 0]) == pytest.approx(6 / 8)
    assert sign_flip_p([0.3, 0.5], [0.4, 0.4]) == 1.0  # mean difference 0: every pattern is as extreme
    assert sign_flip_p([0.7] * 6, [0.5] * 6) == pytest.approx(2 / 64)  # six seeds can reach p < 0.05
    # beyond the exact limit the Monte Carlo p-value agrees with the exact one
    d = [0.3, -0.1, 0.2, 0.25, 0.05, 0.15, -0.05, 0.1]
    exact = sign_flip_p(d, [0] * 8)
    assert sign_flip_p(d, [0] * 8, max_exact=1, resamples=200_000) == pytest.approx(exact, abs=0.005)


def test_sign_flip_p_one_sided():
    from baselines.league_statistics import sign_flip_p

    # ten seeds all positive: only the observed pattern is as large, 1 / 1024 (the pre-registered test's floor)
    assert sign_flip_p([0.1] * 10, [0.0] * 10, "greater") == pytest.approx(1 / 1024)
    assert sign_flip_p([0.1] * 10, [0.0] * 10, "less") == 1.0
    # d = (2, 1, -1): sums (4, 2, 2, 0, 0, -2, -2, -4) over the 8 patterns; 3 reach 2 or more, 7 reach 2 or less
    assert sign_flip_p([2, 1, -1], [0, 0, 0], "greater") == pytest.approx(3 / 8)
    assert sign_flip_p([2, 1, -1], [0, 0, 0], "less") == pytest.approx(7 / 8)
    with pytest.raises(ValueError, match="alternative"):
        sign_flip_p([1], [0], "bigger")


def test_holm():
    from baselines.league_report import holm_floor
    from baselines.league_statistics import holm

    # one family of 54 comparisons (3 envs x 3 figures x 6 pairs): 10 seeds reach at best 54 x 2/1024 =
    # 0.105, so nothing can pass; 12 seeds reach 54 x 2/4096 = 0.026
    assert "no difference can pass" in holm_floor(10, 54) and "at least 12 seeds" in holm_floor(10, 54)
    assert "0.0264" in holm_floor(12, 54) and "no difference" not in holm_floor(12, 54)
    # 6 comparisons: 8 seeds reach 6 x 2/256 = 0.047
    assert "0.0469" in holm_floor(8, 6)

    # sorted 0.01, 0.02, 0.04 x (3, 2, 1) = 0.03, 0.04, 0.04 (monotone), in the input order
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    # part of a planned family of 54: the missing tests count as p = 1, so the made ones are adjusted as
    # in the whole family (0.001 x 54), not in the smaller one made so far
    assert holm([0.001, 0.5], m=54) == pytest.approx([0.054, 1.0])
    assert holm([0.01, 0.02], m=3) == pytest.approx([0.03, 0.04])
    with pytest.raises(ValueError, match="cannot hold"):
        holm([0.1, 0.2, 0.3], m=2)


def test_compare_uses_t_intervals_and_one_holm_family_over_everything():
    from scipy import stats

    from baselines.league_statistics import compare, holm, sign_flip_p

    rng = np.random.default_rng(3)
    rows = []
    for env_id in ("e1", "e2"):
        for mode, shift in (("naive", 0.0), ("pfsp", 0.05), ("pool", 0.0)):
            for s in range(6):
                rows.append({"env": env_id, "mode": mode, "seed": s, "fig": 0.5 + shift + 0.01 * rng.normal()})
    out = compare(rows, ["e1", "e2"], ["naive", "pfsp", "pool"], figures=("fig",))
    assert len(out) == 6  # 2 envs x 3 pairs, one family
    r = out[0]
    a = [x["fig"] for x in rows if x["env"] == "e1" and x["mode"] == "naive"]
    b = [x["fig"] for x in rows if x["env"] == "e1" and x["mode"] == "pfsp"]
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, 5) * d.std(ddof=1) / np.sqrt(6)  # Student t with 5 degrees of freedom
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-4)
    assert r["p"] == pytest.approx(sign_flip_p(a, b), abs=1e-4) == pytest.approx(2 / 64, abs=1e-4)
    # Holm over all six, not within each env
    raw = [sign_flip_p(*(
        [x["fig"] for x in rows if x["env"] == c["env"] and x["mode"] == m] for m in (c["mode_a"], c["mode_b"])
    )) for c in out]  # fmt: skip
    assert [c["p_holm"] for c in out] == pytest.approx(holm(raw), abs=1e-4)
    assert out[0]["p_holm"] == pytest.approx(min(1.0, 6 * 2 / 64), abs=1e-4)
    # a planned env that has not run yet still counts in the family: 3 envs x 3 pairs = 9
    partial = compare(rows, ["e1", "e2", "e3"], ["naive", "pfsp", "pool"], figures=("fig",))
    assert len(partial) == 6 and partial[0]["p_holm"] == pytest.approx(min(1.0, 9 * 2 / 64), abs=1e-4)


def test_conclusions_say_plainly_when_nothing_survives_the_family():
    from baselines.league_report import conclusions

    def row(p, p_holm, diff=0.02):
        return {"env": "v", "figure": "f", "mode_a": "a", "mode_b": "b", "diff": diff,
                "ci_low": diff / 2, "ci_high": diff * 2, "p": p, "p_holm": p_holm}  # fmt: skip

    # one small p among 20, adjusted over all 20 to 0.08: no finding, said first and plainly
    text = conclusions([row(0.004, 0.08)] + [row(0.9, 1.0, diff=0.0)] * 19)
    assert text.startswith("**No difference between modes survives Holm's correction over all 20 comparisons**")
    assert "smallest adjusted p 0.080" in text and "not findings" in text and "v f a − b +0.020 (p 0.004)" in text
    assert "The other 19 of the 20 comparisons made" in text
    # a finding that survives the family is named as one
    text = conclusions([row(0.001, 0.02)] + [row(0.9, 1.0, diff=0.0)] * 4)
    assert text.startswith("Differences that survive Holm's correction over all 5 comparisons: v f: a > b")
    # part of a planned family: the sentence names the whole family
    text = conclusions([row(0.004, 0.216)] + [row(0.9, 1.0, diff=0.0)] * 17, 54)
    assert text.startswith("**No difference between modes survives Holm's correction over all 54 comparisons**")
    assert "The other 17 of the 18 comparisons made" in text


def test_replication_verdict_follows_the_preregistered_test():
    from argparse import Namespace

    from baselines.league_statistics import PREREGISTERED, replication

    pre = PREREGISTERED
    args = Namespace(seed=pre["seed"], seeds=pre["seeds"], envs=[pre["env"]], modes=["naive", "pfsp"])

    def rows(naive, pfsp):
        out = []
        for mode, values in (("naive", naive), ("pfsp", pfsp)):
            for s, v in enumerate(values):
                out.append({"env": pre["env"], "mode": mode, "seed": s, "attacker_exploitability": v,
                            "selfplay_hack_p": 0.05})  # fmt: skip
        return out

    # 9 of 10 seeds favour PFSP by 0.02, one the other way by 0.01: p = 2/1024 (that pattern and all-positive)
    got = replication(rows([0.97] * 9 + [0.95], [0.95] * 9 + [0.96]), args)
    assert got["done"] and got["replicated"] and got["primary"]["p"] == pytest.approx(2 / 1024)
    assert got["primary"]["positive"] == 9 and got["primary"]["negative"] == 1
    # no difference: not replicated (p = 1 at a mean difference of 0)
    got = replication(rows([0.96] * 10, [0.96] * 10), args)
    assert got["done"] and not got["replicated"]
    # a negative difference, however significant, is not the hypothesis
    assert not replication(rows([0.95] * 10, [0.97] * 10), args)["replicated"]
    # not all seeds yet: undecided; another base seed: not the pre-registered run
    assert replication(rows([0.97] * 5, [0.95] * 5), args) == {"done": False}
    assert replication(rows([0.97] * 10, [0.95] * 10), Namespace(**{**vars(args), "seed": 0})) is None


# ~110 s on the shared 2-core machine: `-m slow`. The default suite runs the best-response path through
# tests/test_exploitability_calibration.py (v13, trained with `train_best_response`).
@pytest.mark.slow
def test_league_report_says_which_runs_resumed_and_their_cpu_time():
    """A resumed run's wall time counts only its last invocation, and every wall time counts pauses:
    the report says where a run resumed and gives CPU time where the run recorded it."""
    from baselines.league_report import TIMES_NOTE, run_times

    assert run_times({"wall_seconds": 3545.5, "cpu_seconds": None, "resumed_at": 500736}) == (
        "3546 s wall, resumed at 500,736 steps per seed"
    )
    assert run_times({"wall_seconds": 12.04, "cpu_seconds": 20.4, "resumed_at": ""}) == "12 s wall, 20 s CPU"
    assert "not a compute time" in TIMES_NOTE


# Games of each exploitability responder (selection and fresh): enough for the SE bound below to mean
# something; 2,000 made this one test evaluate for minutes (about 60% of its time, cache warm).
BR_GAMES = 200


def test_league_comparison_command_tiny_and_the_best_response_path(tmp_path, capsys):
    """Two modes on a tiny budget (2 seeds), which also runs self-play's best-response path (one test, so
    the suite compiles it once): best responses trained as long as the policies they attack, evaluated
    greedy and sampled on BR_GAMES games each, each reported exploitability per seed the fresh score of the
    responder (best response, scripted bots, pool members) that scored highest on the selection games,
    with its standard error, and the best response's own value beside it; then the
    command's per-seed rows, paired statistics, the report with what ran, the rewritten SELFPLAY-like
    file (the text before the heading kept), the payoff figure, the published copies; a second call
    reuses the finished runs."""
    from baselines import league_comparison as lc
    from baselines import league_statistics

    md = tmp_path / "SELFPLAY.md"
    md.write_text("# Self-play\n\nkept text\n\n### League modes compared\n\nold results\n")
    argv = [
        "--envs",
        "idsgame-v19",
        "--modes",
        "naive",
        "pool",
        "--seeds",
        "2",
        "--total-timesteps",
        "512",
        "--eval-episodes",
        "16",
        "--payoff-episodes",
        "2",
        "--br-eval-episodes",
        str(BR_GAMES),
        "--no-progress",
        "--output-dir",
        str(tmp_path / "out"),
        "--selfplay-md",
        str(md),
        "--publish",
        str(tmp_path / "pub"),
        "--extra",
        "--num-envs 8 --num-steps 8 --num-minibatches 2 --update-epochs 1 --hidden 16 --layers 1 "
        "--pool-size 3 --snapshot-every 2 --chunks 2",
    ]
    got = lc.main(argv)
    err = capsys.readouterr().err
    assert "[3/4] best-response attacker vs the final defender" in err
    assert [s["done"] for s in got["status"]] == [True, True]
    # the best-response path, on the pool run
    saved = json.loads((tmp_path / "out" / "idsgame-v19" / "pool" / "eval.json").read_text())
    result, report, per_seed = saved["result"], saved["exploitability"], saved["per_seed"]
    assert result["br_timesteps"] == result["env_steps"] == 512
    for side, responder in (("defender", "attacker"), ("attacker", "defender")):
        name = f"{side}_exploitability"
        e = report[name]
        responders = e["responders"]
        assert {"best_response:greedy", "best_response:sampled"} <= set(responders)
        assert any(k.startswith("bot:") for k in responders) and any(k.startswith("pool:") for k in responders)
        flip = (lambda p: 1 - np.asarray(p)) if side == "attacker" else np.asarray
        for how in ("greedy", "sampled", "greedy_fresh", "sampled_fresh"):
            assert per_seed[f"br_{responder}_{how}"]["episodes"] == [BR_GAMES, BR_GAMES]
        # per seed: the chosen responder's fresh score, not its selection score (its own fresh games)
        for s, by in enumerate(e["per_seed_by"]):
            if by.startswith("best_response:"):
                how = by.split(":")[1]
                fresh = flip(per_seed[f"br_{responder}_{how}_fresh"]["hack_probability"][s])
                picked = flip(per_seed[f"br_{responder}_{how}"]["hack_probability"][s])
            else:
                fresh = flip(per_seed[f"exploit_fresh_{side}"]["hack_probability"][s])
                picked = e["per_seed_selected_on"][s]
            assert e["per_seed"][s] == pytest.approx(float(fresh), abs=1e-4)
            assert e["per_seed_selected_on"][s] == pytest.approx(float(picked), abs=1e-4)
        assert result[name] == pytest.approx(np.mean(e["per_seed"]), abs=1e-4)
        se = np.sqrt(np.sum(np.square(e["per_seed_se"]))) / 2
        assert result[f"{name}_se"] == pytest.approx(se, abs=1e-4) and 0 <= se <= 0.5 / np.sqrt(BR_GAMES)
        # the trained best response's own value beside it, from its fresh games too
        own = e["best_response"]
        assert result[f"{name}_best_response"] == own["value"]
        for s, how in enumerate(own["per_seed_by"]):
            fresh = flip(per_seed[f"br_{responder}_{how.split(':')[1]}_fresh"]["hack_probability"][s])
            assert own["per_seed"][s] == pytest.approx(float(fresh), abs=1e-4)
    assert len(got["rows"]) == 4 and {r["seed"] for r in got["rows"]} == {0, 1}
    for r in got["rows"]:
        assert r["env_steps"] == r["br_timesteps"] == 512
        assert r["defender_exploitability_by"] and r["attacker_exploitability_by"]
    assert {(s["figure"], s["seeds"]) for s in got["stats"]} == {(f, 2) for f in league_statistics.COMPARED}
    text = md.read_text()
    assert text.startswith("# Self-play\n\nkept text\n\n### League modes compared") and "old results" not in text
    assert "2 of the 2 planned" in text and "python -m baselines.league_comparison" in text
    assert re.search(r"idsgame-v19 naive \(\d+ s wall, \d+ s CPU\)", text)  # fresh runs record CPU time
    assert (tmp_path / "out" / "figures" / "payoff_idsgame-v19.png").is_file()
    for name in (
        "league_comparison.csv",
        "league_comparison_stats.csv",
        "league_comparison.md",
        "figures/payoff_idsgame-v19.png",
    ):
        assert (tmp_path / "pub" / name).is_file(), name
    assert "pub/figures/payoff_idsgame-v19.png" in text  # the report cites the published copies
    with open(tmp_path / "out" / "league_comparison.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4
    capsys.readouterr()
    again = lc.main(argv)
    assert "done before, reused" in capsys.readouterr().err
    assert again["rows"] == got["rows"]
    # --report-only trains nothing: a planned mode that never ran is reported as not run
    at = argv.index("pool") + 1
    partial = lc.main([*argv[:at], "psro", *argv[at:], "--report-only"])
    assert [s["done"] for s in partial["status"]] == [True, True, False] and partial["rows"] == got["rows"]
    text = md.read_text()
    assert "2 of the 3 planned" in text and "Not run: idsgame-v19 psro" in text and "--report-only" not in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "1"], "at least 2"),
        (["--modes", "pool"], "at least two modes"),
        (["--envs", "idsgame-v99"], "unknown id"),
        (["--total-timesteps", "0"], "at least 1"),
    ],
)
def test_league_comparison_bad_arguments_exit_2(argv, message, capsys):
    from baselines import league_comparison as lc

    with pytest.raises(SystemExit) as e:
        lc.main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_payoff_colour_scale_fits_the_data():
    from baselines.selfplay.report import colour_range

    assert colour_range([[0.02, np.nan], [0.15, 0.1]]) == pytest.approx((0.02, 0.15))
    assert colour_range([0.4, 0.4]) == pytest.approx((0.35, 0.45))  # constant: a window around it
    assert colour_range([np.nan]) == (0.0, 1.0)
