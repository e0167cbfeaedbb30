"""Stopping keeps progress: SIGINT or SIGTERM in the middle of a training command (a real process, a
real signal) saves a checkpoint at the next chunk boundary and exits with one line saying how to
resume (exit code 128 + the signal: 130, 143), even without --checkpoint-every; --resume then finishes
the run with the metrics and evaluation of an uninterrupted one. A directory holding a run that
cannot be resumed says so, to --resume and to a fresh run alike, and what to do instead."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest
from kit_runs import run_metrics

from baselines import dqn, ppo, selfplay, tabular_q

ROOT = Path(__file__).resolve().parent.parent

# Many short chunks (one update each), so that a signal sent when the first metrics row appears
# lands well before the end of training.
PPO = [
    "--env",
    "idsgame-random_defense-v0",
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
DQN = [
    "--env",
    "idsgame-maximal_attack-v0",
    "--total-timesteps",
    "3200",
    "--num-envs",
    "4",
    "--num-steps",
    "4",
    "--learning-starts",
    "64",
    "--buffer-size",
    "512",
    "--hidden",
    "16",
    "--chunks",
    "200",
    "--eval-episodes",
    "30",
    "--no-progress",
]
SELFPLAY = [
    "--env",
    "idsgame-v19",
    "--num-envs",
    "8",
    "--num-steps",
    "8",
    "--num-minibatches",
    "2",
    "--update-epochs",
    "1",
    "--total-timesteps",
    "6400",
    "--chunks",
    "100",
    "--eval-episodes",
    "16",
    "--payoff-episodes",
    "2",
    "--pool-size",
    "3",
    "--snapshot-every",
    "2",
    "--hidden",
    "16",
    "--layers",
    "1",
    "--br-eval-episodes",  # exploitability's selection and fresh games: 2,000 each by default
    "16",
    "--br-timesteps",
    "0",
    "--no-progress",
]


@contextlib.contextmanager
def sigint_as_in_a_terminal():
    """While the trainer starts: SIGINT handled here rather than ignored, so that the trainer starts
    with SIGINT's default disposition (a handled signal is reset by exec, an ignored one is inherited),
    as a command typed in a terminal does. A test session started in the background (a shell's `&`,
    nohup, some CI runners) ignores SIGINT; its trainer would rightly go on ignoring it
    (`host_loop.stop_on_signals`), and the test would depend on how pytest was started."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupt(algo: str, argv: list[str], out: Path, signum: int, timeout: float = 240.0) -> tuple[int, str]:
    """Run `python -m baselines.<algo>` in a process of its own, send it `signum` as soon as the first
    metrics row is written, and return its exit code and stderr."""
    # The trainer compiles into this session's persistent compilation cache (conftest's, locked across
    # processes), so that the --resume and uninterrupted runs that follow in this process load the
    # programs it compiled instead of compiling them again.
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    if jax.config.jax_compilation_cache_dir:
        env["JAX_COMPILATION_CACHE_DIR"] = str(jax.config.jax_compilation_cache_dir)
    with sigint_as_in_a_terminal():
        proc = subprocess.Popen(
            [sys.executable, "-m", f"baselines.{algo}", *argv, "--output-dir", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    deadline = time.monotonic() + timeout
    path = out / "metrics.csv"
    try:
        while not (path.is_file() and len(path.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no metrics row before the run ended or {timeout:.0f} s: {proc.communicate()[1]}")
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=max(deadline - time.monotonic(), 10))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def check_interrupted(algo: str, code: int, err: str, signum: int, out: Path, total_steps: int) -> int:
    """The run stopped with 128 + signum and one line naming the resume command, mid-run, with a
    checkpoint; returns the update it stopped at."""
    assert code == 128 + signum, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    name = signal.Signals(signum).name
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"python -m baselines.{algo}: interrupted ({name}) at "), err
    assert last.endswith(f"continue with python -m baselines.{algo} --resume --output-dir {out}"), err
    saved = sorted(int(n) for n in os.listdir(out / "checkpoints") if n.isdigit())
    rows = run_metrics(out)
    assert saved and saved[-1] == max(int(r["update"]) for r in rows)
    steps = int(rows[-1]["env_steps"])
    assert 0 < steps < total_steps, f"the signal came too late to test a stop mid-run ({steps} of {total_steps})"
    assert f"at {steps:,} of {total_steps:,} steps per seed" in last
    return saved[-1]


def test_ppo_sigint_without_checkpoints_then_resume_equals_uninterrupted(tmp_path, capsys):
    part, full = tmp_path / "part", tmp_path / "full"
    code, err = interrupt("ppo", PPO, part, signal.SIGINT)
    stopped_at = check_interrupted("ppo", code, err, signal.SIGINT, part, 12800)
    # A fresh run in the directory is refused with the way to continue it, and --resume continues it.
    with pytest.raises(SystemExit) as e:
        ppo.main([*PPO, "--output-dir", str(part)])
    assert e.value.code == 2
    assert "continue it with --resume" in capsys.readouterr().err
    resumed = ppo.main(["--resume", "--output-dir", str(part), "--no-progress"])
    uninterrupted = ppo.main([*PPO, "--output-dir", str(full)])
    capsys.readouterr()
    assert run_metrics(part) == run_metrics(full)
    for key in ("env_steps", "eval_hack_probability_per_seed", "eval_attacker_return", "eval_defender_return"):
        assert resumed[key] == uninterrupted[key], key
    assert resumed["resumed_at_env_steps"] == stopped_at * 4 * 16 and "resumed_at_env_steps" not in uninterrupted
    assert json.loads((part / "eval.json").read_text()) == json.loads((full / "eval.json").read_text())


@pytest.mark.slow
def test_dqn_sigterm_without_checkpoints_then_resume_equals_uninterrupted(tmp_path, capsys):
    part, full = tmp_path / "part", tmp_path / "full"
    code, err = interrupt("dqn", DQN, part, signal.SIGTERM)
    check_interrupted("dqn", code, err, signal.SIGTERM, part, 3200)
    resumed = dqn.main(["--resume", "--output-dir", str(part), "--no-progress"])
    uninterrupted = dqn.main([*DQN, "--output-dir", str(full)])
    capsys.readouterr()
    assert run_metrics(part) == run_metrics(full)
    for key in ("env_steps", "eval_hack_probability", "eval_attacker_return", "eval_defender_return"):
        assert resumed[key] == uninterrupted[key], key


@pytest.mark.slow
def test_selfplay_sigint_without_checkpoints_then_resume_equals_uninterrupted(tmp_path, capsys):
    part, full = tmp_path / "part", tmp_path / "full"
    code, err = interrupt("selfplay", SELFPLAY, part, signal.SIGINT)
    stopped_at = check_interrupted("selfplay", code, err, signal.SIGINT, part, 6400)
    resumed = selfplay.main(["--resume", "--output-dir", str(part), "--no-progress"])
    uninterrupted = selfplay.main([*SELFPLAY, "--output-dir", str(full)])
    capsys.readouterr()
    assert run_metrics(part) == run_metrics(full)
    assert resumed["resumed_at_env_steps"] == stopped_at * 8 * 8  # the report says where it resumed
    skip = {"train_seconds", "compile_seconds", "steps_per_second", "output_dir", "eval_seconds"}
    skip |= {"phase_seconds", "wall_seconds", "resumed_at_env_steps"}  # times, and the resume itself
    assert {k: v for k, v in resumed.items() if k not in skip} == {
        k: v for k, v in uninterrupted.items() if k not in skip
    }
    assert (part / "payoff_matrix.csv").read_text() == (full / "payoff_matrix.csv").read_text()


TQ = ["--total-timesteps", "1000", "--num-envs", "8", "--num-steps", "8", "--eval-episodes", "20", "--no-progress"]


def test_a_run_that_cannot_be_resumed_says_so_to_resume_and_to_a_fresh_run(tmp_path, capsys):
    """config.json and metrics.csv but no checkpoint (a run killed before its first one): --resume
    and a fresh run give the same diagnosis and the same way out, before compiling anything."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text(json.dumps({"algo": "tabular_q", "env": "idsgame-random_defense-v0"}))
    (out / "metrics.csv").write_text("update,seed,env_steps,wall_time,hack_probability\n1,0,64,0.1,0.5\n")
    messages = []
    for argv in (["--resume"], TQ):
        with pytest.raises(SystemExit) as e:
            tabular_q.main([*argv, "--output-dir", str(out), "--no-progress"])
        assert e.value.code == 2
        messages.append(capsys.readouterr().err.strip())
    for message in messages:
        assert len(message.splitlines()) == 1, message
        assert "cannot be resumed (config.json and metrics.csv but no checkpoint" in message, message
        assert "--overwrite" in message and "choose another --output-dir" in message, message
        assert "continue it with --resume" not in message
    # and --overwrite, as both said, starts afresh there
    result = tabular_q.main([*TQ, "--output-dir", str(out), "--overwrite"])
    assert result["env_steps"] == 1024 and (out / "checkpoints").is_dir()
    capsys.readouterr()


def test_a_directory_of_another_trainer_names_the_command_that_continues_it(tmp_path, capsys):
    out = tmp_path / "run"
    tabular_q.main([*TQ, "--output-dir", str(out), "--stop-after", "512"])
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        dqn.main(["--output-dir", str(out), "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "it is a tabular_q run (python -m baselines.tabular_q --resume continues it)" in err
    with pytest.raises(SystemExit) as e:
        dqn.main(["--resume", "--output-dir", str(out), "--no-progress"])
    assert "holds a 'tabular_q' run, not 'dqn'" in capsys.readouterr().err


def test_resume_of_an_empty_directory_says_there_is_no_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        tabular_q.main(["--resume", "--output-dir", str(tmp_path / "nothing"), "--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no checkpoint in" in err and "start one without --resume" in err
