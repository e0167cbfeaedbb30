"""The exact action distributions of the four scripted players (`idsjax.bots`, spec §8).

Each `probs(state, game, params) -> float32[ids]` is the probability of every global id that the
bot of the same name would return from `state` (`game` as for `idsjax.bots`): over the
`num_attack_ids` attack ids for the attackers, over the `num_defense_ids` defense ids for the defenders. They are pure JAX, so an
exact computation (an expectation over the bot's moves, a best response against it) can `vmap` them
over a table of states instead of sampling the bot.

Where the bot draws (a uniform pick), the distribution is the intended uniform one; the samplers of
`idsjax.bots` draw it up to a bias below `count / 2**23` (`bots.uniform_index`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from idsjax.actions import attack_mask, defense_mask
from idsjax.arrays import all_true
from idsjax.bots import Game, defend_minimal_decision
from idsjax.types import EnvState

BotProbs = Callable[[EnvState, Game, Any], jax.Array]


def uniform_over(mask: jax.Array) -> jax.Array:
    """float32: uniform over the True entries of `mask`, or over every entry when none is True
    (the fallback of `bots.uniform_choice`)."""
    mask = jnp.where(mask.any(), mask, True)
    return mask.astype(jnp.float32) / mask.sum().astype(jnp.float32)


def one_hot(index: jax.Array, size: int) -> jax.Array:
    return (jnp.arange(size) == index).astype(jnp.float32)


def random_defense_probs(state: EnvState, game: Game, params) -> jax.Array:
    """Uniform over every defense of a server or the data node, real types and detection (§8.1)."""
    del state
    return uniform_over(defense_mask(game.shape, game.network_arrays(params)))


def defend_minimal_probs(state: EnvState, game: Game, params) -> jax.Array:
    """The weakest value's raise (§8.2), with the tie rule Q12: when at least two nodes *after* the
    first holder of the minimum tie with it through a defense candidate, uniform over those later
    nodes (never the first holder); otherwise the first holder's candidate with probability one."""
    return defend_minimal_distribution(defend_minimal_decision(state, game, params), game.shape.num_defense_ids)


def defend_minimal_distribution(choice, num_ids: int) -> jax.Array:
    """float32[num_ids]: the exact distribution of `bots.sample_defend_minimal` given the same
    `bots.defend_minimal_choice`: uniform over the later ties when two or more, else `first`."""
    action, first, ties = choice
    n = action.shape[0]
    weight = jnp.where(ties.sum() > 1, uniform_over(ties), one_hot(first, n))  # per node
    return jnp.zeros(num_ids, jnp.float32).at[action].add(weight)


def attack_maximal_probs(state: EnvState, game: Game, params) -> jax.Array:
    """Push the strongest attack value towards the data node (§8.3, Q11, Q13): a deterministic choice
    when one exists, else the uniform fallback."""
    shape, arrays = game.shape, game.network_arrays(params)
    legal = attack_mask(shape, arrays, state.position, state.attack)
    size = shape.num_attack_ids
    if shape.reconnaissance:
        return _attack_maximal_recon_probs(state, shape, arrays, legal)
    a, n = shape.attack_types, shape.max_nodes
    attack = state.attack if all_true(arrays.type_mask) else jnp.where(arrays.type_mask[None, :], state.attack, -1)
    strongest_type = jnp.argmax(attack, axis=1)
    strongest = attack.max(axis=1).astype(jnp.int32)
    candidate_id = jnp.arange(n) * a + strongest_type
    layer = jnp.asarray(arrays.layer)
    upward = layer < layer[state.position]
    candidate = jnp.asarray(arrays.defendable) & upward & legal[candidate_id]
    best_node = jnp.argmax(jnp.where(candidate, strongest, -1))  # lowest id among the strongest
    return jnp.where(candidate.any(), one_hot(candidate_id[best_node], size), uniform_over(legal))


def _attack_maximal_recon_probs(state: EnvState, shape, arrays, legal: jax.Array) -> jax.Array:
    """With reconnaissance: scout the first unrevealed reachable node, else strike the revealed
    (node, type) with the smallest known margin, else fall back uniformly; in v18 the fallback is
    uniform over the legal *local* ids, each played as the global id of the same number (Q11)."""
    width, size = shape.attack_id_width, shape.num_attack_ids
    is_recon_id = (jnp.arange(size) % width) == shape.attack_types
    revealed = state.revealed[jnp.arange(size) // width]
    scout = legal & is_recon_id & ~revealed
    strike = legal & ~is_recon_id & revealed
    recon_padded = jnp.concatenate([state.recon, state.recon[:, :1]], axis=1).reshape(-1)
    attack_padded = jnp.concatenate([state.attack, state.attack[:, :1]], axis=1).reshape(-1)
    margin = jnp.where(strike, recon_padded.astype(jnp.int32) - attack_padded, jnp.iinfo(jnp.int32).max)
    if shape.local_view:
        slots = jnp.asarray(arrays.local_view)[state.position]
        local_global = (jnp.maximum(slots, 0)[:, None] * width + jnp.arange(width)[None, :]).reshape(-1)
        local_legal = jnp.repeat(slots >= 0, width) & legal[local_global]
        fallback = jnp.zeros(size, jnp.float32).at[: local_legal.shape[0]].set(uniform_over(local_legal))
    else:
        fallback = uniform_over(legal)
    choice = jnp.where(strike.any(), one_hot(jnp.argmin(margin), size), fallback)
    return jnp.where(scout.any(), one_hot(jnp.argmax(scout), size), choice)


def random_attack_probs(state: EnvState, game: Game, params) -> jax.Array:
    """Uniform over the legal attack ids, or over all ids when none is legal (§8.4, Q10)."""
    arrays = game.network_arrays(params)
    return uniform_over(attack_mask(game.shape, arrays, state.position, state.attack))


BOT_PROBS: dict[str, BotProbs] = {
    "random_defense": random_defense_probs,
    "defend_minimal": defend_minimal_probs,
    "attack_maximal": attack_maximal_probs,
    "random_attack": random_attack_probs,
}
