"""Do policies trained on generated networks play networks they never saw? (issues 13 and 26)

Trains PPO attackers (against defend-minimal) and defenders (against attack-maximal) on networks
generated afresh at every reset (`--family`, `baselines.scenarios.PRESETS`), with each network of
`--networks`: the flat MLP, and the node-wise network (`baselines.node_policy`, its mean-field default)
with every node's role and depth appended to its row (`idsjax.node_features`). Each policy is evaluated
on held-out sets that no training reset ever played, by construction (`idsjax.scenario.splits`: the
canonical hash of every network of every set is excluded from training, and the run fails if a
reset ran out of draws outside them):

- `held-out <family>`: `--heldout` distinct networks of the training family itself;
- `denser`, `deeper`, `wider`, `larger` (`--shapes`): as many networks of each variation of the
  family (`idsjax.scenario.splits.FAMILY_VARIATIONS`); the MLP plays only those of its own size
  (`denser`), since its input size is fixed;
- the built-in versions of `--versions` in their scenario form (padded to the family's size for the
  MLP), beside a specialist: the same MLP trained on that version alone (its registered id) with the
  same budget. Every built-in version (all 22) is excluded from training too.

Every cell is a hack probability with its standard error over `--eval-games` games per seed and its
per-seed values; the report aggregates each policy over seeds and the targets every policy plays with
rliable (interquartile mean, stratified bootstrap intervals, probability of improvement).

    python -m baselines.generalization                 # the default budget
    python -m baselines.generalization --quick --output-dir /tmp/gen
    python -m baselines.generalization --publish       # also rewrite the committed report and results

Writes `results.csv`, `results.json` and the report `GENERALIZATION.md` to `--output-dir` (default
runs/generalization); `--md PATH` puts the report there instead. Nothing is written into the
repository unless `--publish` is given: then the report also goes to baselines/GENERALIZATION.md and
the results to baselines/results/generalization/, the committed files.
"""

from __future__ import annotations

# ruff: noqa: E402
# The command line first, imports after: run as the program, --help and a bad number answer before
# JAX and the game load (as the trainers do through `baselines.cli.start`).
import argparse
import os
import sys

from baselines.errors import UsageError
from baselines.generalization_report import PUBLISHED_MD, PUBLISHED_RESULTS

SIDES = {"attacker": "minimal_defense", "defender": "maximal_attack"}
NETWORKS = ("mlp", "nodes")
# How the training networks are chosen: domain randomisation, a fresh network of the family at every
# reset. (The autocurricula of `baselines.ued` join this list when the experiment runs them.)
METHODS = ("dr",)
SHAPES = ("denser", "deeper", "wider", "larger")  # idsjax.scenario.splits.FAMILY_VARIATIONS (a test checks)
QUICK = {"timesteps": 2048, "seeds": 2, "eval_games": 64, "heldout": 8, "versions": "0", "shapes": "larger"}
POSITIVE = ("timesteps", "seeds", "num_envs", "eval_games", "heldout")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m baselines.generalization",
        description="Train on generated networks, evaluate on networks held out by construction: the family's "
        "own, other shapes and the built-in versions (issues 13 and 26).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--timesteps", type=int, default=200_000, help="environment steps per seed of every training run")
    p.add_argument("--seeds", type=int, default=5, help="seeds of every training run (vmapped)")
    p.add_argument("--num-envs", type=int, default=32, help="parallel games per seed in training")
    p.add_argument("--eval-games", type=int, default=1000, help="evaluation games per seed and cell")
    p.add_argument("--heldout", type=int, default=200, help="distinct networks in each held-out set")
    p.add_argument("--family", default="small", help="training family (a preset of baselines.scenarios.PRESETS)")
    p.add_argument("--shapes", default=",".join(SHAPES), help="held-out variations of the family, comma-separated")
    p.add_argument("--networks", default=",".join(NETWORKS), help="policy networks, comma-separated: mlp, nodes")
    p.add_argument("--methods", default=",".join(METHODS), help="how training networks are chosen: dr")
    p.add_argument("--versions", default="0,3,7", help="built-in versions evaluated one by one, comma-separated")
    p.add_argument("--sides", default="attacker,defender", help="attacker, defender or both")
    p.add_argument("--seed", type=int, default=0, help="master seed")
    p.add_argument("--quick", action="store_true", help=f"a tiny budget for tests ({QUICK}); overrides those")
    p.add_argument("--output-dir", default=os.path.join("runs", "generalization"), help="results and the report")
    p.add_argument("--md", default=None, help="the report (default: GENERALIZATION.md in --output-dir)")
    p.add_argument(
        "--publish",
        action="store_true",
        help="also write the report to baselines/GENERALIZATION.md and the results to baselines/results/generalization",
    )
    return p


