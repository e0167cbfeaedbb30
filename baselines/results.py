"""The README's results tables, from committed runs of today's code.

Two tables, each one command that runs its rows and writes their JSON lines and the Markdown table:

- the grid (`--table grid`, the default): every baseline on several versions against each scripted
  opponent. Each cell is one command run with its defaults (`python -m baselines.<algo> --env <id>
  --num-seeds S`), all seeds trained together; it reports the evaluation hack probability (mean ±
  standard deviation over seeds and the evaluation standard error, apart; >= 1,000 evaluation episodes
  per seed) and the training time (compile excluded). Runs land in `<output-dir>/<algo>/<env>/`.
- the trainers' defaults (`--table train`): the README's `## Train` table, each command of
  `TRAIN_COMMANDS` run as the user types it (a subprocess: seed 0, its default budget and evaluation),
  with its wall time from start-up to exit. Runs land in `<output-dir>/train/<n>/`.

The Markdown goes to `<output-dir>/RESULTS.md` (`TRAIN.md`) and every run's JSON line to
`<output-dir>/results.jsonl` (`train.jsonl`). Nothing is written into the repository unless
`--publish` is given: then the JSON lines also go to `baselines/results/` (`results_all.jsonl`,
`readme_train.jsonl`), the committed files the README's tables are written from
(`tests/test_published_figures.py` checks that the README holds exactly `grid_table` / `train_table`
of them, and re-runs one row of each).

    python -m baselines.results                                   # the full grid (100 runs)
    python -m baselines.results --algos ppo --versions 0 --opponents random_defense --num-seeds 2
    python -m baselines.results --table train --publish           # the README's Train table (9 runs)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

from baselines.trainers import SINGLE_AGENT_TRAINERS

ALGOS = SINGLE_AGENT_TRAINERS
VERSIONS = (0, 2, 3, 7, 19)
OPPONENTS = {  # mode in the id -> (the learner, the scripted opponent it faces)
    "random_defense": ("attacker", "random defense"),
    "minimal_defense": ("attacker", "defend-minimal"),
    "random_attack": ("defender", "random attack"),
    "maximal_attack": ("defender", "attack-maximal"),
}
NUM_SEEDS = 4

# The best hack probability against defend-minimal on v7, exact (`python -m baselines.ceiling`,
# tests/test_ceiling.py), to three decimals as the README quotes it.
OPTIMUM_V7 = 0.896
# The README's `## Train` table: (the command after `python -m baselines.`, the learner and its
# opponent on v7, the target the README sets). The last two rows evaluate the default PPO run on
# 100,000 games, sampled and greedy, to show where it stands against the optimum.
TRAIN_COMMANDS = (
    ("ppo", "attacker vs defend-minimal", f"≥ 0.9 (optimum {OPTIMUM_V7})"),
    ("ppo --env idsgame-random_defense-v7", "attacker vs random defense", "≥ 0.95"),
    ("ppo --env idsgame-maximal_attack-v7", "defender vs attack-maximal", "≤ 0.05"),
    ("dqn", "attacker vs random defense", "≥ 0.9"),
    ("tabular_q", "attacker vs random defense", "≥ 0.9"),
    ("reinforce", "attacker vs random defense", "–"),
    ("actor_critic", "attacker vs random defense", "–"),
    ("ppo --eval-episodes 100000", "attacker vs defend-minimal", f"optimum {OPTIMUM_V7}"),
    ("ppo --eval-episodes 100000 --eval-greedy", "attacker vs defend-minimal", f"optimum {OPTIMUM_V7}"),
)

PUBLISHED = Path(__file__).resolve().parent / "results"  # the committed rows the README is written from
PUBLISHED_FILES = {"grid": "results_all.jsonl", "train": "readme_train.jsonl"}
# The run directories' options: where a run writes and whether it shows a bar change no result.
HOST_ARGS = ("--no-progress", "--overwrite")


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m baselines.results",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--table", choices=("grid", "train"), default="grid", help="which table to run")
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--versions", nargs="+", type=int, default=list(VERSIONS))
    p.add_argument("--opponents", nargs="+", default=list(OPPONENTS), choices=list(OPPONENTS))
    p.add_argument("--num-seeds", type=int, default=NUM_SEEDS, help="seeds per cell, trained together")
    p.add_argument("--total-timesteps", type=int, default=None, help="override every command's default budget")
    p.add_argument("--output-dir", default="runs/results")
    p.add_argument(
        "--publish",
        action="store_true",
        help="also write the rows into baselines/results/ (the committed files the README's tables come from)",
    )
    args = p.parse_args(argv)
    if args.num_seeds <= 0 or (args.total_timesteps is not None and args.total_timesteps <= 0):
        p.error("--num-seeds and --total-timesteps must be positive")
    bad = [v for v in args.versions if not 0 <= v <= 21]
    if bad:
        p.error(f"versions are 0 … 21, got {bad}")
    grid_options = ("algos", "versions", "opponents", "num_seeds", "total_timesteps")
    if args.table == "train" and any(getattr(args, k) != p.get_default(k) for k in grid_options):
        p.error("--algos, --versions, --opponents, --num-seeds and --total-timesteps are the grid's options")
    if args.publish and any(getattr(args, k) != p.get_default(k) for k in grid_options):
        p.error(
            f"--publish replaces the committed {PUBLISHED_FILES['grid']}, so it takes the grid's default cells only"
        )
    return args


def run_cell(algo: str, env_id: str, args) -> dict:
    module = importlib.import_module(f"baselines.{algo}")
    argv = [
        "--env",
        env_id,
        "--num-seeds",
        str(args.num_seeds),
        "--no-progress",
        "--output-dir",
        os.path.join(args.output_dir, algo, env_id),
    ]
    if args.total_timesteps is not None:
        argv += ["--total-timesteps", str(args.total_timesteps)]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = module.main(argv)
    result["wall_seconds"] = round(time.perf_counter() - start, 2)
    return result


def cell_text(r: dict) -> str:
    """Mean over seeds, the spread across seeds (sample std: training variance plus evaluation noise)
    and the evaluation standard error of the mean (binomial, from the games alone), apart."""
    spread = r.get("eval_hack_probability_seed_std")
    spread = "–" if spread is None else f"{spread:.3f}"
    return (
        f"{r['eval_hack_probability']:.3f} (seeds ± {spread}, eval SE {r['eval_hack_probability_se']:.3f}; "
        f"{r['train_seconds']:.0f} s)"
    )


def grid_table(
    results: list[dict],
    algos=ALGOS,
    versions=VERSIONS,
    opponents=tuple(OPPONENTS),
    num_seeds: int = NUM_SEEDS,
) -> str:
    by = {(r["algo"], r["env"]): r for r in results}
    lines = [
        f"Evaluation hack probability, mean over {num_seeds} seeds (each evaluated with its own key), with the "
        "spread across seeds (sample std: training variance and evaluation noise) and the evaluation standard "
        "error of the mean apart (training time, compile excluded, all seeds together). "
        "Attackers want it high, defenders low.",
        "",
    ]
    for mode in opponents:
        learner, opponent = OPPONENTS[mode]
        lines += [f"**{learner} vs {opponent}** (`idsgame-{mode}-vN`)", ""]
        lines.append("| algorithm | " + " | ".join(f"v{v}" for v in versions) + " |")
        lines.append("|---|" + "---|" * len(versions))
        for algo in algos:
            cells = [
                cell_text(by[(algo, f"idsgame-{mode}-v{v}")]) if (algo, f"idsgame-{mode}-v{v}") in by else "–"
                for v in versions
            ]
            lines.append(f"| {algo} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def train_argv(command: str, output_dir: str) -> list[str]:
    """The command line of a `TRAIN_COMMANDS` row as a subprocess, into its own run directory."""
    algo, *rest = shlex.split(command)
    return [sys.executable, "-m", f"baselines.{algo}", *rest, *HOST_ARGS, "--output-dir", output_dir]


def run_train_command(command: str, output_dir: str) -> dict:
    """Run one row as the user runs it, from a fresh interpreter to exit; its JSON line, the command,
    the wall time of the whole process, and when and under which load it ran (timings depend on it)."""
    load = os.getloadavg()[0]
    started = datetime.now(timezone.utc)
    start = time.perf_counter()
    done = subprocess.run(train_argv(command, output_dir), stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"python -m baselines.results: `python -m baselines.{command}` exited {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.pop("output_dir", None)
    return {
        "command": f"python -m baselines.{command}",
        **result,
        "wall_seconds": round(wall, 2),
        "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_1min": round(load, 1),
    }


def hack_text(r: dict) -> str:
    digits = 4 if r["eval_episodes"] >= 10_000 else 3
    return f"{r['eval_hack_probability']:.{digits}f} ± {r['eval_hack_probability_se']:.{digits}f}"


def train_table(rows: list[dict]) -> str:
    """The README's `## Train` table from the committed rows (one per `TRAIN_COMMANDS` entry)."""
    by = {r["command"]: r for r in rows}
    missing = [c for c, _, _ in TRAIN_COMMANDS if f"python -m baselines.{c}" not in by]
    if missing:
        raise ValueError(f"no row for {missing}; run python -m baselines.results --table train --publish")
    dates = sorted(r["started_utc"][:10] for r in rows)
    loads = sorted(r["load_average_1min"] for r in rows)
    header = (
        f"Measured on {dates[0]}"
        + ("" if dates[0] == dates[-1] else f" to {dates[-1]}")
        + " by `python -m baselines.results --table train --publish` (rows in "
        "`baselines/results/readme_train.jsonl`): each command with its defaults (seed 0, its default "
        "budget, 1,000 evaluation games unless the row says otherwise), the hack probability ± its "
        "evaluation standard error. Train s is training alone (compile excluded), wall s the whole command "
        "(start-up, compile, training, evaluation), measured on the 2-core development machine while other "
        f"jobs shared it (1-minute load average {loads[0]:.1f}–{loads[-1]:.1f} at the starts): upper bounds."
    )
    lines = [
        textwrap.fill(header, width=100, break_long_words=False, break_on_hyphens=False),
        "",
        "| command | learner vs opponent (v7) | evaluation hack probability | target | train s | wall s |",
        "|---|---|---|---|---|---|",
    ]
    for command, who, target in TRAIN_COMMANDS:
        r = by[f"python -m baselines.{command}"]
        lines.append(
            f"| `{r['command']}` | {who} | {hack_text(r)} | {target} | "
            f"{r['train_seconds']:.1f} | {r['wall_seconds']:.1f} |"
        )
    return "\n".join(lines)


