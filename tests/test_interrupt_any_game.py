"""Stopping keeps progress on every kind of game (issue 23 item 3, the capability matrix's "stop with
Ctrl-C and `--resume`" row): a training command on a scenario file (`--scenario FILE`) and on a
generated family (`--generator small`), stopped by a real signal in a process of its own at a chunk
boundary, exits with 128 + the signal and one line saying how to continue; `--resume` then finishes
the run with the metrics, the result and the evaluation of an uninterrupted run.

tests/test_interrupt.py does the same for registered ids (and its helpers are reused here)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from kit_runs import run_metrics
from test_interrupt import check_interrupted, interrupt

from baselines import actor_critic, ppo

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = str(ROOT / "scenarios" / "examples" / "office_dmz.yaml")

# Many short chunks (one update each), so that a signal sent when the first metrics row appears
# lands well before the end of training.
PPO_ON_A_FILE = [
    "--scenario",
    SCENARIO,
    "--mode",
    "minimal_defense",
    "--total-timesteps",
    "12800",
    "--num-envs",
    "4",
    "--num-steps",
    "16",
    "--num-minibatches",
    "2",
    "--hidden",
    "16",
    "--chunks",
    "200",
    "--eval-episodes",
    "30",
    "--num-seeds",
    "2",
    "--no-progress",
]
A2C_ON_A_FAMILY = [
    "--generator",
    "small",
    "--mode",
    "minimal_defense",
    "--total-timesteps",
    "6400",
    "--num-envs",
    "4",
    "--num-steps",
    "8",
    "--hidden",
    "16",
    "--chunks",
    "200",
    "--eval-episodes",
    "30",
    "--num-seeds",
    "2",
    "--no-progress",
]
# What differs between a resumed run's result and an uninterrupted one's: times, and the resume itself.
TIMES = {"train_seconds", "compile_seconds", "steps_per_second", "eval_seconds", "wall_seconds", "phase_seconds"}


def same_run(part: Path, full: Path, resumed: dict, uninterrupted: dict) -> None:
    assert run_metrics(part) == run_metrics(full)
    skip = TIMES | {"output_dir", "resumed_at_env_steps"}
    assert {k: v for k, v in resumed.items() if k not in skip} == {
        k: v for k, v in uninterrupted.items() if k not in skip
    }
    assert json.loads((part / "eval.json").read_text()) == json.loads((full / "eval.json").read_text())
    # The resumed run kept its configuration (the game's file or family included), its directory aside.
    config = [json.loads((run / "config.json").read_text()) for run in (part, full)]
    assert [{k: v for k, v in c.items() if k != "output_dir"} for c in config] == [
        {k: v for k, v in config[1].items() if k != "output_dir"}
    ] * 2


# Each case trains three times (the stopped process, its resume, the uninterrupted run): over a
# minute on the shared 2-core machine.
@pytest.mark.slow
@pytest.mark.parametrize(
    "trainer, argv, signum, total, steps_per_update",
    [
        pytest.param(ppo, PPO_ON_A_FILE, signal.SIGINT, 12800, 4 * 16, id="ppo on a scenario file, SIGINT"),
        pytest.param(
            actor_critic, A2C_ON_A_FAMILY, signal.SIGTERM, 6400, 4 * 8, id="actor_critic on a generated family, SIGTERM"
        ),
    ],
)
def test_a_stopped_run_resumes_to_the_uninterrupted_one(
    trainer, argv, signum, total, steps_per_update, tmp_path, capsys
):
    algo = trainer.__name__.rsplit(".", 1)[-1]
    part, full = tmp_path / "part", tmp_path / "full"
    code, err = interrupt(algo, argv, part, signum)
    stopped_at = check_interrupted(algo, code, err, signum, part, total)
    # A fresh run in the directory is refused with the way to continue it, and --resume continues it.
    with pytest.raises(SystemExit) as e:
        trainer.main([*argv, "--output-dir", str(part)])
    assert e.value.code == 2
    assert "continue it with --resume" in capsys.readouterr().err
    resumed = trainer.main(["--resume", "--output-dir", str(part), "--no-progress"])
    uninterrupted = trainer.main([*argv, "--output-dir", str(full)])
    capsys.readouterr()
    assert (
        resumed["resumed_at_env_steps"] == stopped_at * steps_per_update and "resumed_at_env_steps" not in uninterrupted
    )
    assert resumed["env_steps"] == uninterrupted["env_steps"] >= total
    same_run(part, full, resumed, uninterrupted)
