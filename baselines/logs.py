"""What a run writes for people: `metrics.csv` (one row per update and seed) and its learning curves."""

from __future__ import annotations

import csv
import math
import os
import warnings

import numpy as np

METRICS_FILE = "metrics.csv"


def write_metrics(path: str, rows: list[dict], append: bool) -> None:
    if not rows:
        return
    exists = append and os.path.isfile(path)
    with open(path, "a" if exists else "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        if not exists:
            w.writeheader()
        w.writerows(rows)


def truncate_metrics(path: str, last_update: int) -> None:
    """Drop the rows after `last_update` (a resumed run rewrites them)."""
    if not os.path.isfile(path):
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["update"]) <= last_update]
    write_metrics(path, rows, append=False) if rows else os.remove(path)


def metric_rows(metrics: dict, first_update: int, steps_per_update: int, wall: float, num_seeds: int) -> list[dict]:
    """A chunk's metrics ([seeds, K] arrays) as rows: update, seed, env_steps, wall_time, metrics."""
    host = {k: np.asarray(v) for k, v in metrics.items()}  # [seeds, K]
    k = next(iter(host.values())).shape[1]
    rows = []
    for i in range(k):
        u = first_update + i + 1
        for s in range(num_seeds):
            row = {"update": u, "seed": s, "env_steps": u * steps_per_update, "wall_time": round(wall, 3)}
            row.update({name: float(v[s, i]) for name, v in host.items()})
            rows.append(row)
    return rows


def plot_metrics(path_csv: str, path_png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(path_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    keys = [k for k in rows[0] if k not in ("update", "seed", "env_steps", "wall_time", "episodes")]
    panels = ["hack_probability", "return"] + [
        k for k in keys if k not in ("hack_probability", "return", "attacker_return", "defender_return")
    ]
    cols = 3
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3 * nrows), squeeze=False)
    seeds = sorted({int(r["seed"]) for r in rows})
    for ax, key in zip(axes.flat, panels):
        allv = []
        for s in seeds:
            xs = [int(r["env_steps"]) for r in rows if int(r["seed"]) == s]
            ys = [float(r[key]) for r in rows if int(r["seed"]) == s]
            allv.append(ys)
            ax.plot(xs, ys, lw=0.6, alpha=0.35 if len(seeds) > 1 else 1.0)
        if len(seeds) > 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (e.g. before learning starts)
                mean = np.nanmean(np.array(allv), axis=0)
            ax.plot(xs, mean, color="k", lw=1.5, label="mean")
        ax.set_title(key)
        ax.set_xlabel("environment steps per seed")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path_png, dpi=90)
    plt.close(fig)
