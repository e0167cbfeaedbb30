"""Compatibility names for code written against the former `baselines.common` (one module that held
the command line, networks, episode bookkeeping, evaluation, checkpoints, logging and the host loop).
New code imports the module that holds each piece: `cli`, `networks`, `env_steps`, `trainer`,
`evaluation`, `checkpoints`, `logs`, `host_loop`, `errors`."""

from baselines.checkpoints import CKPT_DIR, CONFIG_FILE, load_config, load_policy, restore_checkpoint, save_checkpoint
from baselines.cli import (
    CHECKS,
    COMMON_DEFAULTS,
    NONNEG_COMMON,
    POSITIVE_COMMON,
    build_parser,
    check_env_id,
    parse_config,
)
from baselines.env_steps import EnvCarry, EpisodeTracker, Step, episode_metrics, legal_mask, reset_envs, step_envs
from baselines.errors import UsageError
from baselines.evaluation import evaluate
from baselines.host_loop import resumed_config, run, start_fresh_run, train_chunks
from baselines.logs import METRICS_FILE, plot_metrics
from baselines.networks import MLP, OBS_SCALE, ActorCritic, mask_logits, preprocess, scaled_init
from baselines.trainer import Trainer, plan_updates

__all__ = [
    "CHECKS",
    "CKPT_DIR",
    "COMMON_DEFAULTS",
    "CONFIG_FILE",
    "METRICS_FILE",
    "MLP",
    "NONNEG_COMMON",
    "OBS_SCALE",
    "POSITIVE_COMMON",
    "ActorCritic",
    "EnvCarry",
    "EpisodeTracker",
    "Step",
    "Trainer",
    "UsageError",
    "build_parser",
    "check_env_id",
    "episode_metrics",
    "evaluate",
    "legal_mask",
    "load_config",
    "load_policy",
    "mask_logits",
    "parse_config",
    "plan_updates",
    "plot_metrics",
    "preprocess",
    "reset_envs",
    "restore_checkpoint",
    "resumed_config",
    "run",
    "save_checkpoint",
    "scaled_init",
    "start_fresh_run",
    "step_envs",
    "train_chunks",
]
