"""The capability x game matrix (issue 23): what the project does with each kind of game — a registered
id, a scenario file, a generated family — cell by cell. `MATRIX` is the one statement of it: the
README's table is written from it (a test below keeps them equal), every "yes" cell that this module
can check is checked on a tiny run, and every "refused" cell is checked to refuse in one sentence.
"untested" cells run the same generic code as a tested cell but no test runs them; "not built" cells
are the work that remains. Both are stated, not tested."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
from pathlib import Path

import jax
import numpy as np
import pytest
from kit_runs import SMOKE, SMOKE_EXTRA

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "examples" / "office_dmz.yaml"
KINDS = ("registered id", "scenario file", "generated family")
# The command-line options naming a game of each kind (attacker vs defend-minimal in all three).
GAME_ARGS = {
    "registered id": ["--env", "idsgame-minimal_defense-v3"],
    "scenario file": ["--scenario", str(SCENARIO)],
    "generated family": ["--generator", "small", "--mode", "minimal_defense"],
}
TRAINERS = ("ppo", "dqn", "tabular_q", "reinforce", "actor_critic")
YES, UNTESTED, NOT_BUILT = "yes", "untested", "not built"

# capability -> (registered id, scenario file, generated family, the tests that check the row).
# "refused: ..." names the sentence a refusal gives; "n/a: ..." a question the game has no answer to.
HERE = "this module"
MATRIX = {
    **{
        f"train `baselines.{algo}` (evaluate, checkpoint, `checkpoint:` policy)": (YES, YES, YES, HERE)
        for algo in TRAINERS
    },
    "stop with Ctrl-C and `--resume`": (YES, YES, YES, "test_interrupt, test_checkpoints, test_interrupt_any_game"),
    "self-play `baselines.selfplay` (evaluation, payoff matrix, exploitability, checkpoint, `--resume`, `checkpoint:` policy)": (
        YES,
        YES,
        YES,
        "test_selfplay, test_selfplay_games",
    ),
    "terminal game and GIFs (`idsjax.play`, `idsjax.render`)": (
        YES,
        YES,
        YES,
        "test_play, test_play_scenario, test_play_generated, test_render, test_render_scenario, test_render_generated",
    ),
    "trajectories (record, save, load, replay)": (YES, YES, YES, "test_trajectories, test_trajectories_any_game"),
    "game server (`idsjax.serve`)": (YES, YES, YES, "test_serve, test_serve_e2e, test_serve_any_game"),
    "server `--record`": (YES, YES, YES, "test_serve, test_serve_any_game"),
    "exact optimum vs defend-minimal (`baselines.evaluate`)": (
        YES,
        YES,
        "n/a: a family draws a new network every game",
        "test_evaluate, test_ceiling",
    ),
    "exploitability, full-information enumeration (`baselines.exploitability`)": (
        YES,
        YES,
        "n/a: a family draws a new network every game",
        "test_exploitability, test_exploitability_cli, test_exploitability_games",
    ),
    "exploitability, real-information search vs a frozen defender (`baselines.exploitability`)": (
        YES,
        YES,
        "n/a: a family draws a new network every game",
        "test_exploitability, test_exploitability_cli",
    ),
    "exploitability by scripted and trained responders (`baselines.exploitability --br-timesteps`)": (
        YES,
        YES,
        YES,
        "test_exploitability_cli",
    ),
    "gymnasium and PettingZoo bridges": (YES, YES, YES, "test_bridges, test_bridges_any_game"),
    "gymnax's API and wrappers (`jax.vmap(env.step)`, `LogWrapper`, `FlattenObservationWrapper`)": (
        YES,
        YES,
        YES,
        "test_contract, test_scenario_env, " + HERE,
    ),
    "JaxMARL and rejax adapters": (YES, YES, YES, "test_ecosystem, test_bridges_any_game"),
}


def matrix_table() -> str:
    """The README's table: one row per capability, one column per kind of game, and its tests."""
    lines = ["| capability | " + " | ".join(KINDS) + " | checked by |", "|---" * (len(KINDS) + 2) + "|"]
    for capability, (*cells, tests) in MATRIX.items():
        tests = ", ".join("`tests/test_capabilities.py`" if t == HERE else f"`tests/{t}.py`" for t in tests.split(", "))
        lines.append(f"| {capability} | " + " | ".join(cells) + f" | {tests} |")
    return "\n".join(lines)


def test_the_readme_shows_the_matrix():
    readme = (ROOT / "README.md").read_text()
    assert matrix_table() in readme, "README.md's capability table differs from tests/test_capabilities.MATRIX"


