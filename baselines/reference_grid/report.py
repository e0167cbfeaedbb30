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

from baselines.reference_grid import data, style
from baselines.reference_grid.mapping import map_config, parse_env
from baselines.reference_grid.run import EVAL_CSV, SUMMARY, TRAIN_CSV
from baselines.reference_grid.sections import (
    aggregates_section,
    draw_profiles,
    ladder_section,
    load_runs_info,
    mapping_section,
    time_section,
    vs_reference_section,
)

HERE = os.path.dirname(os.path.abspath(__file__))
BASELINES = os.path.dirname(HERE)
RESULTS = os.path.join(BASELINES, "results", "reference_grid")
REPORT = os.path.join(BASELINES, "REFERENCE_GRID.md")
CEILINGS = os.path.join(RESULTS, "ceilings.json")
VS_REFERENCE = os.path.join(RESULTS, "vs_reference.json")
RUN_INFO = os.path.join(RESULTS, "run.json")
DEFAULT_OUTPUT = os.path.join("runs", "reference_grid_report")
# The report's own path to the results folder (its links to figures are relative to it).


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
    return RESULTS if args.publish else os.path.join(args.output_dir, data.RESULTS_LINK)


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
    kept = [s for s in data.load_jsonl(readable(results, "summaries.jsonl")) if data.run_id(s) not in replaced]
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
        cols = min(style.PANELS_PER_ROW, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(style.FIGURE_WIDTH_INCHES, 0.5 + 2.6 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            per_seed = defaultdict(list)
            for r in paths[name]:
                per_seed[int(r["seed"])].append((int(r["env_steps"]), float(r["hack_probability"])))
            for s, pts in sorted(per_seed.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", ms=3, lw=1.0, color=f"C{s}")
            shown_run = summaries.get(name, {})
            f = data.budget_fraction(shown_run)
            budget = "" if f is None else f"\n{style.fmt_percent(f)} of full budget"
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
        fig.savefig(os.path.join(figures, f"{version}.png"), dpi=style.FIGURE_DPI)
        plt.close(fig)


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


def write_report(results: str | None = None, report: str | None = None) -> str:
    """Write the report `report` (default `REPORT`) from the files of `results` (default `RESULTS`;
    falling back to the committed ones, see the module docstring). It links the figures in
    `results/reference_grid/figures/` beside it, which `draw_figures` makes."""
    results, report = results or RESULTS, report or REPORT
    every_run = data.load_jsonl(readable(results, "summaries.jsonl"))
    summaries = data.headline(every_run)
    ceilings = data.load_json(readable(results, "ceilings.json")) or {}
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
            res = style.result_cell(s, c["eval_episodes"])
            trainer = (m.trainer or "—") + (" (substitute)" if m.status == "substitute" else "")
            note = id_note(c, m)
            env = f"`{m.env_id}`" + (f" ({note})" if note else "")
            lines.append(
                f"| `{c['path']}` | {trainer} | {env} | {len(s.get('seeds', m.seeds))} | {res or 'not run'} "
                f"| {ceiling_for(m.env_id, ceilings)} | {s.get('seconds', '')} | {style.fmt_budget(s)} |"
            )
        lines.append("")
    lines += ladder_section(configs, every_run)
    lines += mapping_section(configs, every_run)
    lines += time_section(configs, every_run)
    lines += aggregates_section(list(summaries.values()))
    vs = data.load_json(readable(results, "vs_reference.json"))
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
    summaries = data.headline(data.load_jsonl(readable(results, "summaries.jsonl")))
    draw_figures(load_curves(readable(results, "curves.csv.gz")), os.path.join(results, "figures"), summaries)
    draw_profiles(list(summaries.values()), os.path.join(results, "figures"))
    vs = data.load_json(readable(results, "vs_reference.json"))
    if vs and vs.get("rows"):  # redrawn from its curves, at the report's size
        from baselines.reference_grid.vs_reference import draw

        draw(vs["rows"], results)
    write_report(results, report)
    print(report)


if __name__ == "__main__":
    main()
