"""The 22 versions of gym-idsgame as one table of data, and the five modes as one mapping.

Every number here was read from the reference's constructors (gym-idsgame, `envs/idsgame_env.py`) and
checked by instantiating all 110 classes (spec §10). The registration comments of the reference disagree
with the code in many places (spec §10.3); the code wins.
"""

from __future__ import annotations

import dataclasses
import enum


class RewardFamily(enum.IntEnum):
    """Which reward functions a version uses (spec §7)."""

    SPARSE = 0  # v0-v5
    DENSE = 1  # v6-v15, and v16-v18 whose `dense_rewards_v2` flag behaves exactly like it (Q8)
    DENSE_V3 = 2  # v19-v21
    DENSE_V1_V2 = 3  # both flags at once: defined by the reference, registered by no version (spec §7.5)


@dataclasses.dataclass(frozen=True)
class VersionSpec:
    """The construction numbers and flags of one version (spec §10.1, §10.2).

    Values drawn at every reset of a randomised version are uniform on `min_x … x`
    (defense, attack, detection) and `vulnerability_value … max_vulnerability_value`.
    """

    layers: int  # L, server layers
    servers_per_layer: int  # S, servers per layer (= grid columns)
    attack_types: int  # A
    max_value: int  # M, cap of attack, defense and detection values
    defense_value: int
    attack_value: int
    detection_value: int
    vulnerability_value: int
    vulnerabilities_per_node: int  # draws with replacement of vulnerable types (Q19)
    vulnerable_servers_per_layer: int
    reward: RewardFamily
    min_defense: int = 0
    min_attack: int = 0
    min_detection: int = 0
    max_vulnerability_value: int = 1
    connected_layers: bool = False  # horizontal links inside server rows (v5, v6)
    fully_observed: bool = False
    local_view: bool = False  # local attacker view with offsets above/below (v14, v15, v18)
    reconnaissance: bool = False  # reconnaissance actions and observations (v18-v21)
    randomize_env: bool = False  # fresh layout and values at every reset
    random_start: bool = False  # biased random starting position at reset (Q17)
    randomize_visibility: bool = False  # reveal each node with `visibility_p` at reset (Q18)
    visibility_p: float = 0.0
    max_neighbors_override: int | None = None  # v18 forces `max_neighbors = 2`


_D = RewardFamily.DENSE
_S = RewardFamily.SPARSE
_D3 = RewardFamily.DENSE_V3

