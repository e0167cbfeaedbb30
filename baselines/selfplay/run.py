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
from baselines.selfplay.config import ALGO, OPPONENT_BOTS, make_game, parse_config, payoff_games
from baselines.selfplay.evaluation import exploit_responders, make_evaluate
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
    env, env_params = make_game(config)  # a two-agent id, or a scenario file or generated family played two-agent
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
    fin = ev["final"]
    p, se, _ = _pooled(fin["hack_probability"], fin["episodes"])
    result.update(
        {
            "eval_episodes": int(np.sum(fin["episodes"])),
            "eval_hack_probability": fmt(p),
            "eval_hack_probability_se": fmt(se),
            "eval_attacker_return": fmt(np.mean(fin["attacker_return"])),
            "eval_defender_return": fmt(np.mean(fin["defender_return"])),
            "eval_hack_probability_per_seed": [fmt(x) for x in np.atleast_1d(fin["hack_probability"])],
        }
    )
    for side, ret in (("attacker", "attacker_return"), ("defender", "defender_return")):
        for b in OPPONENT_BOTS[side]:
            e = ev[f"{side}_vs_{b}"]
            p, se, _ = _pooled(e["hack_probability"], e["episodes"])
            result[f"{side}_vs_{b}_hack_probability"] = fmt(p)
            result[f"{side}_vs_{b}_hack_probability_se"] = fmt(se)
            result[f"{side}_vs_{b}_return"] = fmt(np.mean(e[ret]))
    # the final policies vs the other side's pool (snapshots only: the last row / column is the final)
    n_pay = payoff_games(config)
    for name, values, valid in (
        ("attacker", payoff[:, -1, :-1], vd[:, :-1]),
        ("defender", payoff[:, :-1, -1], va[:, :-1]),
    ):
        p, se, _ = _pool_rate(values, valid, n_pay)
        result[f"{name}_vs_pool_hack_probability"] = fmt(p)
        result[f"{name}_vs_pool_hack_probability_se"] = fmt(se)
    if best_response_steps(config) > 0:
        pols = side_policies(config, env)
        for i, (side, opponent) in enumerate((("attacker", runner.dfn.params), ("defender", runner.att.params))):
            t_br = time.perf_counter()
            played = train_best_response(
                config, env, env_params, pols, side, opponent, eval_keys, phase=f"[{3 + i}/{phases}] "
            )
            for how in ("greedy", "sampled", "greedy_fresh", "sampled_fresh"):
                ev[f"br_{side}_{how}"] = played[how]
            phase_seconds[f"best_response_{side}"] = fmt(time.perf_counter() - t_br)
        result["br_timesteps"] = best_response_steps(config)
    exploit = exploitability(config, ev)
    for name, e in exploit.items():
        result.update({name: e["value"], f"{name}_se": e["se"], f"{name}_by": e["by"]})
        if "best_response" in e:
            result.update({f"{name}_best_response": e["best_response"]["value"],
                           f"{name}_best_response_se": e["best_response"]["se"]})  # fmt: skip
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
                    if isinstance(ev[name], dict) and name not in ("exploit_select", "exploit_valid", "exploit_choice")
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


def _pool_rate(values, valid, n_pay: int) -> tuple[float, float, int]:
    """`_pooled` of a final policy against the other side's pool: per seed the mean over the valid pool
    members (`values`, `valid`: [seeds, members]), on their `n_pay` games each together."""
    seeds = values.shape[0]
    means = np.array([values[s][valid[s]].mean() for s in range(seeds)])
    games = np.array([n_pay * valid[s].sum() for s in range(seeds)])
    return _pooled(means, games)


def _pooled(p, n) -> tuple[float, float, int]:
    """(mean over seeds, its standard error from the games, the games) of per-seed probabilities on
    `n` games."""
    p = np.atleast_1d(np.asarray(p, np.float64))
    games = int(np.sum(np.broadcast_to(np.asarray(n), p.shape)))
    return float(p.mean()), float(np.sqrt(np.sum(_se(p, n) ** 2)) / len(p)), games


def _probability(p: float, se: float, games: int) -> str:
    """'0.474 ± 0.008'; where no game (or every game) was a hack, the rule-of-three bound instead of a
    meaningless '0.000 ± 0.000' (`baselines.statistics.probability_text`)."""
    if p in (0.0, 1.0) and games > 0:
        from baselines.statistics import probability_text

        return probability_text(p, games)
    return f"{p:.3f} ± {se:.3f}"


