"""The scenario format: one game described as data, checked field by field when it is loaded.

A scenario is a directed graph from a start node to a data node plus the numbers of one game (values,
vulnerabilities, rewards, observation, step limit, opponents). It loads from a YAML file, a dict or a
`Scenario` object; anything wrong is refused at load time with a `ScenarioError` whose message is one
sentence naming the source, the field and what was expected. Nothing later (the padded arrays, the
jitted environment) can raise, so everything is checked here. The format is described in
docs/scenarios.md.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

FORMAT_VERSION = 1
# Attack, defense and detection values live in int8 and 10 marks an unknown defense in the attacker's
# reconnaissance view (spec §2.1), so no cap may exceed 10.
MAX_VALUE_CAP = 10
# Detection values are probabilities in tenths (a failed attack is detected with probability
# detection/10), so they are bounded by 10, not by the game's cap: v13 starts at 10 with a cap of 1.
MAX_DETECTION = 10
MAX_ATTACK_TYPES = 32

ROLES = ("start", "server", "data")
REWARD_FAMILIES = ("sparse", "dense", "dense_v3", "dense_v1_v2")
ATTACKER_BOTS = ("random_attack", "attack_maximal")
DEFENDER_BOTS = ("random_defense", "defend_minimal")


class ScenarioError(ValueError):
    """A scenario that cannot be played; the message is one sentence naming source, field and expectation."""


class _Model(BaseModel):
    # strict: a string is not an integer, a float is not an integer, a bool is not a number.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Range(_Model):
    """Inclusive bounds of a value; an integer `v` in a file is shorthand for `{min: v, max: v}`."""

    min: int = Field(ge=0)
    max: int = Field(ge=0)


def _range_from_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return {"min": value, "max": value}
    return value


ValueRange = Annotated[Range, BeforeValidator(_range_from_int)]
NodeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Pair = Annotated[list[NodeId], Field(min_length=2, max_length=2)]


class Node(_Model):
    """One node. Values given here override the scenario-wide `values` for this node."""

    id: NodeId
    role: Literal["start", "server", "data"]
    position: Annotated[list[float], Field(min_length=2, max_length=2)]  # (x, y) for drawing
    layer: int | None = Field(default=None, ge=0)  # depth: 0 at the data node; default: moves to data
    attack: ValueRange | None = None
    defense: ValueRange | None = None
    detection: ValueRange | None = None
    vulnerability: ValueRange | None = None
    vulnerable: list[Annotated[int, Field(ge=0)]] | None = None  # attack types always vulnerable here
    start_weight: int | None = Field(default=None, ge=0)  # weight of starting here (random starts)
    local_view: list[NodeId | None] | None = None  # the nodes shown in the local-view slots from here


class Values(_Model):
    """Scenario-wide value ranges, per attack type for attack and defense, per node for detection.

    Without `randomize`, a game starts with each range's upper end (the vulnerability value: its lower
    end), as the reference's non-randomised versions do; with it, every value is drawn uniformly from its
    range at every reset.
    """

    attack: ValueRange = Range(min=0, max=0)
    defense: ValueRange = Range(min=2, max=2)
    detection: ValueRange = Range(min=2, max=2)
    vulnerability: ValueRange = Range(min=0, max=0)


class Vulnerabilities(_Model):
    """How the vulnerable (node, type) pairs are drawn, once per seed or at every reset (spec §3.2).

    Each layer gets `per_layer` distinct vulnerable servers; each vulnerable server, and the data node
    when `data_always`, gets `per_node` type draws with replacement. Types listed in a node's
    `vulnerable` are vulnerable in addition, always.
    """

    per_layer: int = Field(default=1, ge=0)
    per_node: int = Field(default=1, ge=0)
    data_always: bool = True


class Observation(_Model):
    view: Literal["partial", "full", "local"] = "partial"
    reconnaissance: bool = False
    visibility_p: float = Field(default=0.0, ge=0.0, le=1.0)  # reveal each node at randomised resets
    local_slots: int | None = Field(default=None, ge=1)  # rows of the local view (default: 2)


class Opponents(_Model):
    """The scripted players this scenario's modes may use."""

    attacker: list[Literal["random_attack", "attack_maximal"]] = list(ATTACKER_BOTS)
    defender: list[Literal["random_defense", "defend_minimal"]] = list(DEFENDER_BOTS)


