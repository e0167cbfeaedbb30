"""The gymnax environment over scenario arrays: any network of one `ScenarioShape` in one compiled program.

    env, params = idsjax.make_scenario("scenarios/examples/office_dmz.yaml", mode="random_attack")
    obs, state = env.reset(key, params)
    obs, state, reward, terminated, truncated, info = env.step(key, state, action, params)

    env, params = idsjax.make_scenario_batch([builtin_scenario(3), "office_dmz.yaml"], mode="")
    jax.vmap(env.step)(keys, states, actions, params)   # a different network in every game, one compile

The network lives in the params (`ScenarioParams.scenario`), not in the environment: the environment
holds only what fixes shapes and code paths (`ScenarioShape`, the mode), so environments of equal shape
and mode are interchangeable and share their compiled programs.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from idsjax import observations, threefry
from idsjax.actions import attack_mask
from idsjax.backend import materialise
from idsjax.batch_queries import batch_any
from idsjax.batched import DEFAULT_CHUNK
from idsjax.bots import BOTS
from idsjax.config import UNKNOWN_DEFENSE
from idsjax.env import ATTACKER, DEFENDER, for_learner, int8_box
from idsjax.rewards import defense_score
from idsjax.scenario import game
from idsjax.scenario.arrays import ScenarioArrays, ScenarioShape, defense_mask, shape_of, stack, to_arrays
from idsjax.scenario.game import ScenarioParams
from idsjax.scenario.names import ScenarioNames, scenario_names
from idsjax.scenario.schema import Scenario, ScenarioError, load_scenario
from idsjax.transition import transition
from idsjax.types import EnvState
from idsjax.versions import Mode


class ScenarioEnv(environment.Environment[EnvState, ScenarioParams]):
    """The game of `idsjax.IdsGameEnv` on the network in `params.scenario`.

    Same contract as `IdsGameEnv` (observations, actions, rewards, termination, truncation, `info`
    with `legal_action_mask` and `discount`, auto-reset, the modes and their bots), with every array
    padded to `shape.max_nodes` nodes and `shape.attack_types` types: observation rows are nodes
    (local views: `local_slots` rows), attack ids `node·width + type`, defense ids
    `node·(A+1) + type`. Padded nodes and types are never legal; an attack id on one is an illegal
    attack (-1), a defense id on one is no defense; ids out of range likewise, as in `IdsGameEnv`.
    For a built-in version's scenario at its own size, `reset` and `step` return exactly what the
    registered id returns for the same keys (tests/test_scenario_env.py).

    What a registered id fixes statically (reward family, full view, randomised resets, random
    starts) is read from the params here, so games of one batch may differ in all of it.
    """

    def __init__(self, shape: ScenarioShape, mode: Mode | str = Mode.TWO_AGENT, default_params=None):
        super().__init__()
        self.shape = ScenarioShape(*shape)
        self.mode = Mode(mode)
        self._default_params = default_params

    # The compiled programs depend on the shape and mode only: equal environments share them.
    def __hash__(self) -> int:
        return hash((type(self), self.shape, self.mode))

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and (other.shape, other.mode) == (self.shape, self.mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.shape}, mode={self.mode.value!r})"

    @property
    def name(self) -> str:
        mode = f"{self.mode.value}-" if self.mode.value else ""
        return f"idsgame-scenario-{mode}n{self.shape.max_nodes}"

    @property
    def learner(self) -> str:
        """ "attacker", "defender" or "both" (two-agent mode)."""
        return self.mode.learner

    @property
    def num_attack_actions(self) -> int:
        return self.shape.max_nodes * self.shape.attack_id_width

    @property
    def num_defense_actions(self) -> int:
        return self.shape.max_nodes * (self.shape.attack_types + 1)

    @property
    def num_actions(self) -> int:
        """Size of the learner's action space (two-agent mode: the attacker's)."""
        return self.num_defense_actions if self.learner == DEFENDER else self.num_attack_actions

    # -- parameters -----------------------------------------------------------------------------
    @property
    def default_params(self) -> ScenarioParams:
        """The params this environment was made with (`make_scenario`); there is no default network."""
        if self._default_params is None:
            raise ValueError(
                "a ScenarioEnv has no default network; pass the params that idsjax.make_scenario returned."
            )
        return self._default_params

    def make_params(self, arrays: ScenarioArrays, key: jax.Array) -> ScenarioParams:
        """The params of one game on `arrays`, with its construction-time layout drawn from `key` (Q20).
        `arrays` and `key` may carry a leading batch axis (one game each)."""
        if jnp.ndim(arrays.start_node) == 1:
            return jax.vmap(partial(_construction_params, self.shape))(arrays, key)
        return _construction_params(self.shape, arrays, key)

    # -- dynamics -------------------------------------------------------------------------------
    def reset(self, key: jax.Array, params: ScenarioParams | None = None):
        params = self.default_params if params is None else params
        return self._reset(key, params)

    @partial(jax.jit, static_argnames=("self",))
    def _reset(self, key, params):
        return self.reset_env(key, params)

    def reset_env(self, key: jax.Array, params: ScenarioParams):
        state = self.initial_state(key, params)
        return self.get_obs(state, params), state

    def game_params(self, state: EnvState, params: Any) -> ScenarioParams:
        """The params of the network `state` is played on: here `params` itself (`GeneratedEnv`: the
        network drawn at the last reset, kept in the state)."""
        del state
        return params

    def initial_state(self, key: jax.Array, params: ScenarioParams) -> EnvState:
        """A fresh game: the construction-time layout, or a fresh one where the scenario randomises;
        the start node, or one drawn by `start_weight`. The key is split as `IdsGameEnv.reset_draws`
        splits it (layout, start)."""
        arr = params.scenario
        n = self.shape.max_nodes

        def fresh_layout(k):
            return game.draw_layout(k, self.shape, arr, randomize=True)

        def kept_layout(k):
            del k
            initial = (params.initial_attack, params.initial_defense, params.initial_detection, params.initial_recon)
            return initial + (jnp.zeros((n,), bool),)

        def drawn(k):
            k_layout, k_start = threefry.split(k)
            return jax.lax.cond(arr.randomize, fresh_layout, kept_layout, k_layout), game.start_position(k_start, arr)

        def kept(k):
            return kept_layout(k), jnp.asarray(arr.start_node, jnp.int32)

        # Conditionals, not selects: where a batch shares its scenario (params not batched), a reset
        # that draws nothing costs no draw; with batched params `vmap` makes them selects.
        is_random = game.reset_is_random(arr)
        layout, position = jax.lax.cond(
            batch_any(is_random), lambda k: jax.lax.cond(is_random, drawn, kept, k), kept, key
        )
        attack, defense, detection, recon, revealed = layout
        false = jnp.bool_(False)
        return EnvState.create(
            time=jnp.int32(0),
            attack=attack,
            defense=defense,
            detection=detection,
            recon=recon,
            revealed=revealed,
            position=position,
            done=false,
            hacked=false,
            detected=false,
            failed=jnp.zeros_like(params.initial_attack),
            num_failed=jnp.int32(0),
            furthest_row=arr.layer[arr.start_node].astype(jnp.int32),
            num_hacked=jnp.int32(0),
            recon_targeted=jnp.zeros((n,), bool),
            timed_out=false,
        )

    def step(self, key: jax.Array, state: EnvState, action: Any, params: ScenarioParams | None = None):
        """gymnax's `step` with auto-reset: `(obs, state, reward, terminated, truncated, info)`."""
        params = self.default_params if params is None else params
        return self._step(key, state, action, params)

    @partial(jax.jit, static_argnames=("self",))
    def _step(self, key, state, action, params):
        return self.step_game(key, state, action, params)

    def step_game(self, key: jax.Array, state: EnvState, action: Any, params: ScenarioParams):
        """One game's step with auto-reset, keys split as `IdsGameEnv.step_game` splits them: the
        step key is split into (transition, reset) only where the scenario's reset draws."""
        key, action = materialise((key, action))
        is_random = self.reset_is_random(state, params)

        def split(k):
            return jax.lax.cond(is_random, lambda k: tuple(threefry.split(k)), lambda k: (k, k), k)

        key_step, key_reset = jax.lax.cond(batch_any(is_random), split, lambda k: (k, k), key)
        _, state_st, reward, terminated, info = self.step_env(key_step, state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = materialise(terminated | truncated)
        state = self.auto_reset(key_reset, state_st, done, params)
        obs_st = self.get_obs(state_st, params)
        obs = self.get_obs(state, params)
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
            "discount": 1.0 - jnp.asarray(terminated, jnp.float32),
            "legal_action_mask": self.legal_action_mask(state, params),
        }
        return obs, state, reward, terminated, truncated, info

    def auto_reset(self, key: jax.Array, state: EnvState, done: jax.Array, params: Any) -> EnvState:
        """`state`, or where `done` a fresh game `initial_state(key, params)`. Under `vmap` with params
        shared and a reset that draws, only the games that ended draw theirs (`_auto_reset_rule`)."""
        reset = jax.custom_batching.custom_vmap(self._auto_reset_game)
        reset.def_vmap(partial(_auto_reset_rule, self))
        return reset(key, state, done, params)

    def _auto_reset_game(self, key, state, done, params):
        fresh = self.initial_state(key, params)
        return jax.tree.map(lambda new, old: jax.lax.select(done, new, old), fresh, state)

    def reset_is_random(self, state: EnvState, params: Any) -> jax.Array:
        """Whether a reset draws anything: then the step key is split into (transition, reset)."""
        return game.reset_is_random(self.game_params(state, params).scenario)

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: ScenarioParams):
        params = self.game_params(state, params)
        if self.mode is Mode.TWO_AGENT:
            k_bots, k_detect = key, key
        else:
            k_bots, k_detect = threefry.split(key)
        attack_action, defense_action = self.joint_action(k_bots, state, action, params)
        attack_action = jnp.asarray(attack_action, jnp.int32)
        defense_action = jnp.asarray(defense_action, jnp.int32)
        next_state, rewards, info = transition(
            self.shape,
            params.scenario,
            state,
            attack_action,
            defense_action,
            materialise(threefry.uniform(k_detect)),
            params,
        )
        info = {
            **info,
            "attack_action": attack_action,
            "defense_action": defense_action,
            "attacker_reward": rewards[0],
            "defender_reward": rewards[1],
        }
        terminated = next_state.done & ~next_state.timed_out
        return self.get_obs(next_state, params), next_state, self._for_learner(rewards), terminated, info

    def joint_action(self, key: jax.Array, state: EnvState, action: Any, params: ScenarioParams):
        """(attack id, defense id): the caller's and, in single-agent modes, the bot's (pre-step state)."""
        mode = self.mode
        if mode is Mode.TWO_AGENT:
            return action[ATTACKER], action[DEFENDER]
        if mode.learner == ATTACKER:
            return action, BOTS[mode.defender_bot](key, state, self, params)
        return BOTS[mode.attacker_bot](key, state, self, params), action

    def is_truncated(self, state: EnvState, params: ScenarioParams) -> jax.Array:
        return state.timed_out

    def is_terminated(self, state: EnvState, params: ScenarioParams) -> jax.Array:
        return state.done

    def _for_learner(self, pair: Any):
        return for_learner(self.learner, pair)

    # -- observations and masks -----------------------------------------------------------------
    def get_obs(self, state: EnvState, params: ScenarioParams | None = None, key: jax.Array | None = None):
        params = self.game_params(state, self.default_params if params is None else params)
        views = (
            observations.attacker_observation(self.shape, params.scenario, state),
            observations.defender_observation(state),
        )
        return self._for_learner(views)

    def attack_mask(self, state: EnvState, params: ScenarioParams) -> jax.Array:
        """bool[num_attack_actions]: reachable real nodes, real types below the cap, reconnaissance."""
        arrays = self.network_arrays(self.game_params(state, params))
        return attack_mask(self.shape, arrays, state.position, state.attack)

    def defense_mask(self, state: EnvState, params: ScenarioParams) -> jax.Array:
        """bool[num_defense_actions]: servers and the data node, real types and detection."""
        return defense_mask(self.shape, self.game_params(state, params).scenario)

    def legal_action_mask(self, state: EnvState, params: ScenarioParams):
        """The learner's mask; the two-agent mode returns both players' masks."""
        return self._for_learner((self.attack_mask(state, params), self.defense_mask(state, params)))

    # -- what policies, views and checkpoints read of a game (`IdsGameEnv` answers the same) ------
    @property
    def version(self) -> None:
        """None: no reference version fixes this network, it is in the params (`IdsGameEnv`: its version)."""
        return None

    def num_ids(self, side: str) -> int:
        return self.num_attack_actions if side == ATTACKER else self.num_defense_actions

    def ids_per_node(self, side: str) -> int:
        return self.shape.attack_id_width if side == ATTACKER else self.shape.attack_types + 1

    def observation_shape(self, side: str) -> tuple[int, ...]:
        s = self.shape
        if side == DEFENDER:
            return (s.max_nodes, s.attack_types + 1)
        width = 2 * s.attack_types + 2 if s.reconnaissance else s.attack_types + 1
        return (s.local_slots if s.local_view else s.max_nodes, width)

    def side_observation(self, state: EnvState, side: str, params: ScenarioParams | None = None):
        """The view of `side` (spec §6), whichever side the learner plays (default: own params)."""
        params = self.game_params(state, self.default_params if params is None else params)
        if side == ATTACKER:
            return observations.attacker_observation(self.shape, params.scenario, state)
        return observations.defender_observation(state)

    def bot_action(self, name: str, key: jax.Array, state: EnvState, params: ScenarioParams) -> jax.Array:
        """The id the bot `name` of `idsjax.bots.BOTS` plays in `state`."""
        return BOTS[name](key, state, self, self.game_params(state, params))

    def network_arrays(self, params: ScenarioParams) -> ScenarioArrays:
        """The arrays the game is played over: the network in `params` (what `idsjax.bots` reads)."""
        return params.scenario

    def joint_transition(self, key: jax.Array, state: EnvState, attack_action, defense_action, params):
        """One transition with both players' ids given, the detection drawn from `key` as the
        two-agent step draws it: `(next_state, rewards float32[2], info)`, no auto-reset."""
        params = self.game_params(state, params)
        return transition(
            self.shape,
            params.scenario,
            state,
            jnp.asarray(attack_action, jnp.int32),
            jnp.asarray(defense_action, jnp.int32),
            threefry.uniform(key),
            params,
        )

    def names(self, params: ScenarioParams | None = None, scenario: Scenario | None = None) -> ScenarioNames:
        """What names nodes and sizes ids in descriptions: node ids from `scenario`, else `n<i>`."""
        return scenario_names(self, self.default_params if params is None else params, scenario)

    # -- spaces ---------------------------------------------------------------------------------
    def action_space(self, params: ScenarioParams | None = None):
        attack = spaces.Discrete(self.num_attack_actions)
        defense = spaces.Discrete(self.num_defense_actions)
        if self.learner == "both":
            return spaces.Dict({ATTACKER: attack, DEFENDER: defense})
        return self._for_learner((attack, defense))

    def observation_space(self, params: ScenarioParams | None = None):
        """int8 boxes as `IdsGameEnv`'s; bounds from `params` (over the whole batch if stacked)."""
        params = self.default_params if params is None else params
        arr = params.scenario
        shape = self.shape
        high = jnp.max(arr.max_value).astype(jnp.int32)
        low = 0
        if shape.reconnaissance:
            high = jnp.maximum(high, UNKNOWN_DEFENSE)
        if shape.local_view:
            low, high = -1, jnp.maximum(high, shape.max_nodes - 1)
        a = shape.attack_types
        width = 2 * a + 2 if shape.reconnaissance else a + 1
        rows = shape.local_slots if shape.local_view else shape.max_nodes
        attacker = int8_box(low, high, (rows, width))
        defense_high = jnp.maximum(jnp.max(arr.max_value), jnp.max(arr.detection_range[..., 1]))
        defender = int8_box(0, defense_high, (shape.max_nodes, a + 1))
        if self.learner == "both":
            return spaces.Dict({ATTACKER: attacker, DEFENDER: defender})
        return self._for_learner((attacker, defender))

    def state_space(self, params: ScenarioParams | None = None):
        raise NotImplementedError("the state is a pytree of fixed-shape arrays; see EnvState")


