"""The exact best hack probability against defend-minimal (`baselines.ceiling`), checked three ways:
its two bounds meet, they meet at the value derived by hand, and the policy that the search says is
optimal reaches that value when played in the JAX environment itself."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from baselines import ceiling
from idsjax.rollout import rollout


def rush_hack_probability() -> float:
    """v7/v3 by hand. Every server and the data node have one vulnerable type (defense 0), detection
    2 (a failed attack is detected with probability 0.2). Defend-minimal raises one zero cell per step,
    uniformly among the zero *servers* while at least two remain (the data node, first in id order,
    is skipped, Q12). The attacker attacks the vulnerable type of a server X in the first row, then of
    the server Y below it, then of the data node, and retries after a failure (a retry always succeeds:
    the defender does not raise a cell at 1 while cells at 0 remain).

    - X raised at step 1: 1/6. Then Y is raised at step 2 or 3 with probability 1/5 + 4/5 * 1/4 = 2/5.
    - X not raised at step 1: Y raised at step 1 or 2 with probability 1/5 + 4/5 * 1/5 = 9/25.
    - The data node is raised at step 6 at the earliest, after the attacker has reached it.
    """
    survive = 0.8
    x_ok = 5 / 6 * ((1 - 9 / 25) + 9 / 25 * survive)
    x_raised = 1 / 6 * survive * ((1 - 2 / 5) + 2 / 5 * survive)
    return x_ok + x_raised


# v7 is v3's network with dense rewards (the same optimum): it runs under `slow` to keep the default
# suite within its budget.
@pytest.mark.parametrize(
    "env_id",
    [pytest.param("idsgame-minimal_defense-v7", marks=pytest.mark.slow), "idsgame-minimal_defense-v3"],
)
def test_bounds_meet_at_the_hand_derived_optimum(env_id):
    row = ceiling.solve(env_id, env_seed=0, horizon=5)
    assert row["lower"] == pytest.approx(row["upper"], abs=1e-9)
    assert row["lower"] == pytest.approx(rush_hack_probability(), abs=1e-9)


def test_upper_bound_holds_at_every_horizon():
    exact = rush_hack_probability()
    for h in (2, 3, 4):
        row = ceiling.solve("idsgame-minimal_defense-v7", env_seed=0, horizon=h)
        assert row["lower"] <= exact + 1e-9 <= row["upper"] + 2e-9


def test_optimal_policy_reaches_the_ceiling_in_the_environment():
    """Play the rush policy in the JAX environment: 40,000 games, within 4 standard errors."""
    env, params = idsjax.make("idsgame-minimal_defense-v7")
    cfg = env.config
    reach = np.asarray(cfg.network.attack_reachable)
    vulnerable = np.asarray(params.initial_defense).argmin(axis=1)
    # From each position: the first reachable node (start -> a first-row server -> below -> data).
    target = np.array([np.flatnonzero(r)[0] if r.any() else 0 for r in reach])
    attack_id = jnp.asarray(target * cfg.attack_types + vulnerable[target], jnp.int32)
    games = 40_000

    def policy(key, obs, state):
        return attack_id[state.position]

    episodes = jax.jit(
        lambda key: rollout(env, params, policy, key, games, num_steps=30, outcome=lambda t: t.info["hacked"])
    )(jax.random.PRNGKey(7))
    finished, hacked = episodes.finished, episodes.outcome & episodes.finished
    assert bool(finished.all())
    p = rush_hack_probability()
    assert abs(float(hacked.mean()) - p) < 4 * np.sqrt(p * (1 - p) / games)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "idsgame-random_defense-v7"], "defend-minimal"),
        (["--env", "idsgame-minimal_defense-v19"], "fixed layout"),
        (["--env", "idsgame-nope-v7"], "unknown id"),
        (["--horizon", "0"], "positive"),
        (["--env", "idsgame-minimal_defense-v2", "--scenario", "scenarios/builtin/v2.yaml"], "not both"),
        (["--scenario", "/nonexistent/net.yaml"], "net.yaml"),
        (["--scenario", "scenarios/examples/office_dmz.yaml"], "fixed layout"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        ceiling.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_scenario_file_gives_its_registered_ids_rows(capsys):
    """`--scenario` on a built-in version's file prints the id's rows (the same game, the lockstep
    tests), under `scenario` instead of `env`; each row is one JSON line."""
    path = "scenarios/builtin/v2.yaml"
    mine = ceiling.main(["--scenario", path, "--horizon", "3", "4"])
    theirs = ceiling.main(["--env", "idsgame-minimal_defense-v2", "--horizon", "3", "4"])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert lines == mine + theirs
    for m, t in zip(mine, theirs):
        assert m.pop("scenario") == path and t.pop("env") == "idsgame-minimal_defense-v2"
        m.pop("seconds"), t.pop("seconds")
        assert m == t
    assert [r["exact"] for r in mine] == [False, True] and mine[1]["lower"] == pytest.approx(0.72, abs=1e-9)
