"""The trainers' games beyond the registered ids: a scenario file (`--scenario FILE [--max-nodes N]`)
or networks generated afresh at every reset (`--generator NAME [--generator-arg k=v ...]`), with a
mode (`--mode`, the registered ids' single-agent modes). `make_env(config)` builds the environment a
run's configuration names, so training, evaluation and checkpoint loading build the same one.

The generated game is idsjax's `GeneratedEnv`: every reset draws a new network from the generator
family, or uniformly from a fixed pool of networks (`GeneratedEnv.with_pool`: held-out evaluation sets).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from baselines.cli import GENERATOR_FAMILIES, MODES, SCENARIO_OPTIONS  # noqa: F401 (MODES: re-exported)
from baselines.errors import UsageError

# Named generator families. The numbers of versions 0, 2-4 and 7-9 (ten attack types, cap 9, defense
# and detection 2, one vulnerable type of value 0 on every server), so that a policy trained on a family
# reads those versions' observations and plays their game; the networks are random, sized as named.
_LIKE_V3 = dict(attack_types=10, max_value=9, defense=(2, 2), detection=(2, 2), vulnerability=(0, 0), vulnerable_p=1.0)
PRESETS: dict[str, dict[str, Any]] = {
    "small": dict(min_layers=1, max_layers=2, min_width=1, max_width=3, **_LIKE_V3),  # <= 8 nodes
    "medium": dict(min_layers=2, max_layers=3, min_width=2, max_width=4, **_LIKE_V3),  # <= 14 nodes
    "large": dict(min_layers=3, max_layers=5, min_width=3, max_width=5, **_LIKE_V3),  # <= 27 nodes
    "default": dict(),  # the generator's own defaults (4 attack types, varied values)
}
# The command line names the families before this module loads (baselines.cli).
assert tuple(PRESETS) == GENERATOR_FAMILIES, (tuple(PRESETS), GENERATOR_FAMILIES)


# --- the command line ------------------------------------------------------------------------------

OPTIONS = SCENARIO_OPTIONS  # in baselines.cli, which loads without JAX (the trainers parse first)


def family_of(name: str, args: list[str]):
    """The `Family` of preset `name` with `k=v` overrides, or UsageError with one sentence."""
    from idsjax.scenario import ScenarioError
    from idsjax.scenario.generator import Family

    if name not in PRESETS:
        raise UsageError(f"--generator {name!r} is not a generator family; use one of {', '.join(PRESETS)}")
    fields = {f.name: f for f in dataclasses.fields(Family)}
    values = dict(PRESETS[name])
    for arg in args:
        key, sep, text = arg.partition("=")
        if not sep or key not in fields:
            raise UsageError(
                f"--generator-arg {arg!r}: expected K=V with K a field of the family ({', '.join(fields)})"
            )
        default = fields[key].default
        try:
            if isinstance(default, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            elif isinstance(default, tuple):
                value = tuple(int(x) for x in text.split(","))
            else:
                value = type(default)(text)
        except ValueError:
            shown = "LOW,HIGH" if isinstance(default, tuple) else type(default).__name__
            raise UsageError(f"--generator-arg {arg!r}: expected {key}={shown}") from None
        values[key] = value
    try:
        return Family(**values)
    except ScenarioError as err:
        raise UsageError(f"--generator {name}: {err}") from None


def resolve(config: dict) -> None:
    """Check the scenario options of a configuration (UsageError) and name its game in `config["env"]`."""
    scenario, generator = config.get("scenario"), config.get("generator")
    given = set(config.get("cli_flags", ()))
    if scenario is None and generator is None:
        needs = {"max_nodes": "--scenario", "generator_arg": "--generator", "mode": "--scenario or --generator"}
        for flag, partner in needs.items():
            if flag in given:
                raise UsageError(f"--{flag.replace('_', '-')} goes with {partner}")
        return
    if scenario is not None and generator is not None:
        raise UsageError("--scenario and --generator name two games; give one of them")
    if "env" in given:
        raise UsageError("--env names a registered game; with --scenario or --generator give --mode instead")
    if generator is not None:
        if config.get("max_nodes") is not None:
            raise UsageError("--max-nodes pads a --scenario; a generator's size is max_layers x max_width + 2")
        family = family_of(generator, config.get("generator_arg", []))
        config["env"] = f"generated-{generator}-{config['mode']}"
        config["family"] = dataclasses.asdict(family)
        return
    if config.get("generator_arg"):
        raise UsageError("--generator-arg goes with --generator")
    env, _ = _scenario_env(scenario, config["mode"], config.get("max_nodes"), config.get("env_seed", 0))
    stem = os.path.splitext(os.path.basename(scenario))[0]
    config["scenario"] = os.path.abspath(scenario)
    config["env"] = f"scenario-{stem}-{config['mode']}"


def _scenario_env(path: str, mode: str, max_nodes: int | None, seed: int):
    import idsjax

    if max_nodes is not None and max_nodes < 2:
        raise UsageError(f"--max-nodes must be at least 2, got {max_nodes}")
    try:
        return idsjax.make_scenario(path, mode=mode, seed=int(seed), max_nodes=max_nodes)
    except (ValueError, OSError) as err:
        raise UsageError(str(err).rstrip(".")) from None


def is_scenario_run(config: dict) -> bool:
    return bool(config.get("scenario") or config.get("generator"))


def make_env(config: dict):
    """`(env, params)` of a configuration: its scenario, its generated family, or `idsjax.make(env)`."""
    import idsjax

    # A self-play run's `mode` is its league mode; the game's own mode is `game_mode` there.
    mode = config.get("game_mode", config.get("mode"))
    if config.get("generator"):
        from idsjax.scenario.generated import GeneratedEnv
        from idsjax.scenario.generator import Family

        family = Family(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["family"].items()})
        env = GeneratedEnv(family, mode, name=config["env"])
        return env, env.default_params
    if config.get("scenario"):
        return _scenario_env(config["scenario"], mode, config.get("max_nodes"), config.get("env_seed", 0))
    return idsjax.make(config["env"], seed=config["env_seed"])
