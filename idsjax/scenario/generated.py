"""An environment whose every reset draws a fresh network from a generator family.

    env, params = idsjax.make_generated(Family(max_layers=3, max_width=3), mode="random_defense")
    obs, state = env.reset(key, params)           # state.network: the network of this episode
    jax.vmap(env.step)(keys, states, actions, params)

Design: the network lives in the state. `reset` (and the auto-reset of `step`) splits its key into
(network, game): `generate(network key, family)` draws the arrays, the construction-time layout is
made from them as `make_scenario` makes it, and the game starts on them as `ScenarioEnv` starts it.
The state is a `GeneratedState`: an `EnvState` (every field as usual, padded to the family's
`max_nodes`) plus `network`, the `ScenarioParams` of the episode's network, which every step,
observation and mask reads. The params (`GeneratedParams`) hold the horizon and, optionally, a fixed
pool of networks to pick from instead of drawing (`GeneratedEnv.with_pool`: held-out evaluation sets);
either way only the games that end draw (the auto-reset's batching rule, `idsjax.scenario.env`).

Held-out networks, excluded by construction: `GeneratedEnv.excluding(hashes)` returns params whose
`exclude` holds a sorted set of canonical hashes (`idsjax.scenario.canonical`); every reset and
auto-reset then redraws (a `lax.while_loop`, at most `MAX_DRAWS` draws, the first from today's key) until
the network's hash is outside the set. A family too small to escape the set within `MAX_DRAWS` draws
plays its last draw and raises the state's sticky `exhausted` flag: `check_exclusion(state)` on the host
refuses such a run. With `exclude` None (the default) nothing changes: the same draws from the same
keys, bit for bit, and no `exhausted` field in the state. Keeping the network
rather than a key to redraw it costs memory (the arrays are O(max_nodes²)) but no recomputation
per step; a policy may read `state.network` (e.g. the graph for a message-passing network).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from idsjax import threefry
from idsjax.bots import uniform_index
from idsjax.env import ATTACKER, DEFENDER, int8_box
from idsjax.scenario.canonical import contains, exclusion_set, network_hash
from idsjax.scenario.env import ScenarioEnv, _construction_params
from idsjax.scenario.game import ScenarioParams
from idsjax.scenario.generator import Family, generate
from idsjax.scenario.schema import ScenarioError
from idsjax.types import EnvState, state_dataclass
from idsjax.versions import Mode


@state_dataclass
class GeneratedState(EnvState):
    """An `EnvState` and the params of the network it is played on (drawn at its reset). With an
    exclusion set (`GeneratedParams.exclude`), `exhausted` (bool) says whether some reset of this game
    slot found no network outside the set within `MAX_DRAWS` draws; it stays True through later resets,
    so one host check after training (`check_exclusion`) sees it. Without one it is None (no leaf)."""

    network: ScenarioParams = None
    exhausted: jax.Array = None


# The most networks one reset draws to find one outside the exclusion set. A family whose networks
# fall in the set with probability f exhausts a reset with probability f**64 (1e-6 at f = 0.8); one
# that exhausts is mostly inside the set, and the flag says so rather than train on it silently.
MAX_DRAWS = 64


@struct.dataclass
class GeneratedParams(environment.EnvParams):
    """The horizon, and where networks come from: `pool` None, a fresh network of the environment's
    family at every reset; else stacked `ScenarioParams` [K] (`GeneratedEnv.with_pool`), one of which
    each reset picks uniformly (e.g. a held-out evaluation set). `exclude`: None, or uint32[M, 2], the
    sorted canonical hashes (`canonical.exclusion_set`) no reset may play (`GeneratedEnv.excluding`)."""

    max_steps_in_episode: jax.Array = 102
    pool: Any = None
    exclude: Any = None


class GeneratedEnv(ScenarioEnv):
    """`ScenarioEnv` on a fresh network of `family` at every reset (see the module docstring)."""

    def __init__(self, family: Family, mode: Mode | str = Mode.TWO_AGENT, name: str | None = None):
        super().__init__(family.shape, mode)
        self.family = family
        self._name = name

    def __hash__(self) -> int:
        return hash((type(self), self.family, self.mode))

    def __eq__(self, other: Any) -> bool:
        return type(other) is type(self) and (other.family, other.mode) == (self.family, self.mode)

    def __repr__(self) -> str:
        return f"GeneratedEnv({self.family}, mode={self.mode.value!r})"

    @property
    def name(self) -> str:
        """The name given at construction (a run names its game), else the class's."""
        return self._name or super().name

    @property
    def default_params(self) -> GeneratedParams:
        # A Python int: `idsjax.rollout` reads the horizon of `default_params` while tracing.
        return GeneratedParams(max_steps_in_episode=int(self.family.max_steps))

    def with_pool(self, key: jax.Array, size: int, params: GeneratedParams | None = None) -> GeneratedParams:
        """`params` (default: the default ones) whose resets pick uniformly among `size` networks
        drawn from `key`, each as a reset would draw it, instead of drawing a fresh one."""
        params = self.default_params if params is None else params
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"a pool holds at least one network, got size {size!r}")
        pool = jax.jit(jax.vmap(self.draw_network, in_axes=(0, None)))(jax.random.split(key, size), params)
        return params.replace(pool=pool)

    def excluding(self, hashes, params: GeneratedParams | None = None) -> GeneratedParams:
        """`params` (default: the default ones) under which no reset plays a network whose canonical
        hash is among `hashes` (uint32[K, 2] arrays, e.g. the held-out sets' of `idsjax.scenario.splits`):
        each reset redraws, at most `MAX_DRAWS` times (see the module docstring)."""
        params = self.default_params if params is None else params
        exclude = exclusion_set(*(hashes if isinstance(hashes, list | tuple) else [hashes]))
        if exclude.shape[0] == 0:
            raise ValueError("an exclusion set holds at least one hash; pass exclude None for none")
        return params.replace(exclude=jnp.asarray(exclude))

    def network_hash(self, network: ScenarioParams) -> jax.Array:
        """uint32[2], the canonical hash of one network of this environment (`canonical.network_hash`)."""
        return network_hash(network, self.shape)

    def game_params(self, state: GeneratedState, params: Any) -> ScenarioParams:
        return state.network

    def reset_is_random(self, state: GeneratedState, params: Any) -> jax.Array:
        return jnp.bool_(True)  # every reset draws a network

    def draw_network(self, key: jax.Array, params: GeneratedParams) -> ScenarioParams:
        """The params of one drawn network, with `params`' horizon: a fresh network of the family, or
        one of `params.pool` picked uniformly; outside `params.exclude` where given (`draw_outside`)."""
        if params.exclude is not None:
            return self.draw_outside(key, params)[0]
        return self._draw_one(key, params)

    def draw_outside(self, key: jax.Array, params: GeneratedParams) -> tuple[ScenarioParams, jax.Array]:
        """`(network, exhausted)`: the first of up to `MAX_DRAWS` draws whose hash is not in
        `params.exclude`, the first from `key` itself (so a network outside the set is the one drawn
        without exclusion), then from `fold_in(key, i)`; `exhausted` True when all were excluded (the
        last is returned)."""
        exclude = jnp.asarray(params.exclude)
        if exclude.ndim != 2 or exclude.shape[-1] != 2 or exclude.dtype != jnp.uint32:
            raise ValueError(
                f"GeneratedParams.exclude: expected uint32[M, 2] (exclusion_set), got {exclude.dtype}{list(exclude.shape)}"
            )

        def excluded(network):
            return contains(exclude, network_hash(network, self.shape))

        def draw(carry):
            # The first draw uses `key` itself; one copy of the draw in the program (compiles once).
            i, _, _ = carry
            network = self._draw_one(jnp.where(i == 0, key, jax.random.fold_in(key, i)), params)
            return i + 1, network, excluded(network)

        template = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), jax.eval_shape(self._draw_one, key, params))
        _, network, hit = jax.lax.while_loop(
            lambda c: c[2] & (c[0] < MAX_DRAWS), draw, (jnp.int32(0), template, jnp.bool_(True))
        )
        return network, hit

    def _draw_one(self, key: jax.Array, params: GeneratedParams) -> ScenarioParams:
        if params.pool is not None:
            size = jax.tree.leaves(params.pool)[0].shape[0]
            picked = jax.tree.map(lambda x: x[uniform_index(key, size)], params.pool)
            return picked.replace(max_steps_in_episode=jnp.asarray(params.max_steps_in_episode, jnp.int32))
        arrays = generate(key, self.family)
        network = _construction_params(self.shape, arrays, key)
        return network.replace(max_steps_in_episode=jnp.asarray(params.max_steps_in_episode, jnp.int32))

    def initial_state(self, key: jax.Array, params: GeneratedParams) -> GeneratedState:
        k_network, k_game = threefry.split(key)
        exhausted = None
        if params.exclude is None:
            network = self._draw_one(k_network, params)
        else:
            network, exhausted = self.draw_outside(k_network, params)
        state = super().initial_state(k_game, network)
        fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(EnvState)}
        return GeneratedState(**fields, network=network, exhausted=exhausted)

    def auto_reset(self, key: jax.Array, state: GeneratedState, done: jax.Array, params: Any) -> GeneratedState:
        out = super().auto_reset(key, state, done, params)
        if state.exhausted is None or out.exhausted is None:
            return out
        # Sticky: a fresh game must not hide that an earlier reset of this slot ran out of draws.
        return out.replace(exhausted=out.exhausted | state.exhausted)

    @staticmethod
    def check_exclusion(state: GeneratedState) -> None:
        """Host: raise `RuntimeError` (one sentence) if any game of `state` (any batch shape) ever
        reset on an excluded network because its family found none outside the set in `MAX_DRAWS`
        draws; a state without an exclusion set passes."""
        if state.exhausted is None:
            return
        flags = jax.device_get(state.exhausted)
        if bool(jnp.any(flags)):
            raise RuntimeError(
                f"{int(jnp.sum(flags))} game(s) reset on a network inside the exclusion set: the family drew "
                f"no network outside it in {MAX_DRAWS} tries; shrink the held-out sets or widen the family."
            )

    def observation_space(self, params: GeneratedParams | None = None):
        """int8 boxes bounded by the family's values (any network it draws)."""
        f, shape = self.family, self.shape
        a = shape.attack_types
        attacker = int8_box(0, f.max_value, (shape.max_nodes, a + 1))
        defender = int8_box(0, max(f.max_value, f.detection[1]), (shape.max_nodes, a + 1))
        if self.learner == "both":
            return spaces.Dict({ATTACKER: attacker, DEFENDER: defender})
        return self._for_learner((attacker, defender))


def make_generated(family: Family | dict | None = None, mode: Mode | str = ""):
    """`(env, params)` for games on a fresh network of `family` (a `Family`, or its fields as a
    dict; default `Family()`) at every reset. `mode` as in `make_scenario` (generated networks allow
    every bot)."""
    if family is None:
        family = Family()
    elif isinstance(family, dict):
        family = Family(**{k: tuple(v) if isinstance(v, list) else v for k, v in family.items()})
    elif not isinstance(family, Family):
        raise ScenarioError(
            f"generator family: expected a Family or a dict of its fields, got {type(family).__name__}."
        )
    try:
        mode = Mode(mode)
    except ValueError:
        modes = ", ".join(repr(m.value) for m in Mode)
        raise ValueError(f"unknown mode {mode!r}: expected one of {modes}.") from None
    env = GeneratedEnv(family, mode)
    return env, env.default_params
