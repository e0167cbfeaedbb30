"""A configuration of the reference grid run more than once (a capped run, the ladder, its full budget,
either mapping): the results keep every run, the report's row shows the right one, the ladder shows the
rest, and the full budget's time is measured or estimated from the largest run."""

from __future__ import annotations

import csv
import gzip
import json

import pytest

from baselines.reference_grid import data, report, run, sections

PATH = "v7/minimal_defense/tabular_q_learning"


def summary(steps: int, *, full: int = 100_000, mapping: str | None = "faithful", p: float = 0.5, **extra) -> dict:
    s = {
        "path": PATH,
        "trainer": "tabular_q",
        "learner": "attacker",
        "full_steps": full,
        "run": {"steps_per_seed": steps, "eval_episodes": 100},
        "steps_run": steps,
        "capped": steps < full,
        "final_eval_hack_probability": p,
        "final_eval_hack_probability_per_seed": [p] * 5,
        "final_eval_hack_probability_se": 0.01,
        **extra,
    }
    if mapping is not None:
        s["mapping"] = mapping
    return s


def test_the_row_shows_the_full_budget_run_faithful_first_else_the_largest():
    small, ladder, par_full, full = (
        summary(2_000, mapping=None),  # recorded before the mapping was named: faithful
        summary(10_000, mapping="parallel"),
        summary(100_000, mapping="parallel"),
        summary(100_000),
    )
    assert data.mapping_of(small) == "faithful"
    assert data.headline([small, ladder])[PATH] is ladder
    assert data.headline([small, ladder, par_full])[PATH] is par_full
    assert data.headline([full, small, par_full, ladder])[PATH] is full
    assert [s["run"]["steps_per_seed"] for s in data.runs_by_path([full, small, ladder])[PATH]] == [
        2_000,
        10_000,
        100_000,
    ]


def test_the_full_budget_time_is_measured_or_estimated_from_the_largest_run():
    timed = summary(10_000, seconds=30.0, timing={"train": 10.0, "train_steps_per_second_per_seed": 1_000})
    small = summary(2_000, seconds=25.0, timing={"train": 1.0, "train_steps_per_second_per_seed": 100})
    est = data.full_budget_estimate([small, timed])
    # fixed costs (30 - 10 s) plus 100,000 steps at 1,000 steps/s per seed
    assert est == {"seconds": 120.0, "measured": False, "mapping": "faithful", "from_steps": 10_000}
    full = summary(100_000, seconds=77.0, timing={"train": 70.0, "train_steps_per_second_per_seed": 1_500})
    assert data.full_budget_estimate([small, timed, full])["seconds"] == 77.0
    assert data.full_budget_estimate([summary(2_000)]) is None  # no run measured its rate


@pytest.mark.parametrize(
    "seconds, text",
    [
        (42, "42 s"),
        (780, "13 min"),
        (5.2 * 3600, "5.2 h"),
        (3.1 * 86400, "3.1 days"),
        (2.4 * 365.25 * 86400, "2.4 years"),
    ],
)
def test_durations_read_at_a_glance(seconds, text):
    assert sections.fmt_duration(seconds) == text


def _write_run(root, s: dict, hack: float) -> None:
    out = root / s["path"]
    out.mkdir(parents=True)
    (out / run.SUMMARY).write_text(json.dumps(s))
    for name in (run.TRAIN_CSV, run.EVAL_CSV):
        with open(out / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=run.COLUMNS)
            w.writeheader()
            w.writerow({c: 0 for c in run.COLUMNS} | {"hack_probability": hack, "env_steps": s["steps_run"]})


