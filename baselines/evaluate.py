"""Evaluate any attacker against any defender on any game, with the best attainable value beside it.

    python -m baselines.evaluate --attacker checkpoint:runs/ppo --env idsgame-minimal_defense-v7
    python -m baselines.evaluate --attacker random_attack --defender random_defense --env idsgame-v13
    python -m baselines.evaluate --attacker runs/mine --scenario my_network.yaml --games 5000
    python -m baselines.evaluate --defender checkpoint:runs/def --generator small --mode maximal_attack

A player is a run directory of `baselines` (`checkpoint:DIR`, or the directory itself; every seed it
trained is evaluated, or `--seed-index K`), a scripted bot (`NAME` or `bot:NAME`), or `random`
(uniform over the legal ids); a side not given plays the game's own player (the id's or `--mode`'s
bot, the random bot on a two-agent game). The game is a registered id (`--env`), a scenario file
(`--scenario FILE`) or a generated family (`--generator NAME`), as `baselines.ppo` takes them.

Each seed plays `--games` games (`idsjax.rollout`, both players choosing every step). The hack
probability is reported per seed with its binomial standard error and over the seeds (mean, SE from
the games, spread across seeds). Beside it, where it can be computed, the best hack probability any
attacker can reach against the defender, with what it means for the evaluated player. It is
`baselines.exploitability.real_info`'s search (`baselines.ceiling` is its defend-minimal case), for a
defender that reads only its own observation (on a registered id the defence bots, `random` or a
trained defender; on a scenario file defend-minimal) in a game where the attacker learns only from
its own attacks (a fixed layout and start, no reconnaissance, no local view). It searches deeper
until the bounds meet, the game ends, `--budget` seconds are spent or the next step would hold more
than `real_info.MAX_HISTORIES` defender histories in memory, and says which. Elsewhere the
report says in a sentence why there is none. The last line on stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from baselines.errors import UsageError

ATTACKER, DEFENDER = "attacker", "defender"
MEET = 1e-5  # bounds closer than this meet (as baselines.exploitability)


def build_parser() -> argparse.ArgumentParser:
    from baselines.cli import SCENARIO_OPTIONS  # baselines.cli loads without JAX: --help answers at once

    p = argparse.ArgumentParser(
        prog="python -m baselines.evaluate",
        description="Evaluate an attacker against a defender (run directories, bots or random) on an id, a "
        "scenario file or a generated family, with the best attainable hack probability where it can be computed.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--attacker", help="checkpoint:DIR (or DIR), a bot (NAME or bot:NAME) or random; default: the game's"
    )
    p.add_argument(
        "--defender", help="checkpoint:DIR (or DIR), a bot (NAME or bot:NAME) or random; default: the game's"
    )
    p.add_argument(
        "--env", default=None, help="a registered id (idsjax.registered_envs()); default idsgame-minimal_defense-v7"
    )
    p.add_argument("--env-seed", type=int, default=0, help="seed of the environment instance (idsjax.make)")
    for name, kwargs in SCENARIO_OPTIONS.items():  # --scenario, --max-nodes, --generator, --generator-arg, --mode
        p.add_argument("--" + name.replace("_", "-"), **kwargs)
    p.add_argument("--games", type=int, default=1000, help="games per seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation games")
    p.add_argument(
        "--seed-index", type=int, default=None, help="evaluate only this seed of a run (default: every seed it trained)"
    )
    p.add_argument(
        "--optimum",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compute the best attainable hack probability where the game allows it",
    )
    p.add_argument("--budget", type=float, default=30.0, help="seconds for the search of the optimum")
    return p


def parse(argv) -> dict:
    from baselines.cli import explicit_flags

    parser = build_parser()
    args = vars(parser.parse_args(argv))
    args["cli_flags"] = explicit_flags(parser, argv)
    try:
        check(args)
    except UsageError as err:
        parser.error(str(err))
    return args


def check(args: dict) -> None:
    """UsageError (one sentence) for the first argument that is wrong; names the game in `args["env"]`.
    The numbers first: they are refused before JAX and the game load."""
    for name in ("games",):
        if args[name] <= 0:
            raise UsageError(f"--{name} must be positive, got {args[name]}")
    for name in ("seed", "env_seed"):
        if args[name] < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0, got {args[name]}")
    if args["seed_index"] is not None and args["seed_index"] < 0:
        raise UsageError(f"--seed-index must be >= 0, got {args['seed_index']}")
    if args["budget"] <= 0:
        raise UsageError(f"--budget must be positive, got {args['budget']}")
    if args["env"] is None:
        args["env"] = "idsgame-minimal_defense-v7"
    elif args.get("scenario") or args.get("generator"):
        raise UsageError("--env names a registered game; with --scenario or --generator give --mode instead")
    from baselines import scenarios

    scenarios.resolve(args)
    if not scenarios.is_scenario_run(args):
        from baselines.cli import known_env

        known_env(args["env"])


# --- the game and the players ----------------------------------------------------------------------


def make_game(args: dict):
    """`(env, params, what)`: the game both players play (any id plays as a two-player game)."""
    from baselines import scenarios

    if args.get("generator"):
        import idsjax

        env, params = idsjax.make_generated(args["family"], mode=args["mode"])
        return env, params, f"networks of the {args['generator']!r} family, a new one every game"
    env, params = scenarios.make_env(args)
    if args.get("scenario"):
        return env, params, f"{args['scenario']} ({args['mode']}, env seed {args['env_seed']})"
    return env, params, f"{args['env']} (env seed {args['env_seed']})"


def run_dir(spec: str) -> str | None:
    """The run directory a player spec names (`checkpoint:DIR`, or an existing directory), or None."""
    if spec.startswith("checkpoint:"):
        path = spec[len("checkpoint:") :]
        if not path:
            raise UsageError("checkpoint: needs the run directory, e.g. checkpoint:runs/ppo")
        return path
    if os.path.isdir(spec):
        return spec
    return None


def players(spec: str | None, side: str, env, params, seed_index: int | None) -> tuple[str, list]:
    """(name, [policy per seed]) of `side`: a run's seeds, or one scripted or random player."""
    from idsjax.policies import PolicyLoadError, default_policy, resolve_policy

    if spec is None:
        spec = default_policy(env, side)
    path = run_dir(spec)
    if path is None:
        try:
            return (spec if spec == "random" or spec.startswith("bot:") else f"bot:{spec}"), [
                resolve_policy(spec, side, env, params)
            ]
        except (ValueError, TypeError, PolicyLoadError) as err:
            raise UsageError(f"--{side} {spec}: {str(err).rstrip('.')}") from None
    from baselines import checkpoints

    try:
        config = checkpoints.load_config(path)
    except UsageError as err:
        raise UsageError(f"--{side} {spec}: {err}") from None
    num_seeds = int(config.get("num_seeds", 1))
    seeds = range(num_seeds) if seed_index is None else [seed_index]
    if seed_index is not None and seed_index >= num_seeds:
        raise UsageError(f"--seed-index {seed_index} is outside the {num_seeds} seeds of the run in {path!r}")
    policies = [checkpoints.load_policy(path, env, params, side=side, seed_index=s) for s in seeds]
    name = f"checkpoint:{path} ({config['algo']}, {len(policies)} seed{'s' * (len(policies) > 1)})"
    return name, policies


