"""The parts of `benchmarks/device_check.sh`, one process each, so that a part that runs out of time
or memory loses nothing the others measured.

    python -m benchmarks.device_check env      --out DIR [--small] [--budget S]
    python -m benchmarks.device_check train    --out DIR [--small] [--budget S]
    python -m benchmarks.device_check selfplay --out DIR [--small] [--budget S]
    python -m benchmarks.device_check report   --out DIR

`env`: random-play throughput and compile times of idsgame-v3, -v4, -v19 and gymnax CartPole-v1 at
batch 2^13 ... 2^22 (`--small`: 2^6 ... 2^10), the batch split over the backend's devices as in
`benchmarks.throughput`; then idsgame-v3 with idsjax's CPU fast paths forced the other way
(`idsjax.backend`), to measure what they do off the CPU. `train`: PPO training steps/s
(`benchmarks.train_throughput`) at `--num-envs` 2^10 ... 2^16 with one seed, the same PPO on CartPole
beside each, then `--num-seeds` 1 ... 1024 at 2^10 environments. `selfplay`: the same for self-play
on idsgame-v19. `report`: the plot and the summary table from the CSVs.

Every row is appended to its CSV the moment it is measured. A size that runs out of device memory is
recorded as such and the larger sizes of that series are skipped; before each measurement the part
checks its time budget against the last measurement's duration (times `GROWTH`) and records the
rest of the series as skipped when it would not fit.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from pathlib import Path

import jax

from benchmarks import _harness as h

ENV_IDS = ("idsgame-v3", "idsgame-v4", "idsgame-v19", "CartPole-v1")
ENV_BATCHES = tuple(2**k for k in range(13, 23))
SMALL_ENV_BATCHES = (2**6, 2**8, 2**10)
TRAIN_NUM_ENVS = tuple(2**k for k in range(10, 17))
SMALL_TRAIN_NUM_ENVS = (16, 64)
TRAIN_SEEDS = (1, 4, 16, 64, 256, 1024)
SMALL_TRAIN_SEEDS = (1, 4)
SEEDS_AT_NUM_ENVS, SMALL_SEEDS_AT_NUM_ENVS = 2**10, 16
FAST_PATH_BATCHES, SMALL_FAST_PATH_BATCHES = (2**16, 2**20), (2**8,)
GROWTH = 2.5  # the next size of a series costs at most this many times the last one (compile included)
ENV_CSV, TRAIN_CSV = "env.csv", "train.csv"
ENV_FIELDS = [
    "env_id",
    "batch",
    "fast_paths",
    "devices",
    "num_steps",
    "steps_per_s",
    "steps_per_cpu_s",
    "compile_reset_s",
    "compile_step_s",
    "step_program_mib",
    "status",
    "device",
    "jax",
]
TRAIN_FIELDS = [
    "algo",
    "env_id",
    "num_envs",
    "num_seeds",
    "steps_per_s",
    "vs_cartpole",
    "bound_steps_per_s",
    "fraction_of_bound",
    "updates_per_call",
    "compile_init_s",
    "compile_update_s",
    "program_mib",
    "status",
    "device",
    "jax",
]


def is_out_of_memory(err: BaseException) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return "resource_exhausted" in text or "out of memory" in text or isinstance(err, MemoryError)


def append_row(path: Path, fields: list[str], row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({"device": h.jax_device(), "jax": jax.__version__, **row})


class Budget:
    """Seconds left to a part, and whether the next measurement of a series would still fit."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def fits(self, last_cost: float) -> bool:
        return time.perf_counter() + GROWTH * last_cost < self.end