# Rows: L, S, A, M, defense, attack, detection, vulnerability value, vulns/node, vulnerable servers/layer.
VERSIONS: tuple[VersionSpec, ...] = (
    VersionSpec(1, 1, 10, 9, 2, 0, 2, 0, 1, 1, _S),  # v0
    VersionSpec(1, 1, 10, 9, 4, 0, 3, 0, 4, 1, _S),  # v1
    VersionSpec(1, 2, 10, 9, 2, 0, 2, 0, 1, 2, _S),  # v2
    VersionSpec(2, 3, 10, 9, 2, 0, 2, 0, 1, 3, _S),  # v3
    VersionSpec(4, 5, 10, 9, 2, 0, 2, 0, 1, 5, _S),  # v4
    VersionSpec(4, 5, 10, 9, 2, 0, 2, 0, 1, 2, _S, connected_layers=True),  # v5
    VersionSpec(4, 5, 10, 9, 2, 0, 2, 0, 1, 2, _D, connected_layers=True),  # v6
    VersionSpec(2, 3, 10, 9, 2, 0, 2, 0, 1, 3, _D),  # v7
    VersionSpec(1, 1, 10, 9, 2, 0, 2, 0, 1, 1, _D),  # v8
    VersionSpec(1, 2, 10, 9, 2, 0, 2, 0, 1, 2, _D),  # v9
    VersionSpec(1, 1, 10, 9, 2, 0, 2, 0, 1, 1, _D, fully_observed=True),  # v10
    VersionSpec(0, 1, 2, 2, 0, 0, 1, 0, 0, 0, _D, fully_observed=True),  # v11
    VersionSpec(
        0,
        1,
        2,
        2,
        1,
        1,
        1,
        0,
        0,
        0,
        _D,
        fully_observed=True,
        randomize_env=True,
        randomize_visibility=True,
        visibility_p=0.5,
    ),  # v12
    VersionSpec(0, 1, 2, 1, 0, 0, 10, 0, 0, 0, _D, fully_observed=True),  # v13
    VersionSpec(
        1,
        1,
        4,
        4,
        4,
        0,
        1,
        0,
        1,
        1,
        _D,
        min_defense=3,
        min_detection=1,
        fully_observed=True,
        local_view=True,
        randomize_env=True,
        randomize_visibility=True,
        visibility_p=0.5,
    ),  # v14
    VersionSpec(
        1,
        2,
        10,
        10,
        4,
        0,
        2,
        0,
        1,
        1,
        _D,
        min_defense=2,
        min_detection=1,
        fully_observed=True,
        local_view=True,
        randomize_env=True,
        randomize_visibility=True,
        visibility_p=0.5,
    ),  # v15
    VersionSpec(
        1,
        1,
        4,
        4,
        4,
        0,
        1,
        0,
        1,
        1,
        _D,
        min_defense=3,
        min_detection=1,
        fully_observed=True,
        randomize_env=True,
        random_start=True,
        randomize_visibility=True,
        visibility_p=0.5,
    ),  # v16
    VersionSpec(
        1,
        1,
        4,
        4,
        4,
        0,
        1,
        0,
        1,
        1,
        _D,
        min_defense=3,
        min_detection=1,
        randomize_env=True,
        random_start=True,
        randomize_visibility=True,
        visibility_p=0.5,
    ),  # v17
    VersionSpec(
        1,
        1,
        4,
        7,
        7,
        0,
        1,
        1,
        1,
        1,
        _D,
        min_defense=7,
        min_detection=1,
        local_view=True,
        reconnaissance=True,
        randomize_env=True,
        random_start=True,
        randomize_visibility=True,
        visibility_p=0.5,
        max_neighbors_override=2,
    ),  # v18
    VersionSpec(
        1,
        2,
        4,
        9,
        9,
        0,
        1,
        1,
        1,
        1,
        _D3,
        min_defense=7,
        min_detection=1,
        reconnaissance=True,
        randomize_env=True,
        random_start=True,
    ),  # v19
    VersionSpec(
        1,
        2,
        4,
        9,
        9,
        0,
        1,
        1,
        1,
        2,
        _D3,
        min_defense=3,
        min_detection=1,
        reconnaissance=True,
        randomize_env=True,
        random_start=True,
    ),  # v20
    VersionSpec(
        1,
        2,
        4,
        9,
        1,
        0,
        1,
        1,
        0,
        2,
        _D3,
        min_defense=1,
        min_detection=1,
        reconnaissance=True,
        randomize_env=True,
        random_start=True,
    ),  # v21
)


class Mode(enum.Enum):
    """Who plays which side: the caller, or a scripted bot (spec §9.1)."""

    TWO_AGENT = ""
    RANDOM_DEFENSE = "random_defense"
    MINIMAL_DEFENSE = "minimal_defense"
    RANDOM_ATTACK = "random_attack"
    MAXIMAL_ATTACK = "maximal_attack"

    @property
    def learner(self) -> str:
        """The side the caller plays: "attacker", "defender" or "both"."""
        if self is Mode.TWO_AGENT:
            return "both"
        return "attacker" if self in (Mode.RANDOM_DEFENSE, Mode.MINIMAL_DEFENSE) else "defender"

    @property
    def attacker_bot(self) -> str | None:
        return {Mode.RANDOM_ATTACK: "random_attack", Mode.MAXIMAL_ATTACK: "attack_maximal"}.get(self)

    @property
    def defender_bot(self) -> str | None:
        return {Mode.RANDOM_DEFENSE: "random_defense", Mode.MINIMAL_DEFENSE: "defend_minimal"}.get(self)


def version_spec(version: int, mode: Mode) -> VersionSpec:
    """The numbers of one (version, mode) pair.

    The modes share their version's numbers with one exception of the reference: `maximal_attack-v16`
    and `-v17` start with detection 4 and draw defense and detection from `1 … 4` (spec §10.1).
    """
    spec = VERSIONS[version]
    if mode is Mode.MAXIMAL_ATTACK and version in (16, 17):
        spec = dataclasses.replace(spec, detection_value=4, min_defense=1)
    return spec


def env_id(version: int, mode: Mode) -> str:
    return f"idsgame-v{version}" if mode is Mode.TWO_AGENT else f"idsgame-{mode.value}-v{version}"


ENV_IDS: tuple[str, ...] = tuple(env_id(v, m) for m in Mode for v in range(len(VERSIONS)))
