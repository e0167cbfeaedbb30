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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from idsjax import actions, observations, threefry
from idsjax.bots import BOTS, uniform_choice
from idsjax.network import DATA, SERVER, START
from idsjax.transition import transition

ATTACKER, DEFENDER = "attacker", "defender"
SIDES = (ATTACKER, DEFENDER)

Policy = Callable[[jax.Array, Any, Any], jax.Array]

ATTACK_BOTS = ("attack_maximal", "random_attack")
DEFENSE_BOTS = ("defend_minimal", "random_defense")


def is_scenario_env(env) -> bool:
    """Whether `env` plays a network held in its params (`idsjax.ScenarioEnv`), not a static `config`."""
    return getattr(env, "config", None) is None and hasattr(env, "shape")


def default_policy(env, side: str) -> str:
    """The scripted player an id puts on `side`, or `"random"` on the side the caller plays.

    Two-agent ids: `random_attack` and `random_defense`.
    """
    mode = env.mode if is_scenario_env(env) else env.config.mode
    bot = mode.attacker_bot if side == ATTACKER else mode.defender_bot
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
    if is_scenario_env(env):
        return _scenario_policy(name, policy, side, env, params)
    config = env.config
    if name == "random":
        if side == ATTACKER:
            width = config.attack_id_width
            return lambda key, obs, state: uniform_choice(key, actions.attack_mask(config, state, params), width)
        width = config.attack_types + 1
        return lambda key, obs, state: uniform_choice(key, actions.defense_mask(config), width)
    _check_bot(name, policy, side)
    bot = BOTS[name]
    return lambda key, obs, state: bot(key, state, config, params)


def _check_bot(name: str, policy: str, side: str) -> None:
    if name not in BOTS:
        raise ValueError(f"unknown policy {policy!r}: use 'random', a callable, or one of {sorted(BOTS)}")
    allowed = ATTACK_BOTS if side == ATTACKER else DEFENSE_BOTS
    if name not in allowed:
        article = "an" if side == ATTACKER else "a"
        raise ValueError(f"{name!r} is not {article} {side} bot; {side} bots: {', '.join(allowed)}")


def _scenario_policy(name: str, policy: str, side: str, env, params) -> Policy:
    """`"random"` or a bot of `idsjax.scenario.game.BOTS` on a `ScenarioEnv`'s network."""
    shape = env.shape
    if name == "random":
        if side == ATTACKER:
            return lambda key, obs, state: uniform_choice(key, env.attack_mask(state, params), shape.attack_id_width)
        return lambda key, obs, state: uniform_choice(key, env.defense_mask(state, params), shape.attack_types + 1)
    _check_bot(name, policy, side)
    from idsjax.scenario import game  # not at import time: the scenario package imports this layer's modules

    bot = game.BOTS[name]
    return lambda key, obs, state: bot(key, state, shape, env.game_params(state, params))


def side_observation(env, state, side: str, params=None):
    """The view of `side` (spec §6), whichever side the id's learner plays. `params` is read by
    scenario environments only (default: the environment's own)."""
    if is_scenario_env(env):
        from idsjax.scenario import game

        params = env.game_params(state, env.default_params if params is None else params)
        if side == ATTACKER:
            return game.attacker_observation(env.shape, params.scenario, state)
        return game.defender_observation(state)
    if side == ATTACKER:
        return observations.attacker_observation(env.config, state)
    return observations.defender_observation(env.config, state)


def joint_step(env, key, state, attack_action, defense_action, params):
    """One game transition with both players' ids given, on any id (single-agent ids included).

    Exactly `env.step_env` without the bot call: `(next_state, rewards float32[2], info)`, where
    `info` has the transition's flags plus `terminated` and `truncated`. No auto-reset. On a
    scenario environment the detection draw is its two-agent step's (`threefry.uniform(key)`).
    """
    if is_scenario_env(env):
        from idsjax.scenario import game

        next_state, rewards, info = game.transition(
            env.shape,
            state,
            jnp.asarray(attack_action, jnp.int32),
            jnp.asarray(defense_action, jnp.int32),
            threefry.uniform(key),
            env.game_params(state, params),
        )
    else:
        next_state, rewards, info = transition(
            env.config, state, attack_action, defense_action, jax.random.uniform(key), params
        )
    info = {
        **info,
        "attack_action": jnp.asarray(attack_action, jnp.int32),
        "defense_action": jnp.asarray(defense_action, jnp.int32),
        "terminated": next_state.done & ~next_state.timed_out,
        "truncated": next_state.timed_out,
    }
    return next_state, rewards, info


