"""The league comparison's outputs: the per-seed and statistics CSV files, the payoff-matrix figures, and
the report (what ran, the tables, what the statistics support) that `--selfplay-md` splices into
SELFPLAY.md. Written by `baselines.league_comparison` from its runs' rows."""

import csv
import os
from pathlib import Path

import numpy as np

from baselines.league_statistics import ALPHA, PREREGISTERED, family_size, replication

HEADING = "### League modes compared"

# (column, eval.json source, meaning); "exploit:" reads exploitability[...]["per_seed"] (the chosen
# responder's fresh score), "exploit_br:" exploitability[...]["best_response"]["per_seed"] (the trained
# best response's own), otherwise per_seed[entry]["hack_probability"]. Higher is worse for the assessed
# side in the first four.
FIGURES = [
    (
        "defender_exploitability",
        "exploit:defender_exploitability",
        "the strongest responding attacker's hack probability against the final defender (higher: worse defender)",
    ),
    (
        "attacker_exploitability",
        "exploit:attacker_exploitability",
        "one minus the hack probability the strongest responding defender holds the final attacker to "
        "(higher: worse attacker)",
    ),
    (
        "defender_exploitability_br",
        "exploit_br:defender_exploitability",
        "the same, by the trained best-response attacker alone",
    ),
    (
        "attacker_exploitability_br",
        "exploit_br:attacker_exploitability",
        "the same, by the trained best-response defender alone",
    ),
    ("selfplay_hack_p", "final", "the final attacker against the final defender"),
    ("att_vs_random_defense", "attacker_vs_random_defense", "the final attacker against random_defense"),
    ("att_vs_defend_minimal", "attacker_vs_defend_minimal", "the final attacker against defend_minimal"),
    ("def_vs_random_attack", "defender_vs_random_attack", "the final defender against random_attack"),
    ("def_vs_attack_maximal", "defender_vs_attack_maximal", "the final defender against attack_maximal"),
]

# --- writing --------------------------------------------------------------------------------------


def write_outputs(args, command: str, rows, stats, status) -> None:
    import shutil

    out = args.output_dir
    if rows:
        write_csv(os.path.join(out, "league_comparison.csv"), rows)
    if stats:
        write_csv(os.path.join(out, "league_comparison_stats.csv"), stats)
    figures = payoff_figures(args, status)
    if args.publish:  # the small outputs, for the repository (the runs' checkpoints stay in --output-dir)
        os.makedirs(os.path.join(args.publish, "figures"), exist_ok=True)
        for name in ("league_comparison.csv", "league_comparison_stats.csv"):
            if os.path.isfile(os.path.join(out, name)):
                shutil.copy(os.path.join(out, name), os.path.join(args.publish, name))
        for env_id, path in list(figures.items()):
            figures[env_id] = shutil.copy(path, os.path.join(args.publish, "figures", os.path.basename(path)))
    text = report(args, command, rows, stats, status, figures)
    with open(os.path.join(out, "league_comparison.md"), "w") as f:
        f.write(text)
    if args.publish:
        with open(os.path.join(args.publish, "league_comparison.md"), "w") as f:
            f.write(text)
    if args.selfplay_md:
        replace_section(args.selfplay_md, text)


