"""The grid report's sections beyond the per-version tables: the comparison with the reference (an
equivalence test with a stated margin), the budget ladder, the two on-policy mappings compared, the
time each configuration took, and the rliable aggregates with their performance profiles."""

from __future__ import annotations

import os

import numpy as np

from baselines import statistics
from baselines.reference_grid import data, style

EQUIVALENCE_MARGIN = 0.05  # hack probability: the floor of the former max(2 SE, 0.05) rule, now a margin
EQUIVALENCE_ALPHA = 0.05


def equivalence_sentence() -> str:
    return (
        "'Same' is decided by two one-sided Welch t-tests (TOST) on the seeds' final values (unpaired: the two "
        "sides play independent games, though each pair of seeds shares a layout), with an equivalence margin "
        f"of ±{EQUIVALENCE_MARGIN:g} in hack probability, stated before the test: equivalent when the two mean "
        f"final hack probabilities are shown to differ by less than the margin at α = {EQUIVALENCE_ALPHA:g} (the "
        f"{1 - 2 * EQUIVALENCE_ALPHA:.0%} interval of the difference lies inside ±{EQUIVALENCE_MARGIN:g}); different when Welch's two-sided t-test rejects equal means at "
        f"α = {EQUIVALENCE_ALPHA:g}; otherwise neither is shown (with five seeds a side and seed-to-seed spreads "
        "of 0.05-0.17, most rows cannot show either). The former rule, a difference of at most max(2 SE, 0.05), "
        "called 0.474 against 0.592 the same."
    )


def note_without_rule(note: str) -> str:
    """A comparison's note without its closing sentence on what 'same' means: the former rule's, in a file
    written before the equivalence test, or this rule's (the report states the rule itself)."""
    for marker in (" 'Same' means", " 'Same' is decided"):
        note = note.split(marker)[0]
    return note


def equivalence(row: dict) -> dict:
    """The TOST verdict of one vs_reference row from its per-seed final values (reference against idsjax)."""
    e = statistics.tost_samples(
        row["reference_per_seed"], row["idsjax_per_seed"], EQUIVALENCE_MARGIN, EQUIVALENCE_ALPHA
    )
    low, high = e.interval()
    if e.equivalent:
        verdict = "equivalent"
    elif e.p_difference < EQUIVALENCE_ALPHA:
        verdict = "different"
    else:
        verdict = "neither shown"
    return {
        "difference": e.difference,
        "difference_interval": [low, high],
        "difference_interval_level": 1 - 2 * EQUIVALENCE_ALPHA,
        "tost_p": e.p_value,
        "welch_p": e.p_difference,
        "welch_df": e.df,
        "margin": EQUIVALENCE_MARGIN,
        "alpha": EQUIVALENCE_ALPHA,
        "verdict": verdict,
    }


