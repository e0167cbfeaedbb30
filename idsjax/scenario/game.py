"""The game over scenario arrays: layout draws, transition, rewards, observations and bots.

These are `idsjax.layout`, `transition`, `rewards`, `observations` and `bots` written over a
`ScenarioArrays` that lives in the traced parameters instead of a static grid, so one compiled program
plays any network of a `ScenarioShape`. For a built-in version's scenario they consume the random
stream exactly as the grid code does and compute the same values bit for bit
(tests/test_scenario_env.py): the per-layer draw ranks the uniforms of `draw_slot` (the grid's cells),
rewards use `layer` where the grid uses `node_row`, random starts follow `start_weight`.

What is a static switch of the grid code (reward family, full view, randomised resets, random starts)
is a traced value here: every branch is computed and one is selected. Padded nodes and padded attack
types never take part: their attack and defense values are 0, they are masked out of every minimum
and maximum, and an action on them is an illegal attack or no defense.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import environment

from idsjax import backend, threefry
from idsjax.bots import defend_minimal_choice, sample_defend_minimal, uniform_choice
from idsjax.config import UNKNOWN_DEFENSE
from idsjax.layout import _split_uniforms, _uniform_int
from idsjax.scenario.arrays import VIEW_FULL, ScenarioArrays, ScenarioShape, attack_mask
from idsjax.transition import finish_step
from idsjax.types import VALUE_DTYPE, EnvState
from idsjax.versions import RewardFamily

_INT8_MAX = int(np.iinfo(np.int8).max)


@struct.dataclass
class ScenarioParams(environment.EnvParams):
    """The traced numbers of one game: its network and numbers (`scenario`), and the construction-time
    layout drawn from the seed (spec Q20) that non-randomised scenarios restore at every reset and
    dense-v3 rewards measure against. Stack several (`idsjax.scenario.stack`) and `vmap`.

    `max_steps_in_episode` is gymnax's horizon, set from `scenario.max_steps` when the params are made.
    """

    max_steps_in_episode: jax.Array = 102
    scenario: ScenarioArrays = None
    initial_attack: jax.Array = None
    initial_defense: jax.Array = None
    initial_detection: jax.Array = None
    initial_recon: jax.Array = None
    reference_defense_score: jax.Array = 0.0

    @property
    def max_value(self) -> jax.Array:
        return self.scenario.max_value


# -- what a whole batch agrees on --------------------------------------------------------------------
# With params batched, `vmap` turns every `lax.cond`/`lax.switch` on a params value into a select that
# computes all branches for every game. `batch_any` and `batch_uniform` read such a value across the
# batch instead (their batching rules reduce over the batch axis and return an unbatched value), so a
# conditional on them stays a conditional under `vmap`: e.g. no game draws a fresh layout when no game
# of the batch randomises. They only choose between computations that give every game the same result.
def _batch_any_rule(axis_size, in_batched, flag):
    if not in_batched[0]:
        return batch_any(flag), False
    return batch_any(jnp.any(flag, axis=0)), False


@jax.custom_batching.custom_vmap
def batch_any(flag: jax.Array) -> jax.Array:
    """`flag` for one game; under `vmap`, whether it holds for any game of the batch (unbatched)."""
    return jnp.asarray(flag, bool)


batch_any.def_vmap(_batch_any_rule)


def _batch_uniform_rule(axis_size, in_batched, value):
    if not in_batched[0]:
        return batch_uniform(value), (False, False)
    if axis_size == 0:
        return (jnp.bool_(False), jnp.zeros(value.shape[1:], value.dtype)), (False, False)
    same, first = batch_uniform(value[0])
    return (same & jnp.all(value == value[0], axis=0), first), (False, False)


@jax.custom_batching.custom_vmap
def batch_uniform(value: jax.Array):
    """`(True, value)` for one game; under `vmap`, `(whether every game has the same value, the first
    game's value)`, both unbatched."""
    return jnp.bool_(True), jnp.asarray(value)


batch_uniform.def_vmap(_batch_uniform_rule)


def materialise(tree):
    """`tree`, unchanged, computed into memory once before anything reads it: `idsjax.batched.materialise`
    with its predicate read across the batch, so that under `vmap` it stays a conditional (a barrier to
    XLA's CPU fusion, which would otherwise recompute a threefry hash in every kernel that reads it)."""
    leaves = jax.tree.leaves(tree)
    if not leaves or not backend.materialise_barrier():
        return tree
    witness = jnp.ravel(leaves[0])[0]
    always = batch_any((witness.astype(jnp.int32) | 1) != 0)
    # The other branch changes each value (under `vmap` most are one number per game): never taken,
    # and not what XLA can prove equal (were the branches equal, XLA would drop the conditional).
    return jax.lax.cond(always, lambda t: t, lambda t: jax.tree.map(_changed, t), tree)


def _changed(x: jax.Array) -> jax.Array:
    if x.ndim:
        return x[::-1]
    return -x if jnp.issubdtype(x.dtype, jnp.floating) else ~x


# -- layout and start (spec §3) ---------------------------------------------------------------------
def draw_layout(key: jax.Array, shape: ScenarioShape, arr: ScenarioArrays, randomize: bool):
    """`idsjax.layout.draw_layout` over the arrays, for one key: (attack, defense, detection, recon,
    revealed).

    The uniforms are split exactly as the grid code splits them (`draw_slots` cells, then per node and
    type), so a built-in scenario draws the same layout from the same key. Each layer gets
    `vulnerable_per_layer` distinct vulnerable candidates: those whose cell's uniform ranks below it
    among the layer's candidates (ties: the lower cell first). Each vulnerable node and each
    `vulnerable_always` node gets `vulnerabilities_per_node` type draws with replacement; the types of
    `vulnerable_fixed` are vulnerable in addition. With `randomize` values are uniform on each node's
    ranges, otherwise the upper ends (the vulnerability value: the lower end).
    """
    n, a = shape.max_nodes, shape.attack_types
    u = _split_uniforms(
        key,
        {
            "columns": (shape.num_draw_slots,),
            "types": (n, a),
            "defense": (n, a),
            "attack": (n, a),
            "detection": (n,),
            "vulnerability": (n,),
            "visibility": (n,),
        },
    )

    def values(name, ranges, use_low):
        low, high = ranges[:, 0], ranges[:, 1]
        if u[name].ndim == 2:
            low, high = low[:, None], high[:, None]
        if randomize:
            return _uniform_int(u[name], low, high)
        return jnp.broadcast_to(low if use_low else high, u[name].shape)

    cand = arr.vulnerable_candidate & arr.node_mask
    slot = jnp.maximum(arr.draw_slot, 0)
    cu = u["columns"][slot]
    same_layer = (arr.layer[:, None] == arr.layer[None, :]) & cand[None, :]
    beats = (cu[None, :] < cu[:, None]) | ((cu[None, :] == cu[:, None]) & (slot[None, :] < slot[:, None]))
    vulnerable_node = (cand & ((same_layer & beats).sum(axis=1) < arr.vulnerable_per_layer)) | arr.vulnerable_always

    draws = _uniform_int(u["types"], 0, arr.num_attack_types - 1)
    draw_used = jnp.arange(a) < arr.vulnerabilities_per_node
    type_ids = np.arange(a)
    drawn_type = jnp.any((draws[:, :, None] == type_ids[None, None, :]) & draw_used[None, :, None], axis=1)
    vulnerable_type = ((drawn_type & vulnerable_node[:, None]) | arr.vulnerable_fixed) & arr.type_mask

    live = arr.defendable[:, None] & arr.type_mask[None, :]
    defense = jnp.where(
        vulnerable_type,
        values("vulnerability", arr.vulnerability_range, True)[:, None],
        values("defense", arr.defense_range, False),
    )
    defense = jnp.where(live, defense, 0).astype(VALUE_DTYPE)
    attack = jnp.where(live, values("attack", arr.attack_range, False), 0).astype(VALUE_DTYPE)
    detection = jnp.where(arr.defendable, values("detection", arr.detection_range, False), 0).astype(VALUE_DTYPE)
    if randomize:
        revealed = (u["visibility"] < arr.visibility_p) & arr.node_mask
    else:
        revealed = jnp.zeros((n,), bool)
    recon = jnp.where(revealed[:, None], defense, UNKNOWN_DEFENSE).astype(VALUE_DTYPE)
    return attack, defense, detection, recon, revealed


def random_start(arr: ScenarioArrays) -> jax.Array:
    """Whether a reset draws the start: more than one node has a positive start weight."""
    return (arr.start_weight > 0).sum() > 1


def reset_is_random(arr: ScenarioArrays) -> jax.Array:
    """Whether a reset draws anything (a fresh layout, a random start), as `IdsGameEnv.reset_is_random`."""
    return arr.randomize | random_start(arr)


def start_position(key: jax.Array, arr: ScenarioArrays) -> jax.Array:
    """A node drawn with the weights `start_weight`: one uniform integer below the total weight, the
    node whose cumulative weight passes it. For a built-in grid (the start's weight the row's width,
    1 per server) this is `idsjax.layout.start_position`, draw for draw (Q17)."""
    total = arr.start_weight.sum()
    pick = _uniform_int(threefry.uniform(key), 0, total - 1)
    cumulative = jnp.cumsum(arr.start_weight)
    drawn = (cumulative <= pick).sum().astype(jnp.int32)
    return jnp.where(random_start(arr), drawn, arr.start_node).astype(jnp.int32)


# -- rewards (spec §7) ------------------------------------------------------------------------------
def _node_min(arr: ScenarioArrays, defense: jax.Array) -> jax.Array:
    """int32[N]: each node's weakest defense over its scenario's types."""
    return jnp.where(arr.type_mask[None, :], defense, _INT8_MAX).min(axis=1).astype(jnp.int32)


def defense_score(arr: ScenarioArrays, defense: jax.Array) -> jax.Array:
    """`idsjax.rewards.defense_score` by `layer`: the running sum of per-layer minimum defenses from
    the data node's layer outwards, stopping at the first layer whose minimum is below `M`; +inf if
    none is. Layers without defendable nodes add nothing and never stop the sum (the grid's start
    row, the last, is such a layer)."""
    n = arr.layer.shape[-1]
    in_layer = (arr.layer[None, :] == jnp.arange(n)[:, None]) & arr.defendable[None, :]
    layer_min = jnp.where(in_layer, _node_min(arr, defense)[None, :], _INT8_MAX).min(axis=1)
    occupied = in_layer.any(axis=1)
    prefix = jnp.cumsum(jnp.where(occupied, layer_min, 0)).astype(jnp.float32)
    stops = occupied & (layer_min < arr.max_value)
    return jnp.where(stops.any(), prefix[jnp.argmax(stops)], jnp.float32(jnp.inf))


def _pair(attacker, defender) -> jax.Array:
    return jnp.stack([jnp.asarray(attacker, jnp.float32), jnp.asarray(defender, jnp.float32)])


def outcome_rewards(
    params: ScenarioParams,
    *,
    defense,
    revealed,
    failed,
    node,
    attack_type,
    is_recon,
    num_failed,
    furthest_row,
    num_hacked,
    attacker_row,
):
    """`idsjax.rewards.outcome_rewards` with the family chosen by `scenario.reward_family` (traced) and
    rows read as layers. Returns `(success, hack, detected, furthest_row_after_success)`.

    The family is a `lax.switch`: where a batch shares its scenario only that family's rewards are
    computed; with batched params `vmap` computes every family and selects.
    """
    arr = params.scenario
    new_row = arr.layer[node]
    deeper = new_row < furthest_row
    shallower = new_row > furthest_row

    def one_plus_bonus():
        # `1 + bonus` with bonus = 1/nf, as one division so float32 rounds it once (§4.4).
        nf = num_failed.astype(jnp.float32)
        return jnp.where(num_failed == 0, 2.0, (nf + 1.0) / jnp.maximum(nf, 1.0))

    def sparse():
        return _pair(0, 0), _pair(1, -1), _pair(-1, 1), furthest_row

    def dense():  # §7.2
        bonus = one_plus_bonus()
        success = jnp.where(deeper, _pair(bonus, 0), jnp.where(shallower, _pair(-1, 0), _pair(0, 0)))
        return success, _pair(bonus, -num_hacked), _pair(-1, 1), jnp.where(deeper, new_row, furthest_row)

    def dense_v1_v2():  # §7.3
        success = jnp.where(deeper, _pair(1, -1), jnp.where(shallower, _pair(-1, 1), _pair(0, 0)))
        hack = _pair(one_plus_bonus(), -num_hacked)
        return success, hack, _pair(-100, 100), jnp.where(deeper, new_row, furthest_row)

    def dense_v3():  # §7.4: the min-set over nodes 0 … count-1 of the new or current layer (Q9)
        node_type_defense = defense[node, attack_type]
        node_min = jnp.where(arr.node_mask, _node_min(arr, defense), _INT8_MAX)
        index = jnp.arange(node_min.shape[0])

        def row_min(row):
            count = (arr.node_mask & (arr.layer == row)).sum()
            return jnp.where(index < count, node_min, _INT8_MAX).min()

        is_revealed = revealed[node]
        informed_new = is_revealed & (node_type_defense <= row_min(new_row))
        informed_current = is_revealed & (node_type_defense <= row_min(attacker_row))
        good = 1 + failed[node, attack_type].astype(jnp.int32)
        failed_cells = (failed > 0).sum(axis=1, dtype=jnp.int32)
        bad = failed_cells.sum() - jnp.where(index == node, failed_cells, 0).sum()
        gain = jnp.maximum(good - bad * bad, 0)
        score = defense_score(arr, defense)
        rows = jnp.where(arr.node_mask, arr.layer, 0).max() + 1
        max_score = (arr.max_value * rows).astype(jnp.float32)
        success = jnp.where(informed_new, _pair(gain, 0), _pair(-1, 0))
        hack = _pair(jnp.where(informed_new, gain, -1), score - max_score)
        detected = _pair(jnp.where(~is_recon & informed_current, 0, -1), score - params.reference_defense_score)
        return success, hack, detected, furthest_row

    branches = {
        RewardFamily.SPARSE: sparse,
        RewardFamily.DENSE: dense,
        RewardFamily.DENSE_V3: dense_v3,
        RewardFamily.DENSE_V1_V2: dense_v1_v2,
    }
    branches = [branches[f] for f in sorted(branches)]
    # Where the whole batch plays one family (the usual case), only that family is computed.
    same, family = batch_uniform(arr.reward_family)
    return jax.lax.cond(
        same, lambda: jax.lax.switch(family, branches), lambda: jax.lax.switch(arr.reward_family, branches)
    )


# -- actions (spec §4.1) ----------------------------------------------------------------------------
def decode_attack(shape: ScenarioShape, action: jax.Array):
    """Global attack id -> (in_range, node, type, is_reconnaissance), as `idsjax.actions.decode_attack`."""
    action = jnp.asarray(action, jnp.int32)
    width = shape.attack_id_width
    in_range = (action >= 0) & (action < shape.max_nodes * width)
    safe = jnp.where(in_range, action, 0)
    node, kind = safe // width, safe % width
    is_recon = (kind == shape.attack_types) if shape.reconnaissance else jnp.bool_(False)
    return in_range, node, jnp.where(is_recon, 0, kind), is_recon


def decode_defense(shape: ScenarioShape, action: jax.Array):
    """Defense id -> (in_range, node, type); type `A` raises the node's detection value."""
    action = jnp.asarray(action, jnp.int32)
    width = shape.attack_types + 1
    in_range = (action >= 0) & (action < shape.max_nodes * width)
    safe = jnp.where(in_range, action, 0)
    return in_range, safe // width, safe % width


def legal_attacks(shape: ScenarioShape, state: EnvState, params: ScenarioParams) -> jax.Array:
    return attack_mask(shape, params.scenario, state.position, state.attack)


# -- the transition (spec §4.2) ---------------------------------------------------------------------
def transition(shape: ScenarioShape, state: EnvState, attack_action, defense_action, detection_u, params):
    """`idsjax.transition.transition` over the arrays: `(state, rewards float32[2], info)`.

    Beyond the grid code: a defense of a padded node or a padded type is no defense, and an attack on
    one is an illegal attack (padded ids are in range, so without this they would act).
    """
    arr = params.scenario
    a = shape.attack_types
    max_value = jnp.asarray(arr.max_value, VALUE_DTYPE)
    live = state.time < params.max_steps_in_episode - 1

    d_in_range, d_node, d_type = decode_defense(shape, defense_action)
    raises_detection = d_type == a
    real_type = arr.type_mask[jnp.minimum(d_type, a - 1)]
    defends = live & d_in_range & arr.node_mask[d_node] & (raises_detection | real_type)
    # One write: type A is `defense_detection`'s detection column (as in idsjax.transition).
    defense_detection = state.defense_detection.at[d_node, d_type].add(
        (defends & (state.defense_detection[d_node, d_type] < max_value)).astype(VALUE_DTYPE)
    )
    defense, detection = defense_detection[:, :a], defense_detection[:, a]

    a_in_range, node, attack_type, is_recon = decode_attack(shape, attack_action)
    reachable = arr.reach[state.position, node] & arr.node_mask[node]
    legal = live & a_in_range & reachable & (is_recon | arr.type_mask[attack_type])
    attacks = legal & ~is_recon
    scouts = legal & is_recon
    attack_before = state.attack[node, attack_type]
    increment = (attacks & (attack_before < max_value)).astype(VALUE_DTYPE)
    attack_value = attack_before + increment
    attack = state.attack.at[node, attack_type].add(increment)

    recon, revealed, recon_targeted = state.recon, state.revealed, state.recon_targeted
    if shape.reconnaissance:
        known = recon[node, attack_type]
        recon = recon.at[node, attack_type].set(jnp.where(attacks & (attack_value > known), attack_value, known))
        recon = recon.at[node].set(jnp.where(scouts, defense[node], recon[node]))
        revealed = revealed.at[node].set(revealed[node] | scouts)
        recon_targeted = recon_targeted.at[node].set(recon_targeted[node] | scouts)

    success = attacks & (attack_value > defense[node, attack_type])
    failure = legal & ~success
    factor = jnp.where(is_recon, arr.detection_factor, 1.0)
    detected = failure & (detection_u < detection[node].astype(jnp.float32) / 10.0 * factor)
    hacked = success & (node == arr.data_node)

    num_hacked = state.num_hacked + success.astype(jnp.int32)
    success_r, hack_r, detect_r, deeper_row = outcome_rewards(
        params,
        defense=defense,
        revealed=revealed,
        failed=state.failed,
        node=node,
        attack_type=attack_type,
        is_recon=is_recon,
        num_failed=state.num_failed,
        furthest_row=state.furthest_row,
        num_hacked=num_hacked,
        attacker_row=arr.layer[state.position],
    )
    return finish_step(
        state,
        (success_r, hack_r, detect_r, jnp.zeros((2,), jnp.float32)),
        live=live,
        legal=legal,
        success=success,
        failure=failure,
        hacked=hacked,
        detected=detected,
        node=node,
        attack_type=attack_type,
        num_hacked=num_hacked,
        deeper_row=deeper_row,
        values=dict(
            attack=attack,
            defense_detection=defense_detection,
            recon=recon,
            revealed=revealed,
            recon_targeted=recon_targeted,
        ),
    )


# -- observations (spec §6) -------------------------------------------------------------------------
def attacker_observation(shape: ScenarioShape, arr: ScenarioArrays, state: EnvState) -> jax.Array:
    """`idsjax.observations.attacker_observation` over the arrays, rows padded to `max_nodes` (local
    views: `local_slots` rows). A partial view shows the attacker's node and its `neighbors`."""
    n = shape.max_nodes
    here = jnp.arange(n) == state.position
    extra = [state.recon, state.revealed[:, None].astype(VALUE_DTYPE)] if shape.reconnaissance else []
    if shape.local_view:
        slots = arr.local_view[state.position]
        ids = jnp.arange(n, dtype=VALUE_DTYPE)[:, None]
        rows = jnp.concatenate([state.attack, ids] + extra, axis=1)
        shown = rows[jnp.maximum(slots, 0)]
        return jnp.where(slots[:, None] >= 0, shown, jnp.asarray(-1, VALUE_DTYPE))
    visible = here | arr.neighbors[state.position] | (arr.view == VIEW_FULL)
    attack = jnp.where(visible[:, None], state.attack, jnp.asarray(0, VALUE_DTYPE))
    return jnp.concatenate([attack, here[:, None].astype(VALUE_DTYPE)] + extra, axis=1)


def defender_observation(state: EnvState) -> jax.Array:
    return state.defense_detection  # stored as the defender sees it


# -- the scripted players (spec §8) -----------------------------------------------------------------
def random_defense(key, state: EnvState, shape: ScenarioShape, params: ScenarioParams) -> jax.Array:
    """Uniform over the legal defense ids (maxed values included). For a built-in grid these are ids
    `0 … (N-1)(A+1)-1`, and the draw is `idsjax.bots.random_defense`'s."""
    del state
    types = jnp.concatenate([params.scenario.type_mask, jnp.ones((1,), bool)])
    mask = (params.scenario.defendable[:, None] & types[None, :]).reshape(-1)
    return uniform_choice(key, mask, shape.attack_types + 1)


def defend_minimal(key, state: EnvState, shape: ScenarioShape, params: ScenarioParams) -> jax.Array:
    """`idsjax.bots.defend_minimal` over the arrays (padded types are never the weakest)."""
    del shape
    arr = params.scenario
    choice = defend_minimal_choice(state.defense, state.detection, arr.defendable, arr.type_mask)
    return sample_defend_minimal(key, choice)


def attack_maximal(key, state: EnvState, shape: ScenarioShape, params: ScenarioParams) -> jax.Array:
    """`idsjax.bots.attack_maximal` over the arrays: push the strongest attack value towards the data
    node (a node of a lower layer), with reconnaissance first scout, then strike the smallest margin."""
    arr = params.scenario
    legal = legal_attacks(shape, state, params)
    if shape.reconnaissance:
        return _attack_maximal_recon(key, state, shape, arr, legal)
    a, n = shape.attack_types, shape.max_nodes
    attack = jnp.where(arr.type_mask[None, :], state.attack.astype(jnp.int32), -1)
    strongest_type = jnp.argmax(attack, axis=1)
    strongest = attack.max(axis=1)
    candidate_id = jnp.arange(n) * a + strongest_type
    upward = arr.layer < arr.layer[state.position]
    candidate = arr.defendable & upward & legal[candidate_id]
    score = jnp.where(candidate, strongest, -1)
    best_node = jnp.argmax(score)
    fallback = uniform_choice(key, legal, a)
    return jnp.where(candidate.any(), candidate_id[best_node], fallback).astype(jnp.int32)


def _attack_maximal_recon(key, state, shape: ScenarioShape, arr: ScenarioArrays, legal):
    width, n = shape.attack_id_width, shape.max_nodes
    ids = jnp.arange(n * width)
    is_recon_id = (ids % width) == shape.attack_types
    revealed = state.revealed[ids // width]
    scout = legal & is_recon_id & ~revealed
    strike = legal & ~is_recon_id & revealed
    recon_padded = jnp.concatenate([state.recon, state.recon[:, :1]], axis=1).reshape(-1)
    attack_padded = jnp.concatenate([state.attack, state.attack[:, :1]], axis=1).reshape(-1)
    margin = jnp.where(strike, recon_padded.astype(jnp.int32) - attack_padded, jnp.iinfo(jnp.int32).max)
    if shape.local_view:
        # A legal local id (slot, kind) is drawn and used as a global id, as the reference does (Q11).
        slots = arr.local_view[state.position]
        local_global = (jnp.maximum(slots, 0)[:, None] * width + jnp.arange(width)[None, :]).reshape(-1)
        local_legal = jnp.repeat(slots >= 0, width) & legal[local_global]
        fallback = uniform_choice(key, local_legal, width)
    else:
        fallback = uniform_choice(key, legal, width)
    choice = jnp.where(strike.any(), jnp.argmin(margin), fallback)
    return jnp.where(scout.any(), jnp.argmax(scout), choice).astype(jnp.int32)


def random_attack(key, state: EnvState, shape: ScenarioShape, params: ScenarioParams) -> jax.Array:
    """Uniform over the legal attack ids, or over all ids when none is legal (§8.4)."""
    return uniform_choice(key, legal_attacks(shape, state, params), shape.attack_id_width)


BOTS = {
    "random_defense": random_defense,
    "defend_minimal": defend_minimal,
    "attack_maximal": attack_maximal,
    "random_attack": random_attack,
}
