"""`python -m baselines.ppo --node-features`: the role and depth columns of `idsjax.node_features` in
training, the final evaluation and wherever the checkpoint loads (`checkpoints.load_policy`,
`baselines.evaluate`), on a scenario file and on a generated family; a resumed run equal to an
uninterrupted one; the game server's remote agents (no state) on fixed and on generated networks;
nothing changed without the option (a run saved before it included); local views refused."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from kit_runs import last_json, run_metrics

import idsjax
from baselines import checkpoints, cli, evaluate, ppo, scenarios
from baselines.errors import UsageError
from idsjax.node_features import NodeFeatures, node_features

CHAIN = "scenarios/examples/chain_with_shortcut.yaml"
GAMES = {
    # an attacker on a hand-made network, a defender on networks drawn at every reset
    "scenario": (["--scenario", CHAIN, "--mode", "minimal_defense"], "attacker"),
    "generated": (["--generator", "small", "--mode", "maximal_attack"], "defender"),
}
TINY = ["--network", "nodes", "--total-timesteps", "1024", "--num-envs", "8", "--num-steps", "16"]
TINY += ["--chunks", "2", "--eval-episodes", "20", "--no-progress", "--checkpoint-every", "512"]


def _exit_2(fn, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        fn()
    assert exc.value.code == 2
    return capsys.readouterr().err


# --- fast: the option's configuration and refusals, the columns a loaded policy adds ----------------


@pytest.mark.parametrize("game", GAMES)
def test_the_option_wraps_the_game_and_is_recorded(game):
    argv, _ = GAMES[game]
    plain = cli.parse_config(ppo, TINY + argv)
    featured = cli.parse_config(ppo, TINY + argv + ["--node-features"])
    assert plain["node_features"] is False and featured["node_features"] is True
    assert {k: v for k, v in plain.items() if k not in ("node_features", "cli_flags")} == {
        k: v for k, v in featured.items() if k not in ("node_features", "cli_flags")
    }
    env, params = scenarios.make_env(plain)
    wrapped, wrapped_params = scenarios.make_env(featured)
    assert not isinstance(env, NodeFeatures) and isinstance(wrapped, NodeFeatures)
    assert wrapped._env == env and jax.tree.all(
        jax.tree.map(lambda a, b: bool(np.array_equal(a, b)), params, wrapped_params)
    )
    rows, width = env.observation_shape(env.learner)
    assert wrapped.observation_shape(env.learner) == (rows, width + NodeFeatures.columns)


@pytest.mark.parametrize("game", GAMES)
def test_without_the_option_the_game_is_as_before(game):
    """A run saved before the option has no `node_features` key; one saved with it off records false:
    both build the very environment the game names, unwrapped (the same observations, the same program)."""
    argv, _ = GAMES[game]
    config = cli.parse_config(ppo, TINY + argv)
    before = {k: v for k, v in config.items() if k != "node_features"}
    for cfg in (config, before):
        env, _ = scenarios.make_env(cfg)
        assert not isinstance(env, NodeFeatures)
        assert env == scenarios._game(cfg)[0]


@pytest.mark.parametrize("env_id", ["idsgame-minimal_defense-v14", "idsgame-minimal_defense-v18"])
def test_a_local_view_is_refused_with_exit_2(env_id, capsys):
    err = _exit_2(lambda: ppo.main(["--env", env_id, "--node-features", "--no-progress"]), capsys)
    assert "--node-features" in err and "one observation row per node" in err
    assert err.strip().splitlines()[-1].count(". ") == 0  # one sentence


def test_a_defender_on_a_local_view_id_may_have_them():
    """Only the attacker's view of v14 is local: a defender's rows are nodes."""
    config = cli.parse_config(ppo, ["--env", "idsgame-maximal_attack-v14", "--node-features"])
    env, _ = scenarios.make_env(config)
    assert isinstance(env, NodeFeatures)


def _chain(max_nodes=None):
    return idsjax.make_scenario(CHAIN, mode="minimal_defense", max_nodes=max_nodes)


def test_columns_without_the_state_on_a_fixed_network_equal_those_from_the_state():
    """The game server's remote agents hold only their view: on a fixed network the columns come from
    the params and equal the state's; on a generated family, whose network is in the state, refused."""
    env, params = _chain()
    columns = checkpoints._columns({"node_features": True}, env, params, "RUN")
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    with_state, without = columns(obs, state), columns(obs, None)
    np.testing.assert_array_equal(with_state, without)
    np.testing.assert_array_equal(with_state[:, obs.shape[1] :], node_features(env.network_arrays(params)))
    np.testing.assert_array_equal(with_state[:, : obs.shape[1]], obs)
    assert checkpoints._columns({"node_features": False}, env, params, "RUN")(obs, state) is obs
    assert checkpoints._columns({}, env, params, "RUN")(obs, state) is obs  # a run saved before the option
    wrapped = NodeFeatures(env)
    assert checkpoints._columns({"node_features": True}, wrapped, params, "RUN")(obs, state) is obs

    gen, gen_params = scenarios.make_env(cli.parse_config(ppo, TINY + GAMES["generated"][0]))
    gen_columns = checkpoints._columns({"node_features": True}, gen, gen_params, "RUN")
    obs, state = gen.reset(jax.random.PRNGKey(0), gen_params)
    assert gen_columns(obs, state).shape == (obs.shape[0], obs.shape[1] + NodeFeatures.columns)
    with pytest.raises(UsageError, match="drawn at each reset: pass the game state"):
        gen_columns(obs, None)