def play(env, params, attacker, defender, key, games: int) -> dict:
    """`games` games of `attacker` against `defender`: hack probability and mean returns (finished
    games; every game finishes within the step limit)."""
    import jax
    import jax.numpy as jnp

    from idsjax.policies import make_joint_policy_step
    from idsjax.rollout import JointGame, episode_horizon, joint_policy, rollout

    choose = make_joint_policy_step(env, params, attacker, defender)

    def run(key):
        ep = rollout(
            JointGame(env),
            params,
            joint_policy(choose),
            key,
            games,
            num_steps=episode_horizon(params),
            outcome=lambda t: t.info["hacked"],
        )
        done = ep.finished
        n = jnp.maximum(done.sum(), 1)
        return {
            "games": done.sum(),
            "hack_probability": (ep.outcome & done).sum() / n,
            "attacker_return": jnp.where(done, ep.totals[:, 0], 0.0).sum() / n,
            "defender_return": jnp.where(done, ep.totals[:, 1], 0.0).sum() / n,
        }

    return {k: float(v) for k, v in jax.device_get(jax.jit(run)(key)).items()}


# --- the optimum -------------------------------------------------------------------------------------


def optimum(args: dict, env, params, defender_spec: str, defender_seeds: int) -> dict:
    """The best hack probability any attacker reaches against the defender, as `{"lower", "upper",
    "exact", "method", "horizon", "seconds", "stopped"}`, or `{"none": sentence}` where it is not computed.

    One search for every game: `baselines.exploitability.real_info`, deeper until the bounds meet, the
    game's last live step or `budget` seconds."""
    if not args["optimum"]:
        return {"none": "not computed (--no-optimum)"}
    if args.get("generator"):
        return {"none": "a generated family draws a new network every game, so no single optimum exists"}
    if defender_seeds > 1:
        return {"none": f"the defender run has {defender_seeds} seeds; give --seed-index K for one seed's optimum"}
    if args.get("scenario"):
        name = defender_spec[4:] if defender_spec.startswith("bot:") else defender_spec
        # On a scenario the optimum is offered against defend-minimal only, as before the search was
        # shared (tests/test_evaluate.py pins the refusal); the search itself takes any frozen defender.
        if name != "defend_minimal":
            return {"none": f"on a scenario the optimum is computed against defend_minimal, not {defender_spec}"}
    from baselines.exploitability.frozen import SpecError, frozen_policy
    from baselines.exploitability.real_info import search_until_exact

    spec = defender_spec if run_dir(defender_spec) is None else f"checkpoint:{run_dir(defender_spec)}"
    try:
        frozen = frozen_policy(spec, DEFENDER, env, params)
        row = search_until_exact(env, params, frozen, budget_s=args["budget"])
    except (SpecError, ValueError) as err:
        return {"none": f"not computed: {str(err).rstrip('.')}"}
    exact = row["upper"] - row["lower"] <= MEET
    return {
        "lower": row["lower"],
        "upper": row["upper"],
        "exact": exact,
        "method": "real-information search (baselines.exploitability.real_info)",
        "horizon": row["horizon"],
        "seconds": row["seconds"],
        "stopped": None if exact else row["stopped"],
    }


