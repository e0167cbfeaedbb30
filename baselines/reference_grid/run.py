"""`python -m baselines.reference_grid`: run any subset of the reference's 179 configurations.

    python -m baselines.reference_grid --filter v7/                    # every v7 configuration
    python -m baselines.reference_grid --max-steps 3000 --output-dir runs/reference_grid
    python -m baselines.reference_grid --filter 'v19/*/ppo_openai' --budget-scale 0.01

Each configuration trains its seeds in one compiled program (`vmap`; the reference's seeds
0, 999, 299, 399, 499 as the seeds' PRNG keys), in `WINDOWS` training windows, and evaluates at the
reference's evaluation frequency relative to its budget (at most one evaluation per window, always one at
the end) on the reference's number of evaluation episodes. It leaves in `<output-dir>/<path>/`:
`train.csv` and `eval.csv` in the reference's columns (average episode reward of both players, average
episode steps, hack probability, ε where the learner explores), `curves.png` (every seed) and
`summary.json`, written last: a configuration whose summary holds the same run parameters is finished and
is skipped by the next invocation (`--force` re-runs it).

Where the time goes (benchmarks/NOTES.md §14): with one game per seed, compiling a configuration's
programs costs more than training it (tabular Q on v7 at its full budget: about 16 s of compilation
against 5 s of training). So every window runs one compiled chunk: a scan of its length where the
windows are equal, otherwise a loop whose trip count is an argument, so that the shorter last window
needs no program of its own. The chunk and the evaluation compile side by side, ahead of time, while
`init` runs; the evaluations wait for their program while training goes on, each on the state its
window left. No number changes: tests/test_reference_grid_windows.py compares every state, training
row and evaluation row with the loop as it was (a scan of each window's length, evaluated at once),
bit for bit.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from baselines.errors import UsageError
from baselines.reference_grid import data
from baselines.reference_grid.mapping import (
    MAPPINGS,
    build_config,
    epsilon_schedule,
    map_config,
    parallel,
    trainer_module,
)

WINDOWS = 10
SUMMARY = "summary.json"
TRAIN_CSV, EVAL_CSV, CURVES = "train.csv", "eval.csv", "curves.png"
COLUMNS = [
    "seed",
    "reference_seed",
    "window",
    "env_steps",
    "episodes",
    "avg_attacker_episode_rewards",
    "avg_defender_episode_rewards",
    "avg_episode_steps",
    "hack_probability",
    "epsilon_values",
]
DEFAULT_OUTPUT = os.path.join("runs", "reference_grid")


def select(configs: list[dict], filters: list[str] | None) -> list[dict]:
    """Configurations whose path starts with, or matches (glob), any filter; all without filters."""
    if not filters:
        return list(configs)
    return [c for c in configs if any(c["path"].startswith(f) or fnmatch.fnmatch(c["path"], f) for f in filters)]


def within_budget(configs: list[dict], min_full: int | None, max_full: int | None) -> list[dict]:
    """Configurations whose full budget (steps per seed) is at least `min_full` and below `max_full`."""
    from baselines.reference_grid.mapping import full_budget_steps

    return [
        c
        for c in configs
        if (min_full is None or full_budget_steps(c) >= min_full)
        and (max_full is None or full_budget_steps(c) < max_full)
    ]


def run_steps(full_steps: int, scale: float, max_steps: int | None) -> tuple[int, bool]:
    """(steps per seed to run, capped): the scaled full budget, at most `max_steps`."""
    steps = max(1, int(math.ceil(full_steps * scale)))
    if max_steps:
        steps = min(steps, max_steps)
    return steps, steps < full_steps


def eval_windows(evaluations: int, windows: int) -> list[int]:
    """The windows (1-based) after which to evaluate: the reference's evaluations spread over the run
    as over its budget, at most one per window, always the last."""
    n = max(1, min(evaluations, windows))
    return sorted({max(1, round(j * windows / n)) for j in range(1, n + 1)} | {windows})


def _programs(m, config: dict):
    """(trainer, init, chunk, evaluate) jitted and vmapped over seeds."""
    import jax
    import jax.numpy as jnp

    import idsjax
    from baselines.trainer import plan_updates
    from idsjax.rollout import rollout

    env, params = idsjax.make(config["env"], seed=config["env_seed"])
    n_eval = config["eval_episodes"]
    if m.trainer == "selfplay":
        from baselines.selfplay import make_train, play, policy_actor, side_policies

        trainer = make_train(config, env, params)
        pols = side_policies(config, env)

        def evaluate(runner, key):  # the final attacker against the final defender
            att = policy_actor(env, params, pols["attacker"], runner.att.params, "attacker", config["mask_illegal"])
            dfn = policy_actor(env, params, pols["defender"], runner.dfn.params, "defender", config["mask_illegal"])
            return play(env, params, att, dfn, key, n_eval)
    else:
        from baselines.evaluation import learner_mask

        trainer = trainer_module(m.trainer).make_train(config, env, params)

        def evaluate(runner, key):
            def policy(k, obs, state):
                return trainer.act(runner, obs, learner_mask(env, params, state, config["mask_illegal"]), k)

            return rollout(
                env,
                params,
                policy,
                key,
                n_eval,
                outcome=lambda t: t.info["hacked"],
                accumulate=lambda t: {
                    "attacker_return": t.info["attacker_reward"],
                    "defender_return": t.info["defender_reward"],
                },
            )

    def summarise(ep):
        f = ep.finished
        d = jnp.maximum(f.sum(), 1)
        mean = lambda x: jnp.where(f, x, 0).sum() / d  # noqa: E731
        return {
            "episodes": f.sum(),
            "hack_probability": mean(ep.outcome.astype(jnp.float32)),
            "attacker_return": mean(ep.totals["attacker_return"]),
            "defender_return": mean(ep.totals["defender_return"]),
            "length": mean(ep.length.astype(jnp.float32)),
        }

    _, k_chunk = plan_updates(config, trainer.steps_per_update)

    def scan_chunk(r, n_active):  # every window runs k_chunk updates (n_active): the scan of old
        return jax.lax.scan(lambda c, _: trainer.update(c), r, None, k_chunk)

    def loop_chunk(r, n_active):
        """`n_active <= k_chunk` updates, their metrics in the first `n_active` rows of `k_chunk`."""
        shapes = jax.eval_shape(trainer.update, r)[1]
        rows = jax.tree.map(lambda x: jnp.zeros((k_chunk, *x.shape), x.dtype), shapes)

        def one(i, carry):
            r, rows = carry
            r, metrics = trainer.update(r)
            return r, jax.tree.map(lambda row, x: jax.lax.dynamic_update_index_in_dim(row, x, i, 0), rows, metrics)

        return jax.lax.fori_loop(0, n_active, one, (r, rows))

    # One program for every window. Where the last window is shorter, a scan of its own length was a
    # second program to compile (4-13 s) for a few updates; a loop whose trip count is an argument
    # runs every window instead (not batched, so under `vmap` it stays one loop, and it writes each
    # update's metrics in place as a scan does; a `lax.cond` skipping a scan's tail cost DQN 5-11%,
    # its replay buffer passing through both branches). Where every window is full, the static scan
    # stays: the dynamic loop costs 2-8% of DQN's update (0.6% of tabular Q's, ~2% of A2C's), more
    # than a compile on a long run. benchmarks/NOTES.md §14.
    chunk = scan_chunk if trainer.num_updates % k_chunk == 0 else loop_chunk
    chunk = jax.jit(jax.vmap(chunk, in_axes=(0, None)))

    return (
        trainer,
        k_chunk,
        jax.jit(jax.vmap(trainer.init)),
        chunk,
        jax.jit(jax.vmap(lambda r, k: summarise(evaluate(r, k)))),
    )


def _window_rows(metrics: dict, window: int, steps: int, spu: int, k_chunk: int, seeds: list[int], eps) -> list[dict]:
    """One training-window row per seed: episode-weighted means over the window's updates."""
    import numpy as np

    host = {k: np.asarray(v) for k, v in metrics.items()}  # [seeds, k_chunk]
    rows = []
    for s, ref_seed in enumerate(seeds):
        n = host["episodes"][s].astype(float)
        total = n.sum()

        def wmean(key):
            v = np.nan_to_num(host[key][s])
            return float((v * n).sum() / total) if total else float("nan")

        rows.append(
            {
                "seed": s,
                "reference_seed": ref_seed,
                "window": window,
                "env_steps": steps,
                "episodes": int(total),
                "avg_attacker_episode_rewards": wmean("attacker_return"),
                "avg_defender_episode_rewards": wmean("defender_return"),
                "avg_episode_steps": float(k_chunk * spu / total) if total else float("nan"),
                "hack_probability": wmean("hack_probability"),
                "epsilon_values": "" if eps is None else float(eps),
            }
        )
    return rows


