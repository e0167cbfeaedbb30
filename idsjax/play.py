"""Play the game in a terminal against a bot or a trained policy.

    python -m idsjax.play --env idsgame-minimal_defense-v3
    python -m idsjax.play --env idsgame-v3 --side defender --opponent bot:attack_maximal
    python -m idsjax.play --env idsgame-random_attack-v4 --opponent checkpoint:runs/ppo/...

You take the id's learning side (`--side attacker|defender` on two-agent ids `idsgame-vN`); the other
side is the id's bot, or `--opponent bot:NAME`, `random`, or `checkpoint:PATH` (a policy trained by
`baselines.ppo`). At the prompt type an action id from the list of legal actions, `h` for help, `b`
to redraw the board, or `q` to quit.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from typing import Callable, TextIO

import jax
import numpy as np
from rich.console import Console
from rich.table import Table
from rich.text import Text

import idsjax
from idsjax.bots import BOTS
from idsjax.config import UNKNOWN_DEFENSE
from idsjax.network import DATA, SERVER, START
from idsjax.policies import (
    ATTACKER,
    DEFENDER,
    DEFENSE_BOTS,
    ATTACK_BOTS,
    default_policy,
    describe_attack,
    describe_defense,
    joint_step,
    legal_ids,
    resolve_policy,
    side_observation,
)

HELP = (
    "[bold]How to play.[/bold] The attacker starts at the start node and must reach the data node (top). "
    "From its node it may attack a linked node above it (or beside it, in v5/v6): an attack of type k "
    "raises the attacker's value A(k) of that node by one; if A(k) then exceeds the node's defense D(k) "
    "the attacker moves there, otherwise the attack fails and is detected with probability Det/10. "
    "Reaching the data node is a hack (the attacker wins); a detection ends the game too (the defender "
    "wins). The defender raises one defense value D(k) or the detection value Det of one node per step. "
    "Both move at the same time; after 101 steps the game times out.\n"
    "Attack ids: node*{width} + type{recon}. Defense ids: node*{dwidth} + type (type {a} = detection).\n"
    "Commands: an action id, [bold]h[/bold] help, [bold]b[/bold] board, [bold]q[/bold] quit."
)


class CheckpointUnavailable(Exception):
    pass


def load_checkpoint_policy(path: str, env, params) -> Callable:
    """A trained policy `(key, obs, state) -> id` from `baselines.ppo`'s `load_policy(path, env, params)`."""
    try:
        ppo = importlib.import_module("baselines.ppo")
    except Exception as err:  # noqa: BLE001 — any import problem means the baselines are unusable here
        raise CheckpointUnavailable(
            f"cannot load checkpoint {path!r}: checkpoints come from baselines.ppo, which cannot be imported "
            f"here ({err})"
        ) from None
    loader = getattr(ppo, "load_policy", None)
    if loader is None:
        raise CheckpointUnavailable(
            f"cannot load checkpoint {path!r}: checkpoints come from baselines.ppo, and this version of "
            "baselines.ppo has no load_policy(path, env, params) yet; play against a bot (--opponent bot:NAME)"
        )
    try:
        return loader(path, env, params)
    except Exception as err:  # noqa: BLE001
        raise CheckpointUnavailable(f"cannot load checkpoint {path!r}: {err}") from None


