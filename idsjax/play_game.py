"""The terminal game's model: one session's game state, separate from drawing and I/O so tests can
drive it (`idsjax.play` is the command line, `idsjax.play_view` the drawing)."""

from __future__ import annotations

import jax
import numpy as np

from idsjax.frames import network_params
from idsjax.policies import (
    ATTACKER,
    DEFENDER,
    is_recurrent,
    joint_step,
    legal_ids,
    resolve_policy,
    side_observation,
)


def game_names(env, state, params, scenario=None):
    """What names nodes and sizes ids in the game `state` is played on: a registered id's
    `GameConfig`, a scenario's `ScenarioNames` (node ids from `scenario` when given). A generated
    network's names are indexed by node (`idsjax.scenario.names.network_names`): an absent server is
    `-` with role EMPTY, so that node `i` is always `node_ids[i]`."""
    return env.names(network_params(env, state, params), scenario)


class Game:
    """The state of one terminal session (separate from I/O so it can be driven by tests)."""

    def __init__(self, env, params, side: str, opponent, seed: int = 0, config=None, scenario=None):
        """`config`: what names nodes and sizes ids (default: `game_names` of each game, node ids
        from `scenario`, the `Scenario` a scenario game was made from, when given)."""
        self.env, self.params, self.side = env, params, side
        self.scenario = scenario
        self._config = config
        other = DEFENDER if side == ATTACKER else ATTACKER
        self.opponent_side = other
        self.opponent = resolve_policy(opponent, other, env, params)
        # An opponent with memory (`RecurrentPolicy`) steps with its carry, which starts fresh in every game.
        self._opponent_memory = is_recurrent(self.opponent)
        if self._opponent_memory:
            opponent_fn = jax.jit(self.opponent.step)
        else:
            opponent_fn = self.opponent
            if not callable(opponent) or isinstance(opponent, str):
                opponent_fn = jax.jit(self.opponent)
        self._opponent_fn = opponent_fn
        self.opponent_carry = None
        self._step = jax.jit(lambda k, s, a, d: joint_step(env, k, s, a, d, params))
        self._reset = jax.jit(lambda k: env.initial_state(k, params))
        self.key = jax.random.PRNGKey(seed)
        self.games = self.hacks = 0
        self.new_game()

    def new_game(self):
        self.key, k = jax.random.split(self.key)
        self.state = self._reset(k)
        if self._opponent_memory:
            self.opponent_carry = self.opponent.init_carry()
        # A generated family draws a new network at every reset: its names change with it.
        self.config = self._config or game_names(self.env, self.state, self.params, self.scenario)
        self.returns = np.zeros(2)
        self.last = None

    @property
    def network(self):
        """The params of the network this game is played on (a generated family's: this game's)."""
        return network_params(self.env, self.state, self.params)

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
        obs = side_observation(self.env, self.state, self.opponent_side, self.params)
        if self._opponent_memory:
            other, self.opponent_carry = self._opponent_fn(k_opp, obs, self.state, self.opponent_carry)
            other = int(other)
        else:
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
