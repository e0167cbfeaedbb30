"""The gymnax environment: one class for all 110 ids, parameterised by a static `GameConfig`."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
from gymnax.environments import environment, spaces

from idsjax import actions, batched, layout, observations, threefry
from idsjax.arrays import ScenarioArrays, ScenarioShape
from idsjax.bots import BOTS
from idsjax.config import UNKNOWN_DEFENSE, GameConfig
from idsjax.rewards import defense_score
from idsjax.transition import transition
from idsjax.types import VALUE_DTYPE, EnvParams, EnvState, join_defense_detection
from idsjax.versions import Mode

ATTACKER, DEFENDER = "attacker", "defender"


class IdsGameEnv(environment.Environment[EnvState, EnvParams]):
    """The network-intrusion game of gym-idsgame (Hammar & Stadler, CNSM 2020).

    - Observation: the learner's view (spec §6), int8. Attacker: per node its attack values where
      visible and a position flag (+ reconnaissance state and revealed flag in v18-v21; a 2-slot local
      view in v14, v15, v18). Defender: per node its defense values and detection value. Two-agent ids
      return `{"attacker": ..., "defender": ...}`.
    - Action: a global id. Attack `node·A + type` (`node·(A+1) + k` with reconnaissance, `k = A` to
      scout); defense `node·(A+1) + type`, `type = A` raising detection. Two-agent ids take
      `{"attacker": a, "defender": d}`. Ids out of range are an illegal attack / no defense.
    - Reward: the learner's (spec §7); two-agent ids return both. `info` carries both either way.
    - Termination: hacked (the attacker reached the data node) or detected. Truncation: the step-limit
      transition, paying (-100, -100) (spec Q4): transition number `params.max_steps_in_episode` (102
      by default, the reference's 101 moves and its step-limit call), so no episode is longer.
    - `info` (from `step`): the outcome flags, the joint action, both rewards, `final_observation`,
      `discount` (1 - terminated, float32) and `legal_action_mask`, the learner's legal ids in the
      returned observation's state (the fresh game's after an auto-reset; two-agent ids: both masks).
    - State: `EnvState`; the opponent of single-agent ids is a scripted bot (`idsjax.bots`).
    """

    # `idsjax.batched.step` steps a batch of these games itself (reset by rounds), not by `vmap`.
    steps_batches_by_rounds = True

    def __init__(self, config: GameConfig):
        super().__init__()
        self.config = config

    # Environments with equal configs are interchangeable: jit caches one program per id.
    def __hash__(self) -> int:
        return hash(self.config)

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and other.config == self.config

    def __repr__(self) -> str:
        return f"IdsGameEnv({self.config.env_id!r})"

    @property
    def name(self) -> str:
        return self.config.env_id

    @property
    def shape(self) -> ScenarioShape:
        """The static shape of this id's network (`idsjax.arrays`)."""
        return self.config.shape

    def network_arrays(self, params: EnvParams | None = None) -> ScenarioArrays:
        """The arrays this id's game is played over: its version's network, fixed when the program is
        traced, with the numbers of `params` (`GameConfig.network_arrays`)."""
        return self.config.network_arrays(params)

    @property
    def learner(self) -> str:
        """ "attacker", "defender" or "both" (two-agent ids)."""
        return self.config.mode.learner

    @property
    def num_attack_actions(self) -> int:
        """The reference's count (v18: its 10 local ids; `step` decodes the 15 global ids)."""
        return self.config.num_attack_actions

    @property
    def num_defense_actions(self) -> int:
        return self.config.num_defense_actions

    @property
    def num_actions(self) -> int:
        """Size of the learner's action space (two-agent ids: the attacker's)."""
        if self.learner == DEFENDER:
            return self.config.num_defense_actions
        return self.config.num_attack_ids

    # -- parameters -----------------------------------------------------------------------------
    @property
    def default_params(self) -> EnvParams:
        return self.make_params(jax.random.PRNGKey(0))

    def make_params(self, key: jax.Array) -> EnvParams:
        """The numbers of one instance, with its construction-time layout drawn from `key` (Q20)."""
        spec = self.config.spec
        base = EnvParams(
            max_steps_in_episode=EnvParams.max_steps_in_episode,
            max_value=jnp.int32(spec.max_value),
            detection_factor=jnp.float32(1.0),
            visibility_p=jnp.float32(spec.visibility_p),
            vulnerabilities_per_node=jnp.int32(spec.vulnerabilities_per_node),
            vulnerable_servers_per_layer=jnp.int32(spec.vulnerable_servers_per_layer),
            defense_range=jnp.array([spec.min_defense, spec.defense_value], jnp.int32),
            attack_range=jnp.array([spec.min_attack, spec.attack_value], jnp.int32),
            detection_range=jnp.array([spec.min_detection, spec.detection_value], jnp.int32),
            vulnerability_range=jnp.array([spec.vulnerability_value, spec.max_vulnerability_value], jnp.int32),
        )
        # Jitted, and shared by the five modes of a version: run op by op, the draw would compile
        # dozens of one-off programs at every `make`.
        params = _construction_params(dataclasses.replace(self.config, mode=Mode.TWO_AGENT), key, base)
        return params.replace(max_steps_in_episode=base.max_steps_in_episode)

    def with_initial_state(self, params, attack, defense, detection, recon=None) -> EnvParams:
        """`params` with another construction-time state, e.g. one read from the reference."""
        defense = jnp.asarray(defense, VALUE_DTYPE)
        if recon is None:
            recon = jnp.full(defense.shape, UNKNOWN_DEFENSE, VALUE_DTYPE)
        return params.replace(
            initial_attack=jnp.asarray(attack, VALUE_DTYPE),
            initial_defense=defense,
            initial_detection=jnp.asarray(detection, VALUE_DTYPE),
            initial_recon=jnp.asarray(recon, VALUE_DTYPE),
            reference_defense_score=defense_score(self.network_arrays(params), defense),
        )

    # -- dynamics -------------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[Any, EnvState]:
        state = self.initial_state(key, params)
        return self.get_obs(state, params), state

    def initial_state(self, key: jax.Array, params: EnvParams) -> EnvState:
        """A fresh game (spec §3.3): the instance's layout, or a new random one in randomised versions."""
        return self.reset_template(params).replace(**self.reset_draws(key, params))

    def reset_template(self, params: EnvParams) -> EnvState:
        """A fresh game as far as it does not depend on the reset key: the instance's layout and start.
        The fields of `reset_draws` replace the corresponding ones in randomised versions."""
        n = self.config.num_nodes
        false = jnp.bool_(False)
        return EnvState.create(
            time=jnp.int32(0),
            attack=params.initial_attack,
            defense=params.initial_defense,
            detection=params.initial_detection,
            recon=params.initial_recon,
            revealed=jnp.zeros((n,), bool),
            position=jnp.int32(self.config.network.start_node),
            done=false,
            hacked=false,
            detected=false,
            failed=jnp.zeros_like(params.initial_attack),
            num_failed=jnp.int32(0),
            furthest_row=jnp.int32(self.config.network.rows - 1),
            num_hacked=jnp.int32(0),
            recon_targeted=jnp.zeros((n,), bool),
            timed_out=false,
        )

    def reset_draws(self, key: jax.Array, params: EnvParams) -> dict[str, jax.Array]:
        """The fields a reset draws from its key: a fresh layout in randomised versions, the start in
        those with random starts, nothing otherwise.

        `key` may also be a batch of keys (one leading axis): the fields then come for every game,
        games first, each exactly what its own key gives; the layout is drawn with the games along
        the last axis, where its element-wise work vectorises (`layout.draw_layout`).
        """
        spec = self.config.spec
        if not self.reset_is_random:
            return {}
        one_key = key.ndim == (0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1)
        split = threefry.split if one_key else jax.vmap(threefry.split, out_axes=1)
        k_layout, k_start = split(key)
        drawn = {}
        if spec.randomize_env:
            attack, defense, detection, recon, revealed = layout.draw_layout(
                k_layout, self.config, params, randomize=True
            )
            drawn.update(
                attack=attack,
                defense_detection=join_defense_detection(defense, detection),
                recon=recon,
                revealed=revealed,
            )
        if spec.random_start:
            start = partial(layout.start_position, config=self.config)
            drawn["position"] = start(k_start) if one_key else jax.vmap(start)(k_start)
        return drawn

    def joint_action(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        """(attack id, defense id): the caller's and, on single-agent ids, the bot's (pre-step state)."""
        mode = self.config.mode
        if mode is Mode.TWO_AGENT:
            return action[ATTACKER], action[DEFENDER]
        if mode.learner == ATTACKER:
            return action, BOTS[mode.defender_bot](key, state, self.config, params)
        return BOTS[mode.attacker_bot](key, state, self.config, params), action

    @partial(jax.jit, static_argnames=("self",))
    def step(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams | None = None):
        """gymnax's `step` with auto-reset: `step_game`, with a batching rule for `jax.vmap`.

        Under `jax.vmap` with `params` shared (`in_axes=(0, 0, 0, None)`, what every trainer writes)
        the batch is stepped by `idsjax.batched.step`: the same values bit for bit, but the auto-reset
        builds fresh games only for the games that ended, and each game's draws are computed once
        (benchmarks/NOTES.md §5, §8, §11). With `params` batched too, `vmap` runs `step_game` per game.
        Derivatives (`jax.jvp`, `jax.grad`) are `step_game`'s: `custom_vmap` alone has no reverse mode.
        """
        params = self.default_params if params is None else params
        step = jax.custom_batching.custom_vmap(self.step_game)
        step.def_vmap(partial(batched.vmap_rule, self))
        step = jax.custom_jvp(step)
        step.defjvp(partial(jax.jvp, self.step_game))
        return step(key, state, action, params)

    def step_game(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        """One game's gymnax step with auto-reset, built so the observation is computed once.

        Observations are a pure function of the state, so selecting the reset state first and then
        observing gives the same result as gymnax's observe-both-then-select, at half the cost;
        `info["final_observation"]` is only computed when the caller uses it. Keys are split only
        where a draw needs them (non-random resets and two-agent ids draw nothing else).
        """
        key, key_reset = self.split_reset_key(key)
        _, state_st, reward, terminated, info = self.step_env(key, state, action, params)
        truncated = self.is_truncated(state_st, params)
        done = terminated | truncated
        state_re = self.initial_state(key_reset, params)
        state = jax.tree.map(lambda reset, stepped: jax.lax.select(done, reset, stepped), state_re, state_st)
        obs_st = self.get_obs(state_st, params)
        if self.reset_is_random:
            obs = self.get_obs(state, params)  # one observation instead of two
        else:
            # The reset state is the same for every game of a batch: observing it costs nothing
            # per game, and selecting observations leaves the transition's outputs fusable.
            obs_re = self.get_obs(state_re, params)
            obs = jax.tree.map(lambda reset, stepped: jax.lax.select(done, reset, stepped), obs_re, obs_st)
        info = {**info, **self.step_info(state, terminated, truncated, obs_st, params)}
        return obs, state, reward, terminated, truncated, info

    def step_info(self, state: EnvState, terminated, truncated, final_observation, params: EnvParams) -> dict:
        """The fields `step` adds to the transition's info, given the returned (possibly fresh) state:
        what gymnax's contract and masked learners read. Unused ones cost nothing under jit (XLA
        drops dead outputs)."""
        return {
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": final_observation,
            "discount": 1.0 - jnp.asarray(terminated, jnp.float32),
            "legal_action_mask": self.legal_action_mask(state, params),
        }

    def split_reset_key(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(key for the transition, key for the auto-reset): split only when the reset draws."""
        if self.reset_is_random:
            return tuple(threefry.split(key))
        return key, key  # the reset of this id draws nothing, so the second key is never used

    @property
    def reset_is_random(self) -> bool:
        """Whether a reset draws anything (a fresh layout, a random start): v12 and v14-v21."""
        spec = self.config.spec
        return spec.randomize_env or spec.random_start

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        return self.apply_step(state, *self.draw_step(key, state, action, params), params)

    def draw_step(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        """What a step draws or is given: (attack id, defense id, detection uniform). On single-agent
        ids the bot's id is drawn from the pre-step state."""
        if self.config.mode is Mode.TWO_AGENT:
            k_bots, k_detect = key, key  # no bot draws: the detection draw is the only one
        else:
            k_bots, k_detect = threefry.split(key)
        attack_action, defense_action = self.joint_action(k_bots, state, action, params)
        return (
            jnp.asarray(attack_action, jnp.int32),
            jnp.asarray(defense_action, jnp.int32),
            threefry.uniform(k_detect),
        )

    def apply_step(self, state: EnvState, attack_action, defense_action, detection_u, params: EnvParams):
        """`step_env` once `draw_step` has drawn: the transition, the observation, the learner's reward."""
        next_state, rewards, info = transition(
            self.shape, self.network_arrays(params), state, attack_action, defense_action, detection_u, params
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

    def is_truncated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.timed_out

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        return state.done

    def _for_learner(self, pair: Any):
        return for_learner(self.learner, pair)

    # -- observations and masks -----------------------------------------------------------------
    def get_obs(self, state: EnvState, params: EnvParams | None = None, key: jax.Array | None = None):
        views = (
            observations.attacker_observation(self.shape, self.network_arrays(params), state),
            observations.defender_observation(state),
        )
        return self._for_learner(views)

    def attack_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """bool[num_attack_ids]: the attack ids the reference calls legal (`is_attack_legal`)."""
        return actions.attack_mask(self.shape, self.network_arrays(params), state.position, state.attack)

    def defense_mask(self, state: EnvState, params: EnvParams) -> jax.Array:
        """bool[num_defense_actions]: the defense ids the reference calls legal (`is_defense_legal`)."""
        del state
        return actions.defense_mask(self.shape, self.network_arrays(params))

    def legal_action_mask(self, state: EnvState, params: EnvParams):
        """The learner's mask; two-agent ids return both players' masks."""
        return self._for_learner((self.attack_mask(state, params), self.defense_mask(state, params)))

    # -- what policies, views and checkpoints read of a game (`ScenarioEnv` answers the same) -----
    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def version(self) -> int:
        """The reference version whose network this id plays (`ScenarioEnv`: None, the network is in
        the params)."""
        return self.config.version

    def num_ids(self, side: str) -> int:
        """How many global ids `side` has (v18's attacker: 15, where the reference counts 10)."""
        return self.config.num_attack_ids if side == ATTACKER else self.config.num_defense_actions

    def ids_per_node(self, side: str) -> int:
        return self.config.attack_id_width if side == ATTACKER else self.config.attack_types + 1

    def observation_shape(self, side: str) -> tuple[int, ...]:
        c = self.config
        return tuple(c.attacker_observation_shape if side == ATTACKER else c.defender_observation_shape)

    def side_observation(self, state: EnvState, side: str, params: EnvParams | None = None):
        """The view of `side` (spec §6), whichever side the learner plays."""
        if side == ATTACKER:
            return observations.attacker_observation(self.shape, self.network_arrays(params), state)
        return observations.defender_observation(state)

    def bot_action(self, name: str, key: jax.Array, state: EnvState, params: EnvParams) -> jax.Array:
        """The id the bot `name` of `idsjax.bots.BOTS` plays in `state`."""
        return BOTS[name](key, state, self.config, params)

    def joint_transition(self, key: jax.Array, state: EnvState, attack_action, defense_action, params: EnvParams):
        """One transition with both players' ids given, the detection drawn from `key`: `(next_state,
        rewards float32[2], info)`, no auto-reset."""
        return transition(
            self.shape,
            self.network_arrays(params),
            state,
            attack_action,
            defense_action,
            jax.random.uniform(key),
            params,
        )

    def names(self, params: EnvParams | None = None, scenario: Any = None) -> GameConfig:
        """What names nodes and sizes ids in descriptions (`idsjax.policies.describe_attack`)."""
        return self.config

    # -- spaces ---------------------------------------------------------------------------------
    def action_space(self, params: EnvParams | None = None):
        attack = spaces.Discrete(self.config.num_attack_ids)
        defense = spaces.Discrete(self.config.num_defense_actions)
        return (
            self._for_learner((attack, defense))
            if self.learner != "both"
            else spaces.Dict({ATTACKER: attack, DEFENDER: defense})
        )

    def observation_space(self, params: EnvParams | None = None):
        """Boxes whose bounds are 0-d arrays of the observation dtype (int8): what gymnax's Gym
        wrappers convert, and what `FlattenObservationWrapper` can carry over to the flat shape."""
        params = self.default_params if params is None else params
        cfg = self.config
        high = jnp.asarray(params.max_value, jnp.int32)
        low = 0
        if cfg.reconnaissance:
            high = jnp.maximum(high, UNKNOWN_DEFENSE)
        if cfg.spec.local_view:
            low, high = -1, jnp.maximum(high, cfg.num_nodes - 1)
        attacker = int8_box(low, high, cfg.attacker_observation_shape)
        defense_high = jnp.maximum(params.max_value, params.detection_range[1])
        defender = int8_box(0, defense_high, cfg.defender_observation_shape)
        if self.learner == "both":
            return spaces.Dict({ATTACKER: attacker, DEFENDER: defender})
        return self._for_learner((attacker, defender))

    def state_space(self, params: EnvParams | None = None):
        raise NotImplementedError("the state is a pytree of fixed-shape arrays; see EnvState")


def for_learner(learner: str, pair: Any):
    """What the learner of a mode sees of an (attacker's, defender's) pair: its own half, or both as a
    dict on two-agent ids (rewards, observations, masks, spaces)."""
    if learner == ATTACKER:
        return pair[0]
    if learner == DEFENDER:
        return pair[1]
    return {ATTACKER: pair[0], DEFENDER: pair[1]}


def int8_box(low, high, shape) -> spaces.Box:
    """A Box of int8 observations with 0-d bounds (what gymnax's Gym wrappers expect)."""
    dtype = jnp.dtype(VALUE_DTYPE)
    return spaces.Box(jnp.asarray(low, dtype), jnp.asarray(high, dtype), shape, dtype)


@partial(jax.jit, static_argnums=0)
def _construction_params(config: GameConfig, key: jax.Array, base: EnvParams) -> EnvParams:
    """`base` with the construction-time layout drawn from `key` (spec §3.1, Q20)."""
    attack, defense, detection, recon, _ = layout.draw_layout(key, config, base, randomize=False)
    return IdsGameEnv(config).with_initial_state(base, attack, defense, detection, recon)
