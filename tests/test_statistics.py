"""baselines.statistics against exact values: hand-computed small cases, scipy.stats, and statsmodels'
own equivalence tests (an implementation independent of ours)."""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from baselines import statistics as S


def test_binomial_se_hand_values():
    assert S.binomial_se(0.25, 12) == pytest.approx(0.125, rel=1e-12)  # sqrt(3/16 / 12) = 1/8
    assert S.binomial_se(0.5, 100) == pytest.approx(0.05, rel=1e-12)
    np.testing.assert_allclose(S.binomial_se(np.array([0.1, 0.9]), 900), [0.01, 0.01], rtol=1e-12)
    assert S.binomial_se(0.0, 4000) == 0.0  # why the reports print the rule of three there instead
    for p, n in ((-0.1, 10), (1.2, 10), (0.5, 0), (0.5, 2.5), (float("nan"), 10)):
        with pytest.raises(ValueError):
            S.binomial_se(p, n)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 30, 200, 4000, 10**6])
def test_rule_of_three_is_a_valid_one_sided_95_bound(n):
    bound = S.rule_of_three(n)
    assert bound == min(1.0, 3 / n)
    # the exact (Clopper-Pearson) one-sided 95% upper bound for 0 of n: the p at which P(0 of n) = 0.05
    exact = stats.beta.ppf(0.95, 1, n)
    assert exact == pytest.approx(1 - 0.05 ** (1 / n), rel=1e-9)
    assert bound >= exact  # conservative, never narrower than the exact bound
    if n >= 30:
        assert bound / exact < 1 + 3 / n + 0.002  # and close to it: 3 / -ln(0.05) = 1.0013
    if bound < 1:
        assert (1 - bound) ** n <= 0.05  # a probability as large as the bound would rarely give 0 of n


def test_probability_text_never_prints_a_zero_se():
    assert S.probability_text(0.0, 4000) == "0 of 4,000 games (95% upper bound 0.00075)"
    assert S.probability_text(1.0, 4000) == "4,000 of 4,000 games (95% lower bound 0.99925)"
    assert S.probability_text(0.0, 5) == "0 of 5 games (95% upper bound 0.600)"
    assert S.probability_text(1.0, 300) == "300 of 300 games (95% lower bound 0.990)"
    assert S.probability_text(0.0, 1) == "0 of 1 game (95% upper bound 1.000)"  # one game bounds nothing
    assert S.probability_text(0.474, 4000) == "0.474 ± 0.008"  # sqrt(.474 * .526 / 4000) = 0.00790
    assert S.proportion(1.0, 300).bound == pytest.approx(0.99)
    assert S.proportion(0.3, 300).bound is None
    for p in (0.0, 1.0):
        assert "0.000 ± 0.000" not in S.probability_text(p, 4000)


def test_t_interval_matches_scipy_and_hand_value():
    x = [0.1, 0.2, 0.3]  # mean 0.2, s = 0.1, se = 0.1 / sqrt(3), t_{2, 0.975} = 4.302653
    iv = S.t_interval(x)
    assert iv.mean == pytest.approx(0.2)
    assert iv.se == pytest.approx(0.1 / math.sqrt(3))
    assert iv.high - iv.mean == pytest.approx(4.302652729749464 * 0.1 / math.sqrt(3), rel=1e-9)
    y = np.random.default_rng(3).normal(0.4, 0.1, size=10)
    lo, hi = stats.t.interval(0.95, 9, loc=y.mean(), scale=stats.sem(y))
    iv = S.t_interval(y)
    assert (iv.low, iv.high) == pytest.approx((lo, hi), rel=1e-12)
    assert iv.df == 9 and iv.n == 10
    with pytest.raises(ValueError):
        S.t_interval([0.5])


def test_tost_the_issue_case_is_not_equivalent():
    """0.474 against 0.592 with SEs of about 0.02: the former max(2 SE, 0.05) rule called these the
    same; with a margin of 0.05 two one-sided tests do not."""
    e = S.tost_means(0.474, 0.02, 0.592, 0.02, margin=0.05)
    assert not e.equivalent
    se = math.hypot(0.02, 0.02)
    assert e.p_lower == pytest.approx(stats.norm.sf((-0.118 + 0.05) / se), rel=1e-12)  # 0.9919
    assert e.p_upper == pytest.approx(stats.norm.sf((0.05 + 0.118) / se), rel=1e-9)
    assert e.p_value == pytest.approx(0.99189, abs=1e-5)
    assert e.text() == "not shown equivalent within ±0.05 (TOST, α = 0.05, p = 0.992)"


def test_tost_equivalent_case_and_interval_duality():
    e = S.tost_means(0.50, 0.01, 0.51, 0.01, margin=0.05)
    assert e.equivalent and e.p_value < 0.05
    assert e.p_value == pytest.approx(stats.norm.sf(0.04 / math.hypot(0.01, 0.01)), rel=1e-12)
    rng = np.random.default_rng(0)
    for _ in range(300):  # TOST at alpha is the 1 - 2 alpha interval lying inside (-margin, margin)
        d, se, m = rng.normal(0, 0.05), rng.uniform(0.001, 0.05), rng.uniform(0.01, 0.1)
        df = None if rng.random() < 0.5 else float(rng.integers(2, 20))
        e = S.tost(d, se, m, df=df)
        lo, hi = e.interval()
        assert e.equivalent == (-m < lo and hi < m)


