"""Tiny training runs of the research kit shared by the test modules of one pytest session: each
configuration is trained once (into the session's base temporary directory) and reused, so testing
checkpoints, play and render costs no extra training. Under pytest-xdist the workers share one
directory and a lock, so a run is trained once per session, not once per worker."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
from pathlib import Path

SMOKE = ["--total-timesteps", "2048", "--num-envs", "8", "--eval-episodes", "20", "--no-progress", "--chunks", "4"]
SMOKE_EXTRA = {
    "ppo": ["--num-steps", "16"],
    "dqn": ["--num-steps", "4", "--learning-starts", "64", "--buffer-size", "1024"],
    "tabular_q": ["--num-steps", "8"],
    "reinforce": ["--num-steps", "32"],
    "actor_critic": ["--num-steps", "8"],
}
SMOKE_ENV = {algo: "idsgame-random_defense-v0" for algo in SMOKE_EXTRA} | {"dqn": "idsgame-maximal_attack-v0"}
# PPO's run is the resume test's uninterrupted run.
PPO_ARGS = [
    "--env",
    "idsgame-random_defense-v0",
    "--total-timesteps",
    "4096",
    "--num-envs",
    "8",
    "--num-steps",
    "16",
    "--chunks",
    "8",
    "--eval-episodes",
    "50",
    "--no-progress",
    "--num-seeds",
    "2",
]
SELFPLAY_TINY_BR_GAMES = 16
SELFPLAY_TINY = [
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
    "512",
    "--chunks",
    "2",
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
    # Every responder of exploitability is scored on this many selection games and the chosen one on as
    # many fresh ones (the default, 2,000, made the shared run evaluate for minutes).
    "--br-eval-episodes",
    str(SELFPLAY_TINY_BR_GAMES),
    "--br-timesteps",
    "0",
    "--no-progress",
]


# Self-play's tiny run on a user's own network (tests/test_selfplay_games.py): the run's name -> the
# options naming its game, played two-agent with the shared tiny run's settings (less its --env).
assert SELFPLAY_TINY[:2] == ["--env", "idsgame-v19"]
SELFPLAY_GAMES = {
    "selfplay-scenario": [
        "--scenario",
        str(Path(__file__).resolve().parents[1] / "scenarios/examples/office_dmz.yaml"),
    ],
    "selfplay-generated": ["--generator", "small"],
}


def argv_of(name: str) -> list[str]:
    """The command line of the shared run `name` (an algorithm's, or one of SELFPLAY_GAMES; two
    checkpoints are kept: `--checkpoint-every` only adds save points, it changes no result)."""
    if name == "ppo":
        return PPO_ARGS + ["--checkpoint-every", "1024"]
    if name == "selfplay":
        return SELFPLAY_TINY + ["--mode", "pool", "--checkpoint-every", "256"]
    if name in SELFPLAY_GAMES:
        return SELFPLAY_TINY[2:] + SELFPLAY_GAMES[name] + ["--mode", "pool", "--checkpoint-every", "256"]
    return SMOKE + SMOKE_EXTRA[name] + ["--env", SMOKE_ENV[name], "--num-seeds", "2", "--checkpoint-every", "1024"]


def trained_run(tmp_path_factory, name: str) -> tuple[Path, dict, str]:
    """(run directory, its JSON result, its stdout) of the shared run `name`, trained on first use."""
    import importlib

    base = tmp_path_factory.getbasetemp()
    # Each xdist worker has its own base directory (.../popen-gwN) inside the session's, which they share.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "kit_runs"
    root.mkdir(parents=True, exist_ok=True)
    out = root / name
    saved = out / "test_result.json"
    # One worker trains while the other waits for it (the lock dies with its process, so a worker that
    # crashed mid-run leaves the training to the next); the runs are only read afterwards.
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.is_file():
            module = importlib.import_module(f"baselines.{name.split('-')[0]}")
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                result = module.main(argv_of(name) + ["--output-dir", str(out)])
            saved.write_text(json.dumps({"result": result, "stdout": stdout.getvalue()}))
    data = json.loads(saved.read_text())
    return out, data["result"], data["stdout"]


def last_json(capsys) -> dict:
    """The JSON result a command printed as its last line on stdout (captured by pytest's `capsys`)."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def run_metrics(out) -> list[dict]:
    """The rows of a run's `metrics.csv` without their wall times (the machine's, not the run's)."""
    from baselines import logs

    with open(os.path.join(out, logs.METRICS_FILE), newline="") as f:
        return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)]
