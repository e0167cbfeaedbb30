"""The game a view's command line plays: a registered id (`--env ID`) or a scenario file
(`--scenario FILE [--mode MODE]`), for `python -m idsjax.play` and `python -m idsjax.render`."""

from __future__ import annotations

import argparse

import idsjax
from idsjax.scenario import Scenario, load_scenario


def add_game_arguments(parser: argparse.ArgumentParser, env_default: str | None = None) -> None:
    """`--env` or `--scenario` (one of them: required when there is no default id), and `--mode`."""
    game = parser.add_mutually_exclusive_group(required=env_default is None)
    game.add_argument("--env", default=env_default, help="any of the 110 ids (idsjax.registered_envs())")
    game.add_argument("--scenario", metavar="FILE", help="a scenario YAML file (docs/scenarios.md)")
    parser.add_argument(
        "--mode",
        default=None,
        help="with --scenario: the mode ('' two-agent, the default; random_defense, minimal_defense, "
        "random_attack, maximal_attack)",
    )


def make_game(parser: argparse.ArgumentParser, args, seed: int) -> tuple[object, object, Scenario | None]:
    """`(env, params, scenario or None)` of the parsed arguments with the instance `seed`; a bad id,
    file or mode exits through `parser.error` with one sentence (code 2)."""
    if args.mode is not None and args.scenario is None:
        parser.error("--mode goes with --scenario (a registered id names its mode)")
    try:
        if args.scenario is not None:  # ScenarioError is a ValueError: one sentence naming the file and field
            scenario = load_scenario(args.scenario)
            return (*idsjax.make_scenario(scenario, mode=args.mode or "", seed=seed), scenario)
        return (*idsjax.make(args.env, seed=seed), None)
    except ValueError as err:
        parser.error(str(err))
