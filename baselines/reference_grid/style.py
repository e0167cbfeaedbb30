"""How the grid report writes its numbers (budget fractions, p-values, budgets, result cells with
their standard errors) and sizes its figures."""

from __future__ import annotations

from baselines import statistics
from baselines.reference_grid import data

FIGURE_WIDTH_INCHES, FIGURE_DPI = 12.0, 100  # 1,200 pixels wide: legible beside the tables
PANELS_PER_ROW = 4


def fmt_percent(f: float) -> str:
    """A budget fraction in percent, two significant figures below the full budget ('2.1%', '0.00049%');
    a run rounded up to whole updates can exceed its budget ('7,314%')."""
    return f"{100 * f:.2g}%" if f < 1 else f"{100 * f:,.0f}%"


def fmt_fraction(f: float | None) -> str:
    """'2.1% of full', or 'full' where the run had its whole budget (and how much more, if more)."""
    if f is None:
        return ""
    if f >= 1:
        return "full" + (f" ({fmt_percent(f)} of it)" if f > 1.005 else "")
    return f"{fmt_percent(f)} of full"


def fmt_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else "< 0.001"


def fmt_budget(s: dict) -> str:
    if "steps_run" not in s:
        return ""
    eps = s.get("episodes_run_per_seed") or [0]
    text = f"{s['steps_run']:,} steps, ~{round(sum(eps) / len(eps)):,} ep of {s['reference_episodes']:,}"
    fraction = fmt_fraction(data.budget_fraction(s))
    text += f" (capped: {fraction})" if s.get("capped") else f" ({fraction})" if fraction else ""
    return text + ("" if data.mapping_of(s) == "faithful" else f", {data.mapping_of(s)} mapping")


def result_cell(s: dict, eval_episodes: int) -> str:
    """The final evaluation hack probability of a summary `s`: mean ± SE over its seeds. Where every
    game of every seed was hacked, or none was, the SE is 0 and says nothing: the cell gives the
    rule-of-three bound over all their games instead. That bound holds for the seeds' mean probability
    p̄ (the chance of no hack in any game is prod (1 - p_s)^games <= (1 - p̄)^(seeds x games), by the
    AM-GM inequality). One seed: the binomial SE of its evaluation games."""
    hp = s.get("final_eval_hack_probability")
    if hp is None:
        return ""
    per_seed = s.get("final_eval_hack_probability_per_seed") or [hp]
    games = int((s.get("run") or {}).get("eval_episodes") or eval_episodes) * len(per_seed)
    se = s.get("final_eval_hack_probability_se")
    if hp in (0.0, 1.0) or len(per_seed) == 1 or se is None:
        return statistics.probability_text(hp, games)
    if se == 0:  # every seed equal but not 0 or 1: the games' own spread is what is left
        se = statistics.binomial_se(hp, games)
    return f"{hp:.3f} ± {se:.3f}"
