"""GIFs of whole episodes (spec §11.3), and `python -m idsjax.render`.

The games, of any kind (a registered id, a scenario, a generated family), are played by
`idsjax.rollout` and recorded by `idsjax.trajectories`, the frames drawn by `idsjax.frames` (whose
`render_frame`, `write_gif`, `save_frame` and `frame_size` this module also exports, as it always has).

`python -m idsjax.render`: write a GIF of games between two policies (bots, `random`, or
`checkpoint:RUN_DIR` through the policy loaders of `idsjax.policies`) on a registered id (`--env`), a
scenario file (`--scenario FILE [--mode MODE]`) or a generated family (`--generator NAME
[--generator-arg K=V ...] [--mode MODE]`: each game on the network its reset drew).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from idsjax.frames import VIEWS, frame_size, network_params, render_frame, save_frame, write_gif
from idsjax.game_arguments import add_game_arguments, make_game
from idsjax.policies import ATTACKER, DEFENDER, PolicyLoadError, default_policy, load_policy, policy_name


# -- episodes -------------------------------------------------------------------------------------
def _resolve_env(env_or_id, seed: int):
    if isinstance(env_or_id, str):
        import idsjax

        return idsjax.make(env_or_id, seed=seed)
    env, params = env_or_id
    return env, params


def play_episodes(
    env,
    params,
    attacker_policy=None,
    defender_policy=None,
    *,
    seed: int = 0,
    episodes: int = 1,
    max_steps: int | None = None,
):
    """Play `episodes` games (one batch through `idsjax.rollout`, recorded by `idsjax.trajectories`)
    and yield them one after the other, frame by frame: `(state, last_action, rewards, info)`, first
    the reset state with `None`s, then one entry per joint step up to the game's end (no auto-reset).
    Any game: a registered id, a scenario, a generated family (whose states carry each game's
    network). Policies as in `idsjax.policies`; callables must be jittable; a policy with memory
    (`RecurrentPolicy`, e.g. `checkpoint:RUN_DIR` of a `--network gru` run) starts each game afresh."""
    from idsjax.trajectories import record

    traj = record((env, params), attacker_policy, defender_policy, num_games=episodes, max_steps=max_steps, seed=seed)
    a = traj.arrays
    for game in range(traj.num_games):
        yield traj.state(game, 0), None, None, None
        for t in range(int(a["length"][game])):
            info = {
                "attack_legal": bool(a["attack_legal"][game, t]),
                "moved": bool(a["moved"][game, t]),
                "hacked": bool(a["hacked"][game, t + 1]),
                "detected": bool(a["detected"][game, t + 1]),
            }
            yield traj.state(game, t + 1), traj.joint_action(game, t), a["rewards"][game, t], info


def episode_frames(
    env_or_id,
    attacker_policy=None,
    defender_policy=None,
    *,
    seed: int = 0,
    instance_seed: int = 0,
    max_steps: int | None = None,
    view: str = "full",
    episodes: int = 1,
    scenario: Any = None,
) -> list[np.ndarray]:
    """The frames of `episodes` games played by a pair of policies (see `episode_gif`)."""
    env, params = _resolve_env(env_or_id, instance_seed)
    frames = []
    games = hacks = 0
    returns = np.zeros(2)
    names = [
        policy_name(p) if p is not None else default_policy(env, side)
        for p, side in ((attacker_policy, ATTACKER), (defender_policy, DEFENDER))
    ]
    title = None
    previous = None
    for state, last, rewards, info in play_episodes(
        env, params, attacker_policy, defender_policy, seed=seed, episodes=episodes, max_steps=max_steps
    ):
        if title is None:  # a generated family's name is its environment's, whichever network is drawn
            title = f"{env.names(network_params(env, state, params), scenario).env_id}: {names[0]} vs {names[1]}"
        attack_from, previous = previous, int(state.position)
        if last is None:
            returns = np.zeros(2)
        else:
            returns = returns + rewards
            if bool(state.done) or bool(state.timed_out):
                games += 1
                hacks += int(bool(state.hacked))
        frames.append(
            render_frame(
                env,
                state,
                params,
                view=view,
                last_action=last,
                hack_probability=hacks / games if games else 0.0,
                returns=(float(returns[0]), float(returns[1])),
                title=title,
                attack_from=attack_from if last is not None else None,
                scenario=scenario,
            )
        )
    return frames


def episode_gif(
    env_or_id,
    attacker_policy=None,
    defender_policy=None,
    path="episode.gif",
    *,
    seed: int = 0,
    instance_seed: int = 0,
    max_steps: int | None = None,
    view: str = "full",
    episodes: int = 1,
    fps: float = 4.0,
    scenario: Any = None,
) -> str:
    """Write a GIF of `episodes` games of an id (or an `(env, params)` pair) played by two policies.

    A policy is a bot name, `"random"`, a callable `(key, obs, state) -> action id` receiving its own
    side's observation, or `None` (the id's bot on the bot side, `"random"` on the learner's side;
    random bots on two-agent ids). Any pair plays on any id: the single-agent ids' own bot is replaced
    by the policy given for its side. `seed` drives the games, `instance_seed` the instance layout
    (as `idsjax.make`). `max_steps` caps the joint steps per episode (default: the full episode,
    up to the step-limit call). A scenario game is an `(env, params)` pair of `idsjax.make_scenario`;
    `scenario` (its `Scenario`) names the nodes. A generated family's is `idsjax.make_generated`'s:
    each episode on the network its reset drew (frames of different sizes are centred). Returns the path.
    """
    frames = episode_frames(
        env_or_id,
        attacker_policy,
        defender_policy,
        seed=seed,
        instance_seed=instance_seed,
        max_steps=max_steps,
        view=view,
        episodes=episodes,
        scenario=scenario,
    )
    return write_gif(frames, path, fps=fps)


# -- the command line ------------------------------------------------------------------------------
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


__all__ = [
    "VIEWS",
    "episode_frames",
    "episode_gif",
    "frame_size",
    "main",
    "play_episodes",
    "render_frame",
    "save_frame",
    "write_gif",
]


if __name__ == "__main__":
    raise SystemExit(main())
