"""The 110 environment ids, generated from the version table and the modes."""

from __future__ import annotations

import difflib
import functools
import numbers
import re

import jax
import jax.numpy as jnp

from idsjax.config import GameConfig
from idsjax.env import IdsGameEnv
from idsjax.types import EnvParams
from idsjax.versions import ENV_IDS, Mode

_ID = re.compile(r"^idsgame-(?:(?P<mode>[a-z_]+)-)?v(?P<version>\d+)$")


def registered_envs() -> tuple[str, ...]:
    """All 110 ids: `idsgame-vN` (two-agent) and `idsgame-<mode>-vN`, N = 0 … 21."""
    return ENV_IDS


@functools.cache
def _env(env_id: str) -> IdsGameEnv:
    match = _ID.match(env_id)
    return IdsGameEnv(GameConfig.create(int(match["version"]), Mode(match["mode"] or "")))


def make(env_id: str, seed: int = 0) -> tuple[IdsGameEnv, EnvParams]:
    """The environment and the parameters of one instance.

    `seed` draws the construction-time vulnerability layout, as constructing the reference again
    would (spec Q20): different seeds give different instances of the same id.
    """
    if not isinstance(env_id, str) or env_id not in ENV_IDS:
        close = difflib.get_close_matches(str(env_id), ENV_IDS, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"unknown environment id {env_id!r}.{hint} See idsjax.registered_envs() for all {len(ENV_IDS)} ids."
        )
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an integer, got {type(seed).__name__} {seed!r}")
    env = _env(env_id)
    return env, env.make_params(jax.random.PRNGKey(int(seed)))


def one_game(env_id: str | None, seed: int, game: tuple | None, default: str):
    """(env, params, name) of the one game a bridge or view plays: a registered id (`env_id`, or
    `default` when neither is given, made with `seed`) or `game`, an `(env, params)` pair such as
    `make_scenario` and `make_generated` return. A batch of games is refused: they play one at a time."""
    if game is None:
        env, params = make(default if env_id is None else env_id, seed=seed)
        return env, params, env.name
    if env_id is not None:
        raise ValueError("give either env_id (a registered id) or game (an (env, params) pair), not both")
    if not (isinstance(game, tuple) and len(game) == 2 and hasattr(game[0], "network_arrays")):
        raise TypeError(
            "game must be the (env, params) pair of an idsjax game, e.g. idsjax.make_scenario(path, mode=...) "
            f"or idsjax.make_generated(family, mode=...); got {type(game).__name__}"
        )
    env, params = game
    if jnp.ndim(params.max_steps_in_episode) != 0:
        raise ValueError(
            "these params are a batch of games (make_scenario_batch); a bridge plays one game: pass one "
            "scenario's (env, params)"
        )
    return env, params, env.name
