"""The trainers' command line: common options, each algorithm's hyperparameters, and their checks.

An algorithm module provides `ALGO` (its name), `HYPERPARAMETERS` (name -> (default, check, help)),
`ENV_DEFAULTS` (defaults of the common options it overrides), optionally `OPTIONS` (name -> argparse
keywords: options of its own command line only) and `validate(config)`, and
`make_train(config, env, params)`; `parse_config(module, argv)` gives the resolved configuration.

This module loads without JAX or the game (idsjax is imported where an id is checked), so that
`python -m baselines.<trainer>` can answer `--help`, refuse a bad command line and join a
multi-process run before JAX starts: each trainer defines its tables, then calls `start` above its
own imports (`start`). The multi-process options live here too (`baselines.distributed` re-exports
them).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from baselines.errors import UsageError

COMMON_DEFAULTS: dict[str, Any] = {
    "env": "idsgame-minimal_defense-v7",
    "total_timesteps": 1_000_000,
    "num_envs": 64,
    "num_seeds": 1,
    "seed": 0,
    "output_dir": None,  # runs/<algo>/<env>/seed<seed> unless given
    "checkpoint_every": 0,  # environment steps per seed between checkpoints; 0: only at the end
    "resume": False,
    "eval_episodes": 1000,
    "env_seed": 0,
    "mask_illegal": False,
    "chunks": 50,
    "devices": 1,  # data-parallel over this many devices of the backend (baselines.distributed)
    "stop_after": 0,
    "progress": True,
    "overwrite": False,
    "tensorboard": None,
}
# Options that only change what the host does around the compiled programs (where it writes, what it
# shows, when it stops); everything else is the run's configuration, which `--resume` keeps.
HOST_ONLY = (
    "output_dir",
    "resume",
    "progress",
    "stop_after",
    "checkpoint_every",
    "overwrite",
    "tensorboard",
    "cli_flags",
)

CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pos": (lambda v: v > 0, "must be positive"),
    "nonneg": (lambda v: v >= 0, "must be >= 0"),
    "unit": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
    "prob": (lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    "any": (lambda v: True, ""),
}

# `python -m baselines.ppo --scenario FILE | --generator NAME`: the options of `baselines.scenarios`,
# here because the command line is parsed before that module (and JAX) loads.
MODES = ("minimal_defense", "random_defense", "maximal_attack", "random_attack")
GENERATOR_FAMILIES = ("small", "medium", "large", "default")  # the names of baselines.scenarios.PRESETS
SCENARIO_OPTIONS = {
    "scenario": {"default": None, "metavar": "FILE", "help": "train on this scenario file (docs/scenarios.md)"},
    "max_nodes": {
        "type": int,
        "default": None,
        "metavar": "N",
        "help": "--scenario: pad the network to N nodes (e.g. to evaluate beside larger ones)",
    },
    "generator": {
        "default": None,
        "metavar": "NAME",
        "help": f"train on networks generated afresh at every reset, family NAME: {', '.join(GENERATOR_FAMILIES)}",
    },
    "generator_arg": {
        "action": "append",
        "default": [],
        "metavar": "K=V",
        "help": "--generator: set a field of the family (idsjax.scenario.generator.Family), e.g. max_layers=4",
    },
    "mode": {
        "default": "minimal_defense",
        "choices": MODES,
        "help": "--scenario/--generator: who learns against which bot (as the registered ids' modes)",
    },
}

POSITIVE_COMMON = ("total_timesteps", "num_envs", "num_seeds", "eval_episodes", "chunks", "devices")
NONNEG_COMMON = ("checkpoint_every", "stop_after", "seed", "env_seed")


def build_parser(algo: str, hyper: dict, env_defaults: dict, options: dict | None = None) -> argparse.ArgumentParser:
    d = {**COMMON_DEFAULTS, **env_defaults}
    p = argparse.ArgumentParser(
        prog=f"python -m baselines.{algo}",
        usage=f"python -m baselines.{algo} [options]   (--help lists them)",
        description=f"Train {algo} on an idsjax single-agent environment (all seeds in one compiled program).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("common options")
    g.add_argument("--env", default=d["env"], help="single-agent environment id (idsjax.registered_envs())")
    g.add_argument("--total-timesteps", type=int, default=d["total_timesteps"], help="environment steps per seed")
    g.add_argument("--num-envs", type=int, default=d["num_envs"], help="parallel environments per seed")
    g.add_argument(
        "--devices",
        type=int,
        default=d["devices"],
        help="devices to train on data-parallel (ppo, dqn, selfplay): environments split, gradients averaged",
    )
    g.add_argument("--num-seeds", type=int, default=d["num_seeds"], help="seeds trained together with vmap")
    g.add_argument("--seed", type=int, default=d["seed"], help="master seed (training randomness)")
    g.add_argument("--env-seed", type=int, default=d["env_seed"], help="seed of the environment instance (idsjax.make)")
    g.add_argument("--output-dir", default=d["output_dir"], help="default: runs/<algo>/<env>/seed<seed>")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        default=d["checkpoint_every"],
        help="environment steps per seed between checkpoints (0: only the final one)",
    )
    g.add_argument(
        "--resume", action="store_true", help="continue the run saved in --output-dir with its saved configuration"
    )
    g.add_argument(
        "--stop-after",
        type=int,
        default=d["stop_after"],
        help="stop with a checkpoint after this many environment steps per seed (0: never); --resume continues",
    )
    g.add_argument("--eval-episodes", type=int, default=d["eval_episodes"], help="evaluation episodes per seed")
    g.add_argument(
        "--mask-illegal",
        action=argparse.BooleanOptionalAction,
        default=d["mask_illegal"],
        help="restrict the learner to legal actions (the reference's agents are not restricted)",
    )
    g.add_argument(
        "--chunks", type=int, default=d["chunks"], help="host round trips (progress, metrics, checkpoints) per run"
    )
    g.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=d["progress"], help="show a progress bar"
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --output-dir that holds a run, replacing it (else refused)",
    )
    g.add_argument(
        "--tensorboard",
        metavar="DIR",
        default=d["tensorboard"],
        help="also write the metrics as TensorBoard event files into DIR",
    )
    # Joined before the trainer starts (`start`), so never in a config.
    add_process_arguments(p, default=argparse.SUPPRESS)
    h = p.add_argument_group(f"{algo} hyperparameters")
    add_hyperparameters(h, hyper)
    for name, kwargs in (options or {}).items():  # an algorithm's own options: argparse keywords
        h.add_argument("--" + name.replace("_", "-"), **kwargs)
    return p


def add_hyperparameters(group, hyper: dict) -> None:
    """One option per entry of a trainer's `HYPERPARAMETERS` ({name: (default, check, help)}): a
    boolean as --name/--no-name, anything else typed as its default."""
    for name, (default, _, text) in hyper.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text)
        else:
            group.add_argument(flag, type=type(default), default=default, help=text)


def check_config(
    config: dict, hyper: dict, validate: Callable[[dict], None] | None, check_env: Callable[[str], None]
) -> None:
    """Raise UsageError for the first common option, hyperparameter or environment id that is wrong."""
    check_numbers(config, hyper)
    if validate is not None:
        validate(config)
    if config.get("scenario") or config.get("generator"):
        return  # a scenario's game is checked by `baselines.scenarios.resolve` (the algorithm's validate)
    check_env(config["env"])


def check_numbers(config: dict, hyper: dict) -> None:
    """The checks that need neither JAX nor the game: ranges of the options and hyperparameters."""
    for key in POSITIVE_COMMON:
        if config[key] <= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be positive, got {config[key]}")
    for key in NONNEG_COMMON:
        if config[key] < 0:
            raise UsageError(f"--{key.replace('_', '-')} must be >= 0, got {config[key]}")
    for name, (_, check, _) in hyper.items():
        ok, text = CHECKS[check]
        if not ok(config[name]):
            raise UsageError(f"--{name.replace('_', '-')} {text}, got {config[name]}")
    if "num_steps" in config and config["total_timesteps"] < config["num_envs"] * config["num_steps"]:
        raise UsageError(
            f"--total-timesteps {config['total_timesteps']} is less than one update "
            f"(--num-envs {config['num_envs']} x --num-steps {config['num_steps']} = "
            f"{config['num_envs'] * config['num_steps']} steps); raise it or lower those"
        )


def finish_config(config: dict, algo: str) -> dict:
    config["algo"] = algo
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("runs", algo, config["env"], f"seed{config['seed']}")
    return config


def explicit_flags(parser: argparse.ArgumentParser, argv) -> list[str]:
    """The options given on the command line `argv` (destinations), whatever their values: what
    `--resume` must warn about when it ignores them."""
    saved = {a.dest: a.default for a in parser._actions}
    try:
        for a in parser._actions:  # argparse has no public "was this given" query
            a.default = argparse.SUPPRESS
        given, _ = parser.parse_known_args(argv)
    finally:
        for a in parser._actions:
            a.default = saved[a.dest]
    return sorted(vars(given))


def parse_config(module, argv) -> dict:
    parser = build_parser(
        module.ALGO, module.HYPERPARAMETERS, getattr(module, "ENV_DEFAULTS", {}), getattr(module, "OPTIONS", None)
    )
    config = vars(parser.parse_args(argv))
    config["cli_flags"] = explicit_flags(parser, argv)
    try:
        check_config(config, module.HYPERPARAMETERS, getattr(module, "validate", None), check_env_id)
    except UsageError as e:
        parser.error(str(e))
    return finish_config(config, module.ALGO)


def known_env(env_id: str):
    """`idsjax.make(env_id)`, or UsageError with idsjax's sentence (e.g. a suggestion)."""
    import idsjax

    if env_id not in idsjax.registered_envs():
        try:
            idsjax.make(env_id)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return idsjax.make(env_id)


