"""Tests of the baselines: probe environments with known answers, a smoke run of every command,
resume == uninterrupted, determinism, and the command line's errors (exit code 2)."""

from __future__ import annotations

import json
import os
import shutil

import jax
import numpy as np
import pytest
from kit_runs import PPO_ARGS, SMOKE_ENV, last_json, run_metrics, trained_run
from probe_envs import ProbeEnv

import idsjax
from baselines import actor_critic, cli, dqn, evaluation, ppo, reinforce, tabular_q

ALGOS = {"ppo": ppo, "dqn": dqn, "tabular_q": tabular_q, "reinforce": reinforce, "actor_critic": actor_critic}


PROBE_BUDGET = {
    "ppo": ["--total-timesteps", "4096", "--num-envs", "8", "--num-steps", "16", "--lr", "3e-3"],
    "dqn": [
        "--total-timesteps",
        "3000",
        "--num-envs",
        "8",
        "--learning-starts",
        "200",
        "--hidden",
        "32",
        "--target-update-every",
        "10",
        "--eps-fraction",
        "0.5",
    ],
    "tabular_q": ["--total-timesteps", "2000", "--num-envs", "8", "--table-size-log2", "6", "--lr", "0.5"],
    "reinforce": ["--total-timesteps", "8192", "--num-envs", "8", "--num-steps", "16", "--lr", "3e-3"],
    "actor_critic": ["--total-timesteps", "6000", "--num-envs", "8", "--num-steps", "4", "--lr", "3e-3"],
}


@pytest.mark.parametrize("length", [1, 2], ids=["bandit", "chain"])
@pytest.mark.parametrize("algo", list(ALGOS))
def test_probe_learns_known_answer(algo, length):
    module = ALGOS[algo]
    config = cli.parse_config(module, PROBE_BUDGET[algo] + ["--chunks", "1", "--no-mask-illegal"])
    env = ProbeEnv(length)
    trainer = module.make_train(config, env, env.default_params)
    runner, metrics = jax.jit(trainer.train)(jax.random.PRNGKey(0))
    assert np.isfinite(np.asarray(jax.tree.leaves(runner)[0])).all()
    result = jax.jit(lambda r, k: evaluation.evaluate(env, env.default_params, trainer.act, r, k, 200, False))(
        runner, jax.random.PRNGKey(1)
    )
    assert int(result["episodes"]) == 200
    assert float(result["hack_probability"]) >= 0.95, (algo, length, result)


# --- the commands ---------------------------------------------------------------------------------

KEYS = {
    "algo",
    "env",
    "seed",
    "env_steps",
    "train_seconds",
    "steps_per_second",
    "eval_episodes",
    "eval_hack_probability",
    "eval_attacker_return",
    "eval_defender_return",
}


def check_outputs(out, result, algo, env, episodes):
    assert KEYS <= set(result)
    assert result["algo"] == algo and result["env"] == env and result["eval_episodes"] == episodes
    for name in ("metrics.csv", "learning_curves.png", "config.json", "eval.json"):
        assert (out / name).is_file(), name
    # The reported hack probability is the seeds' mean of whole-game counts, as eval.json records them,
    # and its evaluation SE is the root sum of the seeds' binomial variances over the seeds.
    ev = json.loads((out / "eval.json").read_text())
    seeds = ev["per_seed"]
    assert sum(int(s["episodes"]) for s in seeds) == episodes
    for s in seeds:
        n, p = int(s["episodes"]), float(s["hack_probability"])
        assert abs(p * n - round(p * n)) < 1e-2, s
    ps = np.array([float(s["hack_probability"]) for s in seeds])
    ns = np.array([int(s["episodes"]) for s in seeds])
    assert result["eval_hack_probability"] == pytest.approx(ps.mean(), abs=1e-4)
    se = np.sqrt(np.sum(ps * (1 - ps) / ns)) / len(ps)
    assert result["eval_hack_probability_se"] == pytest.approx(se, abs=1e-4)
    assert (out / "checkpoints").is_dir()
    saved = json.loads((out / "config.json").read_text())
    assert saved["algo"] == algo and saved["env"] == env
    assert {int(r["seed"]) for r in run_metrics(out)} == {0, 1}


