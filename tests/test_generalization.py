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
        (["--shapes", "taller"], "--shapes expects"),
        (["--networks", "gnn"], "--networks expects"),
        (["--methods", "plr"], "--methods expects"),
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

    from idsjax.render import main as render_main

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
    # per side: 2 generalists x (the family's held-out set, --quick's 1 shape, 1 version), 1 specialist
    assert len(table) == len(rows) == 2 * (2 * 3 + 1)
    cells = [r for r in table if r["hack_probability"] != ""]
    for r in cells:
        p, se, games = float(r["hack_probability"]), float(r["se"]), int(r["games"])
        assert games == 2 * 64, r  # 2 seeds x 64 evaluation games, every game finished
        # the mean over seeds of equal game counts is the pooled count over all games: whole games
        assert abs(p * games - round(p * games)) <= games * 5e-5 + 1e-9, r  # p is rounded to 4 decimals
        # the evaluation SE (root sum of the seeds' binomial variances / seeds) is at most the pooled
        # binomial SE (Jensen), and zero where no game or every game was hacked
        assert se <= (p * (1 - p) / games) ** 0.5 + 1e-4, r
        if round(p * games) in (0, games):
            assert se == 0, r
    assert {r["note"] for r in table if r["hack_probability"] == ""} == {"the MLP's input size is fixed"}
    text = md.read_text()
    assert "Attackers (against defend-minimal)" in text and "Defenders (against attack-maximal)" in text
    assert "python -m baselines.generalization --quick" in text and "## Aggregates (rliable)" in text
    # the MLP plays the sets of its own size only: the family's (not the larger one) and v0 padded
    mlp = {r["target"] for r in table if r["policy"] == "mlp dr" and r["hack_probability"] != ""}
    assert mlp == {"held-out small", "v0 (scenario)"}, mlp
    meta = json.loads((out / "results.json").read_text())
    assert meta["seeds"] == 2 and meta["eval_games_per_seed"] == 64


# --- the report (baselines.generalization_report) --------------------------------------------------


def _args_and_meta():
    from baselines import generalization_report  # noqa: F401

    meta = json.loads(open(generalization.PUBLISHED_RESULTS + "/results.json").read())
    return generalization.parse_args(meta["command"].split()[3:]), meta


def test_the_committed_report_is_rebuilt_from_the_committed_results(tmp_path):
    """`python -m baselines.generalization_report` rebuilds GENERALIZATION.md from results.json alone."""
    from baselines import generalization_report

    out = tmp_path / "GENERALIZATION.md"
    text = generalization_report.main(["--output", str(out)])
    assert out.read_text() == text == open(generalization.PUBLISHED_MD).read()


