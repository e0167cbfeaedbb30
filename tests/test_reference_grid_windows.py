"""The grid's training loop (`baselines.reference_grid.run.train_windows`) learns exactly what it
learnt before it was made faster: one compiled chunk for every window (a loop whose trip count is an
argument where the last window is shorter, so that it runs the same program; the scan of old where the
windows are equal), the programs compiled ahead of time in two threads, the evaluations deferred until
their program is ready, the windows being the chunks of `baselines.host_loop.run_chunks` (the trainers'
host loop). The reference here is the loop as it was: one static scan of each window's own length,
evaluated right after the window. Every array of the final state, every training row and every
evaluation row must be equal, bit for bit."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest

from baselines import host_loop
from baselines.host_loop import run_chunks
from baselines.reference_grid import data, run
from baselines.reference_grid.mapping import build_config, map_config

# (path, steps per seed, seeds): budgets whose last window is shorter than the others (the loop), and
# one whose windows are equal (the scan).
CASES = {
    "tabular_q_equal_windows": ("v0/minimal_defense/tabular_q_learning", 320, 2),
    "tabular_q": ("v0/minimal_defense/tabular_q_learning", 300, 2),
    "dqn": ("v0/random_defense/dqn", 233, 2),
    "actor_critic": ("v7/maximal_attack/actor_critic", 60_000, 2),
    "reinforce": ("v7/minimal_defense/reinforce", 60_000, 2),
    "ppo": ("v14/minimal_defense/ppo", 60_000, 2),
    "selfplay": ("v0/two_agents/tabular_q_learning", 15_000, 2),
}
DEFAULT = ("tabular_q",)


def static_windows(m, config: dict, seeds: list[int]) -> dict:
    """The grid's loop before the change: a scan of each window's length, evaluation after it."""
    import jax.numpy as jnp

    trainer, k_chunk, init, _, evaluate = run._programs(m, config)

    @functools.partial(jax.jit, static_argnums=1)
    @functools.partial(jax.vmap, in_axes=(0, None))
    def chunk(r, length: int):
        return jax.lax.scan(lambda c, _: trainer.update(c), r, None, length)

    spu = trainer.steps_per_update
    windows = math.ceil(trainer.num_updates / k_chunk)
    at = set(run.eval_windows(m.evaluations, windows))
    runner = init(jnp.stack([jax.random.PRNGKey(s) for s in seeds]))
    train_rows, evaluations, done = [], [], 0
    lengths = []
    for w in range(1, windows + 1):
        length = min(k_chunk, trainer.num_updates - done)
        lengths.append(length)
        runner, metrics = chunk(runner, length)
        done += length
        eps = run._epsilon(config, m, w / windows)
        train_rows += run._window_rows(metrics, w, done * spu, spu, length, seeds, eps)
        if w in at:
            keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), 1_000_003 + w) for s in seeds])
            evaluations.append((w, jax.device_get(evaluate(runner, keys))))
    return {"runner": runner, "train_rows": train_rows, "evaluations": evaluations, "lengths": lengths}


def same(a, b) -> bool:
    """Equal values, NaN equal to NaN (a window without a finished game has NaN means)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


@pytest.mark.parametrize(
    "family", [f if f in DEFAULT else pytest.param(f, marks=pytest.mark.slow) for f in sorted(CASES)]
)
def test_windows_learn_what_static_scans_learnt(family, monkeypatch):
    path, steps, num_seeds = CASES[family]
    ref = {c["path"]: c for c in data.load_configs()}[path]
    m = map_config(ref)
    seeds = list(m.seeds[:num_seeds])
    config = build_config(m, ref, steps, num_seeds, run.WINDOWS, "/tmp/unused")

    before = static_windows(m, config, seeds)
    ran = []

    def recorded(*args, **kwargs):  # the grid's windows are the one host loop's chunks
        for chunk in run_chunks(*args, **kwargs):
            ran.append(chunk.updates)
            yield chunk

    monkeypatch.setattr(host_loop, "run_chunks", recorded)
    after = run.train_windows(m, config, seeds)

    assert len(set(before["lengths"])) == (1 if family.endswith("equal_windows") else 2)
    assert ran == before["lengths"]
    leaves_before, leaves_after = jax.tree.leaves(before["runner"]), jax.tree.leaves(after["runner"])
    assert len(leaves_before) == len(leaves_after)
    for x, y in zip(leaves_before, leaves_after):
        assert np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True)
    assert len(after["train_rows"]) == len(before["train_rows"])
    for r, s in zip(after["train_rows"], before["train_rows"]):
        assert r.keys() == s.keys() and all(same(r[k], s[k]) for k in r), (r, s)
    # The deferred evaluations saw each window's own state, with that window's keys.
    by_window = {(r["window"], r["seed"]): r for r in after["eval_rows"]}
    assert len(by_window) == len(after["eval_rows"]) == len(before["evaluations"]) * num_seeds
    for w, ev in before["evaluations"]:
        for s in range(num_seeds):
            row = by_window[(w, s)]
            assert row["episodes"] == int(ev["episodes"][s])
            assert row["hack_probability"] == float(ev["hack_probability"][s])
            assert row["avg_attacker_episode_rewards"] == float(ev["attacker_return"][s])
            assert row["avg_defender_episode_rewards"] == float(ev["defender_return"][s])
            assert row["avg_episode_steps"] == float(ev["length"][s])
    timing = after["timing"]
    assert {"compile_init", "compile_chunk", "compile_evaluate", "train", "evaluate"} <= set(timing)
    assert after["steps_run"] == before["train_rows"][-1]["env_steps"] >= steps
