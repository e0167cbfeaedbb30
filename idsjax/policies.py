"""Policies for any side of any id, one joint step outside the bot wrappers, and action descriptions.

Used by the renderer's `episode_gif`, the terminal game, the bridges and the trajectory recorder.

A *policy* is one of

- a bot name of `idsjax.bots.BOTS` (`"random_defense"`, `"defend_minimal"`, `"attack_maximal"`,
  `"random_attack"`), optionally written `"bot:NAME"`;
- `"random"`: uniform over the side's legal ids (the reference's id-level legality);
- a callable `(key, obs, state) -> action id`, where `obs` is that side's own view (spec §6) whatever
  the id, so a trained checkpoint plugs in as a closure over its parameters;
- `"SCHEME:ARG"`, resolved by the policy loader registered for `SCHEME` (`register_policy_loader`) or
  found in the entry-point group `idsjax.policy_loaders`: the research kit (`make install`) provides
  `checkpoint:RUN_DIR` for every run it trains. The library never imports the kit itself.

Bots and `"random"` are pure JAX, so they run inside `jit`, `vmap` and `lax.scan`; callables must be
too wherever they are used there (the trajectory recorder).

A policy with memory (a recurrent network) is a `RecurrentPolicy`: its `step(key, obs, state, carry)
-> (id, carry)` takes and returns what it remembers, `init_carry()` is the memory of a fresh game,
and whoever plays it (`idsjax.rollout`, the trajectory recorder and `render`, `play`, the server)
carries the memory from step to step and sets it back to `init_carry()` where an episode starts.
Plain callables are policies without memory, unchanged; calling a `RecurrentPolicy` as one is
refused (it would forget everything at every step).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from idsjax.bots import BOTS, uniform_choice
from idsjax.network import DATA, SERVER, START
from idsjax.scenario.names import ScenarioNames, scenario_links, scenario_names  # noqa: F401 (their old home)

ATTACKER, DEFENDER = "attacker", "defender"
SIDES = (ATTACKER, DEFENDER)

Policy = Callable[[jax.Array, Any, Any], jax.Array]


class RecurrentPolicy:
    """A policy with memory: `step(key, obs, state, carry) -> (action, carry)` from `init_carry()`.

    `initial_carry` is one game's memory at an episode's start (any pytree of arrays). One-game
    policies (what `resolve_policy` and the loaders return) act for one game; `per_game` (or
    `batched()`) makes the batched form that `idsjax.rollout` takes, whose `init_carry(n)` holds `n`
    games' memories on a leading axis. `step` must be pure JAX (it runs inside `jit` and `lax.scan`)."""

    def __init__(self, initial_carry, step: Callable, name: str | None = None, batched: bool = False):
        self.initial_carry = initial_carry
        self._step = step
        self.batched = batched
        self.__name__ = name or "recurrent"

    def init_carry(self, batch: int | None = None):
        """One game's fresh memory, or `batch` of them stacked on a leading axis."""
        if batch is None:
            return self.initial_carry
        return jax.tree.map(lambda x: jnp.broadcast_to(x, (batch, *jnp.shape(x))), self.initial_carry)

    def step(self, key, obs, state, carry, **kwargs):
        return self._step(key, obs, state, carry, **kwargs)

    def reset(self, carry, start):
        """`carry` with the games where `start` (bool, one per game; a scalar for one game) back at a fresh
        memory: what a player does where an episode begins."""
        start = jnp.asarray(start)
        fresh = self.init_carry(start.shape[0]) if start.ndim else self.init_carry()

        def pick(f, c):
            return jnp.where(start.reshape(start.shape + (1,) * (jnp.ndim(c) - start.ndim)), f, c)

        return jax.tree.map(pick, fresh, carry)

    def per_game(self) -> RecurrentPolicy:
        """The batched form of a one-game policy: one key per game (split as `idsjax.rollout.per_game`
        splits it), everything else vmapped."""
        if self.batched:
            return self

        def batched(key, obs, state, carry):
            n = jax.tree.leaves(carry)[0].shape[0] if jax.tree.leaves(carry) else jax.tree.leaves(state)[0].shape[0]
            return jax.vmap(self._step)(jax.random.split(key, n), obs, state, carry)

        return RecurrentPolicy(self.initial_carry, batched, self.__name__, batched=True)

    def __call__(self, *args, **kwargs):
        raise TypeError(
            f"the policy {self.__name__!r} has memory: play it with .step(key, obs, state, carry) from "
            ".init_carry() (idsjax.rollout, render, play and the server carry it), not as (key, obs, state) -> id"
        )


def is_recurrent(policy) -> bool:
    return isinstance(policy, RecurrentPolicy)


ATTACK_BOTS = ("attack_maximal", "random_attack")
DEFENSE_BOTS = ("defend_minimal", "random_defense")


def default_policy(env, side: str) -> str:
    """The scripted player an id puts on `side`, or `"random"` on the side the caller plays.

    Two-agent ids: `random_attack` and `random_defense`.
    """
    bot = env.mode.attacker_bot if side == ATTACKER else env.mode.defender_bot
    if bot is not None:
        return bot
    if env.learner == "both":
        return "random_attack" if side == ATTACKER else "random_defense"
    return "random"


