"""Loading scenarios: files, dicts, dataclasses and Scenario objects give the same game; every kind of bad
input is refused at load time with one sentence naming the source, the field and what was expected."""

from __future__ import annotations

import copy
import dataclasses
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
import yaml

from idsjax.network import DATA, SERVER, START
from idsjax.scenario import ScenarioError, ScenarioShape, load_scenario, shape_of, to_arrays
from idsjax.scenario.__main__ import main as scenario_cli
from idsjax.scenario.schema import dump_scenario

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "scenarios" / "examples").glob("*.yaml"))

BASE = {
    "name": "tiny",
    "attack_types": 2,
    "max_value": 5,
    "nodes": [
        {"id": "d", "role": "data", "position": [0, 0]},
        {"id": "a", "role": "server", "position": [0, 1], "defense": 3, "vulnerable": [1]},
        {"id": "b", "role": "server", "position": [1, 1]},
        {"id": "s", "role": "start", "position": [0, 2]},
    ],
    "edges": [["s", "a"], ["a", "d"]],
    "lateral": [["a", "b"]],
}


def test_at_least_three_example_shapes_load_and_one_is_not_a_grid():
    assert len(EXAMPLES) >= 3
    sizes = set()
    for path in EXAMPLES:
        s = load_scenario(path)
        arr = jax.tree.map(np.asarray, to_arrays(s))
        sizes.add(len(s.nodes))
        assert arr.node_mask.all() and (arr.reach[arr.start_node].any())
    assert len(sizes) == len(EXAMPLES)  # different shapes
    office = load_scenario(ROOT / "scenarios" / "examples" / "office_dmz.yaml")
    arr = jax.tree.map(np.asarray, to_arrays(office))
    ix = office.index()
    # Not a grid: a server with two ways in at different depths, and a lateral link used both ways.
    assert arr.reach[ix["ws1"], ix["ws2"]] and arr.reach[ix["ws2"], ix["ws1"]]
    assert arr.reach[ix["web"], ix["app"]] and not arr.reach[ix["web"], ix["ws1"]]
    assert list(arr.layer[[ix["internet"], ix["web"], ix["mail"], ix["ws1"], ix["database"]]]) == [3, 2, 3, 2, 0]


def test_file_dict_dataclass_and_object_give_the_same_arrays(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(BASE))
    from_file = load_scenario(path)

    @dataclasses.dataclass
    class Tiny:
        name: str
        attack_types: int
        max_value: int
        nodes: list
        edges: list
        lateral: list

    forms = [from_file, load_scenario(BASE), load_scenario(Tiny(**copy.deepcopy(BASE))), load_scenario(from_file)]
    (path2 := tmp_path / "again.yaml").write_text(dump_scenario(from_file))
    forms.append(load_scenario(path2))
    assert from_file.source == str(path)
    want = jax.tree.map(np.asarray, to_arrays(forms[0]))
    for s in forms[1:]:
        jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, to_arrays(s)), want)

    np.testing.assert_array_equal(want.role, [DATA, SERVER, SERVER, START])
    np.testing.assert_array_equal(want.layer, [0, 1, 2, 2])  # b reaches the data node only through a
    np.testing.assert_array_equal(want.defense_range, [[2, 2], [3, 3], [2, 2], [0, 0]])  # start holds zeros
    assert want.vulnerable_fixed[1, 1] and want.vulnerable_fixed.sum() == 1
    assert want.reach[1, 2] and want.reach[2, 1] and want.reach[3, 1] and want.reach[1, 0] and want.reach.sum() == 4


def _mutated(change):
    data = copy.deepcopy(BASE)
    change(data)
    return data


