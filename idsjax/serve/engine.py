"""The batched JAX model behind the server: every live game of one environment is a slot of one state.

One jitted `tick` advances every slot whose actions are complete; the slot count doubles (up to the
server's `--max-games`) so the tick compiles at most `log2(max_games / initial) + 1` times. `prepare`
compiles one batch size ahead of time (the coordinator runs it on a worker thread, before the batch
needs that size, so no compilation ever runs inside the event loop while games wait).

Randomness is a pure function of the game's seed, so a game can be replayed in-process exactly:

- `k_steps, k_resets = jax.random.split(jax.random.PRNGKey(seed))`;
- episode `e` (0, 1, ...) starts from `env.initial_state(jax.random.fold_in(k_resets, e), params)`;
- the game's `t`-th joint step (counted over all its episodes, from 0) uses
  `k_attacker, k_defender, k_env = jax.random.split(jax.random.fold_in(k_steps, t), 3)`: the two bot
  keys (used only where a bot plays that side) and `idsjax.policies.joint_step(env, k_env, ...)`.
- an episode ends when the step is terminated (hacked, detected) or truncated (the step limit); the
  next episode starts at once from its reset key.

`step_keys` and `reset_key` below are those derivations; `tests/test_serve.py` replays with them.
The tick and the reset also return the keys they used (`reset_key`, `step_key`), which a recording keeps
so that `idsjax.trajectories.replay` plays it again bit for bit.

A server opponent with memory (`idsjax.policies.RecurrentPolicy`, e.g. `checkpoint:RUN_DIR` of a
`--network gru` run) keeps one memory per slot beside the slot's state: fresh at every episode's start
(the reset, and a tick whose step ends the episode), advanced at every step of the slot's game, also
the steps an agent plays that side, so that a bot taking over a left agent's role knows the game so
far. A memoryless policy's memory is empty and changes nothing.

A game whose state carries its network (a generated family draws one at every reset) also returns, per
slot, the fresh network's `node_mask` and `role` (what names its nodes) and its defense mask (legal
defenses differ between networks), and, when `networks=True` (a server that records), the whole
network of every fresh state, which the recording keeps.
"""

from __future__ import annotations

import threading
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.policies import ATTACKER, DEFENDER, RecurrentPolicy, is_recurrent, joint_step, side_observation
from idsjax.trajectories import STATE_FIELDS

# The state fields a recorded trajectory keeps: the library's trajectory format's own list.
RECORD_FIELDS = STATE_FIELDS


def game_key(seed: int) -> np.ndarray:
    """The raw key (uint32[2]) of a game's seed."""
    return np.asarray(jax.random.PRNGKey(seed), np.uint32)


def step_keys(key: jax.Array, t) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(attacker bot key, defender bot key, environment key) of a game's `t`-th joint step."""
    k_steps, _ = jax.random.split(key)
    k_att, k_def, k_env = jax.random.split(jax.random.fold_in(k_steps, t), 3)
    return k_att, k_def, k_env


def reset_key(key: jax.Array, episode) -> jax.Array:
    """The key that draws episode `episode` of a game (its first state)."""
    _, k_resets = jax.random.split(key)
    return jax.random.fold_in(k_resets, episode)


def _keep(state) -> dict:
    return {f: getattr(state, f) for f in RECORD_FIELDS}


def _views(env, params, state, per_game: bool, networks: bool) -> dict:
    out = {
        "obs_attacker": side_observation(env, state, ATTACKER),
        "obs_defender": side_observation(env, state, DEFENDER),
        "attack_mask": env.attack_mask(state, params),
    }
    if per_game:  # each game its own network: its names and its legal defenses
        out["defense_mask"] = env.defense_mask(state, params)
        out["node_mask"] = state.network.scenario.node_mask
        out["role"] = state.network.scenario.role
        if networks:
            out["network"] = state.network
    return out


def with_memory(policy) -> RecurrentPolicy:
    """`policy` as a one-game `RecurrentPolicy`: itself, or a memoryless one with an empty carry."""
    if is_recurrent(policy):
        return policy
    return RecurrentPolicy((), lambda key, obs, state, carry: (policy(key, obs, state), carry))


