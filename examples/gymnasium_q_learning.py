"""Train an attacker through the plain gymnasium API: tabular Q-learning in NumPy, one game at a time.

    python examples/gymnasium_q_learning.py [--env idsjax/idsgame-random_defense-v0] [--episodes 3000]

It uses nothing of idsjax but `gymnasium.make`, `reset`, `step` and `info["action_mask"]`: any
gymnasium-speaking library drives the game the same way. (For speed, train with the JAX baselines.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

import gymnasium
import numpy as np

import idsjax  # noqa: F401  (registers the idsjax/<id> environments)


def greedy(q_row: np.ndarray, mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[np.argmax(q_row[mask.astype(bool)])])


def train(env_id: str, episodes: int, seed: int, alpha=0.2, gamma=0.99, eps_start=1.0, eps_end=0.05):
    env = gymnasium.make(env_id)
    rng = np.random.default_rng(seed)
    q = defaultdict(lambda: np.zeros(env.action_space.n))
    obs, info = env.reset(seed=seed)
    for episode in range(episodes):
        eps = eps_end + (eps_start - eps_end) * max(0.0, 1 - episode / (0.7 * episodes))
        done = False
        while not done:
            state, mask = obs.tobytes(), info["action_mask"]
            legal = np.flatnonzero(mask)
            action = int(rng.choice(legal)) if rng.random() < eps else greedy(q[state], mask)
            obs, reward, terminated, truncated, info = env.step(action)
            next_legal = info["action_mask"].astype(bool)
            target = reward if terminated or truncated else reward + gamma * q[obs.tobytes()][next_legal].max()
            q[state][action] += alpha * (target - q[state][action])
            done = terminated or truncated
        obs, info = env.reset()
    return env, q


def evaluate(env, q, episodes: int, seed: int) -> float:
    hacks = 0
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(greedy(q[obs.tobytes()], info["action_mask"]))
            done = terminated or truncated
        hacks += bool(info["hacked"])
        obs, info = env.reset()
    return hacks / episodes


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="idsjax/idsgame-random_defense-v0", help="a single-agent attacker id")
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--eval-episodes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.eval_episodes < 1:
        parser.error("--episodes and --eval-episodes must be positive")
    if not args.env.startswith("idsjax/idsgame-") or "_defense-" not in args.env:
        parser.error("--env must be an attacker id, idsjax/idsgame-random_defense-vN or -minimal_defense-vN")
    env, q = train(args.env, args.episodes, args.seed)
    result = {
        "env": args.env,
        "episodes": args.episodes,
        "states": len(q),
        "eval_hack_probability": evaluate(env, q, args.eval_episodes, args.seed + 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
