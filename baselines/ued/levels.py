"""Generated networks as jaxued levels: the `UnderspecifiedEnv` adapter, the level draws and edits, and
the one import of jaxued in the kit.

A level is one network's `ScenarioParams` (padded arrays of the family's static shape, the
construction-time layout): what `GeneratedEnv.draw_network` draws and `ScenarioEnv` plays. `LevelEnv`
gives a `GeneratedEnv` jaxued's interface: `reset_to_level(key, level, params)` starts a game on the
level exactly as `ScenarioEnv.reset_env(key, level)` does, `step(key, state, action, params)` plays it
as `ScenarioEnv.step_env` does (no auto-reset: jaxued's `AutoReplayWrapper` replays the level), and
the state is a `GeneratedState`, the game's state with its network, so masks, bots and node features
read the level from the state. jaxued's `LevelSampler` keeps the buffer of levels (PLR's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# jaxued 0.0.1 calls `jax.tree_map`, which JAX 0.10 removed; `jax.tree.map` is the same function.
# Restored here, the kit's one import of jaxued, before any of its code runs.
if not hasattr(jax, "tree_map"):
    jax.tree_map = jax.tree.map

from jaxued.environments.underspecified_env import UnderspecifiedEnv  # noqa: E402
from jaxued.level_sampler import LevelSampler  # noqa: E402, F401  (re-exported: the trainer's buffer)
from jaxued.utils import compute_max_returns, max_mc, positive_value_loss  # noqa: E402, F401  (re-exported)
from jaxued.wrappers.autoreplay import AutoReplayWrapper  # noqa: E402, F401  (re-exported)

from idsjax.scenario.canonical import contains, network_hash  # noqa: E402
from idsjax.scenario.env import ScenarioEnv  # noqa: E402
from idsjax.scenario.game import ScenarioParams  # noqa: E402
from idsjax.scenario.generated import GeneratedEnv, GeneratedParams, GeneratedState  # noqa: E402
from idsjax.scenario.mutations import mutate  # noqa: E402
from idsjax.types import EnvState  # noqa: E402


class LevelEnv(UnderspecifiedEnv):
    """jaxued's `UnderspecifiedEnv` over the networks of `game` (a `GeneratedEnv`): levels are
    `ScenarioParams`, env params the game's `GeneratedParams` (the horizon)."""

    def __init__(self, game: GeneratedEnv):
        self.game = game

    def __hash__(self) -> int:
        return hash((type(self), self.game))

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.game == self.game

    @property
    def default_params(self) -> GeneratedParams:
        return self.game.default_params

    def action_space(self, params=None):
        return self.game.action_space(params)

    def reset_env_to_level(self, rng: jax.Array, level: ScenarioParams, params) -> tuple:
        # `ScenarioEnv.initial_state` on the level itself: the game a `ScenarioEnv` with these params
        # starts (not `GeneratedEnv.initial_state`, which would draw a network).
        state = ScenarioEnv.initial_state(self.game, rng, level)
        fields = {name: getattr(state, name) for name in EnvState.__dataclass_fields__}
        state = GeneratedState(**fields, network=level, exhausted=None)
        return self.game.get_obs(state, params), state

    def step_env(self, rng: jax.Array, state: GeneratedState, action, params) -> tuple:
        """`(obs, state, reward, done, info)`: `done` is terminated or truncated (the step limit pays
        -100 and ends the game: terminal, not a cut), both also in `info`."""
        obs, state, reward, terminated, info = self.game.step_env(rng, state, action, params)
        truncated = self.game.is_truncated(state, params)
        info = {**info, "terminated": terminated, "truncated": truncated}
        return obs, state, reward, terminated | truncated, info

    def legal_action_mask(self, state: GeneratedState, params):
        return self.game.legal_action_mask(state, params)


def draw_level(game: GeneratedEnv, key: jax.Array, params: GeneratedParams) -> ScenarioParams:
    """A fresh level of `game`'s family (outside `params.exclude` where set): domain randomisation."""
    return game.draw_network(key, params)


def mutate_level(
    game: GeneratedEnv, key: jax.Array, level: ScenarioParams, num_edits: int, params: GeneratedParams
) -> tuple[ScenarioParams, jax.Array]:
    """(level, edits applied): `num_edits` random edits of the level's network (`idsjax.scenario.
    mutations.mutate`), its construction-time layout made again; the parent itself (0 edits) where
    the child's canonical hash is in `params.exclude`, so that no edit reaches a held-out network."""
    k_edit, k_layout = jax.random.split(key)
    arrays, edits = mutate(k_edit, level.scenario, num_edits)
    child = game.make_params(arrays, k_layout).replace(max_steps_in_episode=level.max_steps_in_episode)
    if params.exclude is not None:
        held_out = contains(jnp.asarray(params.exclude), network_hash(child, game.shape))
        child = jax.tree.map(lambda p, c: jnp.where(held_out, p, c), level, child)
        edits = jnp.where(held_out, 0, edits)
    return child, edits
