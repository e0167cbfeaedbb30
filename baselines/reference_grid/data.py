"""The committed grid: `configs.json` (the reference's 179 configurations, see `extract.py`)."""

from __future__ import annotations

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS_FILE = os.path.join(HERE, "configs.json")


def load_configs() -> list[dict]:
    with open(CONFIGS_FILE) as f:
        return json.load(f)["configs"]


def learner_score(hack_probability: float, learner: str) -> float:
    """The learning side's win probability: the hack probability for an attacker, its complement for a
    defender (a defender wins every game the attacker does not hack)."""
    if learner == "attacker":
        return hack_probability
    if learner == "defender":
        return 1.0 - hack_probability
    raise ValueError(f"a learner score needs one learning side, got {learner!r}")


def budget_fraction(summary: dict) -> float | None:
    """Environment steps run per seed over the configuration's full budget (None where not run)."""
    if not summary.get("steps_run") or not summary.get("full_steps"):
        return None
    return summary["steps_run"] / summary["full_steps"]


def learner_scores(summaries) -> dict[str, dict]:
    """Per trainer, the scores rliable aggregates: a (seeds, configurations) array of the learner's
    final evaluation win probability (`learner_score`) over its single-learner configurations that ran
    the family's largest number of seeds (a stratified bootstrap resamples seeds within each
    configuration, so all need as many). Two-agent rows have no one learner and are left out; so are
    configurations with fewer seeds (counted in `left_out`). Each entry also holds the configuration
    paths (the array's columns) and their budget fractions."""
    import numpy as np

    by_trainer: dict[str, list[dict]] = {}
    for s in summaries:
        if s.get("trainer") and s.get("learner") in ("attacker", "defender"):
            if s.get("final_eval_hack_probability_per_seed"):
                by_trainer.setdefault(s["trainer"], []).append(s)
    out = {}
    for trainer, rows in sorted(by_trainer.items()):
        seeds = max(len(s["final_eval_hack_probability_per_seed"]) for s in rows)
        kept = [s for s in rows if len(s["final_eval_hack_probability_per_seed"]) == seeds]
        scores = np.array(
            [[learner_score(p, s["learner"]) for p in s["final_eval_hack_probability_per_seed"]] for s in kept]
        ).T
        out[trainer] = {
            "scores": scores,
            "paths": [s["path"] for s in kept],
            "budget_fractions": [budget_fraction(s) for s in kept],
            "seeds": seeds,
            "left_out": len(rows) - len(kept),
        }
    return out


# A configuration may have been run more than once: at several budgets (the ladder, a capped run, its full
# budget) and under either mapping (`mapping.parallel`). `summaries.jsonl` holds every run; a run is
# named by its steps per seed and its mapping.


def mapping_of(summary: dict) -> str:
    """The mapping a run used ('faithful' for runs recorded before there was a choice)."""
    return summary.get("mapping", "faithful")


def run_id(summary: dict) -> tuple[str, int, str]:
    """(path, steps per seed asked for, mapping): what tells one run of a configuration from another."""
    return summary["path"], int(summary["run"]["steps_per_seed"]), mapping_of(summary)


def _rank(summary: dict):
    ran = summary.get("final_eval_hack_probability") is not None
    full = ran and not summary.get("capped")
    faithful = mapping_of(summary) == "faithful"
    # a full-budget run first (the faithful one of two), else the largest budget (faithful on a tie)
    return ran, full, full and faithful, int(summary.get("steps_run") or 0), faithful


def headline(summaries) -> dict[str, dict]:
    """Per configuration path, the run its report row shows: its full-budget run (faithful before
    parallel) where there is one, else its largest budget."""
    best: dict[str, dict] = {}
    for s in summaries:
        if s["path"] not in best or _rank(s) > _rank(best[s["path"]]):
            best[s["path"]] = s
    return best


def runs_by_path(summaries) -> dict[str, list[dict]]:
    """Per configuration path, every run of it, smallest budget first."""
    out: dict[str, list[dict]] = {}
    for s in summaries:
        out.setdefault(s["path"], []).append(s)
    for runs in out.values():
        runs.sort(key=lambda s: (int(s.get("steps_run") or s["run"]["steps_per_seed"]), mapping_of(s)))
    return out


def full_budget_estimate(runs: list[dict]) -> dict | None:
    """The time a configuration's full budget takes on the machine that ran `runs`: measured where a run
    had the full budget, else estimated from the largest run that measured its training rate, as that
    run's fixed costs (compilation and evaluation: its time less its training) plus the full budget at
    its training steps per second per seed (the seeds train side by side). None where no run measured."""
    ran = [s for s in runs if s.get("seconds") is not None]
    full = [s for s in ran if not s.get("capped")]
    if full:
        s = max(full, key=_rank)
        return {
            "seconds": float(s["seconds"]),
            "measured": True,
            "mapping": mapping_of(s),
            "from_steps": s["steps_run"],
        }
    timed = [s for s in ran if (s.get("timing") or {}).get("train_steps_per_second_per_seed")]
    if not timed:
        return None
    s = max(timed, key=lambda s: int(s["steps_run"]))
    t = s["timing"]
    fixed = max(0.0, float(s["seconds"]) - float(t["train"]))
    return {
        "seconds": fixed + s["full_steps"] / float(t["train_steps_per_second_per_seed"]),
        "measured": False,
        "mapping": mapping_of(s),
        "from_steps": s["steps_run"],
    }


# where the committed results live, relative to baselines/ (the report links its figures there)
RESULTS_LINK = "results/reference_grid"


def load_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_json(path: str):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)
