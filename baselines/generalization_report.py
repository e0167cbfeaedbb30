"""The report of `baselines.generalization`: one table per side, a row per target, a column per policy,
and the per-seed values behind every cell where the results hold them.

    python -m baselines.generalization_report                # runs/generalization/GENERALIZATION.md
    python -m baselines.generalization_report --publish      # baselines/GENERALIZATION.md

rebuilds the report from a finished run's `results.json` (`--results`, default the committed one)
without training.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

import numpy as np

from baselines import statistics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED_MD = os.path.join(REPO, "baselines", "GENERALIZATION.md")
PUBLISHED_RESULTS = os.path.join(REPO, "baselines", "results", "generalization")

SPECIALIST = "mlp specialist"
# What a row of `baselines.generalization` carries per seed, where it records it: each seed's hack
# probability, on `games / seeds` evaluation games each.
PER_SEED = "hack_probability_per_seed"
# The aggregates' bootstrap: resamples and the seed of its generator (so the report rebuilds exactly).
AGGREGATE_REPS, AGGREGATE_SEED = 2_000, 0


def policies(rows: list) -> list[str]:
    """The report's columns: the generalists in the order they ran, then the specialist."""
    names = list(dict.fromkeys(r["policy"] for r in rows))
    return [p for p in names if p != SPECIALIST] + ([SPECIALIST] if SPECIALIST in names else [])


def fmt_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    if row.get("hack_probability", "") == "":
        return f"n/a ({row['note']})" if row.get("note") else "n/a"
    p = float(row["hack_probability"])
    if p in (0.0, 1.0) and row.get("games"):
        return statistics.probability_text(p, int(row["games"]))  # an SE of 0 would say nothing
    se = float(row["se"])
    if se < 0.0005:  # three decimals would print "0.000 ± 0.000" for a few games in thousands
        return f"{p:.4f} ± {se:.4f}"
    return f"{p:.3f} ± {se:.3f}"


