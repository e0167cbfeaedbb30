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

from baselines.cli import GENERATOR_FAMILIES, MODES, SCENARIO_OPTIONS  # noqa: F401 (MODES: re-exported)
from baselines.errors import UsageError
from idsjax.scenario.generator import FAMILIES as PRESETS  # the named families: the views name the same ones

# The command line names the families before this module loads (baselines.cli).
assert tuple(PRESETS) == GENERATOR_FAMILIES, (tuple(PRESETS), GENERATOR_FAMILIES)


# --- the command line ------------------------------------------------------------------------------

OPTIONS = SCENARIO_OPTIONS  # in baselines.cli, which loads without JAX (the trainers parse first)


def family_of(name: str, args: list[str]):
    """The `Family` of preset `name` with `k=v` overrides, or UsageError with one sentence."""
    from idsjax.scenario import ScenarioError
    from idsjax.scenario.generator import named_family

    try:
        return named_family(name, args)
    except ScenarioError as err:
        raise UsageError(str(err)) from None


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
    """`(env, params)` of a configuration: its scenario, its generated family, or `idsjax.make(env)`;
    with `node_features` (`--node-features`), wrapped in `idsjax.node_features.NodeFeatures`, so that
    training, the final evaluation and a checkpoint's loading all read the same columns."""
    env, params = _game(config)
    if config.get("node_features"):
        from idsjax.node_features import NodeFeatures

        env = NodeFeatures(env)  # ValueError where the rows are not nodes: `check_node_features` first
    return env, params


def check_node_features(config: dict) -> None:
    """UsageError (one sentence) unless the game `config` names can carry node features: every row of
    its learner's observation is a node (not a local view's slot). A registered id that does not exist
    is left to the id's own check, which names it better."""
    from idsjax.node_features import NodeFeatures

    try:
        env, _ = _game({"env_seed": 0, **config})
    except ValueError:
        return
    try:
        NodeFeatures(env)
    except ValueError as err:
        raise UsageError(f"--node-features: {err}") from None


def _game(config: dict):
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
