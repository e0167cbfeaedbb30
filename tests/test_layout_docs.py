"""baselines/README.md's layout table names every module and package of the kit (issue 23 item 5), so a
newcomer finds where each thing lives; a module added without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent / "baselines"


def _layout_table() -> str:
    text = (KIT / "README.md").read_text()
    start = text.index("## Layout")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def test_every_module_of_the_kit_has_a_row():
    table = _layout_table()
    named = set(re.findall(r"`([A-Za-z_][\w]*(?:\.py|/))`", table))
    modules = {p.name for p in KIT.glob("*.py") if p.name != "__init__.py"}
    packages = {p.name + "/" for p in KIT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    missing = sorted((modules | packages) - named)
    assert not missing, f"baselines/README.md's layout table has no row for {missing}"
