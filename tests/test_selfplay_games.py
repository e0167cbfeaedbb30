"""Self-play on a user's own network (issue 23 item 3): `python -m baselines.selfplay --scenario FILE`
and `--generator NAME` train both players on the game played two-agent, with the league, the
evaluation games, the payoff matrix, exploitability, checkpoints and `--resume` of a registered id.

The command-line checks run in the default suite; the training runs compile self-play's programs
(minutes on the shared 2-core machine), so they are `slow`."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
from kit_runs import SELFPLAY_GAMES, SELFPLAY_TINY_BR_GAMES, argv_of, trained_run

from baselines import selfplay

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "examples" / "office_dmz.yaml"
# kind of game -> (its command-line options, the name the run gives it, the shared run's name in kit_runs)
GAMES = {
    "scenario file": (SELFPLAY_GAMES["selfplay-scenario"], "scenario-office_dmz", "selfplay-scenario"),
    "generated family": (SELFPLAY_GAMES["selfplay-generated"], "generated-small", "selfplay-generated"),
}
assert GAMES["scenario file"][0] == ["--scenario", str(SCENARIO)]


# --- the command line (default suite) --------------------------------------------------------------


@pytest.mark.parametrize("kind", GAMES)
def test_the_game_is_named_and_played_two_agent(kind):
    args, name, _ = GAMES[kind]
    config = selfplay.parse_config([*args, "--mode", "pfsp"])
    assert config["env"] == name and config["mode"] == "pfsp"  # --mode stays the league's
    assert config["game_mode"] == "" and config["output_dir"] == os.path.join("runs", "selfplay", name, "seed0")
    if kind == "scenario file":
        assert config["scenario"] == str(SCENARIO)
    else:
        assert config["family"]["max_layers"] == 2  # the "small" preset
    env, params = selfplay.make_game(config)
    assert env.learner == "both"
    # Both heads are sized from the game's ids (node x type), as the registered ids' are.
    pols = selfplay.side_policies(config, env)
    for side in ("attacker", "defender"):
        assert pols[side].num_actions == env.num_ids(side)


def test_a_registered_id_is_sized_as_before():
    """The heads read `num_ids` and `ids_per_node` now, and a registered id's are its config's numbers."""
    config = selfplay.parse_config(["--env", "idsgame-v19"])
    env, _ = selfplay.make_game(config)
    assert "game_mode" not in config and env.name == "idsgame-v19"
    pols = selfplay.side_policies(config, env)
    cfg = env.config
    assert pols["attacker"].num_actions == cfg.num_nodes * cfg.attack_id_width
    assert pols["defender"].num_actions == cfg.num_nodes * (cfg.attack_types + 1)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--scenario", str(SCENARIO), "--env", "idsgame-v3"], "give one of them"),
        (["--scenario", str(SCENARIO), "--generator", "small"], "give one of them"),
        (["--scenario", "no/such/file.yaml"], "cannot be read"),
        (["--generator", "huge"], "is not a generator family"),
        (["--generator", "small", "--generator-arg", "layers"], "expected K=V"),
        (["--max-nodes", "12"], "--max-nodes goes with --scenario"),
        (["--generator-arg", "max_layers=3"], "--generator-arg goes with --generator"),
        (["--generator", "small", "--max-nodes", "12"], "--max-nodes pads a --scenario"),
    ],
)
def test_bad_game_options_exit_2_in_one_sentence(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        selfplay.main([*argv, "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error) == 1 and message in error[0]


# --- tiny runs (slow) ------------------------------------------------------------------------------


def _train(argv) -> tuple[dict, str]:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        result = selfplay.main(argv)
    return result, stdout.getvalue()


@pytest.fixture
def runs(tmp_path_factory):
    """kind -> (run directory, result, stdout) of one tiny run per kind of game, trained on first use
    (tests/kit_runs.py: once per session, however xdist spreads these tests over its workers)."""
    return lambda kind: trained_run(tmp_path_factory, GAMES[kind][2])


def _se(p: float, n: int) -> float:
    return float(np.sqrt(p * (1 - p) / n))


@pytest.mark.slow
@pytest.mark.parametrize("kind", GAMES)
def test_selfplay_trains_and_evaluates_on(kind, runs):
    out, result, stdout = runs(kind)
    assert json.loads(stdout.strip().splitlines()[-1]) == json.loads(json.dumps(result))
    assert result["env"] == GAMES[kind][1] and result["env_steps"] == 512 and result["eval_episodes"] == 16
    # Every probability comes with its standard error over its games (one seed: binomial).
    p = result["eval_hack_probability"]
    assert 0 <= p <= 1 and result["eval_hack_probability_se"] == pytest.approx(_se(p, 16), abs=1e-4)
    for side in ("attacker", "defender"):
        for bot in selfplay.OPPONENT_BOTS[side]:
            q = result[f"{side}_vs_{bot}_hack_probability"]
            assert result[f"{side}_vs_{bot}_hack_probability_se"] == pytest.approx(_se(q, 16), abs=1e-4)
        assert 0 <= result[f"{side}_vs_pool_hack_probability_se"] <= 0.5
        e = result[f"{side}_exploitability"]
        assert 0 <= e <= 1 and 0 <= result[f"{side}_exploitability_se"] <= 0.5
        assert result[f"{side}_exploitability_by"]
    for name in ("metrics.csv", "config.json", "eval.json", "payoff_matrix.csv", "payoff_matrix.png", "checkpoints"):
        assert (out / name).exists(), name
    with open(out / "payoff_matrix.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) - 1 == 3 + 1  # the ring of 3 snapshots is full, plus the final policies
    saved = json.loads((out / "eval.json").read_text())
    for side in ("attacker", "defender"):
        assert saved["exploitability"][f"{side}_exploitability"]["games"] == SELFPLAY_TINY_BR_GAMES
    config = json.loads((out / "config.json").read_text())
    assert config["env"] == GAMES[kind][1] and config["game_mode"] == "" and config["mode"] == "pool"


def _restored(out: Path):
    """The run's game and its last checkpoint restored into self-play's runner, with its configuration."""
    from baselines import checkpoints

    config = checkpoints.load_config(str(out))
    env, params = selfplay.make_game(config)
    trainer = selfplay.make_train({**config}, env, params)
    abstract = jax.eval_shape(jax.vmap(trainer.init), jax.random.split(jax.random.PRNGKey(0), config["num_seeds"]))
    runner, _, _ = checkpoints.restore_checkpoint(str(out), abstract)
    return config, env, params, jax.tree.map(lambda x: x[0], runner)


@pytest.mark.slow
@pytest.mark.parametrize("kind", GAMES)
def test_the_checkpoint_restores_and_both_policies_play_legal_ids(kind, runs):
    out, _, _ = runs(kind)
    config, env, params, runner = _restored(out)
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    for side in ("attacker", "defender"):
        act, probs = selfplay.side_policy(config, env, runner, side)
        mask = (env.attack_mask if side == "attacker" else env.defense_mask)(state, params)
        dist = np.asarray(probs(obs[side][None], mask[None]))[0]
        assert dist.shape == (env.num_ids(side),) and dist.sum() == pytest.approx(1.0, abs=1e-5)
        assert dist[~np.asarray(mask)].sum() == pytest.approx(0.0, abs=1e-6)  # trained with --mask-illegal
        ids = np.asarray(act(jax.random.PRNGKey(4), obs[side][None], mask[None]))
        assert np.asarray(mask)[int(ids[0])]


@pytest.mark.slow
@pytest.mark.parametrize("kind", GAMES)
def test_the_run_loads_as_a_checkpoint_policy(kind, runs):
    from idsjax.policies import resolve_policy

    out, _, _ = runs(kind)
    config, env, params, _ = _restored(out)
    obs, state = env.reset(jax.random.PRNGKey(3), params)
    for side in ("attacker", "defender"):
        policy = resolve_policy(f"checkpoint:{out}", side, env, params)
        action = int(policy(jax.random.PRNGKey(5), obs[side], state))
        mask = (env.attack_mask if side == "attacker" else env.defense_mask)(state, params)
        assert np.asarray(mask)[action]


@pytest.mark.slow
@pytest.mark.parametrize("kind", GAMES)
def test_resume_matches_uninterrupted_on(kind, runs, tmp_path):
    full_dir, full, _ = runs(kind)
    part = tmp_path / "part"
    argv = [*argv_of(GAMES[kind][2]), "--output-dir", str(part)]  # the shared run's command line
    stopped, _ = _train([*argv, "--stop-after", "256"])
    assert stopped.get("stopped") and stopped["env_steps"] == 256
    resumed, _ = _train(["--resume", "--output-dir", str(part), "--no-progress"])
    assert resumed["resumed_at_env_steps"] == 256
    from test_selfplay import assert_resumed_equals_uninterrupted

    assert_resumed_equals_uninterrupted(resumed, full, part, full_dir)
