"""The committed grid: `configs.json` (the reference's 179 configurations, see `extract.py`)."""

from __future__ import annotations

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS_FILE = os.path.join(HERE, "configs.json")


def load_configs() -> list[dict]:
    with open(CONFIGS_FILE) as f:
        return json.load(f)["configs"]
