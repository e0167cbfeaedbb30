"""The kit's statistics: what a reported probability or mean carries, and how two results are compared.

- `binomial_se`, `probability_text`: a probability from `n` games with its standard error; where it is
  0 or 1 the SE is 0 and says nothing, so the text gives the rule-of-three one-sided 95% bound instead
  (`rule_of_three`: fewer than 3/n when 0 of n; more than 1 - 3/n when n of n).
- `t_interval`: a Student-t interval for a mean over few seeds (a percentile bootstrap at 10 seeds is
  about 0.8x as wide, which overstates what 10 seeds show).
- `tost`, `tost_means`, `tost_samples`, `tost_proportions`: "the same within a stated margin", by two
  one-sided tests (Schuirmann 1987): equivalent when both "the difference is at most -margin" and "at
  least +margin" are rejected at level alpha, i.e. when the 1 - 2 alpha interval of the difference lies
  inside (-margin, margin). A difference that is merely not significant is not equivalence.
- `aggregate_intervals`, `probability_of_improvement`, `performance_profiles`, `plot_performance_profiles`:
  thin wrappers over rliable (Agarwal et al. 2021) for aggregates over seeds and configurations:
  interquartile mean, stratified bootstrap confidence intervals, probability of improvement, performance
  profiles. rliable (and the pandas/arch it pulls in) loads only inside these functions, so importing
  this module stays cheap. Score arrays follow rliable's layout: `(runs, tasks)`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05


def _check_n(n) -> np.ndarray:
    n = np.asarray(n, np.float64)
    if np.any(n < 1) or np.any(n != np.floor(n)):
        raise ValueError(f"a number of games must be a positive integer, got {n.tolist()}")
    return n


def _check_p(p) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"a probability must lie in [0, 1], got {p.tolist()}")
    return p


def binomial_se(p, n):
    """Standard error sqrt(p (1 - p) / n) of a proportion `p` observed on `n` independent games
    (arrays broadcast). It is 0 at p = 0 or 1: report `rule_of_three` there, not the SE."""
    p, n = _check_p(p), _check_n(n)
    se = np.sqrt(p * (1 - p) / n)
    return float(se) if se.ndim == 0 else se


def rule_of_three(n) -> float:
    """One-sided 95% upper bound of a probability observed 0 times in `n` independent games: 3/n (capped
    at 1). It is the large-n form of the exact Clopper-Pearson bound 1 - 0.05**(1/n), and never below
    it (-ln 0.05 = 2.996 < 3), so it errs on the side of a wider bound. For n of n, 1 - 3/n bounds the
    probability from below."""
    n = float(_check_n(n))
    return min(1.0, 3.0 / n)


@dataclass(frozen=True)
class Proportion:
    """A probability observed on `n` games: its SE, and where p is 0 or 1 the rule-of-three bound
    (`bound`, upper where p = 0, lower where p = 1; None otherwise)."""

    p: float
    n: int
    se: float
    bound: float | None

    def text(self, digits: int = 3) -> str:
        if self.p == 0.0:
            games = "game" if self.n == 1 else "games"
            return f"0 of {self.n:,} {games} (95% upper bound {self.bound:.{_bound_digits(self.bound, digits)}f})"
        if self.p == 1.0:
            d = _bound_digits(1.0 - self.bound, digits)
            return f"{self.n:,} of {self.n:,} games (95% lower bound {self.bound:.{d}f})"
        return f"{self.p:.{digits}f} ± {self.se:.{digits}f}"


def _bound_digits(x: float, digits: int) -> int:
    """Enough decimals to show a small bound with two significant figures (3/4000 = 0.00075, not 0.001)."""
    if x <= 0 or x >= 10 ** -(digits - 1):
        return digits
    return max(digits, 1 - math.floor(math.log10(x)))


def proportion(p: float, n: int) -> Proportion:
    """`p` (hacks / games) on `n` games as a `Proportion`. Raises ValueError on p outside [0, 1] or n < 1."""
    p = float(_check_p(p))
    n = int(_check_n(n))
    bound = None
    if p == 0.0:
        bound = rule_of_three(n)
    elif p == 1.0:
        bound = 1.0 - rule_of_three(n)
    return Proportion(p, n, binomial_se(p, n), bound)


def probability_text(p: float, n: int, digits: int = 3) -> str:
    """'0.474 ± 0.008' from n games; '0 of 4,000 games (95% upper bound 0.00075)' where none were, and
    '4,000 of 4,000 games (95% lower bound 0.99925)' where all were (rule of three, one-sided): never
    '0.000 ± 0.000'."""
    return proportion(p, n).text(digits)


@dataclass(frozen=True)
class Interval:
    """A mean over `n` values with its SE and a two-sided `confidence` interval [low, high]."""

    mean: float
    se: float
    low: float
    high: float
    n: int
    df: float
    confidence: float

    def text(self, digits: int = 3) -> str:
        return (
            f"{self.mean:.{digits}f} ± {self.se:.{digits}f} "
            f"({self.confidence:.0%} t-interval [{self.low:.{digits}f}, {self.high:.{digits}f}], {self.n} seeds)"
        )


def t_interval(values, confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of `values` (one per seed): mean ± t_{n-1} * s / sqrt(n). Needs
    at least two finite values; the spread between seeds is all it knows."""
    from scipy import stats

    x = np.asarray(values, np.float64).ravel()
    if x.size < 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"a t-interval needs at least two finite values, got {x.tolist()}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    se = float(x.std(ddof=1) / np.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * se
    m = float(x.mean())
    return Interval(m, se, m - half, m + half, int(x.size), float(x.size - 1), confidence)


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests of |a - b| < margin. `p_lower` tests "a - b <= -margin", `p_upper` tests
    "a - b >= +margin"; `p_value` is the larger, and `equivalent` is p_value < alpha. `df` is None
    where the normal distribution was used."""

    equivalent: bool
    difference: float
    se: float
    margin: float
    alpha: float
    p_lower: float
    p_upper: float
    df: float | None
    method: str

    @property
    def p_value(self) -> float:
        return max(self.p_lower, self.p_upper)

    @property
    def p_difference(self) -> float:
        """Two-sided p-value of "no difference" from the same estimate, SE and distribution (Welch's
        t-test where df is Welch's): a row can be neither shown equivalent nor shown different."""
        if self.se == 0:
            return 0.0 if self.difference != 0 else 1.0
        return min(1.0, 2 * _sf(abs(self.difference) / self.se, self.df))

    def interval(self) -> tuple[float, float]:
        """The 1 - 2 alpha interval of the difference: inside (-margin, margin) exactly when equivalent."""
        q = _quantile(1 - self.alpha, self.df)
        return self.difference - q * self.se, self.difference + q * self.se

    def text(self) -> str:
        verdict = "equivalent" if self.equivalent else "not shown equivalent"
        return f"{verdict} within ±{self.margin:g} (TOST, α = {self.alpha:g}, p = {self.p_value:.3g})"


def _quantile(q: float, df: float | None) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def _sf(x: float, df: float | None) -> float:
    from scipy import stats

    return float(stats.norm.sf(x) if df is None else stats.t.sf(x, df))


def tost(
    difference: float,
    se: float,
    margin: float,
    alpha: float = ALPHA,
    df: float | None = None,
    method: str = "z",
) -> Equivalence:
    """Two one-sided tests that an estimated `difference` with standard error `se` lies within
    (-margin, margin): t with `df` degrees of freedom, normal where df is None. An SE of 0 (every seed
    equal on both sides) leaves no doubt: equivalent exactly when |difference| < margin."""
    if not (margin > 0 and math.isfinite(margin)):
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    if not (se >= 0 and math.isfinite(se) and math.isfinite(difference)):
        raise ValueError(f"need a finite difference and SE >= 0, got {difference}, {se}")
    if df is not None and not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if se == 0:
        p_lower = 0.0 if difference > -margin else 1.0
        p_upper = 0.0 if difference < margin else 1.0
    else:
        p_lower = _sf((difference + margin) / se, df)
        p_upper = _sf((margin - difference) / se, df)
    equivalent = max(p_lower, p_upper) < alpha
    return Equivalence(bool(equivalent), float(difference), float(se), margin, alpha, p_lower, p_upper, df, method)


def welch_df(se_a: float, n_a: int, se_b: float, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom of a difference of two means with SEs from n_a and n_b
    values. Where both SEs are 0 the difference is exact; min(n_a, n_b) - 1 is returned then."""
    va, vb = se_a**2, se_b**2
    if va + vb == 0:
        return float(min(n_a, n_b) - 1)
    den = (va**2 / (n_a - 1) if va else 0.0) + (vb**2 / (n_b - 1) if vb else 0.0)
    return float((va + vb) ** 2 / den)


def tost_means(
    mean_a: float,
    se_a: float,
    mean_b: float,
    se_b: float,
    margin: float,
    alpha: float = ALPHA,
    df: float | None = None,
) -> Equivalence:
    """TOST of two independent means with standard errors: difference mean_a - mean_b, SE the root sum
    of squares; normal unless `df` is given (see `welch_df`)."""
    return tost(mean_a - mean_b, math.hypot(se_a, se_b), margin, alpha, df, "z" if df is None else "welch-t")


def tost_samples(a, b, margin: float, alpha: float = ALPHA) -> Equivalence:
    """TOST of two independent samples (e.g. one final value per seed on each side): Welch's t with
    Welch-Satterthwaite degrees of freedom. Each side needs at least two values."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if a.size < 2 or b.size < 2:
        raise ValueError("a two-sample equivalence test needs at least two values on each side")
    se_a, se_b = a.std(ddof=1) / np.sqrt(a.size), b.std(ddof=1) / np.sqrt(b.size)
    df = welch_df(se_a, a.size, se_b, b.size)
    return tost_means(float(a.mean()), float(se_a), float(b.mean()), float(se_b), margin, alpha, df)


def tost_proportions(successes_a: int, n_a: int, successes_b: int, n_b: int, margin: float, alpha: float = ALPHA):
    """TOST of two independent binomial proportions (hacks out of games), normal approximation with the
    unpooled Wald SE. Where a side is 0 or n of n its Wald SE is 0, which would make 0 of 20 against
    0 of 20 "equivalent" with certainty; Agresti and Caffo's (2000) one added success and one added
    failure per side keeps that SE honest; the test is Agresti-Caffo's throughout (the adjusted
    difference over its SE), as statsmodels' `tost_proportions_2indep(method="agresti-caffo")` computes it."""
    for k, n in ((successes_a, n_a), (successes_b, n_b)):
        if int(n) != n or n < 1 or int(k) != k or not 0 <= k <= n:
            raise ValueError(f"need 0 <= successes <= games with whole numbers, got {k} of {n}")
    ta, tb = (successes_a + 1) / (n_a + 2), (successes_b + 1) / (n_b + 2)
    se = math.sqrt(ta * (1 - ta) / (n_a + 2) + tb * (1 - tb) / (n_b + 2))
    return tost(ta - tb, se, margin, alpha, None, "agresti-caffo z")


# --- rliable: aggregates over seeds (runs) and configurations (tasks) ---------------------------------


@contextlib.contextmanager
def _seeded_global_numpy(seed: int):
    """rliable's stratified bootstraps draw from NumPy's global generator (np.random.choice), whatever
    random_state they are given; seeding it here (and restoring it after) makes an interval a function
    of the data and the seed."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield np.random.RandomState(seed)
    finally:
        np.random.set_state(state)


def _quiet_rliable():
    import logging
    import warnings

    logging.getLogger("absl").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="arch")
    warnings.filterwarnings("ignore", module="rliable")


def _scores(score_dict) -> dict:
    out = {}
    for k, v in score_dict.items():
        a = np.asarray(v, np.float64)
        if a.ndim == 1:
            a = a[:, None]  # one configuration: runs x 1
        if a.ndim != 2 or a.shape[0] < 2 or not np.all(np.isfinite(a)):
            raise ValueError(f"{k}: scores must be a finite (runs, tasks) array with at least two runs")
        out[k] = a
    return out


AGGREGATES = ("iqm", "mean", "median", "optimality_gap")


def aggregate_intervals(
    score_dict,
    metrics=("iqm", "mean"),
    reps: int = 20_000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "percentile",
) -> dict:
    """{name: {metric: (point, low, high)}} for every (runs, tasks) score array of `score_dict`:
    rliable's aggregate (interquartile mean over all runs and tasks by default) with its stratified
    bootstrap interval (runs resampled within each task, `reps` times, `seed`ed)."""
    bad = [m for m in metrics if m not in AGGREGATES]
    if bad:
        raise ValueError(f"unknown aggregate {bad}; known: {', '.join(AGGREGATES)}")
    _quiet_rliable()
    from rliable import library
    from rliable import metrics as rl_metrics

    funcs = {
        "iqm": rl_metrics.aggregate_iqm,
        "mean": rl_metrics.aggregate_mean,
        "median": rl_metrics.aggregate_median,
        "optimality_gap": rl_metrics.aggregate_optimality_gap,
    }
    chosen = [funcs[m] for m in metrics]

    def aggregate(x):
        return np.array([f(x) for f in chosen])

    with _seeded_global_numpy(seed) as rs:
        points, cis = library.get_interval_estimates(
            _scores(score_dict),
            aggregate,
            method=method,
            reps=reps,
            confidence_interval_size=confidence,
            random_state=rs,
        )
    return {
        k: {m: (float(points[k][i]), float(cis[k][0][i]), float(cis[k][1][i])) for i, m in enumerate(metrics)}
        for k in points
    }


def probability_of_improvement(
    scores_x, scores_y, reps: int = 20_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """(point, low, high): rliable's probability that a run of X beats a run of Y on a configuration
    drawn at random (Mann-Whitney U / (n_x n_y) averaged over configurations; ties count one half),
    with X's and Y's runs resampled independently within each configuration."""
    _quiet_rliable()
    from rliable import library
    from rliable import metrics as rl_metrics

    d = _scores({"x": scores_x, "y": scores_y})
    if d["x"].shape[1] != d["y"].shape[1]:
        raise ValueError("X and Y must be scored on the same configurations")
    with _seeded_global_numpy(seed) as rs:
        points, cis = library.get_interval_estimates(
            {"x,y": [d["x"], d["y"]]},
            lambda x, y: np.array([rl_metrics.probability_of_improvement(x, y)]),
            reps=reps,
            confidence_interval_size=confidence,
            random_state=rs,
        )
    return float(points["x,y"][0]), float(cis["x,y"][0][0]), float(cis["x,y"][1][0])


def performance_profiles(score_dict, taus, reps: int = 2_000, confidence: float = 0.95, seed: int = 0):
    """({name: profile}, {name: (2, len(taus)) interval}): the fraction of runs (over all
    configurations) scoring above each threshold in `taus`, with stratified bootstrap intervals."""
    _quiet_rliable()
    from rliable import library

    taus = np.asarray(taus, np.float64)
    with _seeded_global_numpy(seed):
        profiles, cis = library.create_performance_profile(
            _scores(score_dict), taus, reps=reps, confidence_interval_size=confidence
        )
    return {k: np.asarray(v) for k, v in profiles.items()}, {k: np.asarray(v) for k, v in cis.items()}


def plot_performance_profiles(profiles, cis, taus, ax, xlabel: str, ylabel: str = "fraction of runs with score > τ"):
    """Draw `performance_profiles`' output on a matplotlib axis with rliable's plot helper."""
    _quiet_rliable()
    from rliable import plot_utils

    plot_utils.plot_performance_profiles(
        profiles, np.asarray(taus), performance_profile_cis=cis, xlabel=xlabel, ylabel=ylabel, ax=ax
    )
    return ax
