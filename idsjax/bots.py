"""The four scripted players of gym-idsgame as pure JAX policies (spec §8), over a network's arrays.

Each bot is `bot(key, state, game, params) -> global action id` and reads the state before the step,
as the reference's bots do. `game` is anything with the network's `shape` and `network_arrays(params)`:
a registered id's `GameConfig` (or its environment), a `ScenarioEnv`. Their deterministic choices are
the reference's exactly; where the reference draws at random, these draw from the same distribution.
Padded nodes and types never take part.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from idsjax import threefry
from idsjax.actions import attack_mask, defense_mask
from idsjax.arrays import ScenarioArrays, ScenarioShape, all_true, fixed
from idsjax.types import EnvState


class Game(Protocol):
    """What a bot reads of a game: its static shape and its network's arrays under `params`."""

    shape: ScenarioShape

    def network_arrays(self, params: Any) -> ScenarioArrays: ...


Bot = Callable[[jax.Array, EnvState, Game, Any], jax.Array]


def _inclusive_prefix(counts: jax.Array) -> jax.Array:
    """Inclusive prefix sums of a short integer vector (last axis), in ceil(log2 n) shifted adds.

    Element-wise, so XLA fuses them into one kernel with their neighbours. A triangular matmul did
    the same in one op, but the CPU ran it as a tiny matrix product per game, a tenth of a
    `maximal_attack` step; `jnp.cumsum` lowers to a quadratic reduce-window (benchmarks/NOTES.md §12)."""
    x = counts.astype(jnp.int32)
    n = x.shape[-1]
    shift = 1
    while shift < n:
        x = x + jnp.pad(x[..., :-shift], [(0, 0)] * (x.ndim - 1) + [(shift, 0)])
        shift *= 2
    return x


def uniform_index(key: jax.Array, count: jax.Array) -> jax.Array:
    """Uniform on `0 … count-1` from one uniform draw (one threefry hash instead of `randint`'s
    two or three; the bias is below count / 2**23)."""
    return jnp.minimum((threefry.uniform(key) * count).astype(jnp.int32), count - 1)


def uniform_choice(key: jax.Array, mask: jax.Array, row_width: int = 1) -> jax.Array:
    """A uniform index among the True entries of `mask`; uniform over all indices when none is True.

    The k-th True entry is found in two levels, first its row of `row_width` entries (pass the
    number of ids per node), then its column, so the cost grows with rows² + row_width² rather than
    with the square of the mask's size. The count of True entries is the last prefix sum, and an
    empty mask swaps in the all-True counts, rather than reducing the mask twice more.
    """
    rows = mask.reshape(-1, row_width)
    num_rows = rows.shape[0]
    per_row = rows.sum(axis=1, dtype=jnp.int32)
    row_end = _inclusive_prefix(per_row)
    empty = row_end[-1] == 0
    per_row = jnp.where(empty, row_width, per_row)
    row_end = jnp.where(empty, row_width * jnp.arange(1, num_rows + 1, dtype=jnp.int32), row_end)
    k = uniform_index(key, row_end[-1])
    row = (row_end <= k).sum()
    k_in_row = k - (row_end[row] - per_row[row])
    in_row = rows[row] | empty
    col = (_inclusive_prefix(in_row) <= k_in_row).sum()
    return (row * row_width + col).astype(jnp.int32)


def _fixed_prefix(mask: np.ndarray) -> int | None:
    """k when `mask` is True exactly on its first k entries, else None."""
    k = int(mask.sum())
    return k if mask[:k].all() else None


def random_defense(key: jax.Array, state: EnvState, game: Game, params) -> jax.Array:
    """Uniform over the defense ids of servers and the data node, maxed values included (§8.1).

    A registered id's servers and data node come first (the start node last), so its ids are
    `0 … (N-1)(A+1)-1` and one uniform index draws them; elsewhere the ids are a mask."""
    del state
    shape, arrays = game.shape, game.network_arrays(params)
    if fixed(arrays.type_mask) is not None and fixed(arrays.role) is not None:
        with jax.ensure_compile_time_eval():  # the mask of a fixed network, computed now, not traced
            prefix = _fixed_prefix(np.asarray(defense_mask(shape, arrays)))
        if prefix is not None:
            return uniform_index(key, prefix)
    return uniform_choice(key, defense_mask(shape, arrays), shape.attack_types + 1)


def defend_minimal_choice(defense: jax.Array, detection: jax.Array, defendable: jax.Array, type_mask=None):
    """What defend-minimal decides in one game (§8.2, Q12), over its arrays: `(action int[N], first,
    ties bool[N])`. `action[i]` raises node i's candidate, its weakest defense type or its detection
    if that is strictly lower; `first` is the first node holding the minimum; `ties` marks the
    *later* nodes that tie with it through a defense candidate. With two or more ties the bot picks
    one of them uniformly (never `first`), otherwise `first`. The sampler (`defend_minimal`) and the
    exact distribution (`bot_distributions.defend_minimal_probs`) both read
    it. `type_mask`: a scenario's real types (padded types are never the weakest); None: all real.
    """
    n, a = defense.shape
    if type_mask is not None:
        defense = jnp.where(type_mask[None, :], defense.astype(jnp.int32), jnp.iinfo(jnp.int8).max + 1)
        detection = detection.astype(jnp.int32)
    weakest_type = jnp.argmin(defense, axis=1)
    weakest = defense.min(axis=1)
    use_detection = detection < weakest
    value = jnp.where(use_detection, detection, weakest).astype(jnp.int32)
    value = jnp.where(defendable, value, jnp.iinfo(jnp.int32).max)
    action = jnp.arange(n) * (a + 1) + jnp.where(use_detection, a, weakest_type)
    best = value.min()
    first = jnp.argmax(value == best)
    ties = (value == best) & (jnp.arange(n) > first) & ~use_detection & defendable
    return action, first, ties