class Scenario(_Model):
    format: Literal[1] = FORMAT_VERSION
    name: NodeId
    description: str = ""
    attack_types: int = Field(ge=1, le=MAX_ATTACK_TYPES)
    max_value: int = Field(ge=1, le=MAX_VALUE_CAP)
    nodes: list[Node] = Field(min_length=2)
    edges: list[Pair] = Field(default_factory=list)  # [from, to]: from `from` the attacker may attack `to`
    lateral: list[Pair] = Field(default_factory=list)  # links usable in both directions
    values: Values = Values()
    vulnerabilities: Vulnerabilities = Vulnerabilities()
    randomize: bool = False  # draw values and vulnerabilities afresh at every reset
    rewards: Literal["sparse", "dense", "dense_v3", "dense_v1_v2"] = "sparse"
    observation: Observation = Observation()
    max_steps: int = Field(default=102, ge=2, le=127)  # failure counts are int8 (idsjax.types)
    detection_factor: float = Field(default=1.0, ge=0.0)
    opponents: Opponents = Opponents()

    _source: str = PrivateAttr(default="<scenario>")

    @property
    def source(self) -> str:
        return self._source

    # -- derived, for the conversion to arrays --------------------------------------------------
    def index(self) -> dict[str, int]:
        return {node.id: i for i, node in enumerate(self.nodes)}

    def node_of_role(self, role: str) -> int:
        return next(i for i, node in enumerate(self.nodes) if node.role == role)

    def attack_pairs(self) -> list[tuple[int, int]]:
        """Every (from, to) node pair along which the attacker may attack: edges, and laterals both ways."""
        ix = self.index()
        pairs = [(ix[a], ix[b]) for a, b in self.edges]
        pairs += [(ix[a], ix[b]) for a, b in self.lateral] + [(ix[b], ix[a]) for a, b in self.lateral]
        return pairs

    def layers(self) -> list[int]:
        """Each node's layer: as given, or its number of moves to the data node (breadth-first)."""
        n = len(self.nodes)
        backward = collections.defaultdict(list)
        for p, q in self.attack_pairs():
            backward[q].append(p)
        dist = [-1] * n
        data = self.node_of_role("data")
        dist[data], frontier = 0, [data]
        while frontier:
            nxt = []
            for q in frontier:
                for p in backward[q]:
                    if dist[p] < 0:
                        dist[p] = dist[q] + 1
                        nxt.append(p)
            frontier = nxt
        return [node.layer if node.layer is not None else dist[i] for i, node in enumerate(self.nodes)]

    def local_slots(self) -> int:
        return self.observation.local_slots or 2


def _fail(source: str, field: str, expected: str) -> ScenarioError:
    return ScenarioError(f"{source}: field `{field}`: {expected}.")


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-before[_range_from_int(), Range]",):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _pydantic_message(source: str, err: ValidationError, data: Any) -> ScenarioError:
    e = err.errors(include_url=False)[0]
    field = _loc(tuple(p for p in e["loc"] if not (isinstance(p, str) and "[" in p and "(" in p)))
    kind = e["type"]
    if kind == "extra_forbidden":
        return _fail(source, field, "unknown field (see docs/scenarios.md for the fields a scenario may have)")
    if kind == "missing":
        return _fail(source, field, "missing, a value is required")
    got = e.get("input")
    got_text = repr(got) if not isinstance(got, dict | list) or len(repr(got)) < 60 else type(got).__name__
    msg = e["msg"][0].lower() + e["msg"][1:]
    if kind in ("model_type", "dict_type") and field.endswith(("attack", "defense", "detection", "vulnerability")):
        msg = "expected an integer or a mapping {min: INT, max: INT}"
    return _fail(source, field, f"{msg}, got {got_text}")