def table(rows: list, side: str) -> list[str]:
    columns = policies(rows)
    targets = list(dict.fromkeys(r["target"] for r in rows if r["side"] == side))
    cells = {(r["target"], r["policy"]): r for r in rows if r["side"] == side}
    lines = ["| target | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for t in targets:
        lines.append(f"| {t} | " + " | ".join(fmt_cell(cells.get((t, p))) for p in columns) + " |")
    return lines


def side_scores(rows: list, side: str) -> tuple[list[str], dict]:
    """(targets, {policy: seeds x targets}) over the targets every generalist of `side` played, the
    score being the side's own win probability per seed: the hack probability for the attacker, one
    minus it for the defender."""
    generalists = [p for p in policies(rows) if p != SPECIALIST]
    cells = {(r["target"], r["policy"]): r for r in rows if r["side"] == side and r.get(PER_SEED)}
    targets = [
        t
        for t in dict.fromkeys(r["target"] for r in rows if r["side"] == side)
        if all((t, p) in cells for p in generalists)
    ]
    scores = {}
    for p in generalists:
        if not targets:
            break
        m = np.array([[float(x) for x in cells[(t, p)][PER_SEED]] for t in targets]).T  # seeds x targets
        scores[p] = m if side == "attacker" else 1.0 - m
    return targets, scores


def aggregates_section(rows: list) -> list[str]:
    """Per side, each generalist's interquartile mean and mean over seeds x common targets with rliable's
    stratified bootstrap 95% intervals, and the probability that one policy's run beats another's."""
    out = [
        "## Aggregates (rliable)",
        "",
        "Each generalist's score over its seeds and the targets every generalist of the side played: the",
        "side's own win probability per seed and target (the attacker's hack probability; for the defender,",
        "one minus it). Interquartile mean (IQM) and mean with stratified bootstrap 95% intervals (seeds",
        f"resampled within each target, {AGGREGATE_REPS:,} resamples), and the probability of improvement",
        "P(X > Y): the chance that a run of X scores above a run of Y on a target drawn at random.",
        "",
    ]
    shown = False
    for side in dict.fromkeys(r["side"] for r in rows):
        targets, scores = side_scores(rows, side)
        if len(scores) < 1 or not targets:
            continue
        shown = True
        seeds = next(iter(scores.values())).shape[0]
        agg = statistics.aggregate_intervals(scores, ("iqm", "mean"), reps=AGGREGATE_REPS, seed=AGGREGATE_SEED)
        out += [
            f"**{side.capitalize()}s**, {seeds} seeds x {len(targets)} targets ({', '.join(targets)}):",
            "",
            "| policy | IQM [95% CI] | mean [95% CI] |",
            "|---|---|---|",
        ]
        for p, a in agg.items():
            (iqm, ilo, ihi), (mean, mlo, mhi) = a["iqm"], a["mean"]
            out.append(f"| {p} | {iqm:.3f} [{ilo:.3f}, {ihi:.3f}] | {mean:.3f} [{mlo:.3f}, {mhi:.3f}] |")
        names = list(scores)
        pairs = [(x, y) for i, x in enumerate(names) for y in names[i + 1 :]]
        if pairs:
            out += ["", "| X | Y | P(X > Y) [95% CI] |", "|---|---|---|"]
            for x, y in pairs:
                poi, lo, hi = statistics.probability_of_improvement(
                    scores[x], scores[y], reps=AGGREGATE_REPS, seed=AGGREGATE_SEED
                )
                out.append(f"| {x} | {y} | {poi:.3f} [{lo:.3f}, {hi:.3f}] |")
        out.append("")
    return out if shown else []


def per_seed_section(rows: list, seeds: int) -> list[str]:
    """Every cell's value per seed, and the spread across seeds that the tables' binomial SEs leave out:
    the seeds' mean with its Student-t 95% interval (few seeds: a bootstrap would be too narrow). Where
    the results carry no per-seed values, a sentence that says so, and what would record them."""
    cells = [r for r in rows if r.get("hack_probability", "") != ""]
    if not cells or not all(r.get(PER_SEED) for r in cells):
        return [
            "## Per-seed values",
            "",
            f"Not in these results: `results.json` holds every cell pooled over its {seeds} seeds (the mean and",
            "the binomial SE of its games), not each seed's value, so neither the seeds' values nor their spread",
            "can be shown here. They need a re-run of the command below by a `baselines.generalization` that",
            f"records `{PER_SEED}` in every row.",
            "",
        ]
    n = max(len(r[PER_SEED]) for r in cells)
    lines = [
        "## Per-seed values",
        "",
        "Each cell's hack probability per seed, and the seeds' mean ± their standard error with the Student-t",
        f"95% interval over the seeds ({n - 1} degrees of freedom): this spread holds training variance as well",
        "as evaluation noise, which the binomial SEs of the tables above leave out.",
        "",
        "| side | target | policy | " + " | ".join(f"seed {i}" for i in range(n)) + " | mean ± SE [95% t-interval] |",
        "|---" * (n + 4) + "|",
    ]
    for r in cells:
        values = [float(x) for x in r[PER_SEED]]
        shown = [f"{x:.3f}" for x in values] + [""] * (n - len(values))
        if len(values) > 1:
            iv = statistics.t_interval(values)
            spread = f"{iv.mean:.3f} ± {iv.se:.3f} [{iv.low:.3f}, {iv.high:.3f}]"
        else:
            spread = "one seed"
        lines.append(f"| {r['side']} | {r['target']} | {r['policy']} | " + " | ".join(shown) + f" | {spread} |")
    return lines + [""]


def markdown(args, rows: list, meta: dict) -> str:
    versions = ", ".join(f"v{v}" for v in args.version_list)
    shapes = ", ".join(f"`{s}`" for s in args.shape_list)
    out = [
        "# Generalization to unseen networks (issues 13 and 26)",
        "",
        f"PPO policies trained on networks generated afresh at every reset (family `{args.family}`, "
        f"`baselines.scenarios.PRESETS`: up to {args.train.max_layers} server layers of up to "
        f"{args.train.max_width} servers, {args.train.max_nodes} padded nodes, v3's numbers; domain "
        "randomisation) and evaluated on sets that no training reset ever played, by construction "
        "(`idsjax.scenario.splits`): every network of every set, and every built-in version, has its "
        "canonical hash excluded from training, and the run fails if a reset found no network outside "
        f"them. The sets: (a) {args.heldout} distinct networks of the family itself; (b) {args.heldout} "
        f"distinct networks of each variation {shapes} of the family (`idsjax.scenario.splits."
        "FAMILY_VARIATIONS`; the MLP plays only those of its own size, since its input size is fixed); (c) "
        f"the built-in {versions} in their scenario form (padded to the family's size for the MLP), beside "
        "a specialist: the same MLP trained on that version alone (its registered id, the same game) with "
        "the same budget.",
        "",
        f"Budget: {args.timesteps:,} environment steps per seed for every training run, {args.seeds} seeds "
        f"(vmapped), {args.num_envs} games per seed. Every cell: hack probability, mean over the {args.seeds} "
        f"seeds, ± its standard error from the evaluation games ({args.eval_games:,} games per seed, "
        "binomial, given the trained seeds and the fixed held-out sets; it leaves out the spread across "
        "seeds, which the per-seed values and the aggregates below show; where no game or every game was "
        "hacked, the rule-of-three 95% bound instead). The attacker wants it high, the defender low. `mlp`: "
        "separate policy and value MLPs on the flattened observation; `nodes`: `baselines.node_policy` "
        "(shared weights over the node rows, each node reading the mean of the others) with every node's "
        "role and depth appended to its row (`idsjax.node_features`). `dr`: domain randomisation.",
        "",
    ]
    titles = {"attacker": "Attackers (against defend-minimal)", "defender": "Defenders (against attack-maximal)"}
    for side in dict.fromkeys(r["side"] for r in rows):
        out += [f"## {titles[side]}", "", *table(rows, side), ""]
    out += aggregates_section(rows)
    out += per_seed_section(rows, args.seeds)
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in meta["train_seconds"].items())
    out += [
        "## How it was run",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        f"Wall time {meta['wall_seconds']:.0f} s in all, compilation included (training alone: {secs}).",
        f"Machine: {meta['machine']}.",
        "Results: `results.csv` and `results.json` in the output folder.",
        "",
    ]
    return "\n".join(out)