# --- the command ---------------------------------------------------------------------------------


def main(argv=None) -> dict:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        return evaluate(args)
    except UsageError as err:
        print(f"python -m baselines.evaluate: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def evaluate(args: dict) -> dict:
    import jax
    import numpy as np

    from baselines.host_loop import fmt, probability_summary

    try:
        env, params, what = make_game(args)
    except (ValueError, OSError) as err:
        raise UsageError(str(err).rstrip(".")) from None
    att_name, attackers = players(args["attacker"], ATTACKER, env, params, args["seed_index"])
    def_name, defenders = players(args["defender"], DEFENDER, env, params, args["seed_index"])
    if len(attackers) > 1 and len(defenders) > 1 and len(attackers) != len(defenders):
        raise UsageError(
            f"the attacker has {len(attackers)} seeds and the defender {len(defenders)}; give --seed-index K "
            f"to evaluate one seed of each"
        )
    num_seeds = max(len(attackers), len(defenders))
    t0 = time.perf_counter()
    base = jax.random.PRNGKey(args["seed"])
    rows = []
    for s in range(num_seeds):
        attacker, defender = attackers[s % len(attackers)], defenders[s % len(defenders)]
        rows.append(play(env, params, attacker, defender, jax.random.fold_in(base, s), args["games"]))
    seconds = time.perf_counter() - t0
    games = [r["games"] for r in rows]
    hack = probability_summary("hack_probability", [r["hack_probability"] for r in rows], games)
    defender_spec = args["defender"] or def_name
    best = optimum(args, env, params, defender_spec, len(defenders))
    result = {
        "game": args["env"],
        "env_seed": args["env_seed"],
        "attacker": att_name,
        "defender": def_name,
        "seeds": num_seeds,
        "games_per_seed": args["games"],
        "games": int(sum(games)),
        **hack,
        "attacker_return": fmt(np.mean([r["attacker_return"] for r in rows])),
        "defender_return": fmt(np.mean([r["defender_return"] for r in rows])),
        "optimum": None if "none" in best else best,
        "optimum_note": best.get("none"),
        "seconds": fmt(seconds),
    }
    print(report(result, what, rows))
    print(json.dumps(result), flush=True)
    return result


def report(result: dict, what: str, rows: list[dict]) -> str:
    """The human table."""
    lines = [
        f"game      {what}",
        f"attacker  {result['attacker']}",
        f"defender  {result['defender']}",
        f"games     {result['seeds']} seed{'s' * (result['seeds'] > 1)} x {result['games_per_seed']:,}"
        f" = {result['games']:,} finished games",
        "",
        f"{'seed':<6}{'hack probability':<22}{'attacker return':>18}{'defender return':>18}",
    ]
    for s, r in enumerate(rows):
        se = result["hack_probability_se_per_seed"][s]
        lines.append(
            f"{s:<6}{r['hack_probability']:.4f} ± {se:.4f}{'':<6}{r['attacker_return']:>18.3f}{r['defender_return']:>18.3f}"
        )
    spread = result.get("hack_probability_seed_std")
    lines.append(
        f"{'all':<6}{result['hack_probability']:.4f} ± {result['hack_probability_se']:.4f}{'':<6}"
        f"{result['attacker_return']:>18.3f}{result['defender_return']:>18.3f}"
        + (f"   (seed std {spread:.4f})" if spread is not None else "")
    )
    lines.append("")
    best = result["optimum"]
    if best is None:
        lines.append(f"optimum   {result['optimum_note']}")
    else:
        value = (
            f"{best['lower']:.6f} (exact)"
            if best["exact"]
            else f"between {best['lower']:.6f} and {best['upper']:.6f} (bounds: the search stopped at {best['stopped']})"
        )
        lines.append(f"optimum   {value}: the best hack probability any attacker reaches against this defender")
        lines.append(f"          {best['method']}, horizon {best['horizon']}, {best['seconds']} s")
        gap = best["lower"] - result["hack_probability"]
        lines.append(
            f"          the evaluated attacker is {abs(gap):.4f} {'below' if gap >= 0 else 'above'} it "
            f"(its SE {result['hack_probability_se']:.4f})"
            if best["exact"]
            else f"          the evaluated attacker reaches {result['hack_probability']:.4f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
