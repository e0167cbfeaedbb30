"""The host loop's promises: `run_chunks` (the one loop, which the reference grid's windows run too)
runs every update of a budget once, the last chunk shorter through the same compiled program, and
times the chunks alone; a non-finite run stops with exit code 1, names the update and the
quantity, keeps the last finite checkpoint and reports nothing; `--chunks` never changes a result; a
run talks to its user (compiling line, steps per second, "results in DIR"); `--resume` says where it
resumes and warns about ignored flags; a directory holding a run is not overwritten by accident;
`--tensorboard` writes event files."""

from __future__ import annotations

import csv
import json
import os
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from baselines import checkpoints, host_loop, tabular_q
from baselines.trainer import Trainer, plan_updates


def toy_module(growth: float):
    """A trainer whose one parameter is multiplied by `growth` per update: with 1e4 it overflows
    float32 (3.4e38) in update 10, after nine finite updates."""

    def make_train(config, env, env_params):
        spu = config["num_envs"] * config["num_steps"]
        num_updates, _ = plan_updates(config, spu)

        def init(rng):
            return {"w": jnp.float32(1.0), "count": jnp.int32(0)}

        def update(r):
            w = r["w"] * growth
            return {"w": w, "count": r["count"] + 1}, {
                "hack_probability": jnp.float32(0.5),
                "return": w * 0,
                "toy_loss": w * 0,
            }

        return Trainer(
            init=init,
            update=update,
            act=lambda r, obs, mask, key: jnp.zeros(obs.shape[0], jnp.int32),
            num_updates=num_updates,
            steps_per_update=spu,
        )

    return types.SimpleNamespace(
        ALGO="toy",
        HYPERPARAMETERS={"num_steps": (1, "pos", "steps")},
        ENV_DEFAULTS={"env": "idsgame-random_defense-v0", "num_envs": 1},
        make_train=make_train,
    )


def counting_chunk(k_chunk: int):
    """`chunk(count, n) -> (count, counts, {"twice": 2 counts})`: `k_chunk` steps of which the first `n`
    add one to the count and record it; the others leave it and record -1."""

    def chunk(count, n):
        def body(c, i):
            c = jnp.where(i < n, c + 1, c)
            seen = jnp.where(i < n, c, -1)
            return c, (seen, {"twice": 2 * seen})

        count, (counts, twice) = jax.lax.scan(body, count, jnp.arange(k_chunk))
        return count, counts, twice

    return jax.vmap(chunk, in_axes=(0, None))


def test_run_chunks_runs_each_update_once_and_times_the_chunks_alone():
    program = jax.jit(counting_chunk(3)).lower(jnp.zeros(2, jnp.int32), jax.ShapeDtypeStruct((), jnp.int32)).compile()
    chunks = []
    for chunk in host_loop.run_chunks(program, jnp.zeros(2, jnp.int32), 7, 3):
        chunks.append(chunk)
        if len(chunks) == 1:
            time.sleep(1.0)  # the caller's work between chunks: not the next chunk's time
    assert [(c.start, c.updates, c.done) for c in chunks] == [(0, 3, 3), (3, 3, 6), (6, 1, 7)]
    counts = np.concatenate([c.outputs[0] for c in chunks], axis=1)  # cut to the updates that ran: no -1
    assert np.array_equal(counts, np.tile(np.arange(1, 8), (2, 1)))
    assert np.array_equal(np.concatenate([c.outputs[1]["twice"] for c in chunks], axis=1), 2 * counts)
    assert np.asarray(chunks[-1].runner).tolist() == [7, 7]
    assert 0 < chunks[1].seconds < 1.0
    # resumed after two chunks: the remaining update alone, from the state they left
    (last,) = host_loop.run_chunks(program, chunks[1].runner, 7, 3, done_updates=6)
    assert (last.start, last.updates) == (6, 1) and np.array_equal(last.outputs[0], chunks[-1].outputs[0])
    assert list(host_loop.run_chunks(program, chunks[-1].runner, 7, 3, done_updates=7)) == []


def test_run_chunks_refuses_a_program_that_would_compile_while_timed():
    with pytest.raises(TypeError, match="compiled ahead of time"):
        next(host_loop.run_chunks(jax.jit(counting_chunk(3)), jnp.zeros(2, jnp.int32), 7, 3))