def summary(config: dict, result: dict, ev: dict, exploit: dict) -> str:
    """The run for people: the final policies against each other, the bots and the pools, and how
    exploitable each is (with the responder that shows it), then where the times went."""
    payoff, va, vd = np.asarray(ev["payoff"]), np.asarray(ev["valid_att"]), np.asarray(ev["valid_def"])
    n_pay, seeds = payoff_games(config), payoff.shape[0]

    def pool(values, valid):
        return _pool_rate(values, valid, n_pay)

    rows = [("final attacker vs final defender", *_pooled(ev["final"]["hack_probability"], ev["final"]["episodes"]))]
    for b in OPPONENT_BOTS["attacker"]:
        e = ev[f"attacker_vs_{b}"]
        rows.append((f"final attacker vs {b}", *_pooled(e["hack_probability"], e["episodes"])))
    rows.append(("final attacker vs the defender pool", *pool(payoff[:, -1, :-1], vd[:, :-1])))
    for b in OPPONENT_BOTS["defender"]:
        e = ev[f"defender_vs_{b}"]
        rows.append((f"{b} vs final defender", *_pooled(e["hack_probability"], e["episodes"])))
    rows.append(("the attacker pool vs final defender", *pool(payoff[:, :-1, -1], va[:, :-1])))
    width = max(len(name) for name, *_ in rows) + 2
    resumed = result.get("resumed_at_env_steps")
    lines = [
        f"self-play ({config['mode']}, {config['policy']}) on {config['env']}: {result['env_steps']:,} steps per seed, "
        f"{seeds} seed{'s' * (seeds > 1)}",
        f"{'':<{width}}hack probability ({config['eval_episodes']:,} games per seed; pools {n_pay} per pair)",
    ]
    lines += [f"{name:<{width}}{_probability(p, se, games)}" for name, p, se, games in rows]
    games = next(iter(exploit.values()))["games"]
    lines.append(
        "exploitability (higher is worse for the assessed policy): per seed the strongest responder on "
        f"{games:,} games, scored on {games:,} fresh ones; the responder that shows it"
    )
    for name, e in exploit.items():
        side = name.split("_")[0]
        # every seed's value is on `games` fresh games: where none (or all) was won, the rule-of-three bound
        lines.append(f"  {side:<{width - 2}}{_probability(e['value'], e['se'], games * seeds)}  by {e['by']}")
        if "best_response" in e:
            b = e["best_response"]
            text = _probability(b["value"], b["se"], games * seeds)
            lines.append(f"  {'  its trained best response':<{width - 2}}{text}")
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


