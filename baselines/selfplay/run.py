"""`python -m baselines.selfplay`: parse, train (or resume) both players, evaluate, write the payoff
matrix and print one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import numpy as np

import idsjax
from baselines.errors import UsageError
from baselines.host_loop import (
    compile_programs, evaluation_keys, fmt, guarded, report_stopped, resumed_config, say, train_chunks, train_result,
)
from baselines.selfplay.config import ALGO, OPPONENT_BOTS, parse_config
from baselines.selfplay.evaluation import make_evaluate
from baselines.selfplay.report import write_payoff
from baselines.selfplay.trainer import make_train
from baselines.trainer import plan_updates


def main(argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    config = parse_config(argv)
    return guarded(ALGO, _run, config)


def _run(config: dict) -> dict:
    config = resumed_config(config, ALGO)
    out = config["output_dir"]
    env, env_params = idsjax.make(config["env"], seed=config["env_seed"])
    trainer = make_train(config, env, env_params)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    _, k_chunk = plan_updates(config, trainer.steps_per_update)
    say(f"compiling self-play ({config['mode']}) on {config['env']} ({num_seeds} seed{'s' * (num_seeds > 1)} x "
        f"{config['num_envs']} games) …")
    programs = compile_programs(trainer, rngs, k_chunk)
    say(f"compiled in {programs['compile_seconds']:.1f} s")
    runner, done_updates, train_seconds, stopped = train_chunks(
        config, trainer, rngs, programs,
        desc=f"{ALGO}/{config['mode']} {config['env']}",
        plot_title=f"self-play ({config['mode']}, {config['policy']}) on {config['env']} — learner vs learner",
    )
    result = train_result(config, trainer, done_updates, train_seconds, programs["compile_seconds"],
                          mode=config["mode"], policy=config["policy"])
    if stopped:
        return report_stopped(result, out)

    t_eval = time.perf_counter()
    eval_keys = evaluation_keys(config["seed"], num_seeds)
    ev = jax.device_get(jax.jit(jax.vmap(make_evaluate(config, env, env_params)))(runner, eval_keys))
    payoff, va, vd = np.asarray(ev["payoff"]), np.asarray(ev["valid_att"]), np.asarray(ev["valid_def"])
    write_payoff(out, payoff, va, vd, num_seeds)
    # final policies vs the other side's pool (snapshots only: the last row / column is the final)
    att_vs_pool = [np.mean(payoff[s, -1, :-1][vd[s, :-1]]) for s in range(num_seeds)]
    def_vs_pool = [np.mean(payoff[s, :-1, -1][va[s, :-1]]) for s in range(num_seeds)]
    fin = ev["final"]
    result.update({
        "eval_episodes": int(np.sum(fin["episodes"])),
        "eval_hack_probability": fmt(np.mean(fin["hack_probability"])),
        "eval_attacker_return": fmt(np.mean(fin["attacker_return"])),
        "eval_defender_return": fmt(np.mean(fin["defender_return"])),
        "eval_hack_probability_per_seed": [fmt(x) for x in np.atleast_1d(fin["hack_probability"])],
    })
    for b in OPPONENT_BOTS["attacker"]:
        result[f"attacker_vs_{b}_hack_probability"] = fmt(np.mean(ev[f"attacker_vs_{b}"]["hack_probability"]))
        result[f"attacker_vs_{b}_return"] = fmt(np.mean(ev[f"attacker_vs_{b}"]["attacker_return"]))
    for b in OPPONENT_BOTS["defender"]:
        result[f"defender_vs_{b}_hack_probability"] = fmt(np.mean(ev[f"defender_vs_{b}"]["hack_probability"]))
        result[f"defender_vs_{b}_return"] = fmt(np.mean(ev[f"defender_vs_{b}"]["defender_return"]))
    result["attacker_vs_pool_hack_probability"] = fmt(np.mean(att_vs_pool))
    result["defender_vs_pool_hack_probability"] = fmt(np.mean(def_vs_pool))
    if config["br_timesteps"] > 0:
        # exploitability: what a fresh best response achieves against each frozen final policy
        result["br_attacker_hack_probability"] = fmt(np.mean(ev["br_attacker"]["hack_probability"]))
        result["br_attacker_return"] = fmt(np.mean(ev["br_attacker"]["attacker_return"]))
        result["br_defender_hack_probability"] = fmt(np.mean(ev["br_defender"]["hack_probability"]))
        result["br_defender_return"] = fmt(np.mean(ev["br_defender"]["defender_return"]))
        result["br_timesteps"] = config["br_timesteps"]
    result["eval_seconds"] = fmt(time.perf_counter() - t_eval)
    result["output_dir"] = out
    with open(os.path.join(out, "eval.json"), "w") as fh:
        json.dump({
            "result": result,
            "per_seed": {
                name: {k: np.atleast_1d(np.asarray(v)).round(4).tolist() for k, v in ev[name].items()}
                for name in ev if isinstance(ev[name], dict)
            },
        }, fh, indent=2)
    print(json.dumps(result))
    sys.stdout.flush()
    return result
