"""The game a view's command line plays: a registered id (`--env ID`), a scenario file (`--scenario FILE
[--mode MODE]`) or a generated family (`--generator NAME [--generator-arg K=V ...] [--mode MODE]`), for
`python -m idsjax.play` and `python -m idsjax.render`."""

from __future__ import annotations

import argparse

import idsjax
from idsjax.scenario import Scenario, load_scenario
from idsjax.scenario.generator import FAMILIES, named_family


def add_game_arguments(parser: argparse.ArgumentParser, env_default: str | None = None) -> None:
    """`--env`, `--scenario` or `--generator` (one of them: required when there is no default id),
    `--generator-arg` and `--mode`."""
    game = parser.add_mutually_exclusive_group(required=env_default is None)
    game.add_argument("--env", default=env_default, help="any of the 110 ids (idsjax.registered_envs())")
    game.add_argument("--scenario", metavar="FILE", help="a scenario YAML file (docs/scenarios.md)")
    game.add_argument(
        "--generator",
        metavar="NAME",
        help=f"networks generated afresh at every game, family NAME: {', '.join(FAMILIES)}",
    )
    parser.add_argument(
        "--generator-arg",
        action="append",
        default=[],
        metavar="K=V",
        help="--generator: set a field of the family (idsjax.scenario.generator.Family), e.g. max_layers=4",
    )
    parser.add_argument(
        "--mode",
        default=None,
        help="with --scenario or --generator: the mode ('' two-agent, the default; random_defense, "
        "minimal_defense, random_attack, maximal_attack)",
    )


def make_game(parser: argparse.ArgumentParser, args, seed: int) -> tuple[object, object, Scenario | None]:
    """`(env, params, scenario or None)` of the parsed arguments with the instance `seed` (a generated
    family draws its networks at every reset instead); a bad id, file, family or mode exits through
    `parser.error` with one sentence (code 2)."""
    if args.mode is not None and args.scenario is None and args.generator is None:
        parser.error("--mode goes with --scenario or --generator (a registered id names its mode)")
    if args.generator_arg and args.generator is None:
        parser.error("--generator-arg goes with --generator")
    try:
        if args.scenario is not None:  # ScenarioError is a ValueError: one sentence naming the file and field
            scenario = load_scenario(args.scenario)
            return (*idsjax.make_scenario(scenario, mode=args.mode or "", seed=seed), scenario)
        if args.generator is not None:
            from idsjax.scenario.generated import GeneratedEnv

            mode = args.mode or ""
            env, _ = idsjax.make_generated(named_family(args.generator, args.generator_arg), mode=mode)
            env = GeneratedEnv(env.family, env.mode, name=f"generated-{args.generator}" + (f"-{mode}" if mode else ""))
            return env, env.default_params, None
        return (*idsjax.make(args.env, seed=seed), None)
    except ValueError as err:
        parser.error(str(err))
