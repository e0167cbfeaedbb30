"""Plays a batch of games between the scripted bots and prints hack probabilities.

python -m idsjax.demo [--env idsgame-v3] [--games 4096] [--steps 200]
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp

import idsjax
from idsjax.bots import BOTS

PAIRS = (
    ("random_attack", "random_defense"),
    ("attack_maximal", "defend_minimal"),
    ("attack_maximal", "random_defense"),
    ("random_attack", "defend_minimal"),
)


def play(env_id: str, attacker: str, defender: str, games: int, steps: int, seed: int = 0):
    """Run `games` two-agent games for `steps` transitions each (auto-reset); count outcomes."""
    env, params = idsjax.make(env_id, seed=seed)
    attack_bot, defense_bot = BOTS[attacker], BOTS[defender]

    def one_step(carry, key):
        state, hacks, detections = carry
        k_a, k_d, k_step = jax.random.split(key, 3)
        action = {
            "attacker": attack_bot(k_a, state, env.config, params),
            "defender": defense_bot(k_d, state, env.config, params),
        }
        _, state, _, _, _, info = env.step(k_step, state, action, params)
        return (state, hacks + info["hacked"], detections + info["detected"]), None

    @jax.jit
    def run(key):
        keys = jax.random.split(key, games)
        _, states = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
        step_keys = jax.random.split(jax.random.fold_in(key, 1), (steps, games))
        zeros = jnp.zeros(games, jnp.int32)
        (_, hacks, detections), _ = jax.lax.scan(
            jax.vmap(one_step, in_axes=((0, 0, 0), 0)), (states, zeros, zeros), step_keys
        )
        return hacks.sum(), detections.sum()

    return [int(x) for x in run(jax.random.PRNGKey(seed))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="idsgame-v3", help="a two-agent id, idsgame-vN")
    parser.add_argument("--games", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.env.startswith("idsgame-v"):
        parser.error(f"--env must be a two-agent id like idsgame-v3, got {args.env!r}")
    if args.games < 1 or args.steps < 1:
        parser.error("--games and --steps must be positive")
    try:
        idsjax.make(args.env)
    except ValueError as err:
        parser.error(str(err))
    print(f"{args.env}: {args.games} games in parallel, {args.steps} steps each, on {jax.devices()[0]}")
    for attacker, defender in PAIRS:
        start = time.perf_counter()
        hacks, detections = play(args.env, attacker, defender, args.games, args.steps, args.seed)
        episodes = hacks + detections
        rate = hacks / max(episodes, 1)
        seconds = time.perf_counter() - start
        print(
            f"  {attacker:>15} vs {defender:<15} episodes {episodes:>7}  P(hack) {rate:.3f}"
            f"  ({args.games * args.steps / seconds / 1e6:.1f}M steps/s incl. compile)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
