"""One call of the reference's `step()` as a pure function of the state, both players' ids and the
detection uniform (spec §4.2). Randomness enters only through `detection_u`, so tests can feed the
reference's recorded draws and compare bit for bit.

A step changes at most one defense or detection value, one attack value, one failure count and one
reconnaissance row. Each is written with a single-element scatter, and the step-limit guard is folded
into those writes, rather than rebuilding whole arrays with masks: on a CPU this is about four times
faster for the same result (benchmarks/NOTES.md).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from idsjax.actions import decode_attack, decode_defense
from idsjax.arrays import ScenarioArrays, ScenarioShape, all_true
from idsjax.rewards import outcome_rewards
from idsjax.types import VALUE_DTYPE, EnvState

TIMEOUT_REWARD = -100.0
ILLEGAL_ATTACK_REWARD = -1.0


def transition(
    shape: ScenarioShape,
    arrays: ScenarioArrays,
    state: EnvState,
    attack_action: jax.Array,
    defense_action: jax.Array,
    detection_u: jax.Array,
    params: Any,
) -> tuple[EnvState, jax.Array, dict]:
    """Apply one joint action given as global ids, on the network `arrays` of `shape`.

    Order (§4.2): step-limit guard; defense (always, start node included, Q2); then, if the attack is
    positionally legal, the attack or reconnaissance, success iff attack > defense, otherwise a
    failure that may be detected with probability `detection/10` (× factor for reconnaissance, Q7).
    Returns `(state, rewards float32[2] (attacker, defender), info)`. From `params` it reads the
    horizon (`max_steps_in_episode`) and the construction-time layout's `reference_defense_score`.

    The step limit: `params.max_steps_in_episode` (M) counts every transition of an episode, the
    step-limit one included. The first M - 1 calls are moves; a call at `time >= M - 1` changes nothing
    but `timed_out` and pays (-100, -100) to both players (Q4). The reference's `max_steps = m` is
    M = m + 2: its m + 1 moves (it checks `game_step > m` before moving), then the step-limit call.
    After `done` the game keeps simulating, as in the reference (Q29); the environments auto-reset
    before that can happen.

    Where the network is in the params, a defense of a padded node or a padded type is no defense, and
    an attack on one is an illegal attack (padded ids are in range, so without this they would act);
    a registered id's network has no padding, and those gates are not in its program.
    """
    a = shape.attack_types
    max_value = jnp.asarray(arrays.max_value, VALUE_DTYPE)
    # The reference returns before touching anything once the limit is passed; every write below
    # is gated on `live` so that call leaves the state as it was. `time` counts the moves made, so
    # the M-th transition of an episode is the first that is not live.
    live = state.time < params.max_steps_in_episode - 1
    every_node, every_type = all_true(arrays.node_mask), all_true(arrays.type_mask)

    # Defense, before the attack: one write, since a defense id's (node, type) indexes
    # `defense_detection` directly, type A being the detection column.
    d_in_range, d_node, d_type = decode_defense(shape, defense_action)
    defends = live & d_in_range
    if not every_node:
        defends = defends & arrays.node_mask[d_node]
    if not every_type:
        defends = defends & ((d_type == a) | arrays.type_mask[jnp.minimum(d_type, a - 1)])
    defense_detection = state.defense_detection.at[d_node, d_type].add(
        (defends & (state.defense_detection[d_node, d_type] < max_value)).astype(VALUE_DTYPE)
    )
    defense, detection = defense_detection[:, :a], defense_detection[:, a]

    # Attack or reconnaissance.
    a_in_range, node, attack_type, is_recon = decode_attack(shape, attack_action)
    legal = live & a_in_range & jnp.asarray(arrays.reach)[state.position, node]
    if not every_node:
        legal = legal & arrays.node_mask[node]
    if not every_type:
        legal = legal & (is_recon | arrays.type_mask[attack_type])
    attacks = legal & ~is_recon
    scouts = legal & is_recon
    attack_before = state.attack[node, attack_type]
    increment = (attacks & (attack_before < max_value)).astype(VALUE_DTYPE)
    attack_value = attack_before + increment
    attack = state.attack.at[node, attack_type].add(increment)

    recon, revealed, recon_targeted = state.recon, state.revealed, state.recon_targeted
    recon_reward = jnp.float32(0.0)
    if shape.reconnaissance:
        # Knowledge is a snapshot that only an attack value above it overwrites (Q36).
        known = recon[node, attack_type]
        recon = recon.at[node, attack_type].set(jnp.where(attacks & (attack_value > known), attack_value, known))
        if shape.reconnaissance_reward:
            already_known = jnp.all(recon[node] == defense[node])
            recon_reward = jnp.where(scouts, jnp.where(already_known, -0.5, 0.5), 0.0).astype(jnp.float32)
        recon = recon.at[node].set(jnp.where(scouts, defense[node], recon[node]))
        revealed = revealed.at[node].set(revealed[node] | scouts)
        recon_targeted = recon_targeted.at[node].set(recon_targeted[node] | scouts)

    success = attacks & (attack_value > defense[node, attack_type])
    failure = legal & ~success
    factor = jnp.where(is_recon, arrays.detection_factor, 1.0)
    detected = failure & (detection_u < detection[node].astype(jnp.float32) / 10.0 * factor)
    hacked = success & (node == arrays.data_node)

    num_hacked = state.num_hacked + success.astype(jnp.int32)
    success_r, hack_r, detect_r, deeper_row = outcome_rewards(
        shape,
        arrays,
        params.reference_defense_score,
        defense=defense,
        revealed=revealed,
        recon_targeted=recon_targeted,
        failed=state.failed,
        node=node,
        attack_type=attack_type,
        is_recon=is_recon,
        num_failed=state.num_failed,
        furthest_row=state.furthest_row,
        num_hacked=num_hacked,
        attacker_row=jnp.asarray(arrays.layer)[state.position],
    )
    return finish_step(
        state,
        (success_r, hack_r, detect_r, jnp.stack([recon_reward, 0.0])),
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


def finish_step(state, rewards, *, live, legal, success, failure, hacked, detected, node, attack_type, num_hacked,
                deeper_row, values: dict):  # fmt: skip
    """A step's rewards, next state and info once its outcome is decided. `rewards`: the pairs for a
    success, a hack, a detection and a legal move with none of them; `values`: the step's new attack,
    defense, detection and reconnaissance arrays."""
    success_r, hack_r, detect_r, no_outcome = rewards
    reward = jnp.where(success, jnp.where(hacked, hack_r, success_r), no_outcome)
    reward = jnp.where(detected, detect_r, reward)
    reward = jnp.where(legal, reward, jnp.array([ILLEGAL_ATTACK_REWARD, 0.0], jnp.float32))
    reward = jnp.where(live, reward, jnp.full((2,), TIMEOUT_REWARD, jnp.float32))

    next_state = state.replace(
        **values,
        position=jnp.where(success, node, state.position).astype(jnp.int32),
        time=state.time + live.astype(jnp.int32),
        done=state.done | hacked | detected,
        hacked=state.hacked | hacked,
        detected=state.detected | detected,
        failed=state.failed.at[node, attack_type].add(failure.astype(VALUE_DTYPE)),
        num_failed=jnp.where(success, 0, state.num_failed + failure.astype(jnp.int32)),
        furthest_row=jnp.where(success & ~hacked, deeper_row, state.furthest_row).astype(jnp.int32),
        num_hacked=num_hacked,
        timed_out=~live,
    )
    info = {"moved": success, "hacked": hacked, "detected": detected, "attack_legal": legal, "timed_out": ~live}
    return next_state, reward, info