def _tick(
    env,
    params,
    per_game,
    networks,
    attack_policy,
    defense_policy,
    states,
    memories,
    keys,
    t,
    episode,
    attack,
    defense,
    bot_attack,
    bot_defense,
    active,
):
    """Advance the `active` slots by one joint step (bots where `bot_*`), resetting those that end."""

    def one(state, memory, key, t, episode, attack, defense, bot_attack, bot_defense):
        k_att, k_def, k_env = step_keys(key, t)
        bot_a, m_att = attack_policy.step(k_att, side_observation(env, state, ATTACKER), state, memory[0])
        bot_d, m_def = defense_policy.step(k_def, side_observation(env, state, DEFENDER), state, memory[1])
        a = jnp.where(bot_attack, bot_a, attack)
        d = jnp.where(bot_defense, bot_d, defense)
        a, d = jnp.asarray(a, jnp.int32), jnp.asarray(d, jnp.int32)
        stepped, rewards, info = joint_step(env, k_env, state, a, d, params)
        done = info["terminated"] | info["truncated"]
        k_reset = reset_key(key, episode + 1)
        fresh = env.initial_state(k_reset, params)
        nxt = jax.tree.map(lambda r, s: jnp.where(done, r, s), fresh, stepped)
        memory = (attack_policy.reset(m_att, done), defense_policy.reset(m_def, done))
        out = {
            "attack_action": a,
            "defense_action": d,
            "rewards": rewards,
            "done": done,
            "terminated": info["terminated"],
            "truncated": info["truncated"],
            "hacked": info["hacked"],
            "detected": info["detected"],
            "attack_legal": info["attack_legal"],
            "moved": info["moved"],
            "final_obs_attacker": side_observation(env, stepped, ATTACKER),
            "final_obs_defender": side_observation(env, stepped, DEFENDER),
            "stepped": _keep(stepped),
            "fresh": _keep(nxt),
            "step_key": k_env,
            "reset_key": k_reset,  # the next episode's, where `done`
            **_views(env, params, nxt, per_game, networks),
        }
        return (nxt, memory), out

    (nxt, new_memories), out = jax.vmap(one)(
        states, memories, keys, t, episode, attack, defense, bot_attack, bot_defense
    )

    def pick(n, s):
        return jnp.where(active.reshape(active.shape + (1,) * (n.ndim - 1)), n, s)

    states = jax.tree.map(pick, nxt, states)
    memories = jax.tree.map(pick, new_memories, memories)
    return states, memories, out


def _reset_slot(env, params, per_game, networks, fresh_memory, states, memories, slot, key, episode):
    k_reset = reset_key(key, episode)
    state = env.initial_state(k_reset, params)
    states = jax.tree.map(lambda s, n: s.at[slot].set(n), states, state)
    memories = jax.tree.map(lambda m, f: m.at[slot].set(f), memories, fresh_memory)
    views = {**_views(env, params, state, per_game, networks), "fresh": _keep(state), "reset_key": k_reset}
    return states, memories, views


