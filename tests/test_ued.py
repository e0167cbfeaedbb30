"""The autocurriculum over generated networks (`baselines.ued`): jaxued's real `LevelSampler` holding
idsjax's generated networks inside jit, the `UnderspecifiedEnv` adapter playing a level exactly as
`ScenarioEnv` plays those params, edits that never reach a held-out network, tiny runs of
`python -m baselines.ued` for PLR and ACCEL on every side (slow), resume equal to an uninterrupted
run, and bad command lines refused with exit code 2 and one sentence."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kit_runs import last_json, run_metrics

from baselines.ued import levels as lv
from baselines.ued import run as ued_run
from idsjax.scenario.canonical import exclusion_set, network_hash
from idsjax.scenario.env import ScenarioEnv
from idsjax.scenario.generated import GeneratedEnv
from idsjax.scenario.generator import named_family
from idsjax.types import EnvState

FAMILY = named_family("small")


def _levels(env, key, n):
    return jax.jit(jax.vmap(env.draw_network, in_axes=(0, None)))(jax.random.split(key, n), env.default_params)


def _take(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_jaxued_tree_map_is_restored_once():
    assert jax.tree_map is jax.tree.map


def test_level_sampler_holds_generated_networks_inside_jit():
    env = GeneratedEnv(FAMILY, "minimal_defense")
    levels = _levels(env, jax.random.PRNGKey(0), 10)
    sampler_def = lv.LevelSampler(
        capacity=6,
        replay_prob=1.0,
        staleness_coeff=0.0,
        minimum_fill_ratio=1.0,
        prioritization="rank",
        prioritization_params={"temperature": 0.1},
        duplicate_check=True,
    )
    scores = jnp.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.05], jnp.float32)

    @jax.jit
    def scenario(levels, key):
        sampler = sampler_def.initialize(_take(levels, 0), {"max_return": jnp.float32(0)})
        early = sampler_def.sample_replay_decision(sampler, key)  # empty buffer: never replays
        first = jax.tree.map(lambda x: x[:6], levels)
        sampler, idx = sampler_def.insert_batch(sampler, first, scores, {"max_return": jnp.arange(6.0)})
        full = sampler_def.sample_replay_decision(sampler, key)
        # A duplicate updates its entry instead of taking a slot; a better new level evicts the worst.
        sampler_dup, dup_idx = sampler_def.insert(sampler, _take(levels, 3), jnp.float32(0.4), {"max_return": 7.0})
        sampler_new, new_idx = sampler_def.insert(sampler, _take(levels, 7), jnp.float32(2.0), {"max_return": 8.0})
        sampler_low, low_idx = sampler_def.insert(sampler, _take(levels, 8), jnp.float32(0.0), {"max_return": 8.0})
        updated = sampler_def.update_batch(sampler, jnp.array([5]), jnp.array([3.0]), {"max_return": jnp.array([9.0])})
        _, (slots, replayed) = sampler_def.sample_replay_levels(updated, key, 400)
        return early, full, sampler, idx, dup_idx, sampler_dup, new_idx, sampler_new, low_idx, updated, slots, replayed

    out = scenario(levels, jax.random.PRNGKey(1))
    early, full, sampler, idx, dup_idx, sampler_dup, new_idx, sampler_new, low_idx, updated, slots, replayed = out
    assert not bool(early) and bool(full)
    assert int(sampler["size"]) == 6 and list(np.asarray(idx)) == list(range(6))
    assert _same(sampler["levels"], jax.tree.map(lambda x: x[:6], levels))
    np.testing.assert_allclose(sampler["scores"], scores)
    assert int(dup_idx) == 3 and int(sampler_dup["size"]) == 6 and float(sampler_dup["scores"][3]) == pytest.approx(0.4)
    # The lowest weighted level (score 0.05, slot 5) is replaced by the better one; a worse one is refused.
    assert int(new_idx) == 5 and _same(_take(sampler_new["levels"], 5), _take(levels, 7))
    assert int(low_idx) == -1
    assert float(updated["scores"][5]) == 3.0 and float(updated["levels_extra"]["max_return"][5]) == 9.0
    # Replay draws buffered networks, the top-scored one most often (rank prioritisation, temperature 0.1).
    slots = np.asarray(slots)
    for i in range(0, 400, 37):
        assert _same(_take(replayed, i), _take(updated["levels"], int(slots[i])))
    counts = np.bincount(slots, minlength=6)
    assert counts.argmax() == 5 and counts[5] > 300


@pytest.mark.parametrize("mode", ["minimal_defense", "maximal_attack", ""])
def test_adapter_plays_a_level_exactly_as_scenario_env(mode):
    game = GeneratedEnv(FAMILY, mode)
    adapter = lv.LevelEnv(game)
    plain = ScenarioEnv(FAMILY.shape, mode)
    params = game.default_params
    levels = _levels(game, jax.random.PRNGKey(2), 8)

    def both_ways(key, level):
        k_reset, k_run = jax.random.split(key)
        obs_a, state_a = adapter.reset_to_level(k_reset, level, params)
        obs_p, state_p = plain.reset_env(k_reset, level)

        def step(carry, k):
            state_a, state_p = carry
            k_a, k_d, k_s = jax.random.split(k, 3)
            masks = plain.legal_action_mask(state_p, level)
            masks = masks if mode == "" else {plain.learner: masks}
            pick = {
                s: jax.random.categorical(kk, jnp.where(m, 0.0, -jnp.inf))
                for (s, m), kk in zip(masks.items(), (k_a, k_d))
            }
            action = pick if mode == "" else pick[plain.learner]
            o_a, state_a2, r_a, d_a, info_a = adapter.step(k_s, state_a, action, params)
            o_p, state_p2, r_p, term_p, info_p = plain.step_env(k_s, state_p, action, level)
            done_p = term_p | plain.is_truncated(state_p2, level)
            # After a game ends both restart from the same level, so the comparison runs on.
            k_r = jax.random.fold_in(k_s, 1)
            restart_a = adapter.reset_to_level(k_r, level, params)[1]
            restart_p = plain.reset_env(k_r, level)[1]
            state_a2 = jax.tree.map(lambda x, y: jnp.where(d_a, x, y), restart_a, state_a2)
            state_p2 = jax.tree.map(lambda x, y: jnp.where(done_p, x, y), restart_p, state_p2)
            return (state_a2, state_p2), (o_a, o_p, r_a, r_p, d_a, done_p, state_a2, state_p2)

        _, trace = jax.lax.scan(step, (state_a, state_p), jax.random.split(k_run, 60))
        return (obs_a, obs_p, state_a, state_p), trace

    start, trace = jax.jit(jax.vmap(both_ways))(jax.random.split(jax.random.PRNGKey(3), 8), levels)
    obs_a, obs_p, state_a, state_p = start
    assert _same(obs_a, obs_p)
    fields = list(EnvState.__dataclass_fields__)
    assert all(_same(getattr(state_a, f), getattr(state_p, f)) for f in fields)
    assert _same(state_a.network, levels)
    o_a, o_p, r_a, r_p, d_a, d_p, s_a, s_p = trace
    assert _same(o_a, o_p) and _same(r_a, r_p) and _same(d_a, d_p)
    assert all(_same(getattr(s_a, f), getattr(s_p, f)) for f in fields)
    assert np.asarray(d_a).sum() > 8, "the comparison should cover several finished games"


def test_auto_replay_replays_the_same_level():
    game = GeneratedEnv(FAMILY, "minimal_defense")
    env = lv.AutoReplayWrapper(lv.LevelEnv(game))
    params = game.default_params
    level = _take(_levels(game, jax.random.PRNGKey(4), 1), 0)

    def run(key):
        _, state = env.reset_to_level(key, level, params)

        def step(state, k):
            mask = game.legal_action_mask(state.env_state, params)
            action = jax.random.categorical(k, jnp.where(mask, 0.0, -jnp.inf))
            _, state, _, done, _ = env.step(jax.random.fold_in(k, 1), state, action, params)
            return state, (done, state.env_state.network)

        return jax.lax.scan(step, state, jax.random.split(key, 80))[1]

    done, networks = jax.jit(run)(jax.random.PRNGKey(5))
    assert np.asarray(done).sum() >= 2
    assert all(_same(_take(networks, i), level) for i in range(0, 80, 9))


def test_an_edit_never_reaches_a_held_out_network():
    game = GeneratedEnv(FAMILY, "minimal_defense")
    params = game.default_params
    parents = _levels(game, jax.random.PRNGKey(6), 16)
    keys = jax.random.split(jax.random.PRNGKey(7), 16)
    mutate = jax.jit(jax.vmap(lv.mutate_level, in_axes=(None, 0, 0, None, None)), static_argnums=(0, 3))
    children, edits = mutate(game, keys, parents, 2, params)
    assert (np.asarray(edits) > 0).all()
    hashes = np.asarray(jax.vmap(lambda c: network_hash(c, game.shape))(children))
    held = game.excluding(exclusion_set(hashes[:8]), params)
    again, edits_again = mutate(game, keys, parents, 2, held)
    assert _same(_take(again, slice(0, 8)), _take(parents, slice(0, 8)))
    assert (np.asarray(edits_again)[:8] == 0).all()
    # Children whose networks are not held out are made as before (unless one equals a held-out network).
    kept = ~np.isin(hashes[8:].view(np.uint64), hashes[:8].view(np.uint64)).ravel()
    assert _same(_take(again, np.arange(8, 16)[kept]), _take(children, np.arange(8, 16)[kept]))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--side", "both", "--mode", "minimal_defense"], "--side both trains both players"),
        (["--side", "attacker", "--mode", "maximal_attack"], "--side attacker plays minimal_defense or random_defense"),
        (["--method", "greedy"], "invalid choice"),
        (["--network", "gru"], "invalid choice"),
        (["--generator", "huge"], "invalid choice"),
        (["--generator-arg", "max_layers=0"], "max_layers"),
        (["--env", "idsgame-v7"], "--env names a registered game"),
        (["--min-fill", "0"], "--min-fill must be in (0, 1]"),
        (["--buffer-size", "0"], "--buffer-size must be positive"),
        (["--num-envs", "6", "--num-minibatches", "4", "--num-steps", "3"], "divisible by --num-minibatches"),
        (["--node-mixer", "attention"], "--network nodes"),
        (["--heldout", "100000"], "--heldout must be at most 10000"),
        # One server in one layer: too few distinct networks for 500 held out.
        (["--heldout", "500", "--generator-arg", "max_layers=1", "--generator-arg", "max_width=1"], "--heldout 500:"),
    ],
)
def test_bad_arguments_exit_2_with_one_sentence(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        ued_run.main(argv + ["--no-progress", "--output-dir", str(tmp_path / "run"), "--total-timesteps", "4096"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # the sentence (argparse prints its usage line above it)
    assert last.startswith("python -m baselines.ued: error:") and message in last, err
    assert "Traceback" not in err


def test_multi_process_options_are_refused(capsys):
    with pytest.raises(SystemExit) as e:
        ued_run.main(["--coordinator-address", "localhost:1234", "--num-processes", "2", "--process-id", "0"])
    assert e.value.code == 2
    assert "ued trains in one process" in capsys.readouterr().err


# -- tiny runs (compiling the whole trainer takes a minute or two on a loaded 2-core machine) -----------
TINY = [
    "--total-timesteps", "4096", "--num-envs", "8", "--num-steps", "64", "--num-minibatches", "2",
    "--update-epochs", "1", "--buffer-size", "16", "--min-fill", "0.25", "--heldout", "10",
    "--eval-episodes", "40", "--chunks", "4", "--no-progress",
]  # fmt: skip


def _check_run(out, result, side, method, updates):
    rows = run_metrics(out)
    assert len(rows) == updates and {r["seed"] for r in rows} == {"0"}
    assert result["side"] == side and result["method"] == method and result["env_steps"] == 4096
    report = json.loads(open(os.path.join(out, "eval.json")).read())
    sets = report["sets"]
    expected = {"family", "heldout"}
    if side == "both":
        expected |= {f"{s}_vs_bot_{x}" for s in ("attacker", "defender") for x in ("family", "heldout")}
    assert set(sets) == expected
    for s in sets.values():
        assert s["episodes"] == 40 and 0 <= s["hack_probability"] <= 1
        assert s["hack_probability_se"] == pytest.approx(
            np.sqrt(s["hack_probability"] * (1 - s["hack_probability"]) / 40), abs=1e-4
        )
    replays = [float(r["replay"]) for r in rows]
    assert sum(replays) >= 1, "the buffer never replayed"
    if method == "accel":
        mutates = [float(r["mutate"]) for r in rows]
        assert sum(mutates) >= 1
        for i, m in enumerate(mutates):  # a mutate update follows every replay
            assert m == (i > 0 and replays[i - 1] == 1.0)
        learned = [float(r["learned"]) for r in rows]
        assert learned == replays  # gradients on replayed levels only
    assert float(rows[-1]["buffer_size"]) >= 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "side, method",
    # Each method on each kind of learner, within CI's time: the attacker's ACCEL also runs in the resume
    # and two-device tests below; the defender is the attacker's program in another mode.
    [
        ("attacker", "plr"),
        ("defender", "accel"),
        ("both", "plr"),
        ("both", "accel"),
    ],
)
def test_tiny_runs(side, method, tmp_path, capsys):
    out = tmp_path / "run"
    ued_run.main(TINY + ["--side", side, "--method", method, "--output-dir", str(out)])
    result = last_json(capsys)
    _check_run(out, result, side, method, updates=8)


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path, capsys):
    args = TINY + ["--side", "attacker", "--method", "accel", "--num-seeds", "2"]
    full, split = tmp_path / "full", tmp_path / "split"
    ued_run.main(args + ["--output-dir", str(full)])
    uninterrupted = last_json(capsys)
    ued_run.main(args + ["--output-dir", str(split), "--stop-after", "2048"])
    assert last_json(capsys)["stopped"]
    ued_run.main(["--resume", "--output-dir", str(split), "--no-progress"])
    resumed = last_json(capsys)
    assert run_metrics(full) == run_metrics(split)
    for key in ("env_steps", "eval_heldout_hack_probability", "eval_family_hack_probability"):
        assert resumed[key] == uninterrupted[key], key


@pytest.mark.slow
def test_two_devices_share_one_buffer(tmp_path):
    """`--devices 2` (forced CPU devices): each device plays half the games on the levels both drew
    alike, the scores are gathered into one buffer, and the whole budget is trained once."""
    from forced_devices import trained

    out = tmp_path / "two"
    result = trained(["baselines.ued", *TINY, "--side", "attacker", "--method", "accel", "--devices", "2",
                      "--output-dir", str(out)])  # fmt: skip
    _check_run(out, result, "attacker", "accel", updates=8)
