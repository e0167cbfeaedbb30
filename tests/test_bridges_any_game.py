"""The gymnasium, PettingZoo and JaxMARL bridges and the rejax adapter on games that are not registered
ids: a scenario file and a generated family, each given to the bridge as the `(env, params)` pair that
made it (issue 23's capability matrix). The real packages' checkers run on each.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import idsjax
from idsjax.gym_bridge import IdsGameGymEnv, IdsGameVectorEnv
from idsjax.pettingzoo_bridge import IdsGameParallelEnv

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
OFFICE = SCENARIOS / "examples" / "office_dmz.yaml"


def _games(mode: str):
    """A scenario file and a generated family in `mode`, by name."""
    return {
        "scenario": lambda: idsjax.make_scenario(OFFICE, mode=mode),
        "generated": lambda: idsjax.make_generated(dict(max_layers=2, max_width=3), mode=mode),
    }


@pytest.mark.parametrize("kind", ["scenario", "generated"])
def test_gymnasium_checker_on_any_game(kind):
    game = _games("minimal_defense")[kind]()
    env = IdsGameGymEnv(game=game, jit=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the checker reports problems as UserWarnings
        check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space and info["action_mask"].shape == (env.action_space.n,)
    assert env.env_id == game[0].name


@pytest.mark.parametrize("kind", ["scenario", "generated"])
def test_pettingzoo_checker_on_any_game(kind):
    game = _games("")[kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        parallel_api_test(IdsGameParallelEnv(game=game, jit=False), num_cycles=25)


def test_a_builtin_scenario_bridges_to_the_same_game_as_its_registered_id():
    """v3's scenario file through the bridge plays the registered id's game: equal seeds and actions
    give equal observations, rewards, flags and masks, step for step (the engine is one)."""
    registered = IdsGameGymEnv("idsgame-minimal_defense-v3")
    scenario = IdsGameGymEnv(game=idsjax.make_scenario(SCENARIOS / "builtin" / "v3.yaml", mode="minimal_defense"))
    assert registered.observation_space == scenario.observation_space
    assert registered.action_space == scenario.action_space
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        (o1, i1), (o2, i2) = registered.reset(seed=seed), scenario.reset(seed=seed)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(i1["action_mask"], i2["action_mask"])
        for _ in range(40):
            action = int(rng.integers(registered.action_space.n))
            r1, r2 = registered.step(action), scenario.step(action)
            np.testing.assert_array_equal(r1[0], r2[0])
            assert r1[1:4] == r2[1:4]
            for key in ("action_mask", "hacked", "detected", "attack_action", "defense_action"):
                np.testing.assert_array_equal(r1[4][key], r2[4][key], err_msg=key)
            if r1[2] or r1[3]:
                break


def test_vector_bridge_on_a_scenario_resets_finished_games():
    envs = IdsGameVectorEnv(game=idsjax.make_scenario(OFFICE, mode="minimal_defense"), num_envs=4)
    obs, info = envs.reset(seed=3)
    assert obs.shape == (4,) + envs.single_observation_space.shape
    finished = 0
    for _ in range(120):  # past the horizon: every game ends at least once
        actions = np.array([envs.single_action_space.sample(mask=m) for m in info["action_mask"]])
        obs, reward, terminated, truncated, info = envs.step(actions)
        assert obs in envs.observation_space
        finished += int((terminated | truncated).sum())
    assert finished >= 4


def test_bridges_refuse_what_they_cannot_play():
    scenario = idsjax.make_scenario(OFFICE, mode="minimal_defense")
    with pytest.raises(ValueError, match="not both"):
        IdsGameGymEnv("idsgame-minimal_defense-v3", game=scenario)
    with pytest.raises(TypeError, match=r"\(env, params\) pair"):
        IdsGameGymEnv(game=scenario[0])
    batch = idsjax.make_scenario_batch([OFFICE, OFFICE], mode="minimal_defense")
    with pytest.raises(ValueError, match="batch of games"):
        IdsGameGymEnv(game=batch)
    with pytest.raises(ValueError, match="two-agent"):
        IdsGameGymEnv(game=idsjax.make_scenario(OFFICE, mode=""))
    with pytest.raises(ValueError, match="single-agent"):
        IdsGameParallelEnv(game=scenario)


@pytest.mark.parametrize("kind", ["scenario", "generated"])
def test_jaxmarl_view_of_any_two_agent_game(kind):
    from jaxmarl.wrappers.baselines import LogWrapper

    from idsjax.marl import IdsGameMARL

    game = _games("")[kind]()
    view = IdsGameMARL(game=game)
    env = LogWrapper(view)
    obs, state = env.reset(jax.random.PRNGKey(0))
    assert set(obs) == {"attacker", "defender"}
    step = jax.jit(env.step)
    dones = 0
    key = jax.random.PRNGKey(1)
    for _ in range(120):
        key, k_a, k_d, k_s = jax.random.split(key, 4)
        avail = view.get_avail_actions(state.env_state)
        actions = {
            "attacker": jax.random.choice(
                k_a, avail["attacker"].shape[0], p=avail["attacker"] / avail["attacker"].sum()
            ),
            "defender": jax.random.choice(
                k_d, avail["defender"].shape[0], p=avail["defender"] / avail["defender"].sum()
            ),
        }
        obs, state, rewards, done, info = step(k_s, state, actions)
        assert info["returned_episode"].shape == (2,)
        dones += int(done["__all__"])
    assert dones >= 1
    with pytest.raises(ValueError, match="single-agent"):
        IdsGameMARL(game=_games("minimal_defense")[kind]())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["scenario", "generated"])
def test_rejax_trains_on_any_game(kind):
    """rejax's DQN, unchanged, over `LegacyStepAPI` of a scenario game and of a generated family (v0's
    size): it trains, and its greedy policy earns more than uniform random ids (the check made on the
    registered ids)."""
    from test_ecosystem import rejax_dqn_vs_random

    if kind == "scenario":
        game = idsjax.make_scenario(SCENARIOS / "builtin" / "v0.yaml", mode="random_defense")
    else:
        game = idsjax.make_generated(dict(max_layers=1, max_width=1), mode="random_defense")
    lengths, returns, _, random_returns = rejax_dqn_vs_random(game)
    assert returns.mean() > random_returns.mean() + 0.5, (returns.mean(), random_returns.mean())
    assert lengths.max() <= int(game[1].max_steps_in_episode)