# PPO's smoke run is the uninterrupted run of the resume test below. The runs are shared with the
# checkpoint tests (tests/kit_runs.py): each is trained once per session.
@pytest.mark.parametrize("algo", ["dqn", "tabular_q", "reinforce", "actor_critic"])
def test_smoke_command(algo, tmp_path_factory):
    out, result, stdout = trained_run(tmp_path_factory, algo)
    assert json.loads(stdout.strip().splitlines()[-1]) == result  # the JSON line is the last on stdout
    check_outputs(out, result, algo, SMOKE_ENV[algo], 40)  # dqn plays a defender


RESUME_ARGS = PPO_ARGS


def test_ppo_command_resume_equals_uninterrupted_same_seed_same_metrics(tmp_path, tmp_path_factory, capsys):
    split = tmp_path / "split"
    full, uninterrupted, _ = trained_run(tmp_path_factory, "ppo")
    check_outputs(full, uninterrupted, "ppo", "idsgame-random_defense-v0", 100)
    ppo.main(RESUME_ARGS + ["--output-dir", str(split), "--stop-after", "2048", "--checkpoint-every", "1024"])
    stopped = last_json(capsys)
    assert stopped.get("stopped") and stopped["env_steps"] == 2048
    ppo.main(["--resume", "--output-dir", str(split), "--no-progress"])
    resumed = last_json(capsys)
    assert run_metrics(full) == run_metrics(split)
    for key in ("env_steps", "eval_hack_probability", "eval_attacker_return", "eval_defender_return"):
        assert resumed[key] == uninterrupted[key], key

    # Same seed, same metrics: the chunked host loop computes what the single compiled program
    # `train` computes (another compilation, another program): the same episodes, and losses equal
    # up to float rounding (XLA fuses the two programs differently).
    config = cli.parse_config(ppo, RESUME_ARGS)
    env, params = idsjax.make(config["env"])
    trainer = ppo.make_train(config, env, params)
    _, metrics = jax.jit(jax.vmap(trainer.train))(jax.random.split(jax.random.PRNGKey(0), 2))
    csv_rows = run_metrics(full)
    for name, values in metrics.items():
        from_csv = np.array([[float(r[name]) for r in csv_rows if int(r["seed"]) == s] for s in (0, 1)])
        exact = name in ("episodes", "hack_probability", "return", "attacker_return", "defender_return")
        np.testing.assert_allclose(
            from_csv,
            np.asarray(values),
            rtol=1e-6 if exact else 1e-3,
            atol=0 if exact else 1e-5,
            equal_nan=True,
            err_msg=name,
        )

    # A corrupt checkpoint is a clear error (exit code 2), not a traceback.
    broken = tmp_path / "broken"
    shutil.copytree(split, broken)
    for root, _, files in os.walk(broken / "checkpoints"):
        for name in files:
            if "state" in root:
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with pytest.raises(SystemExit) as e:
        ppo.main(["--resume", "--output-dir", str(broken), "--no-progress"])
    assert e.value.code == 2
    assert "corrupt" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "idsgame-minimal_defence-v7"], "idsgame-minimal_defense-v7"),
        (["--env", "idsgame-v7"], "baselines.selfplay"),
        (["--env", "nonsense"], "unknown environment id"),
        (["--total-timesteps", "0"], "--total-timesteps must be positive"),
        (["--num-envs", "-4"], "--num-envs must be positive"),
        (["--num-seeds", "0"], "--num-seeds must be positive"),
        (["--lr", "-1"], "--lr must be positive"),
        (["--gamma", "1.5"], "--gamma"),
        (["--total-timesteps", "many"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        ppo.main(argv + ["--no-progress"])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_resume_without_checkpoint_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        dqn.main(["--resume", "--output-dir", str(tmp_path / "nothing"), "--no-progress"])
    assert e.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_help_lists_common_and_algorithm_options(capsys):
    with pytest.raises(SystemExit) as e:
        ppo.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--env",
        "--total-timesteps",
        "--num-envs",
        "--num-seeds",
        "--seed",
        "--output-dir",
        "--checkpoint-every",
        "--resume",
        "--clip-eps",
        "--gae-lambda",
    ):
        assert flag in text
