"""The README's figures are what today's code gives.

Each results table is written by a function from committed rows (`baselines/results/*.jsonl`, ...),
and the README must hold exactly that text. One row of each table is re-run here at its stated seed
and budget and compared with the committed value read from the committed file: a change that moves a
published number fails until the table is regenerated (`python -m baselines.results --table train
--publish`, or the table's own command). On the CPU a run is a deterministic function of its seed, so
the evaluation's hack probabilities (hacks / games, per seed) must agree exactly. Timings are not
compared: they depend on the machine and its load.

The re-runs are marked slow (`make test-slow`, `make test-all`): they must compile at XLA's default
optimisation level, as the published commands did, and `make test` compiles at level 0, whose
last-bit float differences can move a trained policy (actor_critic on maximal_attack-v19 evaluates
0.286 where the published run gives 0.273 on its second seed). A re-run under level 0 fails with a
sentence saying so. The checks that each table's text is what its writer gives from the committed
rows stay in the default suite.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from baselines import results

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# The quickest row of each table (all re-runs are slow: see the module docstring).
QUICK_GRID_CELL = ("actor_critic", "idsgame-maximal_attack-v19")
SLOW_GRID_CELLS = (
    ("ppo", "idsgame-minimal_defense-v7"),
    ("reinforce", "idsgame-random_defense-v7"),
    ("dqn", "idsgame-random_defense-v7"),
)


@pytest.fixture(autouse=True)
def _published_level(request):
    """A re-run (marked slow) compares exactly with runs compiled at XLA's default level: refuse level 0."""
    if request.node.get_closest_marker("slow") and "optimization_level=0" in os.environ.get("XLA_FLAGS", ""):
        pytest.fail(
            "this re-run compares with runs compiled at XLA's default optimisation level; unset "
            "--xla_backend_optimization_level=0 in XLA_FLAGS (make test-slow does)"
        )


def rerun(command: str, tmp_path) -> dict:
    """A published command's JSON result, run in this process (the same programs as the command)."""
    python, dash_m, module_name, *argv = shlex.split(command)
    assert (python, dash_m) == ("python", "-m") and module_name.startswith("baselines."), command
    module = importlib.import_module(module_name)
    with contextlib.redirect_stdout(io.StringIO()):
        return module.main([*argv, *results.HOST_ARGS, "--output-dir", str(tmp_path / "run")])


def assert_same_evaluation(fresh: dict, committed: dict) -> None:
    for key in ("env", "seed", "num_seeds", "env_steps", "eval_episodes", "eval_hack_probability_per_seed"):
        assert fresh[key] == committed[key], (
            f"{key}: today's code gives {fresh[key]!r}, the committed table {committed[key]!r}; "
            "regenerate the table (see baselines/results.py) if the change is intended"
        )


# --- the README's `## Train` table --------------------------------------------------------------------


def test_readme_train_table_is_the_committed_rows():
    assert results.train_table(results.published("train")) in README


def test_train_table_has_a_row_per_command():
    committed = [r["command"] for r in results.published("train")]
    assert committed == [f"python -m baselines.{c}" for c, _, _ in results.TRAIN_COMMANDS]


def test_the_long_evaluations_are_within_two_standard_errors_of_the_optimum():
    """What the README's prose says of the 100,000-game rows."""
    long = [r for r in results.published("train") if r["eval_episodes"] >= 100_000]
    assert len(long) == 2
    for r in long:
        assert abs(r["eval_hack_probability"] - results.OPTIMUM_V7) <= 2 * r["eval_hack_probability_se"], r["command"]


def test_baselines_readme_quotes_the_long_evaluations():
    text = " ".join((ROOT / "baselines" / "README.md").read_text().split())
    for r in results.published("train"):
        if r["eval_episodes"] >= 100_000:
            assert results.hack_text(r) in text, r["command"]


def _train_rows():
    rows = results.published("train")
    return [
        pytest.param(r, id=r["command"][len("python -m baselines.") :].replace(" ", "_"), marks=pytest.mark.slow)
        for r in rows
    ]


@pytest.mark.parametrize("committed", _train_rows())
def test_train_row_reproduces(committed, tmp_path):
    assert_same_evaluation(rerun(committed["command"], tmp_path), committed)


# --- the README's table across versions and opponents -------------------------------------------------


def test_readme_grid_table_is_the_committed_rows():
    assert results.grid_table(results.published("grid")) in README


def _grid_cells():
    return [
        pytest.param(*cell, id="/".join(cell), marks=pytest.mark.slow) for cell in (QUICK_GRID_CELL, *SLOW_GRID_CELLS)
    ]


