"""`jax.vmap(env.step)` throughput of this checkout against another commit, interleaved on one machine.

    python -m benchmarks.compare_commits --base 4a1f9a2 --envs all          # the 110 ids, before and after
    python -m benchmarks.compare_commits --base HEAD~3 --envs idsgame-v3 --rounds 3

The other commit is checked out into a temporary `git worktree`. First both sides fingerprint the
program each id compiles to (`benchmarks.program_hashes`, run in each tree): an id whose optimised
program is the same on both sides runs at the same speed by construction, and is reported as such
without timing (`--time-all` times it anyway). The others are timed, each side by its own
`python -m benchmarks.vs_reference` (idsjax only: no reference, no CartPole) started in its own tree, so
each imports its own `idsjax`. The ids are measured in groups, and within every group both sides run
one after the other, the order alternating from group to group and round to round: a change of load
during the run then hits both sides alike, and what is compared is the ratio within a group.

Per id it reports both sides' median steps/s over the rounds and the median of the per-round ratios
(this checkout / base), and writes them to `OUT/compare_commits.csv`. Speed is the harness's protocol
(`benchmarks._harness.measure`: a scan of `--steps` steps over `--batch` games, median of `--repeats`).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.compare_commits", description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare against (any git revision)")
    p.add_argument("--envs", nargs="+", default=["all"], help="ids, 'default' or 'all' (default: all)")
    p.add_argument("--rounds", type=int, default=2, help="times every id is measured on each side (default: 2)")
    p.add_argument("--group", type=int, default=10, help="ids per group of the interleaving (default: 10)")
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--devices", default="1", help="devices to split the batch over (default: 1)")
    p.add_argument("--out", default="benchmarks/results/compare_commits", help="output folder")
    p.add_argument("--time-all", action="store_true", help="time ids whose compiled programs are identical too")
    p.add_argument("--programs-only", action="store_true", help="compare the compiled programs, time nothing")
    args = p.parse_args(argv)
    for name in ("rounds", "group", "batch", "steps", "repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _resolve_ids(envs: list[str]) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from benchmarks import _harness

    return _harness.resolve_ids(envs)


def _measure(tree: Path, ids: list[str], out: Path, args: argparse.Namespace, cache: Path) -> dict[str, float]:
    """steps/s per id, measured by `tree`'s own `benchmarks.vs_reference` in a fresh process."""
    command = [sys.executable, "-m", "benchmarks.vs_reference", "--envs", *ids, "--no-reference", "--no-yardstick"]
    command += ["--no-plot", "--batch", str(args.batch), "--steps", str(args.steps), "--repeats", str(args.repeats)]
    command += ["--devices", args.devices, "--out", str(out)]
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    env.pop("PYTHONPATH", None)  # each side imports the idsjax of its own tree (its working directory)
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare_commits: {tree} failed to measure {ids}:\n{done.stderr[-2000:]}")
    with open(out / "vs_reference.csv") as f:
        rows = list(csv.DictReader(f))
    speeds = {r["env_id"]: float(r["idsjax_steps_per_s"]) for r in rows if r.get("idsjax_steps_per_s")}
    missing = [i for i in ids if i not in speeds]
    if missing:
        raise SystemExit(f"compare_commits: {tree} measured no speed for {', '.join(missing)}")
    return speeds