BAD = [
    (
        "no path from start to data",
        lambda d: d.update(edges=[["s", "a"]]),
        "edges",
        "expected a path from the start node 's' to the data node 'd'",
    ),
    (
        "edge to a missing node",
        lambda d: d.update(edges=[["s", "a"], ["a", "dd"]]),
        r"edges\[1\]\[1\]",
        "expected the id of a node, got 'dd'",
    ),
    ("lateral to a missing node", lambda d: d.update(lateral=[["a", "x"]]), r"lateral\[0\]\[1\]", "expected the id"),
    (
        "value above the cap",
        lambda d: d["nodes"][1].update(defense=6),
        r"nodes\[1\]\.defense",
        "expected values at most max_value = 5, got 6",
    ),
    (
        "range above the cap",
        lambda d: d.update(values={"attack": {"min": 0, "max": 9}}),
        r"values\.attack",
        "at most max_value = 5",
    ),
    (
        "detection above 10",
        lambda d: d["nodes"][0].update(detection=11),
        r"nodes\[0\]\.detection",
        "at most the detection maximum = 10",
    ),
    (
        "inverted range",
        lambda d: d["nodes"][1].update(defense={"min": 4, "max": 1}),
        r"nodes\[1\]\.defense",
        "min <= max",
    ),
    ("unknown field", lambda d: d.update(colour="red"), "colour", "unknown field"),
    ("unknown node field", lambda d: d["nodes"][2].update(os="linux"), r"nodes\[2\]\.os", "unknown field"),
    ("wrong type: string for int", lambda d: d.update(max_value="5"), "max_value", "valid integer, got '5'"),
    ("wrong type: bool for int", lambda d: d.update(attack_types=True), "attack_types", "valid integer"),
    (
        "wrong type: float value",
        lambda d: d["nodes"][1].update(defense=2.5),
        r"nodes\[1\]\.defense",
        r"expected an integer or a mapping \{min: INT, max: INT\}, got 2.5",
    ),
    ("wrong role", lambda d: d["nodes"][1].update(role="router"), r"nodes\[1\]\.role", "'start', 'server' or 'data'"),
    ("missing field", lambda d: d.pop("max_value"), "max_value", "missing"),
    ("two data nodes", lambda d: d["nodes"][2].update(role="data"), "nodes", "exactly one node with role data, got 2"),
    ("duplicate id", lambda d: d["nodes"][2].update(id="a"), r"nodes\[2\]\.id", "unique node id"),
    ("self edge", lambda d: d["edges"].append(["a", "a"]), r"edges\[2\]", "two different nodes"),
    (
        "vulnerable type out of range",
        lambda d: d["nodes"][1].update(vulnerable=[2]),
        r"nodes\[1\]\.vulnerable\[0\]",
        "below attack_types = 2",
    ),
    ("cap above 10", lambda d: d.update(max_value=11), "max_value", "less than or equal to 10"),
    ("bad position", lambda d: d["nodes"][0].update(position=[1]), r"nodes\[0\]\.position", "at least 2 items"),
    (
        "probability above 1",
        lambda d: d.update(observation={"visibility_p": 2.0}),
        r"observation\.visibility_p",
        "less than or equal to 1",
    ),
    (
        "unknown opponent",
        lambda d: d.update(opponents={"defender": ["nobody"]}),
        r"opponents\.defender\[0\]",
        "random_defense",
    ),
    (
        "local view slots without local view",
        lambda d: d["nodes"][1].update(local_view=["d", None]),
        r"nodes\[1\]\.local_view",
        "unless observation.view is local",
    ),
]


@pytest.mark.parametrize("change, field, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused_with_one_sentence_naming_file_and_field(tmp_path, change, field, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_mutated(change)))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field `"), message
    assert "\n" not in message and message.endswith(".") and ". " not in message, message  # one sentence
    assert re.match(rf"^{re.escape(str(path))}: field `{field}`: ", message), message
    assert re.search(expected, message), message


def test_more_nodes_than_compiled_or_other_switches_are_refused():
    s = load_scenario(BASE, source="tiny.yaml")
    with pytest.raises(
        ScenarioError, match=r"^tiny\.yaml: field `nodes`: expected at most 3 nodes \(the compiled maximum\), got 4\.$"
    ):
        to_arrays(s, ScenarioShape(max_nodes=3, attack_types=2))
    with pytest.raises(ScenarioError, match=r"^tiny\.yaml: field `attack_types`: expected at most 1 .*, got 2\.$"):
        to_arrays(s, ScenarioShape(max_nodes=8, attack_types=1))
    with pytest.raises(ScenarioError, match=r"^tiny\.yaml: field `observation\.reconnaissance`: "):
        to_arrays(s, ScenarioShape(max_nodes=8, attack_types=2, reconnaissance=True))
    padded = jax.tree.map(np.asarray, to_arrays(s, shape_of(s, max_nodes=8)))
    assert padded.node_mask.tolist() == [True] * 4 + [False] * 4
    assert not padded.reach[4:].any() and not padded.reach[:, 4:].any() and (padded.role[4:] == 0).all()


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.yaml: cannot be read"):
        load_scenario(tmp_path / "nope.yaml")
    (bad := tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: is not valid YAML at line \d+, column \d+"):
        load_scenario(bad)
    (lst := tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(
        ScenarioError, match=r"list\.yaml: field `\(top level\)`: expected a mapping of fields, got list\."
    ):
        load_scenario(lst)


def test_check_command_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_mutated(lambda d: d["nodes"][1].update(defense=9))))
    assert scenario_cli(["check", str(EXAMPLES[0])]) == 0
    capsys.readouterr()
    assert scenario_cli(["check", str(EXAMPLES[0]), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"{path}: field `nodes[1].defense`: expected values at most"), err
    assert scenario_cli([]) == 2


def test_check_command_as_a_process(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\n")
    proc = subprocess.run([sys.executable, "-m", "idsjax.scenario", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"{path}: field `attack_types`: missing, a value is required."
