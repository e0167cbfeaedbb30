"""The league comparison (issue 11 item 6): naive vs pool vs PFSP vs PSRO, with unbiased
exploitability and paired statistics between modes over seeds; `--quick` gives the quick table.

For each environment and mode, one `python -m baselines.selfplay` run trains all seeds together
(`--num-seeds`, vmapped) and evaluates them, with self-play's exploitability: per seed, every
responder (a best response trained as long as the policies it attacks, greedy and sampled, every
scripted bot and every pool member) is scored on the same `--br-eval-episodes` games, and the
strongest is replayed on as many fresh games, which give the seed's value (so the value is not the
maximum of noisy estimates). All modes of an environment start from the same `--seed`: seed s of
every mode has the same initial networks and evaluation keys, so modes are compared seed by seed
(paired):

- the mean difference between two modes over seeds with a 95% Student-t interval
  (`baselines.statistics.t_interval`; with 10 seeds a percentile bootstrap is about 0.8x as wide), and
- the exact two-sided sign-flip permutation test of the paired differences (all 2^n sign patterns;
  with n seeds the smallest possible p-value is 2 / 2^n), Holm-adjusted over **all** comparisons of
  the run as one family (every env, figure and pair of modes): a difference is a finding only if it
  survives that, and the report says plainly when none does or none can.
- the pre-registered replication (`PREREGISTERED`, written in SELFPLAY.md before its run): one
  one-sided exact sign-flip test at its own alpha, reported with its verdict whichever way it goes,
  when the run is the pre-registered one.

Writes `<out>/league_comparison.csv` (one row per env, mode and seed), `<out>/league_comparison_stats.csv`
(one row per env, figure and pair of modes), `<out>/league_comparison.md` (the report: what ran, the
tables, what the statistics support) and `<out>/figures/payoff_<env>.png` (each mode's population
payoff matrix, seed 0, one colour scale fitted to the data of the four). `--selfplay-md PATH` also
rewrites PATH from its "### League modes compared" heading on with that report.

    python -m baselines.league_comparison --quick                       # the quick table: 3 seeds, 100k steps
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
COMPARED = ("defender_exploitability", "attacker_exploitability", "selfplay_hack_p")


# The replication of issue 25 item 3, as SELFPLAY.md pre-registered it (commit c53fb44) before its run:
# one statistic, one one-sided test, its own alpha; the secondary figure is descriptive only.
PREREGISTERED = {
    "env": "idsgame-v19",
    "a": "naive",
    "b": "pfsp",
    "primary": ("attacker_exploitability", "greater"),  # naive's attacker more exploitable: a - b > 0
    "secondary": ("selfplay_hack_p", "less"),  # naive's attacker hacks PFSP's defender less: a - b < 0
    "alpha": 0.05,
    "seed": 1000,
    "seeds": 10,
    "commit": "c53fb44",
}
ALPHA = 0.05  # the exploratory family's


# --- statistics -----------------------------------------------------------------------------------


def sign_flip_p(
    a, b, alternative: str = "two-sided", max_exact: int = 1 << 16, resamples: int = 200_000, seed: int = 0
) -> float:
    """p-value of the paired sign-flip permutation test of "no difference between a and b": under it
    each pair's difference is as likely positive as negative, so the observed mean difference is
    compared with those of all 2^n sign patterns (exact up to `max_exact` patterns, else `resamples`
    random ones, counting the observed pattern). `alternative`: "two-sided" (|mean| as large),
    "greater" (a - b as large) or "less" (a - b as small)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError("a sign-flip test needs at least one pair")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    n = d.size
    if 2**n <= max_exact:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(resamples, n))
        signs = np.concatenate([np.ones((1, n), np.int64), signs])
    flipped = (signs * d).mean(axis=1)
    observed = d.mean()
    tol = 1e-12 * max(1.0, abs(observed))  # the observed pattern counts despite rounding
    if alternative == "greater":
        return float(np.mean(flipped >= observed - tol))
    if alternative == "less":
        return float(np.mean(flipped <= observed + tol))
    return float(np.mean(np.abs(flipped) >= abs(observed) - tol))


