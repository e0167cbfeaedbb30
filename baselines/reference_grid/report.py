"""`python -m baselines.reference_grid.report`: write the grid's report, `REFERENCE_GRID.md`, from a grid run.

    python -m baselines.reference_grid.report --run-dir runs/reference_grid            # into runs/reference_grid_report
    python -m baselines.reference_grid.report --run-dir runs/reference_grid --publish  # baselines/REFERENCE_GRID.md

Collects every configuration's `summary.json`, `train.csv` and `eval.csv` from `--run-dir` into a
results folder (`summaries.jsonl`, `curves.csv.gz`), draws one figure per version into its `figures/`
from those curves, then writes the report from those files: per configuration the final evaluation
hack probability (mean ± standard error over seeds; the rule-of-three bound where every game of every
seed was hacked or none was), the training time, the budget run and its fraction of the full budget,
the exact optimum against defend-minimal where `ceilings.json` has one, the mapping's differences;
aggregates over seeds and configurations per trainer (rliable: interquartile mean with stratified
bootstrap intervals, performance profiles); and the side-by-side comparison with the reference
(`vs_reference.json`), judged by an equivalence test with a stated margin. Without `--run-dir` it
reads the committed results.

Nothing is written into the repository unless `--publish` is given: by default the results folder is
`<output-dir>/results/reference_grid/` and the report `<output-dir>/REFERENCE_GRID.md` (default
output dir runs/reference_grid_report); with `--publish` they are the committed
`baselines/results/reference_grid/` and `baselines/REFERENCE_GRID.md`. Files the run did not make
(`ceilings.json`, `vs_reference.json`, and without `--run-dir` the summaries and curves) are read from
the output folder when there, else from the committed results.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import re
import shutil
import sys
from collections import defaultdict

import numpy as np

from baselines import statistics
from baselines.reference_grid import data
from baselines.reference_grid.mapping import map_config, parse_env
from baselines.reference_grid.run import EVAL_CSV, SUMMARY, TRAIN_CSV

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINES = os.path.dirname(HERE)
RESULTS = os.path.join(BASELINES, "results", "reference_grid")
REPORT = os.path.join(BASELINES, "REFERENCE_GRID.md")
CEILINGS = os.path.join(RESULTS, "ceilings.json")
VS_REFERENCE = os.path.join(RESULTS, "vs_reference.json")
RUN_INFO = os.path.join(RESULTS, "run.json")
DEFAULT_OUTPUT = os.path.join("runs", "reference_grid_report")
# The report's own path to the results folder (its links to figures are relative to it).
RESULTS_LINK = "results/reference_grid"


def add_destination_arguments(p: argparse.ArgumentParser, default_output: str) -> None:
    """`--output-dir` and `--publish`: the grid's tools write into the repository only when asked."""
    p.add_argument(
        "--output-dir",
        default=default_output,
        help="write here (the results under results/reference_grid/); nothing goes into the repository",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="write the committed files instead: baselines/results/reference_grid/ (and baselines/REFERENCE_GRID.md)",
    )


def results_dir(args) -> str:
    """Where a tool of the grid writes its results: the committed folder with --publish, else the output dir."""
    return RESULTS if args.publish else os.path.join(args.output_dir, RESULTS_LINK)


def report_path(args) -> str:
    return REPORT if args.publish else os.path.join(args.output_dir, "REFERENCE_GRID.md")


def readable(results: str, name: str) -> str:
    """`name` in `results` if a tool wrote it there, else the committed one."""
    path = os.path.join(results, name)
    return path if os.path.isfile(path) else os.path.join(RESULTS, name)


def _evaluation_games_sentence(configs) -> str:
    """How many games each configuration's evaluations play (the reference's `eval_episodes`): with one
    game a seed's value is 0 or 1, and the standard error is the seeds' spread of those."""
    counts: dict[int, int] = defaultdict(int)
    for c in configs:
        counts[int(c["eval_episodes"])] += 1
    parts = ", ".join(
        f"{n:,} game{'s' if n != 1 else ''} in {k}" for n, k in sorted(counts.items(), key=lambda x: -x[1])
    )
    single = counts.get(1, 0)
    tail = (
        f"; the {single} one-game configurations give each seed a value of 0 or 1, so their mean ± SE is a "
        "rough estimate over the seeds only"
        if single
        else ""
    )
    return f"Evaluation games per seed and evaluation, as the reference's configurations set them: {parts}{tail}."