def main(argv=None) -> str:
    """Rebuild the report from a run's `results.json` (no training): its command gives the settings."""
    prog = "python -m baselines.generalization_report"
    p = argparse.ArgumentParser(prog=prog, description="Rebuild GENERALIZATION.md from a run's results.json.")
    p.add_argument(
        "--results",
        default=os.path.join(PUBLISHED_RESULTS, "results.json"),
        help="the run's results.json",
    )
    p.add_argument("--output", default=os.path.join("runs", "generalization", "GENERALIZATION.md"))
    p.add_argument("--publish", action="store_true", help="write baselines/GENERALIZATION.md instead of --output")
    args = p.parse_args(argv)
    try:
        with open(args.results) as f:
            meta = json.load(f)
        rows, command = meta["rows"], meta["command"]
    except (OSError, ValueError, KeyError, TypeError):
        print(f"{prog}: error: {args.results} is not a results.json of baselines.generalization", file=sys.stderr)
        raise SystemExit(2) from None
    from baselines import generalization  # after the arguments are read: it loads JAX and the game

    run_args = generalization.parse_args(shlex.split(command)[3:])  # "python -m baselines.generalization ..."
    text = markdown(run_args, rows, meta)
    out = PUBLISHED_MD if args.publish else args.output
    if os.path.dirname(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(out)
    return text


if __name__ == "__main__":
    main()