def compress_ranges(ids) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    ids = [int(i) for i in ids]
    if not ids:
        return "-"
    parts, start, prev = [], ids[0], ids[0]
    for i in ids[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ", ".join(parts)


class Game:
    """The state of one terminal session (separate from I/O so it can be driven by tests)."""

    def __init__(self, env, params, side: str, opponent, seed: int = 0):
        self.env, self.params, self.side = env, params, side
        self.config = env.config
        other = DEFENDER if side == ATTACKER else ATTACKER
        self.opponent_side = other
        self.opponent = resolve_policy(opponent, other, env, params)
        opponent_fn = self.opponent
        if not callable(opponent) or isinstance(opponent, str):
            opponent_fn = jax.jit(self.opponent)
        self._opponent_fn = opponent_fn
        self._step = jax.jit(lambda k, s, a, d: joint_step(env, k, s, a, d, params))
        self._reset = jax.jit(lambda k: env.initial_state(k, params))
        self.key = jax.random.PRNGKey(seed)
        self.games = self.hacks = 0
        self.new_game()

    def new_game(self):
        self.key, k = jax.random.split(self.key)
        self.state = self._reset(k)
        self.returns = np.zeros(2)
        self.last = None

    @property
    def over(self) -> bool:
        return bool(self.state.done) or bool(self.state.timed_out)

    def legal(self) -> np.ndarray:
        return legal_ids(self.env, self.state, self.params, self.side)

    def num_ids(self) -> int:
        return self.config.num_attack_ids if self.side == ATTACKER else self.config.num_defense_actions

    def play(self, action: int):
        """The human's id -> (attack id, defense id, rewards, info)."""
        self.key, k_opp, k_step = jax.random.split(self.key, 3)
        obs = side_observation(self.env, self.state, self.opponent_side)
        other = int(self._opponent_fn(k_opp, obs, self.state))
        a, d = (action, other) if self.side == ATTACKER else (other, action)
        self.state, rewards, info = self._step(k_step, self.state, np.int32(a), np.int32(d))
        rewards = np.asarray(rewards)
        self.returns += rewards
        self.last = (a, d)
        if self.over:
            self.games += 1
            self.hacks += int(bool(self.state.hacked))
        return a, d, rewards, info


# -- drawing ---------------------------------------------------------------------------------------
def _values(row, hidden: bool, unknown=None) -> str:
    if hidden:
        return ",".join("x" for _ in row)
    return ",".join("x" if (unknown is not None and int(v) == unknown) else str(int(v)) for v in row)


def board(game: Game) -> Table:
    """The nodes with the values the human's side may see."""
    cfg, s, side = game.config, game.state, game.side
    net = cfg.network
    position = int(s.position)
    show_attacker = side == ATTACKER or bool(s.detected)
    attack, defense, detection = np.asarray(s.attack), np.asarray(s.defense), np.asarray(s.detection)
    recon = np.asarray(s.recon)
    t = Table(title=f"{cfg.env_id} - time-step {int(s.time)} - you play the {side}", title_justify="left")
    for col in ("node", "attack A", "defense D", "Det", ""):
        t.add_column(col, overflow="fold")
    names = {DATA: "data", SERVER: "server", START: "start"}
    for n in range(cfg.num_nodes):
        kind = int(net.node_type[n])
        here = show_attacker and n == position
        marker = ""
        if here:
            marker = "[bold red]@ caught[/]" if bool(s.detected) else "[bold red]@ attacker[/]"
        if kind == START:
            a_txt = d_txt = det_txt = ""
        else:
            a_txt = _values(attack[n], hidden=side == DEFENDER)
            if side == ATTACKER:
                d_txt = _values(recon[n], False, UNKNOWN_DEFENSE) if cfg.reconnaissance else _values(defense[n], True)
                det_txt = "x"
            else:
                d_txt, det_txt = _values(defense[n], False), str(int(detection[n]))
        t.add_row(f"{n} {names.get(kind, '?')}", a_txt, d_txt, det_txt, marker)
    return t


def grid_map(game: Game) -> Text:
    """A small picture of the grid: node ids at their positions, the attacker marked with @."""
    cfg, s = game.config, game.state
    net = cfg.network
    show = game.side == ATTACKER or bool(s.detected)
    lines = []
    for r in range(net.rows):
        cells = []
        for c in range(net.cols):
            n = int(net.cell_node[r, c])
            if n < 0:
                cells.append("      ")
            else:
                mark = "@" if show and n == int(s.position) else " "
                tag = {DATA: "D", START: "S"}.get(int(net.node_type[n]), "")
                cells.append(f"[{mark}{n:>2}{tag:1}]")
        lines.append(" ".join(cells))
    return Text("\n".join(lines) + "\n(D data, S start" + (", @ attacker)" if show else ")"))


def legal_table(game: Game) -> Table:
    """Legal ids grouped by target node, with their meaning."""
    cfg = game.config
    legal = game.legal()
    t = Table(title="your legal actions", title_justify="left")
    t.add_column("node")
    t.add_column("ids")
    t.add_column("meaning")
    a = cfg.attack_types
    width = cfg.attack_id_width if game.side == ATTACKER else a + 1
    for node in sorted({int(i) // width for i in legal}):
        ids = [int(i) for i in legal if int(i) // width == node]
        kinds = [i % width for i in ids]
        base = node * width
        types = [k for k in kinds if k < a]
        meaning = []
        if types:
            verb = "attack" if game.side == ATTACKER else "raise defense"
            meaning.append(f"{verb} type id-{base} (types {compress_ranges(types)})")
        if game.side == ATTACKER and cfg.reconnaissance and a in kinds:
            meaning.append(f"{base + a}: reconnaissance")
        if game.side == DEFENDER and a in kinds:
            meaning.append(f"{base + a}: raise detection")
        t.add_row(str(node), compress_ranges(ids), "; ".join(meaning))
    return t


# -- the session -----------------------------------------------------------------------------------
def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m idsjax.play", description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="idsgame-minimal_defense-v3", help="any of the 110 ids")
    parser.add_argument("--side", choices=(ATTACKER, DEFENDER), default=None,
                        help="your side (two-agent ids; single-agent ids fix it)")
    parser.add_argument("--opponent", default=None,
                        help="bot:NAME, random, or checkpoint:PATH (default: the id's bot; two-agent ids: "
                             "random_defense or attack_maximal)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the games")
    parser.add_argument("--instance-seed", type=int, default=0, help="seed of the instance (idsjax.make)")
    args = parser.parse_args(argv)
    if args.env not in idsjax.registered_envs():
        try:
            idsjax.make(args.env)
        except ValueError as err:
            parser.error(str(err))
    env, params = idsjax.make(args.env, seed=args.instance_seed)
    if env.learner == "both":
        side = args.side or ATTACKER
    else:
        side = env.learner
        if args.side is not None and args.side != side:
            parser.error(f"in {args.env} you play the {side} (the other side is a bot); "
                         f"use the two-agent id idsgame-v{env.config.version} to choose --side")
    other = DEFENDER if side == ATTACKER else ATTACKER
    opp = args.opponent
    if opp is None:
        opponent = default_policy(env, other) if env.learner != "both" else (
            "random_defense" if other == DEFENDER else "attack_maximal")
    elif opp.startswith("checkpoint:"):
        path = opp[len("checkpoint:"):]
        if not path:
            parser.error("--opponent checkpoint:PATH needs a path")
        try:
            opponent = load_checkpoint_policy(path, env, params)
        except CheckpointUnavailable as err:
            parser.error(str(err))
    else:
        name = opp[4:] if opp.startswith("bot:") else opp
        allowed = (ATTACK_BOTS if other == ATTACKER else DEFENSE_BOTS) + ("random",)
        if name not in allowed:
            article = "an" if other == ATTACKER else "a"
            kind = "unknown bot" if name not in BOTS and name != "random" else f"not {article} {other} bot"
            parser.error(f"--opponent {opp!r}: {kind}; the {other} can be "
                         + ", ".join(f"bot:{b}" for b in allowed[:-1]) + ", random or checkpoint:PATH")
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
    return (f"Game over after {int(s.time)} steps: {what} - {verdict}. Returns: attacker {game.returns[0]:.1f}, "
            f"defender {game.returns[1]:.1f}. Hacks {game.hacks}/{game.games} games "
            f"(P(breached) {game.hacks / max(game.games, 1):.2f}).")


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
    console.print(f"[bold]{env.config.env_id}[/bold]: you play the [bold]{side}[/bold] against "
                  f"[bold]{opp_name}[/bold]. Type h for help, q to quit.")
    game = Game(env, params, side, opponent, seed=args.seed)
    help_text = HELP.format(width=env.config.attack_id_width,
                            recon=" (type A = reconnaissance)" if env.config.reconnaissance else "",
                            dwidth=env.config.attack_types + 1, a=env.config.attack_types)
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
        if action not in set(int(i) for i in game.legal()):
            what = describe_attack(env.config, action) if side == ATTACKER else describe_defense(env.config, action)
            console.print(f"[yellow]{action} ({what}) is not legal now; legal ids: "
                          f"{compress_ranges(game.legal())}.[/]")
            continue
        position = int(game.state.position)
        a, d, rewards, info = game.play(action)
        mine = 0 if side == ATTACKER else 1
        attack_text = describe_attack(env.config, a)
        if bool(info["attack_legal"]):
            if bool(info["moved"]):
                outcome = "succeeded: the attacker moved there"
            elif env.config.reconnaissance and a % env.config.attack_id_width == env.config.attack_types:
                outcome = "revealed the node's defenses"
            else:
                outcome = "failed"
        else:
            outcome = "illegal"
        if side == DEFENDER and not bool(game.state.detected) and not bool(game.state.hacked):
            attack_text, outcome = "an attack", "(hidden from the defender)"
        del position
        console.print(f"attacker: {attack_text} -> {outcome}")
        defense_text = describe_defense(env.config, d) if side == DEFENDER else "a defense (hidden from the attacker)"
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
