"""`python -m baselines.ued`: parse, train (or resume) on the autocurriculum, evaluate on fresh networks of
the family and on the held-out ones, print one JSON line.

The run directory is the other trainers' (`baselines.host_loop`): config.json, metrics.csv (with the
buffer's columns: replay, mutate, learned, level_score, buffer_size, buffer_score, edits,
level_nodes), checkpoints (the learners and the level buffer), learning_curves.png, eval.json;
`--resume`, `--stop-after`, `--checkpoint-every`, `--devices` as there.

Held out by construction: `--heldout N` networks of the family with distinct canonical hashes are drawn
from `--env-seed` (`idsjax.scenario.splits.heldout_pool`); no training level is one of them (fresh
draws redraw, an edit that would reach one is dropped), and the final evaluation plays them.
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from baselines import distributed, scenarios
from baselines.cli import HOST_ONLY, parse_config, process_options
from baselines.errors import UsageError
from baselines.evaluation import learner_mask
from baselines.host_loop import (
    check_fresh_dir,
    compile_programs,
    evaluation_keys,
    fmt,
    guarded,
    probability_summary,
    report_stopped,
    resumed_config,
    say,
    stop_on_signals,
    train_chunks,
    train_result,
)
from baselines.trainer import plan_updates
from baselines.ued import options
from baselines.ued import trainer as ued_trainer
from idsjax.rollout import rollout
from idsjax.scenario.generated import GeneratedEnv
from idsjax.scenario.splits import heldout_pool

ALGO = options.ALGO
_PROGRAMS: dict[str, tuple] = {}


def main(argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    argv = sys.argv[1:] if argv is None else list(argv)
    guarded(ALGO, _one_process, argv)
    config = parse_config(options, argv)
    with stop_on_signals(ALGO, config["output_dir"], config["progress"]):
        return guarded(ALGO, _run, config)


def _one_process(argv) -> None:
    settings, _ = process_options(argv)
    if settings is not None:
        raise UsageError(
            "ued trains in one process (over --devices); unset JAX_COORDINATOR_ADDRESS or leave out "
            "--coordinator-address"
        )


def heldout_set(env: GeneratedEnv, env_params, config: dict):
    """The held-out networks of the run (`--heldout`, from `--env-seed`), or None."""
    if not config["heldout"]:
        return None
    key = jax.random.fold_in(jax.random.PRNGKey(config["env_seed"]), 0x4E1D)
    try:
        return heldout_pool(env, key, config["heldout"], env_params)
    except ValueError as err:  # ScenarioError: the family has too few distinct networks
        raise UsageError(f"--heldout {config['heldout']}: {str(err).rstrip('.')}") from None


def _programs(config: dict, rngs):
    """Environment, held-out set, trainer and compiled programs, built once per configuration and process."""
    key = json.dumps({k: v for k, v in config.items() if k not in HOST_ONLY}, sort_keys=True)
    if key not in _PROGRAMS:
        env, env_params = scenarios.make_env(config)
        heldout = heldout_set(env, env_params, config)
        hashes = None if heldout is None else heldout.hashes
        make = partial(_make_train, hashes=hashes)
        trainer = distributed.make_train(make, config, env, env_params, layout=ued_trainer.MESH_LAYOUT)
        _, k_chunk = plan_updates(config, trainer.steps_per_update)
        say(
            f"compiling ued ({config['method']}, {config['side']}) on {config['env']} "
            f"({config['num_seeds']} seed{'s' * (config['num_seeds'] > 1)} x {config['num_envs']} games) …"
        )
        compiled = compile_programs(trainer, rngs, k_chunk)
        say(f"compiled in {compiled['compile_seconds']:.1f} s")
        compiled["evaluate"] = _evaluator(config, env, env_params, heldout, hashes, trainer)
        _PROGRAMS.clear()
        _PROGRAMS[key] = (env, env_params, trainer, compiled)
    else:
        _PROGRAMS[key][3]["compile_seconds"] = 0.0
    return _PROGRAMS[key]


def _make_train(config, env, env_params, hashes):
    return ued_trainer.make_train({**config, "_heldout_hashes": hashes}, env, env_params)


def play(env, params, policy, key, games: int, masked: bool) -> dict:
    """`games` games, one episode each, with `policy(obs, mask, key)`: episodes, hack probability, mean
    attacker's and defender's returns over the finished ones."""

    def batched(k, obs, state):
        return policy(obs, learner_mask(env, params, state, masked), k)

    def returns(t):
        return {"attacker": t.info["attacker_reward"], "defender": t.info["defender_reward"]}

    ep = rollout(env, params, batched, key, games, accumulate=returns, outcome=lambda t: t.info["hacked"])
    count = ep.finished.sum()
    denom = jnp.maximum(count, 1)
    out = {"episodes": count, "hack_probability": (ep.outcome & ep.finished).sum() / denom}
    for side, total in ep.totals.items():
        out[f"{side}_return"] = jnp.where(ep.finished, total, 0.0).sum() / denom
    return out


def _evaluator(config, env: GeneratedEnv, env_params, heldout, hashes, trainer):
    """`evaluate(runner [seeds], keys [seeds]) -> {set: {metric: [seeds]}}`, jitted: every learner on
    fresh networks of the family (outside the held-out ones) and on the held-out networks; with both
    sides learning, the pair against each other and each against the other side's bot."""
    family_params = ued_trainer.train_params(env, env_params, {"_heldout_hashes": hashes})
    sets = {"family": family_params}
    if heldout is not None:
        sets["heldout"] = heldout.params
    games, masked = config["eval_episodes"], config["mask_illegal"]
    sides = ued_trainer.sides_of(config)

    def matchups():
        """(name, game, policy(runner) -> (obs, mask, key) -> ids)."""
        yield "", env, lambda r: partial(trainer.act, r)
        if len(sides) > 1:
            for i, side in enumerate(sides):
                game = GeneratedEnv(env.family, ued_trainer.SIDE_MODES[side])

                def one_side(r, obs, mask, key, side=side, i=i):
                    states = (r.train_state[i],)
                    single = r._replace(train_state=states)
                    return _single_act(config, env, side)(single, obs, mask, key)

                yield f"{side}_vs_bot_", game, lambda r, f=one_side: partial(f, r)

    def evaluate_one(runner, key):
        out = {}
        for j, (name, game, policy_of) in enumerate(matchups()):
            for s, (set_name, params) in enumerate(sets.items()):
                k = jax.random.fold_in(jax.random.fold_in(key, j), s)
                out[f"{name}{set_name}"] = play(game, params, policy_of(runner), k, games, masked)
        return out

    return jax.jit(jax.vmap(evaluate_one))


