"""`python -m baselines.selfplay`: parse, train (or resume) both players, evaluate, write the payoff
matrix and print one JSON line."""

from __future__ import annotations

import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import idsjax
from baselines import distributed
from baselines.host_loop import (
    check_fresh_dir,
    compile_programs,
    evaluation_keys,
    fmt,
    guarded,
    report_stopped,
    resumed_config,
    say,
    stop_on_signals,
    train_chunks,
    train_result,
)
from baselines.selfplay.best_response import best_response_steps, make_best_response
from baselines.selfplay.config import ALGO, OPPONENT_BOTS, parse_config, payoff_games
from baselines.selfplay.evaluation import make_evaluate
from baselines.selfplay.policies import side_policies
from baselines.selfplay.report import write_payoff
from baselines.selfplay.trainer import make_train, mesh_layout
from baselines.trainer import plan_updates


def main(argv=None) -> dict:
    """Parse the command line, train (or resume), evaluate; print one JSON line last on stdout."""
    config = parse_config(argv)
    with stop_on_signals(ALGO, config["output_dir"], config["progress"]):
        return guarded(ALGO, _run, config)


def _run(config: dict) -> dict:
    t_start = time.perf_counter()
    config = resumed_config(config, ALGO)
    out = config["output_dir"]
    if not config["resume"]:
        check_fresh_dir(out, config)
    env, env_params = idsjax.make(config["env"], seed=config["env_seed"])
    trainer = distributed.make_train(make_train, config, env, env_params, layout=mesh_layout(config))
    num_seeds = config["num_seeds"]
    rngs = jax.random.split(jax.random.PRNGKey(config["seed"]), num_seeds)
    _, k_chunk = plan_updates(config, trainer.steps_per_update)
    say(
        f"compiling self-play ({config['mode']}) on {config['env']} ({num_seeds} seed{'s' * (num_seeds > 1)} x "
        f"{config['num_envs']} games) …"
    )
    programs = compile_programs(trainer, rngs, k_chunk)
    say(f"compiled in {programs['compile_seconds']:.1f} s")
    phases = 2 + 2 * (best_response_steps(config) > 0)  # training, evaluation games, two best responses
    runner, done_updates, train_seconds, stopped = train_chunks(
        config,
        trainer,
        rngs,
        programs,
        desc=f"[1/{phases}] training {config['mode']} {config['env']}",
        plot_title=f"self-play ({config['mode']}, {config['policy']}) on {config['env']} — learner vs learner",
    )
    result = train_result(
        config,
        trainer,
        done_updates,
        train_seconds,
        programs["compile_seconds"],
        programs.get("resumed_at_update"),
        mode=config["mode"],
        policy=config["policy"],
    )
    if stopped:
        return report_stopped(result, out)

    t_eval = time.perf_counter()
    phase_seconds = {}
    eval_keys = evaluation_keys(config["seed"], num_seeds)
    bar = phase_bar(config, f"[2/{phases}] evaluation games and payoff matrix", 1, "phase")
    ev = jax.device_get(jax.jit(jax.vmap(make_evaluate(config, env, env_params)))(runner, eval_keys))
    bar.update(1)
    bar.close()
    phase_seconds["evaluation_games"] = fmt(time.perf_counter() - t_eval)
    payoff, va, vd = np.asarray(ev["payoff"]), np.asarray(ev["valid_att"]), np.asarray(ev["valid_def"])
    write_payoff(out, payoff, va, vd, num_seeds)
    # final policies vs the other side's pool (snapshots only: the last row / column is the final)
    att_vs_pool = [np.mean(payoff[s, -1, :-1][vd[s, :-1]]) for s in range(num_seeds)]
    def_vs_pool = [np.mean(payoff[s, :-1, -1][va[s, :-1]]) for s in range(num_seeds)]
    fin = ev["final"]
    result.update(
        {
            "eval_episodes": int(np.sum(fin["episodes"])),
            "eval_hack_probability": fmt(np.mean(fin["hack_probability"])),
            "eval_attacker_return": fmt(np.mean(fin["attacker_return"])),
            "eval_defender_return": fmt(np.mean(fin["defender_return"])),
            "eval_hack_probability_per_seed": [fmt(x) for x in np.atleast_1d(fin["hack_probability"])],
        }
    )
    for b in OPPONENT_BOTS["attacker"]:
        result[f"attacker_vs_{b}_hack_probability"] = fmt(np.mean(ev[f"attacker_vs_{b}"]["hack_probability"]))
        result[f"attacker_vs_{b}_return"] = fmt(np.mean(ev[f"attacker_vs_{b}"]["attacker_return"]))
    for b in OPPONENT_BOTS["defender"]:
        result[f"defender_vs_{b}_hack_probability"] = fmt(np.mean(ev[f"defender_vs_{b}"]["hack_probability"]))
        result[f"defender_vs_{b}_return"] = fmt(np.mean(ev[f"defender_vs_{b}"]["defender_return"]))
    result["attacker_vs_pool_hack_probability"] = fmt(np.mean(att_vs_pool))
    result["defender_vs_pool_hack_probability"] = fmt(np.mean(def_vs_pool))
    if best_response_steps(config) > 0:
        pols = side_policies(config, env)
        for i, (side, opponent) in enumerate((("attacker", runner.dfn.params), ("defender", runner.att.params))):
            t_br = time.perf_counter()
            played = train_best_response(
                config, env, env_params, pols, side, opponent, eval_keys, phase=f"[{3 + i}/{phases}] "
            )
            for how in ("greedy", "sampled"):
                ev[f"br_{side}_{how}"] = played[how]
            phase_seconds[f"best_response_{side}"] = fmt(time.perf_counter() - t_br)
        result["br_timesteps"] = best_response_steps(config)
    exploit = exploitability(config, ev)
    for name, e in exploit.items():
        result.update({name: e["value"], f"{name}_se": e["se"], f"{name}_by": e["by"]})
    result["eval_seconds"] = fmt(time.perf_counter() - t_eval)
    result["phase_seconds"] = phase_seconds
    # This invocation's wall time (compiling, training, evaluating); train_seconds is the training of
    # every session of a resumed run, so the two are reported side by side and a resumed run says so.
    result["wall_seconds"] = fmt(time.perf_counter() - t_start)
    result["output_dir"] = out
    with open(os.path.join(out, "eval.json"), "w") as fh:
        json.dump(
            {
                "result": result,
                "exploitability": exploit,
                "per_seed": {
                    name: {k: np.atleast_1d(np.asarray(v)).round(4).tolist() for k, v in ev[name].items()}
                    for name in ev
                    if isinstance(ev[name], dict)
                },
            },
            fh,
            indent=2,
        )
    say(summary(config, result, ev, exploit))
    say(f"results in {out}")
    if distributed.is_lead():
        print(json.dumps(result))
        sys.stdout.flush()
    return result