def _auto_reset_rule(env: ScenarioEnv, axis_size: int, in_batched, key, state, done, params):
    """`ScenarioEnv.auto_reset`'s batching rule: every output batched, every game what `vmap` gives it.

    With params batched, `vmap` of the per-game select. With params shared and a reset that draws
    (randomised layouts, random starts), the done games are ranked by a prefix sum and their fresh
    games drawn `idsjax.batched.DEFAULT_CHUNK` of the batch at a time, each row written in place, as
    `idsjax.batched.reset_done` does for the registered ids: no fresh layout for the games that go on.
    """
    if any(jax.tree.leaves(in_batched[3])) or axis_size == 0:
        in_axes = tuple(jax.tree.map(lambda b: 0 if b else None, b) for b in in_batched)
        out = jax.vmap(env._auto_reset_game, in_axes=in_axes)(key, state, done, params)
        return out, jax.tree.map(lambda _: True, out)

    def broadcast(tree, batched):
        return jax.tree.map(lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x)), tree, batched)

    key, state, done = (broadcast(t, b) for t, b in zip((key, state, done), in_batched[:3]))
    size = min(axis_size, max(1, int(DEFAULT_CHUNK * axis_size)))

    def by_rounds(key, state, done):
        rank = jnp.cumsum(done.astype(jnp.int32)) - 1  # rank among the done games
        num_done = rank[-1] + 1
        # order[j]: the game of rank j; past the last one `axis_size`, which the scatters drop.
        slot = jnp.where(done, rank, axis_size + size)
        order = jnp.full((axis_size + size,), axis_size, jnp.int32)
        order = order.at[slot].set(jnp.arange(axis_size, dtype=jnp.int32), mode="drop")

        def one_round(j, state):
            games = jax.lax.dynamic_slice(order, (j * size,), (size,))
            fresh = jax.vmap(env.initial_state, in_axes=(0, None))(key[jnp.minimum(games, axis_size - 1)], params)
            return jax.tree.map(lambda old, new: old.at[games].set(new, mode="drop"), state, fresh)

        return jax.lax.fori_loop(0, (num_done + size - 1) // size, one_round, state)

    def select_all(key, state, done):
        return jax.vmap(env._auto_reset_game, in_axes=(0, 0, 0, None))(key, state, done, params)

    out = jax.lax.cond(env.reset_is_random(None, params), by_rounds, select_all, key, state, done)
    return out, jax.tree.map(lambda _: True, out)


@partial(jax.jit, static_argnums=0)
def _construction_params(shape: ScenarioShape, arrays: ScenarioArrays, key: jax.Array) -> ScenarioParams:
    """The params of one game, with the construction-time layout drawn from `key` (spec §3.1, Q20)."""
    attack, defense, detection, recon, _ = game.draw_layout(key, shape, arrays, randomize=False)
    return ScenarioParams(
        max_steps_in_episode=jnp.asarray(arrays.max_steps, jnp.int32),
        scenario=arrays,
        initial_attack=attack,
        initial_defense=defense,
        initial_detection=detection,
        initial_recon=recon,
        reference_defense_score=defense_score(arrays, defense),
    )


# -- construction -----------------------------------------------------------------------------------
def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    return int(seed)


def _check_mode(scenario: Scenario, mode) -> Mode:
    try:
        mode = Mode(mode)
    except ValueError:
        modes = ", ".join(repr(m.value) for m in Mode)
        raise ValueError(f"unknown mode {mode!r}: expected one of {modes}.") from None
    bots = (
        ("attacker", mode.attacker_bot, scenario.opponents.attacker),
        ("defender", mode.defender_bot, scenario.opponents.defender),
    )
    for side, bot, allowed in bots:
        if bot is not None and bot not in allowed:
            raise ValueError(
                f"{scenario.source}: mode {mode.value!r} needs the scripted {side} {bot!r}, but the scenario's "
                f"`opponents.{side}` allows only {list(allowed)}."
            )
    return mode


def _load(spec) -> Scenario:
    return spec if isinstance(spec, Scenario) else load_scenario(spec)


def make_scenario(spec, mode: Mode | str = "", seed: int = 0, max_nodes: int | None = None):
    """`(env, params)` for one scenario, as `idsjax.make` gives them for a registered id.

    `spec`: a YAML path, a dict, a dataclass instance or a `Scenario`. `mode`: one of the registered
    modes ("", "random_defense", "minimal_defense", "random_attack", "maximal_attack"), refused when
    the scenario's `opponents` do not allow its bot. `seed` draws the construction-time layout (Q20).
    `max_nodes` pads the arrays (default: the scenario's node count), e.g. to share a compiled
    program with other scenarios. Bad input raises `ValueError` (`ScenarioError`) with one sentence.
    """
    scenario = _load(spec)
    mode = _check_mode(scenario, mode)
    seed = _check_seed(seed)
    shape = shape_of(scenario, max_nodes)
    arrays = to_arrays(scenario, shape)
    env = ScenarioEnv(shape, mode)
    params = env.make_params(arrays, jax.random.PRNGKey(seed))
    env._default_params = params
    return env, params


def batch_shape(scenarios: Sequence[Scenario], max_nodes: int | None = None) -> ScenarioShape:
    """The smallest shape that holds every scenario (with `max_nodes` nodes if given). All must agree
    on reconnaissance and the local view (they change observation widths and code paths)."""
    shapes = [shape_of(s) for s in scenarios]
    for s, sh in zip(scenarios[1:], shapes[1:]):
        if (sh.reconnaissance, sh.local_view, sh.local_slots) != shapes[0][2:5]:
            raise ScenarioError(
                f"{s.source}: field `observation`: expected the reconnaissance and view switches of "
                f"{scenarios[0].source} (one compiled program plays one observation layout), got others."
            )
    nodes = max(sh.max_nodes for sh in shapes)
    if max_nodes is not None:
        if max_nodes < nodes:
            biggest = scenarios[max(range(len(shapes)), key=lambda i: shapes[i].max_nodes)]
            raise ScenarioError(
                f"{biggest.source}: field `nodes`: expected at most {max_nodes} nodes (max_nodes), got {nodes}."
            )
        nodes = max_nodes
    return ScenarioShape(
        max_nodes=nodes,
        attack_types=max(sh.attack_types for sh in shapes),
        reconnaissance=shapes[0].reconnaissance,
        local_view=shapes[0].local_view,
        local_slots=shapes[0].local_slots,
        draw_slots=max(max(sh.num_draw_slots for sh in shapes), nodes),
    )


def make_scenario_batch(
    specs: Sequence, mode: Mode | str = "", seed: int | Sequence[int] = 0, max_nodes: int | None = None
):
    """`(env, stacked_params)`: several scenarios padded to one shape, params stacked along a leading
    axis for `jax.vmap(env.step)(keys, states, actions, params)`: one compiled program, a different
    network in every game. `seed`: one seed for all, or one per scenario. Every scenario must allow
    `mode`'s bot and share the reconnaissance and view switches."""
    if isinstance(specs, str | os.PathLike | Scenario | dict) or len(specs) == 0:
        raise ValueError("make_scenario_batch expects a non-empty sequence of scenarios.")
    scenarios = [_load(s) for s in specs]
    modes = {_check_mode(s, mode) for s in scenarios}
    seeds = [seed] * len(scenarios) if isinstance(seed, numbers.Integral) else list(seed)
    if len(seeds) != len(scenarios):
        raise ValueError(f"expected one seed per scenario ({len(scenarios)}), got {len(seeds)}.")
    keys = jnp.stack([jax.random.PRNGKey(_check_seed(s)) for s in seeds])
    shape = batch_shape(scenarios, max_nodes)
    arrays = stack([to_arrays(s, shape) for s in scenarios])
    env = ScenarioEnv(shape, modes.pop())
    params = env.make_params(arrays, keys)
    env._default_params = params
    return env, params
