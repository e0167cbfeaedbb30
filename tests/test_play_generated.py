"""The terminal game on a generated family: every game on a network of its own, its nodes named by
index (absent servers leave gaps), drawn and described as the game's own network says."""

import io

import jax
import numpy as np
from rich.console import Console

import idsjax
from idsjax.network import EMPTY
from idsjax.play import run_script
from idsjax.play_game import Game
from idsjax.play_view import board, grid_map, legal_table
from idsjax.policies import describe_attack
from idsjax.scenario.generator import Family


def _text(renderable) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_every_game_is_played_and_drawn_on_its_own_network():
    env, params = idsjax.make_generated(Family(max_layers=2, max_width=3), mode="minimal_defense")
    game = Game(env, params, "attacker", None, seed=0)
    seen = set()
    for _ in range(4):
        mask = np.asarray(game.state.network.scenario.node_mask)
        seen.add(mask.tobytes())
        real = np.flatnonzero(mask)
        # Names are indexed by node: node i is `n<i>`, an absent server `-` with no role.
        assert game.config.node_ids == tuple(f"n{i}" if m else "-" for i, m in enumerate(mask))
        assert [r == EMPTY for r in game.config.roles] == list(~mask)
        shown = _text(board(game))
        assert all(f"{i} n{i} (" in shown for i in real)
        assert not any(f"{i} - (" in shown for i in np.flatnonzero(~mask))
        picture = _text(grid_map(game))
        assert all(f" n{i}]" in picture for i in real) and "links (attacker may attack along ->)" in picture
        legal = game.legal()
        assert len(legal) and "attack type" in _text(legal_table(game))
        node = int(legal[0]) // env.ids_per_node("attacker")
        assert describe_attack(game.config, int(legal[0])) == f"attack type 0 on node {node} (n{node}, server)"
        a, d, rewards, info = game.play(int(legal[0]))
        assert (a, int(legal[0])) == (int(legal[0]), a) and np.asarray(rewards).shape == (2,)
        game.new_game()
    assert len(seen) > 1  # a family draws a new network for every game


def test_the_command_line_plays_a_generated_family():
    keys = "h\nb\n" + "".join(f"{i}\n" for i in range(40)) + "q\n"
    code, out = run_script(["--generator", "small", "--mode", "minimal_defense", "--seed", "1"], keys)
    assert code == 0
    assert "generated-small-minimal_defense" in out and "you play the attacker against defend_minimal" in out
    assert "links (attacker may attack along ->)" in out and "attacker: attack type" in out


def test_the_session_model_is_deterministic_in_its_seed():
    env, params = idsjax.make_generated(Family(max_layers=2, max_width=2), mode="")
    one, two = (Game(env, params, "defender", "random_attack", seed=3) for _ in range(2))
    for game in (one, two):
        game.play(int(game.legal()[0]))
    for a, b in zip(jax.tree.leaves(one.state), jax.tree.leaves(two.state)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
