"""Single-file JAX trainers for idsjax (PureJaxRL style): ppo, dqn, tabular_q, reinforce, actor_critic.

Each `python -m baselines.<algo> --help` lists its options; shared pieces live in `baselines.common`.
"""
