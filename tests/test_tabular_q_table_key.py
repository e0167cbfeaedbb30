"""`baselines.tabular_q`'s reference-style table (`--table-key`, `--tie-break`, `--bootstrap`,
`--eps-schedule`): the rows it keys, one update checked by hand, and the flags' refusals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import idsjax
from baselines import cli, env_steps, tabular_q
from baselines.reference_grid import data
from baselines.reference_grid.mapping import map_config

ENV = "idsgame-minimal_defense-v0"


def config(*flags: str, env: str = ENV) -> dict:
    return cli.parse_config(
        tabular_q, ["--env", env, "--total-timesteps", "1", "--num-envs", "1", "--num-steps", "1", *flags]
    )


def test_attacker_node_key_is_the_flagged_node_and_nothing_else():
    env, params = idsjax.make(ENV)
    index, rows = tabular_q.make_index(config("--table-key", "attacker_node"), env, params)
    n, flag = env.config.num_nodes, env.config.attack_types
    assert rows == n + 1
    obs, _ = env.reset(jax.random.PRNGKey(0), params)
    obs = np.asarray(obs)
    node = int(np.flatnonzero(obs[:, flag] == 1)[0])
    raised = obs.copy()
    raised[:, :flag] += 3  # other attack values, same node: the same row
    moved = obs.copy()
    moved[:, flag] = 0
    moved[(node + 1) % n, flag] = 1
    lost = obs.copy()
    lost[:, flag] = 0  # no flagged node: its own row, never a node's
    got = np.asarray(index(jnp.asarray(np.stack([obs, raised, moved, lost]))))
    assert got.tolist() == [node, node, (node + 1) % n, n]

    index, rows = tabular_q.make_index(config("--table-key", "single"), env, params)
    assert rows == 1 and np.asarray(index(jnp.asarray(np.stack([obs, moved, lost])))).tolist() == [0, 0, 0]


@pytest.mark.parametrize("bootstrap, expected", [("all_always", -100 + 0.9 * 0.5), ("legal", -100.0)])
def test_one_update_by_hand(bootstrap, expected):
    """A game that ends at its first step (the step limit, -100): with the reference's target the
    cell bootstraps from the final observation's row anyway, `r + γ max Q[s']`, over every id."""
    cfg = config(
        "--table-key", "attacker_node", "--tie-break", "first", "--bootstrap", bootstrap, "--lr", "1.0",
        "--gamma", "0.9", "--q-init", "0.5", "--eps-start", "0", "--eps-end", "0", "--mask-illegal",
    )  # fmt: skip
    env, params = idsjax.make(ENV)
    params = params.replace(max_steps_in_episode=1)
    trainer = tabular_q.make_train(cfg, env, params)
    runner = trainer.init(jax.random.PRNGKey(0))
    obs = np.asarray(runner.env.obs[0])
    node = int(np.flatnonzero(obs[:, env.config.attack_types] == 1)[0])
    mask = env_steps.legal_mask(env, params, runner.env, True)
    first_legal = int(np.flatnonzero(np.asarray(mask)[0])[0])
    after, _ = trainer.update(runner)
    changed = np.argwhere(np.asarray(after.q != runner.q))
    assert changed.tolist() == [[node, first_legal]]  # greedy over a flat table: the lowest legal id
    assert float(after.q[node, first_legal]) == pytest.approx(expected)
    probs = trainer.probs(runner, runner.env.obs, mask)
    assert np.asarray(probs)[0].tolist() == np.eye(probs.shape[-1])[first_legal].tolist()


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--table-key", "node"], "--table-key must be one of observation, attacker_node, single, got 'node'"),
        (["--tie-break", "last"], "--tie-break must be one of uniform, first"),
        (["--bootstrap", "never"], "--bootstrap must be one of legal, all_always"),
        (["--eps-schedule", "cosine"], "--eps-schedule must be one of linear, exponential"),
        (["--eps-schedule", "exponential", "--eps-end", "0"], "needs --eps-start and --eps-end above 0"),
        (["--table-key", "attacker_node", "--env", "idsgame-random_attack-v0"], "trains the defender"),
    ],
)
def test_bad_values_are_one_sentence_and_exit_2(flags, words, capsys):
    with pytest.raises(SystemExit) as e:
        tabular_q.main(flags + ["--output-dir", "/tmp/unused-tabular-q"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("python -m baselines.tabular_q: error:") and words in err


def test_the_grid_keys_every_tabular_configuration_as_the_reference():
    for ref in data.load_configs():
        m = map_config(ref)
        if m.trainer != "tabular_q":
            continue
        key = m.flags[m.flags.index("--table-key") + 1]
        full = ref["agent_config"].get("tab_full_state_space")
        assert key == ("observation" if full else "single" if m.learner == "defender" else "attacker_node"), m.path
        assert m.flags[m.flags.index("--tie-break") + 1] == "first"
        assert m.flags[m.flags.index("--bootstrap") + 1] == "all_always"
        assert not any("no flag" in d for d in m.differences), m.path
