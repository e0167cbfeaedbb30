"""The command line of `python -m baselines.ued`: the trainers' common options (`baselines.cli`), PPO's
hyperparameters, and the autocurriculum's own, with their checks (`validate`)."""

from __future__ import annotations

from baselines import ppo_options as ppo  # PPO's tables, without JAX: --help answers at once
from baselines.cli import GENERATOR_FAMILIES, MODES
from baselines.errors import UsageError

ALGO = "ued"
EVAL_POLICY = "the trained policy (policies, --side both), sampled (--eval-greedy: its most likely action)"
# Episodes must end inside a rollout for a level to get a score, hence longer rollouts than PPO's 32
# steps (a game on the small family lasts a few to 102 steps).
ENV_DEFAULTS = {"total_timesteps": 200_000, "num_envs": 32, "mask_illegal": True}
HYPERPARAMETERS = {
    **ppo.HYPERPARAMETERS,
    "num_steps": (64, "pos", "rollout length per environment and update (each game replays its level)"),
    # jaxued's PLR and ACCEL defaults, with a buffer sized for budgets of 10^5 to 10^6 steps.
    "buffer_size": (512, "pos", "levels the PLR buffer holds (jaxued's LevelSampler capacity)"),
    "replay_prob": (0.8, "prob", "probability that an update replays buffered levels (once --min-fill is reached)"),
    "min_fill": (0.5, "unit", "fraction of the buffer filled before any replay"),
    "staleness_coeff": (0.3, "prob", "weight of staleness against score in the replay distribution"),
    "temperature": (0.3, "pos", "rank prioritisation temperature (lower: replay the top levels more)"),
    "num_edits": (3, "pos", "--method accel: edits per mutated level (idsjax.scenario.mutations)"),
    "heldout": (100, "nonneg", "networks of the family held out of training by canonical hash, evaluated on (0: none)"),
}
OPTIONS = {
    "side": {
        "default": "attacker",
        "choices": ("attacker", "defender", "both"),
        "help": "who learns: the attacker (against --mode's defender bot), the defender (against its attacker "
        "bot), or both in self-play on the same levels",
    },
    "method": {
        "default": "plr",
        "choices": ("dr", "plr", "robust_plr", "accel"),
        "help": "which levels to train on: dr fresh draws; plr a regret-prioritised buffer; robust_plr the "
        "same with gradients on replayed levels only; accel robust PLR plus edits of replayed levels",
    },
    "score": {
        "default": "pvl",
        "choices": ("pvl", "maxmc"),
        "help": "a level's regret estimate: positive value loss or maximum Monte Carlo",
    },
    "network": {
        "default": "mlp",
        "choices": ("mlp", "nodes"),
        "help": "mlp: policy and value MLPs on the flattened observation; nodes: the node-wise network "
        "(baselines.node_policy)",
    },
    **{k: ppo.OPTIONS[k] for k in ("node_mixer", "node_hidden", "node_blocks")},
    "generator": {
        "default": "small",
        "choices": GENERATOR_FAMILIES,
        "help": "the family of generated networks the levels come from",
    },
    "generator_arg": {
        "action": "append",
        "default": [],
        "metavar": "K=V",
        "help": "set a field of the family (idsjax.scenario.generator.Family), e.g. max_layers=4",
    },
    "mode": {
        "default": None,
        "choices": MODES,
        "help": "the bot a single learner plays (default: minimal_defense for --side attacker, maximal_attack "
        "for --side defender); not with --side both",
    },
}
MAX_HELDOUT = 10_000
SIDE_MODES = {"attacker": ("minimal_defense", "random_defense"), "defender": ("maximal_attack", "random_attack")}


def validate(config: dict) -> None:
    """UsageError (one sentence) for a configuration that cannot train; names the game in `config`."""
    if (config["num_envs"] * config["num_steps"]) % config["num_minibatches"]:
        raise UsageError("--num-envs x --num-steps must be divisible by --num-minibatches")
    for name in ("node_hidden", "node_blocks"):
        if config[name] < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {config[name]}")
    if config["network"] != "nodes" and any(f in config.get("cli_flags", ()) for f in ("node_mixer", "node_hidden")):
        raise UsageError("--node-mixer and --node-hidden shape --network nodes; give --network nodes or leave them out")
    if config["heldout"] > MAX_HELDOUT:
        raise UsageError(
            f"--heldout must be at most {MAX_HELDOUT} (networks drawn and hashed at once), got {config['heldout']}"
        )
    side, mode = config["side"], config["mode"]
    if side == "both":
        if mode is not None:
            raise UsageError("--mode names the bot a single learner plays; --side both trains both players")
        mode = ""
    elif mode is None:
        mode = SIDE_MODES[side][0]
    elif mode not in SIDE_MODES[side]:
        raise UsageError(f"--mode {mode} has a learning {'defender' if side == 'attacker' else 'attacker'}; "
                         f"--side {side} plays {' or '.join(SIDE_MODES[side])}")  # fmt: skip
    config["mode"] = mode
    from baselines import scenarios

    scenarios.resolve(config)  # the family (--generator-arg checked), and the game's name
    config["env"] = f"generated-{config['generator']}-{mode or 'two_agent'}"
