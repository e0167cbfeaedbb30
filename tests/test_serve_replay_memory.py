"""A served game whose scripted opponent has memory replays exactly (`idsjax.serve.replay`): the replay
carries the opponent's memory as the engine does, fresh at every episode's start and advanced at every
step. Before, the replay called the opponent as a memoryless policy and raised its "has memory" error."""

from __future__ import annotations

import asyncio
import random

import jax.numpy as jnp

import idsjax
from idsjax.policies import RecurrentPolicy
from idsjax.serve import Coordinator
from idsjax.serve.replay import replay

ENV = "idsgame-v3"


def counting_defender() -> RecurrentPolicy:
    """Plays defense ids 0, 1, ..., 7, 0, ... by the number of steps it has taken in this episode (its
    memory): a policy whose actions a memoryless replay cannot reproduce."""

    def step(key, obs, state, carry):
        return jnp.asarray(carry % 8, jnp.int32), carry + 1

    return RecurrentPolicy(jnp.int32(0), step, name="counting")


def test_a_recurrent_opponent_replays_exactly():
    env, params = idsjax.make(ENV)
    defender = counting_defender()

    async def body(c):
        token, view = c.join(None, "attacker", seed=7)
        views, rng = [], random.Random(3)
        for _ in range(40):
            view = await c.submit(token, rng.choice(view["legal_actions"]))
            views.append(view)
        return views

    async def main():
        c = Coordinator(ENV, opponents={"defender": defender})
        loop = asyncio.create_task(c.run())
        try:
            return await body(c)
        finally:
            loop.cancel()
            c.close()

    views = asyncio.run(main())
    records = replay(env, params, 7, [{"attacker": v["action"]} for v in views], bots={"defender": defender})
    assert any(r["done"] for r in records), "40 random steps of v3 end at least one episode"
    for t, (v, r) in enumerate(zip(views, records, strict=True)):
        assert v["observation"] == r["observation"]["attacker"], t
        assert v["reward"] == r["rewards"][0] and v["done"] == r["done"], t
    # the memory counts within an episode and starts again after one ends
    first_done = next(t for t, r in enumerate(records) if r["done"])
    assert [r["defense"] for r in records[: min(first_done + 1, 5)]][:2] == [0, 1]
    if first_done + 1 < len(records):
        assert records[first_done + 1]["defense"] == 0