def holm(pvalues, m: int | None = None) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (family-wise error), in the input order.
    `m` is the family's size when only some of its tests have been made (the others, not yet run,
    count as p = 1: they rank last and leave these adjustments as the whole family's would be)."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size if m is None else m
    if m < p.size:
        raise ValueError(f"a family of {m} tests cannot hold {p.size} p-values")
    adjusted = np.maximum.accumulate((m - np.arange(p.size)) * p[order])
    out = np.empty(p.size)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def _paired(rows: list[dict], env_id: str, fig: str, m1: str, m2: str) -> tuple[list, list, list]:
    """(seeds, a, b): the figure of modes m1 and m2 on the seeds both have."""
    x = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m1 and fig in r}
    y = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m2 and fig in r}
    seeds = sorted(set(x) & set(y))
    return seeds, [x[s] for s in seeds], [y[s] for s in seeds]


def family_size(envs, modes, figures=COMPARED) -> int:
    """The planned family: every pair of modes on every env and compared figure."""
    return len(envs) * len(figures) * len(modes) * (len(modes) - 1) // 2


def compare(rows: list[dict], envs, modes, figures=COMPARED) -> list[dict]:
    """Every pair of modes on every env and figure: mean difference with its 95% t-interval, the exact
    two-sided sign-flip p-value, and its Holm adjustment over all the planned comparisons as one family
    (the family SELFPLAY.md fixed before the run; while some runs are missing, their comparisons count
    as p = 1, so a partial run never tests in a smaller family). Seeds present in both modes only."""
    from baselines.statistics import t_interval

    out = []
    for env_id in envs:
        for fig in figures:
            for m1, m2 in itertools.combinations(modes, 2):
                seeds, a, b = _paired(rows, env_id, fig, m1, m2)
                if len(seeds) < 2:
                    continue
                ci = t_interval(np.subtract(a, b))
                out.append(
                    {
                        "env": env_id,
                        "figure": fig,
                        "mode_a": m1,
                        "mode_b": m2,
                        "seeds": len(seeds),
                        "mean_a": round(float(np.mean(a)), 4),
                        "mean_b": round(float(np.mean(b)), 4),
                        "diff": round(ci.mean, 4),
                        "ci_low": round(ci.low, 4),
                        "ci_high": round(ci.high, 4),
                        "p": sign_flip_p(a, b),
                    }
                )
    m = family_size(envs, modes, figures)
    for row, adj in zip(out, holm([r["p"] for r in out], m)):  # from the unrounded p-values
        row["p"], row["p_holm"] = round(row["p"], 4), round(adj, 4)
    return out


def replication(rows: list[dict], args) -> dict | None:
    """The pre-registered test on this run's rows, or None when this run is not the pre-registered one
    (another base seed, number of seeds, env or modes). `done` is False until both modes have all
    their seeds."""
    pre = PREREGISTERED
    if (args.seed, args.seeds) != (pre["seed"], pre["seeds"]) or pre["env"] not in args.envs:
        return None
    if not {pre["a"], pre["b"]} <= set(args.modes):
        return None
    from baselines.statistics import t_interval

    out = {"done": False}
    for role in ("primary", "secondary"):
        fig, alternative = pre[role]
        seeds, a, b = _paired(rows, pre["env"], fig, pre["a"], pre["b"])
        if len(seeds) < pre["seeds"]:
            return out
        ci = t_interval(np.subtract(a, b))
        out[role] = {
            "figure": fig,
            "alternative": alternative,
            "seeds": len(seeds),
            "mean_a": float(np.mean(a)),
            "mean_b": float(np.mean(b)),
            "diff": ci.mean,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "p": sign_flip_p(a, b, alternative),
            "positive": int(np.sum(np.subtract(a, b) > 0)),
            "negative": int(np.sum(np.subtract(a, b) < 0)),
        }
    primary = out["primary"]
    out["done"] = True
    out["replicated"] = primary["p"] < pre["alpha"] and primary["diff"] > 0
    return out


# --- running --------------------------------------------------------------------------------------