def check_env_id(env_id: str) -> None:
    env, _ = known_env(env_id)
    if env.learner == "both":
        raise UsageError(
            f"{env_id!r} is a two-agent id (both players learn); train it with self-play: "
            f"python -m baselines.selfplay --env {env_id}. The single-agent baselines take "
            f"idsgame-<random_defense|minimal_defense|random_attack|maximal_attack>-vN."
        )


# --- the command line's start, before JAX ----------------------------------------------------------


def start(name: str, trainer: dict) -> None:
    """What `python -m baselines.<trainer>` does first, called by the trainer module above its imports
    of JAX and the game with its `__name__` and `globals()` (its `ALGO`, `HYPERPARAMETERS`,
    `ENV_DEFAULTS`, `OPTIONS`, defined above the call). Imported as a module, it does nothing.

    Run as the program, it answers `--help` and refuses a bad option or number with one sentence
    (exit code 2) at once, and joins the multi-process run the command line asks for
    (`--coordinator-address` ... or JAX_* variables): `jax.distributed.initialize` must come before
    anything starts JAX's backend, and importing idsjax does (gymnax builds arrays at import). The
    trainer's `main` then parses the same command line again with every check (its `validate`, the
    id), which need the game."""
    if name != "__main__":
        return
    algo = trainer["ALGO"]
    settings, rest = settings_or_exit(f"baselines.{algo}")
    hyper = trainer["HYPERPARAMETERS"]
    parser = build_parser(algo, hyper, trainer.get("ENV_DEFAULTS", {}), trainer.get("OPTIONS"))
    config = vars(parser.parse_args(rest))  # --help, an unknown option or a bad type exits here
    try:
        check_numbers(config, hyper)
    except UsageError as e:
        parser.error(str(e))
    if settings is not None:
        from baselines import distributed

        distributed.initialize(**settings)