def version_key(path: str):
    return int(re.match(r"v(\d+)", path).group(1)), path


def collect(run_dir: str, results: str = RESULTS) -> None:
    """Merge a run's summaries and curves into the results folder `results`: a configuration's run at
    the same budget and mapping (`data.run_id`) replaces the one there, its other runs stay."""
    os.makedirs(results, exist_ok=True)
    new, curve_rows = [], []
    for ref in data.load_configs():
        out = os.path.join(run_dir, ref["path"])
        try:
            with open(os.path.join(out, SUMMARY)) as f:
                s = json.load(f)
        except OSError:
            continue
        s.pop("trainer_config", None)
        s.setdefault("mapping", "faithful")
        new.append(s)
        for kind, name in (("train", TRAIN_CSV), ("eval", EVAL_CSV)):
            p = os.path.join(out, name)
            if os.path.isfile(p):
                with open(p, newline="") as f:
                    for r in csv.DictReader(f):
                        curve_rows.append(
                            {"path": ref["path"], "kind": kind, **r, **dict(zip(CURVE_RUN, data.run_id(s)[1:]))}
                        )
    replaced = {data.run_id(s) for s in new}
    kept = [s for s in _load_jsonl(readable(results, "summaries.jsonl")) if data.run_id(s) not in replaced]
    summaries = sorted(kept + new, key=lambda s: (version_key(s["path"]), int(s["run"]["steps_per_seed"])))
    with open(os.path.join(results, "summaries.jsonl"), "w") as f:
        for s in summaries:
            f.write(json.dumps(s) + "\n")
    kept_curves = [r for r in load_curves(readable(results, "curves.csv.gz")) if curve_run(r) not in replaced]
    rows = kept_curves + curve_rows
    if rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
        with gzip.open(os.path.join(results, "curves.csv.gz"), "wt") as f:
            f.write(buf.getvalue())


CURVE_RUN = ("steps_per_seed", "mapping")  # the columns that name a curve row's run, beside its path


def curve_run(row: dict) -> tuple[str, int, str]:
    """A curve row's run, as `data.run_id` names it."""
    return row["path"], int(row["steps_per_seed"]), row["mapping"]


