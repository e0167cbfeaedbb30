"""Data-parallel training on a device mesh, and JAX's own multi-process runtime.

`make_train(make_train_fn, config, env, env_params, devices)` turns a trainer (PPO's, DQN's `Trainer`,
see `baselines.trainer`) into the same contract with the same runner shapes, trained over a
`jax.sharding.Mesh` of `devices` along the axis `data` (`--devices N`; the host loop is unchanged):

- each device plays `num_envs / devices` of every seed's environments (and keeps that share of DQN's
  replay buffer), from its own environment and sampling keys (the device index folded in);
- the learner (parameters, optimiser state, DQN's target parameters) is device 0's after `init` and
  stays one: the trainer's optimiser is wrapped so that its first step averages the gradients over
  the mesh (`lax.pmean` inside the compiled update, before clipping), so every device applies the
  same update;
- the budget, DQN's buffer, warm-up and minibatch are split too, so N devices train the
  configuration given (same number of updates, same global minibatch);
- seeds compose with devices: the host `vmap`s over seeds as before.

With one device it returns `make_train_fn`'s trainer itself: a one-device run is bit for bit
today's. With several, each gradient is the mean of the devices' minibatch means, equal to the whole
minibatch's mean up to the order of the sums; PPO normalises advantages per device's minibatch.
Self-play (its `Layout`, `baselines.selfplay.trainer.mesh_layout`) shards its games, both learners and its per-game
opponents the same way, and sums its league's win/game counts over the devices (`mesh_axis`), so the
league's statistics stay one, those of all the devices' games.

`initialize(...)` starts `jax.distributed` for several processes (one per host, or several on one
machine), after which `jax.devices()` lists every process's devices and the same mesh spans them:
run the same command in every process with the coordinator's address, the process count and the
process's id (arguments, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID; under
SLURM or on a TPU slice `jax.distributed.initialize()` finds them itself). It must come before
anything starts JAX's backend, and importing idsjax does (gymnax builds arrays at import): so
`python -m baselines.ppo` (or dqn) joins first thing, in `baselines.cli.start` (called above the
trainer's imports), from the options `--coordinator-address`, `--num-processes`, `--process-id` or
those variables. Importing `baselines` joins nothing.

In a multi-process run the host loop keeps every process in step (the same programs, the same
collectives, in the same order) and lets process 0 alone touch the run directory: `from_lead` runs a
decision there and shares its value or its usage error, `share` broadcasts, `same_everywhere` stops
all processes when their commands differ, `to_host` gathers global arrays (checkpoints are written
from them by process 0 alone) and `place` puts host arrays back on the mesh (a resumed run).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

# The command-line side (which commands join, their options and checks; re-exported here) is in
# `baselines.cli`, which loads without JAX: a trainer's command line is parsed and joined before JAX starts.
from baselines.cli import (  # noqa: F401 (re-exported: host_loop and scripts use them from here)
    MULTI_PROCESS,
    ONE_PROCESS,
    PROCESS_OPTIONS,
    add_process_arguments,
    process_options,
)
from baselines.errors import UsageError

AXIS = "data"


def mesh(devices: int | Sequence | None = None) -> Mesh:
    """A one-axis mesh (`data`) over the first `devices` devices of the default backend (default:
    all, every process's devices under `jax.distributed`)."""
    available = jax.devices()
    if devices is None:
        chosen = available
    elif isinstance(devices, int):
        if not 1 <= devices <= len(available):
            raise UsageError(f"--devices must be between 1 and {len(available)} (the devices JAX sees), got {devices}")
        chosen = available[:devices]
        if jax.process_count() > 1 and devices != len(available):
            raise UsageError(
                f"--devices {devices}: {jax.process_count()} processes train over all their devices together; "
                f"give --devices {len(available)} (the devices of all processes)"
            )
    else:
        chosen = list(devices)
    return Mesh(np.asarray(chosen), (AXIS,))


def local_config(config: dict, num_devices: int) -> dict:
    """The configuration each device trains, so that the devices together train the configuration
    given: a share of the environments and of the step budget (the same number of updates), and for
    DQN a share of the replay buffer, of its warm-up and of each minibatch."""
    n = num_devices
    for name in ("num_envs", "batch_size"):
        if name in config and config[name] % n:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {config[name]} must be divisible by the {n} devices (--devices {n})")
    local = {**config, "num_envs": config["num_envs"] // n, "total_timesteps": config["total_timesteps"] / n}
    if "batch_size" in config:
        local["batch_size"] = config["batch_size"] // n
    for name in ("buffer_size", "learning_starts"):
        if name in config:
            local[name] = -(-config[name] // n)
    return local


def averaged_gradients(tx: optax.GradientTransformation) -> optax.GradientTransformation:
    """`tx` after averaging the gradients over the mesh axis (inside `shard_map`). Its state is
    `tx`'s own, so a checkpoint of a run on N devices has the structure of a one-device run's and
    loads anywhere (`baselines.checkpoints.load_policy`)."""

    def update(updates, state, params=None):
        return tx.update(jax.lax.pmean(updates, AXIS), state, params)

    return optax.GradientTransformation(tx.init, update)


def from_first_device(tree: Any) -> Any:
    """Every leaf as device 0 holds it, on every device (inside `shard_map`)."""
    first = jax.lax.axis_index(AXIS) == 0

    def pick(x):
        x = jnp.asarray(x)
        if x.dtype == jnp.bool_:
            return jax.lax.psum(jnp.where(first, x, False).astype(jnp.int32), AXIS).astype(bool)
        return jax.lax.psum(jnp.where(first, x, jnp.zeros_like(x)), AXIS)

    return jax.tree.map(pick, tree)


_AVERAGED: dict = {}


def averaged_learner(ts):
    """Device 0's train state `ts` with the gradient-averaging optimiser (one per trainer optimiser:
    it is static pytree metadata, which must be the same object at every trace)."""
    if ts.tx not in _AVERAGED:
        _AVERAGED[ts.tx] = averaged_gradients(ts.tx)
    tx = _AVERAGED[ts.tx]
    return from_first_device(ts.replace(tx=tx, opt_state=tx.init(ts.params)))


def replicate_learner(runner):
    """Device 0's train state (and target parameters), with the gradient-averaging optimiser."""
    out = {"train_state": averaged_learner(runner.train_state)}
    if hasattr(runner, "target_params"):
        out["target_params"] = from_first_device(runner.target_params)
    return runner._replace(**out)


def _runner_specs(runner_shape) -> Any:
    """shard_map specs of one seed's runner: the environments (`env`) and the replay buffer's
    transitions split over the mesh along their first axis; everything else replicated."""
    specs = {}
    for field in runner_shape._fields:
        value = getattr(runner_shape, field)
        if field == "env":
            specs[field] = P(AXIS)
        elif field == "buffer":
            specs[field] = type(value)(**{f: P() if f in ("pos", "size") else P(AXIS) for f in value._fields})
        else:
            specs[field] = P()
    return type(runner_shape)(**specs)


def combine_metrics(metrics: dict) -> dict:
    """Per-device metrics as one figure: counts summed, everything else averaged over the devices that
    have it (a device with no finished episode reports NaN)."""
    out = {}
    for name, value in metrics.items():
        if name == "episodes":
            out[name] = jax.lax.psum(value, AXIS)
            continue
        have = ~jnp.isnan(value)
        total = jax.lax.psum(jnp.where(have, value, 0.0), AXIS)
        count = jax.lax.psum(have.astype(value.dtype), AXIS)
        out[name] = jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)
    return out


class Layout(NamedTuple):
    """How a trainer's runner lies on the mesh: `specs(runner_shape)` gives one seed's `shard_map`
    specs (what each device holds a share of), `replicate(runner)` makes the learner device 0's after
    `init` (with gradient averaging), `combine(metrics)` turns the devices' metrics into one figure."""

    specs: Callable[[Any], Any]
    replicate: Callable[[Any], Any]
    combine: Callable[[dict], dict]


# PPO's and DQN's runners: `train_state`, `env` (and DQN's `buffer`, `target_params`).
SINGLE_LEARNER = Layout(_runner_specs, replicate_learner, combine_metrics)


def make_train(
    make_train_fn,
    config: dict,
    env,
    env_params,
    devices: int | Sequence | None = None,
    layout: Layout = SINGLE_LEARNER,
):
    """The trainer of `make_train_fn(config, env, env_params)` (PPO's, DQN's, self-play's with its
    own `layout`) with the same contract (`baselines.trainer.Trainer`) and the same runner shapes as
    a one-device run of `num_envs` environments, trained data-parallel over `devices` (default:
    `config["devices"]`, else 1): the environments and the replay buffer are sharded over the mesh,
    the learner replicated, gradients averaged inside the update. One device: `make_train_fn`'s
    trainer itself. Each device's trainer is built from `local_config`, which names the mesh axis
    (`mesh_axis`) for trainers whose statistics must be summed over the devices."""
    devices = config.get("devices", 1) if devices is None else devices
    m = mesh(devices)
    if m.size == 1:
        return make_train_fn(config, env, env_params)
    from baselines.trainer import Trainer

    local = make_train_fn({**local_config(config, m.size), "mesh_axis": AXIS}, env, env_params)
    shape = jax.eval_shape(local.init, jax.random.PRNGKey(0))
    if layout is SINGLE_LEARNER and not all(hasattr(shape, f) for f in ("train_state", "env", "rng")):
        raise UsageError(
            f"--devices {m.size}: {config.get('algo', 'this trainer')} trains on one device only "
            f"(data-parallel training covers ppo, dqn and self-play)"
        )
    specs = layout.specs(shape)

    def init_local(rng):
        runner = layout.replicate(local.init(jax.random.fold_in(rng, jax.lax.axis_index(AXIS))))
        return runner._replace(rng=rng)

    def update_local(runner):
        # Each device samples with its own key; the carried key stays one, device 0's.
        runner, metrics = local.update(runner._replace(rng=jax.random.fold_in(runner.rng, jax.lax.axis_index(AXIS))))
        return runner._replace(rng=from_first_device(runner.rng)), layout.combine(metrics)

    init = jax.shard_map(init_local, mesh=m, in_specs=P(), out_specs=specs, check_vma=False)
    update = jax.shard_map(update_local, mesh=m, in_specs=(specs,), out_specs=(specs, P()), check_vma=False)
    return Trainer(
        init=init,
        update=update,
        act=local.act,
        num_updates=local.num_updates,
        steps_per_update=local.steps_per_update * m.size,
        probs=local.probs,
    )


def initialize(
    coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> None:
    """Start JAX's multi-process runtime, from the arguments or JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID; with none of them, `jax.distributed.initialize()` detects
    the cluster (SLURM, TPU slices, ...). On the CPU, cross-process collectives use gloo. A second
    call (the runtime already started, e.g. by a trainer's command line) does nothing."""
    if jax.distributed.is_initialized():
        return
    address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    count = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES")
    pid = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # noqa: BLE001 - an older jax without the option: CPU collectives stay local
        pass
    if address is None and count is None and pid is None:
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=pid)


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{name} must be an integer, got {value!r}") from None


def is_lead() -> bool:
    """Whether this process writes the run's outputs: process 0 (the only one of a one-process run)."""
    return jax.process_index() == 0


def share(value: Any) -> Any:
    """Process 0's `value` (anything JSON can write) on every process; itself in a one-process run."""
    if jax.process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    data = json.dumps(value).encode() if is_lead() else b""
    size = int(multihost_utils.broadcast_one_to_all(np.int64(len(data))))
    padded = 1 << max(size - 1, 255).bit_length()  # few buffer sizes, so few broadcast programs
    buffer = np.frombuffer(data.ljust(padded, b"\0"), np.uint8)
    return json.loads(bytes(np.asarray(multihost_utils.broadcast_one_to_all(buffer))[:size]))


def from_lead(fn, *args) -> Any:
    """`fn(*args)` run by process 0 alone (what reads or writes the run directory, which only process 0
    holds), with its value (JSON) or its UsageError on every process, so that all processes go on or
    all stop."""
    if jax.process_count() == 1:
        return fn(*args)
    message = None
    if is_lead():
        try:
            message = {"value": fn(*args)}
        except UsageError as e:
            message = {"error": str(e)}
    message = share(message)
    if "error" in message:
        raise UsageError(message["error"])
    return message["value"]


def same_everywhere(what: str, value: Any) -> None:
    """UsageError on every process unless `value` (JSON) is the same on all: the processes must run
    the same command, else they would compile different programs and wait for each other forever."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    digest = np.frombuffer(hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest(), np.uint8)
    everyone = np.asarray(multihost_utils.process_allgather(digest))
    differ = [i for i in range(len(everyone)) if (everyone[i] != everyone[0]).any()]
    if differ:
        raise UsageError(
            f"process {differ[0]}'s {what} differs from process 0's; start every process with the same command"
        )


def to_host(tree: Any) -> Any:
    """Every leaf's whole value as a NumPy array on every process (a collective with several
    processes: every process calls it at the same point)."""
    from jax.experimental import multihost_utils

    def get(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree.map(get, tree)


def place(tree: Any, shardings: Any) -> Any:
    """Host arrays, the same on every process, as global arrays of `shardings` (a compiled program's
    input shardings): each process keeps its devices' parts."""
    return jax.tree.map(lambda x, s: jax.device_put(np.asarray(x), s), tree, shardings)
