"""The reference's experiment grid (`baselines.reference_grid`): the mapping of all 179 configurations,
the budget and evaluation rules, resumption, bad input, and one tiny run per algorithm family."""

from __future__ import annotations

import csv
import json
import math
import os

import pytest

from baselines.reference_grid import data, run
from baselines.reference_grid.mapping import TRAINERS, build_config, epsilon_schedule, map_config

TSV = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference", "experiments.tsv")


def by_path():
    return {c["path"]: c for c in data.load_configs()}


def test_the_grid_holds_the_reference_configurations():
    configs = data.load_configs()
    paths = [c["path"] for c in configs]
    assert len(configs) == 179 and len(set(paths)) == 179
    if os.path.isfile(TSV):  # the shared listing, where this checkout has it
        with open(TSV, newline="") as f:
            rows = {r["path"]: r for r in csv.DictReader(f, delimiter="\t")}
        assert set(rows) == set(paths)
        for c in configs:
            assert c["env"] == rows[c["path"]]["env"]
            assert c["num_episodes"] == int(float(rows[c["path"]]["num_episodes"]))
    for c in configs:
        assert c["random_play_episode_length"] >= 1
        assert c["seeds"] and all(isinstance(s, int) for s in c["seeds"])


def test_every_configuration_maps_or_says_why_not():
    for ref in data.load_configs():
        m = map_config(ref)
        assert m.differences, ref["path"]  # at least the budget rule is stated
        if m.trainer is None:
            assert m.status == "not mapped"
            continue
        assert m.trainer in TRAINERS and m.status in ("same algorithm", "substitute"), ref["path"]
        if m.status == "substitute":
            assert any("instead" in d for d in m.differences), ref["path"]
        config = build_config(m, ref, 3000, len(m.seeds), run.WINDOWS, "/tmp/unused")  # the trainer's own checks
        assert config["env"] == m.env_id and config["mask_illegal"]


def test_hyperparameters_are_carried_over():
    grid = by_path()
    ref = grid["v7/minimal_defense/tabular_q_learning"]
    m = map_config(ref)
    c = build_config(m, ref, 5000, 5, run.WINDOWS, "/tmp/unused")
    assert (m.trainer, c["lr"], c["gamma"], c["eps_start"]) == ("tabular_q", 0.0005, 0.99, 1.0)
    assert c["eps_end"] == pytest.approx(0.9999**20001) and c["eps_fraction"] == 1.0
    assert m.seeds == [0, 999, 299, 399, 499]

    ref = grid["v19/two_agents/ppo_openai"]
    m = map_config(ref)
    c = build_config(m, ref, 50_000, 5, run.WINDOWS, "/tmp/unused")
    assert (m.trainer, m.status, c["mode"], c["pool_share"]) == ("selfplay", "same algorithm", "pool", 0.5)
    assert (c["lr"], c["gamma"], c["hidden"], c["layers"], c["update_epochs"]) == (1e-4, 1.0, 128, 2, 10)
    assert (c["clip_eps"], c["gae_lambda"], c["ent_coef"], c["max_grad_norm"]) == (0.2, 0.95, 0.001, 0.5)
    assert c["num_envs"] * c["num_steps"] // c["num_minibatches"] == 64
    assert any("alternating" in d for d in m.differences)

    ref = grid["v21/two_agents/ppo_2"]  # the autoregressive policy
    assert build_config(map_config(ref), ref, 50_000, 1, run.WINDOWS, "/tmp/unused")["policy"] == "autoregressive"

    m = map_config(grid["v2/two_agents/dqn"])  # mode 0 on a two-agent id with a random defender
    assert (m.trainer, m.env_id) == ("dqn", "idsgame-random_defense-v9")
    m = map_config(grid["v2/random_attack/dqn"])  # mode 0 on an id whose attacker is the bot
    assert m.learner == "defender" and any("scripted bot" in d for d in m.differences)


