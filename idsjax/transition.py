"""One call of the reference's `step()` as a pure function of the state, both players' ids and the
detection uniform (spec §4.2). Randomness enters only through `detection_u`, so tests can feed the
reference's recorded draws and compare bit for bit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from idsjax.actions import decode_attack, decode_defense
from idsjax.config import GameConfig
from idsjax.rewards import outcome_rewards
from idsjax.types import VALUE_DTYPE, EnvParams, EnvState

TIMEOUT_REWARD = -100.0
ILLEGAL_ATTACK_REWARD = -1.0


def transition(
    config: GameConfig,
    state: EnvState,
    attack_action: jax.Array,
    defense_action: jax.Array,
    detection_u: jax.Array,
    params: EnvParams,
) -> tuple[EnvState, jax.Array, dict]:
    """Apply one joint action given as global ids.

    Order (§4.2): step-limit guard; defense (always, start node included, Q2); then, if the attack is
    positionally legal, the attack or reconnaissance, success iff attack > defense, otherwise a
    failure that may be detected with probability `detection/10` (× factor for reconnaissance, Q7).
    Returns `(state, rewards float32[2] (attacker, defender), info)`.

    Past the step limit (`time > max_steps_in_episode`) the call changes nothing but `timed_out` and
    pays (-100, -100) to both players (Q4). After `done` the game keeps simulating, as in the reference
    (Q29); the environments auto-reset before that can happen.
    """
    net = config.network
    n, a = config.num_nodes, config.attack_types
    max_value = jnp.asarray(params.max_value, VALUE_DTYPE)
    nodes = jnp.arange(n)
    types = jnp.arange(a)

    # Defense, before the attack.
    d_in_range, d_node, d_type = decode_defense(config, defense_action)
    d_node_hot = (nodes == d_node) & d_in_range
    raise_detection = d_node_hot & (d_type == a) & (state.detection < max_value)
    detection = state.detection + raise_detection.astype(VALUE_DTYPE)
    raise_defense = d_node_hot[:, None] & (types == d_type)[None, :] & (state.defense < max_value)
    defense = state.defense + raise_defense.astype(VALUE_DTYPE)

    # Attack or reconnaissance.
    a_in_range, node, attack_type, is_recon = decode_attack(config, attack_action)
    legal = a_in_range & jnp.asarray(net.attack_reachable)[state.position, node]
    node_hot = nodes == node
    cell = node_hot[:, None] & (types == attack_type)[None, :]
    attacks = legal & ~is_recon
    scouts = legal & is_recon
    attack = state.attack + (cell & attacks & (state.attack < max_value)).astype(VALUE_DTYPE)

    recon, revealed, recon_targeted = state.recon, state.revealed, state.recon_targeted
    recon_reward = jnp.float32(0.0)
    if config.reconnaissance:
        # Knowledge is a snapshot that only an attack value above it overwrites (Q36).
        recon = jnp.where(cell & attacks & (attack > recon), attack, recon)
        if config.reconnaissance_reward:
            already_known = jnp.all(jnp.where(node_hot[:, None], recon == defense, True))
            recon_reward = jnp.where(already_known, -0.5, 0.5).astype(jnp.float32)
        recon = jnp.where(node_hot[:, None] & scouts, defense, recon)
        revealed = revealed | (node_hot & scouts)
        recon_targeted = recon_targeted | (node_hot & scouts)

    attack_value = jnp.where(cell, attack, 0).max()
    defense_value = jnp.where(cell, defense, 0).max()
    success = attacks & (attack_value > defense_value)
    failure = legal & ~success
    factor = jnp.where(is_recon, params.detection_factor, 1.0)
    detect_p = jnp.where(node_hot, detection, 0).max().astype(jnp.float32) / 10.0 * factor
    detected = failure & (detection_u < detect_p)
    hacked = success & (node == net.data_node)

    num_hacked = state.num_hacked + success.astype(jnp.int32)
    failed = state.failed + (cell & failure).astype(VALUE_DTYPE)
    success_r, hack_r, detect_r, deeper_row = outcome_rewards(
        config,
        params,
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
        attacker_row=jnp.asarray(net.node_row)[state.position],
    )
    legal_reward = jnp.stack([recon_reward, jnp.float32(0.0)])
    reward = jnp.where(success, jnp.where(hacked, hack_r, success_r), legal_reward)
    reward = jnp.where(detected, detect_r, reward)
    reward = jnp.where(legal, reward, jnp.array([ILLEGAL_ATTACK_REWARD, 0.0], jnp.float32))

    stepped = state.replace(
        attack=attack,
        defense=defense,
        detection=detection,
        recon=recon,
        revealed=revealed,
        recon_targeted=recon_targeted,
        position=jnp.where(success, node, state.position).astype(jnp.int32),
        time=state.time + 1,
        done=state.done | hacked | detected,
        hacked=state.hacked | hacked,
        detected=state.detected | detected,
        failed=failed,
        num_failed=jnp.where(success, 0, state.num_failed + failure.astype(jnp.int32)),
        furthest_row=jnp.where(success & ~hacked, deeper_row, state.furthest_row).astype(jnp.int32),
        num_hacked=num_hacked,
        timed_out=jnp.bool_(False),
    )

    timeout = state.time > params.max_steps_in_episode
    next_state = jax.tree.map(lambda old, new: jnp.where(timeout, old, new), state.replace(timed_out=True), stepped)
    reward = jnp.where(timeout, jnp.full((2,), TIMEOUT_REWARD, jnp.float32), reward)
    info = {
        "moved": success & ~timeout,
        "hacked": hacked & ~timeout,
        "detected": detected & ~timeout,
        "attack_legal": legal & ~timeout,
        "timed_out": timeout,
    }
    return next_state, reward, info
