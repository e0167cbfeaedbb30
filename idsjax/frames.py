"""Host-side drawing of a game: one RGB frame per state (`render_frame`), GIFs and PNGs of frames
(spec §11.3). Drawing only: `idsjax.render` plays episodes and draws them with this module, and
`idsjax.trajectories` replays recorded ones with it.

Outside `jit`, with Pillow only; no display needed. A frame shows what the reference's frame shows:

- a top panel: the id, the view, the time-step, the game status (in progress, HACKED, DETECTED, timed
  out), the last joint action and, when given, the players' returns and the running hack probability
  ("P(breached)");
- the network grid: the start node, the servers and the data node at their grid positions, linked as
  the adjacency matrix says; each server and the data node carries its labels `A=a1,…`, `D=d1,…`,
  `Det=x`;
- the attacker (a hooded figure) at its node, drawn inside a cage once detected; the data node turns
  red when hacked;
- the last joint action: the attacked node is outlined red and the attacked value printed red
  (reconnaissance: a magnifying glass), the defended value printed green.

Views. `"full"` shows everything. `"attacker"` hides the defense and detection values (`x`), except,
in reconnaissance versions, the values the attacker has learned (reconnaissance state ≠ 10), and the
defender's last action. `"defender"` hides the attack values (`x`), the attacker's position (until it
is detected and caged) and the attacker's last action.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from idsjax.config import UNKNOWN_DEFENSE, GameConfig
from idsjax.network import DATA, SERVER, START
from idsjax.policies import (
    ATTACKER,
    DEFENDER,
    decode_attack_id,
    decode_defense_id,
    scenario_links,
)

VIEWS = ("full", ATTACKER, DEFENDER)

CELL_W, CELL_H, HEADER_H, MIN_W = 200, 120, 96, 600

BACKGROUND = (250, 250, 247)
INK = (30, 30, 30)
MUTED = (120, 120, 120)
LINK = (150, 150, 150)
RED = (210, 30, 30)
GREEN = (20, 150, 40)
SERVER_FILL = (95, 125, 170)
DATA_FILL = (230, 180, 40)
START_FILL = (120, 180, 120)
LABEL_BG = (255, 255, 255)


@functools.cache
def _font(size: int, bold: bool = False):
    names = ("DejaVuSansMono-Bold.ttf", "DejaVuSans-Bold.ttf") if bold else ("DejaVuSansMono.ttf", "DejaVuSans.ttf")
    dirs = ["", "/usr/share/fonts/truetype/dejavu"]
    try:
        import matplotlib

        dirs.append(os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf"))
    except ImportError:  # pragma: no cover - matplotlib is optional
        pass
    for name in names:
        for d in dirs:
            try:
                return ImageFont.truetype(os.path.join(d, name) if d else name, size)
            except OSError:
                continue
    try:  # Pillow >= 10.1 ships a scalable default font
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover
        return ImageFont.load_default()


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> float:
    return draw.textlength(text, font=font)


def frame_size(game, params=None) -> tuple[int, int]:
    """(height, width) of the frames of a `GameConfig`, or of an environment with its `params` (a
    generated family's frames are as large as the network drawn: pass the params of one network,
    e.g. `state.network`)."""
    if isinstance(game, GameConfig):
        net = game.network
        return HEADER_H + CELL_H * net.rows, max(MIN_W, CELL_W * net.cols)
    board = _board(game, params)
    return board.height, board.width


def network_params(env, state, params):
    """The params of the network `state` is played on: `params` (default: the environment's own),
    except in a generated family, whose state carries the network it drew at its reset."""
    params = env.default_params if params is None else params
    game_params = getattr(env, "game_params", None)  # the registered ids' network is the environment's
    return params if game_params is None else game_params(state, params)


def _board(env, params=None, scenario=None) -> _Board:
    """What a frame draws of `env`'s game, as its names describe it: a registered id's `GameConfig`
    is a grid of rows and columns; any other network is drawn at its nodes' positions."""
    names = env.names(params, scenario)
    if isinstance(names, GameConfig):
        return _grid_board(names)
    return _scenario_board(env, env.default_params if params is None else params, scenario)


MAX_SPAN = 9.0  # scenario positions spanning more units than this are scaled down to it


@dataclass(frozen=True)
class _Board:
    """What a frame draws of a network: node centres in pixels, the nodes drawn (padding is not),
    their kinds and labels, and the links `(i, j, arrow)` (`arrow`: only `i` may attack `j`, drawn
    as an arrowhead towards `j`). `config` decodes action ids (a `GameConfig` or `ScenarioNames`)."""

    config: Any
    height: int
    width: int
    xs: np.ndarray
    ys: np.ndarray
    kinds: np.ndarray
    nodes: tuple[int, ...]
    labels: tuple[str, ...]
    links: tuple[tuple[int, int, bool], ...]
    num_types: int


def _grid_board(config) -> _Board:
    net = config.network
    height, width = frame_size(config)
    xs, ys = _node_centers(config, width)
    adj = np.asarray(net.adjacency)
    n = config.num_nodes
    links = tuple((i, j, False) for i in range(n) for j in range(i + 1, n) if adj[i, j])
    return _Board(
        config=config,
        height=height,
        width=width,
        xs=xs,
        ys=ys,
        kinds=np.asarray(net.node_type),
        nodes=tuple(range(n)),
        labels=tuple(str(i) for i in range(n)),
        links=links,
        num_types=config.attack_types,
    )


def _scenario_board(env, params, scenario=None) -> _Board:
    """A scenario's network: each node at its `position` (x right, y down: the data node's layer on
    top), one unit a grid cell (spans over `MAX_SPAN` units scaled down to it); links from `reach`."""
    arr = params.scenario
    mask = np.asarray(arr.node_mask)
    if mask.ndim != 1:
        raise ValueError("render_frame draws one game; these params are batched: pick one game's params")
    pos = np.asarray(arr.position, np.float64)
    real = np.flatnonzero(mask)
    low, high = pos[real].min(axis=0), pos[real].max(axis=0)
    span = high - low
    scale = np.where(span > MAX_SPAN, MAX_SPAN / np.maximum(span, 1e-9), 1.0)
    units = span * scale
    width = max(MIN_W, int(np.ceil(CELL_W * (units[0] + 1))))
    height = HEADER_H + int(np.ceil(CELL_H * (units[1] + 1)))
    offset = (width - CELL_W * (units[0] + 1)) / 2
    xs = offset + ((pos[:, 0] - low[0]) * scale[0] + 0.5) * CELL_W
    ys = HEADER_H + (pos[:, 1] - low[1]) * scale[1] * CELL_H + 30
    names = env.names(params, scenario)
    # Labelled by node index (names are indexed by node: a generated network has gaps).
    labels = [""] * len(mask)
    for i in real:
        labels[i] = f"{i} {names.node_ids[i]}" if scenario is not None else str(i)
    return _Board(
        config=names,
        height=height,
        width=width,
        xs=xs,
        ys=ys,
        kinds=np.asarray(arr.role),
        nodes=tuple(int(i) for i in real),
        labels=tuple(labels),
        links=tuple(scenario_links(arr)),
        num_types=int(np.asarray(arr.num_attack_types)),
    )


def _host_state(state) -> dict[str, np.ndarray]:
    fields = (
        "attack",
        "defense",
        "detection",
        "recon",
        "revealed",
        "position",
        "time",
        "done",
        "hacked",
        "detected",
        "timed_out",
    )
    out = {}
    for f in fields:
        value = getattr(state, f, None)
        out[f] = None if value is None else np.asarray(value)
    if out["position"].ndim != 0:
        raise ValueError(
            "render_frame draws one game; this state is batched (position has shape "
            f"{out['position'].shape}): pick one, e.g. jax.tree.map(lambda x: x[i], state)"
        )
    return out


def _joint_ids(last_action) -> tuple[int | None, int | None]:
    """`last_action` -> (attack id or None, defense id or None).

    Accepts `(attack, defense)`, `{"attacker": a, "defender": d}`, or a step `info` dict with
    `attack_action` / `defense_action`."""
    if last_action is None:
        return None, None
    if isinstance(last_action, dict):
        if "attack_action" in last_action or "defense_action" in last_action:
            a, d = last_action.get("attack_action"), last_action.get("defense_action")
        else:
            a, d = last_action.get(ATTACKER), last_action.get(DEFENDER)
    else:
        a, d = last_action
    as_int = lambda x: None if x is None else int(np.asarray(x))  # noqa: E731
    return as_int(a), as_int(d)


def _node_centers(config, width: int) -> tuple[np.ndarray, np.ndarray]:
    net = config.network
    offset = (width - CELL_W * net.cols) / 2
    x = offset + (net.node_col + 0.5) * CELL_W
    y = HEADER_H + net.node_row * CELL_H + 30
    return x, y


def _draw_values(draw, cx: float, y: float, prefix: str, values: Sequence[str], highlight: dict, font, bold):
    """Draw `prefix + ",".join(values)` centred at `cx` on a white box; values at the indices of
    `highlight` ({index: colour}) in bold colour."""
    parts = [(prefix, INK, font)]
    for i, v in enumerate(values):
        if i:
            parts.append((",", INK, font))
        colour = highlight.get(i)
        parts.append((v, colour or INK, bold if colour else font))
    total = sum(_text_width(draw, t, f) for t, _, f in parts)
    x = cx - total / 2
    draw.rectangle([x - 2, y - 1, x + total + 2, y + 13], fill=LABEL_BG)
    for text, colour, f in parts:
        draw.text((x, y), text, fill=colour, font=f)
        x += _text_width(draw, text, f)


def _draw_attacker(draw, x: float, y: float, caged: bool):
    """A hooded hacker figure centred at (x, y); bars and a frame when caged."""
    draw.ellipse([x - 9, y - 16, x + 9, y + 2], fill=(25, 25, 25))  # hood
    draw.ellipse([x - 5, y - 11, x + 5, y - 1], fill=(235, 200, 170))  # face
    draw.polygon([(x - 13, y + 18), (x - 8, y + 1), (x + 8, y + 1), (x + 13, y + 18)], fill=(25, 25, 25))
    draw.rectangle([x - 4, y - 8, x + 4, y - 6], fill=RED)  # eyes band
    if caged:
        draw.rectangle([x - 17, y - 20, x + 17, y + 21], outline=(60, 60, 60), width=3)
        for bx in range(-10, 11, 7):
            draw.line([x + bx, y - 20, x + bx, y + 21], fill=(60, 60, 60), width=2)


def _draw_arrowhead(draw, x0: float, y0: float, x1: float, y1: float, colour):
    """A small filled triangle on the link (x0, y0) -> (x1, y1), pointing to (x1, y1), nearer the
    source (the target's value labels hang below it)."""
    dx, dy = x1 - x0, y1 - y0
    length = float(np.hypot(dx, dy))
    if length < 1e-6:
        return
    ux, uy = dx / length, dy / length
    mx, my = x0 + 0.3 * dx + 6 * ux, y0 + 0.3 * dy + 6 * uy
    bx, by = mx - 12 * ux, my - 12 * uy
    draw.polygon([(mx, my), (bx - 6 * uy, by + 6 * ux), (bx + 6 * uy, by - 6 * ux)], fill=colour)


def _draw_magnifier(draw, x: float, y: float):
    draw.ellipse([x - 8, y - 8, x + 8, y + 8], outline=RED, width=3)
    draw.line([x + 6, y + 6, x + 14, y + 14], fill=RED, width=4)


def _draw_node(draw, kind: int, x: float, y: float, outline, font):
    width = 4 if outline is not None else 1
    line = outline if outline is not None else INK
    if kind == START:
        draw.ellipse([x - 20, y - 16, x + 20, y + 16], fill=START_FILL, outline=line, width=width)
        draw.text((x, y), "start", fill=INK, font=font, anchor="mm")
    elif kind == DATA:
        fill = DATA_FILL if outline != RED else (240, 120, 110)
        draw.rectangle([x - 22, y - 12, x + 22, y + 14], fill=fill, outline=line, width=width)
        draw.ellipse([x - 22, y - 20, x + 22, y - 4], fill=fill, outline=line, width=width)
        draw.arc([x - 22, y + 6, x + 22, y + 22], 0, 180, fill=line, width=width)
        draw.text((x, y + 3), "data", fill=INK, font=font, anchor="mm")
    elif kind == SERVER:
        draw.rectangle([x - 18, y - 20, x + 18, y + 20], fill=SERVER_FILL, outline=line, width=width)
        for dy in (-8, 4):
            draw.line([x - 12, y + dy, x + 12, y + dy], fill=(220, 230, 245), width=2)
        draw.ellipse([x + 8, y + 11, x + 12, y + 15], fill=(120, 230, 120))


def render_frame(
    env,
    state,
    params=None,
    *,
    view: str = "full",
    last_action: Any = None,
    hack_probability: float | None = None,
    returns: tuple[float, float] | None = None,
    title: str | None = None,
    attack_from: int | None = None,
    scenario: Any = None,
) -> np.ndarray:
    """One frame of one game as `uint8[H, W, 3]`, `H = 96 + 120·rows`, `W = max(600, 200·cols)`.

    A `ScenarioEnv` game (`idsjax.make_scenario`) is drawn from `params.scenario` (default: the
    environment's own params): each real node at its `position` (a unit is a cell; padded nodes are
    not drawn), the links its `reach` allows (an arrowhead where only one end may attack the other,
    towards the attacked end; lateral links plain), labelled with the node ids of `scenario` (the
    `Scenario` it was made from) when given. A generated family's game (`idsjax.make_generated`) is
    drawn from the network its state carries (`state.network`), each game's own.

    `state`: an unbatched `EnvState` (after the joint action `last_action`, if given: `(attack id,
    defense id)`, `{"attacker": a, "defender": d}` or a step's `info`). `hack_probability`: the
    running P(breached) to print; `returns`: (attacker, defender) returns so far; `attack_from`: the
    attacker's node before `last_action` (its link to the target is drawn red; default: the current
    node, right unless the attack moved the attacker). `params` is not needed to draw a registered
    id (kept for symmetry with the env API).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    board = _board(env, network_params(env, state, params), scenario)
    config = board.config
    a_types = board.num_types
    s = _host_state(state)
    height, width = board.height, board.width
    img = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(img)
    font, bold = _font(12), _font(12, bold=True)
    small = _font(11)
    xs, ys = board.xs, board.ys

    attack_id, defense_id = _joint_ids(last_action)
    show_attack = view != DEFENDER
    show_defense = view != ATTACKER
    position = int(s["position"])
    detected, hacked = bool(s["detected"]), bool(s["hacked"])
    timed_out = bool(s["timed_out"]) if s["timed_out"] is not None else False
    attacker_visible = view != DEFENDER or detected

    attacked = decode_attack_id(config, attack_id) if (attack_id is not None and show_attack) else None
    defended = decode_defense_id(config, defense_id) if (defense_id is not None and show_defense) else None

    # -- header ------------------------------------------------------------------------------------
    draw.text((10, 8), title or config.env_id, fill=INK, font=_font(15, bold=True))
    draw.text((width - 10, 74), f"view: {view}", fill=MUTED, font=small, anchor="ra")
    if hacked:
        status, colour = "HACKED", RED
    elif detected:
        status, colour = "DETECTED", GREEN
    elif timed_out:
        status, colour = "TIMED OUT", MUTED
    else:
        status, colour = "in progress", INK
    draw.text((10, 32), f"Time-step: {int(s['time'])}", fill=INK, font=font)
    draw.text((130, 32), "Status: ", fill=INK, font=font)
    draw.text((130 + _text_width(draw, "Status: ", font), 32), status, fill=colour, font=bold)
    if hack_probability is not None:
        draw.text((width - 10, 32), f"P(breached): {hack_probability:.2f}", fill=INK, font=font, anchor="ra")
    events = []
    if attack_id is not None and show_attack:
        if attacked is None:
            events.append((f"Attack: id {attack_id} (illegal)", RED))
        else:
            node, kind, recon = attacked
            what = "recon" if recon else f"type {kind}"
            moved = not recon and position == node
            events.append((f"Attack: node {node} {what}{' -> moved' if moved else ''}", RED))
    if defense_id is not None and show_defense:
        if defended is None:
            events.append((f"Defense: id {defense_id} (none)", GREEN))
        else:
            node, kind, det = defended
            events.append((f"Defense: node {node} {'detection' if det else f'type {kind}'}", GREEN))
    x = 10
    for text, col in events:
        draw.text((x, 54), text, fill=col, font=font)
        x += _text_width(draw, text, font) + 24
    if returns is not None:
        ra, rd = returns
        ret_text = f"Attack reward: {ra:.1f}   Defense reward: {rd:.1f}"
        draw.text((10, 74), ret_text, fill=MUTED, font=small)
    draw.line([0, HEADER_H - 4, width, HEADER_H - 4], fill=(200, 200, 200), width=1)

    # -- links -------------------------------------------------------------------------------------
    target = attacked[0] if attacked is not None else None
    for i, j, arrow in board.links:
        source = position if attack_from is None else int(attack_from)
        hot = target is not None and attacker_visible and {i, j} == {target, source}
        draw.line([xs[i], ys[i], xs[j], ys[j]], fill=RED if hot else LINK, width=4 if hot else 2)
        if arrow:
            _draw_arrowhead(draw, xs[i], ys[i], xs[j], ys[j], RED if hot else LINK)

    # -- nodes and labels --------------------------------------------------------------------------
    attack, defense, detection = s["attack"], s["defense"], s["detection"]
    recon = s["recon"]
    for n in board.nodes:
        kind = int(board.kinds[n])
        outline = None
        if target == n:
            outline = RED
        if kind == DATA and hacked:
            outline = RED
        _draw_node(draw, kind, xs[n], ys[n], outline, small)
        label_box = draw.textbbox((xs[n] - 26, ys[n] - 20), board.labels[n], font=small, anchor="ra")
        draw.rectangle(label_box, fill=BACKGROUND)
        draw.text((xs[n] - 26, ys[n] - 20), board.labels[n], fill=MUTED, font=small, anchor="ra")
        if attacked is not None and attacked[0] == n and attacked[2]:
            _draw_magnifier(draw, xs[n] - 40, ys[n] + 6)
        if kind not in (SERVER, DATA):
            continue
        if view == DEFENDER:
            a_vals = ["x"] * a_types
        else:
            a_vals = [str(int(v)) for v in attack[n][:a_types]]
        if view == ATTACKER:
            if config.reconnaissance and recon is not None:
                d_vals = ["x" if int(v) == UNKNOWN_DEFENSE else str(int(v)) for v in recon[n][:a_types]]
            else:
                d_vals = ["x"] * a_types
            det_vals = ["x"]
        else:
            d_vals = [str(int(v)) for v in defense[n][:a_types]]
            det_vals = [str(int(detection[n]))]
        a_hot = {attacked[1]: RED} if (attacked is not None and attacked[0] == n and not attacked[2]) else {}
        d_hot, det_hot = {}, {}
        if defended is not None and defended[0] == n:
            if defended[2]:
                det_hot = {0: GREEN}
            else:
                d_hot = {defended[1]: GREEN}
        ly = ys[n] + 24
        _draw_values(draw, xs[n], ly, "A=", a_vals, a_hot, small, _font(11, bold=True))
        _draw_values(draw, xs[n], ly + 15, "D=", d_vals, d_hot, small, _font(11, bold=True))
        _draw_values(draw, xs[n], ly + 30, "Det=", det_vals, det_hot, small, _font(11, bold=True))

    # -- the attacker --------------------------------------------------------------------------------
    if attacker_visible:
        _draw_attacker(draw, xs[position] + 42, ys[position] - 2, caged=detected)

    return np.asarray(img, dtype=np.uint8)


def write_gif(frames: Sequence[np.ndarray], path, *, fps: float = 4.0, hold_last: int = 4) -> str:
    """Write frames as a looping GIF (imageio); the last frame is held `hold_last` extra frames.
    Frames of different sizes (games on different generated networks) are centred on the largest."""
    import imageio.v3 as iio

    frames = list(frames) + [frames[-1]] * hold_last
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    canvas = np.empty((len(frames), height, width, 3), np.uint8)
    canvas[...] = BACKGROUND
    for i, f in enumerate(frames):
        left = (width - f.shape[1]) // 2
        canvas[i, : f.shape[0], left : left + f.shape[1]] = f[..., :3]
    path = os.fspath(path)
    iio.imwrite(path, canvas, extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def save_frame(frame: np.ndarray, path) -> str:
    path = os.fspath(path)
    Image.fromarray(np.asarray(frame, np.uint8)).save(path)
    return path