def _check_value(source, field, rng: Range, cap: int, cap_name: str):
    if rng.min > rng.max:
        raise _fail(source, field, f"expected min <= max, got min {rng.min} > max {rng.max}")
    if rng.max > cap:
        raise _fail(source, field, f"expected values at most {cap_name} = {cap}, got {rng.max}")


def _check(s: Scenario) -> None:
    """The rules one field alone cannot say: references, roles, caps, reachability."""
    src = s.source
    seen: dict[str, int] = {}
    for i, node in enumerate(s.nodes):
        if node.id in seen:
            raise _fail(
                src, f"nodes[{i}].id", f"expected a unique node id, but {node.id!r} is also nodes[{seen[node.id]}]"
            )
        seen[node.id] = i
    for role in ("start", "data"):
        count = sum(node.role == role for node in s.nodes)
        if count != 1:
            raise _fail(src, "nodes", f"expected exactly one node with role {role}, got {count}")

    for name, pairs in (("edges", s.edges), ("lateral", s.lateral)):
        for k, pair in enumerate(pairs):
            for j, node_id in enumerate(pair):
                if node_id not in seen:
                    raise _fail(
                        src, f"{name}[{k}][{j}]", f"expected the id of a node, got {node_id!r}, which no node has"
                    )
            if pair[0] == pair[1]:
                raise _fail(src, f"{name}[{k}]", f"expected two different nodes, got {pair[0]!r} twice")

    data_id = s.nodes[s.node_of_role("data")].id
    for k, (a, b) in enumerate(s.edges):
        if a == data_id:
            raise _fail(
                src,
                f"edges[{k}]",
                f"expected no edge leaving the data node {data_id!r} (the game ends when it is hacked, so no "
                f"attack is ever made from it), got [{a!r}, {b!r}]",
            )
    linked = {node_id for pair in s.edges + s.lateral for node_id in pair}
    for i, node in enumerate(s.nodes):
        if node.role == "server" and node.id not in linked:
            raise _fail(
                src,
                f"nodes[{i}]",
                f"expected every server in an edge or lateral link, but server {node.id!r} has no edge or lateral "
                "link, so the attacker can never reach it (connect it or remove it)",
            )

    caps = {
        "attack": (s.max_value, "max_value"),
        "defense": (s.max_value, "max_value"),
        "vulnerability": (s.max_value, "max_value"),
        "detection": (MAX_DETECTION, "the detection maximum"),
    }
    for name, (cap, cap_name) in caps.items():
        _check_value(src, f"values.{name}", getattr(s.values, name), cap, cap_name)
    for i, node in enumerate(s.nodes):
        for name, (cap, cap_name) in caps.items():
            rng = getattr(node, name)
            if rng is not None:
                _check_value(src, f"nodes[{i}].{name}", rng, cap, cap_name)
        for j, t in enumerate(node.vulnerable or ()):
            if t >= s.attack_types:
                raise _fail(
                    src,
                    f"nodes[{i}].vulnerable[{j}]",
                    f"expected an attack type below attack_types = {s.attack_types}, got {t}",
                )
        if node.start_weight and node.role == "data":
            raise _fail(src, f"nodes[{i}].start_weight", "expected no start weight on the data node, got one")
        if node.local_view is not None:
            if s.observation.view != "local":
                raise _fail(src, f"nodes[{i}].local_view", "expected no local_view unless observation.view is local")
            if len(node.local_view) != s.local_slots():
                raise _fail(
                    src,
                    f"nodes[{i}].local_view",
                    f"expected {s.local_slots()} slots (observation.local_slots), got {len(node.local_view)}",
                )
            for j, q in enumerate(node.local_view):
                if q is not None and q not in seen:
                    raise _fail(src, f"nodes[{i}].local_view[{j}]", f"expected the id of a node or null, got {q!r}")
    weights = [node.start_weight for node in s.nodes if node.start_weight is not None]
    if weights and sum(weights) == 0:
        raise _fail(src, "nodes[].start_weight", "expected start weights with a positive sum, got all zero")
    if s.observation.local_slots is not None and s.observation.view != "local":
        raise _fail(src, "observation.local_slots", "expected no local_slots unless observation.view is local")
    if s.vulnerabilities.per_node > s.attack_types and s.vulnerabilities.per_node > 0:
        pass  # draws with replacement: more draws than types is allowed, as in the reference

    # Reachability: the data node must be reachable from the start node along attack moves.
    forward = collections.defaultdict(list)
    for p, q in s.attack_pairs():
        forward[p].append(q)
    start, data = s.node_of_role("start"), s.node_of_role("data")
    reached, frontier = {start}, [start]
    while frontier:
        frontier = [q for p in frontier for q in forward[p] if q not in reached]
        reached.update(frontier)
    if data not in reached:
        raise _fail(
            src,
            "edges",
            f"expected a path from the start node {s.nodes[start].id!r} to the data node "
            f"{s.nodes[data].id!r}, but the edges give none",
        )


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(key)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a mapping that gives a key twice is refused: YAML says keys are unique,
    and PyYAML keeps the last one silently (`max_steps: 60` then `max_steps: 100` would load as 100)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                # `<<` merges another mapping in, whose keys the explicit ones may override (YAML's intent).
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.get(key)
                except TypeError:  # an unhashable key: PyYAML refuses it below with its own message
                    continue
                line = key_node.start_mark.line + 1
                if seen is not None:
                    raise _DuplicateKey(key, line, seen)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


