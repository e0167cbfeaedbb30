"""The league comparison's statistics: paired differences between league modes over seeds, the exact
sign-flip permutation test, Holm's adjustment over the run's whole family, and the pre-registered
replication (`PREREGISTERED`). Run by `baselines.league_comparison`, written by `baselines.league_report`."""

import itertools

import numpy as np

COMPARED = ("defender_exploitability", "attacker_exploitability", "selfplay_hack_p")


# The replication of issue 25 item 3, as SELFPLAY.md pre-registered it (commit c53fb44) before its run:
# one statistic, one one-sided test, its own alpha; the secondary figure is descriptive only.
PREREGISTERED = {
    "env": "idsgame-v19",
    "a": "naive",
    "b": "pfsp",
    "primary": ("attacker_exploitability", "greater"),  # naive's attacker more exploitable: a - b > 0
    "secondary": ("selfplay_hack_p", "less"),  # naive's attacker hacks PFSP's defender less: a - b < 0
    "alpha": 0.05,
    "seed": 1000,
    "seeds": 10,
    "commit": "c53fb44",
}
ALPHA = 0.05  # the exploratory family's


# --- statistics -----------------------------------------------------------------------------------


def sign_flip_p(
    a, b, alternative: str = "two-sided", max_exact: int = 1 << 16, resamples: int = 200_000, seed: int = 0
) -> float:
    """p-value of the paired sign-flip permutation test of "no difference between a and b": under it
    each pair's difference is as likely positive as negative, so the observed mean difference is
    compared with those of all 2^n sign patterns (exact up to `max_exact` patterns, else `resamples`
    random ones, counting the observed pattern). `alternative`: "two-sided" (|mean| as large),
    "greater" (a - b as large) or "less" (a - b as small)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size < 1:
        raise ValueError("a sign-flip test needs at least one pair")
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be two-sided, greater or less, got {alternative!r}")
    n = d.size
    if 2**n <= max_exact:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1)
    else:
        signs = np.random.default_rng(seed).choice([-1, 1], size=(resamples, n))
        signs = np.concatenate([np.ones((1, n), np.int64), signs])
    flipped = (signs * d).mean(axis=1)
    observed = d.mean()
    tol = 1e-12 * max(1.0, abs(observed))  # the observed pattern counts despite rounding
    if alternative == "greater":
        return float(np.mean(flipped >= observed - tol))
    if alternative == "less":
        return float(np.mean(flipped <= observed + tol))
    return float(np.mean(np.abs(flipped) >= abs(observed) - tol))


def holm(pvalues, m: int | None = None) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (family-wise error), in the input order.
    `m` is the family's size when only some of its tests have been made (the others, not yet run,
    count as p = 1: they rank last and leave these adjustments as the whole family's would be)."""
    p = np.asarray(pvalues, np.float64)
    order = np.argsort(p, kind="stable")
    m = p.size if m is None else m
    if m < p.size:
        raise ValueError(f"a family of {m} tests cannot hold {p.size} p-values")
    adjusted = np.maximum.accumulate((m - np.arange(p.size)) * p[order])
    out = np.empty(p.size)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def _paired(rows: list[dict], env_id: str, fig: str, m1: str, m2: str) -> tuple[list, list, list]:
    """(seeds, a, b): the figure of modes m1 and m2 on the seeds both have."""
    x = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m1 and fig in r}
    y = {r["seed"]: r[fig] for r in rows if r["env"] == env_id and r["mode"] == m2 and fig in r}
    seeds = sorted(set(x) & set(y))
    return seeds, [x[s] for s in seeds], [y[s] for s in seeds]


def family_size(envs, modes, figures=COMPARED) -> int:
    """The planned family: every pair of modes on every env and compared figure."""
    return len(envs) * len(figures) * len(modes) * (len(modes) - 1) // 2


def compare(rows: list[dict], envs, modes, figures=COMPARED) -> list[dict]:
    """Every pair of modes on every env and figure: mean difference with its 95% t-interval, the exact
    two-sided sign-flip p-value, and its Holm adjustment over all the planned comparisons as one family
    (the family SELFPLAY.md fixed before the run; while some runs are missing, their comparisons count
    as p = 1, so a partial run never tests in a smaller family). Seeds present in both modes only."""
    from baselines.statistics import t_interval

    out = []
    for env_id in envs:
        for fig in figures:
            for m1, m2 in itertools.combinations(modes, 2):
                seeds, a, b = _paired(rows, env_id, fig, m1, m2)
                if len(seeds) < 2:
                    continue
                ci = t_interval(np.subtract(a, b))
                out.append(
                    {
                        "env": env_id,
                        "figure": fig,
                        "mode_a": m1,
                        "mode_b": m2,
                        "seeds": len(seeds),
                        "mean_a": round(float(np.mean(a)), 4),
                        "mean_b": round(float(np.mean(b)), 4),
                        "diff": round(ci.mean, 4),
                        "ci_low": round(ci.low, 4),
                        "ci_high": round(ci.high, 4),
                        "p": sign_flip_p(a, b),
                    }
                )
    m = family_size(envs, modes, figures)
    for row, adj in zip(out, holm([r["p"] for r in out], m)):  # from the unrounded p-values
        row["p"], row["p_holm"] = round(row["p"], 4), round(adj, 4)
    return out


def replication(rows: list[dict], args) -> dict | None:
    """The pre-registered test on this run's rows, or None when this run is not the pre-registered one
    (another base seed, number of seeds, env or modes). `done` is False until both modes have all
    their seeds."""
    pre = PREREGISTERED
    if (args.seed, args.seeds) != (pre["seed"], pre["seeds"]) or pre["env"] not in args.envs:
        return None
    if not {pre["a"], pre["b"]} <= set(args.modes):
        return None
    from baselines.statistics import t_interval

    out = {"done": False}
    for role in ("primary", "secondary"):
        fig, alternative = pre[role]
        seeds, a, b = _paired(rows, pre["env"], fig, pre["a"], pre["b"])
        if len(seeds) < pre["seeds"]:
            return out
        ci = t_interval(np.subtract(a, b))
        out[role] = {
            "figure": fig,
            "alternative": alternative,
            "seeds": len(seeds),
            "mean_a": float(np.mean(a)),
            "mean_b": float(np.mean(b)),
            "diff": ci.mean,
            "ci_low": ci.low,
            "ci_high": ci.high,
            "p": sign_flip_p(a, b, alternative),
            "positive": int(np.sum(np.subtract(a, b) > 0)),
            "negative": int(np.sum(np.subtract(a, b) < 0)),
        }
    primary = out["primary"]
    out["done"] = True
    out["replicated"] = primary["p"] < pre["alpha"] and primary["diff"] > 0
    return out