_SINGLE: dict = {}


def _single_act(config, env, side):
    """The act function of one side's policy alone (a one-side trainer's), for the games against bots."""
    key = (json.dumps({k: v for k, v in config.items() if k not in HOST_ONLY}, sort_keys=True), side)
    if key not in _SINGLE:
        game = GeneratedEnv(env.family, ued_trainer.SIDE_MODES[side])
        one = {**config, "side": side, "mode": ued_trainer.SIDE_MODES[side]}
        _SINGLE[key] = ued_trainer.make_train(one, game, game.default_params).act
    return _SINGLE[key]


def _run(config: dict) -> dict:
    config = resumed_config(config, ALGO)
    out = config["output_dir"]
    if not config["resume"]:
        check_fresh_dir(out, config)
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    env, env_params, trainer, compiled = _programs(config, rngs)
    title = f"ued {config['method']} ({config['side']}) on {config['env']}"
    runner, done_updates, train_seconds, stopped = train_chunks(config, trainer, rngs, compiled, title, title)
    result = train_result(
        config,
        trainer,
        done_updates,
        train_seconds,
        compiled["compile_seconds"],
        compiled.get("resumed_at_update"),
        side=config["side"],
        method=config["method"],
    )
    if stopped:
        return report_stopped(result, out)

    say(f"evaluating on {config['eval_episodes']} games per seed and set …")
    ev = jax.device_get(compiled["evaluate"](runner, evaluation_keys(config["seed"], num_seeds)))
    report = {"policy": options.EVAL_POLICY, "games_per_seed": config["eval_episodes"], "sets": {}}
    for name, m in ev.items():
        summary = probability_summary("hack_probability", m["hack_probability"], m["episodes"])
        summary["episodes"] = int(np.sum(m["episodes"]))
        summary.update({k: fmt(np.mean(v)) for k, v in m.items() if k.endswith("_return")})
        report["sets"][name] = summary
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(report, f, indent=2)
    main_set = "heldout" if "heldout" in report["sets"] else "family"
    for name, s in report["sets"].items():
        result[f"eval_{name}_hack_probability"] = s["hack_probability"]
        result[f"eval_{name}_hack_probability_se"] = s["hack_probability_se"]
    result["eval_hack_probability"] = report["sets"][main_set]["hack_probability"]
    result["eval_hack_probability_se"] = report["sets"][main_set]["hack_probability_se"]
    result["eval_set"] = main_set
    result["eval_episodes"] = report["sets"][main_set]["episodes"]
    result["output_dir"] = out
    s = report["sets"][main_set]
    say(
        f"hack probability on the {main_set} networks {s['hack_probability']:.4f} ± {s['hack_probability_se']:.4f} "
        f"(evaluation SE, {config['eval_episodes']} games x {num_seeds} seed(s))"
    )
    say(f"results in {out}")
    print(json.dumps(result))
    sys.stdout.flush()
    return result