@pytest.mark.parametrize(("algo", "env_id"), _grid_cells())
def test_grid_cell_reproduces(algo, env_id, tmp_path):
    committed = {(r["algo"], r["env"]): r for r in results.published("grid")}[(algo, env_id)]
    args = results.parse(["--num-seeds", str(committed["num_seeds"]), "--output-dir", str(tmp_path)])
    assert_same_evaluation(results.run_cell(algo, env_id, args), committed)


# --- baselines/REFERENCE_GRID.md --------------------------------------------------------------------


def test_reference_grid_report_is_the_committed_results(tmp_path, monkeypatch):
    from baselines.reference_grid import report

    monkeypatch.setattr(report, "REPORT", str(tmp_path / "REFERENCE_GRID.md"))
    assert report.write_report() == (ROOT / "baselines" / "REFERENCE_GRID.md").read_text()


@pytest.mark.slow
def test_reference_grid_row_reproduces(tmp_path):
    """v0/minimal_defense/tabular_q_learning as the committed run that its row shows ran it (that run's
    command: its budget, seeds and mapping)."""
    from baselines.reference_grid import data, report, run, sections
    from baselines.reference_grid.mapping import full_budget_steps

    path = "v0/minimal_defense/tabular_q_learning"
    every = data.load_jsonl(str(Path(report.RESULTS) / "summaries.jsonl"))
    committed = data.headline(every)[path]
    config = next(c for c in data.load_configs() if c["path"] == path)
    made = []
    for info in sections.load_runs_info(report.RUN_INFO):
        grid = run.parse_args(shlex.split(info["command"])[3:])
        steps, _ = run.run_steps(full_budget_steps(config), grid.budget_scale, grid.max_steps)
        chosen = run.within_budget(run.select([config], grid.filter), grid.min_full_budget, grid.max_full_budget)
        if chosen and (steps, grid.mapping) == data.run_id(committed)[1:]:
            made.append(grid)
    assert made, "no committed command made the run the report shows"
    grid = made[-1]
    fresh = run.run_config(
        config,
        str(tmp_path),
        grid.budget_scale,
        grid.max_steps,
        grid.num_seeds,
        False,
        grid.mapping,
        grid.parallel_factor,
    )
    for key in ("run", "steps_run", "seeds", "final_eval_hack_probability_per_seed"):
        assert fresh[key] == committed[key], (key, fresh[key], committed[key])


# --- baselines/GENERALIZATION.md --------------------------------------------------------------------


def _generalization():
    from baselines import generalization

    meta = json.loads((ROOT / "baselines" / "results" / "generalization" / "results.json").read_text())
    return generalization, generalization.parse_args(shlex.split(meta["command"])[3:]), meta


def test_generalization_report_is_the_committed_results():
    from baselines.generalization_report import markdown

    _, args, meta = _generalization()
    assert markdown(args, meta["rows"], meta) == (ROOT / "baselines" / "GENERALIZATION.md").read_text()


def test_readme_generalization_table_is_the_committed_results():
    """The README's copy of the table (both sides in one, shorter target names) holds the same cells."""
    from baselines.generalization_report import fmt_cell, policies

    _, args, meta = _generalization()
    cells = {(r["side"], r["target"], r["policy"]): r for r in meta["rows"]}
    readme_targets = {
        "held-out generated": f"held-out {args.family}",
        "denser (same size)": "denser",
        **{s: s for s in ("deeper", "wider", "larger")},
        **{f"v{v}": f"v{v} (scenario)" for v in args.version_list},
    }
    columns = [(s, p) for s in ("attacker", "defender") for p in policies(meta["rows"])]
    for line in README.splitlines():
        shown = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or shown[0] not in readme_targets:
            continue
        target = readme_targets.pop(shown[0])
        assert len(shown) == 1 + len(columns), line
        for column, (side, policy) in enumerate(columns):
            row = cells.get((side, target, policy))
            expected = fmt_cell(row) if row is not None and row.get("hack_probability", "") != "" else None
            if expected is not None:
                assert shown[1 + column] == expected, (shown[0], side, policy)
            else:
                assert not any(ch.isdigit() for ch in shown[1 + column]), (shown[0], side, policy)
    assert set(readme_targets) <= {f"v{v}" for v in args.version_list}, f"rows not in the README: {readme_targets}"


@pytest.mark.slow
def test_generalization_specialist_row_reproduces():
    """The attacker's v0 specialist, trained and evaluated as `run_side` does (same keys and budget)."""
    import jax

    import idsjax

    generalization, args, meta = _generalization()
    side, version = "attacker", 0
    env_id = f"idsgame-{generalization.SIDES[side]}-v{version}"
    base = jax.random.fold_in(jax.random.PRNGKey(args.seed), list(generalization.SIDES).index(side))
    env, params = idsjax.make(env_id)
    config = generalization.ppo_config(args, "mlp", env_id)
    trainer, runners, _ = generalization.train(config, env, params, args.seed)
    fresh = generalization.evaluate(trainer, runners, env, params, args.eval_games, jax.random.fold_in(base, 3))
    committed = next(
        r
        for r in meta["rows"]
        if (r["side"], r["target"], r["policy"]) == (side, f"v{version} (scenario)", "mlp specialist")
    )
    assert (fresh["hack_probability"], fresh["se"], fresh["games"]) == (
        committed["hack_probability"],
        committed["se"],
        committed["games"],
    )


