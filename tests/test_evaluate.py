"""`python -m baselines.evaluate`: bots on an id against values derived by hand (within 3 SE), a
trained run's every seed, a user's small scenario with its optimum, and refusals (one sentence, exit 2)."""

from __future__ import annotations

import json

import pytest
from kit_runs import trained_run

import idsjax
from baselines import evaluate

# Two servers side by side before the data node, the partial view, defend-minimal by default.
TINY = """\
format: 1
name: tiny
description: two servers side by side before the data node
attack_types: 2
max_value: 4
nodes:
  - {id: start, role: start, position: [0, 3]}
  - {id: s1, role: server, position: [0, 2], defense: 0}
  - {id: s2, role: server, position: [1, 2], defense: 1}
  - {id: data, role: data, position: [0, 1], defense: 1}
edges:
  - [start, s1]
  - [start, s2]
  - [s1, data]
  - [s2, data]
values: {attack: 0, defense: 2, detection: 2, vulnerability: 0}
vulnerabilities: {per_layer: 0, per_node: 0, data_always: false}
randomize: false
rewards: sparse
observation: {view: partial, reconnaissance: false}
max_steps: 12
"""


def run(argv, capsys) -> tuple[dict, str]:
    result = evaluate.main(argv)
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == result  # the JSON line is the last on stdout
    return result, out


def within_3_se(result: dict, value: float) -> bool:
    return abs(result["hack_probability"] - value) <= 3 * max(result["hack_probability_se"], 1e-3)


@pytest.mark.parametrize(
    "attacker, defender, value",
    [
        # v13: the start faces the data node alone (two types at defense 0, detection 10: a failed
        # attack is always caught), so one step decides. Random defense raises one of its three ids
        # (type 0, type 1, detection): the random attacker's type is raised with probability 1/3.
        ("random_attack", "random_defense", 2 / 3),
        # Defend-minimal raises type 0 (the first weakest) at once: half the random attacks get through.
        ("random_attack", "defend_minimal", 1 / 2),
    ],
)
def test_bots_on_an_id_reach_the_value_derived_by_hand(attacker, defender, value, capsys):
    result, out = run(
        ["--attacker", attacker, "--defender", f"bot:{defender}", "--env", "idsgame-v13", "--games", "3000"], capsys
    )
    assert result["games"] == 3000 and result["seeds"] == 1
    assert within_3_se(result, value), result
    # The best attacker against random defense (the search): the same 2/3, exact; against
    # defend-minimal every attack on type 1 gets through.
    best = result["optimum"]
    assert best["exact"]
    assert best["lower"] == pytest.approx(2 / 3 if defender == "random_defense" else 1.0, abs=1e-6)
    assert "hack probability" in out and "optimum" in out


def test_a_small_user_scenario_reports_its_optimum(tmp_path, capsys):
    """Against defend-minimal (the scenario's default defender): it raises s1 (the one weakest
    node) at step 1, so an attack on s1's other type gets through; then it raises s1's other type,
    and the data node (defense 1, 1) needs two attacks on one type: one failure, caught with
    probability 0.2, is unavoidable (waiting only lets the defense grow). 0.8, exactly."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    result, out = run(["--attacker", "attack_maximal", "--scenario", str(path), "--games", "2000"], capsys)
    assert result["defender"] == "bot:defend_minimal"
    best = result["optimum"]
    assert best["exact"] and best["lower"] == pytest.approx(0.8, abs=1e-9)
    assert result["hack_probability"] <= best["upper"] + 3 * result["hack_probability_se"]
    assert "0.800000 (exact)" in out
    # Another defender: a sentence saying why no optimum, not an error.
    result, _ = run(
        ["--attacker", "random", "--defender", "random_defense", "--scenario", str(path), "--games", "100"], capsys
    )
    assert result["optimum"] is None and "defend_minimal" in result["optimum_note"]


def test_the_optimum_on_a_padded_scenario_and_a_registered_id_is_one_search(tmp_path, capsys):
    """The optimum comes from one search (`baselines.exploitability.real_info`) on every game: the tiny
    scenario padded to 6 nodes gives the same exact 0.8, and the method names that search."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    result, _ = run(["--attacker", "random", "--scenario", str(path), "--max-nodes", "6", "--games", "200"], capsys)
    best = result["optimum"]
    assert best["exact"] and best["lower"] == pytest.approx(0.8, abs=1e-9)
    assert "real_info" in best["method"]
    # A version the search cannot decide: a sentence, not an error.
    env, params = idsjax.make("idsgame-minimal_defense-v19")
    args = {"optimum": True, "generator": None, "scenario": None, "budget": 5.0}
    assert "fixed layout" in evaluate.optimum(args, env, params, "bot:defend_minimal", 1)["none"]