def load_curves(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


FIGURE_WIDTH_INCHES, FIGURE_DPI = 12.0, 100  # 1,200 pixels wide: legible beside the tables
PANELS_PER_ROW = 4


def draw_figures(curve_rows: list[dict], figures: str, summaries: dict | None = None) -> None:
    """One figure per version, 1,200 pixels wide: each configuration's evaluation hack probability per
    seed, its panel titled with the fraction of its full budget it ran (from `summaries`, by path)."""
    summaries = summaries or {}
    shown = {data.run_id(x) for x in summaries.values()}  # each configuration's headline run
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_version = defaultdict(lambda: defaultdict(list))
    for r in curve_rows:
        if r["kind"] == "eval" and (not shown or curve_run(r) in shown):
            by_version[r["path"].split("/")[0]][r["path"]].append(r)
    for version, paths in by_version.items():
        names = sorted(paths)
        cols = min(PANELS_PER_ROW, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(FIGURE_WIDTH_INCHES, 0.5 + 2.6 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            per_seed = defaultdict(list)
            for r in paths[name]:
                per_seed[int(r["seed"])].append((int(r["env_steps"]), float(r["hack_probability"])))
            for s, pts in sorted(per_seed.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1.0, color=f"C{s}")
            shown_run = summaries.get(name, {})
            f = data.budget_fraction(shown_run)
            budget = "" if f is None else f"\n{fmt_percent(f)} of full budget"
            if shown_run and data.mapping_of(shown_run) != "faithful":
                budget += f", {data.mapping_of(shown_run)} mapping"
            ax.set_title("/".join(name.split("/")[1:]) + budget, fontsize=10)
            ax.set_ylim(-0.02, 1.02)
            ax.tick_params(labelsize=9)
            ax.xaxis.get_offset_text().set_fontsize(9)
        for ax in list(axes.flat)[len(names) :]:
            ax.axis("off")
        fig.suptitle(
            f"{version}: evaluation hack probability vs environment steps per seed (one colour per seed)", fontsize=12
        )
        fig.tight_layout()
        os.makedirs(figures, exist_ok=True)
        fig.savefig(os.path.join(figures, f"{version}.png"), dpi=FIGURE_DPI)
        plt.close(fig)


def _load_jsonl(path: str) -> list[dict]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _load_json(path: str):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def ceiling_for(env_id: str | None, ceilings: dict) -> str:
    if not env_id or "minimal_defense" not in env_id:
        return ""
    c = ceilings.get(env_id)
    if not c:
        return "n/a"
    return f"{c['lower']:.3f}" if c["exact"] else f"{c['lower']:.3f}–{c['upper']:.3f}"


def id_note(c: dict, m) -> str:
    """Why a configuration runs on an id other than its folder's version and mode, or ''."""
    version, mode = c["path"].split("/")[:2]
    ref_mode, ref_version = parse_env(c["env"])
    notes = []
    if ref_version != int(version[1:]) or (ref_mode or "two_agents") != mode:
        other = f"v{ref_version}, not {version}" if ref_version != int(version[1:]) else f"not {mode}"
        named = "this id" if m.env_id == c["env"] else f"`{c['env']}`"
        notes.append(
            f"the reference's config.json in this folder names {named} ({other}), so the reference ran it there"
        )
    if m.env_id and m.env_id != c["env"]:
        notes.append(next((d for d in m.differences if m.env_id in d), f"mapped from `{c['env']}`"))
    return "; ".join(notes)


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


def write_report(results: str | None = None, report: str | None = None) -> str:
    """Write the report `report` (default `REPORT`) from the files of `results` (default `RESULTS`;
    falling back to the committed ones, see the module docstring). It links the figures in
    `results/reference_grid/figures/` beside it, which `draw_figures` makes."""
    results, report = results or RESULTS, report or REPORT
    every_run = _load_jsonl(readable(results, "summaries.jsonl"))
    summaries = data.headline(every_run)
    ceilings = _load_json(readable(results, "ceilings.json")) or {}
    ceilings = {c["env"]: c for c in ceilings.get("results", [])}
    runs_info = load_runs_info(readable(results, "run.json"))
    configs = sorted(data.load_configs(), key=lambda c: version_key(c["path"]))
    lines = [
        "# The reference's experiment grid, run with idsjax",
        "",
        "Generated by `python -m baselines.reference_grid.report` from the committed results in",
        "`baselines/results/reference_grid/`; do not edit by hand. The 179 configurations are gym-idsgame's",
        "`experiments/training/**/config.json` (`baselines/reference_grid/configs.json`); each maps to an idsjax",
        "trainer as `baselines/reference_grid/mapping.py` says, with every difference listed below the tables.",
        "",
    ]
    if runs_info:
        lines += [
            "**The runs** (each resumable; a configuration's row below shows its full-budget run where it has "
            "one, else its largest budget; the budget ladder further down shows all of them):",
            "",
        ]
        lines += [f"- {r.get('label', '')}: `{r.get('command', '')}` — {r.get('note', '')}" for r in runs_info]
        lines.append("")
    ran = [s for s in summaries.values() if s.get("final_eval_hack_probability") is not None]
    lines += [
        f"Configurations: {len(configs)}; with results: {len(ran)}; shown at their full budget: "
        f"{sum(not s.get('capped') for s in ran)}; shown below it: {sum(bool(s.get('capped')) for s in ran)}; "
        f"runs in all: {len(every_run)}; training time of the runs shown (compile included) "
        f"{sum(s.get('seconds', 0) for s in ran) / 60:.1f} min.",
        "",
        "Columns: the final evaluation hack probability, mean ± standard error over the seeds (the attacker wants",
        "it high, the defender low; two-agent rows: the final attacker against the final defender; one seed: the",
        "binomial standard error of its evaluation games; where every game of every seed was hacked, or none",
        "was, the one-sided 95% bound of the rule of three over all those games, 3/games, in place of an SE of",
        "0); the optimum any attacker can reach against defend-minimal (`python -m baselines.ceiling`, env seed 0,",
        "as the runs use; a range where the exact search's bounds did not meet; n/a where it was not computed),",
        "which a row *capped* far below its full budget had no means to approach; the training time of all seeds",
        "together with compilation; the budget run per seed (environment steps, and the episodes they held, of",
        "the reference's episodes), *capped* when below the full budget, with its fraction of that budget, and",
        "the mapping where it is the parallel one (many games per update; see the ladder).",
        "",
        _evaluation_games_sentence(configs),
        "",
    ]
    for version in sorted({c["path"].split("/")[0] for c in configs}, key=lambda v: int(v[1:])):
        lines += [
            f"## {version}",
            "",
            f"![{version}](results/reference_grid/figures/{version}.png)",
            "",
            "| configuration | idsjax trainer | id | seeds | final eval hack p | optimum | train s | budget run |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in [c for c in configs if c["path"].split("/")[0] == version]:
            s = summaries.get(c["path"], {})
            m = map_config(c)
            res = result_cell(s, c["eval_episodes"])
            trainer = (m.trainer or "—") + (" (substitute)" if m.status == "substitute" else "")
            note = id_note(c, m)
            env = f"`{m.env_id}`" + (f" ({note})" if note else "")
            lines.append(
                f"| `{c['path']}` | {trainer} | {env} | {len(s.get('seeds', m.seeds))} | {res or 'not run'} "
                f"| {ceiling_for(m.env_id, ceilings)} | {s.get('seconds', '')} | {fmt_budget(s)} |"
            )
        lines.append("")
    lines += ladder_section(configs, every_run)
    lines += mapping_section(configs, every_run)
    lines += time_section(configs, every_run)
    lines += aggregates_section(list(summaries.values()))
    vs = _load_json(readable(results, "vs_reference.json"))
    if vs:
        lines += vs_reference_section(vs)
        name = os.path.basename(vs.get("figure") or "")
        source, beside = readable(results, name), os.path.join(results, name)
        if name and source != beside and os.path.isfile(source):
            shutil.copyfile(source, beside)  # the report links the figure in its own results folder
    lines += [
        "## Reference settings without a trainer flag",
        "",
        "Collected from the per-configuration list below; each is a flag a trainer could add.",
        "",
        "- hidden activation ReLU in the policy-gradient and self-play networks (they use tanh; DQN uses ReLU);",
        "- learning-rate decay: exponential per episode (DQN, REINFORCE, actor-critic) and power-4 progress decay",
        "  (Stable-Baselines3 PPO); the trainers have a constant rate or (PPO) a linear anneal;",
        "- `baselines.ppo` has no autoregressive policy (`--policy` exists in `baselines.selfplay` only);",
        "- self-play: separate attacker and defender learning rates, alternating optimisation, bots in the",
        "  opponent pool, uniform (not quality-weighted) pool sampling;",
        "- REINFORCE with standardised returns and no critic, actor-critic with whole-episode Monte-Carlo",
        "  returns, batches counted in episodes: the trainers batch environment steps;",
        "- two-player tabular Q-learning, DQN, REINFORCE and actor-critic: only self-play PPO trains both sides;",
        "- an LSTM policy: no configuration needs it (`lstm_network` is false in all 179, though some set",
        "  `num_lstm_layers`).",
        "",
        "## Mapping: what differs from the reference, per configuration",
        "",
    ]
    for c in configs:
        m = map_config(c)
        lines.append(
            f"- `{c['path']}` → {m.trainer or 'not mapped'} on `{m.env_id}`: " + "; ".join(m.differences) + "."
        )
    lines.append("")
    text = "\n".join(lines)
    if os.path.dirname(report):
        os.makedirs(os.path.dirname(report), exist_ok=True)
    with open(report, "w") as f:
        f.write(text)
    return text


EQUIVALENCE_MARGIN = 0.05  # hack probability: the floor of the former max(2 SE, 0.05) rule, now a margin
EQUIVALENCE_ALPHA = 0.05


def equivalence_sentence() -> str:
    return (
        "'Same' is decided by two one-sided Welch t-tests (TOST) on the seeds' final values (unpaired: the two "
        "sides play independent games, though each pair of seeds shares a layout), with an equivalence margin "
        f"of ±{EQUIVALENCE_MARGIN:g} in hack probability, stated before the test: equivalent when the two mean "
        f"final hack probabilities are shown to differ by less than the margin at α = {EQUIVALENCE_ALPHA:g} (the "
        f"{1 - 2 * EQUIVALENCE_ALPHA:.0%} interval of the difference lies inside ±{EQUIVALENCE_MARGIN:g}); different when Welch's two-sided t-test rejects equal means at "
        f"α = {EQUIVALENCE_ALPHA:g}; otherwise neither is shown (with five seeds a side and seed-to-seed spreads "
        "of 0.05-0.17, most rows cannot show either). The former rule, a difference of at most max(2 SE, 0.05), "
        "called 0.474 against 0.592 the same."
    )


def note_without_rule(note: str) -> str:
    """A comparison's note without its closing sentence on what 'same' means: the former rule's, in a file
    written before the equivalence test, or this rule's (the report states the rule itself)."""
    for marker in (" 'Same' means", " 'Same' is decided"):
        note = note.split(marker)[0]
    return note


def equivalence(row: dict) -> dict:
    """The TOST verdict of one vs_reference row from its per-seed final values (reference against idsjax)."""
    e = statistics.tost_samples(
        row["reference_per_seed"], row["idsjax_per_seed"], EQUIVALENCE_MARGIN, EQUIVALENCE_ALPHA
    )
    low, high = e.interval()
    if e.equivalent:
        verdict = "equivalent"
    elif e.p_difference < EQUIVALENCE_ALPHA:
        verdict = "different"
    else:
        verdict = "neither shown"
    return {
        "difference": e.difference,
        "difference_interval": [low, high],
        "difference_interval_level": 1 - 2 * EQUIVALENCE_ALPHA,
        "tost_p": e.p_value,
        "welch_p": e.p_difference,
        "welch_df": e.df,
        "margin": EQUIVALENCE_MARGIN,
        "alpha": EQUIVALENCE_ALPHA,
        "verdict": verdict,
    }


def vs_reference_section(vs: dict) -> list[str]:
    level = f"{1 - 2 * EQUIVALENCE_ALPHA:.0%}"
    note = note_without_rule(vs.get("note", ""))
    lines = [
        "## Beside the reference (its own tabular Q-learning, gym-idsgame 1.0.13)",
        "",
        note,
        "",
        equivalence_sentence(),
        "",
        f"Command: `{vs.get('command', '')}`",
        "",
        "| configuration | episodes | seeds | reference: final eval hack p | idsjax: final eval hack p | "
        f"difference [{level} CI] | TOST p (±{EQUIVALENCE_MARGIN:g}) | Welch p | same? "
        "| reference s | idsjax s | wall-time ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in vs["rows"]:
        e = equivalence(r)  # from the per-seed values, whatever verdict the file stored
        lo, hi = e["difference_interval"]
        lines.append(
            f"| `{r['path']}` | {r['episodes']:,} | {r['seeds']} | {r['reference_mean']:.3f} ± {r['reference_se']:.3f} "
            f"| {r['idsjax_mean']:.3f} ± {r['idsjax_se']:.3f} | {e['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] "
            f"| {fmt_p(e['tost_p'])} | {fmt_p(e['welch_p'])} | {e['verdict']} "
            f"| {r['reference_seconds']:.1f} | {r['idsjax_seconds']:.1f} | {r['reference_seconds'] / r['idsjax_seconds']:.1f}× |"
        )
    lines += [
        "",
        "Difference: reference minus idsjax. Learning curves (evaluation hack probability, mean over seeds, per evaluation):",
        "",
    ]
    for r in vs["rows"]:
        lines.append(f"- `{r['path']}`: reference {r['reference_curve']}; idsjax {r['idsjax_curve']}")
    if vs.get("figure"):
        lines += ["", f"![beside the reference]({vs['figure']})"]
    return lines + [""]


def load_runs_info(path: str) -> list[dict]:
    """The commands that made the committed runs (`run.json`: {"runs": [{label, command, note}]})."""
    info = _load_json(path) or {}
    return list(info.get("runs", [info] if info.get("command") else []))


def _rung(s: dict) -> tuple[int, str]:
    return int(s["run"]["steps_per_seed"]), data.mapping_of(s)


def _rung_name(rung: tuple[int, str]) -> str:
    return f"{rung[0]:,} steps ({rung[1]})"


def ladder_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Every configuration without a full-budget run: its final evaluation hack probability at each
    budget it ran (the ladder), each with its fraction of the full budget, and the time its full budget
    would take on this CPU (`data.full_budget_estimate`)."""
    runs = data.runs_by_path(every_run)
    short = [c for c in configs if c["path"] in runs and all(s.get("capped") for s in runs[c["path"]])]
    if not short:
        return []
    rungs = sorted({_rung(s) for c in short for s in runs[c["path"]] if s.get("capped")})
    lines = [
        "## Budget ladder: where the configurations without a full-budget run are heading",
        "",
        f"The {len(short)} configurations whose full budget no run reached (most are the reference's nominal",
        "10^8-episode budgets, 'until stopped'), at every budget they ran: the final evaluation hack probability,",
        "mean ± SE over the seeds, with the run's fraction of the full budget. The ladder's rungs use the",
        "parallel mapping for on-policy configurations (`--mapping parallel`: many games per update, the same",
        "environment-step budget; see each configuration's differences); tabular Q and DQN have no parallel",
        "variant and run faithfully. The last column estimates the full budget's time on this CPU from the",
        "largest rung's training rate (`baselines/reference_grid/data.py: full_budget_estimate`): compilation and",
        "evaluation as measured plus the full budget at that rate, loaded-machine figures as the rungs ran.",
        "",
        "| configuration | trainer | full budget (steps/seed) | "
        + " | ".join(_rung_name(r) for r in rungs)
        + " | full budget, est. CPU time |",
        "|---|---|---|" + "---|" * len(rungs) + "---|",
    ]
    for c in short:
        by_rung = {_rung(s): s for s in runs[c["path"]]}
        cells = []
        for r in rungs:
            s = by_rung.get(r)
            if s is None or s.get("final_eval_hack_probability") is None:
                cells.append("")
                continue
            f = data.budget_fraction(s)
            cells.append(f"{result_cell(s, c['eval_episodes'])} ({fmt_percent(f)})")
        est = data.full_budget_estimate(runs[c["path"]])
        head = runs[c["path"]][-1]
        lines.append(
            f"| `{c['path']}` | {head.get('trainer') or '—'} | {head.get('full_steps', 0):,} | "
            + " | ".join(cells)
            + f" | {fmt_duration(est['seconds']) + ' (' + est['mapping'] + ')' if est else ''} |"
        )
    return lines + [""]


def mapping_comparison(faithful: dict, par: dict) -> dict:
    """The parallel mapping against the faithful one on one configuration at one budget: the difference
    of the final hack probabilities (parallel − faithful) judged by the grid's equivalence test (TOST at
    `EQUIVALENCE_MARGIN`) on the seeds' final values, or, where a side's seeds all ended equal (no spread
    to estimate an SE from), on the pooled evaluation games (Agresti-Caffo); and the training speed-up."""
    a = np.asarray(par["final_eval_hack_probability_per_seed"], float)
    b = np.asarray(faithful["final_eval_hack_probability_per_seed"], float)
    if a.size > 1 and b.size > 1 and a.std() > 0 and b.std() > 0:
        e = statistics.tost_samples(a, b, EQUIVALENCE_MARGIN, EQUIVALENCE_ALPHA)
        on = "seeds"
    else:
        games = int(par["run"]["eval_episodes"])
        e = statistics.tost_proportions(
            int(round(a.sum() * games)),
            a.size * games,
            int(round(b.sum() * games)),
            b.size * games,
            EQUIVALENCE_MARGIN,
            EQUIVALENCE_ALPHA,
        )
        on = "games"
    rate = lambda s: (s.get("timing") or {}).get("train_steps_per_second_per_seed")  # noqa: E731
    verdict = "equivalent" if e.equivalent else "different" if e.p_difference < EQUIVALENCE_ALPHA else "neither shown"
    return {
        "difference": float(a.mean() - b.mean()),
        "interval": e.interval(),
        "tost_p": e.p_value,
        "p_difference": e.p_difference,
        "verdict": verdict,
        "on": on,
        "speedup": rate(par) / rate(faithful) if rate(par) and rate(faithful) else None,
    }


def mapping_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Every configuration run under both mappings at the same budget: does the parallel mapping reach
    the place the faithful one does, and how much faster does it train?"""
    runs = data.runs_by_path(every_run)
    pairs = []
    for c in configs:
        by = {(int(s["run"]["steps_per_seed"]), data.mapping_of(s)): s for s in runs.get(c["path"], [])}
        for (steps, mapping), par in sorted(by.items()):
            faithful = by.get((steps, "faithful"))
            if mapping == "parallel" and faithful and par.get("final_eval_hack_probability") is not None:
                pairs.append((c, steps, faithful, par))
    if not pairs:
        return []
    level = f"{1 - 2 * EQUIVALENCE_ALPHA:.0%}"
    lines = [
        "## The parallel mapping against the faithful one",
        "",
        "On-policy configurations run under both mappings at the same budget (the full one unless the row says",
        "otherwise): the final evaluation hack probability of each, their difference (parallel − faithful) with",
        f"its {level} interval, and the same equivalence test as beside the reference (TOST, margin",
        f"±{EQUIVALENCE_MARGIN:g}, α = {EQUIVALENCE_ALPHA:g}, stated before the runs), on the seeds' final values, or on the",
        "pooled evaluation games where one side's seeds all ended equal; then the training rate of the parallel",
        "mapping over the faithful one's (environment steps per second per seed, compilation excluded).",
        "",
        f"| configuration | budget | faithful | parallel | difference [{level} CI] | TOST p | verdict | training speed-up |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c, steps, faithful, par in pairs:
        m = mapping_comparison(faithful, par)
        lo, hi = m["interval"]
        lines.append(
            f"| `{c['path']}` | {steps:,} steps ({fmt_fraction(data.budget_fraction(faithful))}) "
            f"| {result_cell(faithful, c['eval_episodes'])} | {result_cell(par, c['eval_episodes'])} "
            f"| {m['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}] | {fmt_p(m['tost_p'])} | {m['verdict']}"
            + (" (games)" if m["on"] == "games" else "")
            + (f" | {m['speedup']:.1f}× |" if m["speedup"] else " | |")
        )
    return lines + [""]


def fmt_duration(seconds: float) -> str:
    """'42 s', '13 min', '5.2 h', '3.1 days', '2.4 years': a duration a reader takes in at once."""
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (1 if unit in ("min", "h") else 2):
            value = seconds / size
            return f"{value:.2g} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{seconds:.0f} s"


def time_section(configs: list[dict], every_run: list[dict]) -> list[str]:
    """Per trainer: how many configurations ran their full budget and in how long, and the estimated
    time of the rest at their full budgets on this CPU."""
    runs = data.runs_by_path(every_run)
    rows: dict[str, dict] = {}
    for c in configs:
        if c["path"] not in runs:
            continue
        est = data.full_budget_estimate(runs[c["path"]])
        trainer = runs[c["path"]][-1].get("trainer") or "—"
        row = rows.setdefault(trainer, {"configs": 0, "full": 0, "measured": 0.0, "estimated": 0.0, "unknown": 0})
        row["configs"] += 1
        if est is None:
            row["unknown"] += 1
        elif est["measured"]:
            row["full"] += 1
            row["measured"] += est["seconds"]
        else:
            row["estimated"] += est["seconds"]
    lines = [
        "## Time to the full budget",
        "",
        "Per trainer: the configurations that ran their full budget and the time they took (all seeds side by",
        "side, compilation included), and the estimated time of the others at their full budgets on this CPU",
        "(as in the ladder). A GPU estimate needs the grid's training rate measured on one: no GPU was lent to",
        "this project's sessions, so it is not given (`benchmarks/device_check.sh` is the prepared measurement).",
        "",
        "| trainer | configurations | at full budget | their time | the others, est. CPU time at full budget |",
        "|---|---|---|---|---|",
    ]
    for trainer, r in sorted(rows.items()):
        rest = r["configs"] - r["full"]
        lines.append(
            f"| {trainer} | {r['configs']} | {r['full']} | {fmt_duration(r['measured']) if r['full'] else ''} | "
            + "; ".join(
                (
                    [f"{fmt_duration(r['estimated'])} ({rest - r['unknown']} configurations)"]
                    if rest - r["unknown"]
                    else []
                )
                + ([f"{r['unknown']} not timed by any run"] if r["unknown"] else [])
            )
            + " |"
        )
    return lines + [""]


AGGREGATE_FIGURE = "aggregates.png"
AGGREGATE_REPS = 10_000
PROFILE_TAUS = 101


def aggregates_section(summaries: list[dict]) -> list[str]:
    """Per trainer, rliable's interquartile mean of the learner's final win probability over every
    (seed, configuration) with its 95% stratified bootstrap interval, and the mean likewise; each row with
    its configurations' fractions of their full budgets. It links the performance profiles that
    `draw_profiles` draws."""
    families = data.learner_scores(summaries)
    if not families:
        return []
    agg = statistics.aggregate_intervals(
        {t: f["scores"] for t, f in families.items()}, metrics=("iqm", "mean"), reps=AGGREGATE_REPS, seed=0
    )
    lines = [
        "## Aggregates over seeds and configurations (rliable)",
        "",
        "Score: the learning side's final evaluation win probability per seed and configuration (an attacker's",
        "hack probability, a defender's 1 − hack probability). Per trainer, over its single-learner",
        "configurations with the family's full number of seeds (two-agent rows have no one learner; rows with",
        "fewer seeds cannot share a stratified bootstrap and are counted as left out): the interquartile mean",
        "(IQM) of all its scores and their mean, each with a 95% stratified bootstrap interval (seeds resampled",
        f"within each configuration, {AGGREGATE_REPS:,} resamples, NumPy seed 0; rliable's percentile method).",
        "The trainers cover different configurations and ran at the budgets of the tables above, so each row",
        "says what that trainer reached at this run's budget on its own configurations: it does not rank the",
        "algorithms, nor say where they would be at their full budgets. No comparison between trainers was",
        "stated before the run; none is tested here.",
        "",
        "| trainer | configurations | seeds each | left out | budget run, % of full: median (range) | IQM [95% CI] | mean [95% CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for t, f in families.items():
        fr = [x for x in f["budget_fractions"] if x is not None]
        budget = f"{fmt_percent(float(np.median(fr)))} ({fmt_percent(min(fr))} – {fmt_percent(max(fr))})" if fr else ""
        iqm, mean = agg[t]["iqm"], agg[t]["mean"]
        lines.append(
            f"| {t} | {len(f['paths'])} | {f['seeds']} | {f['left_out']} | {budget} "
            f"| {iqm[0]:.3f} [{iqm[1]:.3f}, {iqm[2]:.3f}] | {mean[0]:.3f} [{mean[1]:.3f}, {mean[2]:.3f}] |"
        )
    lines += [
        "",
        "Performance profiles: the fraction of (seed, configuration) runs whose score exceeds τ, with 95%",
        "stratified bootstrap bands (rliable).",
        "",
        f"![performance profiles]({RESULTS_LINK}/figures/{AGGREGATE_FIGURE})",
        "",
    ]
    return lines


def draw_profiles(summaries: list[dict], figures: str) -> None:
    """The performance profile of every trainer's learner scores (`data.learner_scores`), with rliable's
    stratified bootstrap bands, into `figures/aggregates.png`."""
    families = data.learner_scores(summaries)
    if not families:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.linspace(0.0, 1.0, PROFILE_TAUS)
    named = {f"{t} ({len(f['paths'])} configurations)": f["scores"] for t, f in families.items()}
    profiles, cis = statistics.performance_profiles(named, taus, reps=1_000, seed=0)
    fig, ax = plt.subplots(figsize=(FIGURE_WIDTH_INCHES, 4.5))
    statistics.plot_performance_profiles(
        profiles, cis, taus, ax, xlabel="learner's final win probability τ (runs at this grid's budgets)"
    )
    ax.legend(fontsize=10)
    fig.tight_layout()
    os.makedirs(figures, exist_ok=True)
    fig.savefig(os.path.join(figures, AGGREGATE_FIGURE), dpi=FIGURE_DPI)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m baselines.reference_grid.report", description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", default=None, help="collect this grid run into the committed results first")
    p.add_argument("--command", default=None, help="the grid command that made the run (recorded in the report)")
    p.add_argument("--note", default="", help="a sentence about the run (machine, load, scale)")
    p.add_argument("--label", default="", help="what the run is, in a few words (e.g. 'the ladder at 10^5 steps')")
    add_destination_arguments(p, DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    results, report = results_dir(args), report_path(args)
    if args.run_dir is not None:
        if not os.path.isdir(args.run_dir):
            print(
                f"python -m baselines.reference_grid.report: error: --run-dir {args.run_dir!r} is not a directory",
                file=sys.stderr,
            )
            raise SystemExit(2)
        collect(args.run_dir, results)
        if args.command:
            runs = [r for r in load_runs_info(readable(results, "run.json")) if r.get("command") != args.command]
            runs.append({"command": args.command, "note": args.note, "label": args.label})
            with open(os.path.join(results, "run.json"), "w") as f:
                json.dump({"runs": runs}, f, indent=1)
    summaries = data.headline(_load_jsonl(readable(results, "summaries.jsonl")))
    draw_figures(load_curves(readable(results, "curves.csv.gz")), os.path.join(results, "figures"), summaries)
    draw_profiles(list(summaries.values()), os.path.join(results, "figures"))
    vs = _load_json(readable(results, "vs_reference.json"))
    if vs and vs.get("rows"):  # redrawn from its curves, at the report's size
        from baselines.reference_grid.vs_reference import draw

        draw(vs["rows"], results)
    write_report(results, report)
    print(report)


if __name__ == "__main__":
    main()