def policy_name(policy) -> str:
    if policy is None:
        return "default"
    if isinstance(policy, str):
        return policy
    return getattr(policy, "__name__", type(policy).__name__)


POLICY_LOADER_GROUP = "idsjax.policy_loaders"
# scheme -> loader(arg: str, env, params, side: str) -> Policy
_LOADERS: dict[str, Callable[[str, Any, Any, str], Policy]] = {}


class PolicyLoadError(ValueError):
    """A `SCHEME:ARG` policy whose loader is missing or refuses it; the message is one sentence."""


def register_policy_loader(scheme: str, loader: Callable[[str, Any, Any, str], Policy]) -> None:
    """Make `"SCHEME:ARG"` policies resolve through `loader(arg, env, params, side) -> policy`; it wins
    over an entry point of the same name. The loader checks that what it loads fits the id and side."""
    if not scheme.isidentifier() or scheme == "bot":
        raise ValueError(f"a policy scheme is an identifier other than 'bot', got {scheme!r}")
    _LOADERS[scheme] = loader


def policy_loader(scheme: str) -> Callable[[str, Any, Any, str], Policy]:
    """The loader of `scheme`: registered, or the entry point `scheme` of `idsjax.policy_loaders`."""
    if scheme not in _LOADERS:
        found = metadata.entry_points(group=POLICY_LOADER_GROUP, name=scheme)
        for entry in found:
            try:
                _LOADERS[scheme] = entry.load()
            except Exception as err:  # noqa: BLE001 — a broken installation: say so in one sentence
                raise PolicyLoadError(
                    f"the {scheme!r} policy loader ({entry.value}) is installed but cannot be imported "
                    f"({type(err).__name__}: {err}); reinstall the research kit with make install"
                ) from err
            break
    if scheme not in _LOADERS:
        hint = (
            " (checkpoint:RUN_DIR policies come with the research kit: run make install)"
            if scheme == "checkpoint"
            else ""
        )
        raise PolicyLoadError(f"no policy loader for {scheme + ':'!r} policies is installed{hint}")
    return _LOADERS[scheme]


def load_policy(spec: str, side: str, env, params) -> Policy:
    """`"SCHEME:ARG"` -> the policy its loader returns for `side` of `env`; PolicyLoadError otherwise."""
    scheme, _, arg = spec.partition(":")
    loader = policy_loader(scheme)
    if not arg:
        raise PolicyLoadError(f"{spec!r} names no {scheme} (write {scheme}:PATH)")
    try:
        return loader(arg, env, params, side)
    except Exception as err:  # noqa: BLE001 — the loader's refusal (wrong side, id, algorithm, a corrupt file)
        raise PolicyLoadError(str(err) or f"cannot load {spec!r} ({type(err).__name__})") from err


def resolve_policy(policy, side: str, env, params) -> Policy:
    """A policy spec (see the module docstring; `None` = `default_policy`) -> `(key, obs, state) -> id`."""
    if side not in SIDES:
        raise ValueError(f"side must be 'attacker' or 'defender', got {side!r}")
    if policy is None:
        policy = default_policy(env, side)
    if callable(policy):
        return policy
    if not isinstance(policy, str):
        raise TypeError(
            f"a policy is a bot name, 'random', 'SCHEME:ARG' or a callable (key, obs, state) -> id; got {policy!r}"
        )
    if ":" in policy and not policy.startswith("bot:"):
        return load_policy(policy, side, env, params)
    name = policy[4:] if policy.startswith("bot:") else policy
    if name == "random":
        legal, width = (env.attack_mask if side == ATTACKER else env.defense_mask), env.ids_per_node(side)
        return lambda key, obs, state: uniform_choice(key, legal(state, params), width)
    _check_bot(name, policy, side)
    return lambda key, obs, state: env.bot_action(name, key, state, params)


def _check_bot(name: str, policy: str, side: str) -> None:
    if name not in BOTS:
        raise ValueError(f"unknown policy {policy!r}: use 'random', a callable, or one of {sorted(BOTS)}")
    allowed = ATTACK_BOTS if side == ATTACKER else DEFENSE_BOTS
    if name not in allowed:
        article = "an" if side == ATTACKER else "a"
        raise ValueError(f"{name!r} is not {article} {side} bot; {side} bots: {', '.join(allowed)}")


def side_observation(env, state, side: str, params=None):
    """The view of `side` (spec §6), whichever side the id's learner plays. `params` is read by
    scenario environments only (default: the environment's own)."""
    return env.side_observation(state, side, params)


