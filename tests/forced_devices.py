"""The research kit's command lines under forced CPU host devices, shared by the tests of data-parallel
training (`tests/test_distributed.py`, `tests/test_selfplay_devices.py`): each runs in a subprocess,
because the device count must be set before JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(args, devices: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python ARGS` in the checkout with `devices` forced CPU host devices."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def train_command(args, devices_forced: int = 2, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m ARGS` (a trainer's command line) with `devices_forced` forced host devices."""
    return run_python(["-m", *args], devices_forced, timeout)


def trained(args, devices_forced: int = 2) -> dict:
    """The JSON result of a trainer's command line that must succeed."""
    done = train_command(args, devices_forced)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_plays_on_one_device(run_dir, env_id: str, side: str | None = None) -> None:
    """The run's saved policy (`side`'s, for a self-play run) loads in this one-device process and
    chooses a valid id on `env_id`'s first state."""
    import jax

    import idsjax
    from baselines.checkpoints import load_policy

    env, params = idsjax.make(env_id)
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    if side is None:
        view, num_ids = obs, env.num_actions
    else:
        view, num_ids = obs[side], env.action_space(params).spaces[side].n
    action = load_policy(str(run_dir), env, params, side=side)(jax.random.PRNGKey(1), view, state)
    assert 0 <= int(action) < num_ids