def test_tost_zero_se_and_bad_input():
    assert S.tost(0.01, 0.0, 0.05).equivalent
    assert not S.tost(0.06, 0.0, 0.05).equivalent
    for args in ((0.0, 0.01, 0.0), (0.0, -1.0, 0.05), (0.0, 0.01, 0.05, 0.6)):
        with pytest.raises(ValueError):
            S.tost(*args)


def test_tost_samples_matches_statsmodels():
    from statsmodels.stats.weightstats import ttost_ind

    a = np.array([0.40, 0.50, 0.45, 0.52, 0.48])
    b = np.array([0.47, 0.44, 0.50, 0.49, 0.43, 0.46])
    e = S.tost_samples(a, b, 0.1)
    p, lower, upper = ttost_ind(a, b, -0.1, 0.1, usevar="unequal")
    assert e.p_lower == pytest.approx(lower[1], rel=1e-10)
    assert e.p_upper == pytest.approx(upper[1], rel=1e-10)
    assert e.df == pytest.approx(lower[2], rel=1e-10)
    assert e.equivalent == (p < 0.05)
    assert e.p_difference == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-10)
    # and the Welch-Satterthwaite degrees of freedom by hand
    va, vb = a.var(ddof=1) / 5, b.var(ddof=1) / 6
    assert e.df == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 5), rel=1e-12)


@pytest.mark.parametrize(
    "ka,na,kb,nb,margin", [(480, 1000, 500, 1000, 0.05), (1896, 4000, 2368, 4000, 0.05), (3, 50, 9, 60, 0.1)]
)
def test_tost_proportions_matches_statsmodels_agresti_caffo(ka, na, kb, nb, margin):
    from statsmodels.stats.proportion import tost_proportions_2indep

    e = S.tost_proportions(ka, na, kb, nb, margin)
    ref = tost_proportions_2indep(ka, na, kb, nb, -margin, margin, method="agresti-caffo", correction=False)
    assert e.p_lower == pytest.approx(ref.results_larger.pvalue, rel=1e-10)
    assert e.p_upper == pytest.approx(ref.results_smaller.pvalue, rel=1e-10)
    assert e.equivalent == (ref.pvalue < 0.05)


def test_tost_proportions_where_a_side_is_zero():
    # Wald's SE would be 0 and call these certainly equivalent; 20 games per side cannot show that
    assert not S.tost_proportions(0, 20, 0, 20, 0.05).equivalent
    assert S.tost_proportions(0, 4000, 0, 4000, 0.05).equivalent
    assert not S.tost_proportions(1896, 4000, 2368, 4000, 0.05).equivalent  # 0.474 vs 0.592
    with pytest.raises(ValueError):
        S.tost_proportions(5, 4, 1, 4, 0.05)


def test_aggregate_intervals_iqm_point_and_reproducible_interval():
    scores = np.arange(1.0, 9.0)[:, None]  # 8 runs of one configuration: IQM = mean(3, 4, 5, 6) = 4.5
    state = np.random.get_state()[1].copy()
    out = S.aggregate_intervals({"a": scores}, metrics=("iqm", "mean", "median"), reps=500, seed=1)
    assert np.array_equal(np.random.get_state()[1], state)  # the caller's global generator is left alone
    iqm, mean, median = out["a"]["iqm"], out["a"]["mean"], out["a"]["median"]
    assert iqm[0] == 4.5 and mean[0] == 4.5 and median[0] == 4.5
    assert iqm[1] < 4.5 < iqm[2] and 1 <= iqm[1] and iqm[2] <= 8
    again = S.aggregate_intervals({"a": scores}, metrics=("iqm", "mean", "median"), reps=500, seed=1)
    assert again == out
    two = np.array([[0.2, 0.9], [0.4, 0.9], [0.6, 0.9], [0.8, 0.9]])  # runs x configurations
    assert S.aggregate_intervals({"b": two}, reps=200)["b"]["iqm"][0] == pytest.approx(
        stats.trim_mean(two, 0.25, axis=None)
    )
    const = S.aggregate_intervals({"c": np.full((5, 3), 0.7)}, reps=200)["c"]["iqm"]
    assert const == pytest.approx((0.7, 0.7, 0.7))
    with pytest.raises(ValueError):
        S.aggregate_intervals({"a": scores}, metrics=("best",))
    with pytest.raises(ValueError):
        S.aggregate_intervals({"a": np.ones((1, 3))})


def test_probability_of_improvement_hand_values():
    x, y = np.array([[3.0], [5.0]]), np.array([[2.0], [4.0]])  # 3>2, 3<4, 5>2, 5>4: 3 of 4 pairs
    point, lo, hi = S.probability_of_improvement(x, y, reps=500)
    assert point == pytest.approx(0.75)
    assert 0 <= lo <= point <= hi <= 1
    assert S.probability_of_improvement(x + 10, y, reps=200) == pytest.approx((1.0, 1.0, 1.0))
    with pytest.raises(ValueError):
        S.probability_of_improvement(np.ones((3, 2)), np.ones((3, 3)))


def test_performance_profile_hand_values():
    scores = np.array([0.1, 0.4, 0.6, 0.9])[:, None]
    prof, ci = S.performance_profiles({"a": scores}, [0.0, 0.5, 0.95], reps=200)
    np.testing.assert_allclose(prof["a"], [1.0, 0.5, 0.0])
    assert ci["a"].shape == (2, 3)
    assert np.all(ci["a"][0] <= prof["a"]) and np.all(prof["a"] <= ci["a"][1])


def test_import_is_cheap():
    """rliable, pandas and scipy load only inside the functions that need them."""
    code = "import sys, baselines.statistics; print(sorted(m for m in ('rliable', 'pandas', 'scipy', 'arch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
