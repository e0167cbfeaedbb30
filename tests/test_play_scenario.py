"""The terminal game on a scenario file: scripted moves, node ids in the wording, bad input refused."""

import io

import pytest
from rich.console import Console

from idsjax import play
from idsjax.play import run_script

OFFICE = "scenarios/examples/office_dmz.yaml"


def test_attacker_plays_a_scenario_against_a_bot():
    # internet (0) may attack web (ids 4-7) and mail (8-11); 30 (the database's) is not reachable from there.
    keys = "h\n30\n" + "4\n8\n5\n9\n" * 6 + "q\n"
    code, out = run_script(["--scenario", OFFICE, "--opponent", "bot:defend_minimal", "--seed", "1"], keys)
    assert code == 0
    assert "office_dmz" in out and "you play the attacker against defend_minimal" in out
    assert "[@ 0S internet]" in out and "ws1<->ws2" in out and "app->database" in out
    assert "7 database (data)" in out
    assert "30 (attack type 2 on node 7 (database, data)) is not legal now; legal ids: 4-11" in out
    assert "attacker: attack type 0 on node 1 (web, server)" in out
    assert "Game over after" in out or "Bye." in out


def test_defender_plays_a_scenario_against_its_scripted_attacker():
    keys = "".join(f"{d}\n" for d in (39, 34, 29, 24)) * 3
    code, out = run_script(["--scenario", OFFICE, "--mode", "random_attack", "--seed", "0"], keys)
    assert code == 0
    assert "you play the defender against random_attack" in out
    assert "defender: raise detection of node 7 (database, data)" in out
    assert "attacker: an attack -> (hidden from the defender)" in out or "DETECTED" in out or "HACKED" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--scenario", OFFICE, "--env", "idsgame-v3"], "not allowed with argument"),
        (["--env", "idsgame-v3", "--mode", "random_attack"], "--mode goes with --scenario"),
        (["--scenario", OFFICE, "--mode", "random_defense"], "allows only"),
        (["--scenario", OFFICE, "--mode", "random_attack", "--side", "attacker"], "you play the defender"),
        (["--scenario", OFFICE, "--opponent", "bot:attack_maximal"], "not a defender bot"),
        (["--scenario", OFFICE, "--opponent", "checkpoint:runs/x"], "runs/x"),
    ],
)
def test_bad_scenario_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        play.main(argv, stdin=io.StringIO(""), console=Console(file=io.StringIO()))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_scenario_file_is_refused_in_one_sentence(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    with open(OFFICE) as f:
        bad.write_text(f.read().replace("role: data", "role: vault"))
    with pytest.raises(SystemExit) as exc:
        play.main(["--scenario", str(bad)], stdin=io.StringIO(""), console=Console(file=io.StringIO()))
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert str(bad) in last and "field `nodes" in last and "role" in last and last.endswith(".")
