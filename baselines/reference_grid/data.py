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