def _write_csv(path: str, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)


def _epsilon(config: dict, m, frac_done: float):
    """ε at the end of a window for the ε-greedy learners (the trainer's schedule), else None."""
    if m.trainer not in ("tabular_q", "dqn"):
        return None
    x = min(1.0, frac_done / config["eps_fraction"])
    start, end = config["eps_start"], config["eps_end"]
    if config.get("eps_schedule") == "exponential":
        return round(start * (end / start) ** x, 5)
    return round(start + x * (end - start), 5)


def run_key(steps: int, seeds: list[int], m) -> dict:
    return {
        "steps_per_seed": steps,
        "seeds": seeds,
        "eval_episodes": m.eval_episodes,
        "trainer": m.trainer,
        "env_id": m.env_id,
        "flags": m.flags,
    }


def is_done(out: str, key: dict) -> bool:
    try:
        with open(os.path.join(out, SUMMARY)) as f:
            return json.load(f).get("run") == key
    except (OSError, ValueError):
        return False


def mapped(ref: dict, mapping: str = "faithful", factor: int = 16):
    """One configuration's mapping: `map_config`'s, or its parallel variant (`mapping.parallel`)."""
    m = map_config(ref)
    return parallel(m, factor) if mapping == "parallel" else m


def run_config(
    ref: dict,
    out_root: str,
    scale: float,
    max_steps: int | None,
    num_seeds: int | None,
    force: bool = False,
    mapping: str = "faithful",
    factor: int = 16,
) -> dict:
    """Train and evaluate one configuration (or return its finished summary); write its files."""
    import numpy as np

    m = mapped(ref, mapping, factor)
    out = os.path.join(out_root, ref["path"])
    seeds = (
        list(m.seeds) if num_seeds is None else [m.seeds[i] if i < len(m.seeds) else 1000 + i for i in range(num_seeds)]
    )
    steps, capped = run_steps(m.full_steps, scale, max_steps)
    key = run_key(steps, seeds, m)
    if not force and is_done(out, key):
        with open(os.path.join(out, SUMMARY)) as f:
            return {**json.load(f), "skipped": True}
    os.makedirs(out, exist_ok=True)
    summary = {
        "path": ref["path"],
        "title": ref["title"],
        "reference_env": ref["env"],
        "env_id": m.env_id,
        "trainer": m.trainer,
        "learner": m.learner,
        "status": m.status,
        "differences": m.differences,
        "reference_episodes": ref["num_episodes"],
        "full_steps": m.full_steps,
        "run": key,
        "capped": capped,
        "mapping": mapping,
    }
    if m.trainer is None:
        summary.update({"final_eval_hack_probability": None})
        _atomic_json(os.path.join(out, SUMMARY), summary)
        return summary

    t0 = time.perf_counter()
    config = build_config(m, ref, steps, len(seeds), WINDOWS, out)
    trained = train_windows(m, config, seeds)
    train_rows, eval_rows, windows = trained["train_rows"], trained["eval_rows"], trained["windows"]
    seconds = time.perf_counter() - t0
    _write_csv(os.path.join(out, TRAIN_CSV), train_rows)
    _write_csv(os.path.join(out, EVAL_CSV), eval_rows)
    final = [r["hack_probability"] for r in eval_rows if r["window"] == windows]
    episodes = [sum(r["episodes"] for r in train_rows if r["seed"] == s) for s in range(len(seeds))]
    plot_curves(out, f"{ref['path']} ({m.env_id}, {m.trainer})", train_rows, eval_rows)
    summary.update(
        {
            "steps_run": trained["steps_run"],
            "episodes_run_per_seed": episodes,
            "seconds": round(seconds, 2),
            "timing": trained["timing"],
            "seeds": seeds,
            "final_eval_hack_probability_per_seed": [round(x, 4) for x in final],
            "final_eval_hack_probability": round(float(np.mean(final)), 4),
            "final_eval_hack_probability_se": round(float(np.std(final, ddof=1) / np.sqrt(len(final))), 4)
            if len(final) > 1
            else None,
            "final_eval_attacker_reward": round(
                float(np.mean([r["avg_attacker_episode_rewards"] for r in eval_rows if r["window"] == windows])), 4
            ),
            "final_eval_defender_reward": round(
                float(np.mean([r["avg_defender_episode_rewards"] for r in eval_rows if r["window"] == windows])), 4
            ),
            "trainer_config": {k: v for k, v in config.items() if k not in ("output_dir", "progress", "resume")},
        }
    )
    _atomic_json(os.path.join(out, SUMMARY), summary)
    return summary