def run_series(sizes, measure, record, budget: Budget) -> None:
    """Measure `sizes` in order, `record(size, row_or_None, status)` each; stop the series at the first
    out-of-memory or when the budget cannot take the next size."""
    last_cost, stopped = 0.0, ""
    for size in sizes:
        if not stopped and not budget.fits(last_cost):
            stopped = "skipped: time budget"
        if stopped:
            record(size, None, stopped)
            continue
        t0 = time.perf_counter()
        try:
            row = measure(size)
        except Exception as e:  # noqa: BLE001 - out of memory is a result; anything else is reported
            if is_out_of_memory(e):
                record(size, None, "out of memory")
                stopped = "skipped: a smaller size ran out of memory"
            else:
                record(size, None, f"error: {type(e).__name__}: {e}".splitlines()[0][:200])
            print(f"  size {size}: {type(e).__name__}", file=sys.stderr, flush=True)
            continue
        finally:
            last_cost = time.perf_counter() - t0
        record(size, row, "ok")


# -- parts --------------------------------------------------------------------------------------
def env_part(out: Path, small: bool, budget: Budget) -> None:
    from idsjax import backend

    batches = SMALL_ENV_BATCHES if small else ENV_BATCHES
    default_mode = "on" if jax.default_backend() == "cpu" else "off"

    def series(env_id: str, sizes, fast_paths: str, part_budget: Budget):
        backend.set_fast_paths(fast_paths)

        def measure(batch):
            steps = max(10, min(200, 2**22 // batch)) if not small else 5
            return h.measure(env_id, batch, steps, repeats=2 if small else 3, min_seconds=0.0 if small else 0.3)

        def record(batch, m, status):
            row = {"env_id": env_id, "batch": batch, "fast_paths": fast_paths, "status": status}
            if m is not None:
                row.update(
                    devices=m.devices,
                    num_steps=m.num_steps,
                    steps_per_s=m.steps_per_s,
                    steps_per_cpu_s=m.steps_per_cpu_s,
                    compile_reset_s=m.compile_reset_s,
                    compile_step_s=m.compile_step_s,
                    step_program_mib=h.mib(m.step_program_bytes),
                )
                print(
                    f"  {env_id} batch {batch} fast paths {fast_paths}: {m.steps_per_s:,.0f} steps/s, "
                    f"compile {m.compile_s:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
            append_row(out / ENV_CSV, ENV_FIELDS, row)

        run_series(sizes, measure, record, part_budget)

    # The four ids share four fifths of the budget; the fast-path comparison gets the rest.
    main_budget = Budget((budget.end - time.perf_counter()) * 0.8)
    for i, env_id in enumerate(ENV_IDS):  # each id an equal share of what the ones before left
        series(env_id, batches, "auto", Budget((main_budget.end - time.perf_counter()) / (len(ENV_IDS) - i)))
    other = "off" if default_mode == "on" else "on"
    series("idsgame-v3", SMALL_FAST_PATH_BATCHES if small else FAST_PATH_BATCHES, other, budget)
    backend.set_fast_paths(None)


def train_part(out: Path, small: bool, budget: Budget, algo: str) -> None:
    from benchmarks import train_throughput as tt

    num_envs = SMALL_TRAIN_NUM_ENVS if small else TRAIN_NUM_ENVS
    seeds = SMALL_TRAIN_SEEDS if small else TRAIN_SEEDS
    at_envs = SMALL_SEEDS_AT_NUM_ENVS if small else SEEDS_AT_NUM_ENVS
    env_id = tt.DEFAULT_SELFPLAY_ENV if algo == "selfplay" else tt.DEFAULT_ENV
    target = 2**10 if small else 2**22
    cartpole: dict[tuple[int, int], float] = {}

    def one(label_env: str, n_envs: int, n_seeds: int) -> dict:
        config = tt.trainer_config(algo, env_id, n_envs, n_seeds)
        env, params = tt.make_env(label_env)
        m = tt.measure_training(
            algo, config, env, params, target, repeats=1 if small else 2, min_seconds=0.0 if small else 0.5
        )
        runner = m.pop("_runner")
        if algo == "ppo" and label_env == env_id:
            m.update(tt.bound(algo, config, runner, min_seconds=0.02 if small else 0.1))
        return m

    def record_for(n_seeds_fixed: int | None, n_envs_fixed: int | None, label_env: str):
        def record(size, m, status):
            n_envs = n_envs_fixed or size
            n_seeds = n_seeds_fixed or size
            name = f"{algo} (CartPole)" if label_env == tt.YARDSTICK else algo
            row = {"algo": name, "env_id": label_env, "num_envs": n_envs, "num_seeds": n_seeds, "status": status}
            if m is not None:
                row.update(m)
                if label_env == tt.YARDSTICK:
                    cartpole[(n_envs, n_seeds)] = m["steps_per_s"]
                elif (n_envs, n_seeds) in cartpole:
                    row["vs_cartpole"] = m["steps_per_s"] / cartpole[(n_envs, n_seeds)]
                if m.get("bound_steps_per_s"):
                    row["fraction_of_bound"] = m["steps_per_s"] / m["bound_steps_per_s"]
                print(
                    f"  {name} envs {n_envs} seeds {n_seeds}: {m['steps_per_s']:,.0f} steps/s",
                    file=sys.stderr,
                    flush=True,
                )
            append_row(out / TRAIN_CSV, TRAIN_FIELDS, row)

        return record

    remaining = budget.end - time.perf_counter()
    if algo == "ppo":
        # CartPole first at each size, so the idsjax row can carry its ratio.
        sweep = Budget(remaining * 0.6)

        def pair(n_envs):
            record_for(1, n_envs, tt.YARDSTICK)(n_envs, one(tt.YARDSTICK, n_envs, 1), "ok")
            return one(env_id, n_envs, 1)

        run_series(num_envs, pair, record_for(1, None, env_id), sweep)
    else:
        sweep = Budget(remaining * 0.5)
        run_series(num_envs, lambda n: one(env_id, n, 1), record_for(1, None, env_id), sweep)
    run_series(seeds, lambda s: one(env_id, at_envs, s), record_for(None, at_envs, env_id), budget)


def report_part(out: Path) -> None:
    """The plot and the summary (`summary.md`, also printed): the best figure of each series."""
    env_rows = read_csv(out / ENV_CSV)
    train_rows = read_csv(out / TRAIN_CSV)
    lines = [f"# device check: {h.devices_line()}, JAX {jax.__version__}", ""]
    lines += [
        "| env | fast paths | best steps/s | at batch | max compile s | largest batch run | stopped by |",
        "|---|---|---|---|---|---|---|",
    ]
    for key in dict.fromkeys((r["env_id"], r["fast_paths"]) for r in env_rows):
        rows = [r for r in env_rows if (r["env_id"], r["fast_paths"]) == key]
        ok = [r for r in rows if r["status"] == "ok"]
        stop = next((r["status"] for r in rows if r["status"] != "ok"), "")
        if ok:
            best = max(ok, key=lambda r: float(r["steps_per_s"]))
            comp = max(float(r["compile_reset_s"]) + float(r["compile_step_s"]) for r in ok)
            lines.append(
                f"| {key[0]} | {key[1]} | {float(best['steps_per_s']):,.0f} | {best['batch']} | "
                f"{comp:.1f} | {max(int(r['batch']) for r in ok)} | {stop or '-'} |"
            )
        else:
            lines.append(f"| {key[0]} | {key[1]} | - | - | - | - | {stop} |")
    lines += [
        "",
        "| trainer | best steps/s | at envs x seeds | ÷ CartPole there | of bound there | stopped by |",
        "|---|---|---|---|---|---|",
    ]
    for algo in dict.fromkeys(r["algo"] for r in train_rows):
        rows = [r for r in train_rows if r["algo"] == algo]
        ok = [r for r in rows if r["status"] == "ok"]
        stop = next((r["status"] for r in rows if r["status"] != "ok"), "")
        if ok:
            best = max(ok, key=lambda r: float(r["steps_per_s"]))
            lines.append(
                f"| {algo} | {float(best['steps_per_s']):,.0f} | {best['num_envs']} x {best['num_seeds']} | "
                f"{_num(best.get('vs_cartpole'))} | {_num(best.get('fraction_of_bound'))} | {stop or '-'} |"
            )
        else:
            lines.append(f"| {algo} | - | - | - | - | {stop} |")
    text = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(text)
    try:
        plot(env_rows, train_rows, out / "device_check.png")
    except Exception as e:  # noqa: BLE001 - the table matters more than the picture
        print(f"plot failed: {type(e).__name__}: {e}", file=sys.stderr)
    print(text)


def _num(value) -> str:
    return f"{float(value):.2f}" if value not in (None, "") else "-"


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot(env_rows: list[dict], train_rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_env, ax_envs, ax_seeds) = plt.subplots(1, 3, figsize=(19, 6))
    for key in dict.fromkeys((r["env_id"], r["fast_paths"]) for r in env_rows):
        pts = sorted(
            (int(r["batch"]), float(r["steps_per_s"]))
            for r in env_rows
            if (r["env_id"], r["fast_paths"]) == key and r["status"] == "ok"
        )
        if pts:
            label = key[0] if key[1] == "auto" else f"{key[0]} (fast paths {key[1]})"
            ax_env.plot(*zip(*pts, strict=True), marker="o", ls="-" if key[1] == "auto" else ":", label=label)
    ax_env.set_xlabel("batch (games)")
    ax_env.set_ylabel("environment steps/s, random play")
    for algo in dict.fromkeys(r["algo"] for r in train_rows):
        ok = [r for r in train_rows if r["algo"] == algo and r["status"] == "ok"]
        by_envs = sorted((int(r["num_envs"]), float(r["steps_per_s"])) for r in ok if r["num_seeds"] == "1")
        seed_env = max((int(r["num_envs"]) for r in ok if r["num_seeds"] != "1"), default=None)
        by_seeds = sorted(
            (int(r["num_seeds"]), float(r["steps_per_s"]))
            for r in ok
            if seed_env is not None and int(r["num_envs"]) == seed_env
        )
        if by_envs:
            ax_envs.plot(*zip(*by_envs, strict=True), marker="o", label=algo)
        if by_seeds:
            ax_seeds.plot(*zip(*by_seeds, strict=True), marker="o", label=f"{algo}, {seed_env} envs per seed")
    ax_envs.set_xlabel("environments (--num-envs), one seed")
    ax_seeds.set_xlabel("seeds (--num-seeds)")
    for ax in (ax_envs, ax_seeds):
        ax.set_ylabel("training environment steps/s")
    for ax in (ax_env, ax_envs, ax_seeds):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"device check — {h.devices_line()}, JAX {jax.__version__}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.device_check", description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=("env", "train", "selfplay", "report"))
    p.add_argument("--out", type=Path, required=True, help="folder for the CSVs, the plot and the summary")
    p.add_argument("--small", action="store_true", help="the CPU's small sizes")
    p.add_argument("--budget", type=float, default=120.0, help="seconds this part may take (default: %(default)s)")
    args = p.parse_args(argv)
    if args.budget <= 0:
        p.error(f"--budget must be positive, got {args.budget}")
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("idsjax.backend").setLevel(logging.INFO)
    print(
        f"device check {args.part}: {h.devices_line()}, JAX {jax.__version__}, "
        f"IDSJAX_FAST_PATHS={os.environ.get('IDSJAX_FAST_PATHS', 'auto')}",
        file=sys.stderr,
        flush=True,
    )
    budget = Budget(args.budget)
    if args.part == "env":
        env_part(args.out, args.small, budget)
    elif args.part == "report":
        report_part(args.out)
    else:
        train_part(args.out, args.small, budget, "ppo" if args.part == "train" else "selfplay")


if __name__ == "__main__":
    main()