def parse_early(argv) -> None:
    """--help, an unknown option, a bad type or a non-positive count: one answer, exit 2, before JAX."""
    p = build_parser()
    args = p.parse_args(argv)
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")


if __name__ == "__main__":
    parse_early(sys.argv[1:])

import csv
import json
import platform
import shutil
import time

import jax
import numpy as np

from baselines import cli, evaluation, ppo, scenarios
from baselines.host_loop import guarded, probability_summary, say


def parse_args(argv):
    p = build_parser()
    args = p.parse_args(argv)
    if args.md is None:
        args.md = os.path.join(args.output_dir, "GENERALIZATION.md")
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    try:
        check(args)
    except UsageError as e:
        p.error(str(e))
    return args


def _listed(text: str, option: str, allowed) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in allowed]
    if bad or (not items and option != "--shapes"):
        raise UsageError(f"{option} expects a comma-separated list of {', '.join(allowed)}, got {text!r}")
    return list(dict.fromkeys(items))


def check(args) -> None:
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    args.train = scenarios.family_of(args.family, [])
    args.shape_list = _listed(args.shapes, "--shapes", SHAPES)
    args.network_list = _listed(args.networks, "--networks", NETWORKS)
    args.method_list = _listed(args.methods, "--methods", METHODS)
    args.side_list = _listed(args.sides, "--sides", SIDES)
    try:
        args.version_list = [int(v) for v in args.versions.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--versions expects comma-separated version numbers, got {args.versions!r}") from None
    from idsjax.versions import VERSIONS

    for v in args.version_list:
        spec = VERSIONS[v] if 0 <= v < len(VERSIONS) else None
        if spec is None or spec.attack_types != args.train.attack_types or spec.local_view or spec.reconnaissance:
            raise UsageError(
                f"--versions: v{v} is not a version whose observations a {args.family} policy reads "
                f"({args.train.attack_types} attack types, no local view, no reconnaissance: e.g. 0-10)"
            )


def policy_name(method: str, network: str) -> str:
    return f"{network} {method}"


SPECIALIST = "mlp specialist"


def ppo_config(args, network: str, env_id: str | None = None) -> dict:
    argv = ["--total-timesteps", str(args.timesteps), "--num-envs", str(args.num_envs)]
    argv += ["--num-seeds", str(args.seeds), "--network", network, "--chunks", "1", "--no-progress"]
    if network == "nodes":
        argv += ["--node-features"]  # roles and depth: what lets a node-wise defender hold (issue 26 item 3)
    return cli.parse_config(ppo, argv + (["--env", env_id] if env_id else []))


def wrap(env, network: str):
    """The environment as the policy of `network` reads it: the node-wise one with node features."""
    if network != "nodes":
        return env
    from idsjax.node_features import NodeFeatures

    return NodeFeatures(env)


def train(config: dict, env, params, seed: int):
    """(trainer, runners of every seed, training seconds without compilation): one program for all seeds."""
    trainer = ppo.make_train(config, env, params)
    rngs = jax.random.split(jax.random.PRNGKey(seed), config["num_seeds"])
    program = jax.jit(jax.vmap(trainer.train)).lower(rngs).compile()
    t0 = time.perf_counter()
    runners, _ = jax.block_until_ready(program(rngs))
    return trainer, runners, time.perf_counter() - t0


def check_exclusion(runners) -> None:
    """Fail (RuntimeError, one sentence) if any training game ever reset on a held-out network because
    its family found none outside the sets (`GeneratedEnv.check_exclusion`, on the final states)."""
    from idsjax.scenario.generated import GeneratedEnv, GeneratedState

    states = jax.tree.leaves(runners, is_leaf=lambda x: isinstance(x, GeneratedState))
    found = [s for s in states if isinstance(s, GeneratedState)]
    if not found:
        raise RuntimeError("the training runners hold no generated game state: the exclusion cannot be checked")
    for s in found:
        GeneratedEnv.check_exclusion(jax.device_get(s))


def evaluate(trainer, runners, env, params, games: int, key) -> dict:
    """Hack probability (mean over seeds) and its standard error, `games` games per seed."""
    keys = jax.random.split(key, jax.tree.leaves(runners)[0].shape[0])

    def one(runner, k):
        return evaluation.evaluate(env, params, trainer.act, runner, k, games, True)

    out = jax.device_get(jax.jit(jax.vmap(one))(runners, keys))
    s = probability_summary("p", out["hack_probability"], out["episodes"])
    return {
        "hack_probability": s["p"],
        "se": s["p_se"],
        "games": int(np.sum(out["episodes"])),
        "hack_probability_per_seed": s["p_per_seed"],
        "se_per_seed": s["p_se_per_seed"],
    }


def builtin_env(version: int, mode: str, max_nodes: int | None):
    """A built-in version in its scenario form with its construction-time layout (`make_scenario`'s seed
    0, drawn at the version's own size, as `idsjax.scenario.splits.builtin_sets` excludes it), padded to
    `max_nodes` nodes where given: the same game and network (`splits.pad_network`)."""
    import idsjax
    from idsjax.scenario import builtin_scenario
    from idsjax.scenario.env import ScenarioEnv
    from idsjax.scenario.splits import pad_network
    from idsjax.versions import Mode

    env, params = idsjax.make_scenario(builtin_scenario(version, Mode(mode)), mode=mode)
    if max_nodes is None or max_nodes == env.shape.max_nodes:
        return env, params
    padded, shape = pad_network(params, env.shape, max_nodes)
    return ScenarioEnv(shape, mode, default_params=padded), padded


def side_splits(args, side: str, base):
    """(training env, its params excluding every held-out network, the evaluation sets in order): the
    family's own held-out pool, one pool per `--shapes` variation, and every built-in version (excluded
    from training; those of `--versions` are evaluated one by one)."""
    from idsjax.scenario.generated import GeneratedEnv
    from idsjax.scenario.splits import Splits, builtin_sets, heldout_pool, shape_sets

    mode = SIDES[side]
    train_env = GeneratedEnv(args.train, mode, name=f"generated-{args.family}-{mode}")
    heldout = heldout_pool(train_env, jax.random.fold_in(base, 1), args.heldout, name=f"held-out {args.family}")
    shaped = shape_sets(train_env, jax.random.fold_in(base, 2), args.heldout, variations=tuple(args.shape_list))
    splits = Splits((heldout, *shaped, *builtin_sets(mode)))
    return train_env, splits.train_params(train_env), [heldout, *shaped], splits


def run_side(args, side: str, rows: list, seconds: dict) -> None:
    import idsjax

    mode = SIDES[side]
    base = jax.random.fold_in(jax.random.PRNGKey(args.seed), list(SIDES).index(side))
    say(f"drawing the {side}'s held-out sets (distinct canonical hashes) …")
    train_env, train_params, pools, splits = side_splits(args, side, base)
    k_eval = jax.random.fold_in(base, 3)

    def cell(target, policy, result, note=""):
        rows.append({"side": side, "target": target, "policy": policy, **result, "note": note})
        shown = f"{result['hack_probability']:.3f} ± {result['se']:.3f}" if result else "n/a"
        say(f"  {side:8s} {target:28s} {policy:18s} {shown}")

    for method in args.method_list:
        for network in args.network_list:
            name = policy_name(method, network)
            say(f"training the {name} {side} on generated {args.family} networks (held-out sets excluded) …")
            env = wrap(train_env, network)
            trainer, runners, secs = train(ppo_config(args, network), env, train_params, args.seed)
            check_exclusion(runners)
            seconds[f"{side} {name}"] = secs
            for pool in pools:
                if network == "mlp" and pool.env.shape.max_nodes != train_env.shape.max_nodes:
                    cell(pool.name, name, {}, "the MLP's input size is fixed")
                    continue
                cell(
                    pool.name,
                    name,
                    evaluate(trainer, runners, wrap(pool.env, network), pool.params, args.eval_games, k_eval),
                )
            for v in args.version_list:
                target = f"v{v} (scenario)"
                pad = train_env.shape.max_nodes if network == "mlp" else None
                if network == "mlp" and builtin_env(v, mode, None)[0].shape.max_nodes > pad:
                    cell(target, name, {}, f"v{v} has more nodes than the MLP's {pad}")
                    continue
                venv, vparams = builtin_env(v, mode, pad)
                if not _excluded(venv, vparams, splits):
                    raise RuntimeError(f"v{v}'s network is not among the excluded hashes: the split is not held out")
                cell(target, name, evaluate(trainer, runners, wrap(venv, network), vparams, args.eval_games, k_eval))

    for v in args.version_list:
        env_id = f"idsgame-{mode}-v{v}"
        say(f"training the specialist on {env_id} …")
        env, params = idsjax.make(env_id)
        trainer, runners, secs = train(ppo_config(args, "mlp", env_id), env, params, args.seed)
        seconds[f"{side} v{v} specialist"] = secs
        cell(f"v{v} (scenario)", SPECIALIST, evaluate(trainer, runners, env, params, args.eval_games, k_eval))


def _excluded(env, params, splits) -> bool:
    """Whether a scenario environment's network is in the splits' exclusion set (by canonical hash)."""
    from idsjax.scenario.canonical import as_ints, hash_networks

    return as_ints(hash_networks(params, env.shape))[0] in set(as_ints(splits.exclude))


def machine_note() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    dev = jax.devices()[0]
    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} on "
        f"{dev.platform} ({dev.device_kind}); 1-minute load average {load:.1f} at the start"
    )