def select_and_replay(select, fresh, n_fresh) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The selection rule of exploitability, per seed (columns): the responder (row) with the highest
    score on the selection games is chosen, and its score on fresh, independent games is reported,
    with its binomial standard error from those games. The maximum of noisy selection scores is
    biased upward (the best of eight equally good 200-game estimates at p = 0.05 is high by about
    0.02); the fresh score of whichever was chosen is not. Returns (chosen row, value, se) per seed."""
    select = np.atleast_2d(np.asarray(select, np.float64))
    fresh = np.atleast_2d(np.asarray(fresh, np.float64))
    n_fresh = np.broadcast_to(np.asarray(n_fresh, np.float64), fresh.shape)
    if select.shape != fresh.shape:
        raise ValueError(f"selection scores {select.shape} and fresh scores {fresh.shape} differ in shape")
    chosen = np.argmax(np.where(np.isfinite(select), select, -np.inf), axis=0)
    cols = np.arange(select.shape[1])
    value = fresh[chosen, cols]
    return chosen, value, _se(value, n_fresh[chosen, cols])


def _by(names: list[str]) -> str:
    """Which responders were chosen over the seeds, most often first ("pool:3 x7, bot:attack_maximal x3")."""
    counts = {n: names.count(n) for n in dict.fromkeys(names)}
    if len(counts) == 1:
        return names[0]
    return ", ".join(f"{n} x{c}" for n, c in sorted(counts.items(), key=lambda kv: -kv[1]))


def exploitability(config: dict, ev: dict) -> dict:
    """How much each final policy can be exploited, higher always worse for it: per seed, the strongest
    of every responder we have, chosen on one set of games and scored on fresh, independent ones.

    The responders are the trained best response (greedy and sampled), each scripted bot of the
    responder's side and each pool member of that side, every one scored on the same
    `--br-eval-episodes` selection games against that seed's final policy; the one with the highest
    selection score is replayed on as many fresh games, and that is the seed's value, with the SE of
    those games (`per_seed`, `per_seed_se`, `per_seed_by`: the figure paired comparisons over seeds
    use). `value` is its mean over seeds and `se` the standard error of that mean from the games.
    `defender_exploitability` is a responding attacker's hack probability against the final defender;
    `attacker_exploitability` one minus the hack probability a responding defender holds the final
    attacker to. Beside it: `best_response`, the trained best response's own value (greedy or
    sampled, whichever scored higher on its selection games, on its fresh games), and `selected_on`,
    the chosen responders' mean selection score (the optimistic figure the fresh games correct; the
    difference is the selection's luck). `responders` lists every responder's selection score."""
    num_seeds = np.asarray(ev["payoff"]).shape[0]
    names = exploit_responders(config)
    out = {}
    for assessed in ("defender", "attacker"):
        responder = "attacker" if assessed == "defender" else "defender"
        score = (
            (lambda p: 1.0 - np.asarray(p, np.float64))
            if assessed == "attacker"
            else (lambda p: np.asarray(p, np.float64))
        )

        def pooled(p, n):
            p = np.asarray(p, np.float64)
            return {"value": fmt(np.mean(p)), "se": fmt(np.sqrt(np.sum(_se(p, n) ** 2)) / p.size)}

        select = np.asarray(ev["exploit_select"][assessed], np.float64).reshape(num_seeds, -1)  # [seeds, responders]
        valid = np.asarray(ev["exploit_valid"][assessed], bool).reshape(num_seeds, -1)
        n_sel = config["br_eval_episodes"]
        table = {}
        for j, name in enumerate(names[assessed]):
            if valid[:, j].any():  # a pool slot never filled in any seed has no responder
                table[name] = {**pooled(select[valid[:, j], j], n_sel), "seeds": int(valid[:, j].sum())}
        # the candidates per seed: the best bot or pool member on the selection games (chosen inside the
        # evaluation program, which replayed it on fresh games), and the best response, greedy and sampled
        choice = np.atleast_1d(np.asarray(ev["exploit_choice"][assessed])).astype(int)
        fresh = ev[f"exploit_fresh_{assessed}"]
        cand_names = [[names[assessed][c] for c in choice]]
        cand_select = [select[np.arange(num_seeds), choice]]
        cand_fresh = [score(fresh["hack_probability"])]
        cand_n = [np.asarray(fresh["episodes"], np.float64)]
        br_rows = []
        for how in ("greedy", "sampled"):
            br, br_fresh = ev.get(f"br_{responder}_{how}"), ev.get(f"br_{responder}_{how}_fresh")
            if br is not None and br_fresh is not None:
                table[f"best_response:{how}"] = {
                    **pooled(score(br["hack_probability"]), br["episodes"]),
                    "seeds": num_seeds,
                }
                br_rows.append(len(cand_names))
                cand_names.append([f"best_response:{how}"] * num_seeds)
                cand_select.append(score(br["hack_probability"]))
                cand_fresh.append(score(br_fresh["hack_probability"]))
                cand_n.append(np.asarray(br_fresh["episodes"], np.float64))
        shape = (len(cand_names), num_seeds)
        cand_select = np.stack([np.broadcast_to(x, (num_seeds,)) for x in cand_select]).reshape(shape)
        cand_fresh = np.stack([np.broadcast_to(x, (num_seeds,)) for x in cand_fresh]).reshape(shape)
        cand_n = np.stack([np.broadcast_to(x, (num_seeds,)) for x in cand_n]).reshape(shape)
        chosen, value, se = select_and_replay(cand_select, cand_fresh, cand_n)
        seeds = np.arange(num_seeds)
        by = [cand_names[c][s] for c, s in zip(chosen, seeds)]
        report = {
            "value": fmt(value.mean()),
            "se": fmt(np.sqrt(np.sum(se**2)) / num_seeds),
            "by": _by(by),
            "games": n_sel,
            "selected_on": fmt(cand_select[chosen, seeds].mean()),
            "responders": table,
            "per_seed": [fmt(x) for x in value],
            "per_seed_se": [fmt(x) for x in se],
            "per_seed_by": by,
            "per_seed_selected_on": [fmt(x) for x in cand_select[chosen, seeds]],
        }
        if br_rows:  # the trained best response alone, chosen between greedy and sampled the same way
            c, v, e = select_and_replay(cand_select[br_rows], cand_fresh[br_rows], cand_n[br_rows])
            report["best_response"] = {
                "value": fmt(v.mean()),
                "se": fmt(np.sqrt(np.sum(e**2)) / num_seeds),
                "per_seed": [fmt(x) for x in v],
                "per_seed_se": [fmt(x) for x in e],
                "per_seed_by": [cand_names[br_rows[i]][0] for i in c],
            }
        out[f"{assessed}_exploitability"] = report
    return out
