"""The report of `baselines.generalization`: one table per side, a row per target, a column per policy."""

from __future__ import annotations

POLICIES = ("mlp generalist", "nodes generalist", "mlp specialist")


def fmt_cell(row: dict | None) -> str:
    if row is None:
        return "—"
    if row.get("hack_probability", "") == "":
        return f"n/a ({row['note']})" if row.get("note") else "n/a"
    return f"{row['hack_probability']:.3f} ± {row['se']:.3f}"


def table(rows: list, side: str) -> list[str]:
    targets = list(dict.fromkeys(r["target"] for r in rows if r["side"] == side))
    cells = {(r["target"], r["policy"]): r for r in rows if r["side"] == side}
    lines = ["| target | " + " | ".join(POLICIES) + " |", "|---" * (len(POLICIES) + 1) + "|"]
    for t in targets:
        lines.append(f"| {t} | " + " | ".join(fmt_cell(cells.get((t, p))) for p in POLICIES) + " |")
    return lines


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
        "seeds). The attacker wants it high, the defender low. `mlp`: separate policy and value MLPs on the "
        "flattened observation; `nodes`: `baselines.node_policy` (self-attention over the nodes, shared "
        "weights, legal-action bits as input).",
        "",
    ]
    titles = {"attacker": "Attackers (against defend-minimal)", "defender": "Defenders (against attack-maximal)"}
    for side in dict.fromkeys(r["side"] for r in rows):
        out += [f"## {titles[side]}", "", *table(rows, side), ""]
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
