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

devices = int(sys.argv[5])
config = cli.parse_config(ppo, ["--num-envs", "8", "--num-seeds", "2", "--total-timesteps", "512", "--no-progress"])
env, params = idsjax.make(config["env"])
_, init, chunk = distributed.programs(ppo.make_train, config, env, params, devices, updates_per_chunk=2)
runner, metrics = chunk(init(jax.random.split(jax.random.PRNGKey(7), 2)))
rows = distributed.local_shards
leaves = jax.tree.leaves(rows(runner.train_state.params))
np.savez(out + ".npz", obs=rows(runner.env.obs), episodes=rows(metrics["episodes"]),
         **{f"p{i}": x for i, x in enumerate(leaves)})
json.dump({"devices": jax.device_count(), "local": jax.local_device_count(), "process": jax.process_index()},
          open(out + ".json", "w"))
"""


def run_worker(args, timeout=600):
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
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

    # One process, two devices: one set of parameters, each device its own games, both did work.
    assert facts["devices"] == 2
    for p in params_of(single):
        assert p.shape[:2] == (2, 2)  # [devices, seeds, ...]
        np.testing.assert_array_equal(p[0], p[1])  # gradients averaged inside the update: one model
    assert (single["obs"][0] != single["obs"][1]).any()
    assert (single["episodes"].sum(axis=(1, 2)) > 0).all()

    # Two processes: the same run.
    assert (f0["devices"], f0["local"], f0["process"]) == (2, 1, 0)
    assert (f1["devices"], f1["local"], f1["process"]) == (2, 1, 1)
    for a, b, s in zip(params_of(d0), params_of(d1), params_of(single)):
        np.testing.assert_array_equal(a[0], b[0])  # both processes hold the same parameters
        np.testing.assert_allclose(a[0], s[0], rtol=1e-5, atol=1e-6)  # the run of one process, 2 devices
    np.testing.assert_array_equal(d0["obs"][0], single["obs"][0])  # device 0 played device 0's games
    np.testing.assert_array_equal(d1["obs"][0], single["obs"][1])
