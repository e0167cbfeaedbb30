"""Per-game trajectory recording in `idsjax.trajectories`' format (one row per episode).

A recording names its game as `Trajectories.of_game` does (a registered id, a scenario with its YAML, a
generated family with the network each episode was played on) and keeps the keys each episode was
reset and stepped with, so `idsjax.trajectories.load_trajectories` + `replay` play it again bit for bit
without the server or its files.

Files are `DIR/<game id>.<instance>.<part>.npz`: `instance` names one game instance (its UTC start time
and a random part, e.g. `20261206T223000Z-1f2e3d4c`), so a game id played again, or by a server
restarted on the same directory, starts a new series instead of overwriting an earlier one; `part`
counts that instance's files (0, 1, ...). A file is never replaced: each is written under a temporary
name and linked to its final name, which fails if that name exists.
"""

from __future__ import annotations

import os
import secrets
import time

import jax
import numpy as np

from idsjax.serve.engine import RECORD_FIELDS
from idsjax.trajectories import Trajectories, save_trajectories

FLUSH_EVERY = 32  # episodes kept in memory per game before they are written


class GameRecorder:
    """Collects one game's episodes on the host and writes them as `DIR/<game>.<part>.npz`. `env`,
    `params`: the game served (`scenario`: the `Scenario` it was made from, which names its nodes)."""

    def __init__(
        self,
        directory: str,
        game_id: str,
        env,
        params,
        instance_seed: int,
        seed: int,
        written: list | None = None,
        scenario=None,
    ):
        self.directory, self.game_id = directory, game_id
        self.env, self.params, self.scenario = env, params, scenario
        self.instance_seed, self.seed = instance_seed, seed
        self.players = {"attacker": set(), "defender": set()}
        self.episodes: list[dict] = []
        self.current: dict | None = None
        self.instance = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(4)
        self.part = 0
        self.written = [] if written is None else written  # every path written (shared by a server's games)

    def start(self, first: dict, reset_key, network=None) -> None:
        """A new episode from its first state (record fields of one slot), the key that drew it and,
        on a generated family, the network it drew (host arrays of one slot)."""
        if self.current is not None and self.current["steps"]:
            self.episodes.append(self.current)  # abandoned by a reset: kept, with its steps so far
        self.current = {
            "states": [first],
            "steps": [],
            "end": (False, False, False),
            "reset_key": np.asarray(reset_key, np.uint32),
            "network": network,
        }

    def step(
        self,
        stepped: dict,
        attack: int,
        defense: int,
        rewards,
        attack_legal: bool,
        moved: bool,
        done: bool,
        players: dict,
        step_key,
    ) -> None:
        """One joint step of the current episode: the state it led to, what was played, and the
        environment key it was stepped with."""
        for side, who in players.items():
            self.players[side].add(who)
        cur = self.current
        cur["states"].append(stepped)
        cur["steps"].append(
            (attack, defense, np.asarray(rewards, np.float32), attack_legal, moved, np.asarray(step_key, np.uint32))
        )
        if done:
            cur["end"] = (bool(stepped["hacked"]), bool(stepped["detected"]), bool(stepped["timed_out"]))
            self.episodes.append(cur)
            self.current = None
            if len(self.episodes) >= FLUSH_EVERY:
                self.flush()

    def flush(self, final: bool = False) -> str | None:
        """Write the finished episodes (and, when `final`, the unfinished one with its steps so far)."""
        episodes = list(self.episodes)
        if final and self.current is not None and self.current["steps"]:
            episodes.append(self.current)
            self.current = None
        self.episodes = []
        if not episodes:
            return None
        traj = self._trajectories(episodes)
        while True:
            path = os.path.join(self.directory, f"{self.game_id}.{self.instance}.{self.part}.npz")
            self.part += 1
            if _write_new(path, traj):
                break
            self.instance += "-" + secrets.token_hex(2)  # taken (a clash of random parts): a longer name
            self.part = 0
        self.written.append(path)
        return path

    @property
    def prefix(self) -> str:
        """`<game id>.<instance>`: the name every file of this game instance starts with."""
        return f"{self.game_id}.{self.instance}"

    def _trajectories(self, episodes: list[dict]) -> Trajectories:
        b = len(episodes)
        t = max(len(e["steps"]) for e in episodes)
        arrays: dict[str, np.ndarray] = {}
        for f in RECORD_FIELDS:
            rows = []
            for e in episodes:
                seq = [np.asarray(s[f]) for s in e["states"]]
                seq += [seq[-1]] * (t + 1 - len(seq))  # finished games repeat their last state
                rows.append(np.stack(seq))
            arrays[f] = np.stack(rows)
        attack = np.full((b, t), -1, np.int32)
        defense = np.full((b, t), -1, np.int32)
        rewards = np.zeros((b, t, 2), np.float32)
        valid = np.zeros((b, t), bool)
        legal = np.zeros((b, t), bool)
        moved = np.zeros((b, t), bool)
        reset_key = np.stack([e["reset_key"] for e in episodes])
        # Zero after an episode's last step, as `idsjax.trajectories.record` keeps them.
        step_key = np.zeros((b, t, reset_key.shape[-1]), np.uint32)
        for i, e in enumerate(episodes):
            for j, (a, d, r, al, mv, k) in enumerate(e["steps"]):
                attack[i, j], defense[i, j], rewards[i, j] = a, d, r
                valid[i, j], legal[i, j], moved[i, j], step_key[i, j] = True, al, mv, k
        arrays.update(
            attack_action=attack, defense_action=defense, rewards=rewards, valid=valid, attack_legal=legal, moved=moved
        )
        arrays["length"] = valid.sum(axis=1).astype(np.int32)
        arrays["hacked_final"] = np.array([e["end"][0] for e in episodes])
        arrays["detected_final"] = np.array([e["end"][1] for e in episodes])
        arrays["timed_out_final"] = np.array([e["end"][2] for e in episodes])
        arrays["returns"] = rewards.sum(axis=1)
        arrays["reset_key"], arrays["step_key"] = reset_key, step_key
        networks = None
        if episodes[0]["network"] is not None:  # a generated family: the network of every episode
            networks = jax.tree.map(lambda *xs: np.stack(xs), *(e["network"] for e in episodes))
        names = {side: "+".join(sorted(who)) or "none" for side, who in self.players.items()}
        return Trajectories.of_game(
            self.env,
            self.params,
            arrays=arrays,
            seed=self.seed,
            attacker=names["attacker"],
            defender=names["defender"],
            instance_seed=self.instance_seed,
            networks=networks,
            scenario=self.scenario,
        )


def _write_new(path: str, traj: Trajectories) -> bool:
    """Write `traj` to `path` unless `path` exists (False then); never replaces a file."""
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    save_trajectories(tmp, traj)
    try:
        try:
            os.link(tmp, path)  # atomic, and refuses an existing name
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: claim the name exclusively, then fill it
            try:
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return False
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True
