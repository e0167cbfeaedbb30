"""Build the README results table: every baseline on several versions against each scripted opponent.

Each cell is one command run with its defaults (`python -m baselines.<algo> --env <id>
--num-seeds S`), all seeds trained together; it reports the evaluation hack probability (mean ± standard
deviation over seeds and the evaluation standard error, apart; >= 1,000 evaluation episodes per seed)
and the training time (compile excluded). Runs land in `<output-dir>/<algo>/<env>/`; the table is written as Markdown to
`<output-dir>/RESULTS.md` and every run's JSON line to `<output-dir>/results.jsonl`.

    python -m baselines.results                                   # the full table (100 runs)
    python -m baselines.results --algos ppo --versions 0 --opponents random_defense --num-seeds 2
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import sys
import time

ALGOS = ("ppo", "dqn", "tabular_q", "reinforce", "actor_critic")
VERSIONS = (0, 2, 3, 7, 19)
OPPONENTS = {  # mode in the id -> (the learner, the scripted opponent it faces)
    "random_defense": ("attacker", "random defense"),
    "minimal_defense": ("attacker", "defend-minimal"),
    "random_attack": ("defender", "random attack"),
    "maximal_attack": ("defender", "attack-maximal"),
}


def parse(argv):
    p = argparse.ArgumentParser(
        prog="python -m baselines.results",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    p.add_argument("--versions", nargs="+", type=int, default=list(VERSIONS))
    p.add_argument("--opponents", nargs="+", default=list(OPPONENTS), choices=list(OPPONENTS))
    p.add_argument("--num-seeds", type=int, default=4, help="seeds per cell, trained together")
    p.add_argument("--total-timesteps", type=int, default=None, help="override every command's default budget")
    p.add_argument("--output-dir", default="runs/results")
    args = p.parse_args(argv)
    if args.num_seeds <= 0 or (args.total_timesteps is not None and args.total_timesteps <= 0):
        p.error("--num-seeds and --total-timesteps must be positive")
    bad = [v for v in args.versions if not 0 <= v <= 21]
    if bad:
        p.error(f"versions are 0 … 21, got {bad}")
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


def table(results: list[dict], args) -> str:
    by = {(r["algo"], r["env"]): r for r in results}
    lines = [
        f"Evaluation hack probability, mean over {args.num_seeds} seeds (each evaluated with its own key), with the "
        "spread across seeds (sample std: training variance and evaluation noise) and the evaluation standard "
        "error of the mean apart (training time, compile excluded, all seeds together). "
        "Attackers want it high, defenders low.",
        "",
    ]
    for mode in args.opponents:
        learner, opponent = OPPONENTS[mode]
        lines += [f"**{learner} vs {opponent}** (`idsgame-{mode}-vN`)", ""]
        lines.append("| algorithm | " + " | ".join(f"v{v}" for v in args.versions) + " |")
        lines.append("|---|" + "---|" * len(args.versions))
        for algo in args.algos:
            cells = [
                cell_text(by[(algo, f"idsgame-{mode}-v{v}")]) if (algo, f"idsgame-{mode}-v{v}") in by else "–"
                for v in args.versions
            ]
            lines.append(f"| {algo} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> str:
    args = parse(argv)
    os.makedirs(args.output_dir, exist_ok=True)
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
    text = table(results, args)
    with open(os.path.join(args.output_dir, "RESULTS.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
