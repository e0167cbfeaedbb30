"""The trainers' command lines answer before JAX loads: `--help` and a bad option or number come from
`baselines.cli.start`, which the trainer modules call above their imports of JAX and the game; importing
`baselines` loads nothing else and joins no multi-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TRAINERS = ["ppo", "dqn", "tabular_q", "reinforce", "actor_critic"]

# Runs a module as `python -m` does, then reports its exit code and whether JAX or the game was loaded.
PROBE = """
import json, runpy, sys
module, args = sys.argv[1], sys.argv[2:]
sys.argv = [module, *args]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "jax": "jax" in sys.modules, "idsjax": "idsjax" in sys.modules}), file=sys.__stderr__)
"""


def _probe(module: str, *args: str, **env: str) -> tuple[dict, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    return json.loads(lines[-1]), done.stdout, "\n".join(lines[:-1])


@pytest.mark.parametrize("algo", TRAINERS)
def test_help_answers_without_jax(algo):
    result, out, _ = _probe(f"baselines.{algo}", "--help")
    assert result == {"code": 0, "jax": False, "idsjax": False}, result
    assert f"python -m baselines.{algo}" in out and "--total-timesteps" in out


@pytest.mark.parametrize(
    "algo, args, sentence",
    [
        ("ppo", ["--num-envs", "0"], "--num-envs must be positive, got 0"),
        ("dqn", ["--eps-start", "2"], "--eps-start must be in [0, 1], got 2.0"),
        ("tabular_q", ["--total-timesteps", "x"], "invalid int value: 'x'"),
        ("reinforce", ["--no-such-option"], "unrecognized arguments: --no-such-option"),
        ("ppo", ["--total-timesteps", "10"], "--total-timesteps 10 is less than one update"),
    ],
)
def test_argument_errors_answer_without_jax(algo, args, sentence):
    result, _, err = _probe(f"baselines.{algo}", *args)
    assert result == {"code": 2, "jax": False, "idsjax": False}, (result, err)
    assert sentence in err, err


def test_one_process_trainers_refuse_a_multi_process_run_without_jax():
    result, _, err = _probe(
        "baselines.reinforce", "--coordinator-address", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"
    )
    assert result == {"code": 2, "jax": False, "idsjax": False}, (result, err)
    assert "reinforce trains in one process" in err and len(err.strip().splitlines()) == 1, err


def test_selfplay_refuses_a_multi_process_run():
    """Self-play trains in one process: the JAX_* variables of a multi-process run are refused in one
    sentence, before JAX loads; it never joins."""
    variables = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}
    result, _, err = _probe("baselines.selfplay", **variables)
    assert result["code"] == 2 and "selfplay trains in one process" in err, (result, err)


def test_help_does_not_wait_for_a_coordinator():
    """The JAX_* variables of a multi-process run are set, and nothing listens at the address: --help
    still answers at once (joining comes after the command line is read)."""
    variables = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
    result, out, _ = _probe("baselines.ppo", "--help", **variables)
    assert result["code"] == 0 and not result["jax"] and "--coordinator-address" in out


def test_importing_baselines_loads_nothing_and_joins_nothing():
    code = (
        "import sys, baselines, baselines.cli; "
        "assert not {'jax', 'idsjax', 'baselines.distributed'} & set(sys.modules), sorted(sys.modules); "
        "import baselines.ppo, jax; print(jax.distributed.is_initialized())"
    )
    variables = {"JAX_COORDINATOR_ADDRESS": "127.0.0.1:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **variables}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]


def test_generator_family_names_match_the_presets():
    from baselines import cli, scenarios

    assert tuple(scenarios.PRESETS) == cli.GENERATOR_FAMILIES and scenarios.OPTIONS is cli.SCENARIO_OPTIONS
    assert scenarios.MODES == cli.MODES


# The experiment and analysis commands answer --help before JAX too.
COMMANDS = [
    "exploitability",
    "selfplay",
    "ued",
    "generalization",
    "generalization_report",
    "league_comparison",
    "reference_grid",
    "reference_grid.report",
    "evaluate",
    "ceiling",
    "results",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_experiment_commands_answer_help_without_jax(command):
    result, out, err = _probe(f"baselines.{command}", "--help")
    assert result == {"code": 0, "jax": False, "idsjax": False}, (result, err)
    assert "usage:" in out


@pytest.mark.parametrize(
    "command, args, sentence",
    [
        ("selfplay", ["--num-envs", "0"], "--num-envs must be positive, got 0"),
        ("selfplay", ["--mode", "league"], "invalid choice: 'league'"),
        ("ued", ["--num-envs", "0"], "--num-envs must be positive, got 0"),
    ],
)
def test_selfplay_and_ued_refuse_bad_arguments_without_jax(command, args, sentence):
    result, _, err = _probe(f"baselines.{command}", *args)
    assert result == {"code": 2, "jax": False, "idsjax": False}, (result, err)
    assert sentence in err, err


def test_generalization_refuses_a_bad_count_without_jax():
    result, _, err = _probe("baselines.generalization", "--timesteps", "0")
    assert result == {"code": 2, "jax": False, "idsjax": False}, (result, err)
    assert "--timesteps must be positive, got 0" in err, err