def vs_reference_section(vs: dict) -> list[str]:
    level = f"{1 - 2 * EQUIVALENCE_ALPHA:.0%}"
    note = note_without_rule(vs.get("note", ""))
    lines = [
        "## Beside the reference (its own tabular Q-learning, gym-idsgame 1.0.13)",
        "",
        note,
        "",
        equivalence_sentence(),
        "",
        f"Command: `{vs.get('command', '')}`",
        "",
        "| configuration | episodes | seeds | reference: final eval hack p | idsjax: final eval hack p | "
        f"difference [{level} CI] | TOST p (±{EQUIVALENCE_MARGIN:g}) | Welch p | same? "
        "| reference s | idsjax s | wall-time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in vs["rows"]:
        e = equivalence(r)  # from the per-seed values, whatever verdict the file stored
        lo, hi = e["difference_interval"]
        lines.append(
            f"| `{r['path']}` | {r['episodes']:,} | {r['seeds']} | {r['reference_mean']:.3f} ± {r['reference_se']:.3f} "
            f"| {r['idsjax_mean']:.3f} ± {r['idsjax_se']:.3f} | {e['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
            f"| {style.fmt_p(e['tost_p'])} | {style.fmt_p(e['welch_p'])} | {e['verdict']} "
            f"| {r['reference_seconds']:.1f} | {r['idsjax_seconds']:.1f} | {r['reference_seconds'] / r['idsjax_seconds']:.1f}× |"
        )
    lines += [
        "",
        "Difference: reference minus idsjax. Learning curves (evaluation hack probability, mean over seeds, per evaluation):",
        "",
    ]
    for r in vs["rows"]:
        lines.append(f"- `{r['path']}`: reference {r['reference_curve']}; idsjax {r['idsjax_curve']}")
    if vs.get("figure"):
        lines += ["", f"![beside the reference]({vs['figure']})"]
    return lines + [""]


def load_runs_info(path: str) -> list[dict]:
    """The commands that made the committed runs (`run.json`: {"runs": [{label, command, note}]})."""
    info = data.load_json(path) or {}
    return list(info.get("runs", [info] if info.get("command") else []))


def _rung(s: dict) -> tuple[int, str]:
    return int(s["run"]["steps_per_seed"]), data.mapping_of(s)


def _rung_name(rung: tuple[int, str]) -> str:
    return f"{rung[0]:,} steps ({rung[1]})"


def ladder_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Every configuration without a full-budget run: its final evaluation hack probability at each
    budget it ran (the ladder), each with its fraction of the full budget, and the time its full budget
    would take on this CPU (`data.full_budget_estimate`)."""
    runs = data.runs_by_path(every_run)
    short = [c for c in configs if c["path"] in runs and all(s.get("capped") for s in runs[c["path"]])]
    if not short:
        return []
    rungs = sorted({_rung(s) for c in short for s in runs[c["path"]] if s.get("capped")})
    lines = [
        "## Budget ladder: where the configurations without a full-budget run are heading",
        "",
        f"The {len(short)} configurations whose full budget no run reached (most are the reference's nominal",
        "10^8-episode budgets, 'until stopped'), at every budget they ran: the final evaluation hack probability,",
        "mean ± SE over the seeds, with the run's fraction of the full budget. The ladder's rungs use the",
        "parallel mapping for on-policy configurations (`--mapping parallel`: many games per update, the same",
        "environment-step budget; see each configuration's differences); tabular Q and DQN have no parallel",
        "variant and run faithfully. The last column estimates the full budget's time on this CPU from the",
        "largest rung's training rate (`baselines/reference_grid/data.py: full_budget_estimate`): compilation and",
        "evaluation as measured plus the full budget at that rate, loaded-machine figures as the rungs ran.",
        "",
        "| configuration | trainer | full budget (steps/seed) | "
        + " | ".join(_rung_name(r) for r in rungs)
        + " | full budget, est. CPU time |",
        "|---|---|---|" + "---|" * len(rungs) + "---|",
    ]
    for c in short:
        by_rung = {_rung(s): s for s in runs[c["path"]]}
        cells = []
        for r in rungs:
            s = by_rung.get(r)
            if s is None or s.get("final_eval_hack_probability") is None:
                cells.append("")
                continue
            f = data.budget_fraction(s)
            cells.append(f"{style.result_cell(s, c['eval_episodes'])} ({style.fmt_percent(f)})")
        est = data.full_budget_estimate(runs[c["path"]])
        head = runs[c["path"]][-1]
        lines.append(
            f"| `{c['path']}` | {head.get('trainer') or '—'} | {head.get('full_steps', 0):,} | "
            + " | ".join(cells)
            + f" | {fmt_duration(est['seconds']) + ' (' + est['mapping'] + ')' if est else ''} |"
        )
    return lines + [""]


def mapping_comparison(faithful: dict, par: dict) -> dict:
    """The parallel mapping against the faithful one on one configuration at one budget: the difference
    of the final hack probabilities (parallel − faithful) judged by the grid's equivalence test (TOST at
    `EQUIVALENCE_MARGIN`) on the seeds' final values, or, where a side's seeds all ended equal (no spread
    to estimate an SE from), on the pooled evaluation games (Agresti-Caffo); and the training speed-up."""
    a = np.asarray(par["final_eval_hack_probability_per_seed"], float)
    b = np.asarray(faithful["final_eval_hack_probability_per_seed"], float)
    if a.size > 1 and b.size > 1 and a.std() > 0 and b.std() > 0:
        e = statistics.tost_samples(a, b, EQUIVALENCE_MARGIN, EQUIVALENCE_ALPHA)
        on = "seeds"
    else:
        games = int(par["run"]["eval_episodes"])
        e = statistics.tost_proportions(
            int(round(a.sum() * games)),
            a.size * games,
            int(round(b.sum() * games)),
            b.size * games,
            EQUIVALENCE_MARGIN,
            EQUIVALENCE_ALPHA,
        )
        on = "games"
    rate = lambda s: (s.get("timing") or {}).get("train_steps_per_second_per_seed")  # noqa: E731
    verdict = "equivalent" if e.equivalent else "different" if e.p_difference < EQUIVALENCE_ALPHA else "neither shown"
    return {
        "difference": float(a.mean() - b.mean()),
        "interval": e.interval(),
        "tost_p": e.p_value,
        "p_difference": e.p_difference,
        "verdict": verdict,
        "on": on,
        "speedup": rate(par) / rate(faithful) if rate(par) and rate(faithful) else None,
    }


def mapping_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Every configuration run under both mappings at the same budget: does the parallel mapping reach
    the place the faithful one does, and how much faster does it train?"""
    runs = data.runs_by_path(every_run)
    pairs = []
    for c in configs:
        by = {(int(s["run"]["steps_per_seed"]), data.mapping_of(s)): s for s in runs.get(c["path"], [])}
        for (steps, mapping), par in sorted(by.items()):
            faithful = by.get((steps, "faithful"))
            if mapping == "parallel" and faithful and par.get("final_eval_hack_probability") is not None:
                pairs.append((c, steps, faithful, par))
    if not pairs:
        return []
    level = f"{1 - 2 * EQUIVALENCE_ALPHA:.0%}"
    lines = [
        "## The parallel mapping against the faithful one",
        "",
        "On-policy configurations run under both mappings at the same budget (the full one unless the row says",
        "otherwise): the final evaluation hack probability of each, their difference (parallel − faithful) with",
        f"its {level} interval, and the same equivalence test as beside the reference (TOST, margin",
        f"±{EQUIVALENCE_MARGIN:g}, α = {EQUIVALENCE_ALPHA:g}, stated before the runs), on the seeds' final values, or on the",
        "pooled evaluation games where one side's seeds all ended equal; then the training rate of the parallel",
        "mapping over the faithful one's (environment steps per second per seed, compilation excluded).",
        "",
        f"| configuration | budget | faithful | parallel | difference [{level} CI] | TOST p | verdict | training speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, steps, faithful, par in pairs:
        m = mapping_comparison(faithful, par)
        lo, hi = m["interval"]
        lines.append(
            f"| `{c['path']}` | {steps:,} steps ({style.fmt_fraction(data.budget_fraction(faithful))}) "
            f"| {style.result_cell(faithful, c['eval_episodes'])} | {style.result_cell(par, c['eval_episodes'])} "
            f"| {m['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {style.fmt_p(m['tost_p'])} | {m['verdict']}"
            + (" (games)" if m["on"] == "games" else "")
            + (f" | {m['speedup']:.1f}× |" if m["speedup"] else " | |")
        )
    return lines + [""]


def fmt_duration(seconds: float) -> str:
    """'42 s', '13 min', '5.2 h', '3.1 days', '2.4 years': a duration a reader takes in at once."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (1 if unit in ("min", "h") else 2):
            value = seconds / size
            return f"{value:.2g} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{seconds:.0f} s"


def time_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Per trainer: how many configurations ran their full budget and in how long, and the estimated
    time of the rest at their full budgets on this CPU."""
    runs = data.runs_by_path(every_run)
    rows: dict[str, dict] = {}
    for c in configs:
        if c["path"] not in runs:
            continue
        est = data.full_budget_estimate(runs[c["path"]])
        trainer = runs[c["path"]][-1].get("trainer") or "—"
        row = rows.setdefault(trainer, {"configs": 0, "full": 0, "measured": 0.0, "estimated": 0.0, "unknown": 0})
        row["configs"] += 1
        if est is None:
            row["unknown"] += 1
        elif est["measured"]:
            row["full"] += 1
            row["measured"] += est["seconds"]
        else:
            row["estimated"] += est["seconds"]
    lines = [
        "## Time to the full budget",
        "",
        "Per trainer: the configurations that ran their full budget and the time they took (all seeds side by",
        "side, compilation included), and the estimated time of the others at their full budgets on this CPU",
        "(as in the ladder). A GPU estimate needs the grid's training rate measured on one: no GPU was lent to",
        "this project's sessions, so it is not given (`benchmarks/device_check.sh` is the prepared measurement).",
        "",
        "| trainer | configurations | at full budget | their time | the others, est. CPU time at full budget |",
        "|---|---|---|---|---|",
    ]
    for trainer, r in sorted(rows.items()):
        rest = r["configs"] - r["full"]
        lines.append(
            f"| {trainer} | {r['configs']} | {r['full']} | {fmt_duration(r['measured']) if r['full'] else ''} | "
            + "; ".join(
                (
                    [f"{fmt_duration(r['estimated'])} ({rest - r['unknown']} configurations)"]
                    if rest - r["unknown"]
                    else []
                )
                + ([f"{r['unknown']} not timed by any run"] if r["unknown"] else [])
            )
            + " |"
        )
    return lines + [""]


AGGREGATE_FIGURE = "aggregates.png"
AGGREGATE_REPS = 10_000
PROFILE_TAUS = 101


def aggregates_section(summaries: list[dict]) -> list[str]:
    """Per trainer, rliable's interquartile mean of the learner's final win probability over every
    (seed, configuration) with its 95% stratified bootstrap interval, and the mean likewise; each row with
    its configurations' fractions of their full budgets. It links the performance profiles that
    `draw_profiles` draws."""
    families = data.learner_scores(summaries)
    if not families:
        return []
    agg = statistics.aggregate_intervals(
        {t: f["scores"] for t, f in families.items()}, metrics=("iqm", "mean"), reps=AGGREGATE_REPS, seed=0
    )
    lines = [
        "## Aggregates over seeds and configurations (rliable)",
        "",
        "Score: the learning side's final evaluation win probability per seed and configuration (an attacker's",
        "hack probability, a defender's 1 − hack probability). Per trainer, over its single-learner",
        "configurations with the family's full number of seeds (two-agent rows have no one learner; rows with",
        "fewer seeds cannot share a stratified bootstrap and are counted as left out): the interquartile mean",
        "(IQM) of all its scores and their mean, each with a 95% stratified bootstrap interval (seeds resampled",
        f"within each configuration, {AGGREGATE_REPS:,} resamples, NumPy seed 0; rliable's percentile method).",
        "The trainers cover different configurations and ran at the budgets of the tables above, so each row",
        "says what that trainer reached at this run's budget on its own configurations: it does not rank the",
        "algorithms, nor say where they would be at their full budgets. No comparison between trainers was",
        "stated before the run; none is tested here.",
        "",
        "| trainer | configurations | seeds each | left out | budget run, % of full: median (range) | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, f in families.items():
        fr = [x for x in f["budget_fractions"] if x is not None]
        budget = (
            f"{style.fmt_percent(float(np.median(fr)))} ({style.fmt_percent(min(fr))} – {style.fmt_percent(max(fr))})"
            if fr
            else ""
        )
        iqm, mean = agg[t]["iqm"], agg[t]["mean"]
        lines.append(
            f"| {t} | {len(f['paths'])} | {f['seeds']} | {f['left_out']} | {budget} "
            f"| {iqm[0]:.3f} [{iqm[1]:.3f}, {iqm[2]:.3f}] | {mean[0]:.3f} [{mean[1]:.3f}, {mean[2]:.3f}] |"
        )
    lines += [
        "",
        "Performance profiles: the fraction of (seed, configuration) runs whose score exceeds τ, with 95%",
        "stratified bootstrap bands (rliable).",
        "",
        f"![performance profiles]({data.RESULTS_LINK}/figures/{AGGREGATE_FIGURE})",
        "",
    ]
    return lines


def draw_profiles(summaries: list[dict], figures: str) -> None:
    """The performance profile of every trainer's learner scores (`data.learner_scores`), with rliable's
    stratified bootstrap bands, into `figures/aggregates.png`."""
    families = data.learner_scores(summaries)
    if not families:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.linspace(0.0, 1.0, PROFILE_TAUS)
    named = {f"{t} ({len(f['paths'])} configurations)": f["scores"] for t, f in families.items()}
    profiles, cis = statistics.performance_profiles(named, taus, reps=1_000, seed=0)
    fig, ax = plt.subplots(figsize=(style.FIGURE_WIDTH_INCHES, 4.5))
    statistics.plot_performance_profiles(
        profiles, cis, taus, ax, xlabel="learner's final win probability τ (runs at this grid's budgets)"
    )
    ax.legend(fontsize=10)
    fig.tight_layout()
    os.makedirs(figures, exist_ok=True)
    fig.savefig(os.path.join(figures, AGGREGATE_FIGURE), dpi=style.FIGURE_DPI)
    plt.close(fig)
