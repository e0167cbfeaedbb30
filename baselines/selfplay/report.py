"""Self-play's written results: the population's payoff matrix as CSV and heatmap."""

from __future__ import annotations

import csv
import os

import numpy as np


def colour_range(values) -> tuple[float, float]:
    """A heatmap's colour limits that fit its data (NaN ignored): a matrix whose entries all lie in
    0.02-0.15 must not be drawn in the bottom sixth of a 0-1 scale. A constant (or empty) matrix
    gets a small window around its value."""
    finite = np.asarray(values, np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-6:
        return lo - 0.05, hi + 0.05
    return lo, hi


def write_payoff(out_dir: str, payoff, valid_att, valid_def, num_seeds: int) -> None:
    """payoff_matrix.csv (per seed: attacker snapshot rows, defender snapshot columns, hack probability;
    the last row/column are the final policies) and payoff_matrix.png (seed 0)."""
    size = payoff.shape[-1]
    names = [f"snap{i}" for i in range(size - 1)] + ["final"]
    with open(os.path.join(out_dir, "payoff_matrix.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seed", "attacker \\ defender"] + names)
        for s in range(num_seeds):
            for i in range(size):
                if valid_att[s, i]:
                    w.writerow(
                        [s, names[i]]
                        + [round(float(payoff[s, i, j]), 4) if valid_def[s, j] else "" for j in range(size)]
                    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.where(valid_att[0][:, None] & valid_def[0][None, :], payoff[0], np.nan)
    fig, ax = plt.subplots(figsize=(1 + 0.55 * size, 0.8 + 0.5 * size))
    vmin, vmax = colour_range(m)
    im = ax.imshow(m, vmin=vmin, vmax=vmax, cmap="viridis")
    ax.set_xticks(range(size), names, rotation=60, fontsize=7)
    ax.set_yticks(range(size), names, fontsize=7)
    ax.set_xlabel("defender")
    ax.set_ylabel("attacker")
    for i in range(size):
        for j in range(size):
            if not np.isnan(m[i, j]):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="w" if m[i, j] < (vmin + vmax) / 2 else "k",
                )
    fig.colorbar(im, ax=ax, label="hack probability")
    ax.set_title("payoff matrix (seed 0)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "payoff_matrix.png"), dpi=100)
    plt.close(fig)
