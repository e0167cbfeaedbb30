"""Replay a served game in-process, one unbatched step at a time, from its seed and the agents' actions.

The server's outcomes must equal this replay exactly (`tests/test_serve_e2e.py` checks it); a user who
knows a game's seed can check a server the same way.
"""

from __future__ import annotations

import jax
import numpy as np

from idsjax.policies import ATTACKER, DEFENDER, joint_step, resolve_policy, side_observation
from idsjax.serve.engine import game_key, reset_key, step_keys, with_memory


def replay(env, params, seed: int, actions, bots: dict | None = None) -> list[dict]:
    """`actions`: per joint step `{side: id}` for the remote sides; `bots`: `{side: policy spec}` for the
    sides the server's opponent played. Per step: the joint action, both rewards, the end flags, and
    each side's observation after the step (the next episode's first one when the step ended one)."""
    bots = dict(bots or {})
    # As the engine plays them: each bot with its memory (a checkpoint of a --network gru run), fresh at
    # every episode's start and advanced at every step; a memoryless bot's memory is empty.
    policies = {side: with_memory(resolve_policy(spec, side, env, params)) for side, spec in bots.items()}
    acts = {side: jax.jit(p.step) for side, p in policies.items()}
    resets = {side: jax.jit(p.reset) for side, p in policies.items()}
    memory = {side: p.init_carry() for side, p in policies.items()}
    step = jax.jit(lambda k, s, a, d: joint_step(env, k, s, a, d, params))
    start = jax.jit(lambda k: env.initial_state(k, params))
    key = game_key(seed)
    episode = 0
    state = start(reset_key(key, episode))
    out = []
    for t, given in enumerate(actions):
        k_att, k_def, k_env = step_keys(key, t)
        chosen = dict(given)
        for side, k in ((ATTACKER, k_att), (DEFENDER, k_def)):
            if side in policies:
                action, memory[side] = acts[side](k, side_observation(env, state, side), state, memory[side])
                chosen[side] = int(action)
        a, d = np.int32(chosen[ATTACKER]), np.int32(chosen[DEFENDER])
        stepped, rewards, info = step(k_env, state, a, d)
        done = bool(info["terminated"]) or bool(info["truncated"])
        record = {
            "attack": int(a),
            "defense": int(d),
            "rewards": np.asarray(rewards).tolist(),
            "done": done,
            "terminated": bool(info["terminated"]),
            "truncated": bool(info["truncated"]),
            "hacked": bool(info["hacked"]) and done,
            "detected": bool(info["detected"]) and done,
            "final_observation": {
                s: np.asarray(side_observation(env, stepped, s)).tolist() for s in (ATTACKER, DEFENDER)
            },
        }
        memory = {side: resets[side](m, done) for side, m in memory.items()}
        if done:
            episode += 1
            state = start(reset_key(key, episode))
        else:
            state = stepped
        record["observation"] = {s: np.asarray(side_observation(env, state, s)).tolist() for s in (ATTACKER, DEFENDER)}
        out.append(record)
    return out


def initial_observations(env, params, seed: int) -> dict:
    """Each side's first observation of a game with `seed`."""
    state = env.initial_state(reset_key(game_key(seed), 0), params)
    return {s: np.asarray(side_observation(env, state, s)).tolist() for s in (ATTACKER, DEFENDER)}
