"""The terminal game's view: the board, the grid map and the legal-action table as `rich`
renderables, and the help text."""

from __future__ import annotations

import numpy as np
from rich.table import Table
from rich.text import Text

from idsjax.config import UNKNOWN_DEFENSE
from idsjax.network import DATA, EMPTY, SERVER, START
from idsjax.play_game import Game
from idsjax.policies import ATTACKER, DEFENDER, ScenarioNames, scenario_links

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


def _values(row, hidden: bool, unknown=None) -> str:
    if hidden:
        return ",".join("x" for _ in row)
    return ",".join("x" if (unknown is not None and int(v) == unknown) else str(int(v)) for v in row)


def _kinds(cfg) -> list[int]:
    """Each node's role code (`idsjax.network`), for a `GameConfig` or `ScenarioNames`."""
    if isinstance(cfg, ScenarioNames):
        return list(cfg.roles)
    return [int(k) for k in cfg.network.node_type]


def _node_label(cfg, n: int) -> str:
    return f"{n} {cfg.node_ids[n]}" if isinstance(cfg, ScenarioNames) else str(n)


def board(game: Game) -> Table:
    """The nodes with the values the human's side may see."""
    cfg, s, side = game.config, game.state, game.side
    kinds = _kinds(cfg)
    position = int(s.position)
    show_attacker = side == ATTACKER or bool(s.detected)
    attack, defense, detection = np.asarray(s.attack), np.asarray(s.defense), np.asarray(s.detection)
    recon = np.asarray(s.recon)
    t = Table(title=f"{cfg.env_id} - time-step {int(s.time)} - you play the {side}", title_justify="left")
    for col in ("node", "attack A", "defense D", "Det", ""):
        t.add_column(col, overflow="fold")
    names = {DATA: "data", SERVER: "server", START: "start"}
    for n in range(cfg.num_nodes):
        kind = kinds[n]
        if kind == EMPTY:  # an absent server of a generated network
            continue
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
        name = f"{n} {cfg.node_ids[n]} ({names.get(kind, '?')})" if isinstance(cfg, ScenarioNames) else None
        t.add_row(name or f"{n} {names.get(kind, '?')}", a_txt, d_txt, det_txt, marker)
    return t


def grid_map(game: Game) -> Text:
    """A small picture of the grid: node ids at their positions, the attacker marked with @ (a
    scenario: one line per distinct height, top first, nodes left to right, then its links)."""
    cfg, s = game.config, game.state
    if isinstance(cfg, ScenarioNames):
        return _scenario_map(game)
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


def _scenario_map(game: Game) -> Text:
    cfg, s, arr = game.config, game.state, game.network.scenario
    show = game.side == ATTACKER or bool(s.detected)
    pos = np.asarray(arr.position)
    nodes = [n for n in range(cfg.num_nodes) if cfg.roles[n] != EMPTY]
    lines = []
    for y in sorted({float(pos[n, 1]) for n in nodes}):
        row = sorted((float(pos[n, 0]), n) for n in nodes if float(pos[n, 1]) == y)
        cells = []
        for _, n in row:
            mark = "@" if show and n == int(s.position) else " "
            tag = {DATA: "D", START: "S"}.get(cfg.roles[n], "")
            cells.append(f"[{mark}{n:>2}{tag:1} {cfg.node_ids[n]}]")
        lines.append(" ".join(cells))
    links = [f"{cfg.node_ids[a]}{'->' if one_way else '<->'}{cfg.node_ids[b]}" for a, b, one_way in scenario_links(arr)]
    legend = "\n(D data, S start" + (", @ attacker)" if show else ")")
    return Text("\n".join(lines) + "\nlinks (attacker may attack along ->): " + ", ".join(links) + legend)


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
        t.add_row(_node_label(cfg, node), compress_ranges(ids), "; ".join(meaning))
    return t
