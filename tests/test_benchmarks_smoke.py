"""The benchmark modules run end to end with tiny arguments (seconds, not minutes)."""

import csv

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
