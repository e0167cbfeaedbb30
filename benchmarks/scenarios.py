"""Scenario throughput: the registered ids beside the same game over scenario arrays, and a batch in
which every game plays its own generated network (issue 13).

    python -m benchmarks.scenarios                      # batch 8,192, one CPU device
    python -m benchmarks.scenarios --batch 1024 --repeats 3

Rows, all random two-agent play on the standard path (`jax.vmap(env.step)`, gymnax auto-reset),
measured by `benchmarks._harness`'s protocol (one `lax.scan` per timed call, every observation and
reward folded into a checksum, compile timed apart, the median of the repeats):

- `idsgame-v3`, `idsgame-v19`: the registered ids (a static grid; params closed over, as trainers do);
- `scenario v3`, `scenario v19`: `idsjax.make_scenario(builtin_scenario(3))` (and 19), the same games
  over padded arrays with one network for the whole batch;
- `generated <= 8 nodes`: `batch` different networks drawn by `idsjax.scenario.generator.generate`
  (1-2 layers of 1-3 servers, 10 attack types: v3's shape at most), one per game, their params
  stacked and passed to the compiled program (`vmap(env.step, in_axes=(0, 0, 0, 0))`).

The ratios the issue asks for are of rows of this one run: generated ÷ `idsgame-v3` (target ≥ 0.5),
scenario v3 ÷ `idsgame-v3` and scenario v19 ÷ `idsgame-v19` (target ≥ 0.9).
Steps per CPU-second are printed too: on a shared machine they are the steadier figure. Writes
`benchmarks/results/scenarios/scenarios.csv`.
"""

from __future__ import annotations

import argparse
import statistics

import jax
import numpy as np

# isort: split
from benchmarks import _harness as h

RESULTS = h.RESULTS_DIR / "scenarios"
GENERATED = "generated <= 8 nodes"


def generated_family():
    from idsjax.scenario.generator import Family

    return Family(min_layers=1, max_layers=2, min_width=1, max_width=3, attack_types=10, max_value=9)


def per_game_play(env, batch: int, num_steps: int):
    """`reset(key, params) -> state` and `run(key, state, params)` for `batch` games, game i on the
    network of `params[i]` (params are an argument: 8,192 networks are data, not constants)."""
    from idsjax import threefry

    step = jax.vmap(env.step, in_axes=(0, 0, 0, 0))

    def reset(key, params):
        _, state = jax.vmap(env.reset)(jax.random.split(key, batch), params)
        return state

    def run(key, state, params):
        space = env.action_space(jax.tree.map(lambda x: x[0], params))

        def body(carry, _):
            key, state, acc = carry
            key, k_action, k_step = threefry.split(key, 3)
            action = h.sample_actions(space, k_action, batch)
            obs, state, reward, terminated, truncated, _ = step(threefry.split(k_step, batch), state, action, params)
            return (key, state, h.fold((obs, reward, terminated, truncated), acc)), None

        (key, state, acc), _ = jax.lax.scan(body, (key, state, h.zero_checksum()), None, length=num_steps)
        return key, state, acc

    return reset, run


def measure_row(name: str, batch: int, num_steps: int, repeats: int, min_seconds: float, seed: int = 0) -> dict:
    import idsjax
    from idsjax.scenario import builtin_scenario
    from idsjax.scenario.generator import generate

    key = jax.random.PRNGKey(seed)
    if name == GENERATED:
        family = generated_family()
        from idsjax.scenario.env import ScenarioEnv

        env = ScenarioEnv(family.shape, "")
        k_nets, k_layout = jax.random.split(jax.random.PRNGKey(seed + 1))
        arrays = jax.jit(jax.vmap(generate, in_axes=(0, None)), static_argnums=1)(
            jax.random.split(k_nets, batch), family
        )
        params = env.make_params(arrays, jax.random.split(k_layout, batch))
        reset, run = per_game_play(env, batch, num_steps)
        reset_c, compile_reset = h.compile_timed(reset, key, params)
        state = reset_c(key, params)
        run_c, compile_step = h.compile_timed(run, key, state, params, donate=(1,))
        nodes = np.asarray(arrays.node_mask).sum(axis=1)
        distinct = len(
            {np.asarray(arrays.reach[i]).tobytes() + np.asarray(arrays.node_mask[i]).tobytes() for i in range(batch)}
        )
        extra = {"nodes_mean": float(nodes.mean()), "distinct_graphs": distinct}
        args = (key, state, params)
    else:
        if name.startswith("scenario v"):
            env, params = idsjax.make_scenario(builtin_scenario(int(name.removeprefix("scenario v"))))
        else:
            env, params = idsjax.make(name)
        reset, run = h.random_play(env, params, batch, num_steps)
        reset_c, compile_reset = h.compile_timed(reset, key)
        state = reset_c(key)
        run_c, compile_step = h.compile_timed(run, key, state, donate=(1,))
        extra = {}
        args = (key, state)
    times, cpu_times, acc = h.timed_calls(run_c, *args, repeats=repeats, min_seconds=min_seconds)
    wall, cpu = statistics.median(times), max(statistics.median(cpu_times), 1e-9)
    steps = batch * num_steps
    return {
        "env": name,
        "batch": batch,
        "num_steps": num_steps,
        "steps_per_s": steps / wall,
        "steps_per_cpu_s": steps / cpu,
        "compile_s": compile_reset + compile_step,
        "checksum": float(np.sum(acc[0])) + float(np.sum(acc[1])),
        **extra,
    }


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m benchmarks.scenarios", description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--num-steps", type=int, default=64, help="steps per timed call")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--rounds", type=int, default=2, help="measure every row this many times, interleaved")
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    for name in ("batch", "num_steps", "repeats", "rounds"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    print(h.device_line())
    names = ["idsgame-v3", "idsgame-v19", "scenario v3", "scenario v19", GENERATED]
    rows = []
    for r in range(args.rounds):  # interleaved, so a change of load hits every row alike
        for name in names:
            row = measure_row(name, args.batch, args.num_steps, args.repeats, args.min_seconds)
            row["round"] = r
            rows.append(row)
            print(
                f"  round {r}: {name:<22} {row['steps_per_s'] / 1e6:8.2f}M steps/s  "
                f"{row['steps_per_cpu_s'] / 1e6:8.2f}M per CPU-s  (compile {row['compile_s']:.1f} s)",
                flush=True,
            )
    best = {n: max(x["steps_per_s"] for x in rows if x["env"] == n) for n in names}
    best_cpu = {n: max(x["steps_per_cpu_s"] for x in rows if x["env"] == n) for n in names}
    print(f"\nbatch {args.batch}, best of {args.rounds} rounds (wall / CPU):")
    pairs = [("idsgame-v19", "idsgame-v3"), ("scenario v3", "idsgame-v3"), ("scenario v19", "idsgame-v19")]
    for n, ref in pairs + [(GENERATED, "idsgame-v3")]:
        print(f"  {n:<22} ÷ {ref:<12}: {best[n] / best[ref]:.2f} / {best_cpu[n] / best_cpu[ref]:.2f}")
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        columns = list(dict.fromkeys(k for row in rows for k in row))  # the generated row has more
        h.write_csv(RESULTS / "scenarios.csv", [{k: row.get(k, "") for k in columns} for row in rows])
        print(f"results in {RESULTS / 'scenarios.csv'}")
    return rows


if __name__ == "__main__":
    main()