def joint_step(env, key, state, attack_action, defense_action, params):
    """One game transition with both players' ids given, on any game (single-agent ids included).

    Exactly `env.step_env` without the bot call: `(next_state, rewards float32[2], info)`, where
    `info` has the transition's flags plus `terminated` and `truncated`. No auto-reset. The
    detection draw is the environment's (`env.joint_transition`; on a scenario environment its
    two-agent step's, `threefry.uniform(key)`).
    """
    next_state, rewards, info = env.joint_transition(key, state, attack_action, defense_action, params)
    info = {
        **info,
        "attack_action": jnp.asarray(attack_action, jnp.int32),
        "defense_action": jnp.asarray(defense_action, jnp.int32),
        "terminated": next_state.done & ~next_state.timed_out,
        "truncated": next_state.timed_out,
    }
    return next_state, rewards, info


def make_joint_policy_step(env, params, attacker_policy=None, defender_policy=None):
    """A pure function `(key, state) -> (attack id, defense id)` for a pair of policy specs; where a
    side has memory, a `RecurrentPolicy` over the pair instead (`make_joint_recurrent_step`)."""
    attack_policy = resolve_policy(attacker_policy, ATTACKER, env, params)
    defense_policy = resolve_policy(defender_policy, DEFENDER, env, params)
    if is_recurrent(attack_policy) or is_recurrent(defense_policy):
        return _joint_recurrent(env, params, attack_policy, defense_policy)

    def choose(key, state):
        k_a, k_d = jax.random.split(key)
        a = attack_policy(k_a, side_observation(env, state, ATTACKER, params), state)
        d = defense_policy(k_d, side_observation(env, state, DEFENDER, params), state)
        return jnp.asarray(a, jnp.int32), jnp.asarray(d, jnp.int32)

    return choose


def _memory(policy) -> RecurrentPolicy:
    """`policy` as a `RecurrentPolicy`: itself, or a memoryless one with an empty carry."""
    if is_recurrent(policy):
        return policy
    return RecurrentPolicy((), lambda key, obs, state, carry: (policy(key, obs, state), carry), policy_name(policy))


def _joint_recurrent(env, params, attack_policy, defense_policy) -> RecurrentPolicy:
    """`step(key, obs, state, (attacker's memory, defender's)) -> ((attack id, defense id), memories)`
    for one game; the keys are split as `make_joint_policy_step` splits them (`obs` is unused: each
    side reads its own view of `state`)."""
    att, dfn = _memory(attack_policy), _memory(defense_policy)

    def step(key, obs, state, carry):
        k_a, k_d = jax.random.split(key)
        a, c_a = att.step(k_a, side_observation(env, state, ATTACKER, params), state, carry[0])
        d, c_d = dfn.step(k_d, side_observation(env, state, DEFENDER, params), state, carry[1])
        return (jnp.asarray(a, jnp.int32), jnp.asarray(d, jnp.int32)), (c_a, c_d)

    return RecurrentPolicy((att.init_carry(), dfn.init_carry()), step, f"{att.__name__} vs {dfn.__name__}")


# -- human-readable descriptions ----------------------------------------------------------------
_ROLE_NAMES = {START: "start", SERVER: "server", DATA: "data"}


def node_name(config, node: int) -> str:
    if isinstance(config, ScenarioNames):
        if not 0 <= node < config.num_nodes:
            return f"node {node} (padding)"
        return f"node {node} ({config.node_ids[node]}, {_ROLE_NAMES.get(config.roles[node], '?')})"
    net = config.network
    kind = int(net.node_type[node])
    if kind == DATA:
        return f"node {node} (data)"
    if kind == START:
        return f"node {node} (start)"
    if kind == SERVER:
        return f"node {node} (server, row {int(net.node_row[node])} col {int(net.node_col[node])})"
    return f"node {node}"


def decode_attack_id(config, action: int):
    """Global attack id -> (node, type, is_reconnaissance), or None when out of range."""
    action = int(action)
    if not 0 <= action < config.num_attack_ids:
        return None
    node, kind = divmod(action, config.attack_id_width)
    return node, kind, bool(config.reconnaissance and kind == config.attack_types)


def decode_defense_id(config, action: int):
    """Defense id -> (node, type, is_detection), or None when out of range."""
    action = int(action)
    if not 0 <= action < config.num_defense_actions:
        return None
    node, kind = divmod(action, config.attack_types + 1)
    return node, kind, kind == config.attack_types


def describe_attack(config, action: int) -> str:
    decoded = decode_attack_id(config, action)
    if decoded is None:
        return f"attack id {int(action)} (out of range: an illegal attack)"
    node, kind, recon = decoded
    if recon:
        return f"reconnaissance of {node_name(config, node)}"
    return f"attack type {kind} on {node_name(config, node)}"


def describe_defense(config, action: int) -> str:
    decoded = decode_defense_id(config, action)
    if decoded is None:
        return f"defense id {int(action)} (out of range: no defense)"
    node, kind, detection = decoded
    if detection:
        return f"raise detection of {node_name(config, node)}"
    return f"raise defense type {kind} of {node_name(config, node)}"


def legal_ids(env, state, params, side: str) -> np.ndarray:
    """The legal ids of `side` in `state` (the reference's id-level legality), as a NumPy array."""
    mask = env.attack_mask(state, params) if side == ATTACKER else env.defense_mask(state, params)
    return np.flatnonzero(np.asarray(mask))
