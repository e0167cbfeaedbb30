"""baselines/REFERENCE_GRID.md is readable: its figures are about 1,200 pixels wide, and a row whose id is
not its folder's version and mode says why in the row. Its statistics are what independent computations
give from the committed results: the rule-of-three bounds, the equivalence verdicts beside the
reference, the rliable aggregates and each row's fraction of its budget."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from baselines.reference_grid import data
from baselines.reference_grid.mapping import map_config, parse_env

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "baselines" / "REFERENCE_GRID.md"


def test_every_figure_the_report_shows_is_legible():
    image = pytest.importorskip("PIL.Image")
    text = REPORT.read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(figures) >= 22  # one per version, and the one beside the reference
    for name in figures:
        width, height = image.open(REPORT.parent / name).size
        assert width >= 1000 and height >= 250, (name, width, height)


def per_version_rows() -> dict[str, str]:
    """The per-version tables' rows by configuration: those under a "## vN" heading (the parallel-against-
    faithful table after them also has 9 bars and starts with a configuration's path)."""
    lines = REPORT.read_text().splitlines()
    headings = [i for i, line in enumerate(lines) if line.startswith("## ")]
    first = next(i for i in headings if lines[i].startswith("## v"))
    last = next(i for i in headings if i > first and not lines[i][3:].split()[0][1:].isdigit())
    return {line.split("`")[1]: line for line in lines[first:last] if line.startswith("| `v") and line.count("|") == 9}


def test_every_substituted_id_is_explained_in_its_row():
    rows = per_version_rows()
    explained = 0
    for c in data.load_configs():
        m = map_config(c)
        version, mode = c["path"].split("/")[:2]
        ref_mode, ref_version = parse_env(c["env"])
        if m.env_id is None:
            continue
        moved = ref_version != int(version[1:]) or (ref_mode or "two_agents") != mode
        env_cell = rows[c["path"]].split("|")[3]
        if moved:
            assert "the reference's config.json in this folder names" in env_cell, rows[c["path"]]
            assert f"v{ref_version}, not {version}" in env_cell or f"not {mode}" in env_cell, rows[c["path"]]
            explained += 1
        if m.env_id != c["env"]:
            assert c["env"] in env_cell and m.env_id in env_cell, rows[c["path"]]
            explained += 1
        if not moved and m.env_id == c["env"]:
            assert env_cell.strip() == f"`{m.env_id}`", rows[c["path"]]  # nothing to explain
    assert explained >= 3  # v3, v4 and v5's maximal_attack/dqn at least


# --- the statistics of the report, checked against independent computations ---------------------------

RESULTS = ROOT / "baselines" / "results" / "reference_grid"


def _summaries() -> list[dict]:
    """The run each configuration's row shows (`data.headline`: its full budget, else its largest)."""
    every = [json.loads(line) for line in (RESULTS / "summaries.jsonl").read_text().splitlines() if line.strip()]
    return list(data.headline(every).values())


def test_no_probability_is_printed_with_a_zero_standard_error():
    text = REPORT.read_text()
    assert "± 0.000 " not in text and "± 0.000 |" not in text
    rows = per_version_rows()
    checked = 0
    for s in _summaries():
        p = s["final_eval_hack_probability"]
        if p not in (0.0, 1.0):
            continue
        games = len(s["final_eval_hack_probability_per_seed"]) * s["run"]["eval_episodes"]
        cell = rows[s["path"]].split("|")[5]
        hacked = 0 if p == 0.0 else games
        assert f"{hacked:,} of {games:,} game" in cell, cell
        bound = float(re.search(r"95% (?:upper|lower) bound ([0-9.]+)", cell).group(1))
        # the rule of three: fewer than 3/n when none of n games was hacked, more than 1 - 3/n when all were
        assert bound == pytest.approx(min(1.0, 3 / games) if p == 0.0 else 1 - 3 / games, abs=6e-4), cell
        checked += 1
    assert checked >= 10  # the committed grid has 14 such rows (0 or 1 over all seeds' games)


