"""`python -m idsjax.render`: write a GIF of games between two policies (bots, `random`, or
`checkpoint:RUN_DIR` through the policy loaders of `idsjax.policies`) on a registered id (`--env`)
or a scenario file (`--scenario FILE [--mode MODE]`). The drawing is `idsjax.render`; the games are
`idsjax.rollout`'s (a scenario's are played step by step in `idsjax.render`)."""

from __future__ import annotations

import argparse

from idsjax.game_arguments import add_game_arguments, make_game
from idsjax.policies import ATTACKER, DEFENDER, PolicyLoadError, load_policy
from idsjax.render import VIEWS, episode_gif


def _policy_arg(spec: str | None, side: str, env, params):
    """A command-line policy: None, a bot name (optionally `bot:NAME`), `random`, or `SCHEME:ARG`
    (`checkpoint:RUN_DIR`), loaded here so that a bad one is reported before any game is played."""
    if spec is None or ":" not in spec or spec.startswith("bot:"):
        return spec
    return load_policy(spec, side, env, params)


def main(argv=None) -> int:
    """`python -m idsjax.render`: write a GIF of games between two policies, e.g. a trained attacker
    (`--attacker checkpoint:RUN_DIR`, a `--output-dir` of `python -m baselines.ppo`) against a bot."""
    parser = argparse.ArgumentParser(prog="python -m idsjax.render", description=main.__doc__.splitlines()[0])
    add_game_arguments(parser)
    parser.add_argument("--attacker", help="bot:NAME, random or checkpoint:RUN_DIR (default: the id's own player)")
    parser.add_argument("--defender", help="bot:NAME, random or checkpoint:RUN_DIR (default: the id's own player)")
    parser.add_argument("--out", default="episode.gif", help="GIF path (default: episode.gif)")
    parser.add_argument("--episodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="drives the games")
    parser.add_argument("--instance-seed", type=int, default=0, help="the instance layout, as idsjax.make(id, seed)")
    parser.add_argument("--view", choices=VIEWS, default="full")
    parser.add_argument("--fps", type=float, default=4.0)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.fps <= 0:
        parser.error("--episodes and --fps must be positive")
    env, params, scenario = make_game(parser, args, args.instance_seed)
    try:
        attacker = _policy_arg(args.attacker, ATTACKER, env, params)
        defender = _policy_arg(args.defender, DEFENDER, env, params)
        path = episode_gif(
            (env, params),
            attacker,
            defender,
            args.out,
            seed=args.seed,
            view=args.view,
            episodes=args.episodes,
            fps=args.fps,
            scenario=scenario,
        )
    except (PolicyLoadError, ValueError, TypeError) as err:  # a bad policy spec or checkpoint: one sentence
        parser.error(str(err))
    print(path)
    return 0
