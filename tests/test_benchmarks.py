"""Throughput benchmarks under pytest (`-m benchmark`, `make bench`; excluded from the default suite).

Each test asserts only a ratio of two figures measured in the same process, interleaved call by call,
so the machine's speed and its load cancel out; never an absolute time. The figures are printed
(`pytest -s`) for the record.
"""

import time

import jax
import pytest

from benchmarks import _harness as h
from benchmarks import train_throughput as tt

pytestmark = pytest.mark.benchmark

CALLS = 7  # timed calls of each contender, alternated


def interleaved_best(programs: dict, calls: int = CALLS) -> dict:
    """Best seconds per call of each `name -> (fn, state)` (fn(state) -> state), the contenders
    called in turn so that a burst of load on the shared machine hits them alike."""
    states = {name: jax.block_until_ready(fn(state)) for name, (fn, state) in programs.items()}  # warmup
    best = {name: float("inf") for name in programs}
    for _ in range(calls):
        for name, (fn, _) in programs.items():
            t0 = time.perf_counter()
            states[name] = jax.block_until_ready(fn(states[name]))
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def random_play_program(env_id: str, batch: int, num_steps: int, path: str = "vmap"):
    """A compiled random-play scan on one device and its starting carry (key, state); `path` is one of
    `benchmarks._harness.PATHS`."""
    env, params = h.make_env(env_id)
    reset, run = h.random_play(env, params, batch, num_steps, path=path)
    key = jax.random.PRNGKey(0)
    state = jax.jit(reset)(key)
    run_c = jax.jit(run, donate_argnums=(1,))

    def call(carry):
        key, state = carry
        key, state, _ = run_c(key, state)
        return key, state

    return call, (key, state)


def test_vmap_env_step_as_fast_as_batched_step():
    """Issue 16: the path every user takes, `jax.vmap(env.step)`, within 0.9x of `idsjax.batched.step`
    (its batching rule runs the same program; the margin is timing noise, not a different program)."""
    batch, steps = 8192, 20
    best = interleaved_best(
        {
            "batched": random_play_program("idsgame-v3", batch, steps, path="batched"),
            "vmap": random_play_program("idsgame-v3", batch, steps, path="vmap"),
        }
    )
    ratio = best["batched"] / best["vmap"]
    print(
        f"\nidsgame-v3 batch {batch}: batched.step {batch * steps / best['batched']:,.0f} steps/s, "
        f"vmap(env.step) {batch * steps / best['vmap']:,.0f} steps/s, vmap / batched {ratio:.2f}"
    )
    assert ratio >= 0.9


def test_batched_step_faster_than_per_game_vmap():
    """Resetting only the finished games and materialising the draws pays: `batched.step` is at least
    as fast as the per-game step under a plain `vmap` (what `vmap(env.step)` ran before issue 16)."""
    batch, steps = 8192, 20
    best = interleaved_best(
        {
            "batched": random_play_program("idsgame-v3", batch, steps, path="batched"),
            "step_game": random_play_program("idsgame-v3", batch, steps, path="step_game"),
        }
    )
    ratio = best["step_game"] / best["batched"]
    print(
        f"\nidsgame-v3 batch {batch}: batched.step {batch * steps / best['batched']:,.0f} steps/s, "
        f"vmap(step_game) {batch * steps / best['step_game']:,.0f} steps/s, ratio {ratio:.2f}"
    )
    assert ratio >= 1.0


def test_environment_at_least_half_cartpole():
    """Random play of idsgame-v3 (the game the README headlines) steps at least half as fast as
    gymnax CartPole-v1 under the same protocol, same batch, same device."""
    batch, steps = 8192, 20
    best = interleaved_best(
        {
            "idsjax": random_play_program("idsgame-v3", batch, steps),
            "cartpole": random_play_program("CartPole-v1", batch, steps),
        }
    )
    ratio = best["cartpole"] / best["idsjax"]
    print(
        f"\nbatch {batch}: idsgame-v3 {batch * steps / best['idsjax']:,.0f} steps/s, "
        f"CartPole-v1 {batch * steps / best['cartpole']:,.0f} steps/s, ratio {ratio:.2f}"
    )
    assert ratio >= 0.5


def training_program(env_id: str, num_envs: int):
    """PPO's compiled K-update scan for `env_id` with the configuration `python -m baselines.ppo
    --num-envs N` trains (CartPole in the trainers' view), and its initial runner."""
    from baselines import ppo

    config = tt.trainer_config("ppo", tt.DEFAULT_ENV, num_envs, 1)
    env, params = tt.make_env(env_id)
    trainer = ppo.make_train(config, env, params)
    k = 2

    def chunk(runner):
        runner, _ = jax.lax.scan(lambda r, _: trainer.update(r), runner, None, k)
        return runner

    runner = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    return jax.jit(chunk, donate_argnums=0), runner, k * trainer.steps_per_update


def test_ppo_training_at_least_half_cartpole():
    """PPO trains on idsgame-minimal_defense-v7 at least half as fast (environment steps per second)
    as the same PPO, same hyperparameters and widths, on gymnax CartPole-v1."""
    num_envs = 256
    ids_fn, ids_runner, steps = training_program(tt.DEFAULT_ENV, num_envs)
    cp_fn, cp_runner, _ = training_program(tt.YARDSTICK, num_envs)
    best = interleaved_best({"idsjax": (ids_fn, ids_runner), "cartpole": (cp_fn, cp_runner)}, calls=4)
    ratio = best["cartpole"] / best["idsjax"]
    print(
        f"\nPPO, {num_envs} envs: {tt.DEFAULT_ENV} {steps / best['idsjax']:,.0f} steps/s, "
        f"CartPole-v1 {steps / best['cartpole']:,.0f} steps/s, ratio {ratio:.2f}"
    )
    assert ratio >= 0.5
