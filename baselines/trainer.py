"""The contract between a trainer and the host loop, and how a budget becomes updates.

Trainer contract (PureJaxRL style): `init(rng) -> runner` and `update(runner) -> (runner, metrics)`
are pure; `train(rng)` is the whole run as one program (`init` then a `lax.scan` of `update`);
`act(runner, obs, mask, key) -> actions` is the policy to evaluate, and `probs(runner, obs, mask) ->
float32[B, A]` the exact distribution `act` samples from (what exact exploitability reads).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax


class Trainer(NamedTuple):
    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, dict]]
    act: Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
    num_updates: int
    steps_per_update: int
    probs: Callable[[Any, jax.Array, jax.Array], jax.Array] | None = None

    def train(self, rng: jax.Array) -> tuple[Any, dict]:
        """The whole run as one program: `init` then `num_updates` scanned updates."""
        runner = self.init(rng)
        return jax.lax.scan(lambda r, _: self.update(r), runner, None, self.num_updates)


def plan_updates(config: dict, steps_per_update: int) -> tuple[int, int]:
    """(updates, updates per chunk): the fewest whole updates that reach `total_timesteps` steps per
    seed. The number of updates does not depend on `--chunks`, which only sets how often the host
    reports (the last chunk runs the remainder), so `--chunks` never changes a result."""
    updates = max(1, math.ceil(config["total_timesteps"] / steps_per_update))
    return updates, math.ceil(updates / config["chunks"])


def budget_note(config: dict, num_updates: int, steps_per_update: int) -> str | None:
    """A sentence when the budget is rounded up to whole updates, else None."""
    steps = num_updates * steps_per_update
    if steps == config["total_timesteps"]:
        return None
    return (
        f"--total-timesteps {config['total_timesteps']} is rounded up to {steps} steps per seed: "
        f"{num_updates} updates of {steps_per_update} steps (--num-envs x --num-steps)"
    )
