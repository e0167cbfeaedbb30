"""Self-play league modes compared: naive vs pool vs PFSP vs PSRO on the same budget, several seeds.

For each environment and mode, one `python -m baselines.selfplay` run trains all seeds together
(`--num-seeds`, vmapped) and evaluates them: hack probability of the final attacker vs the final
defender and vs each scripted bot, and exploitability (what a fresh best-response PPO achieves
against each frozen final policy in `--br-timesteps` steps). Prints a markdown table (mean ± std over
seeds) and writes `<out>/selfplay_experiments.csv` (one row per env, mode and seed).

    python -m baselines.selfplay_experiments                                  # v19, v20, v7; 3 seeds
    python -m baselines.selfplay_experiments --envs idsgame-v19 --seeds 2 --total-timesteps 50000

The paired comparison with statistics between modes (issue 11 item 6) is `baselines.league_comparison`,
which writes `baselines/SELFPLAY.md`'s results section; this script is the quick table.

Compiled programs go to the persistent JAX cache (`.jax_cache/`), so the evaluation program, which
does not depend on the mode, is compiled once per environment.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

from baselines import selfplay

# (column, eval.json entry, statistic): the figures of the table, per seed
FIGURES = [
    ("selfplay_hack_p", "final", "hack_probability"),
    ("att_vs_random_defense", "attacker_vs_random_defense", "hack_probability"),
    ("att_vs_defend_minimal", "attacker_vs_defend_minimal", "hack_probability"),
    ("def_vs_random_attack", "defender_vs_random_attack", "hack_probability"),
    ("def_vs_attack_maximal", "defender_vs_attack_maximal", "hack_probability"),
    # the best responses alone, sampled (the run's defender_/attacker_exploitability is the max over
    # them, greedy or sampled, every scripted bot and every pool member: see eval.json)
    ("br_attacker_hack_p", "br_attacker_sampled", "hack_probability"),
    ("att_vs_br_defender_hack_p", "br_defender_sampled", "hack_probability"),
]


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m baselines.selfplay_experiments",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--envs", nargs="+", default=["idsgame-v19", "idsgame-v20", "idsgame-v7"])
    p.add_argument("--modes", nargs="+", default=list(selfplay.MODES), choices=selfplay.MODES)
    p.add_argument("--seeds", type=int, default=3, help="seeds per environment and mode (trained together)")
    p.add_argument("--total-timesteps", type=int, default=100_000)
    p.add_argument(
        "--br-timesteps",
        type=int,
        default=-1,
        help="best-response steps: -1 as many as the policies (shorter is refused by selfplay)",
    )
    p.add_argument("--eval-episodes", type=int, default=500)
    p.add_argument("--payoff-episodes", type=int, default=50)
    p.add_argument("--policy", default="flat", choices=selfplay.POLICIES)
    p.add_argument("--output-dir", default="runs/selfplay_experiments")
    p.add_argument(
        "--vmap-seeds",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="train the seeds of a mode together (--num-seeds) instead of one run per seed "
        "(identical programs: the persistent cache compiles them once)",
    )
    p.add_argument("--extra", default="", help='more selfplay options, e.g. "--pool-size 6 --bot-share 0.1"')
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse(argv)
    cache = Path(__file__).resolve().parent.parent / ".jax_cache" / "selfplay_experiments"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    os.makedirs(args.output_dir, exist_ok=True)
    rows, table = [], []
    for env_id in args.envs:
        for mode in args.modes:
            runs = [(0, args.seeds)] if args.vmap_seeds else [(s, 1) for s in range(args.seeds)]
            per_seed, t0, results = {}, time.perf_counter(), []
            for seed, num_seeds in runs:
                out = os.path.join(args.output_dir, env_id, mode, f"seed{seed}" if not args.vmap_seeds else "")
                argv_run = [
                    "--env",
                    env_id,
                    "--mode",
                    mode,
                    "--policy",
                    args.policy,
                    "--num-seeds",
                    str(num_seeds),
                    "--seed",
                    str(seed),
                    "--total-timesteps",
                    str(args.total_timesteps),
                    "--br-timesteps",
                    str(args.br_timesteps),
                    "--eval-episodes",
                    str(args.eval_episodes),
                    "--payoff-episodes",
                    str(args.payoff_episodes),
                    "--output-dir",
                    out,
                    "--no-progress",
                    *args.extra.split(),
                ]
                results.append(selfplay.main(argv_run))
                with open(os.path.join(out, "eval.json")) as f:
                    for entry, stats in json.load(f)["per_seed"].items():
                        for stat, values in stats.items():
                            per_seed.setdefault(entry, {}).setdefault(stat, []).extend(values)
            wall = time.perf_counter() - t0
            line = {
                "env": env_id,
                "mode": mode,
                "seeds": args.seeds,
                "env_steps": results[0]["env_steps"],
                "train_seconds": round(float(np.mean([r["train_seconds"] for r in results])), 1),
                "wall_seconds": round(wall, 1),
            }
            for s in range(args.seeds):
                row = {**line, "seed": s}
                row.update(
                    {col: round(per_seed[entry][stat][s], 4) for col, entry, stat in FIGURES if entry in per_seed}
                )
                rows.append(row)
            for col, entry, stat in FIGURES:
                if entry in per_seed:
                    v = np.asarray(per_seed[entry][stat])
                    line[col] = f"{v.mean():.3f} ± {v.std():.3f}"
            table.append(line)
            print(f"# {env_id} {mode}: {json.dumps(line)}", file=sys.stderr, flush=True)
            write(args.output_dir, rows, table)
    print(markdown(table))
    return rows


def write(out_dir: str, rows: list[dict], table: list[dict]) -> None:
    with open(os.path.join(out_dir, "selfplay_experiments.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(out_dir, "selfplay_experiments.md"), "w") as f:
        f.write(markdown(table) + "\n")


def markdown(table: list[dict]) -> str:
    cols = ["env", "mode", "seeds", "env_steps", "train_seconds", "wall_seconds"] + [c for c, _, _ in FIGURES]
    cols = [c for c in cols if any(c in r for r in table)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in table:
        lines.append("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
