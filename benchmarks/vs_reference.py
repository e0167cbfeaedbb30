"""idsjax against the reference gym-idsgame, and against gymnax CartPole-v1, in one run on one machine.

    python -m benchmarks.vs_reference                    # the defaults, batch 8,192 (NOTES.md §4)
    python -m benchmarks.vs_reference --quick            # a smoke run (< 1 min)
    python -m benchmarks.vs_reference --envs all         # the 110 ids (random_attack-v18..v21 have no reference)
    python -m benchmarks.vs_reference --path both --devices 1 all   # both paths, one device and all of them

The reference steps one environment in Python with uniformly random action ids for the learner side
(both sides on two-agent ids; the bot plays the other side of single-agent ids), resetting on done,
for `--ref-seconds` per id. idsjax plays `--batch` games with the throughput protocol
(`benchmarks/_harness.py`) through `--path` (`vmap`: `jax.vmap(env.step)`, the path every trainer
takes; `batched`: `idsjax.batched.step`; `both`), and gymnax CartPole-v1 runs at the same batch size
with the same protocol as the yardstick of the simplest JAX environment, both split over the same
devices (`--devices`: counts or `all`, one per CPU core; several are each measured, with CartPole).
Ratios are given on wall-clock time and on process CPU time: the reference uses one core and idsjax
all of them, so the second is the per-core comparison. Writes `vs_reference.csv` and
`vs_reference.png`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import re
import sys
import time
import warnings
from pathlib import Path

from benchmarks import cpu_devices  # noqa: F401 - first: one JAX device per core

# isort: split
from benchmarks import _harness as h

YARDSTICK = "CartPole-v1"
# The reference's random attacker indexes a list that reconnaissance versions never fill (spec Q10).
REFERENCE_CRASHES = frozenset(f"idsgame-random_attack-v{v}" for v in (18, 19, 20, 21))
QUICK_ENVS = ("idsgame-v3", "idsgame-minimal_defense-v3")
_ID = re.compile(r"^idsgame-(?:(?P<mode>[a-z_]+)-)?v(?P<version>\d+)$")
_CLASS_MODE = {
    "": "",
    "random_defense": "RandomDefense",
    "minimal_defense": "MinimalDefense",
    "random_attack": "RandomAttack",
    "maximal_attack": "MaximalAttack",
}


def reference_available() -> bool:
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            import gym_idsgame.envs.idsgame_env  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means no reference
        return False
    return True


def reference_env(env_id: str):
    """The reference class of an idsjax id, constructed directly (old gym API)."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from gym_idsgame.envs import idsgame_env

    match = _ID.match(env_id)
    cls = getattr(idsgame_env, f"IdsGame{_CLASS_MODE[match['mode'] or '']}V{int(match['version'])}Env")
    with contextlib.redirect_stdout(io.StringIO()):
        return cls()


def reference_steps_per_s(env_id: str, seconds: float, seed: int = 0) -> tuple[float, int, float]:
    """Random play on one reference environment for about `seconds`: (steps/s, steps, steps per
    CPU-second)."""
    from idsjax.versions import Mode

    env = reference_env(env_id)
    rng = random.Random(seed)
    mode = Mode(_ID.match(env_id)["mode"] or "")
    num_attack, num_defense = env.num_attack_actions, env.num_defense_actions
    # The side a bot plays is ignored by the reference, but an attack id of -1 would mean "no attack"
    # even on defender ids, so the placeholder is 0.
    attack = (lambda: rng.randrange(num_attack)) if mode.learner in ("attacker", "both") else (lambda: 0)
    defend = (lambda: rng.randrange(num_defense)) if mode.learner in ("defender", "both") else (lambda: 0)
    with contextlib.redirect_stdout(io.StringIO()):
        env.reset()
        for _ in range(50):  # warmup
            if env.step((attack(), defend()))[2]:
                env.reset()
        steps = 0
        cpu_start, start = time.process_time(), time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(50):
                if env.step((attack(), defend()))[2]:
                    env.reset()
            steps += 50
            now = time.perf_counter()
            if now >= deadline:
                break
    return steps / (now - start), steps, steps / max(time.process_time() - cpu_start, 1e-9)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.vs_reference", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--envs",
        nargs="+",
        default=["default"],
        help="idsjax ids, 'default' (every version two-agent + every single-agent mode of v3) or "
        "'all' (110 ids). Default: %(default)s",
    )
    p.add_argument("--batch", type=int, default=8192, help="idsjax and CartPole batch size (default: %(default)s)")
    p.add_argument("--steps", type=int, default=64, help="scan length per timed idsjax call (default: %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="timed idsjax calls after the warmup (default: %(default)s)")
    p.add_argument(
        "--ref-seconds", type=float, default=1.5, help="seconds of reference play per id (default: %(default)s)"
    )
    p.add_argument("--no-reference", action="store_true", help="skip the reference (idsjax and CartPole only)")
    p.add_argument("--no-yardstick", action="store_true", help=f"skip gymnax {YARDSTICK}")
    h.add_step_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR, help="output folder (default: benchmarks/results)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {' '.join(QUICK_ENVS)}, 0.3 s of reference, 16-step scans, 2 repeats",
    )
    args = p.parse_args(argv)
    args.devices = h.device_counts(args.devices, p.error)
    if args.quick:
        given = argv if argv is not None else sys.argv[1:]
        if args.envs == ["default"]:
            args.envs = list(QUICK_ENVS)
        if "--ref-seconds" not in given:
            args.ref_seconds = 0.3
        if "--steps" not in given:
            args.steps = 16
        if "--repeats" not in given:
            args.repeats = 2
    return args


