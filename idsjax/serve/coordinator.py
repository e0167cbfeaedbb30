"""The coordinator: games by id, agents by role and secret token, one batched tick for all ready games.

Transport-free (the HTTP and WebSocket layers in `idsjax.serve.app` call it), single-threaded on one
asyncio loop. A game steps when every role reserved for remote agents (`players`) has submitted an
action; the other roles are played by the server's opponent policies. Each agent sees only its own
view: its observation, its reward, its legal ids, the step's end flags and its episode counters.

The game served is a registered id, a scenario file (`scenario=`, in any `mode`) or a generated family
(`generator=`: every episode of every game is played on a network drawn at its reset; each game's
legal defenses, node names, text view and action wording follow its current network).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import secrets
import time
from dataclasses import dataclass, field

import jax
import numpy as np

import idsjax
from idsjax.network import EMPTY
from idsjax.policies import (
    ATTACKER,
    DEFENDER,
    SIDES,
    default_policy,
    describe_attack,
    describe_defense,
    policy_name,
    resolve_policy,
)
from idsjax.scenario import load_scenario
from idsjax.scenario.generator import Family, named_family
from idsjax.scenario.names import ScenarioNames, network_names, scenario_names
from idsjax.serve.engine import BatchEngine, game_key
from idsjax.serve.recorder import GameRecorder
from idsjax.serve.text import text_view

GAME_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SEED = 2**31 - 1
ON_IDLE = ("bot", "end")


class ServeError(Exception):
    """A refused request: an HTTP-like status and one sentence for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(eq=False)
class Agent:
    token: str
    game: Game
    role: str
    last_seen: float
    waiter: asyncio.Future | None = None
    client: str | None = None  # the address that joined it (None in-process: no share applies)
    text: bool = False  # whether the answer to its pending step carries the text view


@dataclass(eq=False)
class Game:
    id: str
    slot: int
    seed: int
    key: np.ndarray
    players: set
    created: float
    agents: dict = field(default_factory=dict)  # role -> Agent
    pending: dict = field(default_factory=dict)  # role -> action id of the current step
    episode: int = 0  # the current episode (0, 1, ...)
    t: int = 0  # joint steps over all episodes: the step-key counter
    episode_step: int = 0
    returns: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float64))
    episodes: int = 0  # finished episodes
    hacks: int = 0
    detections: int = 0
    obs: dict = field(default_factory=dict)
    attack_legal: list = field(default_factory=list)
    last: dict = field(default_factory=dict)  # role -> what the last step was for that role
    last_joint: tuple | None = None
    recorder: GameRecorder | None = None
    closed: bool = False
    requested: tuple = (None, None)  # (players, seed) as the creator asked
    owner: str | None = None  # the address that created it
    # A generated family's game: its current network's (node_mask, role), those of the network its
    # last step was played on (the previous episode's when that step ended one), its legal defenses.
    network: tuple | None = None
    played_network: tuple | None = None
    defense_legal: list | None = None