def settings_or_exit(module: str) -> tuple[dict | None, list[str]]:
    """The command line's multi-process settings and other arguments (`process_options`); a usage error,
    or settings for a command of `ONE_PROCESS`, print one sentence and exit with code 2. Self-play's
    `__main__` calls it for the refusal (its package loads JAX before; it never joins)."""
    algo = module.rsplit(".", 1)[-1]
    try:
        settings, rest = process_options(sys.argv[1:])
        if settings is not None and module in ONE_PROCESS:
            raise UsageError(
                f"{algo} trains in one process (several processes train ppo and dqn, "
                f"over --devices); unset JAX_COORDINATOR_ADDRESS or leave out --coordinator-address"
            )
    except UsageError as e:
        print(f"python -m {module}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings, rest


# --- several processes (jax.distributed): which commands join, and their options -------------------

# The trainers' command lines that join a multi-process run, and those that refuse one.
MULTI_PROCESS = ("baselines.ppo", "baselines.dqn")
ONE_PROCESS = (
    "baselines.tabular_q",
    "baselines.reinforce",
    "baselines.actor_critic",
    "baselines.selfplay",
    "baselines.ued",
)
# option -> the environment variable that gives it when the option is absent
PROCESS_OPTIONS = {
    "coordinator_address": "JAX_COORDINATOR_ADDRESS",
    "num_processes": "JAX_NUM_PROCESSES",
    "process_id": "JAX_PROCESS_ID",
}


def process_options(args: Sequence[str]) -> tuple[dict | None, list[str]]:
    """`(settings, other arguments)`: the multi-process settings of a command line (its
    `--coordinator-address`, `--num-processes`, `--process-id`, else the environment variables of
    `PROCESS_OPTIONS`), or None when none is given; UsageError (one sentence) when they are
    incomplete or inconsistent."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_process_arguments(parser, default=None)
    given, rest = parser.parse_known_args(list(args))
    raw = {
        name: getattr(given, name) if getattr(given, name) is not None else os.environ.get(var) or None
        for name, var in PROCESS_OPTIONS.items()
    }
    if all(v is None for v in raw.values()):
        return None, rest
    missing = [_source(name) for name, v in raw.items() if v is None]
    if missing:
        raise UsageError(
            f"a multi-process run needs the coordinator's address, the process count and this process's id: "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
        )
    settings = {"coordinator_address": raw["coordinator_address"]}
    for name in ("num_processes", "process_id"):
        try:
            settings[name] = int(raw[name])
        except ValueError:
            raise UsageError(f"{_source(name)} must be an integer, got {raw[name]!r}") from None
    host, _, port = settings["coordinator_address"].rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(
            f"{_source('coordinator_address')} must be HOST:PORT (process 0's address), "
            f"got {settings['coordinator_address']!r}"
        )
    if settings["num_processes"] < 1:
        raise UsageError(f"{_source('num_processes')} must be positive, got {settings['num_processes']}")
    if not 0 <= settings["process_id"] < settings["num_processes"]:
        raise UsageError(
            f"{_source('process_id')} must be between 0 and {settings['num_processes'] - 1} "
            f"(the process count less one), got {settings['process_id']}"
        )
    return settings, rest


def add_process_arguments(parser, default: Any) -> None:
    """The multi-process options (strings, checked by `process_options`), in a group of `parser`."""
    g = parser.add_argument_group("several processes (ppo, dqn; jax.distributed)")
    g.add_argument(
        "--coordinator-address",
        metavar="HOST:PORT",
        default=default,
        help="process 0's host and a free port; every process gives the same (or JAX_COORDINATOR_ADDRESS)",
    )
    g.add_argument("--num-processes", metavar="N", default=default, help="processes (or JAX_NUM_PROCESSES)")
    g.add_argument(
        "--process-id", metavar="I", default=default, help="this process, 0 to N-1; 0 writes (or JAX_PROCESS_ID)"
    )


def _source(name: str) -> str:
    return f"--{name.replace('_', '-')} (or {PROCESS_OPTIONS[name]})"
