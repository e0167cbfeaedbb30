"""Data-parallel training over a device mesh (`baselines.distributed`), in one process with two CPU
devices and in two processes on 127.0.0.1 with one device each (`jax.distributed`).

Each run is a subprocess: the device count and the distributed runtime must be set before JAX starts.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from forced_devices import assert_plays_on_one_device, train_command, trained

ROOT = Path(__file__).resolve().parents[1]

# One short PPO run (2 updates of 8 environments per seed, 2 seeds) over a mesh; saves this process's
# rows of the parameters and of the observations, and a few facts, to OUT.
WORKER = r"""
import json, sys
import jax
mode, out = sys.argv[1], sys.argv[2]
if mode == "local":
    jax.config.update("jax_num_cpu_devices", int(sys.argv[3]))
else:
    from baselines import distributed
    distributed.initialize(f"127.0.0.1:{sys.argv[3]}", num_processes=2, process_id=int(sys.argv[4]))
import numpy as np
import idsjax
from baselines import cli, distributed, ppo

config = cli.parse_config(ppo, ["--num-envs", "8", "--num-seeds", "2", "--total-timesteps", "512", "--no-progress"])
env, params = idsjax.make(config["env"])
trainer = distributed.make_train(ppo.make_train, config, env, params, devices=2)
chunk = lambda r: jax.lax.scan(lambda c, _: trainer.update(c), r, None, 2)
runner, metrics = jax.jit(jax.vmap(chunk))(jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(7), 2)))

def local(x):  # this process's part of a global array, along the axis it is split on
    shards = sorted(x.addressable_shards, key=lambda s: [sl.start or 0 for sl in s.index])
    if len({str(s.index) for s in shards}) == 1:
        return np.asarray(shards[0].data)
    axis = next(i for i, sl in enumerate(shards[0].index) if sl != slice(None))
    return np.concatenate([np.asarray(s.data) for s in shards], axis=axis)

leaves = jax.tree.leaves(runner.train_state.params)
copies = np.stack([np.asarray(s.data) for s in leaves[0].addressable_shards])  # each local device's copy
np.savez(out + ".npz", obs=local(runner.env.obs), copies=copies,
         episodes=local(metrics["episodes"]), **{f"p{i}": local(x) for i, x in enumerate(leaves)})
json.dump({"devices": jax.device_count(), "local": jax.local_device_count(), "process": jax.process_index()},
          open(out + ".json", "w"))
