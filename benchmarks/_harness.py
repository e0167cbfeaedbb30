"""The measurement protocol shared by the benchmarks.

Random play: every step draws both players' action ids uniformly from one batch-level `bits` draw
(`sample_actions`), splits one key per game, steps all games with gymnax's auto-reset, and folds every
observation and reward leaf into a checksum carried through the `lax.scan`, so XLA cannot drop any of
them. The step is one of `PATHS`: `vmap`, `jax.vmap(env.step, in_axes=(0, 0, 0, None))` as every
trainer writes it (for idsjax ids its batching rule runs `idsjax.batched.step`); `batched`,
`idsjax.batched.step` called by name; `step_game`, idsjax's per-game step under a plain `vmap` (what
`vmap(env.step)` ran before issue 16; for comparison). All three return the same values, bit for bit.
One jitted call runs a fixed number of steps; compile time (lower + compile of the
reset and of the step scan) is measured apart from the steady state, and the first run is a warmup.

The batch is split evenly over the devices of the default backend (`shard_map`), each device playing
its share with its own key: one device on a GPU host, and on a CPU host one device per core when the
command line set that up (`benchmarks.cpu_devices`) before JAX started. XLA otherwise runs one CPU
program over both cores by cutting every kernel in two, and pays a synchronisation per kernel
(benchmarks/NOTES.md §8).
"""

from __future__ import annotations

import csv
import dataclasses
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from idsjax import batched, threefry

RESULTS_DIR = Path(__file__).resolve().parent / "results"


# -- environments ------------------------------------------------------------------------------
def make_env(env_id: str):
    """An idsjax id, or any gymnax id (e.g. `CartPole-v1`, the yardstick)."""
    import idsjax

    if env_id in idsjax.registered_envs():
        return idsjax.make(env_id)
    import gymnax

    return gymnax.make(env_id)


def default_ids() -> list[str]:
    """Every version in two-agent mode, then every single-agent mode of v3."""
    from idsjax.versions import VERSIONS, Mode, env_id

    ids = [env_id(v, Mode.TWO_AGENT) for v in range(len(VERSIONS))]
    return ids + [env_id(3, m) for m in Mode if m is not Mode.TWO_AGENT]


def resolve_ids(names: Sequence[str]) -> list[str]:
    """Expand the shortcuts `default` and `all` (the 110 idsjax ids); keep everything else."""
    import idsjax

    out: list[str] = []
    for name in names:
        if name == "default":
            out += default_ids()
        elif name == "all":
            out += list(idsjax.registered_envs())
        else:
            out.append(name)
    return list(dict.fromkeys(out))


# -- random play -------------------------------------------------------------------------------
def sample_actions(space, key: jax.Array, batch: int):
    """Uniform action ids for the whole batch from one `bits` draw: Discrete, or a Dict of up to two
    Discretes (one 16-bit half of each word per player).

    One 32-bit word per game serves both players, where two `randint`s would draw four or six
    (benchmarks/NOTES.md §1). Keys and bits come from `idsjax.threefry`, which returns what
    `jax.random` returns without its CPU lowering's rolled loop (NOTES §7), for every environment
    of the run, the yardstick included. `(h * n) >> 16` maps 16 random bits to `0 … n-1` with a bias below
    n / 2**16 (0.4% for the 242 ids of v4-v6), invisible in a throughput benchmark.
    """
    words = batched.materialise(threefry.bits(key, (batch,)))  # one hash per word, not one per reader
    halves = (words & 0xFFFF, words >> 16)

    def to_ids(bits16, n):
        return ((bits16 * jnp.uint32(n)) >> 16).astype(jnp.int32)

    if hasattr(space, "spaces"):
        names = sorted(space.spaces)
        if len(names) > 2:
            raise ValueError(f"sample_actions draws at most two players' ids, got {names}")
        return {name: to_ids(h, space.spaces[name].n) for name, h in zip(names, halves, strict=False)}
    return to_ids(halves[1], space.n)