def load_rows(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def published(table: str) -> list[dict]:
    """The committed rows of a table (`grid` or `train`)."""
    return load_rows(PUBLISHED / PUBLISHED_FILES[table])


def publish(rows: list[dict], table: str) -> None:
    path = PUBLISHED / PUBLISHED_FILES[table]
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"wrote {path}", file=sys.stderr, flush=True)


def main_grid(args) -> str:
    results = []
    with open(os.path.join(args.output_dir, "results.jsonl"), "w") as log:
        for mode in args.opponents:
            for version in args.versions:
                for algo in args.algos:
                    env_id = f"idsgame-{mode}-v{version}"
                    print(f"{algo} on {env_id} …", file=sys.stderr, flush=True)
                    result = run_cell(algo, env_id, args)
                    results.append(result)
                    log.write(json.dumps(result) + "\n")
                    log.flush()
                    print(f"  {cell_text(result)}", file=sys.stderr, flush=True)
    text = grid_table(results, args.algos, args.versions, args.opponents, args.num_seeds)
    with open(os.path.join(args.output_dir, "RESULTS.md"), "w") as f:
        f.write(text + "\n")
    if args.publish:
        publish(results, "grid")
    return text


def main_train(args) -> str:
    rows = []
    with open(os.path.join(args.output_dir, "train.jsonl"), "w") as log:
        for n, (command, _, _) in enumerate(TRAIN_COMMANDS):
            print(f"python -m baselines.{command} …", file=sys.stderr, flush=True)
            row = run_train_command(command, os.path.join(args.output_dir, "train", str(n)))
            rows.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            print(f"  {hack_text(row)}", file=sys.stderr, flush=True)
    text = train_table(rows)
    with open(os.path.join(args.output_dir, "TRAIN.md"), "w") as f:
        f.write(text + "\n")
    if args.publish:
        publish(rows, "train")
    return text


def main(argv=None) -> str:
    args = parse(argv)
    os.makedirs(args.output_dir, exist_ok=True)
    text = (main_train if args.table == "train" else main_grid)(args)
    print(text)
    return text


if __name__ == "__main__":
    main()
