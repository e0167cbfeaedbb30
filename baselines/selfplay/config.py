"""Self-play's configuration: league modes, policy heads, hyperparameters and the command line."""

from __future__ import annotations

# Loads without JAX (PPO's tables, the command line's helpers), so that `python -m baselines.selfplay`
# answers --help and argument errors at once; the game, the devices and the scenarios load when a
# configuration is checked against them.
from baselines import ppo_options
from baselines.cli import (
    SCENARIO_OPTIONS,
    build_parser,
    check_config,
    check_numbers,
    explicit_flags,
    finish_config,
    known_env,
)
from baselines.errors import UsageError

ALGO = "selfplay"
MODES = ("naive", "pool", "pfsp", "psro")
POLICIES = ("flat", "autoregressive")
SIDES = ("attacker", "defender")
# The scripted opponents of each learner: the attacker faces the defence bots and vice versa.
OPPONENT_BOTS = {"attacker": ("random_defense", "defend_minimal"), "defender": ("random_attack", "attack_maximal")}

ENV_DEFAULTS = {"env": "idsgame-v19", "total_timesteps": 100_000, "num_envs": 32, "mask_illegal": True, "chunks": 20}
_PPO = {k: v for k, v in ppo_options.HYPERPARAMETERS.items() if k != "eval_greedy"}
HYPERPARAMETERS = {
    **_PPO,
    "mode": ("pool", "any", "league mode: " + " | ".join(MODES)),
    "policy": ("flat", "any", "policy head of both players: flat | autoregressive (node, then type)"),
    "pool_size": (8, "pos", "snapshots kept per side (ring buffer on the device)"),
    "snapshot_every": (5, "pos", "updates between snapshots"),
    "pool_share": (0.5, "prob", "share of the games played against an opponent from the pool (half per side)"),
    "bot_share": (0.0, "prob", "probability that a pool game's opponent is a scripted bot"),
    "pool_temperature": (0.1, "pos", "--mode pool: softmax temperature of the quality weights"),
    "rate_ema": (0.05, "unit", "per-game weight of the win-rate moving averages"),
    "meta_iters": (200, "pos", "--mode psro: regret-matching+ iterations of the meta-solver per update"),
    "payoff_episodes": (
        -1,
        "any",
        "evaluation games per pair of the payoff matrix; -1: scaled to the run (about --total-timesteps / 20 "
        "games in all, 10 to 100 per pair)",
    ),
    "br_timesteps": (
        -1,
        "any",
        "steps of each best-response PPO for exploitability: -1 as many as the policy it "
        "attacks (--total-timesteps), 0 skip; fewer than --total-timesteps is refused",
    ),
    "br_eval_episodes": (2000, "pos", "evaluation games of each best response, greedy and sampled each"),
}
# The trainers' other games (`--scenario FILE [--max-nodes N]`, `--generator NAME [--generator-arg K=V]`),
# parsed and checked by `baselines.scenarios` as for the single-agent trainers. Self-play plays them in the
# two-agent mode, so the trainers' `--mode` (who learns against which bot) is not among them: here
# `--mode` is the league mode.
OPTIONS = {k: v for k, v in SCENARIO_OPTIONS.items() if k != "mode"}
TWO_AGENT = ""  # idsjax's two-agent mode (`idsjax.versions.Mode.TWO_AGENT`)


def validate(config: dict) -> None:
    _validate(config)
    resolve_game(config)
    devices = config.get("devices", 1)
    if devices > 1:  # each device trains a run of its own share of the games (baselines.distributed)
        from baselines.distributed import local_config

        local = local_config(config, devices)
        try:
            _validate(local)
        except UsageError as e:
            raise UsageError(
                f"--devices {devices} gives each device {local['num_envs']} games, and then: {e}"
            ) from None
        pool, local_pool = split_envs(config)[0], split_envs(local)[0]
        if pool != devices * local_pool:
            raise UsageError(
                f"--num-envs {config['num_envs']} with --pool-share {config['pool_share']} does not split evenly "
                f"over --devices {devices} ({pool} pool games per side, {local_pool} per device); choose "
                f"--num-envs so that each device's share is whole"
            )


def _validate(config: dict) -> None:
    if config["mode"] not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, got {config['mode']!r}")
    if config["policy"] not in POLICIES:
        raise UsageError(f"--policy must be one of {', '.join(POLICIES)}, got {config['policy']!r}")
    if config["payoff_episodes"] < -1 or config["payoff_episodes"] == 0:
        raise UsageError(
            f"--payoff-episodes must be positive or -1 (scaled to the run), got {config['payoff_episodes']}"
        )
    br = config["br_timesteps"]
    if br < -1 or 0 < br < config["total_timesteps"]:
        raise UsageError(
            f"--br-timesteps {br}: a best response must train at least as long as the policy it attacks "
            f"(--total-timesteps {config['total_timesteps']}); give -1 for as long, a larger number, or 0 to skip"
        )
    n_pool, n_self = split_envs(config)
    if n_self < 1:
        raise UsageError("--pool-share leaves no learner-vs-learner game; lower it or raise --num-envs")
    if ((n_self + n_pool) * config["num_steps"]) % config["num_minibatches"]:
        raise UsageError(
            f"each player's batch ({n_self + n_pool} games x --num-steps {config['num_steps']}) must be "
            f"divisible by --num-minibatches {config['num_minibatches']}"
        )
    if config["num_envs"] * config["num_steps"] % config["num_minibatches"]:  # the best responses (ppo)
        raise UsageError("--num-envs x --num-steps must be divisible by --num-minibatches")