def test_same_as_the_reference_is_the_equivalence_test_of_the_committed_seeds():
    """The verdicts of the table beside the reference are two one-sided Welch t-tests at margin 0.05,
    recomputed here with statsmodels' own implementation from the committed per-seed values."""
    weightstats = pytest.importorskip("statsmodels.stats.weightstats")
    vs = json.loads((RESULTS / "vs_reference.json").read_text())
    lines = {
        line.split("`")[1]: line
        for line in REPORT.read_text().splitlines()
        if line.startswith("| `v") and line.count("|") == 13
    }
    assert "margin" in REPORT.read_text() and "±0.05" in REPORT.read_text() and "α = 0.05" in REPORT.read_text()
    for r in vs["rows"]:
        a, b = np.asarray(r["reference_per_seed"]), np.asarray(r["idsjax_per_seed"])
        p, _, _ = weightstats.ttost_ind(a, b, -0.05, 0.05, usevar="unequal")
        welch = stats.ttest_ind(a, b, equal_var=False).pvalue
        expected = "equivalent" if p < 0.05 else "different" if welch < 0.05 else "neither shown"
        cells = [c.strip() for c in lines[r["path"]].split("|")]
        assert cells[9] == expected, (r["path"], p, welch, cells)
        assert r["equivalence"]["verdict"] == expected  # the committed file was re-judged by the same rule
        assert "same" not in r  # the former max(2 SE, 0.05) verdict is gone
    # the example: the former rule called 0.474 against 0.592 the same
    row = next(r for r in vs["rows"] if r["path"] == "v0/minimal_defense/tabular_q_learning")
    assert (round(np.mean(row["reference_per_seed"]), 3), round(np.mean(row["idsjax_per_seed"]), 3)) == (0.474, 0.592)
    assert row["equivalence"]["verdict"] != "equivalent"


def test_aggregates_are_rliable_iqm_of_the_learners_scores():
    """Each trainer's IQM in the report is the 25%-trimmed mean of its learner's per-seed scores (the
    hack probability for an attacker, 1 - it for a defender), computed here from the summaries."""
    text = REPORT.read_text()
    rows = {
        line.split("|")[1].strip(): line
        for line in text.split("## Aggregates")[1].splitlines()[:40]
        if line.count("|") == 8
    }
    by_trainer: dict[str, list] = {}
    for s in _summaries():
        if s["learner"] in ("attacker", "defender") and len(s["final_eval_hack_probability_per_seed"]) == 5:
            scores = [p if s["learner"] == "attacker" else 1 - p for p in s["final_eval_hack_probability_per_seed"]]
            by_trainer.setdefault(s["trainer"], []).append(scores)
    assert set(by_trainer) <= set(rows) and len(by_trainer) >= 4
    for trainer, scores in by_trainer.items():
        cells = [c.strip() for c in rows[trainer].split("|")]
        assert int(cells[2]) == len(scores), trainer
        iqm, lo, hi = (float(x) for x in re.match(r"([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", cells[6]).groups())
        assert iqm == pytest.approx(stats.trim_mean(np.asarray(scores).ravel(), 0.25), abs=5e-4 + 1e-9), trainer
        assert lo <= iqm <= hi and hi - lo < 0.2, (trainer, lo, iqm, hi)
        mean = float(cells[7].split()[0])
        assert mean == pytest.approx(np.mean(scores), abs=5e-4 + 1e-9), trainer


def test_every_row_says_its_fraction_of_the_full_budget():
    rows = per_version_rows()
    for s in _summaries():
        fraction = s["steps_run"] / s["full_steps"]
        cell = rows[s["path"]].split("|")[8]
        if fraction < 1:
            shown = float(re.search(r"([0-9.]+)% of full", cell).group(1))
            assert shown == pytest.approx(100 * fraction, rel=0.06), cell  # two significant figures
            assert "capped" in cell
        else:
            assert "full" in cell and "capped" not in cell, cell


def test_no_attacker_row_beats_the_exact_optimum_beyond_its_games_noise():
    """Every committed run (any budget, either mapping) of an attacker against defend-minimal on an id
    whose exact optimum is known (`ceilings.json`, bounds met) stays within 3 binomial standard errors of
    its pooled evaluation games above that optimum: a row above it would be a bug in the game, the
    trainer or the evaluation, not learning."""
    ceilings = {c["env"]: c for c in json.loads((RESULTS / "ceilings.json").read_text())["results"] if c["exact"]}
    every = [json.loads(line) for line in (RESULTS / "summaries.jsonl").read_text().splitlines() if line.strip()]
    checked = 0
    for s in every:
        c = ceilings.get(s.get("env_id"))
        if c is None or s.get("learner") != "attacker" or s.get("final_eval_hack_probability") is None:
            continue
        games = s["run"]["eval_episodes"] * len(s["final_eval_hack_probability_per_seed"])
        optimum = c["upper"]
        bound = optimum + 3 * np.sqrt(max(optimum * (1 - optimum), 1e-12) / games)
        assert s["final_eval_hack_probability"] <= bound, (s["path"], s["run"]["steps_per_seed"], optimum)
        checked += 1
    assert checked >= 20
