"""The text view of one side, for language-model agents: the terminal game's wording, nothing private.

Built only from what the side receives anyway (its observation, its legal ids, its own last action and
reward), so it can never reveal the other side's values.
"""

from __future__ import annotations

import numpy as np

from idsjax.policies import ATTACKER, describe_attack, describe_defense, node_name
from idsjax.scenario.names import ABSENT, ScenarioNames


def _row_label(config, side: str, row: int, rows: int) -> str:
    if rows == config.num_nodes:
        return node_name(config, row)
    return f"slot {row}"  # local views (v14, v15, v18): one row per slot, the node id in the row


def _columns(config, side: str) -> str:
    a = config.attack_types
    if side == ATTACKER:
        cols = f"attack values of types 0-{a - 1}, then 1 where you are"
        if config.spec.local_view if hasattr(config, "spec") else getattr(config, "local_view", False):
            cols = f"attack values of types 0-{a - 1}, then the node id shown (-1: no node)"
        if config.reconnaissance:
            cols += f", then the defense values you learnt ({10} = unknown), then 1 if revealed"
        return cols + " (0 where not visible)"
    return f"defense values of types 0-{a - 1}, then the detection value"


def _absent(config, row: int, rows: int) -> bool:
    """A node index the game's network leaves empty (a generated network's missing server)."""
    return isinstance(config, ScenarioNames) and rows == config.num_nodes and config.node_ids[row] == ABSENT


def text_view(config, view: dict, played=None) -> str:
    """A plain-text rendering of a view dict built by the coordinator. `config` names the game's
    network now; `played` (default `config`) the one the last step was played on, which differs when
    that step ended an episode of a generated family (the next episode has a network of its own)."""
    played = config if played is None else played
    side = view["role"]
    obs = np.asarray(view["observation"])
    lines = [
        f"You play the {side} in {config.env_id}, game {view['game_id']!r}: episode {view['episode']}, "
        f"step {view['step']} of this episode.",
    ]
    describe = describe_attack if side == ATTACKER else describe_defense
    if view["action"] is not None:
        lines.append(
            f"Last step: you played {view['action']} ({describe(played, view['action'])}); "
            f"your reward {view['reward']:g}."
        )
        if view["done"]:
            how = (
                "hacked: the attacker reached the data node"
                if view["hacked"]
                else ("detected: the attacker was caught" if view["detected"] else "the step limit was reached")
            )
            lines.append(
                f"That step ended episode {view['episode'] - 1} ({how}); your return was "
                f"{view['episode_return']:g}. A new episode has started."
            )
    lines.append(f"Your observation ({_columns(config, side)}):")
    for r in range(obs.shape[0]):
        if _absent(config, r, obs.shape[0]):
            continue  # an absent server: no values, nothing to act on
        lines.append(f"  {_row_label(config, side, r, obs.shape[0])}: {' '.join(str(int(v)) for v in obs[r])}")
    legal = view["legal_actions"]
    lines.append(f"Your legal actions ({len(legal)}; answer with one id):")
    lines.extend(f"  {i}: {describe(config, i)}" for i in legal)
    return "\n".join(lines)