def payoff_games(config: dict) -> int:
    """Games per pair of the payoff matrix: `--payoff-episodes`, or (-1) scaled to the run, so that a
    short run is not mostly evaluation: the matrix's (pool_size + 1)^2 pairs play about
    total_timesteps / 20 games in all, 10 to 100 per pair (100 from about 160k steps per seed with
    the default pool of 8)."""
    if config["payoff_episodes"] > 0:
        return config["payoff_episodes"]
    pairs = (config["pool_size"] + 1) ** 2
    return int(min(100, max(10, round(config["total_timesteps"] / (20 * pairs)))))


def split_envs(config: dict) -> tuple[int, int]:
    """(pool games per side, learner-vs-learner games)."""
    n = config["num_envs"]
    n_pool = 0 if config["mode"] == "naive" else int(round(n * config["pool_share"] / 2))
    return n_pool, n - 2 * n_pool


def resolve_game(config: dict) -> None:
    """Check `--scenario` / `--generator` with `baselines.scenarios.resolve` (UsageError, one sentence)
    and name the game in `config["env"]`: `scenario-<file stem>` or `generated-<family>`, without a
    mode, as the two-agent ids `idsgame-vN` have none. `game_mode` records the two-agent mode beside
    the league mode `mode`, for whatever rebuilds the game from a saved configuration (`make_game`)."""
    given = [f for f in config.get("cli_flags", ()) if f != "mode"]  # --mode: the league's, not the game's
    named = config.get("scenario") is not None or config.get("generator") is not None
    if named and "env" in given:
        raise UsageError("--env names a registered game and --scenario or --generator another; give one of them")
    from baselines import scenarios

    game = {**config, "mode": TWO_AGENT, "cli_flags": given}
    scenarios.resolve(game)  # also refuses --max-nodes or --generator-arg without their game
    if not named:
        return
    config.update({k: game[k] for k in ("env", "scenario", "family") if k in game})
    config["env"] = config["env"].removesuffix("-")  # resolve appends the mode, empty here
    config["game_mode"] = TWO_AGENT


def make_game(config: dict):
    """`(env, params)` of a run's configuration: the two-agent id, or its scenario or generated family
    in the two-agent mode (the environment `baselines.scenarios.make_env` builds, whose `mode` is the
    game's, not the league's)."""
    from baselines import scenarios

    return scenarios.make_env({"env_seed": 0, **config, "mode": TWO_AGENT})


def check_env_id(env_id: str) -> None:
    env, _ = known_env(env_id)
    if env.learner != "both":
        raise UsageError(
            f"{env_id!r} is a single-agent id (the {env.learner} against a scripted bot); train it with "
            f"python -m baselines.ppo --env {env_id} (or another single-agent baseline). Self-play takes "
            f"the two-agent ids idsgame-vN."
        )
    cfg = env.config
    if cfg.num_attack_ids != cfg.num_nodes * cfg.attack_id_width:
        raise UsageError(f"{env_id!r}: attack ids are not node x type; self-play does not support it")


def selfplay_parser():
    parser = build_parser(ALGO, HYPERPARAMETERS, ENV_DEFAULTS, OPTIONS)
    parser.description = (
        "Self-play PPO for both players of a two-agent idsjax game (idsgame-vN, a scenario file or a "
        "generated family), with an opponent pool and league modes."
    )
    for action in parser._actions:  # argparse has no public way to amend an option
        if action.dest == "env":
            action.help = "two-agent environment id idsgame-vN (idsjax.registered_envs())"
        elif action.dest == "mode":
            action.choices = MODES
        elif action.dest == "policy":
            action.choices = POLICIES
    return parser


def parse_early(argv) -> None:
    """--help, an unknown option, a bad type or number, or settings that cannot train: one answer, exit 2,
    before JAX and the game load (`python -m baselines.selfplay`; `parse_config` then checks the game)."""
    parser = selfplay_parser()
    config = vars(parser.parse_args(argv))
    try:
        check_numbers(config, HYPERPARAMETERS)
        _validate(config)
    except UsageError as e:
        parser.error(str(e))


def parse_config(argv) -> dict:
    parser = selfplay_parser()
    config = vars(parser.parse_args(argv))
    config["cli_flags"] = explicit_flags(parser, argv)
    try:
        check_config(config, HYPERPARAMETERS, validate, check_env_id)
    except UsageError as e:
        parser.error(str(e))
    return finish_config(config, ALGO)