def train_windows(m, config: dict, seeds: list[int]) -> dict:
    """Train `config` (resolved by `build_config`) for every seed in `WINDOWS` windows and evaluate
    after the windows `eval_windows` names. Returns the final training state (`runner`, seeds
    stacked), the rows of `train.csv` and `eval.csv`, the number of windows, the steps run per seed,
    and `timing`: each program's compile seconds, and the seconds spent training and evaluating with
    the training steps per second per seed they give (what a budget's run time is estimated from).

    The windows are the chunks of `baselines.host_loop.run_chunks`, the trainers' host loop. The
    chunk and the evaluation compile in two threads while `init` compiles and runs here (XLA
    compiles on one core and releases the GIL); training starts once its chunk is ready, and the
    windows' states wait for the evaluation program (each window's state is a fresh array, nothing
    is donated, so a pending one is exactly the state that window left)."""
    import jax
    import jax.numpy as jnp

    from baselines.host_loop import run_chunks

    trainer, k_chunk, init, chunk, evaluate = _programs(m, config)
    rngs = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    spu = trainer.steps_per_update
    # Every update of the budget runs: the last window takes the remainder (`plan_updates` no longer
    # rounds the budget up to whole chunks).
    windows = -(-trainer.num_updates // k_chunk)
    at = set(eval_windows(m.evaluations, windows))

    def eval_keys(w: int):
        return jnp.stack([jax.random.fold_in(jax.random.PRNGKey(s), 1_000_003 + w) for s in seeds])

    def compiled(program, *args):
        t = time.perf_counter()
        return program.lower(*args).compile(), time.perf_counter() - t

    timing = {}
    train_rows, eval_rows, pending = [], [], []

    def evaluate_pending(program) -> None:
        t = time.perf_counter()
        for w, done_steps, state in pending:
            ev = jax.device_get(program(state, eval_keys(w)))
            for s, ref_seed in enumerate(seeds):
                eval_rows.append(
                    {
                        "seed": s,
                        "reference_seed": ref_seed,
                        "window": w,
                        "env_steps": done_steps,
                        "episodes": int(ev["episodes"][s]),
                        "avg_attacker_episode_rewards": float(ev["attacker_return"][s]),
                        "avg_defender_episode_rewards": float(ev["defender_return"][s]),
                        "avg_episode_steps": float(ev["length"][s]),
                        "hack_probability": float(ev["hack_probability"][s]),
                        "epsilon_values": "",
                    }
                )
        pending.clear()
        timing["evaluate"] = timing.get("evaluate", 0.0) + time.perf_counter() - t

    abstract = jax.eval_shape(init, rngs)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="reference-grid-compile") as pool:
        chunk_job = pool.submit(compiled, chunk, abstract, jax.ShapeDtypeStruct((), jnp.int32))
        eval_job = pool.submit(compiled, evaluate, abstract, eval_keys(windows))
        init_program, timing["compile_init"] = compiled(init, rngs)
        runner = init_program(rngs)
        chunk_program, timing["compile_chunk"] = chunk_job.result()
        eval_program = None
        train_seconds = 0.0
        # A window is a chunk; its training time is the chunk's alone (rows and evaluations apart).
        for w, window in enumerate(run_chunks(chunk_program, runner, trainer.num_updates, k_chunk), start=1):
            runner, (metrics,) = window.runner, window.outputs
            train_seconds += window.seconds
            done_steps = window.done * spu
            eps = _epsilon(config, m, w / windows)
            train_rows += _window_rows(metrics, w, done_steps, spu, window.updates, seeds, eps)
            if w in at:
                pending.append((w, done_steps, runner))
            if eval_program is None and eval_job.done():
                eval_program, timing["compile_evaluate"] = eval_job.result()
            if eval_program is not None:
                evaluate_pending(eval_program)
        if eval_program is None:
            eval_program, timing["compile_evaluate"] = eval_job.result()
        evaluate_pending(eval_program)
    steps_run = trainer.num_updates * spu
    timing["train"] = train_seconds
    timing = {k: round(v, 2) for k, v in timing.items()}
    timing["train_steps_per_second_per_seed"] = round(steps_run / train_seconds) if train_seconds > 0 else None
    return {
        "runner": runner,
        "train_rows": train_rows,
        "eval_rows": eval_rows,
        "windows": windows,
        "steps_run": steps_run,
        "timing": timing,
    }


