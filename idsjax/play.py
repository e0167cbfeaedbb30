"""Play the game in a terminal against a bot or a trained policy.

    python -m idsjax.play --env idsgame-minimal_defense-v3
    python -m idsjax.play --env idsgame-v3 --side defender --opponent bot:attack_maximal
    python -m idsjax.play --env idsgame-random_attack-v4 --opponent checkpoint:runs/ppo/...
    python -m idsjax.play --scenario scenarios/examples/office_dmz.yaml --side defender
    python -m idsjax.play --scenario scenarios/examples/office_dmz.yaml --mode random_attack
    python -m idsjax.play --generator small --mode minimal_defense

You take the id's learning side (`--side attacker|defender` on two-agent ids `idsgame-vN`); the other
side is the id's bot, or `--opponent bot:NAME`, `random`, or `checkpoint:RUN_DIR` (a policy trained by
any trainer of the research kit, a self-play run included; it must have been trained for that side on
the same version). `--scenario FILE [--mode MODE]` plays a scenario (docs/scenarios.md) instead of an
id; its nodes are named by their ids in the file. `--generator NAME [--generator-arg K=V ...] [--mode
MODE]` plays a generated family (the trainers' families): every game on a new network, its nodes named
`n<index>`. At the prompt type an action id from the list of legal actions, `h` for help, `b` to
redraw the board, or `q` to quit.
"""

from __future__ import annotations

import argparse
import io
import sys
from typing import TextIO

import jax
from rich.console import Console

from idsjax.bots import BOTS
from idsjax.game_arguments import add_game_arguments, make_game
from idsjax.play_game import Game
from idsjax.play_view import HELP, board, compress_ranges, grid_map, legal_table
from idsjax.policies import (
    ATTACK_BOTS,
    ATTACKER,
    DEFENDER,
    DEFENSE_BOTS,
    PolicyLoadError,
    default_policy,
    describe_attack,
    describe_defense,
    is_recurrent,
    load_policy,
)

__all__ = ["Game", "board", "compress_ranges", "grid_map", "legal_table", "main", "run_script"]


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m idsjax.play", description=__doc__.splitlines()[0])
    add_game_arguments(parser, env_default="idsgame-minimal_defense-v3")
    parser.add_argument(
        "--side", choices=(ATTACKER, DEFENDER), default=None, help="your side (two-agent ids; single-agent ids fix it)"
    )
    parser.add_argument(
        "--opponent",
        default=None,
        help="bot:NAME, random, or checkpoint:PATH (default: the id's bot; two-agent ids: "
        "random_defense or attack_maximal)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the games")
    parser.add_argument("--instance-seed", type=int, default=0, help="seed of the instance (idsjax.make)")
    args = parser.parse_args(argv)
    env, params, args.game_scenario = make_game(parser, args, args.instance_seed)
    if env.learner == "both":
        side = args.side or ATTACKER
    else:
        side = env.learner
        if args.side is not None and args.side != side:
            if args.scenario is not None or getattr(args, "generator", None) is not None:
                parser.error(
                    f"in mode {env.mode.value!r} you play the {side} (the other side is a bot); "
                    "leave out --mode (the two-agent mode) to choose --side"
                )
            parser.error(
                f"in {args.env} you play the {side} (the other side is a bot); "
                f"use the two-agent id idsgame-v{env.config.version} to choose --side"
            )
    other = DEFENDER if side == ATTACKER else ATTACKER
    opp = args.opponent
    if opp is None:
        opponent = (
            default_policy(env, other)
            if env.learner != "both"
            else ("random_defense" if other == DEFENDER else "attack_maximal")
        )
    elif ":" in opp and not opp.startswith("bot:"):
        try:  # checkpoint:RUN_DIR and other loaders of the entry-point group idsjax.policy_loaders
            opponent = load_policy(opp, other, env, params)
            if not is_recurrent(opponent):  # a policy with memory is jitted step by step by the Game
                opponent = jax.jit(opponent)  # loaders return jittable policies
        except PolicyLoadError as err:
            parser.error(f"--opponent {opp}: {err}")
    else:
        name = opp[4:] if opp.startswith("bot:") else opp
        allowed = (ATTACK_BOTS if other == ATTACKER else DEFENSE_BOTS) + ("random",)
        if name not in allowed:
            article = "an" if other == ATTACKER else "a"
            kind = "unknown bot" if name not in BOTS and name != "random" else f"not {article} {other} bot"
            parser.error(
                f"--opponent {opp!r}: {kind}; the {other} can be "
                + ", ".join(f"bot:{b}" for b in allowed[:-1])
                + ", random or checkpoint:PATH"
            )
        opponent = name
    return args, env, params, side, opponent


def _read(stdin: TextIO, console: Console, prompt: str) -> str | None:
    """One line of input, or None at end of input."""
    if stdin is sys.stdin and sys.stdin.isatty():
        try:
            return console.input(prompt).strip()  # line editing through the builtin input()
        except EOFError:
            return None
    console.print(prompt, end="")
    line = stdin.readline()
    if not line:
        return None
    return line.strip()