"""


def run_worker(args, timeout=600):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
    )


def finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]


def load(path):
    with np.load(str(path) + ".npz") as z:
        data = {k: z[k] for k in z.files}
    return data, json.loads(Path(str(path) + ".json").read_text())


def params_of(data):
    return [data[k] for k in sorted((k for k in data if k.startswith("p")), key=lambda k: int(k[1:]))]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_devices_and_two_processes_train_one_model(tmp_path):
    """One process with two CPU devices keeps one set of parameters while each device plays its own
    games; two processes on 127.0.0.1 (`jax.distributed`, one CPU device each) train that same run."""
    port = free_port()
    procs = [run_worker(["multi", tmp_path / f"proc{i}", port, i, 2]) for i in range(2)]
    local = run_worker(["local", tmp_path / "single", 2, "-", 2])
    for proc in procs + [local]:
        finish(proc)
    (d0, f0), (d1, f1) = load(tmp_path / "proc0"), load(tmp_path / "proc1")
    single, facts = load(tmp_path / "single")

    # One process, two devices: one learner, each device its own games (4 of each seed's 8).
    assert facts["devices"] == 2
    np.testing.assert_array_equal(single["copies"][0], single["copies"][1])
    assert (single["obs"][:, :4] != single["obs"][:, 4:]).any()
    assert (single["episodes"] > 0).any()

    # Two processes: the same run; each process played its device's share.
    assert (f0["devices"], f0["local"], f0["process"]) == (2, 1, 0)
    assert (f1["devices"], f1["local"], f1["process"]) == (2, 1, 1)
    for a, b, s in zip(params_of(d0), params_of(d1), params_of(single)):
        np.testing.assert_array_equal(a, b)  # both processes hold the same parameters
        np.testing.assert_allclose(a, s, rtol=1e-5, atol=1e-6)  # those of one process with two devices
    np.testing.assert_array_equal(d0["obs"], single["obs"][:, :4])
    np.testing.assert_array_equal(d1["obs"], single["obs"][:, 4:])


def ppo_result(tmp_path, devices, name):
    return trained(
        [
            "baselines.ppo",
            "--devices",
            str(devices),
            "--total-timesteps",
            "30000",
            "--num-envs",
            "32",
            "--eval-episodes",
            "500",
            "--no-progress",
            "--output-dir",
            str(tmp_path / name),
        ]
    )


def test_ppo_command_line_on_two_devices(tmp_path):
    """`python -m baselines.ppo --devices 2` under two forced host devices, on a tiny budget: it trains
    the whole budget once (not once per device) and writes a run that loads on one device."""
    out = tmp_path / "run"
    # started as the tests below start theirs: it compiles with this session's XLA flags (make test's)
    [(proc, stdout, err)] = outputs(
        [start(["baselines.ppo", "--devices", "2", "--total-timesteps", "2048", "--num-envs", "16", "--num-steps",
                "16", "--eval-episodes", "50", "--no-progress", "--output-dir", str(out)], tmp_path, 2)],
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["env_steps"] == 2048  # 8 updates of 16 games x 16 steps, split over the devices
    assert_plays_on_one_device(out, result["env"])


@pytest.mark.slow  # 18 s; the tiny command line above and the identity test stay in the default suite
def test_ppo_command_line_on_two_devices_learns(tmp_path):
    """`python -m baselines.ppo --devices 2` with two forced host devices: the whole budget is trained
    (not twice it) and the attacker learns what one device learns at this budget (near the 0.896
    optimum vs defend-minimal; 1 device: 0.89-0.91)."""
    result = ppo_result(tmp_path, 2, "two")
    assert result["env_steps"] == 30720  # 30 updates of 32 games x 32 steps, split over the devices
    assert result["eval_hack_probability"] >= 0.8


@pytest.mark.slow
def test_two_devices_learn_what_one_device_learns(tmp_path):
    one, two = ppo_result(tmp_path, 1, "one"), ppo_result(tmp_path, 2, "two")
    se = (one["eval_hack_probability_se"] ** 2 + two["eval_hack_probability_se"] ** 2) ** 0.5
    assert abs(one["eval_hack_probability"] - two["eval_hack_probability"]) <= 4 * se + 0.02


@pytest.mark.slow  # two command lines, about 20 s each
@pytest.mark.parametrize("algo", ["reinforce", "actor_critic"])
def test_policy_gradient_trainers_split_over_two_devices(tmp_path, algo):
    """REINFORCE and actor-critic have PPO's runner fields, so they train over the mesh the same way:
    the whole budget once, and a run that loads on one device."""
    out = tmp_path / algo
    result = trained(
        [f"baselines.{algo}", "--devices", "2", "--total-timesteps", "4096", "--num-envs", "16",
         "--eval-episodes", "50", "--no-progress", "--output-dir", str(out)]
    )  # fmt: skip
    assert result["env_steps"] == 4096  # as on one device: the budget is split, not repeated
    assert_plays_on_one_device(out, result["env"])


def test_tabular_q_refuses_devices(tmp_path):
    done = train_command(
        [
            "baselines.tabular_q",
            "--devices",
            "2",
            "--total-timesteps",
            "2048",
            "--no-progress",
            "--output-dir",
            str(tmp_path / "run"),
        ]
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--devices 2: tabular_q trains on one device only" in done.stderr


@pytest.mark.parametrize(
    "module, args, sentence",
    [
        ("ppo", ["--devices", "2"], "--devices must be between 1 and 1 (the devices JAX sees), got 2"),
        ("selfplay", ["--devices", "2"], "--devices must be between 1 and 1 (the devices JAX sees), got 2"),
    ],
)
def test_devices_usage_errors(tmp_path, capsys, module, args, sentence):
    """In this process JAX sees one CPU device."""
    import importlib

    main = importlib.import_module(f"baselines.{module}").main
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--total-timesteps", "2048", "--no-progress", "--output-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    assert sentence in capsys.readouterr().err


def test_split_of_the_configuration():
    from baselines import distributed
    from baselines.errors import UsageError

    config = {"num_envs": 16, "total_timesteps": 1000, "batch_size": 128, "buffer_size": 50_001, "learning_starts": 3}
    assert distributed.local_config(config, 2) == {
        "num_envs": 8,
        "total_timesteps": 500.0,
        "batch_size": 64,
        "buffer_size": 25_001,
        "learning_starts": 2,
    }
    with pytest.raises(UsageError, match="--num-envs 16 must be divisible by the 3 devices"):
        distributed.local_config(config, 3)


# A tiny PPO command (2 updates of 4 games x 8 steps, in 2 chunks, a checkpoint after the first): the
# same command line for one process with two devices and for two processes with one device each.
TINY = [
    "baselines.ppo",
    "--devices",
    "2",
    "--num-envs",
    "4",
    "--num-steps",
    "8",
    "--total-timesteps",
    "64",
    "--chunks",
    "2",
    "--checkpoint-every",
    "32",
    "--eval-episodes",
    "16",
    "--no-progress",
    "--output-dir",
    "run",
]
TIMINGS = ("train_seconds", "compile_seconds", "steps_per_second")


def start(args, cwd, forced_devices, **variables):
    """`python -m ARGS` in `cwd`, with the test's compilation cache (pytest's conftest sets it) and its
    XLA flags (make test's optimisation level: the process compiles as the suite it runs in does)."""
    import jax

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={forced_devices}",
        **variables,
    }
    if jax.config.jax_compilation_cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = str(jax.config.jax_compilation_cache_dir)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(jax.config.jax_persistent_cache_min_compile_time_secs)
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def outputs(procs, timeout):
    """Each process's (return code, stdout, stderr); all are killed when one outlives `timeout`, so a
    hang fails the test instead of blocking it."""
    try:
        return [(p, *p.communicate(timeout=timeout)) for p in procs]
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail(f"a process still ran after {timeout} s (a hang)")