# The full comparison's settings, and --quick's (the quick table that baselines.selfplay_experiments
# used to print): a few seeds at a fifth of the budget, for a first look, not for conclusions.
FULL = {
    "envs": list(DEFAULT_ENVS),
    "seeds": 10,
    "total_timesteps": 500_000,
    "eval_episodes": 1000,
    "payoff_episodes": 200,
    "br_eval_episodes": 1000,
    "output_dir": "runs/league_comparison",
}
QUICK = {
    "envs": ["idsgame-v19", "idsgame-v20", "idsgame-v7"],
    "seeds": 3,
    "total_timesteps": 100_000,
    "eval_episodes": 500,
    "payoff_episodes": 50,
    "br_eval_episodes": 500,
    "output_dir": "runs/league_quick",
}


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m baselines.league_comparison",
        description=__doc__.split("\n\n")[0],
    )

    def default(name, help_text=""):
        return f"{help_text}{'; ' if help_text else ''}default {FULL[name]}, with --quick {QUICK[name]}"

    p.add_argument(
        "--quick",
        action="store_true",
        help="the quick table: fewer seeds, steps and games (the defaults marked 'with --quick'); a first look",
    )
    p.add_argument("--envs", nargs="+", default=None, help=default("envs"))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="default: all four")
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help=default("seeds", "seeds per env and mode, trained together (vmapped) and paired across modes"),
    )
    p.add_argument("--seed", type=int, default=0, help="base seed, the same for every mode (paired seeds); default 0")
    p.add_argument("--total-timesteps", type=int, default=None, help=default("total_timesteps", "steps per seed"))
    p.add_argument("--eval-episodes", type=int, default=None, help=default("eval_episodes", "games per match-up"))
    p.add_argument(
        "--payoff-episodes", type=int, default=None, help=default("payoff_episodes", "games per payoff pair")
    )
    p.add_argument(
        "--br-eval-episodes",
        type=int,
        default=None,
        help=default(
            "br_eval_episodes",
            "games every exploitability responder (best response greedy and sampled, bots, pool members) is "
            "scored on to choose the strongest, and again, fresh, for the one chosen",
        ),
    )
    p.add_argument("--policy", default="flat", choices=("flat", "autoregressive"))
    p.add_argument("--output-dir", default=None, help=default("output_dir"))
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
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
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
    t0, cpu0 = time.perf_counter(), time.process_time()
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
    # the process's CPU time does not count the time it waited for a core or sat paused, which the
    # wall time of a run on a shared machine does
    saved["cpu_seconds"] = round(time.process_time() - cpu0, 1)
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
            "base_seed": res["seed"],  # seed s of `--seed base_seed`: its keys derive from both
            "env_steps": res["env_steps"],
            "br_timesteps": res.get("br_timesteps", 0),
            "train_seconds": res["train_seconds"],
            "wall_seconds": saved.get("wall_seconds", ""),
            "cpu_seconds": saved.get("cpu_seconds", ""),
            "resumed_at_env_steps": res.get("resumed_at_env_steps", ""),
        }
        for col, src, _ in FIGURES:
            if src.startswith("exploit:"):
                e = saved["exploitability"][src[8:]]
                row[col], row[f"{col}_se"], row[f"{col}_by"] = (
                    e["per_seed"][s],
                    e["per_seed_se"][s],
                    e["per_seed_by"][s],
                )
                # the chosen responder's score on the games that chose it (the fresh games' figure is row[col])
                row[f"{col}_selected_on"] = e["per_seed_selected_on"][s]
            elif src.startswith("exploit_br:"):
                e = saved["exploitability"][src[11:]].get("best_response")
                if e is not None:
                    row[col], row[f"{col}_se"] = e["per_seed"][s], e["per_seed_se"][s]
            elif src in saved["per_seed"]:
                row[col] = saved["per_seed"][src]["hack_probability"][s]
        rows.append(row)
    return rows


def main(argv=None) -> dict:
    _, args = parse(argv)
    import jax

    if not jax.config.jax_compilation_cache_dir:  # keep a cache the caller set up (the test suite's)
        # the evaluation and best-response programs do not depend on the mode: compiled once per env
        from baselines.compile_cache import use_persistent_cache

        use_persistent_cache(Path(__file__).resolve().parent.parent / ".jax_cache" / "league_comparison-lru")
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
                    "cpu_seconds": saved.get("cpu_seconds") if saved else None,
                    "resumed_at": saved["result"].get("resumed_at_env_steps") if saved else None,
                }
            )
            if saved is not None:
                rows.extend(seed_rows(env_id, mode, saved))
            stats = compare(rows, args.envs, args.modes)
            write_outputs(args, command, rows, stats, status)
    if args.quick:  # the quick table on stdout, as baselines.selfplay_experiments printed it
        print("\n".join(table(rows, status, column_games(args))) if rows else "no (env, mode) run finished")
    print(f"results in {args.output_dir}", file=sys.stderr)
    stats = compare(rows, args.envs, args.modes)
    return {"rows": rows, "stats": stats, "status": status, "replication": replication(rows, args)}


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


if __name__ == "__main__":
    main()