def _pooled(p, n) -> tuple[float, float]:
    """(mean over seeds, its standard error from the games) of per-seed probabilities on `n` games."""
    p = np.atleast_1d(np.asarray(p, np.float64))
    return float(p.mean()), float(np.sqrt(np.sum(_se(p, n) ** 2)) / len(p))


def summary(config: dict, result: dict, ev: dict, exploit: dict) -> str:
    """The run for people: the final policies against each other, the bots and the pools, and how
    exploitable each is (with the responder that shows it), then where the times went."""
    payoff, va, vd = np.asarray(ev["payoff"]), np.asarray(ev["valid_att"]), np.asarray(ev["valid_def"])
    n_pay, seeds = payoff_games(config), payoff.shape[0]

    def pool(values, valid):  # per seed: the mean over the valid pool members, their games together
        means = np.array([values[s][valid[s]].mean() for s in range(seeds)])
        games = np.array([n_pay * valid[s].sum() for s in range(seeds)])
        return _pooled(means, games)

    rows = [("final attacker vs final defender", *_pooled(ev["final"]["hack_probability"], ev["final"]["episodes"]))]
    for b in OPPONENT_BOTS["attacker"]:
        e = ev[f"attacker_vs_{b}"]
        rows.append((f"final attacker vs {b}", *_pooled(e["hack_probability"], e["episodes"])))
    rows.append(("final attacker vs the defender pool", *pool(payoff[:, -1, :-1], vd[:, :-1])))
    e = ev["attacker_vs_pool_best"]
    rows.append(("final attacker vs its best pool defender", *_pooled(e["hack_probability"], e["episodes"])))
    for b in OPPONENT_BOTS["defender"]:
        e = ev[f"defender_vs_{b}"]
        rows.append((f"{b} vs final defender", *_pooled(e["hack_probability"], e["episodes"])))
    rows.append(("the attacker pool vs final defender", *pool(payoff[:, :-1, -1], va[:, :-1])))
    e = ev["pool_best_vs_defender"]
    rows.append(("its best pool attacker vs final defender", *_pooled(e["hack_probability"], e["episodes"])))
    width = max(len(name) for name, _, _ in rows) + 2
    resumed = result.get("resumed_at_env_steps")
    lines = [
        f"self-play ({config['mode']}, {config['policy']}) on {config['env']}: {result['env_steps']:,} steps per seed, "
        f"{seeds} seed{'s' * (seeds > 1)}",
        f"{'':<{width}}hack probability ({config['eval_episodes']:,} games per seed; pools {n_pay} per pair, "
        f"their best member replayed on {config['eval_episodes']:,})",
    ]
    lines += [f"{name:<{width}}{p:.3f} ± {se:.3f}" for name, p, se in rows]
    lines.append("exploitability (higher is worse for the assessed policy; the responder that shows it):")
    for name, e in exploit.items():
        side = name.split("_")[0]
        lines.append(f"  {side:<{width - 2}}{e['value']:.3f} ± {e['se']:.3f}  by {e['by']}")
    times = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in result["phase_seconds"].items())
    lines.append(
        f"time: training {result['train_seconds']:.1f} s"
        + (f" (over every session: resumed at {resumed:,} steps)" if resumed is not None else "")
        + f", compiling {result['compile_seconds']:.1f} s, evaluating {result['eval_seconds']:.1f} s ({times}); "
        f"this run's wall time {result['wall_seconds']:.1f} s"
    )
    return "\n".join(lines)


