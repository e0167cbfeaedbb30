"""Self-play trained data-parallel over a device mesh (`baselines.selfplay.trainer.mesh_layout`): each
device plays its share of the games, both learners and the league stay one, and the command line
trains, resumes and saves runs that load on one device.

Runs with several devices are subprocesses: the device count must be set before JAX starts."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from forced_devices import assert_plays_on_one_device, trained

ROOT = Path(__file__).resolve().parents[1]

# Two updates of 16 games (4 pool games per side, 8 learner-vs-learner) per seed, 2 seeds, over two
# CPU devices; saves every device's copy of the replicated parts and the sharded observations.
WORKER = r"""
import json, sys
import jax
jax.config.update("jax_num_cpu_devices", 2)
import numpy as np
import idsjax
from baselines import distributed
from baselines.selfplay.config import parse_config
from baselines.selfplay.trainer import make_train, mesh_layout

config = parse_config(["--num-envs", "16", "--num-seeds", "2", "--total-timesteps", "2048", "--devices", "2",
                       "--snapshot-every", "1", "--mode", sys.argv[2], "--no-progress"])
env, params = idsjax.make(config["env"])
trainer = distributed.make_train(make_train, config, env, params, layout=mesh_layout(config))
chunk = lambda r: jax.lax.scan(lambda c, _: trainer.update(c), r, None, 2)
runner, metrics = jax.jit(jax.vmap(chunk))(jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(3), 2)))

def copies(x):  # each device's copy of a replicated array
    return np.stack([np.asarray(s.data) for s in x.addressable_shards])

lg = runner.league
np.savez(sys.argv[1],
         att=copies(jax.tree.leaves(runner.att.params)[0]), dfn=copies(jax.tree.leaves(runner.dfn.params)[0]),
         pool=copies(jax.tree.leaves(lg.att_pool.params)[0]), payoff=copies(lg.payoff),
         att_rate=copies(lg.att_rate), self_rate=copies(lg.self_rate),
         obs=np.asarray(runner.obs["attacker"]), opp=np.asarray(lg.att_opp),
         returns_shape=np.asarray(runner.returns.shape), episodes=np.asarray(metrics["episodes"]))
"""


def test_two_devices_play_their_own_games_and_keep_one_league(tmp_path):
    # The worker makes its two devices itself (jax_num_cpu_devices), so it keeps this session's XLA flags
    # (make test's optimisation level) and compilation cache: it compiles as the suite it runs in does.
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "out.npz"), "pool"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(tmp_path / "out.npz") as z:
        d = {k: z[k] for k in z.files}
    # Both learners, their pools and the league's statistics are the same on both devices.
    for name in ("att", "dfn", "pool", "payoff", "att_rate", "self_rate"):
        np.testing.assert_array_equal(d[name][0], d[name][1], err_msg=name)
    # The league learnt from the games: snapshots were rated (every update takes one here).
    assert not np.all(d["payoff"][0] == 0.5)
    # Each device plays its own 8 of each seed's 16 games, with its own pool opponents (2 per side).
    assert d["obs"].shape[:2] == (2, 16)
    assert (d["obs"][:, :8] != d["obs"][:, 8:]).any()
    assert d["opp"].shape == (2, 4)
    assert tuple(d["returns_shape"]) == (2, 2, 16)
    assert (d["episodes"] > 0).all()


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["--num-envs", "33"], "--num-envs 33 must be divisible by the 2 devices"),
        (["--num-envs", "36"], "does not split evenly over --devices 2 (9 pool games per side, 4 per device)"),
        (
            ["--mode", "naive", "--num-envs", "8", "--num-steps", "16", "--num-minibatches", "128"],
            "--devices 2 gives each device 4 games, and then: each player",
        ),
    ],
)
def test_devices_that_cannot_split_the_games_are_refused(args, sentence, capsys):
    from baselines.selfplay.config import parse_config

    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--devices", "2", "--total-timesteps", "100000", *args])
    assert exit_info.value.code == 2
    assert sentence in capsys.readouterr().err


def selfplay(tmp_path, name, devices, *more):
    return trained(
        [
            "baselines.selfplay",
            "--devices",
            str(devices),
            "--env",
            "idsgame-v19",
            "--total-timesteps",
            "20480",
            "--num-envs",
            "32",
            "--chunks",
            "4",
            "--br-timesteps",
            "0",
            "--payoff-episodes",
            "10",
            "--eval-episodes",
            "500",
            "--br-eval-episodes",  # exploitability's selection and fresh games: 2,000 each by default
            "100",
            "--no-progress",
            "--output-dir",
            str(tmp_path / name),
            *more,
        ]
    )


@pytest.mark.slow  # three command lines, about a minute
def test_selfplay_command_line_on_two_devices(tmp_path):
    """`python -m baselines.selfplay --devices 2`: the whole budget is trained once; a stopped run
    resumes to the uninterrupted result; its checkpoint plays on one device; and it learns what one
    device learns (the final attacker against defend_minimal, within the evaluation noise)."""
    two = selfplay(tmp_path, "two", 2)
    assert two["env_steps"] == 20480
    selfplay(tmp_path, "stopped", 2, "--stop-after", "10")
    resumed = selfplay(tmp_path, "stopped", 2, "--resume")
    for key in ("eval_hack_probability", "attacker_vs_defend_minimal_hack_probability"):
        assert resumed[key] == two[key]

    for side in ("attacker", "defender"):
        assert_plays_on_one_device(tmp_path / "two", "idsgame-v19", side)

    one = selfplay(tmp_path, "one", 1)
    key = "attacker_vs_defend_minimal_hack_probability"
    p1, p2 = one[key], two[key]
    se = (p1 * (1 - p1) / 500 + p2 * (1 - p2) / 500) ** 0.5
    assert abs(p1 - p2) <= 4 * se + 0.05