def test_epsilon_schedule_matches_the_exponential_one_at_its_ends():
    start, end, frac = epsilon_schedule({"epsilon": 1.0, "epsilon_decay": 0.999, "min_epsilon": 0.01}, 5000)
    assert (start, end) == (1.0, 0.01)
    assert frac == pytest.approx(math.log(0.01) / math.log(0.999) / 5000)
    assert epsilon_schedule({"epsilon": 1.0, "epsilon_decay": 1.0, "min_epsilon": 0.01}, 10) == (1.0, 1.0, 1.0)


def test_budget_and_evaluation_schedule():
    assert run.run_steps(10_000, 1.0, None) == (10_000, False)
    assert run.run_steps(10_000, 0.5, None) == (5_000, True)
    assert run.run_steps(10_000, 1.0, 3_000) == (3_000, True)
    assert run.eval_windows(20, 10) == list(range(1, 11))
    assert run.eval_windows(1, 10) == [10]
    assert run.eval_windows(2, 10) == [5, 10]
    assert run.select(data.load_configs(), ["v7/"]) == [c for c in data.load_configs() if c["path"].startswith("v7/")]
    assert len(run.select(data.load_configs(), ["v1*/two_agents/*"])) == 13


@pytest.mark.parametrize(
    "argv", [["--filter", "v99/"], ["--budget-scale", "0"], ["--max-steps", "-5"], ["--num-seeds", "0"]]
)
def test_bad_input_is_one_sentence_and_exit_2(argv, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        run.main(argv + ["--output-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m baselines.reference_grid: error:")


TINY_EVAL_GAMES = 64  # per seed: with two seeds, 128 games put 3 SE at about 0.13 around an optimum of 0.64


def tiny(path: str) -> dict:
    return {**by_path()[path], "eval_episodes": TINY_EVAL_GAMES}


def committed_optimum(env_id: str) -> float | None:
    """The exact optimum against defend-minimal (`baselines.ceiling`, env seed 0) where the committed
    ceilings hold one whose bounds met."""
    with open(os.path.join(os.path.dirname(run.__file__), "..", "results", "reference_grid", "ceilings.json")) as f:
        rows = {r["env"]: r for r in json.load(f)["results"]}
    r = rows.get(env_id)
    return r["upper"] if r and r["exact"] else None


# One configuration per algorithm family, each at a tiny budget: the trainer, its files and the summary.
FAMILIES = {
    "tabular_q": ("v0/minimal_defense/tabular_q_learning", 300),
    "dqn": ("v0/random_defense/dqn", 200),
    "reinforce": ("v7/minimal_defense/reinforce", 1),  # at least one update: 32 games x 128 steps
    "actor_critic": ("v7/maximal_attack/actor_critic", 1),
    "ppo": ("v14/minimal_defense/ppo", 1),
    "selfplay": ("v0/two_agents/tabular_q_learning", 1),
}


# Two families in the default suite (one value-based, one policy-gradient); the compile-heavy rest
# (DQN, PPO, A2C, self-play: 20-45 s each on the shared 2-core machine) under `-m slow`.
DEFAULT_FAMILIES = ("tabular_q", "reinforce")


@pytest.mark.parametrize(
    "family",
    [f if f in DEFAULT_FAMILIES else pytest.param(f, marks=pytest.mark.slow) for f in sorted(FAMILIES)],
)
def test_tiny_run_of_each_family(family, tmp_path):
    path, steps = FAMILIES[family]
    s = run.run_config(tiny(path), str(tmp_path), 1.0, steps, 2)
    assert s["trainer"] == family and s["capped"] and not s.get("skipped")
    per_seed = s["final_eval_hack_probability_per_seed"]
    assert len(per_seed) == 2
    # each seed's value is a count of whole evaluation games, and the summary is their mean
    assert all(abs(p * TINY_EVAL_GAMES - round(p * TINY_EVAL_GAMES)) < 1e-2 for p in per_seed), per_seed
    assert s["final_eval_hack_probability"] == pytest.approx(sum(per_seed) / 2, abs=1e-4)
    optimum = committed_optimum(s["env_id"]) if s["learner"] == "attacker" else None
    if optimum is not None:  # no attacker beats the exact optimum beyond the games' noise
        pooled = sum(per_seed) / 2
        games = 2 * TINY_EVAL_GAMES
        assert pooled <= optimum + 3 * math.sqrt(optimum * (1 - optimum) / games), (pooled, optimum)
    out = tmp_path / path
    for name in (run.TRAIN_CSV, run.EVAL_CSV, run.CURVES, run.SUMMARY):
        assert (out / name).is_file()
    with open(out / run.EVAL_CSV, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == run.COLUMNS
    assert {int(r["seed"]) for r in rows} == {0, 1} and all(int(r["episodes"]) == TINY_EVAL_GAMES for r in rows)
    last = max(int(r["window"]) for r in rows)
    final_rows = sorted((r for r in rows if int(r["window"]) == last), key=lambda r: int(r["seed"]))
    assert [round(float(r["hack_probability"]), 4) for r in final_rows] == per_seed  # the summary is the file's
    with open(out / run.TRAIN_CSV, newline="") as f:
        train = list(csv.DictReader(f))
    assert sum(int(r["episodes"]) for r in train) > 0
    # Every update of the budget ran, the remainder of the windows included.
    assert max(int(r["env_steps"]) for r in train) == s["steps_run"] >= steps


def test_a_finished_configuration_is_skipped(tmp_path):
    ref = tiny("v0/random_defense/tabular_q_learning")
    first = run.run_config(ref, str(tmp_path), 1.0, 160, 1)
    summary = tmp_path / ref["path"] / run.SUMMARY
    stamp = os.stat(summary).st_mtime_ns
    again = run.run_config(ref, str(tmp_path), 1.0, 160, 1)
    assert again["skipped"] and again["final_eval_hack_probability"] == first["final_eval_hack_probability"]
    assert os.stat(summary).st_mtime_ns == stamp
    # a configuration without its summary (unfinished), here at another budget, runs again
    os.remove(summary)
    assert not run.run_config(ref, str(tmp_path), 1.0, 320, 1).get("skipped")
    with open(summary) as f:
        assert json.load(f)["run"]["steps_per_seed"] == 320


def test_the_committed_report_has_a_result_for_every_configuration():
    """`baselines/REFERENCE_GRID.md` is generated from the committed results; each of the 179
    configurations has its row, with a final evaluation value, and the committed summaries agree."""
    here = os.path.join(os.path.dirname(__file__), "..", "baselines")
    with open(os.path.join(here, "REFERENCE_GRID.md")) as f:
        lines = f.read().splitlines()
    # The per-version sections ("## vN"), not the later tables that also list configurations.
    section, rows = None, []
    for line in lines:
        if line.startswith("## "):
            section = line[3:].split()[0]
        elif section and section[0] == "v" and section[1:].isdigit() and line.startswith("| `v"):
            rows.append(line)
    in_tables = {line.split("`")[1]: line for line in rows if line.count("|") == 9}
    assert set(in_tables) == set(by_path())
    assert not [p for p, line in in_tables.items() if "not run" in line]
    with open(os.path.join(here, "results", "reference_grid", "summaries.jsonl")) as f:
        summaries = data.headline(map(json.loads, f))  # the run each row shows
    assert set(summaries) == set(by_path())
    for path, s in summaries.items():
        p, per_seed = s["final_eval_hack_probability"], s["final_eval_hack_probability_per_seed"]
        assert p == pytest.approx(sum(per_seed) / len(per_seed), abs=1e-4), path  # the seeds' mean
        games = s["run"]["eval_episodes"]
        assert all(abs(x * games - round(x * games)) < 1e-2 for x in per_seed), path  # whole games each
        if p in (0.0, 1.0):  # the rule-of-three bound (tests/test_reference_grid_report.py checks its value)
            assert f"{round(p) * games * len(per_seed):,} of {games * len(per_seed):,} game" in in_tables[path], path
        else:
            assert f"{p:.3f}" in in_tables[path], path
