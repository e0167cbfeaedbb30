"""Single-file JAX trainers for idsjax (PureJaxRL style): ppo, dqn, tabular_q, reinforce, actor_critic,
and self-play (`baselines.selfplay`).

Each `python -m baselines.<algo> --help` lists its options; the shared pieces live in modules named for
what they hold (cli, networks, env_steps, trainer, evaluation, checkpoints, logs, host_loop; see
baselines/README.md, "Layout").
"""

import sys as _sys

from baselines import distributed as _distributed

# `python -m baselines.ppo` (or dqn) joins a multi-process run here, before the trainer's imports start
# JAX's backend (see baselines.distributed.join_command_line).
if _sys.argv[:1] == ["-m"]:  # the package of `python -m MODULE` being imported, before MODULE runs
    _distributed.join_command_line(_sys.orig_argv)