def phase_bar(config: dict, name: str, total: int, unit: str):
    """An evaluation phase announced on its own line, with its own progress bar."""
    from tqdm import tqdm

    say(f"{name} …")
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=True,
        disable=not config["progress"],
        file=sys.stderr,
        dynamic_ncols=True,
        desc=name,
    )


def train_best_response(
    config,
    env,
    env_params,
    pols,
    side: str,
    opponent,
    eval_keys,
    opponent_act=None,
    opponent_name: str = "final",
    phase: str = "",
) -> dict:
    """Train each seed's best-responding `side` against that seed's frozen opponent (chunks on the
    host: its own progress bar), then evaluate it greedily and sampled. Per-seed summaries.

    `opponent` holds the frozen policy's parameters per seed (leading axis: seeds); `opponent_act`
    (`best_response.network_opponent` by default, or `bot_opponent` with placeholder parameters) is
    how it plays; `phase` prefixes its progress bar (e.g. "[3/4] "). The calibration tests train
    against bots through this same function."""
    br = make_best_response(config, env, env_params, pols, side, opponent_act)
    num_seeds = config["num_seeds"]
    other = "defender" if side == "attacker" else "attacker"
    bar = phase_bar(
        config,
        f"{phase}best-response {side} vs the {opponent_name} {other}",
        br.num_updates * br.steps_per_update * num_seeds,
        "step",
    )
    keys = jax.vmap(lambda k: jax.random.fold_in(k, 1 if side == "attacker" else 2))(eval_keys)
    runner = br.init(keys, opponent)
    done = 0
    while done < br.num_updates:
        n_active = min(br.k_chunk, br.num_updates - done)
        runner, _, _ = br.chunk(runner, opponent, jnp.int32(n_active))
        jax.block_until_ready(runner)
        done += n_active
        bar.update(n_active * br.steps_per_update * num_seeds)
    bar.close()
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 3))(keys)
    return jax.device_get(br.evaluate(runner, opponent, eval_keys))


