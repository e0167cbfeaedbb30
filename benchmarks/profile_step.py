"""Where the time of one batched step goes: cumulative variants of the step, timed side by side.

    python -m benchmarks.profile_step                              # idsgame-v3, batch 8,192
    python -m benchmarks.profile_step --env idsgame-v19 --batch 1024 --dump-hlo

Each variant runs `--steps` steps of `--batch` games in one jitted `lax.scan`; actions, detection
uniforms and one key per step are drawn before the scan and fed as scan inputs, so only the named parts
are inside the timed program. Every variant carries the game state and folds what it computes
(rewards, observations, bot actions) into a checksum, so XLA cannot drop it.

  transition      `idsjax.transition.transition` with given ids and uniforms: no observations
  +obs            ... and both players' observations of the new state
  +obs+keys       ... with the detection uniform drawn from per-game keys (one key per step, split
                  per game inside the scan, as the benchmark protocol does)
  +obs+keys+random ids  ... with both players' ids drawn by `randint` from one batch key per step
  +obs+keys+bot:<name>  ... with one side's id chosen by a scripted bot from the pre-step state
  reset_env       the reset state alone (`env.reset_env`, which gymnax's auto-reset runs at every step;
                  in non-randomised versions it does not depend on the key and XLA hoists it)
  env.step[xs ids]  `vmap(env.step)` with the ids fed as scan inputs and per-game keys split in the
                  scan. On CPU this ran over twice as slow as `vmap(env.step)+random` (ids drawn inside
                  the scan) on the same program otherwise; see benchmarks/NOTES.md
  vmap(step_game)+random  random ids from one batch key, per-game key split inside the scan, gymnax's
                  auto-reset per game under a plain vmap (`env.step_game`: what `vmap(env.step)` ran
                  before issue 16)
  vmap(env.step)+random  the benchmark protocol on one device, the way trainers call it: the same
                  with `jax.vmap(env.step)`, whose batching rule runs `idsjax.batched.step` (same
                  values; only the games that ended are reset)
  batched.step+random  the same with `idsjax.batched.step` called by name (the throughput and
                  vs_reference command lines split the batch over one device per core)

Variants are timed round-robin (`--rounds` rounds) so a load spike on a shared machine hits them all.
The table leads with the median process CPU time per game-step, which other processes' load barely
moves (XLA spreads one program over the cores, so on an idle 2-core machine CPU time is about twice
the wall time), then the best and median wall times; "x transition" compares CPU times. `--dump-hlo` writes
each variant's StableHLO (`jax.jit(f).lower(...).as_text()`) and optimised HLO (`.compile().as_text()`) to
`benchmarks/results/hlo/`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import idsjax
from benchmarks import _harness as h
from idsjax import threefry
from idsjax.bots import BOTS
from idsjax.observations import attacker_observation, defender_observation
from idsjax.transition import transition


def build_variants(env, params, batch: int, steps: int, bots: list[str]):
    """{name: (fn, args)}; `fn(*args)` runs the scan and returns (state, checksum)."""
    config = env.config
    key = jax.random.PRNGKey(0)
    k_reset, k_a, k_d, k_u, k_keys, k_run = jax.random.split(key, 6)
    state0 = jax.jit(jax.vmap(env.reset_env, in_axes=(0, None)))(jax.random.split(k_reset, batch), params)[1]
    xs = {
        "attack": jax.random.randint(k_a, (steps, batch), 0, config.num_attack_ids, jnp.int32),
        "defense": jax.random.randint(k_d, (steps, batch), 0, config.num_defense_actions, jnp.int32),
        "u": jax.random.uniform(k_u, (steps, batch)),
        # One key per step, split per game inside the scan as the protocol does: per-game keys fed as
        # a [steps, batch, 2] input instead made env.step over twice as slow (a strided key layout).
        "key": jax.random.split(k_keys, steps),
    }
    two_agent = env.learner == "both"

    def game_transition(state, attack, defense, u):
        return transition(env.shape, env.network_arrays(params), state, attack, defense, u, params)

    v_transition = jax.vmap(game_transition)
    arrays = env.network_arrays(params)
    v_obs = jax.vmap(lambda s: (attacker_observation(env.shape, arrays, s), defender_observation(s)))

    def scan(body, carry_state, inputs):
        def f(carry, x):
            state, acc = carry
            state, acc = body(state, acc, x)
            return (state, acc), None

        (state, acc), _ = jax.lax.scan(f, (carry_state, h.zero_checksum()), inputs)
        return state, acc

    variants = {}

    def v_transition_only(state, xs):
        def body(state, acc, x):
            state, reward, _ = v_transition(state, x["attack"], x["defense"], x["u"])
            return state, h.fold(reward, acc)

        return scan(body, state, xs)

    def v_with_obs(state, xs):
        def body(state, acc, x):
            state, reward, _ = v_transition(state, x["attack"], x["defense"], x["u"])
            return state, h.fold((reward, v_obs(state)), acc)

        return scan(body, state, xs)

    def v_with_keys(state, xs):
        def body(state, acc, x):
            u = jax.vmap(threefry.uniform)(threefry.split(x["key"], batch))
            state, reward, _ = v_transition(state, x["attack"], x["defense"], u)
            return state, h.fold((reward, v_obs(state)), acc)

        return scan(body, state, xs)

    def v_with_random_ids(state, xs):
        def body(state, acc, x):
            k_ids, k_games = threefry.split(x["key"])
            k_attack, k_defense = threefry.split(k_ids)
            attack = jax.random.randint(k_attack, (batch,), 0, config.num_attack_ids, jnp.int32)
            defense = jax.random.randint(k_defense, (batch,), 0, config.num_defense_actions, jnp.int32)
            u = jax.vmap(threefry.uniform)(threefry.split(k_games, batch))
            state, reward, _ = v_transition(state, attack, defense, u)
            return state, h.fold((reward, v_obs(state)), acc)

        return scan(body, state, xs)

    variants["transition"] = v_transition_only
    variants["+obs"] = v_with_obs
    variants["+obs+keys"] = v_with_keys
    variants["+obs+keys+random ids"] = v_with_random_ids

    for bot_name in bots:
        bot = BOTS[bot_name]
        is_defender_bot = bot_name in ("random_defense", "defend_minimal")

        def v_with_bot(state, xs, bot=bot, is_defender_bot=is_defender_bot):
            def body(state, acc, x):
                k_bot, k_detect = jax.vmap(threefry.split, out_axes=1)(threefry.split(x["key"], batch))
                chosen = jax.vmap(lambda k, s: bot(k, s, config, params))(k_bot, state)
                attack = x["attack"] if is_defender_bot else chosen
                defense = chosen if is_defender_bot else x["defense"]
                u = jax.vmap(threefry.uniform)(k_detect)
                state, reward, _ = v_transition(state, attack, defense, u)
                return state, h.fold((reward, v_obs(state), chosen), acc)

            return scan(body, state, xs)

        variants[f"+obs+keys+bot:{bot_name}"] = v_with_bot

    def v_reset(state, xs):
        def body(state, acc, x):
            # The observation is dropped: in non-randomised versions the reset is a constant, and a
            # checksum of a constant batch makes XLA constant-fold a large reduction at compile time.
            _, fresh = jax.vmap(env.reset_env, in_axes=(0, None))(threefry.split(x["key"], batch), params)
            return fresh.replace(time=fresh.time + state.time), acc

        return scan(body, state, xs)

    variants["reset_env"] = v_reset

    def action_of(x):
        if two_agent:
            return {"attacker": x["attack"], "defender": x["defense"]}
        return x["attack"] if env.learner == "attacker" else x["defense"]

    def v_env_step(state, xs):
        def body(state, acc, x):
            obs, state, reward, term, trunc, _ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                threefry.split(x["key"], batch), state, action_of(x), params
            )
            return state, h.fold((obs, reward, term, trunc), acc)

        return scan(body, state, xs)

    variants["env.step[xs ids]"] = v_env_step

    for name, path in (
        ("vmap(step_game)+random", "step_game"),
        ("vmap(env.step)+random", "vmap"),
        ("batched.step+random", "batched"),
    ):
        _, run = h.random_play(env, params, batch, steps, path=path)

        def v_random(state, xs, run=run):
            del xs
            _, state, acc = run(k_run, state)
            return state, acc

        variants[name] = v_random
    return {name: (fn, (state0, xs)) for name, fn in variants.items()}


def hlo_size(text: str) -> int:
    """Instructions in an optimised HLO module (lines that define a value)."""
    return sum(1 for line in text.splitlines() if " = " in line and not line.lstrip().startswith("//"))


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="idsgame-v3", help="idsjax id (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8192, help="games per step (default: %(default)s)")
    p.add_argument("--steps", type=int, default=64, help="scan length (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=5, help="round-robin timing rounds (default: %(default)s)")
    p.add_argument(
        "--bots", nargs="*", default=None, help="bots to add one at a time (default: all four; none with an empty list)"
    )
    p.add_argument("--only", nargs="*", default=None, help="run only these variants")
    p.add_argument("--dump-hlo", action="store_true", help="write StableHLO and optimised HLO text per variant")
    p.add_argument("--out", type=Path, default=h.RESULTS_DIR, help="output folder (default: benchmarks/results)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    print(h.device_line(), flush=True)
    env, params = idsjax.make(args.env)
    bots = list(BOTS) if args.bots is None else args.bots
    variants = build_variants(env, params, args.batch, args.steps, bots)
    if args.only is not None:
        variants = {k: v for k, v in variants.items() if k in args.only}

    compiled, rows = {}, {}
    for name, (fn, fn_args) in variants.items():
        start = time.perf_counter()
        lowered = jax.jit(fn).lower(*fn_args)
        program = lowered.compile()
        compile_s = time.perf_counter() - start
        optimised = program.as_text()
        rows[name] = {
            "variant": name,
            "compile_s": compile_s,
            "hlo_instructions": hlo_size(optimised),
            "times": [],
            "cpu": [],
        }
        if args.dump_hlo:
            folder = args.out / "hlo"
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{args.env}_b{args.batch}_{name.replace(':', '-').replace('+', 'plus_').replace('.', '_')}"
            (folder / f"{stem}.stablehlo.txt").write_text(lowered.as_text())
            (folder / f"{stem}.hlo.txt").write_text(optimised)
        jax.block_until_ready(program(*fn_args))  # warmup
        compiled[name] = (program, fn_args)
        print(f"  compiled {name} in {compile_s:.2f} s", file=sys.stderr, flush=True)

    for _ in range(args.rounds):
        for name, (program, fn_args) in compiled.items():
            cpu, start = time.process_time(), time.perf_counter()
            jax.block_until_ready(program(*fn_args))
            rows[name]["times"].append(time.perf_counter() - start)
            rows[name]["cpu"].append(time.process_time() - cpu)

    game_steps = args.batch * args.steps
    table = []
    for name, row in rows.items():
        best, median = min(row["times"]), statistics.median(row["times"])
        table.append(
            {
                "variant": name,
                "cpu_ns_per_game_step": 1e9 * statistics.median(row["cpu"]) / game_steps,
                "ns_per_game_step": 1e9 * best / game_steps,
                "median_ns_per_game_step": 1e9 * median / game_steps,
                "steps_per_s": game_steps / best,
                "median_steps_per_s": game_steps / median,
                "compile_s": row["compile_s"],
                "hlo_instructions": row["hlo_instructions"],
            }
        )
    base = table[0]["cpu_ns_per_game_step"] if table else 1.0
    for row in table:
        row["x_transition"] = row["cpu_ns_per_game_step"] / base

    print(f"\n{args.env}, batch {args.batch:,}, {args.steps}-step scans, best and median of {args.rounds} rounds")
    h.print_table(
        table,
        [
            ("variant", "variant"),
            ("cpu_ns_per_game_step", "CPU ns/game-step (median)"),
            ("ns_per_game_step", "wall ns (best)"),
            ("median_ns_per_game_step", "(median)"),
            ("steps_per_s", "steps/s (best)"),
            ("x_transition", "x transition"),
            ("compile_s", "compile s"),
            ("hlo_instructions", "HLO instrs"),
        ],
    )
    out = args.out / f"profile_{args.env}_b{args.batch}.csv"
    h.write_csv(out, [r | {"env_id": args.env, "batch": args.batch, "device": h.jax_device()} for r in table])
    print(f"\nwrote {out}")
    return table


if __name__ == "__main__":
    main()
