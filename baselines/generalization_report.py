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

from baselines import statistics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLISHED_MD = os.path.join(REPO, "baselines", "GENERALIZATION.md")
PUBLISHED_RESULTS = os.path.join(REPO, "baselines", "results", "generalization")

POLICIES = ("mlp generalist", "nodes generalist", "mlp specialist")
# What a row of `baselines.generalization` carries per seed, where it records it: each seed's hack
# probability, on `games / seeds` evaluation games each.
PER_SEED = "hack_probability_per_seed"


def fmt_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    if row.get("hack_probability", "") == "":
        return f"n/a ({row['note']})" if row.get("note") else "n/a"
    p = float(row["hack_probability"])
    if p in (0.0, 1.0) and row.get("games"):
        return statistics.probability_text(p, int(row["games"]))  # an SE of 0 would say nothing
    return f"{p:.3f} ± {float(row['se']):.3f}"


def table(rows: list, side: str) -> list[str]:
    targets = list(dict.fromkeys(r["target"] for r in rows if r["side"] == side))
    cells = {(r["target"], r["policy"]): r for r in rows if r["side"] == side}
    lines = ["| target | " + " | ".join(POLICIES) + " |", "|---" * (len(POLICIES) + 1) + "|"]
    for t in targets:
        lines.append(f"| {t} | " + " | ".join(fmt_cell(cells.get((t, p))) for p in POLICIES) + " |")
    return lines


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
    out = [
        "# Generalization to unseen networks (issue 13)",
        "",
        f"PPO policies trained on networks generated afresh at every reset (family `{args.family}`, "
        f"`baselines.scenarios.PRESETS`: up to {args.train.max_layers} server layers of up to "
        f"{args.train.max_width} servers, {args.train.max_nodes} padded nodes, v3's numbers) and evaluated on "
        f"(a) {args.heldout} held-out networks of the same family, drawn once from another key (held out by "
        "key, not by construction: a small family repeats some topologies), (b) "
        f"{args.heldout} larger networks of family `{args.large_family}` (up to {args.large.max_nodes} nodes; "
        f"the node-wise network only: the MLP's input size is fixed), (c) the built-in {versions} in their "
        "scenario form (padded to the family's size for the MLP), beside a specialist: the same MLP trained "
        "on that version alone (its registered id, the same game) with the same budget.",
        "",
        f"Budget: {args.timesteps:,} environment steps per seed for every training run, {args.seeds} seeds "
        f"(vmapped), {args.num_envs} games per seed. Every cell: hack probability, mean over the {args.seeds} "
        f"seeds, ± its standard error from the evaluation games ({args.eval_games:,} games per seed, "
        "binomial, given the trained seeds and the fixed held-out sets; it leaves out the spread across "
        "seeds, which the per-seed values below show where recorded; where no game or every game was hacked, "
        "the rule-of-three 95% bound instead). The attacker wants it high, the defender low. `mlp`: separate "
        "policy and value MLPs on the flattened observation; `nodes`: `baselines.node_policy` (self-attention "
        "over the nodes, shared weights, legal-action bits as input).",
        "",
    ]
    titles = {"attacker": "Attackers (against defend-minimal)", "defender": "Defenders (against attack-maximal)"}
    for side in dict.fromkeys(r["side"] for r in rows):
        out += [f"## {titles[side]}", "", *table(rows, side), ""]
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