def test_nonfinite_run_stops_with_exit_1_and_keeps_the_last_finite_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--total-timesteps",
        "20",
        "--chunks",
        "20",
        "--no-progress",
        "--output-dir",
        str(out),
        "--checkpoint-every",
        "4",
    ]
    with pytest.raises(SystemExit) as e:
        host_loop.run(toy_module(1e4), argv)
    assert e.value.code == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == "", "no result is reported"
    message = captured.err.strip().splitlines()[-1]
    assert "non-finite in update 10 (seed 0)" in message and "w" in message and "update 9" in message, message
    assert not (out / "eval.json").exists()
    abstract = {"w": jax.ShapeDtypeStruct((1,), jnp.float32), "count": jax.ShapeDtypeStruct((1,), jnp.int32)}
    runner, update, _ = checkpoints.restore_checkpoint(str(out), abstract)
    assert update == 9 and np.isfinite(np.asarray(runner["w"])).all() and int(runner["count"][0]) == 9


def test_a_finite_toy_run_reports(tmp_path, capsys):
    out = tmp_path / "run"
    host_loop.run(
        toy_module(1.0),
        ["--total-timesteps", "20", "--chunks", "3", "--no-progress", "--output-dir", str(out), "--eval-episodes", "4"],
    )
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["env_steps"] == 20  # 20 updates in chunks of 7, 7 and 6: none added by the chunking
    assert captured.err.strip().splitlines()[-1] == f"results in {out}"
    with open(out / "metrics.csv", newline="") as f:
        assert [int(r["update"]) for r in csv.DictReader(f)] == list(range(1, 21))


def test_real_trainer_with_overflowing_rewards_exits_1(tmp_path, capsys):
    from baselines import dqn

    with pytest.raises(SystemExit) as e:
        dqn.main(
            [
                "--env",
                "idsgame-random_defense-v0",
                "--total-timesteps",
                "512",
                "--num-envs",
                "8",
                "--learning-starts",
                "32",
                "--buffer-size",
                "256",
                "--hidden",
                "8",
                "--layers",
                "1",
                "--target-update-every",
                "4",
                "--reward-scale",
                "1e39",
                "--no-progress",
                "--output-dir",
                str(tmp_path / "nan"),
            ]
        )
    assert e.value.code == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == ""
    assert "non-finite in update 1 (seed 0)" in captured.err and "q_loss" in captured.err, captured.err


TQ = [
    "--env",
    "idsgame-random_defense-v0",
    "--total-timesteps",
    "1000",
    "--num-envs",
    "8",
    "--num-steps",
    "8",
    "--eval-episodes",
    "50",
    "--no-progress",
]


def test_chunks_change_nothing_but_reporting(tmp_path, capsys):
    """16 updates (1000 steps rounded up to whole updates of 64, said so): one chunk or five of 4, 4,
    4, 4 … the same metrics and the same evaluation."""
    results, rows = [], []
    for chunks in (1, 5):
        out = tmp_path / f"c{chunks}"
        results.append(tabular_q.main(TQ + ["--chunks", str(chunks), "--output-dir", str(out)]))
        with open(out / "metrics.csv", newline="") as f:
            rows.append([{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(f)])
        err = capsys.readouterr().err
        assert "rounded up to 1024 steps per seed" in err
        if chunks == 1:
            assert "compiling tabular_q" in err
    assert rows[0] == rows[1]
    drop = {"train_seconds", "compile_seconds", "steps_per_second", "output_dir"}
    assert {k: v for k, v in results[0].items() if k not in drop} == {
        k: v for k, v in results[1].items() if k not in drop
    }
    assert results[0]["env_steps"] == 1024


def test_fresh_run_refuses_a_directory_holding_a_run_and_resume_talks(tmp_path, capsys):
    out = tmp_path / "run"
    argv = TQ + ["--chunks", "4", "--output-dir", str(out)]
    tabular_q.main(argv + ["--stop-after", "512", "--tensorboard", str(tmp_path / "tb")])
    capsys.readouterr()
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tmp_path / "tb"))
    with pytest.raises(SystemExit) as e:
        tabular_q.main(argv)
    assert e.value.code == 2
    assert "already holds a run" in capsys.readouterr().err
    tabular_q.main(["--resume", "--output-dir", str(out), "--lr", "0.5", "--no-progress"])
    err = capsys.readouterr().err
    assert f"resuming {out} at update 8 of 16" in err
    assert "--lr 0.5 is ignored (the run uses 0.1)" in err
    tabular_q.main(argv + ["--overwrite"])
    assert "replacing the run" in capsys.readouterr().err