def fold(tree: Any, acc: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    """Add every element of every leaf of `tree` (leading axis: the batch) to a checksum.

    Integer leaves are summed over the batch axis in their own dtype (wrapping), then widened and
    summed: every element is read, and the fold costs about 40 ns per idsgame-v3 game-step on CPU
    where widening int8 to int32 before summing costs about 100 ns (benchmarks/NOTES.md). Booleans
    count as int8; floating leaves go to the float32 total.
    """
    total_i, total_f = acc
    for leaf in jax.tree.leaves(tree):
        leaf = jnp.asarray(leaf)
        if leaf.dtype == jnp.bool_:
            leaf = leaf.astype(jnp.int8)
        partial = leaf.sum(axis=0, dtype=leaf.dtype) if leaf.ndim > 1 else leaf
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            total_f = total_f + partial.sum(dtype=jnp.float32)
        else:
            total_i = total_i + partial.sum(dtype=jnp.int32)
    return total_i, total_f


def zero_checksum() -> tuple[jax.Array, jax.Array]:
    return jnp.int32(0), jnp.float32(0.0)


PATHS = ("vmap", "batched", "step_game")


def batch_step(env, path: str) -> Callable:
    """`(keys, state, action, params) -> step outputs` for the whole batch, by `path` (see `PATHS`)."""
    if path == "vmap":
        return jax.vmap(env.step, in_axes=(0, 0, 0, None))
    if path == "batched":
        return partial(batched.step, env)
    if path == "step_game":
        return jax.vmap(getattr(env, "step_game", env.step), in_axes=(0, 0, 0, None))
    raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")


def random_play(
    env, params, batch: int, num_steps: int, batched_step: bool | None = None, path: str = "vmap"
) -> tuple[Callable, Callable]:
    """`reset(key) -> state` and `run(key, state) -> (key, state, checksum)` for `batch` games, `run`
    playing `num_steps` random steps in one `lax.scan`.

    `params` is closed over, as trainers do, so it is a compile-time constant. The reset drops its
    observation: summing it would make XLA constant-fold a reduction over a constant batch (25 s of
    compile for idsgame-v4 at batch 65,536), which measures the checksum, not the environment.
    `path` picks the step (`PATHS`); `batched_step`, if given, is the older spelling of `path`
    (True: "batched", False: "vmap").
    """
    if batched_step is not None:
        path = "batched" if batched_step else "vmap"
    space = env.action_space(params)
    step = batch_step(env, path)
    reset_batch = jax.vmap(env.reset, in_axes=(0, None))

    def reset(key):
        _, state = reset_batch(jax.random.split(key, batch), params)
        return state

    def run(key, state):
        def body(carry, _):
            key, state, acc = carry
            key, k_action, k_step = threefry.split(key, 3)
            action = sample_actions(space, k_action, batch)
            obs, state, reward, terminated, truncated, _ = step(threefry.split(k_step, batch), state, action, params)
            acc = fold((obs, reward, terminated, truncated), acc)
            return (key, state, acc), None

        (key, state, acc), _ = jax.lax.scan(body, (key, state, zero_checksum()), None, length=num_steps)
        return key, state, acc

    return reset, run


# -- measurement -------------------------------------------------------------------------------
def max_rss_bytes() -> int:
    """The process's peak resident set size so far (monotone over the whole run)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if platform.system() == "Darwin" else rss * 1024


def program_bytes(compiled) -> int | None:
    """Peak device memory of one compiled program: arguments + outputs + temporaries - aliased."""
    try:
        m = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if m is None:
        return None
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)


def compile_timed(fn: Callable, *args, donate: tuple[int, ...] = ()) -> tuple[Any, float]:
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    return compiled, time.perf_counter() - start


def play_devices(batch: int, devices: int | None = None) -> list:
    """The devices that share a batch: the first `devices` of the default backend (default: all),
    fewer if they do not divide `batch` evenly."""
    available = jax.devices()
    n = len(available) if devices is None else devices
    if not 1 <= n <= len(available):
        raise ValueError(f"devices must be between 1 and {len(available)} ({available}), got {n}")
    while batch % n:
        n -= 1
    return available[:n]


def sharded_play(
    env, params, batch: int, num_steps: int, devices: Sequence, path: str = "vmap"
) -> tuple[Callable, Callable, Callable]:
    """`random_play` with the batch split evenly over `devices`, each shard stepped on its own device
    with its own key: `keys(seed)`, `reset(keys) -> state` and `run(keys, state) -> (keys, state,
    per-device checksums)`."""
    mesh = Mesh(np.asarray(devices), ("games",))
    shard = P("games")
    reset_local, run_local = random_play(env, params, batch // len(devices), num_steps, path=path)

    def reset(keys):
        return reset_local(keys[0])

    def run(keys, state):
        key, state, acc = run_local(keys[0], state)
        return key[None], state, jax.tree.map(lambda x: x[None], acc)

    # The scan's carry mixes per-device values with replicated constants; nothing crosses devices.
    reset = jax.shard_map(reset, mesh=mesh, in_specs=shard, out_specs=shard, check_vma=False)
    run = jax.shard_map(run, mesh=mesh, in_specs=(shard, shard), out_specs=shard, check_vma=False)

    def keys(seed: int):
        return jax.device_put(jax.random.split(jax.random.PRNGKey(seed), len(devices)), NamedSharding(mesh, shard))

    return keys, reset, run


def device_counts(values: Sequence[str], error: Callable[[str], Any]) -> list[int | None]:
    """The command lines' `--devices` values: counts, or `all` (None: every device of the backend).
    A count outside 1 ... the devices JAX sees goes to `error` (argparse's `error`: one sentence, exit 2)."""
    available = len(jax.devices())
    counts: list[int | None] = []
    for value in values:
        if value == "all":
            counts.append(None)
            continue
        try:
            n = int(value)
        except ValueError:
            n = 0
        if not 1 <= n <= available:
            error(f"--devices must be between 1 and {available} (the devices JAX sees here) or 'all', got {value}")
        counts.append(n)
    return list(dict.fromkeys(counts))


def paths_of(choice: str) -> list[str]:
    """The command lines' `--path`: `vmap`, `batched` or `both`."""
    return ["vmap", "batched"] if choice == "both" else [choice]


@dataclasses.dataclass
class Measurement:
    env_id: str
    batch: int
    num_steps: int
    devices: int  # devices the batch was split over
    path: str  # the step: one of PATHS
    steps_per_s: float  # median over the repeats
    best_steps_per_s: float
    steps_per_cpu_s: float  # per second of process CPU time (median): robust to other processes' load
    compile_reset_s: float
    compile_step_s: float
    step_program_bytes: int | None  # summed over the devices
    reset_program_bytes: int | None
    max_rss_bytes: int
    checksum: float
    repeats: int

    @property
    def compile_s(self) -> float:
        return self.compile_reset_s + self.compile_step_s


def timed_calls(run_c, key, state, *rest, repeats: int, min_seconds: float):
    """Warm up once, then call `run_c(key, state, *rest) -> (key, state, checksum)` at least `repeats`
    times, and more until `min_seconds` of timed play (at most 100 calls): (wall times, process CPU
    times, the last checksum)."""
    key, state, acc = jax.block_until_ready(run_c(key, state, *rest))  # warmup
    times, cpu_times = [], []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 100):
        cpu, start = time.process_time(), time.perf_counter()
        key, state, acc = jax.block_until_ready(run_c(key, state, *rest))
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    return times, cpu_times, acc


def measure(
    env_id: str,
    batch: int,
    num_steps: int,
    repeats: int = 3,
    seed: int = 0,
    devices: int | None = None,
    min_seconds: float = 0.5,
    path: str = "vmap",
) -> Measurement:
    """Compile, warm up once, then time at least `repeats` calls of the `num_steps` scan, and more
    until `min_seconds` of timed play: a short call on a busy machine is at the mercy of one hiccup."""
    env, params = make_env(env_id)
    used = play_devices(batch, devices)
    make_keys, reset, run = sharded_play(env, params, batch, num_steps, used, path=path)
    keys = make_keys(seed)
    reset_c, reset_s = compile_timed(reset, keys)
    state = reset_c(keys)
    run_c, step_s = compile_timed(run, keys, state, donate=(1,))

    times, cpu_times, acc = timed_calls(run_c, keys, state, repeats=repeats, min_seconds=min_seconds)
    steps = batch * num_steps
    per_device = [program_bytes(run_c), program_bytes(reset_c)]
    return Measurement(
        env_id=env_id,
        batch=batch,
        num_steps=num_steps,
        devices=len(used),
        path=path,
        steps_per_s=steps / statistics.median(times),
        best_steps_per_s=steps / min(times),
        steps_per_cpu_s=steps / max(statistics.median(cpu_times), 1e-9),
        compile_reset_s=reset_s,
        compile_step_s=step_s,
        step_program_bytes=None if per_device[0] is None else per_device[0] * len(used),
        reset_program_bytes=None if per_device[1] is None else per_device[1] * len(used),
        max_rss_bytes=max_rss_bytes(),
        checksum=float(np.sum(acc[0])) + float(np.sum(acc[1])),
        repeats=len(times),
    )


# -- output ------------------------------------------------------------------------------------
def device_line() -> str:
    devices = jax.devices()
    return f"JAX {jax.__version__} on {len(devices)} device(s) {devices} ({os.cpu_count()} CPU cores visible)"


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """`columns`: (key, header). Numbers are formatted by `fmt`."""
    cells = [[header for _, header in columns]] + [[fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    for i, r in enumerate(cells):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def fmt(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def mib(n: int | None) -> float | None:
    return None if n is None else n / 2**20


def jax_device() -> str:
    """The first JAX device in words, e.g. `cpu:cpu` or `gpu:NVIDIA H100 80GB HBM3`."""
    d = jax.devices()[0]
    return f"{d.platform}:{getattr(d, 'device_kind', d)}"


def devices_line() -> str:
    """The default backend's devices in words, e.g. `2 x cpu:cpu`."""
    return f"{len(jax.devices())} x {jax_device()}"


def add_step_arguments(p) -> None:
    """The options both benchmark commands share: the device counts and idsjax's step path."""
    p.add_argument(
        "--devices",
        nargs="+",
        default=["all"],
        help="device counts to split the batch over, each measured: numbers or 'all' "
        "(default: all; on a CPU one device per core)",
    )
    p.add_argument(
        "--path",
        choices=("vmap", "batched", "both"),
        default="vmap",
        help="idsjax's step: jax.vmap(env.step), idsjax.batched.step, or both (default: %(default)s)",
    )