def _show(console: Console, game: Game):
    console.print(grid_map(game))
    console.print(board(game))
    if not game.over:
        console.print(legal_table(game))


def _result(game: Game) -> str:
    s = game.state
    if bool(s.hacked):
        winner = ATTACKER
        what = "the attacker reached the data node: HACKED"
    elif bool(s.detected):
        winner = DEFENDER
        what = "the attacker was DETECTED"
    else:
        winner = None
        what = "the game TIMED OUT"
    verdict = "you win" if winner == game.side else ("you lose" if winner else "nobody wins")
    return (
        f"Game over after {int(s.time)} steps: {what} - {verdict}. Returns: attacker {game.returns[0]:.1f}, "
        f"defender {game.returns[1]:.1f}. Hacks {game.hacks}/{game.games} games "
        f"(P(breached) {game.hacks / max(game.games, 1):.2f})."
    )


def main(argv=None, *, stdin: TextIO | None = None, console: Console | None = None) -> int:
    """Run the terminal game; returns the exit code (2 for bad arguments, via argparse; 130 on Ctrl-C)."""
    args, env, params, side, opponent = _parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    console = Console(highlight=False) if console is None else console
    try:
        return _session(args, env, params, side, opponent, stdin, console)
    except KeyboardInterrupt:
        console.print("\nInterrupted. Bye.")
        return 130


def _session(args, env, params, side, opponent, stdin, console) -> int:
    opp_name = opponent if isinstance(opponent, str) else "checkpoint policy"
    game = Game(env, params, side, opponent, seed=args.seed, scenario=args.game_scenario)
    config = game.config  # the id's GameConfig or a scenario's ScenarioNames (sizes are the game's)
    console.print(
        f"[bold]{config.env_id}[/bold]: you play the [bold]{side}[/bold] against "
        f"[bold]{opp_name}[/bold]. Type h for help, q to quit."
    )
    help_text = HELP.format(
        width=config.attack_id_width,
        recon=" (type A = reconnaissance)" if config.reconnaissance else "",
        dwidth=config.attack_types + 1,
        a=config.attack_types,
    )
    _show(console, game)
    while True:
        if game.over:
            console.print(_result(game))
            answer = _read(stdin, console, "Play again? [y/N] ")
            if answer is None or answer.lower() not in ("y", "yes"):
                console.print("Bye.")
                return 0
            game.new_game()
            _show(console, game)
            continue
        line = _read(stdin, console, f"{side} action id (h help, q quit) > ")
        if line is None:
            console.print("\nEnd of input. Bye.")
            return 0
        cmd = line.lower()
        if cmd in ("q", "quit", "exit"):
            console.print("Bye.")
            return 0
        if cmd in ("h", "help", "?"):
            console.print(help_text)
            continue
        if cmd in ("b", "board", ""):
            _show(console, game)
            continue
        try:
            action = int(cmd)
        except ValueError:
            console.print(f"[yellow]'{line}' is not an action id: type a number, h for help or q to quit.[/]")
            continue
        if not 0 <= action < game.num_ids():
            console.print(f"[yellow]{action} is out of range: {side} ids are 0-{game.num_ids() - 1}.[/]")
            continue
        config = game.config  # a generated family's names change with every game's network
        if action not in set(int(i) for i in game.legal()):
            what = describe_attack(config, action) if side == ATTACKER else describe_defense(config, action)
            console.print(f"[yellow]{action} ({what}) is not legal now; legal ids: {compress_ranges(game.legal())}.[/]")
            continue
        position = int(game.state.position)
        a, d, rewards, info = game.play(action)
        mine = 0 if side == ATTACKER else 1
        attack_text = describe_attack(config, a)
        if bool(info["attack_legal"]):
            if bool(info["moved"]):
                outcome = "succeeded: the attacker moved there"
            elif config.reconnaissance and a % config.attack_id_width == config.attack_types:
                outcome = "revealed the node's defenses"
            else:
                outcome = "failed"
        else:
            outcome = "illegal"
        if side == DEFENDER and not bool(game.state.detected) and not bool(game.state.hacked):
            attack_text, outcome = "an attack", "(hidden from the defender)"
        del position
        console.print(f"attacker: {attack_text} -> {outcome}")
        defense_text = describe_defense(config, d) if side == DEFENDER else "a defense (hidden from the attacker)"
        console.print(f"defender: {defense_text}")
        console.print(f"your reward {float(rewards[mine]):+.1f}, return {game.returns[mine]:+.1f}")
        if bool(info["hacked"]):
            console.print("[bold red]HACKED: the attacker reached the data node.[/]")
        if bool(info["detected"]):
            console.print("[bold green]DETECTED: the attacker was caught.[/]")
        _show(console, game)


def run_script(argv, keys: str, width: int = 120) -> tuple[int, str]:
    """Drive `main` with a keystroke script; returns (exit code, transcript). For tests and demos."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None, highlight=False)
    code = main(argv, stdin=io.StringIO(keys), console=console)
    return code, out.getvalue()


if __name__ == "__main__":
    sys.exit(main())