def write(args, rows: list, seconds: dict, wall: float, argv: list[str]) -> None:
    os.makedirs(args.output_dir, exist_ok=True)
    fields = ["side", "target", "policy", "hack_probability", "se", "games", "note"]
    per_seed = ["hack_probability_per_seed", "se_per_seed"]  # one value per seed, ';'-separated
    with open(os.path.join(args.output_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields + per_seed)
        w.writeheader()
        for r in rows:
            row = {k: r.get(k, "") for k in fields}
            row.update({k: ";".join(str(x) for x in r.get(k, [])) for k in per_seed})
            w.writerow(row)
    meta = {
        "command": command(argv),
        "wall_seconds": round(wall, 1),
        "train_seconds": {k: round(v, 1) for k, v in seconds.items()},
        "machine": machine_note(),
        "timesteps_per_seed": args.timesteps,
        "seeds": args.seeds,
        "eval_games_per_seed": args.eval_games,
        "heldout_networks": args.heldout,
        "family": args.family,
        "rows": rows,
    }
    with open(os.path.join(args.output_dir, "results.json"), "w") as f:
        json.dump(meta, f, indent=2)
    if os.path.dirname(args.md):
        os.makedirs(os.path.dirname(args.md), exist_ok=True)
    with open(args.md, "w") as f:
        f.write(report(args, rows, meta))
    if args.publish:  # the committed copies, which the README cites
        os.makedirs(PUBLISHED_RESULTS, exist_ok=True)
        for name in ("results.csv", "results.json"):
            _copy(os.path.join(args.output_dir, name), os.path.join(PUBLISHED_RESULTS, name))
        _copy(args.md, PUBLISHED_MD)


def _copy(src: str, dst: str) -> None:
    if os.path.abspath(src) != os.path.abspath(dst):  # --output-dir or --md may name the published place
        shutil.copyfile(src, dst)


def command(argv: list[str]) -> str:
    return " ".join(["python -m baselines.generalization", *argv])


def report(args, rows: list, meta: dict) -> str:
    from baselines.generalization_report import markdown

    return markdown(args, rows, meta)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    return guarded("generalization", _main, args, argv)


def _main(args, argv):
    t0 = time.perf_counter()
    rows, seconds = [], {}
    for side in args.side_list:
        run_side(args, side, rows, seconds)
    write(args, rows, seconds, time.perf_counter() - t0, argv)
    published = f"; published to {PUBLISHED_MD} and {PUBLISHED_RESULTS}" if args.publish else ""
    say(f"wrote {args.md} and {args.output_dir}/results.csv ({time.perf_counter() - t0:.0f} s){published}")
    return rows


if __name__ == "__main__":
    main()
