"""Scenario and generated-network runs of the research kit (issue 13): ppo's --scenario/--generator
options and their refusals, a scenario checkpoint playing in `idsjax.play` and `load_policy` at other
sizes, and `baselines.generalization` end to end at a tiny budget (-m slow)."""

from __future__ import annotations

import csv
import json

import jax
import numpy as np
import pytest

import idsjax
from baselines import checkpoints, cli, generalization, ppo, scenarios
from baselines.host_loop import start_fresh_run
from idsjax import play
from idsjax.policies import load_policy

V3 = "scenarios/builtin/v3.yaml"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--generator", "tiny"], "not a generator family"),
        (["--generator", "small", "--generator-arg", "max_layers"], "expected K=V"),
        (["--generator", "small", "--generator-arg", "colour=red"], "expected K=V"),
        (["--generator", "small", "--generator-arg", "edge_p=high"], "expected edge_p=float"),
        (["--generator", "small", "--generator-arg", "min_layers=5"], "field `min_layers`"),
        (["--generator", "small", "--max-nodes", "20"], "--max-nodes pads a --scenario"),
        (["--generator", "small", "--scenario", V3], "give one of them"),
        (["--scenario", V3, "--env", "idsgame-v3"], "give --mode instead"),
        (["--scenario", "no/such/file.yaml"], "cannot be read"),
        (["--scenario", V3, "--max-nodes", "4"], "at most 4 nodes"),
        (["--max-nodes", "12"], "goes with --scenario"),
        (["--generator-arg", "max_layers=2"], "goes with --generator"),
        (["--mode", "maximal_attack"], "goes with --scenario or --generator"),
        (["--generator", "small", "--mode", "both"], "invalid choice"),
        (["--network", "gnn"], "invalid choice"),
    ],
)
def test_ppo_scenario_options_refused_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        cli.parse_config(ppo, argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_generator_config_names_the_game_and_its_family():
    config = cli.parse_config(
        ppo, ["--generator", "small", "--generator-arg", "edge_p=0.5", "--mode", "maximal_attack"]
    )
    assert config["env"] == "generated-small-maximal_attack"
    assert config["family"]["edge_p"] == 0.5 and config["family"]["attack_types"] == 10
    assert config["output_dir"].endswith("generated-small-maximal_attack/seed0")
    env, params = scenarios.make_env(json.loads(json.dumps(config)))  # as a saved config.json reloads
    assert env.learner == "defender" and env.shape.max_nodes == 8


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--versions", "18"], "v18 is not a version"),
        (["--versions", "3,x"], "comma-separated"),
        (["--family", "huge"], "not a generator family"),
        (["--sides", "referee"], "--sides"),
        (["--timesteps", "0"], "--timesteps must be positive"),
    ],
)
def test_generalization_refusals_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        generalization.parse_args(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


@pytest.fixture(scope="module")
def node_scenario_run(tmp_path_factory):
    """A node-network attacker run on v3's scenario file, saved untrained (loading is what is tested;
    `test_node_policy` tests that the network learns): its configuration and one checkpoint."""
    out = str(tmp_path_factory.mktemp("scenario_run"))
    argv = ["--scenario", V3, "--network", "nodes", "--num-envs", "4", "--num-steps", "8", "--hidden", "8"]
    config = cli.parse_config(ppo, argv + ["--layers", "1", "--num-minibatches", "1", "--output-dir", out])
    env, params = scenarios.make_env(config)
    trainer = ppo.make_train(config, env, params)
    runner = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.PRNGKey(0), 1))
    start_fresh_run(out, config)
    checkpoints.save_checkpoint(out, 0, runner, 0.0, config)
    return out


def test_scenario_checkpoint_plays_registered_ids_and_other_sizes(node_scenario_run, capsys):
    saved = json.load(open(f"{node_scenario_run}/config.json"))
    assert saved["scenario"].endswith("v3.yaml") and saved["env"] == "scenario-v3-minimal_defense"
    # The registered two-agent id (idsjax.play's path) and the scenario padded to 12 nodes.
    games = [idsjax.make("idsgame-v3"), idsjax.make_scenario(V3, mode="minimal_defense", max_nodes=12)]
    for env, params in games:
        policy = jax.jit(load_policy(f"checkpoint:{node_scenario_run}", "attacker", env, params))
        obs, state = env.reset(jax.random.PRNGKey(0), params)
        obs = obs["attacker"] if isinstance(obs, dict) else obs
        action = int(policy(jax.random.PRNGKey(1), obs, state))
        assert bool(np.asarray(env.attack_mask(state, params))[action])  # trained masked: a legal id
    code, transcript = play.run_script(
        ["--env", "idsgame-v3", "--side", "defender", "--opponent", f"checkpoint:{node_scenario_run}"], "q\n"
    )
    assert code == 0, transcript
    # A version whose rows are wider (v19: reconnaissance) is refused in one sentence.
    with pytest.raises(Exception, match="does not match"):
        load_policy(f"checkpoint:{node_scenario_run}", "attacker", *idsjax.make("idsgame-v19"))


def test_scenario_checkpoint_plays_and_renders_on_another_scenario(node_scenario_run, tmp_path):
    """`idsjax.play --scenario` and `idsjax.render --scenario` take a checkpoint opponent: the
    node-wise attacker trained on v3's file plays v0's (another number of nodes, the same rows)."""
    from PIL import Image

    from idsjax.render_cli import main as render_main

    v0 = "scenarios/builtin/v0.yaml"
    moves = "".join(f"{d}\n" for d in (1, 2, 3, 4)) + "q\n"
    code, transcript = play.run_script(
        ["--scenario", v0, "--side", "defender", "--opponent", f"checkpoint:{node_scenario_run}"], moves
    )
    assert code == 0, transcript
    assert "against checkpoint policy" in transcript
    assert transcript.count("attacker:") >= 1  # the checkpoint moved (the game may end after a detection)
    gif = tmp_path / "v0.gif"
    assert render_main(["--scenario", v0, "--attacker", f"checkpoint:{node_scenario_run}", "--out", str(gif)]) == 0
    assert Image.open(gif).n_frames >= 2


@pytest.mark.slow
def test_generalization_end_to_end(tmp_path):
    md, out = tmp_path / "GENERALIZATION.md", tmp_path / "results"
    rows = generalization.main(["--quick", "--output-dir", str(out), "--md", str(md)])
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows) == 2 * (2 * 3 + 1)  # per side: 2 generalists x 3 targets, 1 specialist
    cells = [r for r in table if r["hack_probability"] != ""]
    assert all(0 <= float(r["hack_probability"]) <= 1 and float(r["se"]) >= 0 for r in cells)
    assert {r["note"] for r in table if r["hack_probability"] == ""} == {"the MLP's input size is fixed"}
    text = md.read_text()
    assert "Attackers (against defend-minimal)" in text and "Defenders (against attack-maximal)" in text
    assert "python -m baselines.generalization --quick" in text
    meta = json.loads((out / "results.json").read_text())
    assert meta["seeds"] == 2 and meta["eval_games_per_seed"] == 64