def make_joint_policy_step(env, params, attacker_policy=None, defender_policy=None):
    """A pure function `(key, state) -> (attack id, defense id)` for a pair of policy specs."""
    attack_policy = resolve_policy(attacker_policy, ATTACKER, env, params)
    defense_policy = resolve_policy(defender_policy, DEFENDER, env, params)

    def choose(key, state):
        k_a, k_d = jax.random.split(key)
        a = attack_policy(k_a, side_observation(env, state, ATTACKER, params), state)
        d = defense_policy(k_d, side_observation(env, state, DEFENDER, params), state)
        return jnp.asarray(a, jnp.int32), jnp.asarray(d, jnp.int32)

    return choose


# -- human-readable descriptions ----------------------------------------------------------------
_ROLE_NAMES = {START: "start", SERVER: "server", DATA: "data"}


@dataclass(frozen=True)
class ScenarioNames:
    """What the descriptions below read of a `GameConfig`, for a scenario game: id sizes from the
    environment's shape, node ids and roles from the `Scenario` (the arrays know only indices).
    `scenario_names(env, params, scenario)` builds one."""

    env_id: str
    node_ids: tuple[str, ...]
    roles: tuple[int, ...]
    attack_types: int
    reconnaissance: bool
    max_nodes: int

    @property
    def num_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def attack_id_width(self) -> int:
        return self.attack_types + 1 if self.reconnaissance else self.attack_types

    @property
    def num_attack_ids(self) -> int:
        return self.max_nodes * self.attack_id_width

    @property
    def num_defense_actions(self) -> int:
        return self.max_nodes * (self.attack_types + 1)


def scenario_links(arrays) -> list[tuple[int, int, bool]]:
    """The links of one scenario network (its `ScenarioParams.scenario` arrays) for drawing:
    `(i, j, False)` for a link both ways (i < j), `(i, j, True)` where the attacker may go only
    from i to j (`reach`); padding nodes have none."""
    mask = np.asarray(arrays.node_mask)
    reach = np.asarray(arrays.reach) & mask[:, None] & mask[None, :]
    real = np.flatnonzero(mask)
    links = []
    for i in real:
        for j in real:
            if i < j and (reach[i, j] or reach[j, i]):
                if reach[i, j] and reach[j, i]:
                    links.append((int(i), int(j), False))
                else:
                    links.append((int(i), int(j), True) if reach[i, j] else (int(j), int(i), True))
    return links


def scenario_names(env, params, scenario=None) -> ScenarioNames:
    """The `ScenarioNames` of a `ScenarioEnv` game; node ids from `scenario` (a `Scenario`), else `n<i>`."""
    mask = np.asarray(params.scenario.node_mask)
    roles = tuple(int(r) for r in np.asarray(params.scenario.role)[mask])
    ids = tuple(n.id for n in scenario.nodes) if scenario is not None else tuple(f"n{i}" for i in range(len(roles)))
    title = f"{scenario.name} ({env.name})" if scenario is not None else env.name
    return ScenarioNames(
        env_id=title,
        node_ids=ids,
        roles=roles,
        attack_types=env.shape.attack_types,
        reconnaissance=bool(env.shape.reconnaissance),
        max_nodes=env.shape.max_nodes,
    )


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
    if is_scenario_env(env):
        mask = env.attack_mask(state, params) if side == ATTACKER else env.defense_mask(state, params)
        return np.flatnonzero(np.asarray(mask))
    if side == ATTACKER:
        mask = actions.attack_mask(env.config, state, params)
    else:
        mask = actions.defense_mask(env.config)
    return np.flatnonzero(np.asarray(mask))