def load_scenario(obj: str | os.PathLike | dict | Scenario, source: str | None = None) -> Scenario:
    """A checked `Scenario` from a YAML file path, a dict (e.g. parsed JSON), a dataclass instance whose
    fields are the scenario's (`dataclasses.asdict`) or a `Scenario`.

    Raises `ScenarioError` with one sentence naming the source, the field and what was expected.
    """
    if isinstance(obj, Scenario):
        data, source = obj.model_dump(), source or obj.source
    elif isinstance(obj, dict):
        data, source = obj, source or "<dict>"
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        data, source = dataclasses.asdict(obj), source or f"<{type(obj).__name__}>"
    elif isinstance(obj, str | os.PathLike):
        source = source or os.fspath(obj)
        try:
            with open(obj, encoding="utf-8") as f:
                data = yaml.load(f, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
        except OSError as exc:
            raise ScenarioError(f"{source}: cannot be read ({exc.strerror or exc}).") from None
        except _DuplicateKey as exc:
            raise ScenarioError(
                f"{source}: line {exc.line}: field `{exc.key}` is given twice (first at line {exc.first_line}),"
                " expected each field once."
            ) from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
            raise ScenarioError(f"{source}: is not valid YAML{at} ({getattr(exc, 'problem', None) or exc}).") from None
    else:
        raise ScenarioError(
            f"{source or '<scenario>'}: expected a file path, a dict or a Scenario, got {type(obj).__name__}."
        )
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: field `(top level)`: expected a mapping of fields, got {type(data).__name__}.")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise _pydantic_message(source, err, data) from None
    scenario._source = source
    _check(scenario)
    return scenario


def dump_scenario(scenario: Scenario) -> str:
    """YAML text of a scenario, every field explicit (unset optional node fields left out)."""

    def compact(x):
        if isinstance(x, dict):
            if set(x) == {"min", "max"} and x["min"] == x["max"]:
                return x["min"]
            return {k: compact(v) for k, v in x.items()}
        if isinstance(x, list):
            return [compact(v) for v in x]
        if isinstance(x, float) and x.is_integer():
            return int(x)
        return x

    data = compact(scenario.model_dump(exclude_none=True))
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)