def measure_row(
    env_id: str, path: str, devices: int | None, reference: dict, errors: list[str], yardstick, args
) -> dict:
    """One row: idsjax on `env_id` through `path` over `devices`, beside the reference's and CartPole's figures."""
    row: dict = {"env_id": env_id, "path": path, "batch": args.batch, **reference}
    try:
        m = h.measure(env_id, args.batch, args.steps, repeats=args.repeats, seed=args.seed, devices=devices, path=path)
    except Exception as e:  # noqa: BLE001
        errors.append(f"idsjax {type(e).__name__}: {e}".splitlines()[0][:160])
    else:
        row.update(
            devices=m.devices,
            idsjax_steps_per_s=m.steps_per_s,
            idsjax_best_steps_per_s=m.best_steps_per_s,
            idsjax_steps_per_cpu_s=m.steps_per_cpu_s,
            compile_reset_s=m.compile_reset_s,
            compile_step_s=m.compile_step_s,
            compile_s=m.compile_s,
        )
        if row.get("reference_steps_per_s"):
            row["speedup"] = m.steps_per_s / row["reference_steps_per_s"]
            row["speedup_cpu"] = m.steps_per_cpu_s / row["reference_steps_per_cpu_s"]
        if yardstick is not None:
            row["cartpole_steps_per_s"] = yardstick.steps_per_s
            row["fraction_of_cartpole"] = m.steps_per_s / yardstick.steps_per_s
            row["cartpole_steps_per_cpu_s"] = yardstick.steps_per_cpu_s
            row["fraction_of_cartpole_cpu"] = m.steps_per_cpu_s / yardstick.steps_per_cpu_s
    row["note"] = "; ".join(errors)
    print(
        f"  {env_id} ({path}, {row.get('devices', '-')} device(s)): reference "
        f"{h.fmt(row.get('reference_steps_per_s'))}, idsjax {h.fmt(row.get('idsjax_steps_per_s'))} steps/s, "
        f"x{h.fmt(row.get('speedup'))}",
        file=sys.stderr,
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    ids = h.resolve_ids(args.envs)
    print(h.device_line(), flush=True)
    have_reference = not args.no_reference and reference_available()
    if not args.no_reference and not have_reference:
        print("gym_idsgame is not installed: reference columns left empty (`make reference` installs it)")

    yardsticks: dict = {}  # devices setting -> CartPole's Measurement
    if not args.no_yardstick:
        for devices in args.devices:
            yardsticks[devices] = m = h.measure(
                YARDSTICK, args.batch, args.steps, repeats=args.repeats, seed=args.seed, devices=devices
            )
            print(
                f"  {YARDSTICK} batch {args.batch} ({m.devices} device(s)): {m.steps_per_s:,.0f} steps/s",
                file=sys.stderr,
                flush=True,
            )

    rows: list[dict] = []
    for env_id in ids:
        reference: dict = {}
        errors = []
        if have_reference and env_id not in REFERENCE_CRASHES:
            try:
                (
                    reference["reference_steps_per_s"],
                    reference["reference_steps"],
                    reference["reference_steps_per_cpu_s"],
                ) = reference_steps_per_s(env_id, args.ref_seconds, args.seed)
            except Exception as e:  # noqa: BLE001
                errors.append(f"reference {type(e).__name__}: {e}".splitlines()[0][:120])
        elif env_id in REFERENCE_CRASHES:
            errors.append("reference crashes on this id (Q10)")
        for devices in args.devices:
            for path in h.paths_of(args.path):
                rows.append(measure_row(env_id, path, devices, reference, list(errors), yardsticks.get(devices), args))

    for yardstick in yardsticks.values():
        print(
            f"\n{YARDSTICK} (gymnax, same protocol, {yardstick.devices} device(s)): "
            f"{yardstick.steps_per_s:,.0f} steps/s, {yardstick.steps_per_cpu_s:,.0f} steps per CPU-second "
            f"(compile {yardstick.compile_s:.2f} s)"
        )
    print(f"\nbatch {args.batch}, {args.steps}-step scans; reference: one environment, {args.ref_seconds} s per id")
    columns = [
        ("env_id", "env"),
        ("path", "path"),
        ("devices", "devices"),
        ("reference_steps_per_s", "reference steps/s"),
        ("idsjax_steps_per_s", "idsjax steps/s"),
        ("idsjax_steps_per_cpu_s", "idsjax steps/CPU-s"),
        ("speedup", "x reference"),
        ("speedup_cpu", "x reference (CPU)"),
        ("fraction_of_cartpole", "/ CartPole"),
        ("fraction_of_cartpole_cpu", "/ CartPole (CPU)"),
        ("compile_s", "compile s"),
        ("note", "note"),
    ]
    print()
    h.print_table(rows, columns)
    keys = [
        "env_id",
        "path",
        "batch",
        "devices",
        "reference_steps_per_s",
        "reference_steps",
        "reference_steps_per_cpu_s",
        "idsjax_steps_per_s",
        "idsjax_best_steps_per_s",
        "idsjax_steps_per_cpu_s",
        "speedup",
        "speedup_cpu",
        "cartpole_steps_per_s",
        "fraction_of_cartpole",
        "cartpole_steps_per_cpu_s",
        "fraction_of_cartpole_cpu",
        "compile_reset_s",
        "compile_step_s",
        "compile_s",
        "note",
    ]
    table = [{k: row.get(k, "") for k in keys} | {"device": h.jax_device(), "jax": h.jax.__version__} for row in rows]
    csv_path = args.out / "vs_reference.csv"
    h.write_csv(csv_path, table)
    print(f"\nwrote {csv_path}")
    if not args.no_plot:
        png = args.out / "vs_reference.png"
        plot(rows, yardsticks, args.batch, png)
        print(f"wrote {png}")
    return table


def plot(rows: list[dict], yardsticks: dict, batch: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    several = len({(r["path"], r.get("devices")) for r in rows}) > 1  # label each bar with its path and devices
    ids = [f"{r['env_id']} ({r['path']}, {r.get('devices', '-')}d)" if several else r["env_id"] for r in rows]
    x = np.arange(len(ids))
    get = lambda key: np.array([r.get(key) or np.nan for r in rows], float)  # noqa: E731
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(ids) + 3), 8), sharex=True)
    top.bar(x - 0.2, get("reference_steps_per_s"), 0.4, label="reference (1 environment)", color="tab:gray")
    top.bar(x + 0.2, get("idsjax_steps_per_s"), 0.4, label=f"idsjax (batch {batch:,})", color="tab:blue")
    for yardstick in yardsticks.values():
        top.axhline(
            yardstick.steps_per_s,
            color="black",
            ls="--",
            lw=1,
            label=f"gymnax {YARDSTICK} (batch {batch:,}, {yardstick.devices} device(s))",
        )
    top.set_yscale("log")
    top.set_ylabel("steps per second")
    top.legend(fontsize=8)
    top.set_title(f"random play, same machine, same run — idsjax and CartPole on {h.devices_line()}")
    bottom.bar(x - 0.2, get("speedup"), 0.4, color="tab:green", label="wall-clock")
    bottom.bar(x + 0.2, get("speedup_cpu"), 0.4, color="tab:olive", label="CPU time")
    bottom.axhline(1000, color="tab:red", ls="--", lw=1, label="1,000x target")
    bottom.set_yscale("log")
    bottom.set_ylabel("idsjax / reference")
    bottom.legend(fontsize=8)
    bottom.set_xticks(x, ids, rotation=75, fontsize=7)
    for ax in (top, bottom):
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