def sample_defend_minimal(key: jax.Array, choice) -> jax.Array:
    """The defense id defend-minimal plays, given its `defend_minimal_choice`."""
    action, first, ties = choice
    tie_pick = uniform_choice(key, ties)  # rows of one node
    return jnp.where(ties.sum() > 1, action[tie_pick], action[first]).astype(jnp.int32)


def defend_minimal(key: jax.Array, state: EnvState, game: Game, params) -> jax.Array:
    """Raise the globally weakest value (§8.2, Q12).

    Per server/data node the candidate is its weakest defense type, or its detection if that is
    strictly lower. The first node holding the minimum wins, unless at least two *later* nodes tie
    with it through a defense (not detection) candidate: then one of those later nodes is chosen
    uniformly, and the first holder never is.
    """
    return sample_defend_minimal(key, defend_minimal_decision(state, game, params))


def defend_minimal_decision(state: EnvState, game: Game, params):
    """`defend_minimal_choice` in `state` on `game`'s network (padded types are never the weakest)."""
    arrays = game.network_arrays(params)
    type_mask = None if all_true(arrays.type_mask) else arrays.type_mask
    return defend_minimal_choice(state.defense, state.detection, jnp.asarray(arrays.defendable), type_mask)


def attack_maximal(key: jax.Array, state: EnvState, game: Game, params) -> jax.Array:
    """Push the strongest attack value towards the data node (a node of a lower layer) (§8.3, Q11,
    Q13); with reconnaissance first scout, then strike the smallest known margin."""
    shape, arrays = game.shape, game.network_arrays(params)
    legal = attack_mask(shape, arrays, state.position, state.attack)
    if shape.reconnaissance:
        return _attack_maximal_recon(key, state, shape, arrays, legal)
    a, n = shape.attack_types, shape.max_nodes
    attack = state.attack if all_true(arrays.type_mask) else jnp.where(arrays.type_mask[None, :], state.attack, -1)
    strongest_type = jnp.argmax(attack, axis=1)
    strongest = attack.max(axis=1).astype(jnp.int32)
    candidate_id = jnp.arange(n) * a + strongest_type
    layer = jnp.asarray(arrays.layer)
    upward = layer < layer[state.position]
    candidate = jnp.asarray(arrays.defendable) & upward & legal[candidate_id]
    score = jnp.where(candidate, strongest, -1)
    best_node = jnp.argmax(score)  # lowest id among the strongest
    fallback = uniform_choice(key, legal, a)  # uniform over legal ids, or over all ids when none is legal
    return jnp.where(candidate.any(), candidate_id[best_node], fallback).astype(jnp.int32)


def _attack_maximal_recon(key, state, shape: ScenarioShape, arrays: ScenarioArrays, legal):
    """With reconnaissance: scout the first unrevealed reachable node; else attack the revealed
    (node, type) with the smallest known margin `recon - attack`; else fall back at random. In v18
    the fallback picks a *local* id that `step` decodes as a global one (Q11)."""
    width = shape.attack_id_width
    ids = jnp.arange(shape.num_attack_ids)
    is_recon_id = (ids % width) == shape.attack_types
    revealed = state.revealed[ids // width]
    scout = legal & is_recon_id & ~revealed
    strike = legal & ~is_recon_id & revealed
    recon_padded = jnp.concatenate([state.recon, state.recon[:, :1]], axis=1).reshape(-1)
    attack_padded = jnp.concatenate([state.attack, state.attack[:, :1]], axis=1).reshape(-1)
    margin = jnp.where(strike, recon_padded.astype(jnp.int32) - attack_padded, jnp.iinfo(jnp.int32).max)

    if shape.local_view:
        # Legal local ids: slot s, kind k whose converted global id is legal.
        slots = jnp.asarray(arrays.local_view)[state.position]  # int32[S]
        local_global = (jnp.maximum(slots, 0)[:, None] * width + jnp.arange(width)[None, :]).reshape(-1)
        local_legal = jnp.repeat(slots >= 0, width) & legal[local_global]
        fallback = uniform_choice(key, local_legal, width)  # a local id, used as a global id (Q11)
    else:
        fallback = uniform_choice(key, legal, width)
    choice = jnp.where(strike.any(), jnp.argmin(margin), fallback)
    return jnp.where(scout.any(), jnp.argmax(scout), choice).astype(jnp.int32)


def random_attack(key: jax.Array, state: EnvState, game: Game, params) -> jax.Array:
    """Uniform over the legal attack ids, or over all ids when none is legal (§8.4).

    With reconnaissance the reference crashes (Q10); this is its evident intent: uniform over legal
    global ids (in v18 the legal local ids convert to exactly these, the node above).
    """
    shape = game.shape
    legal = attack_mask(shape, game.network_arrays(params), state.position, state.attack)
    return uniform_choice(key, legal, shape.attack_id_width)


BOTS: dict[str, Bot] = {
    "random_defense": random_defense,
    "defend_minimal": defend_minimal,
    "attack_maximal": attack_maximal,
    "random_attack": random_attack,
}
