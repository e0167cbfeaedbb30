"""The benchmark modules run end to end with tiny arguments (seconds, not minutes)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import throughput, vs_reference

TINY = ["--envs", "idsgame-v3", "--steps", "3", "--repeats", "1"]


def test_throughput_smoke(tmp_path, capsys):
    rows = throughput.main(TINY + ["--batch-sizes", "4", "--out", str(tmp_path)])
    assert [(r["env_id"], r["batch"], r["error"]) for r in rows] == [("idsgame-v3", 4, "")]
    assert rows[0]["steps_per_s"] > 0 and rows[0]["compile_s"] > 0
    with open(tmp_path / "throughput.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    assert (tmp_path / "throughput.png").stat().st_size > 0
    assert "idsgame-v3" in capsys.readouterr().out


def test_vs_reference_smoke(tmp_path):
    if not vs_reference.reference_available():
        pytest.skip("the reference gym_idsgame is not installed (`make reference`); nothing to compare against")
    rows = vs_reference.main(TINY + ["--batch", "4", "--ref-seconds", "0.05", "--out", str(tmp_path)])
    (row,) = rows
    assert row["note"] == ""
    assert row["reference_steps_per_s"] > 0 and row["idsjax_steps_per_s"] > 0 and row["cartpole_steps_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["idsjax_steps_per_s"] / row["reference_steps_per_s"])
    assert (tmp_path / "vs_reference.csv").exists() and (tmp_path / "vs_reference.png").stat().st_size > 0


@pytest.mark.parametrize("module", [throughput, vs_reference])
@pytest.mark.parametrize("devices", ["0", "-1", "100000"])
def test_bad_device_count_is_a_usage_error(module, devices, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.main(TINY + ["--devices", devices])
    assert exit_info.value.code == 2
    assert "--devices must be between 1 and" in capsys.readouterr().err


def test_one_device_splits_nothing(tmp_path):
    rows = throughput.main(TINY + ["--batch-sizes", "4", "--devices", "1", "--no-plot", "--out", str(tmp_path)])
    assert rows[0]["devices"] == 1 and rows[0]["error"] == ""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU core: nothing to split the batch over")
def test_command_line_splits_the_batch_over_every_core(tmp_path):
    """`python -m benchmarks.throughput` asks JAX for one CPU device per core before it starts."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.throughput",
            *TINY,
            "--batch-sizes",
            "8",
            "--no-plot",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with open(tmp_path / "throughput.csv") as f:
        (row,) = list(csv.DictReader(f))
    expected = os.cpu_count()  # one device per core, as many of them as divide the batch of 8
    while 8 % expected:
        expected -= 1
    assert int(row["devices"]) == expected >= 2 and row["error"] == ""


def test_kernels_smoke(tmp_path, capsys):
    """`benchmarks.kernels` traces the protocol's program and sums real kernels of it: the table names
    kernels of the optimised HLO, their times add up to the printed total, and the CSV holds them all."""
    from benchmarks import kernels

    assert kernels.main(["--batch", "64", "--steps", "4", "--calls", "1", "--top", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "idsgame-v3, batch 64" in out and "CPU ns per game-step" in out
    with open(tmp_path / "kernels_idsgame-v3_b64.csv") as f:
        rows = list(csv.DictReader(f))
    leaves = [r for r in rows if r["opcode"] not in kernels.CONTAINERS]
    assert len(leaves) > 5 and all(int(r["calls"]) >= 1 and float(r["ns_per_game_step"]) > 0 for r in leaves)
    assert any(r["opcode"] == "fusion" for r in leaves)
    total = sum(float(r["ns_per_game_step"]) for r in leaves)
    assert f"all {len(leaves)} kernels: {total:.1f} CPU ns per game-step" in out


def test_kernels_parses_instructions():
    from benchmarks.kernels import instructions

    text = """
  %wrapped_scatter.1 = s8[8192,8,10]{2,1,0} fusion(%a, %b), kind=kLoop, calls=%c
  ROOT %tuple.3 = (s32[], u32[2]{0}) tuple(%x, %y)
  %while.6 = (s32[], /*index=1*/s8[4]{0}) while(%t), condition=%cond, body=%body
"""
    assert instructions(text) == {
        "wrapped_scatter.1": ("fusion", "s8[8192,8,10]{2,1,0}"),
        "tuple.3": ("tuple", "(s32[], u32[2]{0})"),
        "while.6": ("while", "(s32[], /*index=1*/s8[4]{0})"),
    }


@pytest.mark.parametrize("argv", [["--env", "idsgame-v99"], ["--batch", "0"], ["--calls", "-1"]])
def test_kernels_refuses_bad_arguments(argv, capsys):
    from benchmarks import kernels

    with pytest.raises(SystemExit) as exit_info:
        kernels.main(argv)
    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err
