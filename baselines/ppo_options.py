"""PPO's command-line tables: its defaults, hyperparameters and options, loadable without JAX.

`baselines.ppo` reads them above its imports (`baselines.cli.start` answers --help and argument errors
before JAX loads); self-play, the autocurricula and exploitability's best responses build their own
command lines from them, so they can answer as quickly."""

from __future__ import annotations

from baselines import cli

ALGO = "ppo"
EVAL_POLICY = "the trained policy, sampled (--eval-greedy: its most likely action)"
# Masking: unmasked, 50 of the attacker's 80 ids are illegal (-1, nothing happens) and PPO's policy
# collapsed onto a poor attack (hack probability 0.27 after 1M steps); masked, it is near-optimal
# (about 0.89-0.90 vs defend-minimal, whose ceiling is about 0.90 for the v7 layout) within 30k steps.
ENV_DEFAULTS = {"total_timesteps": 200_000, "num_envs": 32, "mask_illegal": True}
HYPERPARAMETERS = {
    # name: (default, check, help)
    "num_steps": (32, "pos", "rollout length per environment and update"),
    "lr": (1e-3, "pos", "Adam learning rate"),
    "anneal_lr": (True, "any", "anneal the learning rate linearly to 0"),
    "gamma": (0.99, "unit", "discount"),
    "gae_lambda": (0.95, "prob", "GAE lambda"),
    "update_epochs": (4, "pos", "epochs per update"),
    "num_minibatches": (4, "pos", "minibatches per epoch"),
    "clip_eps": (0.2, "pos", "surrogate clip range"),
    "ent_coef": (0.01, "nonneg", "entropy bonus"),
    "vf_coef": (0.5, "nonneg", "value loss weight"),
    "max_grad_norm": (0.5, "pos", "gradient clip (global norm)"),
    "reward_scale": (0.1, "pos", "rewards are multiplied by this for learning (metrics stay unscaled)"),
    "eval_greedy": (False, "any", "evaluate the most likely action instead of sampling the policy"),
    "hidden": (64, "pos", "units per hidden layer (--network nodes --node-mixer attention: per node)"),
    "layers": (2, "pos", "hidden layers (--network nodes --node-mixer attention: transformer blocks over the nodes)"),
}
# Options of ppo's own command line that are not hyperparameters self-play's best responses share
# (`baselines.selfplay` builds its parser from HYPERPARAMETERS, and has a --policy of its own).
OPTIONS = {
    "network": {
        "default": "mlp",
        "choices": ("mlp", "nodes", "gru"),
        "help": "mlp: separate policy and value MLPs on the flattened observation; nodes: one node-wise "
        "network (--node-mixer) that plays networks of any size (baselines.node_policy); gru: a policy with "
        "memory, a GRU of --hidden units reset at every episode's start, with one-layer heads (--layers does "
        "not apply; baselines.recurrent)",
    },
    # The control of the memory experiment (baselines/MEMORY.md): what the GRU gains from its
    # architecture alone. A run saved before this option existed has no such key: it has memory.
    "memoryless_gru": {
        "default": False,
        "action": "store_true",
        "help": "--network gru: wipe the memory before every step (the same network without memory, the "
        "control of a memory experiment)",
    },
    # The node-wise network's own shape (`baselines.node_policy`); a run saved before these options
    # existed was the attention network at --hidden and --layers, and loads as that.
    "node_mixer": {
        "default": "mean",
        "choices": ("mean", "attention"),
        "help": "--network nodes: how nodes see each other; mean: each node reads the mean of the others "
        "(fast); attention: a transformer over the nodes (at --hidden and --layers)",
    },
    "node_hidden": {"default": 16, "type": int, "help": "--network nodes with --node-mixer mean: units per node"},
    "node_blocks": {"default": 1, "type": int, "help": "--network nodes with --node-mixer mean: mixing layers"},
    # Off by default so that every run's observations stay the game's own; a run saved before this
    # option existed has no such key and loads without the columns, as it was trained.
    "node_features": {
        "default": False,
        "action": "store_true",
        "help": "append each node's role (start, server, data) and depth to its observation row "
        "(idsjax.node_features), in training, evaluation and wherever the checkpoint is loaded; any "
        "--network, refused where the learner's rows are not nodes (local views)",
    },
    **cli.SCENARIO_OPTIONS,  # --scenario FILE [--max-nodes N] | --generator NAME [--generator-arg K=V]; --mode
}