class BatchEngine:
    """Slots of one batched `EnvState`; `tick` steps a set of them, `reset` (re)starts one.
    `networks`: return every fresh state's network too (a recording server's, on a generated family)."""

    def __init__(
        self,
        env,
        params,
        attack_policy,
        defense_policy,
        *,
        max_games: int,
        initial: int = 8,
        networks: bool = False,
    ):
        if max_games < 1:
            raise ValueError("max_games must be positive")
        self.env, self.params = env, params
        self.max_games = int(max_games)
        self.capacity = self.first = min(int(initial), self.max_games)
        blank = env.initial_state(jax.random.PRNGKey(0), params)
        self.per_game = hasattr(blank, "network")  # a generated family: each game its own network
        networks = bool(networks) and self.per_game
        attack_policy, defense_policy = with_memory(attack_policy), with_memory(defense_policy)
        self._fresh_memory = (attack_policy.init_carry(), defense_policy.init_carry())
        self._tick = jax.jit(partial(_tick, env, params, self.per_game, networks, attack_policy, defense_policy))
        self._reset = jax.jit(partial(_reset_slot, env, params, self.per_game, networks, self._fresh_memory))
        self.states = jax.tree.map(lambda x: jnp.repeat(x[None], self.capacity, axis=0), blank)
        # Each slot's opponents' memories (empty for memoryless ones), set fresh by every reset.
        self.memories = jax.tree.map(
            lambda x: jnp.repeat(jnp.asarray(x)[None], self.capacity, axis=0), self._fresh_memory
        )
        self._free = list(range(self.capacity - 1, -1, -1))
        self._compiled: dict[int, tuple] = {}  # capacity -> (tick, reset), compiled ahead of time
        self._lock = threading.Lock()

    def sizes(self) -> list[int]:
        """Every capacity the batch can take, from the first to `max_games`."""
        out = [self.first]
        while out[-1] < self.max_games:
            out.append(min(2 * out[-1], self.max_games))
        return out

    def next_capacity(self) -> int | None:
        """The capacity the batch grows to next (None at `max_games`)."""
        return None if self.capacity >= self.max_games else min(2 * self.capacity, self.max_games)

    def compiled(self) -> list[int]:
        return sorted(self._compiled)

    def ready(self, capacity: int) -> bool:
        return capacity in self._compiled

    def prepare(self, capacity: int) -> None:
        """Compile the tick and the reset for `capacity` slots (thread-safe; a no-op when done)."""
        with self._lock:
            if capacity in self._compiled:
                return
            shaped = jax.tree.map(lambda x: jax.ShapeDtypeStruct((capacity, *x.shape[1:]), x.dtype), self.states)
            memories = jax.tree.map(lambda x: jax.ShapeDtypeStruct((capacity, *x.shape[1:]), x.dtype), self.memories)

            def vec(dtype, *shape):
                return jax.ShapeDtypeStruct((capacity, *shape), dtype)

            i32, b = np.int32, np.bool_
            tick = self._tick.lower(
                shaped, memories, vec(np.uint32, 2), vec(i32), vec(i32), vec(i32), vec(i32), vec(b), vec(b), vec(b)
            ).compile()
            scalar = jax.ShapeDtypeStruct((), i32)
            reset = self._reset.lower(shaped, memories, scalar, jax.ShapeDtypeStruct((2,), np.uint32), scalar).compile()
            self._compiled[capacity] = (tick, reset)

    @property
    def live(self) -> int:
        return self.capacity - len(self._free)

    def allocate(self) -> int | None:
        """A free slot (growing the batch by doubling when full), or None at `max_games`."""
        if not self._free:
            if self.capacity >= self.max_games:
                return None
            new = min(2 * self.capacity, self.max_games)
            extra = new - self.capacity

            def grow(x):  # on the host: no program to compile for the new shape
                x = np.asarray(x)
                return jnp.asarray(np.concatenate([x, np.repeat(x[:1], extra, axis=0)]))

            self.states = jax.tree.map(grow, self.states)
            self.memories = jax.tree.map(grow, self.memories)  # the new slots' memories are set by their reset
            self._free = list(range(new - 1, self.capacity - 1, -1))
            self.capacity = new
        return self._free.pop()

    def release(self, slot: int) -> None:
        self._free.append(slot)

    def reset(self, slot: int, key: np.ndarray, episode: int) -> dict:
        """Start episode `episode` of the game with raw key `key` in `slot`; its first views (host arrays)."""
        reset = self._compiled[self.capacity][1] if self.capacity in self._compiled else self._reset
        self.states, self.memories, out = reset(
            self.states, self.memories, np.int32(slot), np.asarray(key, np.uint32), np.int32(episode)
        )
        return jax.device_get(out)

    def tick(self, keys, t, episode, attack, defense, bot_attack, bot_defense, active) -> dict:
        """Step the `active` slots (arrays of length `capacity`); per-slot results as host arrays."""
        tick = self._compiled[self.capacity][0] if self.capacity in self._compiled else self._tick
        self.states, self.memories, out = tick(
            self.states, self.memories, keys, t, episode, attack, defense, bot_attack, bot_defense, active
        )
        return jax.device_get(out)

    def warm_up(self) -> None:
        """Compile every capacity up to `max_games` now (so no request ever waits for it)."""
        for capacity in self.sizes():
            self.prepare(capacity)
