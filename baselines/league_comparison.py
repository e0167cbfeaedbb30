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
import json
import os
import shlex
import sys
import time
from pathlib import Path

from baselines.league_report import FIGURES, column_games, table, write_outputs
from baselines.league_statistics import compare, replication

MODES = ("naive", "pool", "pfsp", "psro")
DEFAULT_ENVS = ("idsgame-v7", "idsgame-v19", "idsgame-v20")


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


if __name__ == "__main__":
    main()
