"""The reference grid's parallel mapping (many games per update for on-policy configurations) and the
selection of configurations by their full budget."""

from __future__ import annotations

import pytest

from baselines.reference_grid import data, run
from baselines.reference_grid.mapping import MIN_ROLLOUT, ON_POLICY, full_budget_steps, map_config, parallel


def _flag(flags, name):
    return flags[flags.index(name) + 1] if name in flags else None


def _int(flags, name):
    return int(_flag(flags, name))


def _configs():
    return {c["path"]: c for c in data.load_configs()}


@pytest.mark.parametrize("factor", [2, 16, 64])
def test_parallel_keeps_every_update_and_gradient_step_of_the_on_policy_mappings(factor):
    """Actor-critic, PPO and self-play: k times the games, rollouts k times shorter (never below
    MIN_ROLLOUT), the same samples, minibatches and epochs per update; REINFORCE: factor times the games
    at the same rollout length; tabular Q and DQN untouched; every change named among the differences."""
    seen = set()
    for path, ref in _configs().items():
        m = map_config(ref)
        if m.trainer is None:
            continue
        p = parallel(m, factor)
        assert m.flags == map_config(ref).flags  # the faithful mapping is left as it was
        envs, steps = _int(m.flags, "--num-envs"), _int(m.flags, "--num-steps")
        penvs, psteps = _int(p.flags, "--num-envs"), _int(p.flags, "--num-steps")
        if m.trainer not in ON_POLICY:
            assert p.flags == m.flags and p.differences == m.differences, path
            continue
        seen.add(m.trainer)
        for name in ("--num-minibatches", "--update-epochs", "--lr", "--gamma", "--hidden"):
            assert _flag(p.flags, name) == _flag(m.flags, name), (path, name)
        if m.trainer == "reinforce":
            assert (penvs, psteps) == (envs * factor, steps), path
        else:
            k = penvs // envs
            assert penvs == envs * k and psteps * k == steps, path
            assert 1 <= k <= factor and (k == 1 or psteps >= MIN_ROLLOUT), path
            if k == 1:
                assert p.flags == m.flags and p.differences == m.differences, path
                continue
        assert len(p.differences) == len(m.differences) + 1 and p.differences[-1].startswith("parallel mapping")
        assert p.full_steps == m.full_steps and p.seeds == m.seeds and p.env_id == m.env_id
    assert seen == set(ON_POLICY)


def test_parallel_factor_below_one_is_refused(capsys, tmp_path):
    ref = _configs()["v14/minimal_defense/ppo"]
    with pytest.raises(ValueError):
        parallel(map_config(ref), 0)
    with pytest.raises(SystemExit) as e:
        run.main(["--mapping", "parallel", "--parallel-factor", "0", "--output-dir", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--parallel-factor" in err[0]


def test_configurations_are_selected_by_their_full_budget():
    configs = data.load_configs()
    below = run.within_budget(configs, None, 5e7)
    above = run.within_budget(configs, 5e7, None)
    assert len(below) + len(above) == len(configs) and {c["path"] for c in below}.isdisjoint(c["path"] for c in above)
    assert all(full_budget_steps(c) < 5e7 for c in below) and all(full_budget_steps(c) >= 5e7 for c in above)
    assert above and below


def test_a_parallel_run_is_not_taken_for_a_faithful_one(tmp_path):
    """The two mappings of a configuration are different runs: a finished faithful run is not skipped
    by a parallel one, and the summary says which mapping ran."""
    ref = {**_configs()["v7/minimal_defense/reinforce"], "eval_episodes": 8}
    faithful = run.run_config(ref, str(tmp_path), 1.0, 1, 1)
    par = run.run_config(ref, str(tmp_path), 1.0, 1, 1, mapping="parallel", factor=2)
    assert not par.get("skipped") and (faithful["mapping"], par["mapping"]) == ("faithful", "parallel")
    assert par["steps_run"] == 2 * faithful["steps_run"]  # one update, of twice the games
