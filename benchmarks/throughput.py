"""Environment steps per second of random play, for a list of ids across batch sizes.

    python -m benchmarks.throughput                      # the defaults (compile-bound, NOTES.md §4)
    python -m benchmarks.throughput --quick              # a smoke run (< 1 min)
    python -m benchmarks.throughput --envs idsgame-v3 CartPole-v1 --batch-sizes 1024 8192
    python -m benchmarks.throughput --envs idsgame-v3 CartPole-v1 --path both --devices 1 all

Protocol (`benchmarks/_harness.py`): uniform random action ids drawn with one batch-level key per
step, gymnax auto-reset through `--path`: `vmap` is `jax.vmap(env.step, in_axes=(0, 0, 0, None))`,
the path every trainer takes (for idsjax ids, `IdsGameEnv.step`'s batching rule runs
`idsjax.batched.step`), `batched` calls `idsjax.batched.step` by name, `both` measures each (gymnax
ids always take `vmap`); every observation, reward and done flag folded into a checksum carried
through one jitted `lax.scan` of a fixed number of steps; the batch split over the devices (one per
CPU core; `--devices 1 all` measures one device and all of them); compile (lower + compile of the
reset and of the scan) and one warmup call excluded from the timing; `block_until_ready`.
Steady-state speed is the median of at least `--repeats` calls and 0.5 s of play; the CSV adds the
best call and the steps per second of process CPU time (about 2 CPU-seconds per second on an idle
2-core machine).
Writes `throughput.csv` and `throughput.png` (steps/s against batch size, log-log) to `--out`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks import cpu_devices  # noqa: F401 - first: one JAX device per core

# isort: split
from benchmarks import _harness as h

DEFAULT_BATCH_SIZES = (1, 1024, 8192, 65536)
QUICK_ENVS = ("idsgame-v3", "idsgame-maximal_attack-v3")
QUICK_BATCH_SIZES = (64, 8192)
# Compiling dominates the default run (26 ids x 4 batch sizes, ~2 s per compile on 2 cores), so the
# batch list has 4 sizes and each timed call plays about 2^18 environment steps (0.03-0.3 s).
TARGET_STEPS_PER_CALL = 2**18
MIN_SCAN, MAX_SCAN = 10, 2000


def default_num_steps(batch: int, target: int = TARGET_STEPS_PER_CALL) -> int:
    return max(MIN_SCAN, min(MAX_SCAN, target // batch))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--envs",
        nargs="+",
        default=["default"],
        help="ids to run: idsjax ids, gymnax ids (e.g. CartPole-v1), 'default' (every version two-agent "
        "+ every single-agent mode of v3) or 'all' (the 110 idsjax ids). Default: %(default)s",
    )
    p.add_argument(
        "--batch-sizes",
        nargs="+",
        type=int,
        default=None,
        help=f"batch sizes (default: {' '.join(map(str, DEFAULT_BATCH_SIZES))})",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"scan length per timed call (default: {TARGET_STEPS_PER_CALL} // batch, "
        f"clipped to {MIN_SCAN}..{MAX_SCAN})",
    )
    p.add_argument("--repeats", type=int, default=3, help="timed calls after the warmup (default: %(default)s)")
    h.add_step_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR, help="output folder (default: benchmarks/results)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {' '.join(QUICK_ENVS)} at batch {' '.join(map(str, QUICK_BATCH_SIZES))}, "
        "short scans, 2 repeats (unless --envs/--batch-sizes/--steps/--repeats are given)",
    )
    args = p.parse_args(argv)
    args.devices = h.device_counts(args.devices, p.error)
    if args.quick:
        if args.envs == ["default"]:
            args.envs = list(QUICK_ENVS)
        args.batch_sizes = args.batch_sizes or list(QUICK_BATCH_SIZES)
        if "--repeats" not in (argv or sys.argv[1:]):
            args.repeats = 2
    args.batch_sizes = args.batch_sizes or list(DEFAULT_BATCH_SIZES)
    return args


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    ids = h.resolve_ids(args.envs)
    print(h.device_line(), flush=True)
    rows: list[dict] = []
    runs = [
        (i, b, d, p)
        for i in ids
        for b in args.batch_sizes
        for d in args.devices
        for p in (h.paths_of(args.path) if i.startswith("idsgame") else ["vmap"])
    ]  # gymnax ids: vmap only
    for env_id, batch, devices, path in runs:
        steps = args.steps or default_num_steps(batch, TARGET_STEPS_PER_CALL // (8 if args.quick else 1))
        row = {"env_id": env_id, "batch": batch, "path": path, "num_steps": steps}
        label = f"{env_id} batch {batch} ({path}, {'all' if devices is None else devices} device(s))"
        try:
            m = h.measure(env_id, batch, steps, repeats=args.repeats, seed=args.seed, devices=devices, path=path)
        except Exception as e:  # noqa: BLE001 - one broken id must not lose the others' results
            row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            print(f"  {label}: FAILED {row['error']}", file=sys.stderr, flush=True)
        else:
            row.update(
                devices=m.devices,
                steps_per_s=m.steps_per_s,
                best_steps_per_s=m.best_steps_per_s,
                steps_per_cpu_s=m.steps_per_cpu_s,
                compile_reset_s=m.compile_reset_s,
                compile_step_s=m.compile_step_s,
                compile_s=m.compile_s,
                step_program_mib=h.mib(m.step_program_bytes),
                reset_program_mib=h.mib(m.reset_program_bytes),
                max_rss_mib=h.mib(m.max_rss_bytes),
                checksum=m.checksum,
                error="",
            )
            print(f"  {label}: {m.steps_per_s:,.0f} steps/s, compile {m.compile_s:.2f} s", file=sys.stderr, flush=True)
        rows.append(row)

    columns = [
        ("env_id", "env"),
        ("path", "path"),
        ("batch", "batch"),
        ("devices", "devices"),
        ("num_steps", "scan"),
        ("steps_per_s", "steps/s (median)"),
        ("best_steps_per_s", "best"),
        ("steps_per_cpu_s", "steps/CPU-s"),
        ("compile_reset_s", "compile reset s"),
        ("compile_step_s", "compile scan s"),
        ("step_program_mib", "scan program MiB"),
        ("max_rss_mib", "max RSS MiB"),
        ("error", "error"),
    ]
    print()
    h.print_table(rows, columns)
    keys = [
        "env_id",
        "path",
        "batch",
        "devices",
        "num_steps",
        "steps_per_s",
        "best_steps_per_s",
        "steps_per_cpu_s",
        "compile_reset_s",
        "compile_step_s",
        "compile_s",
        "step_program_mib",
        "reset_program_mib",
        "max_rss_mib",
        "checksum",
        "error",
    ]
    table = [
        {k: row.get(k, "") for k in keys} | {"device": str(h.jax_device()), "jax": h.jax.__version__} for row in rows
    ]
    csv_path = args.out / "throughput.csv"
    h.write_csv(csv_path, table)
    print(f"\nwrote {csv_path}")
    if not args.no_plot:
        png = args.out / "throughput.png"
        plot(rows, png)
        print(f"wrote {png}")
    return table


def plot(rows: list[dict], path: Path) -> None:
    """Steps/s against batch size, log-log; on a CPU a second panel shows steps per CPU-second,
    which is what to read when the machine is shared with other work."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("steps_per_s", "environment steps per second (wall clock, median)")]
    if h.jax_device().startswith("cpu"):
        metrics.append(("steps_per_cpu_s", "environment steps per CPU-second (median)"))
    series = list(dict.fromkeys((r["env_id"], r["path"], r.get("devices")) for r in rows))
    several = len({s[1:] for s in series}) > 1  # more than one path or device count: label them
    fig, axes = plt.subplots(1, len(metrics), figsize=(7 * len(metrics) + 3, 6.5), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, (metric, label) in zip(axes[0], metrics, strict=True):
        for i, (env_id, step_path, devices) in enumerate(series):
            mine = [r for r in rows if (r["env_id"], r["path"], r.get("devices")) == (env_id, step_path, devices)]
            pts = sorted((r["batch"], r[metric]) for r in mine if r.get(metric))
            if not pts:
                continue
            x, y = zip(*pts, strict=True)
            bold = env_id in ("idsgame-v3", "CartPole-v1")
            color = "black" if env_id == "CartPole-v1" else cmap(i % 20)
            ax.plot(
                x,
                y,
                marker="o",
                ms=3,
                lw=2.5 if bold else 1,
                color=color,
                ls="-" if i < 20 or bold else "--",
                label=f"{env_id} ({step_path}, {devices} device(s))" if several else env_id,
            )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size (games stepped together)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.suptitle(f"idsjax random play, every observation consumed — {h.devices_line()}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