def final_state(run_dir):
    """(update, state as NumPy arrays) of a run's newest checkpoint, whatever devices saved it."""
    import jax
    import orbax.checkpoint as ocp

    latest = max(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    path = str(run_dir / "checkpoints" / str(latest) / "state")
    checkpointer = ocp.PyTreeCheckpointer()
    as_numpy = jax.tree.map(
        lambda _: ocp.RestoreArgs(restore_type=np.ndarray),
        checkpointer.metadata(path).item_metadata,
        is_leaf=lambda x: hasattr(x, "shape"),
    )
    return latest, checkpointer.restore(path, restore_args=as_numpy)


@pytest.mark.slow  # ~70-120 s on a loaded 2-core machine: three processes compile the same programs
def test_the_same_command_runs_as_two_processes(tmp_path):
    """`python -m baselines.ppo --devices 2` as two processes on 127.0.0.1 (one CPU device each; process
    0 from JAX_* variables, process 1 from options), in folders of their own as on two machines: both
    exit 0, process 0 alone writes the run and prints the result, and run and result are those of one
    process with two devices."""
    done = outputs([*two_processes(TINY, tmp_path), start(TINY, tmp_path / "single", 2)], timeout=300)
    same_run_as_one_process(tmp_path, done)


def two_processes(args, tmp_path):
    """ARGS as processes 0 (from JAX_* variables) and 1 (from options) of a run on 127.0.0.1, each in a
    folder of its own (tmp_path/p0, tmp_path/p1) with one CPU device."""
    address = f"127.0.0.1:{free_port()}"
    return [
        start(args, tmp_path / "p0", 1, JAX_COORDINATOR_ADDRESS=address, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="0"),
        start(
            [*args, "--coordinator-address", address, "--num-processes", "2", "--process-id", "1"], tmp_path / "p1", 1
        ),
    ]


def same_run_as_one_process(tmp_path, done, resumed_at: int | None = None):
    """Both processes and the one-process run exited 0; process 0 alone wrote the run and printed, and
    result, configuration, metrics and final checkpoint equal the one-process run's. `resumed_at`: the
    env step the two processes resumed at, which their result reports (the uninterrupted run's not)."""
    for proc, _, err in done:
        assert proc.returncode == 0, err[-3000:]
    (_, out0, _), (_, out1, err1), (_, out_single, _) = done
    assert not (tmp_path / "p1" / "run").exists()
    assert "{" not in out1 and err1.strip() == ""
    result, single = json.loads(out0.strip().splitlines()[-1]), json.loads(out_single.strip().splitlines()[-1])
    assert result["env_steps"] == 64
    assert result.pop("resumed_at_env_steps", None) == resumed_at and "resumed_at_env_steps" not in single
    for name in TIMINGS:
        result.pop(name), single.pop(name)
    assert result == single

    run, run_single = tmp_path / "p0" / "run", tmp_path / "single" / "run"
    for name in ("config.json", "metrics.csv", "eval.json", "learning_curves.png"):
        assert (run / name).is_file(), name
    configs = [json.loads((d / "config.json").read_text()) for d in (run, run_single)]
    for config in configs:
        config.pop("stop_after")  # the first command's (a resumed run keeps the rest of it)
    assert configs[0] == configs[1]
    rows, rows_single = [np.genfromtxt(d / "metrics.csv", delimiter=",", names=True) for d in (run, run_single)]
    for name in rows.dtype.names:
        if name != "wall_time":
            np.testing.assert_allclose(rows[name], rows_single[name], rtol=1e-5, atol=1e-6, err_msg=name)
    (update, state), (update_single, state_single) = final_state(run), final_state(run_single)
    assert update == update_single == 2
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["1", "2"]
    import jax

    assert jax.tree.structure(state) == jax.tree.structure(state_single)
    for a, b in zip(jax.tree.leaves(state["runner"]), jax.tree.leaves(state_single["runner"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # ~2-3 min on a loaded 2-core machine
def test_two_processes_stop_and_resume(tmp_path):
    """Two processes stop after the first update (`--stop-after`) and resume (`--resume`: process 0 reads
    the checkpoint, process 1 has none and receives it): the run ends as one process's uninterrupted."""
    single = start(TINY, tmp_path / "single", 2)
    for proc, _, err in outputs(two_processes([*TINY, "--stop-after", "32"], tmp_path), timeout=300):
        assert proc.returncode == 0, err[-3000:]
    assert not (tmp_path / "p1" / "run").exists()
    done = outputs([*two_processes([*TINY, "--resume"], tmp_path), single], timeout=300)
    same_run_as_one_process(tmp_path, done, resumed_at=32)


@pytest.mark.parametrize(
    "variables, args, sentence",
    [
        (
            {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2"},
            [],
            "--process-id (or JAX_PROCESS_ID) is missing",
        ),
        (
            {},
            ["--coordinator-address", "127.0.0.1:1", "--num-processes", "2", "--process-id", "2"],
            "--process-id (or JAX_PROCESS_ID) must be between 0 and 1",
        ),
        ({}, ["--coordinator-address", "host0", "--num-processes", "2", "--process-id", "0"], "must be HOST:PORT"),
        (
            {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"},
            [],
            "tabular_q trains in one process",
        ),
    ],
)
def test_inconsistent_process_settings_are_refused(tmp_path, variables, args, sentence):
    """Refused in one sentence with exit code 2, before JAX starts (nothing waits for a coordinator)."""
    module = "baselines.tabular_q" if "tabular_q" in sentence else "baselines.ppo"
    done = outputs([start([module, *args, "--output-dir", "run"], tmp_path, 1, **variables)], timeout=120)
    proc, out, err = done[0]
    assert proc.returncode == 2, err[-2000:]
    assert sentence in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, sentence",
    [
        ((["--num-envs", "8"], []), "process 1's command line differs from process 0's"),
        pytest.param(
            (["--devices", "1"], ["--devices", "1"]),
            "--devices 1: 2 processes train over all their devices together",
            marks=pytest.mark.slow,  # ~15 s; the default suite keeps the case above
        ),
    ],
)
def test_processes_that_cannot_train_together_all_stop(tmp_path, extra, sentence):
    """Two processes whose commands differ, or that would leave a process's device out of the mesh, both
    stop with one sentence and exit code 2 before compiling (neither waits for the other)."""
    address = f"127.0.0.1:{free_port()}"
    procs = [
        start(
            [*TINY, *extra[i], "--coordinator-address", address, "--num-processes", "2", "--process-id", str(i)],
            tmp_path / f"p{i}",
            1,
        )
        for i in range(2)
    ]
    for proc, _, err in outputs(procs, timeout=240):
        assert proc.returncode == 2, err[-2000:]
        assert sentence in err, err[-2000:]
    assert not (tmp_path / "p0" / "run").exists()