def _atomic_json(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def plot_curves(out: str, title: str, train_rows: list[dict], eval_rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("hack_probability", "hack probability"),
        ("avg_attacker_episode_rewards", "attacker reward"),
        ("avg_defender_episode_rewards", "defender reward"),
        ("avg_episode_steps", "episode steps"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.6))
    seeds = sorted({r["seed"] for r in train_rows})
    for ax, (key, label) in zip(axes, panels):
        for s in seeds:
            tr = [r for r in train_rows if r["seed"] == s]
            ax.plot([r["env_steps"] for r in tr], [r[key] for r in tr], lw=0.8, color=f"C{s}", alpha=0.5)
            ev = [r for r in eval_rows if r["seed"] == s]
            ax.plot([r["env_steps"] for r in ev], [r[key] for r in ev], "o--", ms=3, lw=0.8, color=f"C{s}")
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].set_ylim(-0.02, 1.02)
    fig.suptitle(f"{title}: lines training windows, dots evaluations, one colour per seed", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(out, CURVES), dpi=60)
    plt.close(fig)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m baselines.reference_grid", description=__doc__.splitlines()[0])
    p.add_argument(
        "--filter",
        nargs="+",
        default=None,
        help="run the configurations whose path starts with or matches (glob) one of these, e.g. v19/",
    )
    p.add_argument(
        "--min-full-budget",
        type=float,
        default=None,
        help="only configurations whose full budget is at least this many steps per seed",
    )
    p.add_argument(
        "--max-full-budget",
        type=float,
        default=None,
        help="only configurations whose full budget is below this many steps per seed (e.g. 5e7: all but the "
        "nominal 10^8-episode ones)",
    )
    p.add_argument("--budget-scale", type=float, default=1.0, help="fraction of each full budget to run")
    p.add_argument("--max-steps", type=int, default=None, help="cap on environment steps per seed and configuration")
    p.add_argument(
        "--num-seeds", type=int, default=None, help="seeds per configuration (default: the reference's, five for most)"
    )
    p.add_argument(
        "--mapping",
        choices=MAPPINGS,
        default="faithful",
        help="faithful: the reference's games per update; parallel: on-policy configurations spend the same "
        "budget over --parallel-factor times as many games per update (a documented difference)",
    )
    p.add_argument("--parallel-factor", type=int, default=16, help="games per update, relative to the faithful mapping")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    p.add_argument("--force", action="store_true", help="re-run finished configurations")
    p.add_argument(
        "--list", action="store_true", help="print the selected configurations and their mapping, run nothing"
    )
    args = p.parse_args(argv)
    if not (args.budget_scale > 0):
        raise UsageError(f"--budget-scale must be positive, got {args.budget_scale}")
    if args.max_steps is not None and args.max_steps <= 0:
        raise UsageError(f"--max-steps must be positive, got {args.max_steps}")
    if args.parallel_factor < 1:
        raise UsageError(f"--parallel-factor must be at least 1, got {args.parallel_factor}")
    if args.num_seeds is not None and args.num_seeds <= 0:
        raise UsageError(f"--num-seeds must be positive, got {args.num_seeds}")
    return args


