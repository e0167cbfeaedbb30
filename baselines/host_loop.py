"""The host loop that drives a compiled trainer: start fresh or resume, run chunks of updates with a
progress bar, append `metrics.csv`, checkpoint, plot, evaluate, and print one JSON line.

The host jits `vmap(scan of K updates)` over seeds and loops on chunks, which gives the progress
bar, the metrics file and the checkpoint points without host callbacks inside the compiled program.
A chunked run and `Trainer.train` play the same episodes (tests check it; losses agree up to float
rounding).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import warnings

import jax
import numpy as np

import idsjax
from baselines import checkpoints, logs
from baselines.cli import parse_config
from baselines.errors import UsageError
from baselines.evaluation import evaluate
from baselines.trainer import plan_updates


def fmt(x: float) -> float:
    return float(round(float(x), 4))


def run(module, argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    config = parse_config(module, argv)
    try:
        return _run(module, config)
    except UsageError as e:
        print(f"python -m baselines.{module.ALGO}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


HOST_ONLY = ("output_dir", "resume", "progress", "stop_after", "checkpoint_every")
_PROGRAMS: dict[str, tuple] = {}


def _programs(module, config: dict):
    """The environment, trainer and jitted programs of a configuration, built once per process, so
    that in-process runs of one configuration (a resumed run, tests, sweeps) compile once."""
    key = json.dumps({k: v for k, v in config.items() if k not in HOST_ONLY}, sort_keys=True)
    if key not in _PROGRAMS:
        env, env_params = idsjax.make(config["env"], seed=config["env_seed"])
        trainer = module.make_train(config, env, env_params)
        _, k_chunk = plan_updates(config, trainer.steps_per_update)

        def chunk(r):
            return jax.lax.scan(lambda c, _: trainer.update(c), r, None, k_chunk)

        def eval_one(r, key):
            return evaluate(env, env_params, trainer.act, r, key, config["eval_episodes"], config["mask_illegal"])

        compiled = {
            "init": jax.jit(jax.vmap(trainer.init)),
            "chunk": jax.jit(jax.vmap(chunk)),
            "evaluate": jax.jit(jax.vmap(eval_one)),
        }
        _PROGRAMS.clear()  # keep one: compiled programs hold memory
        _PROGRAMS[key] = (env, env_params, trainer, compiled)
    return _PROGRAMS[key]


def resumed_config(config: dict, algo: str) -> dict:
    """`config`, or with `--resume` the run's saved configuration: it wins, so the result equals an
    uninterrupted run's; only the progress bar, `--stop-after` and the output folder may change."""
    if not config["resume"]:
        return config
    out = config["output_dir"]
    try:
        saved = checkpoints.load_config(out)
    except UsageError as err:
        raise UsageError(f"--resume: {err}") from None
    if saved.get("algo") != algo:
        raise UsageError(f"--resume: {out!r} holds a {saved.get('algo')!r} run, not {algo!r}")
    return {**saved, "resume": True, "progress": config["progress"], "stop_after": config["stop_after"],
            "output_dir": out}


def start_fresh_run(output_dir: str, config: dict) -> None:
    """Save the resolved configuration; a fresh run replaces the metrics and checkpoints that an
    earlier run left in the same directory."""
    with open(os.path.join(output_dir, checkpoints.CONFIG_FILE), "w") as f:
        json.dump(checkpoints.jsonable(config), f, indent=2, sort_keys=True)
    metrics_path = os.path.join(output_dir, logs.METRICS_FILE)
    if os.path.isfile(metrics_path):
        os.remove(metrics_path)
    shutil.rmtree(os.path.join(output_dir, checkpoints.CKPT_DIR), ignore_errors=True)


