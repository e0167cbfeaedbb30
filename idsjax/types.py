"""The pytrees of the game: the state of one game, and the numbers of one instance."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment

# Attack, defense, detection and reconnaissance values never exceed 10 (spec §2.1), and failure counts
# never exceed the 101 moves of a default episode: one byte each keeps the state and observations small.
# (A horizon of more than 128 moves would let a per-(node, type) failure count wrap.)
VALUE_DTYPE = "int8"


def _replace_state(state: EnvState, **updates) -> EnvState:
    """`dataclasses.replace`, where `defense` and `detection` may also be given apart."""
    defense, detection = updates.pop("defense", None), updates.pop("detection", None)
    if defense is not None or detection is not None:
        joined = updates.get("defense_detection", state.defense_detection)
        if defense is not None:
            joined = joined.at[..., :-1].set(jnp.asarray(defense, joined.dtype))
        if detection is not None:
            joined = joined.at[..., -1].set(jnp.asarray(detection, joined.dtype))
        updates["defense_detection"] = joined
    return dataclasses.replace(state, **updates)


def state_dataclass(cls):
    """`flax.struct.dataclass` for `EnvState` and its subclasses: flax gives every such class a plain
    `replace`; this one also takes `defense` and `detection` apart (`EnvState.replace`)."""
    cls = struct.dataclass(cls)
    cls.replace = _replace_state
    return cls


@state_dataclass
class EnvState(environment.EnvState):
    """One game (spec §2). `time` is the reference's `game_step`.

    attack, recon: int8[N, A]; defense_detection: int8[N, A + 1], per node its A defense values and
    then its detection value (read them as `defense` and `detection`); revealed: bool[N] (nodes whose
    defenses were revealed by reconnaissance or visibility randomisation); position: the attacker's
    node id; failed: int8[N, A] failed attempts per (node, type) this episode (reconnaissance counts
    as type 0); num_failed: consecutive legal non-successful attacks since the last success;
    furthest_row: the lowest row reached (dense rewards); num_hacked: successful moves this episode;
    recon_targeted: nodes targeted by a reconnaissance action this episode; timed_out: this
    transition was the step-limit penalty (spec Q4).

    Why defense and detection share one array: it is the defender's observation (spec §6.5) as it
    is stored, so observing it copies nothing, and a defense id `node·(A+1) + type` is its flat index,
    so a step changes it with one write (benchmarks/NOTES.md §12). `EnvState.create` and `replace`
    take `defense` and `detection` apart as well. Every field may carry leading batch axes.
    """

    attack: jax.Array
    defense_detection: jax.Array
    recon: jax.Array
    revealed: jax.Array
    position: jax.Array
    done: jax.Array
    hacked: jax.Array
    detected: jax.Array
    failed: jax.Array
    num_failed: jax.Array
    furthest_row: jax.Array
    num_hacked: jax.Array
    recon_targeted: jax.Array
    timed_out: jax.Array

    @property
    def defense(self) -> jax.Array:
        """int8[..., N, A]: every node's defense value per attack type."""
        return self.defense_detection[..., :-1]

    @property
    def detection(self) -> jax.Array:
        """int8[..., N]: every node's detection value."""
        return self.defense_detection[..., -1]

    @classmethod
    def create(cls, *, defense=None, detection=None, **fields) -> EnvState:
        """An `EnvState` from its fields, `defense` and `detection` given apart (or `defense_detection`)."""
        if defense is not None or detection is not None:
            fields["defense_detection"] = join_defense_detection(defense, detection)
        return cls(**fields)


def join_defense_detection(defense, detection) -> jax.Array:
    """`EnvState.defense_detection` from `defense` [..., N, A] and `detection` [..., N]."""
    if defense is None or detection is None:
        raise TypeError("defense and detection are given together (or as defense_detection)")
    defense = jnp.asarray(defense)
    return jnp.concatenate([defense, jnp.asarray(detection, defense.dtype)[..., None]], axis=-1)


@struct.dataclass
class EnvParams(environment.EnvParams):
    """The traced numbers of one instance: stack several and `vmap` over them.

    `initial_*` is the construction-time layout (spec §3.1, Q20) that non-randomised versions restore
    at every reset and that dense-v3 rewards measure against (`reference_defense_score`, Q23).
    The `*_range` pairs are the inclusive bounds of the values drawn at each reset of randomised
    versions (§3.2).

    `max_steps_in_episode` is the horizon, gymnax's meaning: an episode has at most this many
    transitions, and the last of them, if the game gets that far, is the step-limit one (truncated,
    -100 to both players, spec Q4). The default 102 is the reference's `max_steps = 100`: 101 moves,
    then the step-limit call.
    """

    max_steps_in_episode: int = 102
    max_value: jax.Array = 9
    detection_factor: jax.Array = 1.0  # reconnaissance detection probability factor
    visibility_p: jax.Array = 0.0
    vulnerabilities_per_node: jax.Array = 1
    vulnerable_servers_per_layer: jax.Array = 1
    defense_range: jax.Array = (0, 0)
    attack_range: jax.Array = (0, 0)
    detection_range: jax.Array = (0, 0)
    vulnerability_range: jax.Array = (0, 0)
    initial_attack: jax.Array = None
    initial_defense: jax.Array = None
    initial_detection: jax.Array = None
    initial_recon: jax.Array = None
    reference_defense_score: jax.Array = 0.0
