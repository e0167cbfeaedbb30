"""The kit's trainers, listed once: the name a run's `config.json` carries as `algo` -> the module that
trains it (`python -m MODULE`, whose `make_train` checkpoints restore into). Checkpoints, the results
table and the reference grid's mapping read this registry."""

from __future__ import annotations

TRAINER_MODULES = {
    "ppo": "baselines.ppo",
    "dqn": "baselines.dqn",
    "tabular_q": "baselines.tabular_q",
    "reinforce": "baselines.reinforce",
    "actor_critic": "baselines.actor_critic",
    "selfplay": "baselines.selfplay",
}
# One learner against a scripted opponent (every trainer but self-play, which trains both sides).
SINGLE_AGENT_TRAINERS = tuple(name for name in TRAINER_MODULES if name != "selfplay")