def _program_hashes(tree: Path, ids: list[str]) -> dict[str, str]:
    """`benchmarks.program_hashes` of this checkout, run against `tree`'s idsjax (its working directory)."""
    script = ROOT / "benchmarks" / "program_hashes.py"
    run = f"import runpy, sys; sys.path.insert(0, '.'); sys.argv = ['program_hashes', '--envs', *{ids!r}]; "
    run += f"runpy.run_path({str(script)!r}, run_name='__main__')"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JAX_COMPILATION_CACHE_DIR")}
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"  # a program read back from the cache prints differently
    done = subprocess.run([sys.executable, "-c", run], cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare_commits: {tree} failed to compile {ids}:\n{done.stderr[-2000:]}")
    return dict(line.split() for line in done.stdout.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    base = _git("rev-parse", "--verify", f"{args.base}^{{commit}}")
    head = _git("rev-parse", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    ids = _resolve_ids(args.envs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    speeds: dict[str, dict[str, list[float]]] = {i: {"base": [], "head": []} for i in ids}
    with tempfile.TemporaryDirectory(prefix="idsjax-base-") as tmp:
        tmp = Path(tmp)
        worktree = tmp / "base"
        _git("worktree", "add", "--detach", str(worktree), base)
        try:
            trees = {"base": worktree, "head": ROOT}
            hashes = {side: _program_hashes(tree, ids) for side, tree in trees.items()}
            same = {i for i in ids if hashes["base"][i] == hashes["head"][i]}
            timed = [] if args.programs_only else ids if args.time_all else [i for i in ids if i not in same]
            print(f"{len(same)} of {len(ids)} ids compile to the same program on both sides", file=sys.stderr)
            groups = [timed[i : i + args.group] for i in range(0, len(timed), args.group)]
            for r in range(args.rounds):
                for g, group in enumerate(groups):
                    order = ("base", "head") if (r + g) % 2 == 0 else ("head", "base")
                    for side in order:
                        got = _measure(trees[side], group, tmp / f"{side}-{r}-{g}", args, tmp / f"cache-{side}")
                        for i in group:
                            speeds[i][side].append(got[i])
                    done = f"round {r + 1}/{args.rounds}, group {g + 1}/{len(groups)} timed"
                    print(done, file=sys.stderr, flush=True)
        finally:
            _git("worktree", "remove", "--force", str(worktree))
    rows = []
    for i in ids:
        row = {"env_id": i, "same_program": i in same, "base_program": hashes["base"][i]}
        row["head_program"] = hashes["head"][i]
        if speeds[i]["base"]:
            ratios = [h / b for h, b in zip(speeds[i]["head"], speeds[i]["base"], strict=True)]
            row.update(
                base_steps_per_s=statistics.median(speeds[i]["base"]),
                head_steps_per_s=statistics.median(speeds[i]["head"]),
                ratio=statistics.median(ratios),
                ratio_min=min(ratios),
                ratio_max=max(ratios),
            )
        rows.append(row)
    fields = ["env_id", "same_program", "base_program", "head_program", "base_steps_per_s", "head_steps_per_s"]
    fields += ["ratio", "ratio_min", "ratio_max"]
    with open(out / "compare_commits.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    label = f"{head[:7]}{' + uncommitted changes' if dirty else ''}"
    print(f"this checkout ({label}) against {base[:7]}: optimised programs of jax.vmap(env.step) (batch 64),")
    print(f"then the differing ones timed: batch {args.batch}, {args.steps}-step scans, {args.repeats} repeats,")
    print(f"{args.rounds} rounds, devices {args.devices}; ratio = this / base (median of rounds)")
    print(f"{'env':<34} {'program':>9} {'base steps/s':>14} {'this steps/s':>14} {'ratio':>7} {'range':>13}")
    for row in rows:
        program = "same" if row["same_program"] else "differs"
        if "ratio" in row:
            timing = f"{row['base_steps_per_s']:>14,.0f} {row['head_steps_per_s']:>14,.0f} {row['ratio']:>7.3f} "
            timing += f"{row['ratio_min']:>6.3f}-{row['ratio_max']:.3f}"
        else:
            timing = f"{'-':>14} {'-':>14} {'1 (same)':>7}"
        print(f"{row['env_id']:<34} {program:>9} {timing}")
    same_count = sum(row["same_program"] for row in rows)
    print(f"{same_count} of {len(rows)} ids compile to the same program as the base (the same speed by construction)")
    ratios = [row for row in rows if "ratio" in row]
    if ratios:
        worst = min(ratios, key=lambda row: row["ratio"])
        median = statistics.median(r["ratio"] for r in ratios)
        print(f"timed: lowest ratio {worst['env_id']} {worst['ratio']:.3f}; median over timed ids {median:.3f}")
    print(f"wrote {out / 'compare_commits.csv'}")
    return rows


if __name__ == "__main__":
    main()
