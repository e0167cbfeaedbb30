"""The league comparison (issue 11 item 6): naive vs pool vs PFSP vs PSRO, with honest exploitability
and paired statistics between modes over seeds.

For each environment and mode, one `python -m baselines.selfplay` run trains all seeds together
(`--num-seeds`, vmapped) and evaluates them, with the exploitability of issue 11 item 5 (a best
response trained as long as the policies it attacks, greedy and sampled on 2,000 games, and the max
over it, every scripted bot and every pool member; per seed, the best responder against that seed's
policy). All modes of an environment start from the same `--seed`: seed s of every mode has the same
initial networks and evaluation keys, so modes are compared seed by seed (paired):

- the mean difference between two modes over seeds with a paired bootstrap 95% CI (resampling seeds;
  every resample enumerated when there are few seeds), and
- the exact two-sided sign-flip permutation test of the paired differences (all 2^n sign patterns;
  with n seeds the smallest possible p-value is 2 / 2^n: 0.0625 at 5 seeds, 0.031 at 6), with Holm's
  correction over the six pairs of modes of one environment and figure.

Writes `<out>/league_comparison.csv` (one row per env, mode and seed), `<out>/league_comparison_stats.csv`
(one row per env, figure and pair of modes), `<out>/league_comparison.md` (the report: what ran, the
tables, what the statistics support) and `<out>/figures/payoff_<env>.png` (each mode's population
payoff matrix, seed 0, one colour scale fitted to the data of the four). `--selfplay-md PATH` also
rewrites PATH from its "### League modes compared" heading on with that report.

    python -m baselines.league_comparison                               # the full run: v7, v19, v20
    python -m baselines.league_comparison --envs idsgame-v7 --selfplay-md baselines/SELFPLAY.md

A finished (env, mode) run (its `eval.json`) is reused, and an interrupted one resumed, so the
command can be run again until every run is done; the report says which ran and which did not.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

MODES = ("naive", "pool", "pfsp", "psro")
DEFAULT_ENVS = ("idsgame-v7", "idsgame-v19", "idsgame-v20")
HEADING = "### League modes compared"

# (column, eval.json source, meaning); "exploit:" reads exploitability[...]["per_seed"], otherwise
# per_seed[entry]["hack_probability"]. Higher is worse for the assessed side in the first two.
FIGURES = [
    (
        "defender_exploitability",
        "exploit:defender_exploitability",
        "best responder's hack probability against the final defender (higher: worse defender)",
    ),
    (
        "attacker_exploitability",
        "exploit:attacker_exploitability",
        "one minus the lowest hack probability a responding defender holds the final attacker to (higher: worse attacker)",
    ),
    ("selfplay_hack_p", "final", "the final attacker against the final defender"),
    ("br_attacker_hack_p", "br_attacker_sampled", "the trained best-response attacker alone (sampled)"),
    (
        "att_vs_br_defender_hack_p",
        "br_defender_sampled",
        "the final attacker against the trained best-response defender (sampled)",
    ),
    ("att_vs_defend_minimal", "attacker_vs_defend_minimal", "the final attacker against defend_minimal"),
    ("def_vs_attack_maximal", "defender_vs_attack_maximal", "the final defender against attack_maximal"),
]
COMPARED = ("defender_exploitability", "attacker_exploitability", "selfplay_hack_p")


# --- statistics -----------------------------------------------------------------------------------


def _resample_indices(n: int, max_exact: int, resamples: int, seed: int) -> np.ndarray:
    """[R, n] seed indices: every one of the n^n resamples when that is at most `max_exact` (the
    bootstrap distribution exactly, no Monte Carlo noise), else `resamples` random ones."""
    if n**n <= max_exact:
        return np.array(list(itertools.product(range(n), repeat=n)), np.int64).reshape(-1, n)
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def paired_bootstrap_ci(
    a, b, alpha: float = 0.05, max_exact: int = 1_000_000, resamples: int = 200_000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of a - b, lower, upper): the percentile bootstrap (1 - alpha) CI of the mean paired
    difference, resampling pairs (seeds) with replacement. The quantiles are values the bootstrap
    distribution takes (inverted CDF), so a CI that excludes 0 means that fewer than alpha/2 of the
    resamples fall on the other side."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 2:
        raise ValueError("a paired bootstrap needs at least two pairs")
    means = d[_resample_indices(d.size, max_exact, resamples, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    return float(d.mean()), float(lo), float(hi)


def sign_flip_p(a, b, max_exact: int = 1 << 16, resamples: int = 200_000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of "no difference between a and b":
    under it each pair's difference is as likely positive as negative, so the observed |mean
    difference| is compared with all 2^n sign patterns (exact up to `max_exact` patterns, else
    `resamples` random ones, counting the observed pattern)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError("a sign-flip test needs at least one pair")
    n = d.size
    if 2**n <= max_exact:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(resamples, n))
        signs = np.concatenate([np.ones((1, n), np.int64), signs])
    observed = abs(d.mean())
    flipped = np.abs((signs * d).mean(axis=1))
    return float(np.mean(flipped >= observed - 1e-12 * max(1.0, observed)))


def holm(pvalues) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (family-wise error), in the input order."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def compare(rows: list[dict], envs, modes, figures=COMPARED) -> list[dict]:
    """Every pair of modes on every env and figure: mean difference, paired bootstrap CI, sign-flip
    p-value and its Holm adjustment within the env and figure. Seeds present in both modes only."""
    out = []
    for env_id in envs:
        for fig in figures:
            family = []
            for m1, m2 in itertools.combinations(modes, 2):
                x = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m1 and fig in r}
                y = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m2 and fig in r}
                seeds = sorted(set(x) & set(y))
                if len(seeds) < 2:
                    continue
                a, b = [x[s] for s in seeds], [y[s] for s in seeds]
                diff, lo, hi = paired_bootstrap_ci(a, b)
                family.append(
                    {
                        "env": env_id,
                        "figure": fig,
                        "mode_a": m1,
                        "mode_b": m2,
                        "seeds": len(seeds),
                        "mean_a": round(float(np.mean(a)), 4),
                        "mean_b": round(float(np.mean(b)), 4),
                        "diff": round(diff, 4),
                        "ci_low": round(lo, 4),
                        "ci_high": round(hi, 4),
                        "p": sign_flip_p(a, b),
                    }
                )
            for row, adj in zip(family, holm([r["p"] for r in family])):  # from the unrounded p-values
                row["p"], row["p_holm"] = round(row["p"], 4), round(adj, 4)
            out.extend(family)
    return out


# --- running --------------------------------------------------------------------------------------


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m baselines.league_comparison",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--envs", nargs="+", default=list(DEFAULT_ENVS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument(
        "--seeds",
        type=int,
        default=10,
        help="seeds per env and mode, trained together (vmapped); with the 6 pairs of 4 modes, 8 is the "
        "fewest whose exact sign-flip test can pass Holm's correction at 0.05, 10 leaves margin",
    )
    p.add_argument("--seed", type=int, default=0, help="base seed, the same for every mode (paired seeds)")
    p.add_argument("--total-timesteps", type=int, default=500_000, help="environment steps per seed")
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--payoff-episodes", type=int, default=200)
    p.add_argument(
        "--br-eval-episodes",
        type=int,
        default=2000,
        help="games every exploitability responder (best response greedy and sampled, bots, pool members) is "
        "scored on to choose the strongest, and again, fresh, for the one chosen",
    )
    p.add_argument("--policy", default="flat", choices=("flat", "autoregressive"))
    p.add_argument("--output-dir", default="runs/league_comparison")
    p.add_argument("--selfplay-md", default=None, help="rewrite this file from its league-comparison heading on")
    p.add_argument(
        "--publish",
        default=None,
        help="also copy the CSVs and figures here (e.g. baselines/results/selfplay_league); the report cites them there",
    )
    p.add_argument("--extra", default="", help='more selfplay options, e.g. "--pool-size 6 --bot-share 0.1"')
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the outputs from the runs already finished in --output-dir",
    )
    args = p.parse_args(argv)
    for name in ("seeds", "total_timesteps", "eval_episodes", "payoff_episodes", "br_eval_episodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seeds < 2:
        p.error("--seeds must be at least 2: the paired statistics compare modes over seeds")
    if len(args.modes) < 2:
        p.error("--modes needs at least two modes to compare")
    import idsjax

    for env_id in args.envs:
        if env_id not in idsjax.registered_envs():
            p.error(f"unknown id {env_id!r}; see idsjax.registered_envs()")
    if args.selfplay_md and not Path(args.selfplay_md).is_file():
        p.error(f"--selfplay-md {args.selfplay_md}: no such file")
    return p, args


def run_argv(args, env_id: str, mode: str, out: str) -> list[str]:
    return [
        "--env",
        env_id,
        "--mode",
        mode,
        "--policy",
        args.policy,
        "--num-seeds",
        str(args.seeds),
        "--seed",
        str(args.seed),
        "--total-timesteps",
        str(args.total_timesteps),
        "--br-timesteps",
        "-1",
        "--eval-episodes",
        str(args.eval_episodes),
        "--payoff-episodes",
        str(args.payoff_episodes),
        "--br-eval-episodes",
        str(args.br_eval_episodes),
        "--output-dir",
        out,
        *(["--no-progress"] if args.no_progress else []),
        *shlex.split(args.extra),
    ]


def run_one(args, env_id: str, mode: str) -> dict | None:
    """Train and evaluate one (env, mode), or reuse the finished run with the same command; returns
    its eval.json, or None when the run refused or stopped."""
    from baselines import selfplay

    out = os.path.join(args.output_dir, env_id, mode)
    argv = run_argv(args, env_id, mode, out)
    done = os.path.join(out, "eval.json")
    saved = finished_run(args, env_id, mode)
    if saved is not None:
        print(f"# {env_id} {mode}: done before, reused ({out})", file=sys.stderr, flush=True)
        return saved
    t0 = time.perf_counter()
    if os.path.isdir(os.path.join(out, "checkpoints")) and not os.path.isfile(done) and same_run(out, argv):
        print(f"# {env_id} {mode}: resuming the interrupted run in {out}", file=sys.stderr, flush=True)
        result = selfplay.main(["--resume", "--output-dir", out, *(["--no-progress"] if args.no_progress else [])])
    else:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "league_argv.json"), "w") as f:  # what a later invocation may resume
            json.dump(argv, f)
        result = selfplay.main([*argv, "--overwrite"])
    if result.get("stopped") or not os.path.isfile(done):
        return None
    saved = json.load(open(done))
    saved["league_argv"] = argv
    saved["wall_seconds"] = round(time.perf_counter() - t0, 1)
    with open(done, "w") as f:
        json.dump(saved, f, indent=2)
    return saved


def finished_run(args, env_id: str, mode: str) -> dict | None:
    """The eval.json of a run this command line finished, or None."""
    out = os.path.join(args.output_dir, env_id, mode)
    done = os.path.join(out, "eval.json")
    if os.path.isfile(done):
        saved = json.load(open(done))

        def key(argv):  # showing a progress bar or not changes no result
            return [a for a in argv or [] if a != "--no-progress"]

        if key(saved.get("league_argv")) == key(run_argv(args, env_id, mode, out)):
            return saved
    return None


def same_run(out: str, argv: list[str]) -> bool:
    """An interrupted run in `out` was started by this command line (its saved argv)."""
    marker = os.path.join(out, "league_argv.json")
    return os.path.isfile(marker) and json.load(open(marker)) == argv


def seed_rows(env_id: str, mode: str, saved: dict) -> list[dict]:
    res = saved["result"]
    n = int(res["num_seeds"])
    rows = []
    for s in range(n):
        row = {
            "env": env_id,
            "mode": mode,
            "seed": s,
            "env_steps": res["env_steps"],
            "br_timesteps": res.get("br_timesteps", 0),
            "train_seconds": res["train_seconds"],
            "wall_seconds": saved.get("wall_seconds", ""),
        }
        for col, src, _ in FIGURES:
            if src.startswith("exploit:"):
                e = saved["exploitability"][src[8:]]
                row[col], row[f"{col}_se"], row[f"{col}_by"] = (
                    e["per_seed"][s],
                    e["per_seed_se"][s],
                    e["per_seed_by"][s],
                )
            elif src in saved["per_seed"]:
                row[col] = saved["per_seed"][src]["hack_probability"][s]
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    _, args = parse(argv)
    import jax

    if not jax.config.jax_compilation_cache_dir:  # keep a cache the caller set up (the test suite's)
        # the evaluation and best-response programs do not depend on the mode: compiled once per env
        cache = Path(__file__).resolve().parent.parent / ".jax_cache" / "league_comparison"
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    os.makedirs(args.output_dir, exist_ok=True)
    given = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--report-only"]
    command = "python -m baselines.league_comparison " + " ".join(shlex.quote(a) for a in given)
    rows, status = [], []
    for env_id in args.envs:
        for mode in args.modes:
            saved = finished_run(args, env_id, mode) if args.report_only else run_one(args, env_id, mode)
            status.append(
                {
                    "env": env_id,
                    "mode": mode,
                    "done": saved is not None,
                    "wall_seconds": saved.get("wall_seconds") if saved else None,
                }
            )
            if saved is not None:
                rows.extend(seed_rows(env_id, mode, saved))
            stats = compare(rows, args.envs, args.modes)
            write_outputs(args, command, rows, stats, status)
    return {"rows": rows, "stats": compare(rows, args.envs, args.modes), "status": status}


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


def _cell(values) -> str:
    v = np.asarray(values, np.float64)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


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
        f"{args.br_eval_episodes} per best-response evaluation (greedy and sampled), {args.policy} policies"
        + (f", extra options `{args.extra}`" if args.extra else "")
        + ".",
        "",
        f"**What ran: {len(ran)} of the {len(planned)} planned (env, mode) runs**"
        + (": " + ", ".join(f"{s['env']} {s['mode']} ({s['wall_seconds']:.0f} s)" for s in ran) if ran else "")
        + "."
        + (" Not run: " + ", ".join(f"{s['env']} {s['mode']}" for s in missing) + "." if missing else "")
        + " Nothing below is about a run that is not listed here.",
        "",
        "Figures (per seed, then mean ± standard deviation over seeds in the table): "
        + "; ".join(f"`{c}`: {meaning}" for c, _, meaning in FIGURES)
        + ". Exploitability is issue 11 item 5's: per seed, "
        "the maximum over a best response trained as long as the policy (greedy or sampled, 2,000 games), every "
        "scripted bot of the responder's side and every pool member; its evaluation SE per seed is in the CSV.",
        "",
    ]
    if rows:
        cols = [c for c, _, _ in FIGURES if any(c in r for r in rows)]
        lines += [
            "| env | mode | seeds | steps/seed | train s (all seeds) | " + " | ".join(cols) + " |",
            "|---|---|---|---|---|" + "---|" * len(cols),
        ]
        for s in ran:
            rs = [r for r in rows if r["env"] == s["env"] and r["mode"] == s["mode"]]
            lines.append(
                f"| {s['env']} | {s['mode']} | {len(rs)} | {rs[0]['env_steps']:,} | {rs[0]['train_seconds']:.0f} | "
                + " | ".join(_cell([r[c] for r in rs]) for c in cols)
                + " |"
            )
        se = [r[f"{c}_se"] for r in rows for c in ("defender_exploitability", "attacker_exploitability")]
        lines += [
            "",
            f"Evaluation standard error of one seed's exploitability: median {np.median(se):.3f}, "
            f"max {np.max(se):.3f} (the spread over seeds above is training variance plus this noise).",
            "",
        ]
    if stats:
        n_seeds = min(s["seeds"] for s in stats)
        lines += [
            "**Paired comparisons** (mode a − mode b over seeds; 95% paired bootstrap CI; exact sign-flip "
            f"p-value, and Holm-adjusted over the pairs of modes of one env and figure)."
            f" With {n_seeds} seeds the smallest attainable p is {2 / 2**n_seeds:.4f}"
            + holm_floor(n_seeds, len(args.modes)),
            "",
            "| env | figure | a | b | seeds | mean a | mean b | a − b | 95% CI | p | p (Holm) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in stats:
            lines.append(
                f"| {r['env']} | {r['figure']} | {r['mode_a']} | {r['mode_b']} | {r['seeds']} | {r['mean_a']:.3f} | "
                f"{r['mean_b']:.3f} | {r['diff']:+.3f} | [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] | "
                f"{r['p']:.4f} | {r['p_holm']:.4f} |"
            )
        lines += ["", "**What holds.** " + conclusions(stats), ""]
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


def holm_floor(n_seeds: int, n_modes: int, alpha: float = 0.05) -> str:
    """The smallest Holm-adjusted p-value the design can reach (all seeds agree, over k pairs: k 2/2^n)
    and, when it is not below alpha, how many seeds would be needed: the sentence ends the paragraph."""
    k = n_modes * (n_modes - 1) // 2
    floor = min(1.0, k * 2 / 2**n_seeds)
    if floor < alpha:
        return f"; after Holm's correction over {k} pairs, {floor:.4f}."
    need = next(n for n in range(n_seeds, 64) if k * 2 / 2**n < alpha)
    return (
        f"; after Holm's correction over {k} pairs, {floor:.4f}: **with {n_seeds} seeds no difference "
        f"can pass the test at {alpha}, whatever the data** (at least {need} seeds are needed)."
    )


def conclusions(stats: list[dict]) -> str:
    """Plain sentences from the statistics: a difference is stated only when its Holm-adjusted
    p-value is below 0.05 and its bootstrap CI excludes 0; otherwise the pair is reported as not shown."""
    held = [r for r in stats if r["p_holm"] < 0.05 and (r["ci_low"] > 0 or r["ci_high"] < 0)]
    hinted = [r for r in stats if r not in held and (r["ci_low"] > 0 or r["ci_high"] < 0)]
    parts = []
    if held:
        parts.append(
            "Differences supported by both tests: "
            + "; ".join(
                f"{r['env']} {r['figure']}: {r['mode_a']} {'>' if r['diff'] > 0 else '<'} {r['mode_b']} "
                f"({r['diff']:+.3f}, CI [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}], p_Holm {r['p_holm']:.3f})"
                for r in held
            )
            + "."
        )
    else:
        parts.append(
            "No difference between modes is supported by both tests (Holm-adjusted p < 0.05 and a "
            "bootstrap CI that excludes 0)."
        )
    if hinted:
        parts.append(
            "The bootstrap CI alone excludes 0 (not significant after the permutation test and Holm's "
            "correction: hints, not findings) for "
            + "; ".join(f"{r['env']} {r['figure']} {r['mode_a']} − {r['mode_b']} {r['diff']:+.3f}" for r in hinted)
            + "."
        )
    parts.append(
        f"The other {len(stats) - len(held) - len(hinted)} of the {len(stats)} comparisons show no difference "
        "at this number of seeds."
    )
    if held:
        # Holm's families are the env and figure; a reader who takes all comparisons as one family
        # asks whether the findings survive that stricter correction too.
        overall = dict(zip((id(r) for r in stats), holm([r["p"] for r in stats]), strict=True))
        adjusted = [overall[id(r)] for r in held]
        kept = sum(p < 0.05 for p in adjusted)
        if kept == len(held):
            verdict = "these hold too."
        else:
            which = "none of them holds" if not kept else f"only {kept} of them {'holds' if kept == 1 else 'hold'}"
            verdict = (
                f"{which} (smallest adjusted p {min(adjusted):.3f}): read {'it' if len(held) == 1 else 'them'} "
                "as findings for their env and figure, not for the whole table."
            )
        parts.append(f"Over all {len(stats)} comparisons as one family (Holm), {verdict}")
    return " ".join(parts)


def replace_section(path: str, section: str) -> None:
    """Rewrite `path` from its `HEADING` line on with `section` (the text before it is kept)."""
    text = Path(path).read_text()
    head = text.split(HEADING, 1)[0] if HEADING in text else text.rstrip() + "\n\n"
    Path(path).write_text(head + section)


if __name__ == "__main__":
    main()