def _se(p, n):
    p = np.asarray(p, np.float64)
    return np.sqrt(p * (1 - p) / np.maximum(np.asarray(n, np.float64), 1))


def exploitability(config: dict, ev: dict) -> dict:
    """How much each final policy can be exploited, higher always worse for it, as the maximum over
    every responder we have: the best response (greedy or sampled, the better), each scripted bot of
    the responder's side, and the pool member of that side that did best against it in the payoff
    matrix (`pool:best`), scored on its own `--eval-episodes` fresh games: scored on the matrix's
    games that chose it, the winner among the pool would carry the luck that made it the winner
    (each member's matrix value, on few games, is shown in the payoff matrix). `defender_exploitability` is the best
    responder's hack probability against the final defender; `attacker_exploitability` is one minus
    the lowest hack probability a responding defender holds the final attacker to. Per responder:
    the mean over seeds and its standard error (binomial, from the games). `value` is the best
    responder's mean over seeds; `per_seed` is each seed's own best responder (`per_seed_by`) with
    its SE, the figure paired comparisons over seeds use (its mean is at least `value`)."""
    num_seeds = np.asarray(ev["payoff"]).shape[0]
    out = {}
    for assessed, bots, rescored, flip in (
        ("defender", OPPONENT_BOTS["defender"], ev["pool_best_vs_defender"], False),
        ("attacker", OPPONENT_BOTS["attacker"], ev["attacker_vs_pool_best"], True),
    ):
        responder = "attacker" if assessed == "defender" else "defender"
        score = (lambda p: 1.0 - np.asarray(p)) if flip else (lambda p: np.asarray(p))
        candidates = {}
        for b in bots:  # e.g. the final defender against random_attack and attack_maximal
            p = score(ev[f"{assessed}_vs_{b}"]["hack_probability"])
            candidates[f"bot:{b}"] = (p, np.asarray(ev[f"{assessed}_vs_{b}"]["episodes"]))
        candidates["pool:best"] = (score(rescored["hack_probability"]), np.asarray(rescored["episodes"]))
        for how in ("greedy", "sampled"):
            br = ev.get(f"br_{responder}_{how}")
            if br is not None:
                candidates[f"best_response:{how}"] = (score(br["hack_probability"]), np.asarray(br["episodes"]))
        table = {
            name: {"value": fmt(np.mean(p)), "se": fmt(np.sqrt(np.sum(_se(p, n) ** 2)) / num_seeds)}
            for name, (p, n) in candidates.items()
        }
        best = max(table, key=lambda k: table[k]["value"])
        # per seed: the best responder against that seed's policy (what paired comparisons over seeds use)
        names = list(candidates)
        per_seed = np.stack([np.broadcast_to(candidates[k][0], (num_seeds,)) for k in names])  # [responders, seeds]
        n_seed = np.stack([np.broadcast_to(candidates[k][1], (num_seeds,)) for k in names])
        top = per_seed.argmax(axis=0)
        seeds = np.arange(num_seeds)
        out[f"{assessed}_exploitability"] = {
            "value": table[best]["value"],
            "se": table[best]["se"],
            "by": best,
            "responders": table,
            "per_seed": [fmt(x) for x in per_seed[top, seeds]],
            "per_seed_se": [fmt(x) for x in _se(per_seed[top, seeds], n_seed[top, seeds])],
            "per_seed_by": [names[i] for i in top],
            "pool_best_slot_per_seed": np.atleast_1d(ev["pool_best_slot"][responder]).astype(int).tolist(),
        }
    return out
