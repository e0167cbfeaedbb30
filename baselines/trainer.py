"""The contract between a trainer and the host loop, and how a budget becomes updates.

Trainer contract (PureJaxRL style): `init(rng) -> runner` and `update(runner) -> (runner, metrics)`
are pure; `train(rng)` is the whole run as one program (`init` then a `lax.scan` of `update`);
`act(runner, obs, mask, key) -> actions` is the policy to evaluate, and `probs(runner, obs, mask) ->
float32[B, A]` the exact distribution `act` samples from (what exact exploitability reads).
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

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
    """(updates, updates per chunk): about `total_timesteps` steps per seed, rounded up to whole chunks."""
    updates = max(1, math.ceil(config["total_timesteps"] / steps_per_update))
    chunk = math.ceil(updates / config["chunks"])
    return math.ceil(updates / chunk) * chunk, chunk