def test_every_seed_of_a_trained_run(tmp_path_factory, capsys):
    run_dir, trained, _ = trained_run(tmp_path_factory, "ppo")  # 2 seeds, an attacker on random_defense-v0
    result, out = run(["--attacker", str(run_dir), "--env", "idsgame-random_defense-v0", "--games", "200"], capsys)
    assert result["seeds"] == 2 and result["games"] == 400
    assert len(result["hack_probability_per_seed"]) == 2 and result["hack_probability_seed_std"] is not None
    assert result["attacker"].startswith(f"checkpoint:{run_dir} (ppo, 2 seeds)")
    assert result["defender"] == "bot:random_defense"
    # The same policy as the run's own evaluation (other games): within 3 SE of it.
    assert abs(result["hack_probability"] - trained["eval_hack_probability"]) <= 3 * (
        result["hack_probability_se"] + trained["eval_hack_probability_se"]
    )
    # Beside it, the optimum against the defender (the search may stop at --budget with bounds rather than
    # meet): no trained attacker beats its upper bound.
    best = result["optimum"]
    assert best["lower"] <= best["upper"] and best["exact"] == (best["stopped"] is None), best
    assert result["hack_probability"] <= best["upper"] + 3 * result["hack_probability_se"]
    # One seed of the run; --no-optimum skips the search (the optimum does not depend on the attacker,
    # and the call above has searched it once: each search takes seconds).
    one, _ = run(
        [
            "--attacker",
            f"checkpoint:{run_dir}",
            "--env",
            "idsgame-random_defense-v0",
            "--games",
            "50",
            "--seed-index",
            "1",
            "--no-optimum",
        ],
        capsys,
    )
    assert one["seeds"] == 1 and one["games"] == 50
    assert one["optimum"] is None and one["optimum_note"] == "not computed (--no-optimum)"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "idsgame-nope-v7"], "idsgame-nope-v7"),
        (["--games", "0"], "--games must be positive"),
        (["--attacker", "defend_minimal"], "not an attacker bot"),
        (["--defender", "nobody"], "unknown policy"),
        (["--attacker", "checkpoint:"], "needs the run directory"),
        (["--scenario", "/nonexistent/net.yaml"], "net.yaml"),
        (["--env", "idsgame-v7", "--scenario", "x.yaml"], "--env names a registered game"),
        (["--budget", "0"], "--budget must be positive"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_directory_without_a_run_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--attacker", f"checkpoint:{tmp_path}", "--env", "idsgame-v13"])
    assert e.value.code == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_help_and_bad_numbers_answer_before_jax_loads():
    """--help and a bad number are answered without importing JAX (about a second, not ten)."""
    import subprocess
    import sys

    for argv in (["--help"], ["--games", "0"]):
        code = (
            "import sys\nfrom baselines import evaluate\ntry:\n"
            f"    evaluate.main({argv!r})\nexcept SystemExit as e:\n    print('exit', e.code)\n"
            "print('jax loaded:', 'jax' in sys.modules)"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
        assert out.strip().splitlines()[-2:] == [f"exit {0 if argv == ['--help'] else 2}", "jax loaded: False"], out