# --- baselines/SELFPLAY.md's league comparison --------------------------------------------------------

LEAGUE = ROOT / "baselines" / "results" / "selfplay_league"


def _league():
    from baselines import league_comparison

    published = (LEAGUE / "league_comparison.md").read_text()
    command = re.search(r"Generated by `([^`]*)`", published).group(1)
    _, args = league_comparison.parse(shlex.split(command)[3:])

    def value(text):
        for kind in (int, float):
            with contextlib.suppress(ValueError):
                return kind(text)
        return text

    with open(LEAGUE / "league_comparison.csv") as f:
        rows = [{k: value(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return league_comparison, args, command, rows, published


def test_league_report_is_the_committed_per_seed_rows():
    """The report's tables and its paired statistics, recomputed from the committed per-seed CSV, are
    the committed report, and SELFPLAY.md ends with it."""
    from baselines import league_report, league_statistics

    league_comparison, args, command, rows, published = _league()
    status = []
    for env_id in args.envs:
        for mode in args.modes:
            runs = [r for r in rows if (r["env"], r["mode"]) == (env_id, mode)]
            status.append(
                {
                    "env": env_id,
                    "mode": mode,
                    "done": bool(runs),
                    "wall_seconds": runs[0]["wall_seconds"] if runs else None,
                    "cpu_seconds": runs[0].get("cpu_seconds") if runs else None,
                    "resumed_at": runs[0].get("resumed_at_env_steps") if runs else None,
                }
            )
    # a figure per env of which some run finished (as the command draws them)
    figures = {
        env_id: str(LEAGUE / "figures" / f"payoff_{env_id}.png")
        for env_id in args.envs
        if any(s["env"] == env_id and s["done"] for s in status)
    }
    args.selfplay_md = str(ROOT / args.selfplay_md)  # the figures' links are relative to it
    stats = league_statistics.compare(rows, args.envs, args.modes)
    assert league_report.report(args, command, rows, stats, status, figures) == published
    selfplay_md = (ROOT / "baselines" / "SELFPLAY.md").read_text()
    assert selfplay_md.endswith(published) and league_report.HEADING in selfplay_md


@pytest.fixture(scope="module")
def league_rerun(tmp_path_factory):
    """idsgame-v20 under PSRO (the cheapest of the twelve runs), or while the published run is partial
    the last (env, mode) it holds, re-run as the committed command ran it: today's per-seed rows and
    the committed ones."""
    from baselines import selfplay

    league_comparison, args, _, rows, _ = _league()
    published = [(r["env"], r["mode"]) for r in rows]
    env_id, mode = ("idsgame-v20", "psro") if ("idsgame-v20", "psro") in published else published[-1]
    out = tmp_path_factory.mktemp("league") / "run"
    with contextlib.redirect_stdout(io.StringIO()):
        selfplay.main([*league_comparison.run_argv(args, env_id, mode, str(out)), "--overwrite"])
    saved = json.loads((out / "eval.json").read_text())
    committed = [r for r in rows if (r["env"], r["mode"]) == (env_id, mode)]
    return league_comparison.seed_rows(env_id, mode, saved), committed


EXPLOITABILITY = ("defender_exploitability", "attacker_exploitability")


def _columns(rows, keep):
    # the machine's, not the code's, and whether the published run was resumed
    timings = ("train_seconds", "wall_seconds", "cpu_seconds", "resumed_at_env_steps")
    return [{k: v for k, v in r.items() if k not in timings and keep(k)} for r in rows]


@pytest.mark.slow
def test_league_row_reproduces(league_rerun):
    """Every figure but exploitability: the final policies against each other, the bots and the
    trained best responses, per seed, exactly as committed."""
    fresh, committed = league_rerun
    outside = lambda k: not k.startswith(EXPLOITABILITY)  # noqa: E731
    assert _columns(fresh, outside) == _columns(committed, outside)


@pytest.mark.slow
def test_league_exploitability_reproduces(league_rerun):
    """Exploitability per seed (the chosen responder, its fresh score and SE, its selection score, and the
    trained best response's own value), exactly as committed."""
    fresh, committed = league_rerun
    inside = lambda k: k.startswith(EXPLOITABILITY)  # noqa: E731
    assert _columns(fresh, inside) == _columns(committed, inside)