def train_chunks(config: dict, trainer, rngs, init_fn, chunk_fn, desc: str, plot_title: str):
    """The host loop every trainer shares: start fresh or resume from `config["output_dir"]`, run
    `chunk_fn` (`k_chunk` updates of every seed) until done or `--stop-after`, appending metrics.csv,
    showing a progress bar, checkpointing every `--checkpoint-every` steps and at the end, and plotting
    the learning curves. Returns `(runner, done_updates, train_seconds, stopped)`."""
    from tqdm import tqdm

    out, progress, stop_after = config["output_dir"], config["progress"], config["stop_after"]
    num_seeds = config["num_seeds"]
    _, k_chunk = plan_updates(config, trainer.steps_per_update)
    os.makedirs(out, exist_ok=True)
    metrics_path = os.path.join(out, logs.METRICS_FILE)

    t0 = time.perf_counter()
    if config["resume"]:
        abstract = jax.eval_shape(jax.vmap(trainer.init), rngs)
        try:
            runner, done_updates, wall_before = checkpoints.restore_checkpoint(out, abstract)
        except UsageError as err:
            raise UsageError(f"--resume: {err}") from None
        logs.truncate_metrics(metrics_path, done_updates)
    else:
        start_fresh_run(out, config)
        runner = init_fn(rngs)
        done_updates, wall_before = 0, 0.0

    spu = trainer.steps_per_update
    ckpt_every = config["checkpoint_every"]
    next_ckpt = (done_updates * spu // ckpt_every + 1) * ckpt_every if ckpt_every else None
    bar = tqdm(
        total=trainer.num_updates * spu * num_seeds, initial=done_updates * spu * num_seeds, unit="step",
        unit_scale=True, disable=not progress, file=sys.stderr, dynamic_ncols=True, desc=desc,
    )
    stopped = False
    while done_updates < trainer.num_updates:
        runner, metrics = chunk_fn(runner)
        jax.block_until_ready(metrics)
        wall = wall_before + time.perf_counter() - t0
        logs.write_metrics(metrics_path, logs.metric_rows(metrics, done_updates, spu, wall, num_seeds), append=True)
        done_updates += k_chunk
        hp = np.asarray(metrics["hack_probability"])[:, -1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no episode finished yet: NaN
            bar.set_postfix(hack_p=f"{np.nanmean(hp):.3f}", refresh=False)
        bar.update(k_chunk * spu * num_seeds)
        steps = done_updates * spu
        if next_ckpt is not None and steps >= next_ckpt and done_updates < trainer.num_updates:
            checkpoints.save_checkpoint(out, done_updates, runner, wall, config)
            next_ckpt = (steps // ckpt_every + 1) * ckpt_every
        if stop_after and steps >= stop_after and done_updates < trainer.num_updates:
            stopped = True
            break
    bar.close()
    jax.block_until_ready(runner)
    train_seconds = wall_before + time.perf_counter() - t0
    checkpoints.save_checkpoint(out, done_updates, runner, train_seconds, config)
    logs.plot_metrics(metrics_path, os.path.join(out, "learning_curves.png"), plot_title)
    return runner, done_updates, train_seconds, stopped


def train_result(config: dict, trainer, done_updates: int, train_seconds: float, **extra) -> dict:
    """The first fields of a run's JSON line."""
    env_steps = done_updates * trainer.steps_per_update
    num_seeds = config["num_seeds"]
    return {
        "algo": config["algo"], "env": config["env"], "seed": config["seed"], "num_seeds": num_seeds, **extra,
        "env_steps": env_steps, "train_seconds": fmt(train_seconds),
        "steps_per_second": fmt(env_steps * num_seeds / max(train_seconds, 1e-9)),
    }


def report_stopped(result: dict, out: str) -> dict:
    result["stopped"] = True
    print(f"stopped after {result['env_steps']} steps per seed; continue with --resume --output-dir {out}")
    print(json.dumps(result))
    return result


def _run(module, config: dict) -> dict:
    config = resumed_config(config, module.ALGO)
    out = config["output_dir"]
    env, env_params, trainer, compiled = _programs(module, config)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    runner, done_updates, train_seconds, stopped = train_chunks(
        config, trainer, rngs, compiled["init"], compiled["chunk"],
        desc=f"{module.ALGO} {config['env']}", plot_title=f"{module.ALGO} on {config['env']}",
    )
    result = train_result(config, trainer, done_updates, train_seconds)
    if stopped:
        return report_stopped(result, out)

    eval_keys = jax.random.split(jax.random.PRNGKey(config["seed"] + 1_000_003), num_seeds)
    ev = jax.device_get(compiled["evaluate"](runner, eval_keys))
    per_seed = [{k: fmt(v[s]) for k, v in ev.items()} for s in range(num_seeds)]
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump({"per_seed": per_seed, "policy": getattr(module, "EVAL_POLICY", "")}, f, indent=2)
    result.update({
        "eval_episodes": int(np.sum(ev["episodes"])),
        "eval_hack_probability": fmt(np.mean(ev["hack_probability"])),
        "eval_attacker_return": fmt(np.mean(ev["attacker_return"])),
        "eval_defender_return": fmt(np.mean(ev["defender_return"])),
        "eval_hack_probability_per_seed": [s["hack_probability"] for s in per_seed],
        "eval_hack_probability_std": fmt(np.std(ev["hack_probability"])),
        "output_dir": out,
    })
    print(json.dumps(result))
    sys.stdout.flush()
    return result