def write_csv(path: str, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


def read_payoff(path: str) -> np.ndarray | None:
    """Seed 0's payoff matrix from a run's payoff_matrix.csv (NaN where a snapshot was never taken)."""
    if not os.path.isfile(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    names = rows[0][2:]
    m = np.full((len(names), len(names)), np.nan)
    for r in rows[1:]:
        if r[0] == "0":
            i = names.index(r[1])
            m[i] = [float(x) if x != "" else np.nan for x in r[2:]]
    return m


def payoff_figures(args, status) -> dict[str, str]:
    """One figure per env: each mode's population payoff matrix (seed 0) side by side, one colour
    scale fitted to the data of all panels (so panels compare, and the scale spans what occurs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baselines.selfplay.report import colour_range

    made = {}
    os.makedirs(os.path.join(args.output_dir, "figures"), exist_ok=True)
    for env_id in args.envs:
        mats = {
            s["mode"]: read_payoff(os.path.join(args.output_dir, env_id, s["mode"], "payoff_matrix.csv"))
            for s in status
            if s["env"] == env_id and s["done"]
        }
        mats = {k: v for k, v in mats.items() if v is not None}
        if not mats:
            continue
        vmin, vmax = colour_range(np.concatenate([m.ravel() for m in mats.values()]))
        fig, axes = plt.subplots(1, len(mats), figsize=(3.2 * len(mats) + 1, 3.4), squeeze=False)
        for ax, (mode, m) in zip(axes[0], mats.items()):
            im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap="viridis")
            size = m.shape[0]
            labels = [f"s{i}" for i in range(size - 1)] + ["final"]
            ax.set_xticks(range(size), labels, rotation=90, fontsize=6)
            ax.set_yticks(range(size), labels, fontsize=6)
            ax.set_title(mode, fontsize=9)
            ax.set_xlabel("defender", fontsize=7)
        axes[0][0].set_ylabel("attacker", fontsize=7)
        fig.colorbar(im, ax=list(axes[0]), label=f"hack probability ({vmin:.2f}-{vmax:.2f})", shrink=0.85)
        fig.suptitle(f"{env_id}: population payoff matrices (seed 0)", fontsize=10)
        path = os.path.join(args.output_dir, "figures", f"payoff_{env_id}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        made[env_id] = path
    return made


def _cell(values, games: int | None = None) -> str:
    """Mean ± standard deviation over seeds; where every seed's probability from `games` games is 0 (or
    every one 1), the games together and their rule-of-three bound instead of a bare 0.000 ± 0.000."""
    v = np.asarray(values, np.float64)
    if games and v.size and (np.all(v == 0.0) or np.all(v == 1.0)):
        from baselines.statistics import probability_text

        return probability_text(float(v[0]), games * v.size)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


TIMES_NOTE = (
    "The times are those of the invocation that finished each run, on a shared machine: its wall time "
    "counts the time the process waited for a core or sat paused (as a long run on a shared machine "
    "may be, while other measurements run), and where the run was resumed it counts only that last invocation, so a wall "
    "time is not a compute time; CPU time (where recorded) counts neither. The table's train s is the "
    "training alone, summed over every invocation of a resumed run."
)


def run_times(s: dict) -> str:
    """One run's times for the "What ran" line: wall time, CPU time where recorded, and where it resumed."""
    parts = [f"{s['wall_seconds']:.0f} s wall"]
    if s.get("cpu_seconds") not in (None, ""):
        parts.append(f"{s['cpu_seconds']:.0f} s CPU")
    if s.get("resumed_at") not in (None, ""):
        parts.append(f"resumed at {int(s['resumed_at']):,} steps per seed")
    return ", ".join(parts)


def table(rows, status, games: dict | None = None) -> list[str]:
    """The league table in markdown: per env and mode that ran, each figure's mean ± standard deviation
    over seeds (`games`: each column's games per seed, for the cells where no game, or every game, was
    a hack)."""
    games = games or {}
    ran = [s for s in status if s["done"]]
    cols = [c for c, _, _ in FIGURES if any(c in r for r in rows)]
    lines = [
        "| env | mode | seeds | steps/seed | train s (all seeds) | " + " | ".join(cols) + " |",
        "|---|---|---|---|---|" + "---|" * len(cols),
    ]
    for s in ran:
        rs = [r for r in rows if r["env"] == s["env"] and r["mode"] == s["mode"]]
        lines.append(
            f"| {s['env']} | {s['mode']} | {len(rs)} | {rs[0]['env_steps']:,} | {rs[0]['train_seconds']:.0f} | "
            + " | ".join(
                _cell([r[c] for r in rs if c in r], games.get(c)) if any(c in r for r in rs) else "" for c in cols
            )
            + " |"
        )
    return lines


def column_games(args) -> dict[str, int]:
    """Games per seed behind each column: exploitability's fresh games, or the evaluation's."""
    return {
        c: args.br_eval_episodes if c.startswith(("defender_expl", "attacker_expl")) else args.eval_episodes
        for c, _, _ in FIGURES
    }


def report(args, command, rows, stats, status, figures) -> str:
    ran = [s for s in status if s["done"]]
    planned = [(e, m) for e in args.envs for m in args.modes]
    finished = {(s["env"], s["mode"]) for s in ran}
    missing = [{"env": e, "mode": m} for e, m in planned if (e, m) not in finished]  # failed or not reached
    lines = [
        HEADING,
        "",
        f"Generated by `{command}` (`baselines/league_comparison.py`). Planned: {', '.join(args.envs)} x "
        f"{', '.join(args.modes)}, {args.seeds} seeds per mode (vmapped, paired across modes: the same "
        f"`--seed {args.seed}`), {args.total_timesteps:,} environment steps per seed, best responses as long, "
        f"{args.eval_episodes} evaluation games per match-up, {args.payoff_episodes} per payoff pair, "
        f"{args.br_eval_episodes} per exploitability responder (selection) and as many fresh ones for the "
        f"responder chosen, {args.policy} policies" + (f", extra options `{args.extra}`" if args.extra else "") + ".",
        "",
        f"**What ran: {len(ran)} of the {len(planned)} planned (env, mode) runs**"
        + (": " + ", ".join(f"{s['env']} {s['mode']} ({run_times(s)})" for s in ran) if ran else "")
        + "."
        + (" Not run: " + ", ".join(f"{s['env']} {s['mode']}" for s in missing) + "." if missing else "")
        + " Nothing below is about a run that is not listed here. "
        + TIMES_NOTE,
        "",
        "Figures (per seed, then mean ± standard deviation over seeds in the table): "
        + "; ".join(f"`{c}`: {meaning}" for c, _, meaning in FIGURES)
        + ". Exploitability per seed: every responder (the trained best response greedy and sampled, each "
        f"scripted bot of the responder's side, each pool member) is scored on the same {args.br_eval_episodes:,} "
        f"games, and the strongest is replayed on {args.br_eval_episodes:,} fresh games, which give the value "
        "(not the maximum of noisy estimates, which is biased upward); the CSV has each seed's responder, its SE "
        "and its score on the games that chose it (`_selected_on`).",
        "",
    ]
    if rows:
        lines += table(rows, status, column_games(args))
        se = [r[f"{c}_se"] for r in rows for c in ("defender_exploitability", "attacker_exploitability")]
        luck = [
            r[f"{c}_selected_on"] - r[c]
            for r in rows
            for c in ("defender_exploitability", "attacker_exploitability")
            if f"{c}_selected_on" in r
        ]
        lines += [
            "",
            f"Evaluation standard error of one seed's exploitability: median {np.median(se):.3f}, "
            f"max {np.max(se):.3f} (the spread over seeds above is training variance plus this noise)."
            + (
                f" The chosen responders scored {np.mean(luck):+.4f} on average higher on the games that chose "
                f"them than on the fresh ones ({len(luck)} seeds x sides): the selection's luck, which the "
                "fresh games leave out."
                if luck
                else ""
            ),
            "",
        ]
    rep = replication(rows, args)
    if rep is not None:
        lines += replication_text(rep) + [""]
    if stats:
        n_seeds = min(s["seeds"] for s in stats)
        m = family_size(args.envs, args.modes)
        made = (
            "" if len(stats) == m else f"; {len(stats)} made so far, the others count as p = 1 until their runs finish"
        )
        lines += [
            f"**Exploratory paired comparisons** (mode a − mode b over seeds; 95% t-interval of the mean "
            f"difference; exact two-sided sign-flip p-value, Holm-adjusted over all {m} planned comparisons as "
            f"one family{made}, as SELFPLAY.md fixed before the run). With {n_seeds} seeds the smallest "
            f"attainable p is {2 / 2**n_seeds:.4f}" + holm_floor(n_seeds, m),
            "",
            "| env | figure | a | b | seeds | mean a | mean b | a − b | 95% t-interval | p | p (Holm, all) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in stats:
            lines.append(
                f"| {r['env']} | {r['figure']} | {r['mode_a']} | {r['mode_b']} | {r['seeds']} | {r['mean_a']:.3f} | "
                f"{r['mean_b']:.3f} | {r['diff']:+.3f} | [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
                f"{r['p']:.4f} | {r['p_holm']:.4f} |"
            )
        lines += ["", "**What holds.** " + conclusions(stats, m), ""]
    for env_id, path in figures.items():
        rel = os.path.relpath(path, os.path.dirname(args.selfplay_md) if args.selfplay_md else args.output_dir)
        lines += [f"![payoff matrices {env_id}]({rel})", ""]
    where = args.publish or args.output_dir
    lines += [
        f"Per-seed rows: `{os.path.join(where, 'league_comparison.csv')}`; statistics: "
        f"`{os.path.join(where, 'league_comparison_stats.csv')}`.",
        "",
    ]
    return "\n".join(lines)


def replication_text(rep: dict) -> list[str]:
    """The pre-registered replication's paragraph: its outcome, whichever way it went."""
    pre = PREREGISTERED
    head = (
        f"**Pre-registered replication** (SELFPLAY.md, commit {pre['commit']}, before the run): on {pre['env']}, "
        f"{pre['a']} − {pre['b']} of `{pre['primary'][0]}` over {pre['seeds']} fresh seeds (`--seed {pre['seed']}`), "
        f"exact one-sided sign-flip test ({pre['primary'][1]}), alpha {pre['alpha']}."
    )
    if not rep["done"]:
        return [head + " **Not yet decided**: the run has not finished both modes' seeds."]

    def describe(r):
        side = "positive" if r["alternative"] == "greater" else "negative"
        return (
            f"`{r['figure']}` {pre['a']} {r['mean_a']:.4f}, {pre['b']} {r['mean_b']:.4f}, difference "
            f"{r['diff']:+.4f} (95% t-interval [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]), {r['positive']} of "
            f"{r['seeds']} seeds positive and {r['negative']} negative; one-sided p ({side} difference) = {r['p']:.4f}"
        )

    primary, secondary = rep["primary"], rep["secondary"]
    verdict = (
        "**Replicated**: the PFSP attacker is less exploitable than the naive one on fresh seeds"
        if rep["replicated"]
        else "**Not replicated**: on fresh seeds the difference is not significant at the pre-registered level"
    )
    return [
        head,
        "",
        f"- Primary: {describe(primary)}. {verdict} (p {'<' if rep['replicated'] else '≥'} {pre['alpha']}).",
        f"- Secondary, descriptive only (no verdict rests on it): {describe(secondary)}.",
    ]


def holm_floor(n_seeds: int, m: int, alpha: float = ALPHA) -> str:
    """The smallest Holm-adjusted p-value the design can reach over a family of `m` comparisons (all
    seeds agree in one: m 2/2^n) and, when it is not below alpha, how many seeds would be needed: the
    sentence ends the paragraph."""
    floor = min(1.0, m * 2 / 2**n_seeds)
    if floor < alpha:
        return f"; after Holm's correction over {m} comparisons, {floor:.4f}."
    need = next(n for n in range(n_seeds, 64) if m * 2 / 2**n < alpha)
    return (
        f"; after Holm's correction over {m} comparisons, {floor:.4f}: **with {n_seeds} seeds no difference "
        f"can pass this family's test at {alpha}, whatever the data** (at least {need} seeds are needed)."
    )


def conclusions(stats: list[dict], m: int | None = None, alpha: float = ALPHA) -> str:
    """Plain sentences from the statistics: a difference is a finding only when its p-value, Holm-adjusted
    over the whole family of `m` planned comparisons, is below alpha; a pair whose unadjusted p or
    t-interval alone excludes no difference is named as that (not a finding); when nothing survives,
    the first sentence says so."""
    m = len(stats) if m is None else m
    held = [r for r in stats if r["p_holm"] < alpha]
    hinted = [r for r in stats if r not in held and (r["p"] < alpha or r["ci_low"] > 0 or r["ci_high"] < 0)]
    parts = []
    if held:
        parts.append(
            f"Differences that survive Holm's correction over all {m} comparisons: "
            + "; ".join(
                f"{r['env']} {r['figure']}: {r['mode_a']} {'>' if r['diff'] > 0 else '<'} {r['mode_b']} "
                f"({r['diff']:+.3f}, t-interval [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}], p_Holm {r['p_holm']:.3f})"
                for r in held
            )
            + "."
        )
    else:
        smallest = min(stats, key=lambda r: r["p_holm"])
        parts.append(
            f"**No difference between modes survives Holm's correction over all {m} comparisons** "
            f"(smallest adjusted p {smallest['p_holm']:.3f}, {smallest['env']} {smallest['figure']} "
            f"{smallest['mode_a']} − {smallest['mode_b']}): this table shows no finding."
        )
    if hinted:
        parts.append(
            "Unadjusted, the sign-flip p is below "
            f"{alpha} or the t-interval excludes 0 (not findings: chance alone gives about "
            f"{alpha * len(stats):.1f} such among {len(stats)} comparisons made) for "
            + "; ".join(
                f"{r['env']} {r['figure']} {r['mode_a']} − {r['mode_b']} {r['diff']:+.3f} (p {r['p']:.3f})"
                for r in hinted
            )
            + "."
        )
    parts.append(
        f"The other {len(stats) - len(held) - len(hinted)} of the {len(stats)} comparisons made show no difference "
        "at this number of seeds."
    )
    return " ".join(parts)


def replace_section(path: str, section: str) -> None:
    """Rewrite `path` from its `HEADING` line on with `section` (the text before it is kept)."""
    text = Path(path).read_text()
    head = text.split(HEADING, 1)[0] if HEADING in text else text.rstrip() + "\n\n"
    Path(path).write_text(head + section)