def test_report_refuses_a_missing_results_file(tmp_path, capsys):
    from baselines import generalization_report

    with pytest.raises(SystemExit) as e:
        generalization_report.main(["--results", str(tmp_path / "none.json"), "--output", str(tmp_path / "x.md")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a results.json of baselines.generalization" in err[0]


def test_per_seed_section_shows_each_seed_and_the_t_interval():
    from scipy import stats

    from baselines import generalization_report

    args, meta = _args_and_meta()
    values = [0.31, 0.42, 0.38]
    rows = [
        {"side": "attacker", "target": "v0 (scenario)", "policy": "mlp generalist", "hack_probability": 0.37,
         "se": 0.009, "games": 3000, "note": "", "hack_probability_per_seed": values},
        {"side": "attacker", "target": "larger (large)", "policy": "mlp generalist", "note": "fixed input"},
    ]  # fmt: skip
    text = generalization_report.markdown(args, rows, meta)
    line = next(x for x in text.splitlines() if x.startswith("| attacker | v0 (scenario) | mlp generalist | 0.310"))
    m = np.mean(values)
    se = np.std(values, ddof=1) / np.sqrt(3)
    lo, hi = stats.t.interval(0.95, 2, loc=m, scale=se)  # t with 2 degrees of freedom: 4.303 x SE
    assert line.endswith(f"| 0.310 | 0.420 | 0.380 | {m:.3f} ± {se:.3f} [{lo:.3f}, {hi:.3f}] |"), line
    assert (lo, hi) == pytest.approx((m - 4.302653 * se, m + 4.302653 * se), abs=1e-5)


def test_results_without_per_seed_values_say_so():
    from baselines import generalization_report

    args, meta = _args_and_meta()
    # Results written before the per-seed values were recorded: the committed rows without them.
    rows = [{k: v for k, v in r.items() if k not in ("hack_probability_per_seed", "se_per_seed")} for r in meta["rows"]]
    text = generalization_report.markdown(args, rows, meta)
    assert "## Per-seed values" in text
    assert "Not in these results" in text and "hack_probability_per_seed" in text
    assert "| seed 0 |" not in text  # nothing pretends to be a per-seed row


def test_a_cell_of_zero_or_one_prints_the_rule_of_three():
    from baselines.generalization_report import fmt_cell

    assert fmt_cell({"hack_probability": 0.0, "se": 0.0, "games": 3000}) == "0 of 3,000 games (95% upper bound 0.0010)"
    assert fmt_cell({"hack_probability": 0.002, "se": 0.001, "games": 3000}) == "0.002 ± 0.001"
    # 2 of 5,000 games: three decimals would read "0.000 ± 0.000", as if nothing were known
    assert fmt_cell({"hack_probability": 0.0004, "se": 0.0003, "games": 5000}) == "0.0004 ± 0.0003"


# --- held out by construction (issue 26 item 4 in the experiment) ----------------------------------


def test_the_shapes_are_the_family_variations():
    from idsjax.scenario.splits import FAMILY_VARIATIONS

    assert set(generalization.SHAPES) == set(FAMILY_VARIATIONS)


def test_every_evaluated_network_is_excluded_from_training():
    """The sets' networks, and the built-in versions as the experiment plays them (padded for the MLP
    too), are all in the exclusion set under which the training family resets."""
    from idsjax.scenario.canonical import as_ints, hash_networks

    args = generalization.parse_args(["--heldout", "4", "--shapes", "denser,larger", "--versions", "0,3,7"])
    for side in generalization.SIDES:
        base = jax.random.fold_in(jax.random.PRNGKey(args.seed), list(generalization.SIDES).index(side))
        train_env, train_params, pools, splits = generalization.side_splits(args, side, base)
        excluded = set(as_ints(train_params.exclude))
        assert [p.name for p in pools] == ["held-out small", *args.shape_list]
        for pool in pools:
            assert pool.size == args.heldout and set(as_ints(pool.hashes)) <= excluded, pool.name
        for v in args.version_list:
            for pad in (None, train_env.shape.max_nodes):
                env, params = generalization.builtin_env(v, generalization.SIDES[side], pad)
                assert as_ints(hash_networks(params, env.shape))[0] in excluded, (side, v, pad)
                assert generalization._excluded(env, params, splits)


def test_a_padded_version_is_the_same_game():
    """The MLP's padded v3 plays the unpadded one's network: the same construction-time layout."""
    small, _ = generalization.builtin_env(3, "minimal_defense", None)
    padded_env, padded = generalization.builtin_env(3, "minimal_defense", 12)
    _, unpadded = generalization.builtin_env(3, "minimal_defense", None)
    n = small.shape.max_nodes
    assert padded_env.shape.max_nodes == 12
    np.testing.assert_array_equal(np.asarray(padded.initial_attack)[:n], np.asarray(unpadded.initial_attack))
    np.testing.assert_array_equal(np.asarray(padded.initial_defense)[:n], np.asarray(unpadded.initial_defense))
    assert not np.asarray(padded.scenario.node_mask)[n:].any()


def test_aggregates_rank_a_policy_that_wins_every_seed_above_one_that_never_does():
    from baselines import generalization_report

    def rows(policy, per_seed):
        return [
            {"side": "defender", "target": t, "policy": policy, "hack_probability": float(np.mean(per_seed)),
             "se": 0.01, "games": 300, "note": "", "hack_probability_per_seed": per_seed}
            for t in ("held-out small", "denser")
        ]  # fmt: skip

    strong, weak = rows("nodes dr", [0.01, 0.02, 0.03]), rows("mlp dr", [0.5, 0.6, 0.7])
    targets, scores = generalization_report.side_scores(strong + weak, "defender")
    assert targets == ["held-out small", "denser"]
    np.testing.assert_allclose(scores["nodes dr"][:, 0], [0.99, 0.98, 0.97])  # the defender's score: 1 - p
    text = "\n".join(generalization_report.aggregates_section(strong + weak))
    assert "| nodes dr | mlp dr | 1.000 [1.000, 1.000] |" in text, text
    iqm_line = next(x for x in text.splitlines() if x.startswith("| mlp dr | "))
    assert iqm_line.startswith("| mlp dr | 0.400 "), iqm_line  # the IQM of 0.5, 0.4, 0.3 twice: 0.4
