"""Which compiled kernels a step's time goes to: the benchmark protocol's program on one device, traced
by `jax.profiler`, each XLA kernel's time summed over its calls and divided by the game-steps played.

    python -m benchmarks.kernels                                  # idsgame-v3, batch 8,192
    python -m benchmarks.kernels --env idsgame-random_attack-v12 --top 15 --out benchmarks/results/kernels

`profile_step` says what a part of the step costs by timing cumulative variants; this says where the
program spends it, kernel by kernel, with each kernel's output shape from the optimised HLO. It found
that building the defender's observation cost an eighth of a v3 step (benchmarks/NOTES.md §12).

Times are the traced durations of XLA's CPU thunks, summed over the threads that ran them, so they
are CPU time; loops and conditionals (`while`, `conditional`, `call`) contain other kernels and are
listed apart, not added to the total. The program is the one `benchmarks.throughput --path vmap
--devices 1` times (`_harness.random_play`).
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cpu_devices  # noqa: F401 - first: the devices the other benchmarks time on

# isort: split
import jax

import idsjax
from benchmarks import _harness as h

# HLO opcodes whose traced time includes the kernels they run.
CONTAINERS = ("while", "conditional", "call")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$")
_OPCODE = re.compile(r"\s([a-z][\w\-]*)\(")


@dataclass(frozen=True)
class Kernel:
    name: str
    opcode: str
    shape: str
    calls: int
    ns_per_game_step: float
    us_per_call: float


def instructions(hlo_text: str) -> dict[str, tuple[str, str]]:
    """{instruction name: (opcode, result shape)} of an optimised HLO module's text."""
    out = {}
    for line in hlo_text.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        rest = match.group(2)
        opcode = _OPCODE.search(" " + rest)
        if opcode:
            shape = rest[: opcode.start()].strip()
            out[match.group(1)] = (opcode.group(1), shape)
    return out


def kernel_times(trace_dir: str, known: dict[str, tuple[str, str]]) -> tuple[dict[str, int], dict[str, int]]:
    """({kernel: summed ns}, {kernel: calls}) over every thread of the trace, for the names in `known`."""
    files = list(Path(trace_dir).rglob("*.xplane.pb"))
    if not files:
        raise RuntimeError(f"jax.profiler wrote no trace under {trace_dir}")
    total, calls = collections.Counter(), collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(str(files[0])).planes:
        for line in plane.lines:
            for event in line.events:
                if event.name in known:
                    total[event.name] += event.duration_ns
                    calls[event.name] += 1
    return total, calls


def profile(env_id: str, batch: int, steps: int, calls: int, path: str = "vmap") -> list[Kernel]:
    """Kernels of `calls` timed calls of the random-play scan, the most expensive first."""
    env, params = idsjax.make(env_id)
    reset, run = h.random_play(env, params, batch, steps, path=path)
    key = jax.random.PRNGKey(0)
    state = jax.jit(reset)(key)
    compiled = jax.jit(run, donate_argnums=1).lower(key, state).compile()
    known = instructions(compiled.as_text())
    key, state, acc = compiled(key, state)  # warm-up, outside the trace
    jax.block_until_ready(acc)
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(calls):
                key, state, acc = compiled(key, state)
            jax.block_until_ready(acc)
        total, counts = kernel_times(trace_dir, known)
    if not total:
        raise RuntimeError(
            f"the trace holds no event named after a kernel of the program (backend {jax.default_backend()}): "
            "this backend's profiler does not trace XLA kernels by name"
        )
    game_steps = calls * steps * batch
    kernels = [
        Kernel(name, known[name][0], known[name][1], counts[name], ns / game_steps, ns / counts[name] / 1e3)
        for name, ns in total.items()
    ]
    return sorted(kernels, key=lambda k: -k.ns_per_game_step)


def report(kernels: list[Kernel], top: int) -> None:
    """Print the `top` kernels, the total over all of them, and the loops that contain them."""
    leaves = [k for k in kernels if k.opcode not in CONTAINERS]
    total = sum(k.ns_per_game_step for k in leaves)
    rows = [{**vars(k), "shape": k.shape[:48], "share": 100 * k.ns_per_game_step / total} for k in leaves[:top]]
    h.print_table(
        rows,
        [("name", "kernel"), ("opcode", "op"), ("shape", "output"), ("calls", "calls"),
         ("us_per_call", "us/call"), ("ns_per_game_step", "CPU ns/game-step"), ("share", "% of kernels")],
    )  # fmt: skip
    print(f"all {len(leaves)} kernels: {total:.1f} CPU ns per game-step")
    loops = [k for k in kernels if k.opcode in CONTAINERS][:5]
    if loops:
        listed = (f"{k.name} {k.ns_per_game_step:.1f} ns ({k.calls:,} calls)" for k in loops)
        print("containing others: " + ", ".join(listed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="idsgame-v3", help="idsjax id (default: idsgame-v3)")
    parser.add_argument("--batch", type=int, default=8192, help="games per step (default: 8192)")
    parser.add_argument("--steps", type=int, default=64, help="scan length (default: 64)")
    parser.add_argument("--calls", type=int, default=3, help="traced calls of the scan (default: 3)")
    parser.add_argument("--path", choices=("vmap", "batched"), default="vmap", help="the step (default: vmap)")
    parser.add_argument("--top", type=int, default=25, help="kernels to list (default: 25)")
    parser.add_argument("--out", type=Path, help="also write every kernel to OUT/kernels_<env>_b<batch>.csv")
    args = parser.parse_args(argv)
    for name in ("batch", "steps", "calls", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.env not in idsjax.registered_envs():
        parser.error(f"--env: {args.env!r} is not an idsjax id (see idsjax.registered_envs())")

    try:
        kernels = profile(args.env, args.batch, args.steps, args.calls, args.path)
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.env}, batch {args.batch:,}, {args.calls} x {args.steps}-step scans ({args.path}, one device)")
    report(kernels, args.top)
    if args.out:
        path = args.out / f"kernels_{args.env}_b{args.batch}.csv"
        h.write_csv(path, [vars(k) for k in kernels])
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
