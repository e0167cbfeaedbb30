"""The device check (benchmarks/device_check.sh) and the backend-aware fast paths (idsjax.backend).

The default suite checks the script's machinery in seconds: the series logic (out of memory, time
budget), the report, the shell script end to end with no part selected, and that the fast paths change
nothing but speed. `-m benchmark` runs the small mode's environment part for real.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from benchmarks import device_check as dc
from idsjax import backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.sh"


# -- the series logic ---------------------------------------------------------------------------
def collect(sizes, measure, seconds=60.0):
    got = []
    dc.run_series(sizes, measure, lambda size, row, status: got.append((size, row, status)), dc.Budget(seconds))
    return got


def test_out_of_memory_stops_the_series_and_says_so():
    def measure(size):
        if size >= 4:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 8589934592 bytes")
        return {"size": size}

    got = collect([1, 2, 4, 8, 16], measure)
    assert [s for _, _, s in got] == ["ok", "ok", "out of memory"] + ["skipped: a smaller size ran out of memory"] * 2
    assert got[0][1] == {"size": 1}


def test_other_errors_are_recorded_and_the_series_goes_on():
    def measure(size):
        if size == 2:
            raise ValueError("bad\nsecond line")
        return {}

    got = collect([1, 2, 4], measure)
    assert [s for _, _, s in got] == ["ok", "error: ValueError: bad", "ok"]


def test_time_budget_skips_what_would_not_fit():
    import time

    def measure(size):
        time.sleep(0.05)
        return {}

    # 0.12 s: the first size (0.05 s) runs; the next would need 2.5 x 0.05 s more and is skipped.
    got = collect([1, 2, 4], measure, seconds=0.12)
    assert [s for _, _, s in got] == ["ok", "skipped: time budget", "skipped: time budget"]


def test_report_reads_the_csvs(tmp_path, capsys):
    env = {
        "env_id": "idsgame-v3",
        "fast_paths": "auto",
        "devices": 1,
        "num_steps": 5,
        "steps_per_cpu_s": 1.0,
        "compile_reset_s": 1.0,
        "compile_step_s": 2.0,
        "step_program_mib": 1.0,
    }
    dc.append_row(tmp_path / dc.ENV_CSV, dc.ENV_FIELDS, {**env, "batch": 64, "steps_per_s": 100.0, "status": "ok"})
    dc.append_row(tmp_path / dc.ENV_CSV, dc.ENV_FIELDS, {**env, "batch": 128, "steps_per_s": 300.0, "status": "ok"})
    dc.append_row(
        tmp_path / dc.ENV_CSV,
        dc.ENV_FIELDS,
        {"env_id": "idsgame-v3", "fast_paths": "auto", "batch": 256, "status": "out of memory"},
    )
    dc.append_row(
        tmp_path / dc.TRAIN_CSV,
        dc.TRAIN_FIELDS,
        {
            "algo": "ppo",
            "env_id": "x",
            "num_envs": 16,
            "num_seeds": 1,
            "steps_per_s": 50.0,
            "vs_cartpole": 0.9,
            "status": "ok",
        },
    )
    dc.report_part(tmp_path)
    out = capsys.readouterr().out
    assert "| idsgame-v3 | auto | 300 | 128 | 3.0 | 128 | out of memory |" in out
    assert "| ppo | 50 | 16 x 1 | 0.90 | - | - |" in out
    assert (tmp_path / "summary.md").read_text() == out.rstrip("\n") + "\n"
    assert (tmp_path / "device_check.png").stat().st_size > 0


def run_script(tmp_path, **env):
    return subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable, "DEVICE_CHECK_SMALL": "1", **env},
    )


def test_script_runs_and_prints_the_table_last(tmp_path):
    """The script end to end with no part selected: checks its imports, records the machine, and
    prints the (empty) summary table last."""
    done = run_script(tmp_path, DEVICE_CHECK_PARTS="")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.rstrip().splitlines()[-1].startswith("|---|")
    assert "jax" in (tmp_path / "machine.txt").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "device_check.log",
        "device_check.png",
        "machine.txt",
        "summary.md",
    ]


def test_script_refuses_an_unknown_part(tmp_path):
    done = run_script(tmp_path, DEVICE_CHECK_PARTS="gpu")
    assert done.returncode == 2
    assert "DEVICE_CHECK_PARTS takes env, train, selfplay; got 'gpu'" in done.stderr


@pytest.mark.benchmark
def test_small_mode_environment_part(tmp_path):
    """The small mode's environment part for real (minutes on a loaded 2-core machine: compiles)."""
    done = run_script(tmp_path, DEVICE_CHECK_PARTS="env")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = dc.read_csv(tmp_path / dc.ENV_CSV)
    assert rows and rows[0]["env_id"] == "idsgame-v3" and rows[0]["status"] == "ok"
    assert float(rows[0]["steps_per_s"]) > 0
    assert "| idsgame-v3 | auto |" in done.stdout


# -- idsjax.backend ----------------------------------------------------------------------------
@pytest.fixture
def restore_fast_paths():
    yield
    backend.set_fast_paths(None)


def batched_step_values():
    """A few steps of 64 idsgame-v19 games (randomised resets) through idsjax.batched.step, freshly traced."""
    import idsjax
    from idsjax import batched

    env, params = idsjax.make("idsgame-v19")
    keys = jax.random.split(jax.random.PRNGKey(3), 64)
    _, state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)

    def play(state, key):
        k_act, k_step = jax.random.split(key)
        action = {
            "attacker": jax.random.randint(k_act, (64,), 0, 20),
            "defender": jax.random.randint(k_act, (64,), 0, 20),
        }
        out = batched.step(env, jax.random.split(k_step, 64), state, action, params)
        return out[1], (out[0], out[2], out[3], out[4])

    _, outs = jax.jit(lambda s: jax.lax.scan(play, s, jax.random.split(jax.random.PRNGKey(4), 12)))(state)
    return jax.tree.leaves(outs)


def test_fast_paths_change_no_value(restore_fast_paths):
    """Off the fast paths (what other backends take), batched.step returns the same values bit for bit."""
    backend.set_fast_paths("on")
    on = batched_step_values()
    backend.set_fast_paths("off")
    off = batched_step_values()
    assert len(on) == len(off)
    for a, b in zip(on, off):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_fast_paths_are_taken_on_the_cpu_only_and_logged_once(restore_fast_paths, caplog, monkeypatch):
    backend._logged.clear()
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    with caplog.at_level(logging.INFO, logger="idsjax.backend"):
        assert backend.choices() == {"fused_threefry": True, "materialise_barrier": True}  # the CPU backend
        backend.choices()
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
        assert backend.choices() == {"fused_threefry": False, "materialise_barrier": False}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "using the fused threefry hash (idsjax.threefry) on cpu",
        "using the materialise barrier (idsjax.batched.materialise) on cpu",
        "not using the fused threefry hash (idsjax.threefry) on gpu",
        "not using the materialise barrier (idsjax.batched.materialise) on gpu",
    ]


def test_fast_path_mode_is_checked(monkeypatch, restore_fast_paths):
    with pytest.raises(ValueError, match="fast-path mode must be one of auto, on, off"):
        backend.set_fast_paths("fast")
    monkeypatch.setenv(backend.ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="IDSJAX_FAST_PATHS must be one of auto, on, off"):
        backend.mode()
    monkeypatch.setenv(backend.ENV_VAR, "off")
    assert backend.choices() == {"fused_threefry": False, "materialise_barrier": False}