def _family_names(env) -> ScenarioNames:
    """A generated family's names before any game: ids by node index, roles unknown (each game's
    network says which nodes exist and what they are)."""
    n = env.shape.max_nodes
    return ScenarioNames(
        env_id=env.name,
        node_ids=tuple(f"n{i}" for i in range(n)),
        roles=(EMPTY,) * n,
        attack_types=env.shape.attack_types,
        reconnaissance=bool(env.shape.reconnaissance),
        max_nodes=n,
    )


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class Coordinator:
    """All games of one game: a registered id, a scenario or a generated family (see the module
    docstring). `scenario`: a file or `Scenario`; `generator`: a family name (`FAMILIES`, with
    `generator_args` `K=V` overrides) or a `Family`; `mode` goes with either ('' two-agent, the default)."""

    def __init__(
        self,
        env_id: str = "idsgame-v3",
        *,
        scenario=None,
        generator: str | Family | None = None,
        generator_args=(),
        mode: str | None = None,
        instance_seed: int = 0,
        max_games: int = 256,
        max_agents: int | None = None,
        opponents: dict | None = None,
        idle_timeout: float = 60.0,
        on_idle: str = "bot",
        record_dir: str | None = None,
        window: float = 0.002,
        initial_slots: int = 8,
        client_games: int | None = None,
        client_agents: int | None = None,
        compile_ahead: bool = False,
        clock=time.monotonic,
    ):
        if on_idle not in ON_IDLE:
            raise ValueError(f"on_idle must be one of {ON_IDLE}, got {on_idle!r}")
        self.scenario = None
        if scenario is not None and generator is not None:
            raise ValueError("serve a scenario or a generator family, not both")
        if mode is not None and scenario is None and generator is None:
            raise ValueError("--mode goes with --scenario or --generator (a registered id names its mode)")
        if generator_args and generator is None:
            raise ValueError("--generator-arg goes with --generator")
        suffix = f"-{mode}" if mode else ""
        if scenario is not None:  # a scenario file or object (docs/scenarios.md), two-agent unless `mode`
            self.scenario = load_scenario(scenario)
            self.env, self.params = idsjax.make_scenario(self.scenario, mode=mode or "", seed=instance_seed)
            env_id = f"scenario:{self.scenario.name}{suffix}"
            self.config = scenario_names(self.env, self.params, self.scenario)
        elif generator is not None:  # a network drawn at every reset: the instance seed plays no part
            from idsjax.scenario.generated import GeneratedEnv

            if isinstance(generator, str):
                family, label = named_family(generator, generator_args), f"generated-{generator}"
            elif isinstance(generator, Family):
                if generator_args:
                    raise ValueError("generator_args go with a family's name; set the fields of a Family directly")
                family, label = generator, "generated"
            else:
                raise ValueError(f"generator must be a family's name or a Family, got {type(generator).__name__}")
            made, _ = idsjax.make_generated(family, mode=mode or "")  # refuses a bad mode in one sentence
            self.env = GeneratedEnv(made.family, made.mode, name=label + suffix)
            self.params = self.env.default_params
            env_id = self.env.name
            self.config = _family_names(self.env)
        else:
            self.env, self.params = idsjax.make(env_id, seed=instance_seed)
            self.config = self.env.config
        self.env_id, self.instance_seed = env_id, instance_seed
        opponents = dict(opponents or {})
        self.opponent_specs = {side: opponents.get(side) or default_policy(self.env, side) for side in SIDES}
        policies = {
            side: resolve_policy(spec, side, self.env, self.params) for side, spec in self.opponent_specs.items()
        }
        self.engine = BatchEngine(
            self.env,
            self.params,
            policies[ATTACKER],
            policies[DEFENDER],
            max_games=max_games,
            initial=initial_slots,
            networks=bool(record_dir),  # a generated family's recording keeps every episode's network
        )
        self.per_game = self.engine.per_game
        self.max_games = max_games
        self.max_agents = 2 * max_games if max_agents is None else max_agents
        # Fair shares: one address holds at most this many games (created by it) and agents, so that
        # no single client can take every slot (default: a quarter of the games, two agents each).
        self.client_games = max(1, max_games // 4) if client_games is None else int(client_games)
        self.client_agents = 2 * self.client_games if client_agents is None else int(client_agents)
        if self.client_games < 1 or self.client_agents < 1:
            raise ValueError("the games and agents one address may hold must be positive")
        self._held_games: dict[str, int] = {}
        self._held_agents: dict[str, int] = {}
        self.idle_timeout, self.on_idle = float(idle_timeout), on_idle
        self.record_dir = record_dir
        if record_dir:
            os.makedirs(record_dir, exist_ok=True)
        self.window = window
        self.clock = clock
        self.games: dict[str, Game] = {}
        self.agents: dict[str, Agent] = {}
        self._ready: set[Game] = set()
        self._wake: asyncio.Event | None = None
        # One list for every game, except on a generated family (each game's own, from its network).
        self.defense_legal = (
            None if self.per_game else np.flatnonzero(np.asarray(self.env.defense_mask(None, self.params))).tolist()
        )
        self.num_ids = {ATTACKER: self.config.num_attack_ids, DEFENDER: self.config.num_defense_actions}
        self.ticks = 0
        self.steps = 0
        self.written: list[str] = []  # trajectory files written so far
        self.closing = False  # set by `close`: no new games
        self._compiling: dict[int, asyncio.Future] = {}  # capacity -> its compilation on the worker
        self._worker = None  # one thread that compiles batch sizes off the event loop
        # True (the server's default): `run` compiles every batch size on the worker at once, smallest
        # first, and a join that needs a size not compiled yet waits for it (`make_room`); the tick never
        # compiles. False (in-process use): each size compiles when the tick first needs it.
        self.compile_ahead = compile_ahead

    # -- agents and games ---------------------------------------------------------------------------
    def join(
        self,
        game_id: str | None,
        role: str,
        players=None,
        seed: int | None = None,
        text: bool = False,
        client: str | None = None,
    ) -> tuple[str, dict]:
        """Create game `game_id` (or a fresh id) or join it as `role`: (secret token, the role's view).
        `client` (the caller's address) is held to its share of games and agents."""
        if role not in SIDES:
            raise ServeError(422, f"role must be 'attacker' or 'defender', got {role!r}")
        if game_id is not None and (not isinstance(game_id, str) or not GAME_ID.match(game_id)):
            raise ServeError(422, "game_id must be 1-64 letters, digits, '_' or '-'")
        if self.closing:
            raise ServeError(503, "the server is shutting down; try again later")
        if len(self.agents) >= self.max_agents:
            raise ServeError(503, f"the server is full ({self.max_agents} agents); try again later")
        game = self.games.get(game_id) if game_id is not None else None
        if client is not None:
            if self._held_agents.get(client, 0) >= self.client_agents:
                raise ServeError(
                    429,
                    f"your address already holds {self.client_agents} agents, its share of this server; "
                    "leave a game or let one end first",
                )
            if game is None and self._held_games.get(client, 0) >= self.client_games:
                raise ServeError(
                    429,
                    f"your address already holds {self.client_games} games, its share of this server's "
                    f"{self.max_games}; leave a game or let one end first",
                )
        if game is None:
            game = self._create(game_id, role, players, seed)
            if client is not None:
                game.owner = client
                self._held_games[client] = self._held_games.get(client, 0) + 1
        else:
            # Joiners may repeat the creator's request (two agents started with the same command);
            # anything else would silently not apply.
            if (players is not None and set(players) != game.requested[0]) or (
                seed is not None and seed != game.requested[1]
            ):
                raise ServeError(409, f"game {game_id!r} exists with other players or seed; join it with a role only")
            if role in game.agents:
                raise ServeError(409, f"the {role} of game {game_id!r} is taken")
            if role not in game.players:
                # Only seats its creator reserved: no one takes over a bot in someone else's game.
                raise ServeError(409, f"the {role} of game {game_id!r} is played by the server's opponent")
        token = secrets.token_urlsafe(32)
        agent = Agent(token, game, role, self.clock(), client=client)
        game.agents[role] = agent
        self.agents[token] = agent
        if client is not None:
            self._held_agents[client] = self._held_agents.get(client, 0) + 1
        return token, self.view(game, role, text)

    def _create(self, game_id, role, players, seed) -> Game:
        if players is None:
            players = {role}
        else:
            players = set(players)
            if not players <= set(SIDES) or role not in players:
                raise ServeError(422, "players must list 'attacker' and/or 'defender', including your role")
        secret_seed = seed is None
        if seed is None:
            seed = secrets.randbelow(MAX_SEED + 1)  # unknown to every client: no one can predict the draws
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ServeError(422, f"seed must be an integer in 0..{MAX_SEED}")
        if game_id is None:
            game_id = secrets.token_hex(8)
        if len(self.games) >= self.max_games:
            raise ServeError(503, f"the server is full ({self.max_games} games); try again later")
        slot = self.engine.allocate()
        if slot is None:
            raise ServeError(503, f"the server is full ({self.max_games} games); try again later")
        nxt = self.engine.next_capacity()
        if self.compile_ahead and nxt is not None and self.engine.live * 2 >= self.engine.capacity:
            self.prepare_ahead(nxt)  # half full: the next size compiles before it is needed
        game = Game(
            game_id,
            slot,
            seed,
            game_key(seed),
            players,
            self.clock(),
            requested=(set(players), None if secret_seed else seed),
        )
        if self.record_dir:
            game.recorder = GameRecorder(
                self.record_dir,
                game_id,
                self.env,
                self.params,
                self.instance_seed,
                seed,
                written=self.written,
                scenario=self.scenario,
            )
        self.games[game_id] = game
        self._start_episode(game)
        return game

    def _start_episode(self, game: Game) -> None:
        out = self.engine.reset(game.slot, game.key, game.episode)
        self._set_views(game, out)
        if game.recorder is not None:
            game.recorder.start(out["fresh"], out["reset_key"], out.get("network"))

    def _set_views(self, game: Game, out: dict, index=()) -> None:
        game.obs = {ATTACKER: out["obs_attacker"][index], DEFENDER: out["obs_defender"][index]}
        game.attack_legal = np.flatnonzero(out["attack_mask"][index]).tolist()
        if self.per_game:
            game.defense_legal = np.flatnonzero(out["defense_mask"][index]).tolist()
            game.network = (out["node_mask"][index], out["role"][index])

    def agent(self, token) -> Agent:
        """The agent of `token` (refused with 401 otherwise); marks it active."""
        agent = self.agents.get(token) if isinstance(token, str) else None
        if agent is None:
            raise ServeError(401, "unknown or expired token")
        agent.last_seen = self.clock()
        return agent

    def submit(self, token, action, text: bool = False) -> asyncio.Future:
        """Queue the agent's action for its game's next step; the future resolves to its next view
        (with the text view when `text`)."""
        agent = self.agent(token)
        game, role = agent.game, agent.role
        if isinstance(action, bool) or not isinstance(action, int):
            raise ServeError(422, "action must be an integer id")
        n = self.num_ids[role]
        if not 0 <= action < n:
            raise ServeError(422, f"action {action} is out of range: the {role}'s ids are 0..{n - 1}")
        if role in game.pending:
            raise ServeError(409, "you already acted in this step; wait for its result")
        game.pending[role] = action
        agent.text = bool(text)
        agent.waiter = asyncio.get_running_loop().create_future()
        agent.waiter.add_done_callback(_retrieved)  # a client gone before its answer is no error to log
        self._check_ready(game)
        return agent.waiter

    def _check_ready(self, game: Game) -> None:
        if game.closed:
            return
        if all(role in game.pending for role in game.players) and all(r in game.agents for r in game.players):
            self._ready.add(game)
            if self._wake is not None:
                self._wake.set()

    def reset(self, token, text: bool = False) -> dict:
        """Start a new episode now (a no-op at an episode's first step); the other agents' actions of the
        abandoned step are dropped and they are answered with the new episode's view."""
        agent = self.agent(token)
        game = agent.game
        if game.episode_step > 0:
            game.episode += 1
            game.episode_step = 0
            game.returns[:] = 0
            game.last = {}
            game.last_joint = None
            game.played_network = None
            game.pending.clear()
            self._ready.discard(game)
            self._start_episode(game)
            for other in game.agents.values():
                if other.waiter is not None and not other.waiter.done():
                    view = self.view(game, other.role, other.text)
                    view["note"] = f"the {agent.role} reset the episode; your action was not played"
                    other.waiter.set_result(view)
                other.waiter = None
        return self.view(game, agent.role, text)

    def state(self, token, text: bool = False) -> dict:
        agent = self.agent(token)
        return self.view(agent.game, agent.role, text)

    def leave(self, token) -> None:
        """Remove the agent; a bot takes its role, and a game without agents closes."""
        agent = self.agent(token)
        self._remove(agent, "you left the game")

    @staticmethod
    def _release(held: dict, client: str | None) -> None:
        if client is None:
            return
        n = held.get(client, 0) - 1
        if n > 0:
            held[client] = n
        else:
            held.pop(client, None)

    def _remove(self, agent: Agent, reason: str) -> None:
        game = agent.game
        if self.agents.pop(agent.token, None) is not None:
            self._release(self._held_agents, agent.client)
        game.agents.pop(agent.role, None)
        game.players.discard(agent.role)
        game.pending.pop(agent.role, None)
        if agent.waiter is not None and not agent.waiter.done():
            agent.waiter.set_exception(ServeError(410, reason))
        if not game.agents:
            self.close_game(game, "every agent left")
        else:
            self._check_ready(game)

    def close_game(self, game: Game, reason: str, status: int = 410) -> None:
        """End `game`: its pending steps are answered with `status` and the sentence, its recording
        written, its slot freed."""
        if game.closed:
            return
        game.closed = True
        self._ready.discard(game)
        for agent in list(game.agents.values()):
            if self.agents.pop(agent.token, None) is not None:
                self._release(self._held_agents, agent.client)
            if agent.waiter is not None and not agent.waiter.done():
                agent.waiter.set_exception(ServeError(status, f"game {game.id!r} ended: {reason}"))
        game.agents.clear()
        self.games.pop(game.id, None)
        self._release(self._held_games, game.owner)
        self.engine.release(game.slot)
        if game.recorder is not None:
            game.recorder.flush(final=True)

    def reap(self, now: float | None = None) -> int:
        """Apply the idle rule to agents (and reserved roles nobody took) silent for `idle_timeout`;
        returns how many were reclaimed."""
        now = self.clock() if now is None else now
        reclaimed = 0
        for game in list(self.games.values()):
            for role in sorted(game.players):
                agent = game.agents.get(role)
                if agent is None:
                    idle = now - game.created > self.idle_timeout
                else:
                    idle = role not in game.pending and now - agent.last_seen > self.idle_timeout
                if not idle or game.closed:
                    continue
                reclaimed += 1
                if self.on_idle == "end":
                    self.close_game(game, f"the {role} was idle for {self.idle_timeout:g} s")
                elif agent is None:
                    game.players.discard(role)
                    self._check_ready(game)
                else:
                    self._remove(agent, f"you were idle for {self.idle_timeout:g} s; a bot took your role")
        return reclaimed

    def close(self) -> list[str]:
        """Shutdown: refuse new games, close every game (pending steps are answered 503), writing
        everything recorded; the files written. Safe to call again."""
        self.closing = True
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
        for game in list(self.games.values()):
            self.close_game(game, "the server is shutting down", status=503)
        return list(self.written)

    # -- stepping -----------------------------------------------------------------------------------
    def tick(self) -> int:
        """One batched step of every ready game; returns how many games stepped."""
        ready = [g for g in self._ready if not g.closed]
        self._ready.clear()
        ready = [g for g in ready if all(r in g.pending for r in g.players)]
        if not ready:
            return 0
        cap = self.engine.capacity
        keys = np.zeros((cap, 2), np.uint32)
        t = np.zeros(cap, np.int32)
        episode = np.zeros(cap, np.int32)
        attack = np.zeros(cap, np.int32)
        defense = np.zeros(cap, np.int32)
        bot_attack = np.ones(cap, bool)
        bot_defense = np.ones(cap, bool)
        active = np.zeros(cap, bool)
        for g in ready:
            s = g.slot
            keys[s], t[s], episode[s], active[s] = g.key, g.t, g.episode, True
            attack[s] = g.pending.get(ATTACKER, 0)
            defense[s] = g.pending.get(DEFENDER, 0)
            bot_attack[s] = ATTACKER not in g.players
            bot_defense[s] = DEFENDER not in g.players
        out = self.engine.tick(keys, t, episode, attack, defense, bot_attack, bot_defense, active)
        self.ticks += 1
        self.steps += len(ready)
        for g in ready:
            self._advance(g, out, g.slot)
        return len(ready)

    def _advance(self, game: Game, out: dict, s: int) -> None:
        a, d = int(out["attack_action"][s]), int(out["defense_action"][s])
        rewards = out["rewards"][s]
        done = bool(out["done"][s])
        game.returns += rewards
        if game.recorder is not None:
            who = {
                side: ("remote" if side in game.players else policy_name(self.opponent_specs[side])) for side in SIDES
            }
            game.recorder.step(
                {f: v[s] for f, v in out["stepped"].items()},
                a,
                d,
                rewards,
                bool(out["attack_legal"][s]),
                bool(out["moved"][s]),
                done,
                who,
                out["step_key"][s],
            )
        hacked, detected = bool(out["hacked"][s]) and done, bool(out["detected"][s]) and done
        for i, role in enumerate(SIDES):
            game.last[role] = {
                "action": a if role == ATTACKER else d,
                "reward": float(rewards[i]),
                "done": done,
                "terminated": bool(out["terminated"][s]),
                "truncated": bool(out["truncated"][s]),
                "hacked": hacked,
                "detected": detected,
                "return": float(game.returns[i]),
                "final_observation": out[f"final_obs_{role}"][s].tolist() if done else None,
            }
        game.last_joint = (a, d)
        game.played_network = game.network
        game.t += 1
        game.episode_step += 1
        if done:
            game.episodes += 1
            game.hacks += hacked
            game.detections += detected
            game.episode += 1
            game.episode_step = 0
            game.returns[:] = 0
            if game.recorder is not None:
                network = out.get("network")
                game.recorder.start(
                    {f: v[s] for f, v in out["fresh"].items()},
                    out["reset_key"][s],
                    None if network is None else jax.tree.map(lambda x: x[s], network),
                )
        self._set_views(game, out, s)
        game.pending.clear()
        now = self.clock()
        for agent in game.agents.values():
            if agent.waiter is not None and not agent.waiter.done():
                agent.waiter.set_result(self.view(game, agent.role, agent.text))
            agent.waiter = None
            agent.last_seen = now  # its idle time counts from the answer, not from its last message

    # -- views --------------------------------------------------------------------------------------
    def view(self, game: Game, role: str, text: bool = False) -> dict:
        """What `role` may know of `game` now (never the other side's observation or action)."""
        last = game.last.get(role)
        view = {
            "game_id": game.id,
            "role": role,
            "env_id": self.env_id,
            "episode": game.episode,
            "step": game.episode_step,
            "observation": game.obs[role].tolist(),
            "legal_actions": game.attack_legal if role == ATTACKER else self._defense_legal(game),
            "num_actions": self.num_ids[role],
            "reward": last["reward"] if last else 0.0,
            "done": last["done"] if last else False,
            "terminated": last["terminated"] if last else False,
            "truncated": last["truncated"] if last else False,
            "hacked": last["hacked"] if last else False,
            "detected": last["detected"] if last else False,
            "action": last["action"] if last else None,
            "final_observation": last["final_observation"] if last else None,
            "episode_return": last["return"] if last and last["done"] else float(game.returns[SIDES.index(role)]),
            "episodes": game.episodes,
            "hacks": game.hacks,
            "detections": game.detections,
            "players": sorted(game.players),
            "waiting_for": sorted(r for r in game.players if r not in game.pending),
        }
        if text:
            played = self.names(game, played=True) if game.played_network is not None else None
            view["text"] = text_view(self.names(game), view, played=played)
        return view

    def _defense_legal(self, game: Game) -> list:
        return self.defense_legal if game.defense_legal is None else game.defense_legal

    def names(self, game: Game | None = None, played: bool = False):
        """What names nodes and sizes ids in `game` now (`played`: in the network its last step was
        played on): the server's game's names, except on a generated family, whose every game has its
        own network (indexed by node: an absent server is `-`). Without `game`, the server's."""
        network = None if game is None else (game.played_network if played else game.network)
        if network is None:
            return self.config
        return network_names(self.env_id, self.env.shape, *network)

    def frame_png(self, token) -> bytes:
        """The board as `idsjax.render` draws it for the agent's side, as PNG bytes."""
        from PIL import Image

        from idsjax.frames import render_frame  # Pillow: only needed by the browser page

        agent = self.agent(token)
        game = agent.game
        state = jax.tree.map(lambda x: np.asarray(x)[game.slot], self.engine.states)
        if agent.role == ATTACKER:
            state = state.replace(attack=self._attack_seen(game.obs[ATTACKER], np.asarray(state.attack)))
        title = f"{self.env_id} · game {game.id} · you play the {agent.role}"
        frame = render_frame(
            self.env,
            state,
            self.params,
            view=agent.role,
            last_action=game.last_joint,
            title=title,
            **({"scenario": self.scenario} if self.scenario is not None else {}),
        )
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        return buf.getvalue()

    # -- compilation, off the event loop --------------------------------------------------------------
    def prepare_ahead(self, capacity: int) -> asyncio.Future | None:
        """Start compiling batch size `capacity` on the worker thread (once); its future, or None
        outside an event loop (in-process callers then compile when the size is first used)."""
        if self.engine.ready(capacity) or self.closing:
            return None
        future = self._compiling.get(capacity)
        if future is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return None
            if self._worker is None:
                from concurrent.futures import ThreadPoolExecutor

                self._worker = ThreadPoolExecutor(1, thread_name_prefix="idsjax-compile")
            future = self._compiling[capacity] = loop.run_in_executor(self._worker, self.engine.prepare, capacity)
            future.add_done_callback(_retrieved)
        return future

    async def make_room(self) -> None:
        """Wait, without blocking the loop, until a new game would get a slot whose batch size is
        compiled (a join calls it first: the join waits for a compilation, no live game does)."""
        while self.compile_ahead and not self.closing and self.engine.live >= self.engine.capacity:
            nxt = self.engine.next_capacity()
            future = None if nxt is None else self.prepare_ahead(nxt)
            if future is None:
                return
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                if future.cancelled():  # the stop cancelled the compilation
                    raise ServeError(503, "the server is shutting down; try again later") from None
                raise

    def _attack_seen(self, obs: np.ndarray, attack: np.ndarray) -> np.ndarray:
        """The attack values as the attacker's observation shows them (0 where it hides them): the
        renderer draws the state's, which would show the attacker what its own view masks."""
        a = self.config.attack_types
        seen = np.zeros_like(attack)
        if obs.shape[0] == attack.shape[0]:  # one row per node
            seen[:, :a] = obs[:, :a]
        else:  # local views (v14, v15, v18): one row per slot, the node id after the attack values
            for row in obs:
                if row[a] >= 0:
                    seen[int(row[a]), :a] = row[:a]
        return seen

    # -- the loop -----------------------------------------------------------------------------------
    async def run(self, reap_every: float = 1.0) -> None:
        """Tick whenever a game is ready (after a short gathering window) and reap idle agents."""
        self._wake = asyncio.Event()
        last_reap = self.clock()
        if self.compile_ahead:
            for capacity in self.engine.sizes():
                self.prepare_ahead(capacity)
        while True:
            compiling = self.compile_ahead and self.prepare_ahead(self.engine.capacity)  # never in this loop
            if compiling:
                try:
                    await asyncio.shield(compiling)
                except asyncio.CancelledError:
                    if not compiling.cancelled():  # this task is cancelled, not the compilation
                        raise
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=reap_every)
            except asyncio.TimeoutError:
                pass
            if self._ready and self.window > 0:
                await asyncio.sleep(self.window)  # let the other games of this round submit too
            self._wake.clear()
            self.tick()
            if self.clock() - last_reap >= reap_every:
                self.reap()
                last_reap = self.clock()

    def action_names(self, token=None) -> dict:
        """{side: [the terminal game's wording of every id]}: of the server's game, or with a token, of
        that agent's game now (on a generated family, its current network's nodes)."""
        if token is not None:
            game = self.agent(token).game
            if game.network is not None:
                return self._describe_ids(self.names(game))
        if not hasattr(self, "_action_names"):
            self._action_names = self._describe_ids(self.config)
        return self._action_names

    def _describe_ids(self, names) -> dict:
        return {
            ATTACKER: [describe_attack(names, i) for i in range(self.num_ids[ATTACKER])],
            DEFENDER: [describe_defense(names, i) for i in range(self.num_ids[DEFENDER])],
        }

    def stats(self) -> dict:
        return {
            "env_id": self.env_id,
            "games": len(self.games),
            "agents": len(self.agents),
            "capacity": self.engine.capacity,
            "compiled": self.engine.compiled(),  # batch sizes ready (the others compile on a worker)
            "max_games": self.max_games,
            "ticks": self.ticks,
            "steps": self.steps,
        }
