"""Single-file JAX trainers for idsjax (PureJaxRL style): ppo, dqn, tabular_q, reinforce, actor_critic,
and self-play (`baselines.selfplay`).

Each `python -m baselines.<algo> --help` lists its options; the shared pieces live in modules named for
what they hold (cli, networks, env_steps, trainer, evaluation, checkpoints, logs, host_loop; see
baselines/README.md, "Layout").

Importing the package does nothing else: a trainer's command line joins a multi-process run itself,
first thing (`baselines.cli.start`), and a script calls `baselines.distributed.initialize()`.
"""
