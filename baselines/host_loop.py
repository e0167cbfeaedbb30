"""The host loop that drives a compiled trainer: start fresh or resume, run chunks of updates with a
progress bar, append `metrics.csv` (and TensorBoard events), checkpoint, plot, evaluate, and print
one JSON line.

The host compiles `vmap(scan of K updates)` over seeds once (ahead of time, so compilation is timed
apart from training) and loops on chunks, which gives the progress bar, the metrics file and the
checkpoint points without host callbacks inside the compiled program. The last chunk runs only the
remaining updates (a `lax.cond` skips the rest), so `--chunks` never changes a result. A chunked
run and `Trainer.train` play the same episodes (tests check it; losses agree up to float rounding).
`run_chunks` is that loop alone (a chunk program over a budget, its outputs on the host, its time);
`train_chunks` adds the run directory around it, and the reference grid's windows
(`baselines.reference_grid.run.train_windows`) their evaluations.

Every update also checks, on the device, that the losses and every floating-point array of the
training state (parameters, optimiser state, Q-table, replay buffer) are finite; the first
non-finite one stops the run with exit code 1, naming the update and the quantity, after saving
the last finite state as a checkpoint, and no result is reported.

SIGINT (Ctrl-C) and SIGTERM stop a run without losing it: during training the loop finishes the
chunk it is running (an update boundary), saves a checkpoint, and exits with one line saying how
to continue (`--resume`), with the shell's code for the signal, 128 + its number: 130 for SIGINT,
143 for SIGTERM. A signal before training starts or while evaluating exits at once with one line
(the run's last checkpoint is kept); a second signal stops at once without saving.

Several processes (`jax.distributed`, see `baselines.distributed`) run this loop in step: the same
programs and collectives in the same order on every process, while process 0 alone writes the run
directory (configuration, metrics, checkpoints, plot, eval.json), shows progress and prints the
result; its decisions about the directory (a fresh run refused, a resumed run's state) reach the
others, so that all go on or all stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from baselines import checkpoints, distributed, logs, scenarios
from baselines.cli import HOST_ONLY, parse_config
from baselines.errors import NonFiniteError, UsageError
from baselines.evaluation import evaluate
from baselines.trainer import budget_note, plan_updates


def fmt(x: float) -> float:
    return float(round(float(x), 4))


def say(text: str) -> None:
    """A line for the person running the command (stderr: stdout's last line is the JSON result); in
    a multi-process run, process 0's only."""
    if distributed.is_lead():
        print(text, file=sys.stderr, flush=True)


def run(module, argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout.

    In a multi-process run (`--coordinator-address`, `--num-processes`, `--process-id` or their JAX_*
    variables; joined when `python -m baselines.<algo>` imported the package) every process runs the
    same compiled programs in the same order and process 0 alone writes the run directory and prints."""
    argv = guarded(module.ALGO, without_process_options, sys.argv[1:] if argv is None else argv, module.ALGO)
    config = parse_config(module, argv)
    with stop_on_signals(module.ALGO, config["output_dir"], config["progress"]):
        return guarded(module.ALGO, _run, module, config)


def without_process_options(argv, algo: str) -> list[str]:
    """`argv` less its multi-process options, which joined the run when the package was imported
    (`baselines.distributed.join_command_line`); UsageError where they ask for a run not joined."""
    settings, rest = distributed.process_options(argv)
    if settings is not None and not jax.distributed.is_initialized():
        raise UsageError(
            f"--coordinator-address (or JAX_COORDINATOR_ADDRESS) joins a multi-process run from the command "
            f"line only (python -m baselines.{algo}); a script calls baselines.distributed.initialize() first"
        )
    return rest


def guarded(algo: str, fn, *args):
    """`fn(*args)`, with a usage error as one sentence and exit code 2, a non-finite run as one
    sentence and exit code 1, and a run stopped by a signal (`stop_on_signals`) as one line and exit
    code 128 + the signal's number."""
    try:
        return fn(*args)
    except UsageError as e:
        print(f"python -m baselines.{algo}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except NonFiniteError as e:
        print(f"python -m baselines.{algo}: error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    except Interrupted as e:
        if distributed.is_lead():
            print(f"python -m baselines.{algo}: {e}", file=sys.stderr, flush=True)
        raise SystemExit(128 + e.signum) from None


# --- stopping on a signal -------------------------------------------------------------------------


class Interrupted(BaseException):
    """A run stopped by SIGINT or SIGTERM: one line on stderr, exit code 128 + `signum`. A
    BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.signum = signum


class StopRequest:
    """What SIGINT and SIGTERM do while a trainer runs. During training (`deferring`) the first
    signal is a request that the host loop honours at the end of the chunk it runs (it saves a
    checkpoint, then raises `Interrupted`); anywhere else, or on a second signal, `Interrupted` is
    raised at once, with a line that says what the run directory holds then."""

    def __init__(self, algo: str, output_dir: str, progress: bool = True):
        self.algo, self.output_dir, self.progress = algo, output_dir, progress
        self.signum: int | None = None
        self.deferring = False
        self.trained = False  # the run's training is over and saved: a signal interrupts its evaluation

    def resume_command(self) -> str:
        return f"python -m baselines.{self.algo} --resume --output-dir {shlex.quote(str(self.output_dir))}"

    def handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.deferring and self.signum is None:
            self.signum = signum
            # os.write, not print: the handler may run while the main thread is inside a print; a new
            # line first leaves the progress bar's line
            line = (
                f"{name}: stopping at the end of this chunk to save a checkpoint (a second {name} stops without saving)"
            )
            os.write(2, (("\n" if self.progress else "") + line + "\n").encode())
            return
        if self.deferring:
            raise Interrupted(
                signum,
                f"interrupted again ({name}) before the checkpoint was saved; {self.output_dir} keeps its "
                f"last checkpoint, if it has one (continue it with {self.resume_command()})",
            )
        if self.trained:
            raise Interrupted(
                signum,
                f"interrupted ({name}) while evaluating; the trained run is saved: evaluate it with "
                f"{self.resume_command()}",
            )
        if checkpoints.saved_updates(self.output_dir):  # a resumed run, or one a fresh run was to replace
            raise Interrupted(
                signum,
                f"interrupted ({name}) before training started; {self.output_dir} is as it was: continue its "
                f"run with {self.resume_command()}",
            )
        raise Interrupted(signum, f"interrupted ({name}) before training started; nothing was saved")

    def stop_now(self) -> int | None:
        """The signal every process agrees to stop on (any process's), or None: asked once per chunk."""
        if jax.process_count() == 1:
            return self.signum
        from jax.experimental import multihost_utils

        everyone = np.asarray(multihost_utils.process_allgather(np.int32(self.signum or 0)))
        return int(everyone.max()) or None


_STOP: StopRequest | None = None


@contextlib.contextmanager
def stop_on_signals(algo: str, output_dir: str, progress: bool = True):
    """SIGINT and SIGTERM handled by a `StopRequest` for the duration (the previous handlers back
    afterwards); nothing where signals cannot be handled (a thread other than the main one). A signal
    the process was started ignoring (a shell's background job ignores SIGINT, `nohup` SIGHUP) stays
    ignored, as Python itself leaves it."""
    global _STOP
    request, previous, outer = StopRequest(algo, output_dir, progress), {}, _STOP
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, request.handle)
    except ValueError:  # not the main thread
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        yield None
        return
    _STOP = request
    try:
        yield request
    finally:
        _STOP = outer
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_PROGRAMS: dict[str, tuple] = {}


def finite_checks(runner, metrics: dict) -> tuple[list[str], jax.Array]:
    """(names, bool[Q]): whether each loss metric and each floating-point array of the training state
    is finite. Losses come first: when a loss and the parameters go bad in the same update, the loss
    is the cause."""
    named = [(k, v) for k, v in metrics.items() if "loss" in k]
    for path, leaf in jax.tree_util.tree_flatten_with_path(runner)[0]:
        if jnp.issubdtype(jnp.asarray(leaf).dtype, jnp.floating):
            named.append((jax.tree_util.keystr(path).lstrip("."), leaf))
    return [n for n, _ in named], jnp.stack([jnp.isfinite(v).all() for _, v in named])


def make_chunk(trainer, k_chunk: int):
    """`chunk(runner, n_active) -> (runner, metrics [K], finite [K, Q])`: `k_chunk` scanned updates of
    which the first `n_active` run (the others pass the runner through with NaN metrics), and the
    names of the checked quantities (filled when the program is traced)."""
    names: list[str] = []

    def chunk(runner, n_active):
        def run_update(r):
            r, metrics = trainer.update(r)
            checked, finite = finite_checks(r, metrics)
            names[:] = checked
            return r, metrics, finite

        shapes = jax.eval_shape(run_update, runner)

        def skip(r):
            nothing = jax.tree.map(
                lambda s: jnp.full(s.shape, jnp.nan if jnp.issubdtype(s.dtype, jnp.floating) else 0, s.dtype), shapes[1]
            )
            return r, nothing, jnp.ones(shapes[2].shape, bool)

        def body(r, i):
            r, metrics, finite = jax.lax.cond(i < n_active, run_update, skip, r)
            return r, (metrics, finite)

        runner, (metrics, finite) = jax.lax.scan(body, runner, jnp.arange(k_chunk))
        return runner, metrics, finite

    return chunk, names


def compile_programs(trainer, rngs, k_chunk: int) -> dict:
    """The jitted `init` and chunk programs over seeds, compiled now (ahead of time), with their
    compile time, so that training time and steps per second exclude compilation."""
    t0 = time.perf_counter()
    init = jax.jit(jax.vmap(trainer.init)).lower(rngs).compile()
    abstract = jax.eval_shape(jax.vmap(trainer.init), rngs)
    chunk, names = make_chunk(trainer, k_chunk)
    chunk_fn = (
        jax.jit(jax.vmap(chunk, in_axes=(0, None))).lower(abstract, jax.ShapeDtypeStruct((), jnp.int32)).compile()
    )
    return {
        "init": init,
        "chunk": chunk_fn,
        "check_names": names,
        "abstract": abstract,
        "compile_seconds": time.perf_counter() - t0,
    }


class Chunk(NamedTuple):
    """One chunk of a budget's updates, as `run_chunks` ran it."""

    runner: Any  # the training state after the chunk, on the device (a fresh array: nothing is donated)
    outputs: tuple  # the program's other outputs on the host, cut to the updates that ran ([seeds, updates, …])
    start: int  # the updates done before the chunk
    updates: int  # the updates it ran: k_chunk, or what the budget has left in its last chunk
    seconds: float  # its training time: the program and bringing its outputs to the host

    @property
    def done(self) -> int:
        return self.start + self.updates


def run_chunks(program, runner, num_updates: int, k_chunk: int, done_updates: int = 0) -> Iterator[Chunk]:
    """The one host loop: advance the training state from update `done_updates` to `num_updates` with
    the compiled `program(runner, n) -> (runner, *outputs)`, whose outputs are [seeds, k_chunk, …]
    arrays of which the first `n` updates ran (`n` is an argument, so that the budget's shorter last
    chunk runs the same program), yielding each chunk's state, outputs (gathered from every process)
    and time.

    What the caller does between chunks (rows, checkpoints, evaluations) is not in a chunk's
    `seconds`; stopping early is leaving the loop. `program` must be compiled ahead of time
    (`jit(…).lower(…).compile()`): a jitted function would compile inside the first chunk, and its
    compilation would count as training."""
    if not isinstance(program, jax.stages.Compiled):
        raise TypeError(
            "run_chunks takes a chunk program compiled ahead of time (jax.jit(f).lower(...).compile()), so "
            "that compiling it is not timed as training"
        )
    while done_updates < num_updates:
        n = min(k_chunk, num_updates - done_updates)
        t = time.perf_counter()
        # the trip count as a device scalar, as the trainers always passed it (also across processes)
        runner, *outputs = program(runner, jnp.int32(n))
        outputs = tuple(jax.tree.map(lambda x: np.asarray(x)[:, :n], distributed.to_host(o)) for o in outputs)
        yield Chunk(runner, outputs, done_updates, n, time.perf_counter() - t)
        done_updates += n


def _programs(module, config: dict, rngs, announce: str):
    """The environment, trainer and compiled programs of a configuration, built once per process, so
    that in-process runs of one configuration (a resumed run, tests, sweeps) compile once."""
    key = json.dumps({k: v for k, v in config.items() if k not in HOST_ONLY}, sort_keys=True)
    if key not in _PROGRAMS:
        env, env_params = scenarios.make_env(config)  # a registered id, --scenario or --generator
        trainer = distributed.make_train(module.make_train, config, env, env_params)  # 1 device: module's own
        _, k_chunk = plan_updates(config, trainer.steps_per_update)
        say(announce)
        compiled = compile_programs(trainer, rngs, k_chunk)
        say(f"compiled in {compiled['compile_seconds']:.1f} s")

        def eval_one(r, key):
            return evaluate(env, env_params, trainer.act, r, key, config["eval_episodes"], config["mask_illegal"])

        compiled["evaluate"] = jax.jit(jax.vmap(eval_one))
        _PROGRAMS.clear()  # keep one: compiled programs hold memory
        _PROGRAMS[key] = (env, env_params, trainer, compiled)
    else:
        _PROGRAMS[key][3]["compile_seconds"] = 0.0  # already compiled in this process
    return _PROGRAMS[key]


# What `--resume` takes from the command line; every other option given there is ignored (warned).
RESUME_FROM_COMMAND_LINE = ("output_dir", "resume", "progress", "stop_after", "tensorboard", "cli_flags")


def resumed_config(config: dict, algo: str) -> dict:
    """`config`, or with `--resume` the run's saved configuration: it wins, so the result equals an
    uninterrupted run's; only the progress bar, `--stop-after`, `--tensorboard` and the output folder
    may change, and every other option given on the command line is named in a warning."""
    if not config["resume"]:
        return config
    if config.get("overwrite"):
        raise UsageError("--resume continues the run in --output-dir and --overwrite replaces it; give one of them")
    out = config["output_dir"]
    if not holds_run(out):
        raise UsageError(f"--resume: no checkpoint in {out!r}: it holds no run; start one without --resume")
    unresumable = why_unresumable(out)
    if unresumable:
        raise UsageError(
            f"--resume: {out!r} holds a run that cannot be resumed ({unresumable}); start it afresh with "
            f"--overwrite instead of --resume, or choose another --output-dir"
        )
    try:
        saved = checkpoints.load_config(out)
    except UsageError as err:
        raise UsageError(f"--resume: {err}") from None
    if saved.get("algo") != algo:
        raise UsageError(f"--resume: {out!r} holds a {saved.get('algo')!r} run, not {algo!r}")
    for flag in config.get("cli_flags", []):
        if flag not in RESUME_FROM_COMMAND_LINE:
            given, kept = config.get(flag), saved.get(flag)
            say(
                f"warning: --resume keeps the run's saved configuration: --{flag.replace('_', '-')} {given} is "
                f"ignored (the run uses {kept})"
            )
    kept = {k: config.get(k) for k in RESUME_FROM_COMMAND_LINE}
    return {**saved, **kept, "overwrite": False}


def holds_run(output_dir: str) -> bool:
    """Whether `output_dir` holds (some of) a run: its configuration, metrics or checkpoints."""
    return any(
        os.path.exists(os.path.join(output_dir, name))
        for name in (checkpoints.CONFIG_FILE, checkpoints.CKPT_DIR, logs.METRICS_FILE)
    )


def why_unresumable(output_dir: str) -> str | None:
    """Why the run in `output_dir` cannot be continued with `--resume` (a clause), or None when it can:
    it needs its configuration and a finished checkpoint."""
    has_config = os.path.isfile(os.path.join(output_dir, checkpoints.CONFIG_FILE))
    if not checkpoints.saved_updates(output_dir):
        files = " and ".join(
            name
            for name in (checkpoints.CONFIG_FILE, logs.METRICS_FILE)
            if os.path.isfile(os.path.join(output_dir, name))
        )
        return f"{files or 'it'} but no checkpoint: it stopped before saving one"
    if not has_config:
        return f"checkpoints but no {checkpoints.CONFIG_FILE}"
    return None


def check_fresh_dir(output_dir: str, config: dict) -> None:
    """UsageError unless a fresh run may start in `output_dir`: a directory that holds a run is
    refused unless `--overwrite` (nothing is lost by accident), with what can be done with it.
    Checked before compiling too, so that the refusal comes at once."""
    if holds_run(output_dir) and not config.get("overwrite"):
        raise UsageError(f"{output_dir!r} already holds a run; {what_to_do_with(output_dir, config['algo'])}")


def start_fresh_run(output_dir: str, config: dict) -> None:
    """Save the resolved configuration (`check_fresh_dir` first); with `--overwrite`, the earlier
    run's metrics and checkpoints are removed."""
    check_fresh_dir(output_dir, config)
    if holds_run(output_dir):
        say(f"--overwrite: replacing the run in {output_dir}")
    metrics_path = os.path.join(output_dir, logs.METRICS_FILE)
    if os.path.isfile(metrics_path):
        os.remove(metrics_path)
    shutil.rmtree(os.path.join(output_dir, checkpoints.CKPT_DIR), ignore_errors=True)
    with open(os.path.join(output_dir, checkpoints.CONFIG_FILE), "w") as f:
        json.dump(checkpoints.jsonable(config), f, indent=2, sort_keys=True)


def what_to_do_with(output_dir: str, algo: str) -> str:
    """The choices a fresh run has in a directory that holds a run: those `--resume` would accept."""
    unresumable = why_unresumable(output_dir)
    if unresumable:
        return f"it cannot be resumed ({unresumable}); replace it with --overwrite, or choose another --output-dir"
    try:
        saved = checkpoints.load_config(output_dir).get("algo")
    except UsageError:
        return (
            f"its {checkpoints.CONFIG_FILE} is unreadable; replace it with --overwrite, or choose another --output-dir"
        )
    if saved != algo:
        return (
            f"it is a {saved} run (python -m baselines.{saved} --resume continues it); replace it with "
            f"--overwrite, or choose another --output-dir"
        )
    return "continue it with --resume, replace it with --overwrite, or choose another --output-dir"


def first_nonfinite(finite: np.ndarray, names: list[str]) -> tuple[int, int, list[str]] | None:
    """(update index in the chunk, seed, names) of the first update in which a checked quantity of
    some seed is not finite, or None. `finite` is bool [seeds, K, Q]."""
    bad = ~finite
    if not bad.any():
        return None
    k = int(np.argmax(bad.any(axis=(0, 2))))
    seed = int(np.argmax(bad[:, k].any(axis=1)))
    return k, seed, [names[q] for q in np.flatnonzero(bad[seed, k])]


class TensorBoard:
    """The metrics rows as TensorBoard scalars (tensorboardX: no TensorFlow), `<metric>/seed<s>`
    against environment steps per seed."""

    def __init__(self, logdir: str | None):
        self.writer = None
        if logdir:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                raise UsageError(
                    "--tensorboard needs tensorboardX; run make install (or pip install tensorboardX)"
                ) from None
            self.writer = SummaryWriter(logdir)

    def write(self, rows: list[dict]) -> None:
        if self.writer is None:
            return
        for row in rows:
            for name, value in row.items():
                if name not in ("update", "seed", "env_steps", "wall_time"):
                    self.writer.add_scalar(f"{name}/seed{row['seed']}", value, row["env_steps"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train_chunks(config: dict, trainer, rngs, programs: dict, desc: str, plot_title: str):
    """The host loop every trainer shares: start fresh or resume from `config["output_dir"]`, run the
    compiled chunk program until done or `--stop-after`, appending metrics.csv (and TensorBoard
    events), showing a progress bar with the training steps per second (compile excluded),
    checkpointing every `--checkpoint-every` steps and at the end, and plotting the learning curves.
    Raises NonFiniteError when training goes non-finite, and Interrupted, once the run is saved,
    when SIGINT or SIGTERM asked it to stop (`stop_on_signals`). Returns `(runner, done_updates,
    train_seconds, stopped)`; `train_seconds` is the time spent training (compilation excluded)."""
    from tqdm import tqdm

    stop = _STOP
    if stop is not None:
        stop.deferring = True  # from here a signal is honoured at the end of a chunk, with a checkpoint

    out, progress, stop_after = config["output_dir"], config["progress"], config["stop_after"]
    num_seeds = config["num_seeds"]
    _, k_chunk = plan_updates(config, trainer.steps_per_update)
    lead = distributed.is_lead()
    if lead:
        os.makedirs(out, exist_ok=True)
    metrics_path = os.path.join(out, logs.METRICS_FILE)
    spu = trainer.steps_per_update

    if config["resume"]:
        runner, done_updates, wall_before = restore(out, programs)
        programs["resumed_at_update"] = done_updates  # the report says so (`train_result`)
        if lead:
            logs.truncate_metrics(metrics_path, done_updates)
        say(
            f"resuming {out} at update {done_updates} of {trainer.num_updates} "
            f"({done_updates * spu} of {trainer.num_updates * spu} steps per seed)"
        )
    else:
        distributed.from_lead(start_fresh_run, out, config)
        note = budget_note(config, trainer.num_updates, spu)
        if note:
            say(f"note: {note}")
        runner = programs["init"](rngs)
        done_updates, wall_before = 0, 0.0
        programs["resumed_at_update"] = None  # the programs may be cached from a resumed run

    board = TensorBoard(config.get("tensorboard") if lead else None)
    ckpt_every = config["checkpoint_every"]
    next_ckpt = (done_updates * spu // ckpt_every + 1) * ckpt_every if ckpt_every else None
    bar = tqdm(
        total=trainer.num_updates * spu * num_seeds,
        initial=done_updates * spu * num_seeds,
        unit="step",
        unit_scale=True,
        disable=not (progress and lead),
        file=sys.stderr,
        dynamic_ncols=True,
        desc=desc,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]",
    )
    stopped = False
    # The run's clock is wall time from here, the loop's writing and checkpointing included (what
    # metrics.csv's wall_time, the checkpoints and --resume carry), not the chunks' `seconds` alone.
    session_steps, t0 = 0, time.perf_counter()
    for chunk in run_chunks(programs["chunk"], runner, trainer.num_updates, k_chunk, done_updates):
        previous, runner, (metrics, finite) = runner, chunk.runner, chunk.outputs
        wall = wall_before + time.perf_counter() - t0
        bad = first_nonfinite(finite, programs["check_names"])
        if bad is not None:
            k, seed, names = bad
            metrics = {name: v[:, : k + 1] for name, v in metrics.items()}
        rows = logs.metric_rows(metrics, chunk.start, spu, wall, num_seeds)
        if lead:
            logs.write_metrics(metrics_path, rows, append=True)
        board.write(rows)
        if bad is not None:
            bar.close()
            board.close()
            raise nonfinite_error(config, previous, chunk.start, chunk.start + k + 1, seed, names, wall)
        done_updates = chunk.done
        session_steps += chunk.updates * spu * num_seeds
        hp = metrics["hack_probability"][:, -1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no episode finished yet: NaN
            bar.set_postfix_str(
                f"{session_steps / max(time.perf_counter() - t0, 1e-9):,.0f} steps/s, hack_p={np.nanmean(hp):.3f}",
                refresh=False,
            )
        bar.update(chunk.updates * spu * num_seeds)
        steps = done_updates * spu
        if next_ckpt is not None and steps >= next_ckpt and done_updates < trainer.num_updates:
            save(out, done_updates, runner, wall, config)
            next_ckpt = (steps // ckpt_every + 1) * ckpt_every
        if stop_after and steps >= stop_after and done_updates < trainer.num_updates:
            stopped = True
            break
        signum = stop.stop_now() if stop is not None else None
        if signum:
            break
    bar.close()
    board.close()
    jax.block_until_ready(runner)
    train_seconds = wall_before + time.perf_counter() - t0
    save(out, done_updates, runner, train_seconds, config)
    if lead:
        logs.plot_metrics(metrics_path, os.path.join(out, "learning_curves.png"), plot_title)
    if stop is not None:
        stop.deferring, stop.trained = False, True
        signum = stop.stop_now()
        if signum:
            name, total = signal.Signals(signum).name, trainer.num_updates * spu
            where = (
                f"after training ({total:,} steps per seed), before evaluating; the trained run is saved: "
                f"evaluate it with"
                if done_updates == trainer.num_updates
                else f"at {done_updates * spu:,} of {total:,} steps per seed; saved: continue with"
            )
            raise Interrupted(signum, f"interrupted ({name}) {where} {stop.resume_command()}")
    return runner, done_updates, train_seconds, stopped


def save(output_dir: str, update: int, runner, wall: float, config: dict) -> None:
    """Checkpoint the runner. With several processes, every process gathers it (a collective) and
    process 0 alone writes it."""
    if jax.process_count() > 1:
        runner = distributed.to_host(runner)
        if not distributed.is_lead():
            return
    checkpoints.save_checkpoint(output_dir, update, runner, wall, config)


def restore(output_dir: str, programs: dict):
    """`(runner, update, wall_time)` of the run's newest intact checkpoint. With several processes,
    process 0 reads it and every process receives it, placed as the chunk program expects."""

    def read():
        try:
            return checkpoints.restore_checkpoint(output_dir, programs["abstract"])
        except UsageError as err:
            raise UsageError(f"--resume: {err}") from None

    if jax.process_count() == 1:  # read onto one device, then laid out as the compiled program expects
        runner, update, wall = read()
        return distributed.place(runner, programs["chunk"].input_shardings[0][0]), update, wall
    from jax.experimental import multihost_utils

    kept = {}

    def read_on_lead():
        kept["runner"], update, wall = read()
        return [update, wall]

    update, wall = distributed.from_lead(read_on_lead)
    runner = kept.get("runner")
    if runner is None:  # not process 0: the shapes to receive into
        runner = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), programs["abstract"])
    runner = distributed.to_host(multihost_utils.broadcast_one_to_all(jax.tree.map(np.asarray, runner)))
    return distributed.place(runner, programs["chunk"].input_shardings[0][0]), update, wall


def nonfinite_error(
    config: dict, last_finite, last_finite_update: int, bad_update: int, seed: int, names: list[str], wall: float
) -> NonFiniteError:
    """Save the last finite state (the start of the failing chunk) and describe the failure."""
    out = config["output_dir"]
    if last_finite_update > 0:
        save(out, last_finite_update, last_finite, wall, config)
        kept = f"the last finite state (update {last_finite_update}) is checkpointed in {out}"
    else:
        kept = "no update finished finite, so no checkpoint was saved"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return NonFiniteError(
        f"training went non-finite in update {bad_update} (seed {seed}): {shown} not finite; no result is "
        f"reported, {kept}. Lower the learning rate or --reward-scale, or check the rewards."
    )


def train_result(
    config: dict,
    trainer,
    done_updates: int,
    train_seconds: float,
    compile_seconds: float = 0.0,
    resumed_at_update: int | None = None,
    **extra,
) -> dict:
    """The first fields of a run's JSON line. `steps_per_second`: environment steps of all seeds per
    second of training, compilation excluded (the figure the progress bar shows). `train_seconds` is
    the training of every session of the run; a resumed run says where it resumed
    (`resumed_at_env_steps`), so that a training time longer than this session's wall time is read
    right."""
    env_steps = done_updates * trainer.steps_per_update
    num_seeds = config["num_seeds"]
    if resumed_at_update is not None:
        extra = {"resumed_at_env_steps": resumed_at_update * trainer.steps_per_update, **extra}
    return {
        "algo": config["algo"],
        "env": config["env"],
        "seed": config["seed"],
        "num_seeds": num_seeds,
        **extra,
        "env_steps": env_steps,
        "train_seconds": fmt(train_seconds),
        "compile_seconds": fmt(compile_seconds),
        "steps_per_second": fmt(env_steps * num_seeds / max(train_seconds, 1e-9)),
    }


def report_stopped(result: dict, out: str) -> dict:
    result["stopped"] = True
    say(f"stopped after {result['env_steps']} steps per seed; continue with --resume --output-dir {out}")
    say(f"results in {out}")
    if distributed.is_lead():
        print(json.dumps(result))
    return result


def evaluation_keys(seed: int, num_seeds: int) -> jax.Array:
    """One evaluation key per seed of a run, distinct across seeds and runs (`--seed`) and apart from
    the training stream, so each seed's evaluation noise is independent."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), 0xE7A1)
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.arange(num_seeds))


def probability_summary(prefix: str, p_per_seed, n_per_seed) -> dict:
    """A probability estimated on `n` games per seed: the mean over seeds, its evaluation standard
    error (binomial, from the games alone), the spread across seeds (sample std, which holds both
    training variance and evaluation noise), and per seed the estimate and its standard error."""
    p = np.atleast_1d(np.asarray(p_per_seed, np.float64))
    n = np.maximum(np.atleast_1d(np.asarray(n_per_seed, np.float64)), 1)
    se = np.sqrt(p * (1 - p) / n)
    return {
        prefix: fmt(p.mean()),
        f"{prefix}_se": fmt(np.sqrt(np.sum(se**2)) / len(p)),
        f"{prefix}_seed_std": fmt(p.std(ddof=1)) if len(p) > 1 else None,
        f"{prefix}_per_seed": [fmt(x) for x in p],
        f"{prefix}_se_per_seed": [fmt(x) for x in se],
    }


def _run(module, config: dict) -> dict:
    distributed.same_everywhere("command line", {k: v for k, v in config.items() if k not in HOST_ONLY})
    config = distributed.from_lead(resumed_config, config, module.ALGO)
    out = config["output_dir"]
    if not config["resume"]:
        distributed.from_lead(check_fresh_dir, out, config)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    announce = (
        f"compiling {module.ALGO} on {config['env']} ({num_seeds} seed{'s' * (num_seeds > 1)} x "
        f"{config['num_envs']} games) …"
    )
    env, env_params, trainer, compiled = _programs(module, config, rngs, announce)
    runner, done_updates, train_seconds, stopped = train_chunks(
        config,
        trainer,
        rngs,
        compiled,
        desc=f"{module.ALGO} {config['env']}",
        plot_title=f"{module.ALGO} on {config['env']}",
    )
    result = train_result(
        config, trainer, done_updates, train_seconds, compiled["compile_seconds"], compiled.get("resumed_at_update")
    )
    if stopped:
        return report_stopped(result, out)

    say(f"evaluating on {config['eval_episodes']} games per seed …")
    ev = distributed.to_host(compiled["evaluate"](runner, evaluation_keys(config["seed"], num_seeds)))
    per_seed = [{k: fmt(v[s]) for k, v in ev.items()} for s in range(num_seeds)]
    hack = probability_summary("eval_hack_probability", ev["hack_probability"], ev["episodes"])
    if distributed.is_lead():
        with open(os.path.join(out, "eval.json"), "w") as f:
            json.dump({"per_seed": per_seed, "policy": getattr(module, "EVAL_POLICY", ""), **hack}, f, indent=2)
    result.update(
        {
            "eval_episodes": int(np.sum(ev["episodes"])),
            **hack,
            "eval_attacker_return": fmt(np.mean(ev["attacker_return"])),
            "eval_defender_return": fmt(np.mean(ev["defender_return"])),
            "output_dir": out,
        }
    )
    say(
        f"hack probability {hack['eval_hack_probability']:.4f} ± {hack['eval_hack_probability_se']:.4f} (evaluation SE)"
        + (f", seed std {hack['eval_hack_probability_seed_std']:.4f}" if num_seeds > 1 else "")
    )
    say(f"results in {out}")
    if distributed.is_lead():
        print(json.dumps(result))
        sys.stdout.flush()
    return result