def _train(algo: str, kind: str, out: Path) -> dict:
    module = importlib.import_module(f"baselines.{algo}")
    argv = SMOKE + SMOKE_EXTRA[algo] + GAME_ARGS[kind] + ["--output-dir", str(out)]
    with contextlib.redirect_stdout(io.StringIO()):
        return module.main(argv)


# Every cell compiles its trainer (10-60 s here on a cold cache), so the whole row is under `slow`;
# the default suite keeps the refusals, the gymnax row and the README check.
FAST = set()
CELLS = [
    pytest.param(algo, kind, marks=() if (algo, kind) in FAST else pytest.mark.slow)
    for algo in TRAINERS
    for kind in KINDS
]


@pytest.mark.parametrize("algo,kind", CELLS)
def test_every_trainer_trains_evaluates_and_reloads_on_every_kind_of_game(algo, kind, tmp_path):
    from baselines import checkpoints, scenarios

    result = _train(algo, kind, tmp_path / "run")
    games = result["eval_episodes"]
    p, se = result["eval_hack_probability"], result["eval_hack_probability_se"]
    assert games == 20 and 0.0 <= p <= 1.0
    assert se == pytest.approx(np.sqrt(p * (1 - p) / games), abs=1e-4)  # a binomial SE over its games

    # The saved run names its game, and its policy loads on that game and plays legal-range ids.
    config = checkpoints.load_config(str(tmp_path / "run"))
    assert scenarios.is_scenario_run(config) == (kind != "registered id")
    env, params = scenarios.make_env(config)
    _, side, act, probs = checkpoints.load_run(str(tmp_path / "run"), env)
    assert side == "attacker"
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    mask = env.attack_mask(state, params)
    ids = np.asarray(act(jax.random.PRNGKey(1), obs[None], mask[None]))
    assert ids.shape == (1,) and 0 <= int(ids[0]) < env.num_ids("attacker")
    dist = np.asarray(probs(obs[None], mask[None]))[0]
    assert dist.sum() == pytest.approx(1.0, abs=1e-5)
    assert dist[~np.asarray(mask)].sum() == pytest.approx(0.0, abs=1e-6)  # the trainers mask illegal ids


def test_every_cell_is_a_status_and_every_row_names_tests_that_exist():
    for capability, (*cells, tests) in MATRIX.items():
        for cell in cells:
            assert cell in (YES, UNTESTED, NOT_BUILT) or re.fullmatch(r"(refused|n/a): [a-z].+", cell), (
                capability,
                cell,
            )
        for name in tests.split(", "):
            assert name == HERE or (ROOT / "tests" / f"{name}.py").is_file(), (capability, name)


def _game(kind: str):
    import dataclasses

    from baselines import scenarios
    from idsjax.scenario.generator import Family

    if kind == "registered id":
        return scenarios.make_env({"env": "idsgame-minimal_defense-v3", "env_seed": 0})
    if kind == "scenario file":
        return scenarios.make_env({"scenario": str(SCENARIO), "mode": "minimal_defense", "env_seed": 0})
    import idsjax

    return idsjax.make_generated(dataclasses.asdict(Family()), mode="minimal_defense")


@pytest.mark.parametrize("kind", KINDS)
def test_gymnax_wrappers_play_every_kind_of_game(kind):
    """gymnax's own wrappers (the real package) over each kind of game, vmapped over 4 games: the
    episode statistics count the steps played and the flattened observation keeps every value."""
    from gymnax.wrappers.purerl import FlattenObservationWrapper, LogWrapper

    env, params = _game(kind)
    wrapped = LogWrapper(FlattenObservationWrapper(env))
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    obs, state = jax.vmap(wrapped.reset, in_axes=(0, None))(keys, params)
    assert obs.shape == (4, int(np.prod(env.observation_space(params).shape)))
    actions = jax.numpy.zeros(4, jax.numpy.int32)
    step = jax.jit(jax.vmap(wrapped.step, in_axes=(0, 0, 0, None)))
    ended = np.zeros(4, bool)
    for t in range(3):
        keys = jax.random.split(jax.random.PRNGKey(t + 1), 4)
        obs, state, reward, terminated, truncated, info = step(keys, state, actions, params)
        ended |= np.asarray(terminated | truncated)
    assert obs.shape[0] == 4 and reward.shape == (4,)
    # LogWrapper counted every step: 3 in a game still running, and a finished game logged its return.
    assert np.all(np.asarray(state.episode_lengths)[~ended] == 3)
    assert np.all(np.asarray(state.returned_episode_valid)[ended])
