"""The terminal game, driven end to end by scripted keystrokes (bad input included)."""

import io

import pytest
from rich.console import Console

from baselines import checkpoints
from idsjax import play
from idsjax.play import compress_ranges, run_script
from idsjax.policies import register_policy_loader


def test_attacker_game_with_bad_input():
    # Start node 2 of v0 may attack server 1 (ids 10-19); from server 1 the data node (ids 0-9).
    # Illegal ids are re-prompted without playing, so "1k\nk\n" keeps attacking whatever is reachable.
    keys = "h\nb\nfoo\n\n9999\n-1\n25\n" + "".join(f"1{k}\n{k}\n" for k in range(10)) * 8 + "q\n"
    code, out = run_script(
        ["--env", "idsgame-v0", "--side", "attacker", "--opponent", "bot:random_defense", "--seed", "1"], keys
    )
    assert code == 0
    assert "How to play" in out
    assert "'foo' is not an action id" in out
    assert "9999 is out of range" in out and "-1 is out of range" in out
    assert "is not legal now" in out
    assert "your legal actions" in out and "attack type" in out
    assert "attacker: attack type" in out and "defense (hidden from the attacker)" in out
    assert "Game over after" in out
    assert out.rstrip().endswith("Bye.")


def test_defender_game_until_the_end():
    keys = "22\n" + "".join(f"{d}\n" for d in (10, 21, 0, 11, 1, 12, 2)) * 20
    code, out = run_script(["--env", "idsgame-random_attack-v0", "--seed", "0"], keys)
    assert code == 0
    assert "you play the defender against random_attack" in out
    assert "22 (raise defense type 0 of node 2 (start)) is not legal now" in out
    assert "defender: raise detection of node 1" in out
    assert "Game over after" in out or "End of input" in out
    first_board = out.split("defender action id")[0]
    assert "attack A" in first_board and "x,x,x" in first_board and "@" not in first_board  # attacker hidden


def test_eof_and_quit_exit_cleanly():
    assert run_script(["--env", "idsgame-minimal_defense-v0"], "")[0] == 0
    code, out = run_script(["--env", "idsgame-minimal_defense-v0"], "q\n")
    assert code == 0 and "Bye." in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "idsgame-nope-v3"], "unknown environment id"),
        (["--env", "idsgame-minimal_defense-v0", "--side", "defender"], "you play the attacker"),
        (["--env", "idsgame-random_attack-v0", "--opponent", "bot:defend_minimal"], "not an attacker bot"),
        (["--env", "idsgame-v0", "--opponent", "bot:nobody"], "unknown bot"),
        (["--env", "idsgame-v0", "--opponent", "checkpoint:/no/such/run"], "no checkpoint in '/no/such/run'"),
        (["--env", "idsgame-v0", "--opponent", "checkpoint:"], "names no checkpoint"),
        (["--side", "both"], "invalid choice"),
        (["--seed", "x"], "invalid int value"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    # the research kit's loader, as its entry point registers it when installed
    register_policy_loader("checkpoint", checkpoints.load_checkpoint_policy)
    with pytest.raises(SystemExit) as exc:
        play.main(argv, stdin=io.StringIO(""), console=Console(file=io.StringIO()))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_compress_ranges():
    assert compress_ranges([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"
    assert compress_ranges([]) == "-"


def test_command_line_entry_point():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "idsjax.play", "--env", "idsgame-nope-v3"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and "unknown environment id" in done.stderr
