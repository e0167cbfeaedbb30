"""A random agent over the wire: uniform over the legal ids the server sends (no JAX needed).

python -m idsjax.serve --env idsgame-v3                       # terminal 1
python examples/agents/random_agent.py --role attacker --game g1 --players attacker defender   # 2
python examples/agents/random_agent.py --role defender --game g1 --players attacker defender   # 3
"""

from __future__ import annotations

import argparse
import json
import random
import sys

from idsjax.client import ServerError, connect


def parse(argv=None, description=__doc__):
    p = argparse.ArgumentParser(description=description.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--role", choices=("attacker", "defender"), required=True)
    p.add_argument("--game", default=None, help="game id to create or join (default: a fresh game)")
    p.add_argument(
        "--players",
        nargs="+",
        choices=("attacker", "defender"),
        default=None,
        help="roles reserved for remote agents when creating (default: yours; the rest are bots)",
    )
    p.add_argument("--seed", type=int, default=None, help="the game's seed (default: a secret one)")
    p.add_argument("--episodes", type=int, default=3, help="play until this many episodes have ended")
    p.add_argument("--transport", choices=("http", "ws"), default="ws")
    p.add_argument("--agent-seed", type=int, default=0, help="this agent's own random choices")
    p.add_argument("--log", default=None, help="write every view as a JSON line here")
    return p.parse_args(argv)


def run(args, choose) -> int:
    """Play `args.episodes` episodes with `choose(view) -> action id`; print one line per episode."""
    log = open(args.log, "w") if args.log else None
    try:
        with connect(
            args.url, role=args.role, game_id=args.game, players=args.players, seed=args.seed, transport=args.transport
        ) as agent:
            view = agent.view
            if log:
                log.write(json.dumps(view) + "\n")
            while view["episodes"] < args.episodes:
                view = agent.step(choose(view))
                if log:
                    log.write(json.dumps(view) + "\n")
                if view["done"]:
                    end = "hacked" if view["hacked"] else "detected" if view["detected"] else "timed out"
                    print(
                        f"{args.role}: episode {view['episode'] - 1} {end}, return {view['episode_return']:g}",
                        flush=True,
                    )
    except ServerError as err:
        print(f"{args.role}: the server refused: {err.message}", file=sys.stderr)
        return 2
    finally:
        if log:
            log.close()
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    rng = random.Random(args.agent_seed)
    return run(args, lambda view: rng.choice(view["legal_actions"]))


if __name__ == "__main__":
    sys.exit(main())
