"""baselines/REFERENCE_GRID.md is readable: its figures are about 1,200 pixels wide, and a row whose id is
not its folder's version and mode says why in the row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from baselines.reference_grid import data
from baselines.reference_grid.mapping import map_config, parse_env

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "baselines" / "REFERENCE_GRID.md"


def test_every_figure_the_report_shows_is_legible():
    image = pytest.importorskip("PIL.Image")
    text = REPORT.read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(figures) >= 22  # one per version, and the one beside the reference
    for name in figures:
        width, height = image.open(REPORT.parent / name).size
        assert width >= 1000 and height >= 250, (name, width, height)


def test_every_substituted_id_is_explained_in_its_row():
    lines = REPORT.read_text().splitlines()
    # The per-version tables' rows (9 bars; the table beside the reference has other columns).
    rows = {line.split("`")[1]: line for line in lines if line.startswith("| `v") and line.count("|") == 9}
    explained = 0
    for c in data.load_configs():
        m = map_config(c)
        version, mode = c["path"].split("/")[:2]
        ref_mode, ref_version = parse_env(c["env"])
        if m.env_id is None:
            continue
        moved = ref_version != int(version[1:]) or (ref_mode or "two_agents") != mode
        env_cell = rows[c["path"]].split("|")[3]
        if moved:
            assert "the reference's config.json in this folder names" in env_cell, rows[c["path"]]
            assert f"v{ref_version}, not {version}" in env_cell or f"not {mode}" in env_cell, rows[c["path"]]
            explained += 1
        if m.env_id != c["env"]:
            assert c["env"] in env_cell and m.env_id in env_cell, rows[c["path"]]
            explained += 1
        if not moved and m.env_id == c["env"]:
            assert env_cell.strip() == f"`{m.env_id}`", rows[c["path"]]  # nothing to explain
    assert explained >= 3  # v3, v4 and v5's maximal_attack/dqn at least
