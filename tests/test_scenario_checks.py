"""Scenario files that load but do not say what their author meant are refused with one sentence: a key
given twice (YAML would keep the last silently), a server with no edge or lateral link (no move can
ever reach or leave it), an edge leaving the data node (the game ends when it is hacked)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from idsjax.scenario import ScenarioError, load_scenario

TINY = """\
format: 1
name: tiny
attack_types: 2
max_value: 5
nodes:
  - {id: d, role: data, position: [0, 0]}
  - {id: a, role: server, position: [0, 1]}
  - {id: s, role: start, position: [0, 2]}
edges:
  - [s, a]
  - [a, d]
max_steps: 60
"""


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and ". " not in message, message


def _refused(tmp_path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    _one_sentence(message)
    assert message.startswith(f"{path}: "), message
    return message


def test_the_tiny_file_loads(tmp_path):
    (path := tmp_path / "ok.yaml").write_text(TINY)
    assert load_scenario(path).max_steps == 60


def test_a_top_level_key_given_twice_is_refused_with_both_lines(tmp_path):
    # Loaded as 100 before: the last one won without a word.
    message = _refused(tmp_path, TINY + "max_steps: 100\n")
    assert re.search(r"line 13: field `max_steps` is given twice \(first at line 12\)", message), message


def test_a_nested_key_given_twice_is_refused_with_its_line(tmp_path):
    # A duplicated role used to end in a misleading "expected exactly one node with role data".
    text = TINY.replace("{id: a, role: server,", "{id: a, role: server, role: data,")
    message = _refused(tmp_path, text)
    assert re.search(r"line 7: field `role` is given twice", message), message


def test_a_key_that_overrides_a_merged_one_is_not_a_duplicate(tmp_path):
    # YAML's merge key: the explicit `defense` overrides the merged one, as YAML intends.
    text = TINY.replace("{id: d, role: data,", "{<<: {defense: 3, detection: 1}, defense: 4, id: d, role: data,")
    (path := tmp_path / "merge.yaml").write_text(text)
    data = load_scenario(path).nodes[0]
    assert (data.defense.max, data.detection.max) == (4, 1)


def test_a_server_with_no_edges_is_refused(tmp_path):
    text = TINY.replace("  - {id: s,", "  - {id: lonely, role: server, position: [1, 1]}\n  - {id: s,")
    message = _refused(tmp_path, text)
    assert "field `nodes[2]`" in message and "'lonely'" in message and "no edge or lateral link" in message


def test_a_server_with_only_a_lateral_link_loads(tmp_path):
    text = TINY.replace("  - {id: s,", "  - {id: side, role: server, position: [1, 1]}\n  - {id: s,")
    (path := tmp_path / "ok.yaml").write_text(text + "lateral:\n  - [a, side]\n")
    assert [n.id for n in load_scenario(path).nodes] == ["d", "a", "side", "s"]


def test_an_edge_leaving_the_data_node_is_refused(tmp_path):
    message = _refused(tmp_path, TINY.replace("  - [a, d]\n", "  - [a, d]\n  - [d, a]\n"))
    assert "field `edges[2]`" in message and "leaving the data node 'd'" in message, message


def test_check_command_shows_the_sentence(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY + "max_steps: 100\n")
    proc = subprocess.run([sys.executable, "-m", "idsjax.scenario", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().startswith(f"{path}: line 13: field `max_steps` is given twice"), proc.stderr