def main(argv=None) -> list[dict]:
    try:
        args = parse_args(argv)
        configs = within_budget(select(data.load_configs(), args.filter), args.min_full_budget, args.max_full_budget)
        if not configs:
            raise UsageError(
                "no reference configuration matches "
                + (f"--filter {' '.join(args.filter)} " if args.filter else "")
                + "and the full-budget bounds (paths look like v7/minimal_defense/dqn)"
            )
        if args.list:
            for c in configs:
                m = mapped(c, args.mapping, args.parallel_factor)
                print(
                    json.dumps(
                        {
                            "path": c["path"],
                            "trainer": m.trainer,
                            "env": m.env_id,
                            "status": m.status,
                            "full_steps": m.full_steps,
                            "flags": " ".join(m.flags),
                        }
                    )
                )
            return []
        return _run_all(configs, args)
    except UsageError as e:
        print(f"python -m baselines.reference_grid: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _compilation_cache() -> None:
    """Reruns (resumed grids, repeated configurations such as v14's and v16's random_defense/reinforce)
    reuse compiled programs: JAX's persistent cache, one directory per jaxlib version."""
    import jaxlib

    from baselines.compile_cache import use_persistent_cache

    use_persistent_cache(os.path.join(os.path.expanduser("~"), ".cache", "idsjax", f"jax-{jaxlib.__version__}-lru"))


def _run_all(configs: list[dict], args) -> list[dict]:
    from tqdm import tqdm

    _compilation_cache()

    results = []
    t0 = time.perf_counter()
    bar = tqdm(configs, unit="config", file=sys.stderr, dynamic_ncols=True, desc="reference grid")
    for i, c in enumerate(bar):
        bar.set_postfix_str(c["path"], refresh=True)
        s = run_config(
            c,
            args.output_dir,
            args.budget_scale,
            args.max_steps,
            args.num_seeds,
            args.force,
            args.mapping,
            args.parallel_factor,
        )
        results.append(s)
        # A configuration's programs serve no other (a repeated one reads them back from the persistent
        # cache): dropped, they give back the memory mappings XLA:CPU holds for every loaded program,
        # which a whole grid in one process would otherwise run out of (vm.max_map_count; see
        # tests/conftest.py).
        import jax

        jax.clear_caches()
        hp = s.get("final_eval_hack_probability")
        se = s.get("final_eval_hack_probability_se")
        what = (
            "skipped (finished)"
            if s.get("skipped")
            else "not mapped"
            if hp is None
            else f"hack p {hp:.3f}" + (f" ± {se:.3f}" if se is not None else "") + f" in {s['seconds']:.0f} s"
        )
        bar.write(f"[{i + 1}/{len(configs)}] {c['path']}: {what}")
    bar.close()
    print(
        json.dumps(
            {
                "configurations": len(results),
                "ran": sum(not r.get("skipped") for r in results),
                "skipped": sum(bool(r.get("skipped")) for r in results),
                "wall_seconds": round(time.perf_counter() - t0, 1),
                "output_dir": args.output_dir,
            }
        )
    )
    return results


__all__ = ["main", "run_config", "select", "run_steps", "eval_windows", "epsilon_schedule"]
