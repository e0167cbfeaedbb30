"""No experiment command writes into the repository unless asked to publish.

Each command's quick mode (tiny budgets) runs as a user runs it, from the repository root, into a
temporary `--output-dir`: afterwards `git status --porcelain` is what it was, and nothing new appeared
under the ignored `runs/`. The runs themselves take minutes (-m slow); the default suite checks that
every default output place lies outside the committed tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import pytest

REPO = Path(__file__).resolve().parent.parent


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def _runs() -> set[str]:
    runs = REPO / "runs"
    return set(os.listdir(runs)) if runs.is_dir() else set()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if jax.config.jax_compilation_cache_dir:  # conftest's cache, so that reruns compile less
        env["JAX_COMPILATION_CACHE_DIR"] = str(jax.config.jax_compilation_cache_dir)
    return env


def _commands(out: Path) -> dict[str, list[str]]:
    grid = out / "grid"
    return {
        "generalization": [
            "baselines.generalization", "--quick", "--sides", "attacker", "--networks", "mlp", "--output-dir", str(out),
        ],
        "league_comparison": [
            "baselines.league_comparison",
            "--envs", "idsgame-v3", "--modes", "naive", "pool", "--seeds", "2", "--total-timesteps", "128",
            "--eval-episodes", "4", "--payoff-episodes", "2", "--br-eval-episodes", "4", "--no-progress",
            "--extra", "--num-envs 8 --num-steps 8 --num-minibatches 2 --update-epochs 1 --chunks 1",
            "--output-dir", str(out),
        ],
        "reference_grid": [
            "baselines.reference_grid", "--filter", "v0/random_defense/tabular_q_learning", "--max-steps", "64",
            "--num-seeds", "1", "--output-dir", str(grid),
        ],
        "reference_grid.report": ["baselines.reference_grid.report", "--output-dir", str(out)],
        "reference_grid.ceilings": [
            "baselines.reference_grid.ceilings", "--versions", "0", "--horizon", "2", "--output-dir", str(out),
        ],
        "reference_grid.vs_reference": [
            "baselines.reference_grid.vs_reference", "--paths", "v0/minimal_defense/tabular_q_learning",
            "--episodes", "2", "--evaluations", "1", "--num-seeds", "2", "--output-dir", str(out),
        ],
        "results": [
            "baselines.results", "--algos", "ppo", "--versions", "0", "--opponents", "random_defense",
            "--num-seeds", "1", "--total-timesteps", "1024", "--output-dir", str(out),
        ],
    }  # fmt: skip


def test_default_output_places_are_ignored_by_git():
    """Every experiment command's default output lies in a folder git ignores (runs/)."""
    from baselines import generalization, league_comparison, results, selfplay_experiments
    from baselines.reference_grid import extract, report, run

    gen = generalization.parse_args([])
    defaults = {
        "generalization --output-dir": gen.output_dir,
        "generalization --md": gen.md,
        "league_comparison --output-dir": league_comparison.parse([])[1].output_dir,
        "selfplay_experiments --output-dir": selfplay_experiments.parse([]).output_dir,
        "reference_grid --output-dir": run.DEFAULT_OUTPUT,
        "reference_grid.report --output-dir": report.DEFAULT_OUTPUT,
        "reference_grid.extract --output": extract.DEFAULT_OUTPUT,
        "results --output-dir": results.parse([]).output_dir,
    }
    for what, path in defaults.items():
        assert not os.path.isabs(path), (what, path)
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert ignored.returncode == 0, f"{what} defaults to {path}, which git does not ignore"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_commands(Path("x"))))
def test_quick_run_leaves_the_repository_alone(name, tmp_path):
    if name == "reference_grid.vs_reference":
        pytest.importorskip("gym_idsgame")
    argv = _commands(tmp_path / "out")[name]
    status, runs = _git_status(), _runs()
    done = subprocess.run(
        [sys.executable, "-m", *argv], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stderr[-3000:]}"
    after = _git_status()
    changed = sorted(set(after.splitlines()) ^ set(status.splitlines()))
    # (In a working tree that others edit meanwhile their files show here too: run it alone.)
    assert after == status, f"{name} changed the repository: {changed}"
    assert _runs() == runs, f"{name} wrote into runs/: {sorted(_runs() - runs)}"
    assert any((tmp_path / "out").rglob("*")), f"{name} wrote nothing into its --output-dir"
    shutil.rmtree(tmp_path / "out", ignore_errors=True)