def test_collecting_a_run_keeps_the_other_runs_and_replaces_its_own(tmp_path):
    results = tmp_path / "results"
    first, second = tmp_path / "a", tmp_path / "b"
    _write_run(first, summary(2_000, p=0.1), 0.1)
    report.collect(str(first), str(results))
    _write_run(second, summary(100_000, p=0.9), 0.9)
    report.collect(str(second), str(results))
    # a new results folder starts from the committed runs (as every file the run did not make)
    mine = lambda s: s["path"] == PATH and s["run"]["steps_per_seed"] in (2_000, 100_000)  # noqa: E731
    rows = [s for s in data.load_jsonl(str(results / "summaries.jsonl")) if mine(s)]
    committed = data.load_jsonl(report.readable(report.RESULTS, "summaries.jsonl"))
    assert {s["path"] for s in data.load_jsonl(str(results / "summaries.jsonl"))} == {s["path"] for s in committed}
    assert sorted((s["run"]["steps_per_seed"], s["final_eval_hack_probability"]) for s in rows) == [
        (2_000, 0.1),
        (100_000, 0.9),
    ]
    # the same run collected again replaces its own summary and curves
    (second / PATH / run.SUMMARY).write_text(json.dumps(summary(100_000, p=0.8)))
    report.collect(str(second), str(results))
    rows = [s for s in data.load_jsonl(str(results / "summaries.jsonl")) if mine(s)]
    assert sorted(s["final_eval_hack_probability"] for s in rows) == [0.1, 0.8]
    with gzip.open(results / "curves.csv.gz", "rt", newline="") as f:
        curves = [r for r in csv.DictReader(f) if r["path"] == PATH and int(r["steps_per_seed"]) in (2_000, 100_000)]
    assert sorted((int(r["steps_per_seed"]), r["mapping"], r["kind"]) for r in curves) == [
        (2_000, "faithful", "eval"),
        (2_000, "faithful", "train"),
        (100_000, "faithful", "eval"),
        (100_000, "faithful", "train"),
    ]


def test_the_parallel_mapping_is_judged_against_the_faithful_one_by_the_equivalence_test():
    def pair(faithful, par, games=100):
        f = summary(100_000, p=float(sum(faithful) / 5), timing={"train_steps_per_second_per_seed": 1_000})
        q = summary(
            100_000, p=float(sum(par) / 5), mapping="parallel", timing={"train_steps_per_second_per_seed": 3_000}
        )
        f["final_eval_hack_probability_per_seed"], q["final_eval_hack_probability_per_seed"] = faithful, par
        f["run"]["eval_episodes"] = q["run"]["eval_episodes"] = games
        return f, q

    close = sections.mapping_comparison(*pair([0.90, 0.89, 0.91, 0.90, 0.90], [0.91, 0.90, 0.89, 0.90, 0.91]))
    assert close["verdict"] == "equivalent" and close["on"] == "seeds" and close["speedup"] == 3.0
    apart = sections.mapping_comparison(*pair([0.90, 0.89, 0.91, 0.90, 0.90], [0.50, 0.52, 0.49, 0.51, 0.50]))
    assert apart["verdict"] == "different" and apart["difference"] == pytest.approx(-0.396)
    # every seed of a side ended at 1.0: no spread over seeds, so the pooled games decide
    flat = sections.mapping_comparison(*pair([1.0] * 5, [1.0] * 5, games=1_000))
    assert flat["on"] == "games" and flat["verdict"] == "equivalent"
    few = sections.mapping_comparison(*pair([1.0] * 5, [1.0] * 5, games=1))  # 5 games a side show nothing
    assert few["verdict"] == "neither shown"
    section = "\n".join(sections.mapping_section(data.load_configs(), list(pair([0.9] * 4 + [0.8], [0.9] * 5))))
    assert f"`{PATH}`" in section and "TOST" in section


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--paths", "v0/minimal_defense/tabular_q_learning", "--num-seeds", "1"], "give --num-seeds 2 or more"),
        (["--paths", "v1/minimal_defense/tabular_q_learning"], "has fewer in the reference"),
    ],
)
def test_the_comparison_with_the_reference_refuses_one_seed_a_side(argv, says, capsys, tmp_path):
    """Its equivalence test compares the seeds' final values: with one seed a side it has nothing to
    test with, so the command says so (exit 2) before it trains anything."""
    from baselines.reference_grid import vs_reference

    with pytest.raises(SystemExit) as e:
        vs_reference.main([*argv, "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the equivalence test needs at least two seeds a side" in err and says in err