# --- slow: tiny runs, resumed, loaded and evaluated ----------------------------------------------


@pytest.mark.slow  # three tiny runs and their loading: about 60-90 s on a loaded 2-core machine (cold cache)
@pytest.mark.parametrize("game", GAMES)
def test_a_run_with_columns_trains_resumes_and_plays_from_its_checkpoint(game, tmp_path, capsys):
    argv, side = GAMES[game]
    full, split = tmp_path / "full", tmp_path / "split"
    ppo.main(TINY + argv + ["--node-features", "--output-dir", str(full)])
    uninterrupted = last_json(capsys)
    with open(full / checkpoints.CONFIG_FILE) as f:
        config = json.load(f)
    assert config["node_features"] is True and config["network"] == "nodes"

    ppo.main(TINY + argv + ["--node-features", "--output-dir", str(split), "--stop-after", "512"])
    stopped = last_json(capsys)
    assert stopped.get("stopped") and stopped["env_steps"] == 512
    ppo.main(["--resume", "--output-dir", str(split), "--no-progress"])
    resumed = last_json(capsys)
    assert run_metrics(full) == run_metrics(split)
    for key in ("env_steps", "eval_hack_probability", "eval_attacker_return", "eval_defender_return"):
        assert resumed[key] == uninterrupted[key], key

    # Loaded on the game's own environment (as play, render and the server do), the policy adds the
    # columns itself: the same moves as the policy handed the wrapped environment's observations.
    env, params = scenarios.make_env({**config, "node_features": False})
    assert not isinstance(env, NodeFeatures)
    wrapped = NodeFeatures(env)
    own = jax.jit(checkpoints.load_policy(str(full), env, params))
    given = jax.jit(checkpoints.load_policy(str(full), wrapped, params))
    key = jax.random.PRNGKey(7)
    obs, state = env.reset(key, params)
    moves = set()
    for _ in range(30):
        key, k_act, k_step = jax.random.split(key, 3)
        a = own(k_act, obs, state)
        assert int(given(k_act, wrapped.get_obs(state, params), state)) == int(a)
        moves.add(int(a))
        obs, state, *_ = env.step(k_step, state, a, params)
    assert moves  # it played

    # A run trained without the columns refuses an environment that has them.
    with pytest.raises(UsageError, match="trained with --node-features"):
        local = idsjax.make("idsgame-minimal_defense-v18")
        checkpoints.load_policy(str(full), *local)

    # baselines.evaluate loads it from the command line like any run.
    evaluate.main([f"--{side}", f"checkpoint:{full}", *argv, "--games", "20", "--no-optimum"])
    report = last_json(capsys)
    assert report is not None


@pytest.mark.slow  # one tiny run: about 30 s on a loaded 2-core machine (cold cache)
def test_a_run_without_columns_refuses_an_environment_with_them(tmp_path, capsys):
    argv, _ = GAMES["scenario"]
    ppo.main(TINY + argv + ["--output-dir", str(tmp_path)])
    with open(tmp_path / checkpoints.CONFIG_FILE) as f:
        assert json.load(f)["node_features"] is False
    env, params = _chain()
    checkpoints.load_policy(str(tmp_path), env, params)  # its own game loads
    with pytest.raises(UsageError, match="trained without --node-features"):
        checkpoints.load_policy(str(tmp_path), NodeFeatures(env), params)
