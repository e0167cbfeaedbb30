"""The best hack probability any attacker can reach against defend-minimal, computed exactly.

    python -m baselines.ceiling                                   # idsgame-minimal_defense-v7, env seed 0
    python -m baselines.ceiling --env idsgame-minimal_defense-v2 --horizon 4 5 6
    python -m baselines.ceiling --scenario my_network.yaml --horizon 3 4 5

Defend-minimal's choice depends only on the defense and detection values, which only it changes, so
its raise sequence is a random process that no attack can influence; in a game with a fixed layout
and start and no reconnaissance or local view the attacker learns about it only from the outcome of
its own attacks. The best attacker is then the solution of a finite decision tree over those
outcomes: `baselines.exploitability.real_info` searches it for any such frozen defender, and this
command is that search with defend-minimal frozen (its exact distribution, `idsjax.bot_distributions`,
pinned to the reference by the parity tests), no history pruned. Each row bounds the optimum from
both sides: `lower`, the best probability of hacking within `horizon` steps; `upper`, that plus the
most every game still running could win afterwards. `exact` says they meet; the search stops at the
game's last live step, where they always do.
"""

from __future__ import annotations

import argparse
import json
import sys


def _row(env, params, horizon: int) -> dict:
    """`real_info.search` against defend-minimal, under this command's keys."""
    from baselines.exploitability.frozen import frozen_policy
    from baselines.exploitability.real_info import search

    frozen = frozen_policy("bot:defend_minimal", "defender", env, params)
    # No pruning: defend-minimal branches only on ties, and the ceiling is reported without a pruned mass.
    row = search(env, params, frozen, horizon, prune=0.0)
    return {
        "horizon": row["horizon"],
        "defender_sequences": row["defender_histories"],
        "lower": row["lower"],
        "upper": row["upper"],
        "exact": row["exact"],
        "seconds": row["seconds"],
    }


def solve(env_id: str, env_seed: int, horizon: int) -> dict:
    """The bounds on `env_id` (an `idsgame-minimal_defense-vN` id) with its layout drawn from `env_seed`;
    ValueError (one sentence) where the search does not apply."""
    import idsjax
    from idsjax.versions import Mode

    env, params = idsjax.make(env_id, seed=env_seed)
    if env.mode is not Mode.MINIMAL_DEFENSE:
        raise ValueError(f"{env_id}: the ceiling is computed against defend-minimal (idsgame-minimal_defense-vN)")
    return {"env": env_id, "env_seed": env_seed, **_row(env, params, horizon)}


def solve_scenario(path: str, env_seed: int, horizon: int) -> dict:
    """The bounds on the scenario file `path` played against defend-minimal (mode minimal_defense)."""
    import idsjax

    env, params = idsjax.make_scenario(path, mode="minimal_defense", seed=env_seed)
    return {"scenario": path, "env_seed": env_seed, **_row(env, params, horizon)}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m baselines.ceiling", description=__doc__.splitlines()[0])
    p.add_argument("--env", default=None, help="a registered minimal_defense id (default idsgame-minimal_defense-v7)")
    p.add_argument("--scenario", default=None, metavar="FILE", help="a scenario file, played in mode minimal_defense")
    p.add_argument("--env-seed", type=int, default=0)
    p.add_argument(
        "--horizon",
        type=int,
        nargs="+",
        default=[4, 5],
        help="steps searched; the bounds tighten as it grows, and the search time with it "
        "(v7: 1 s at 4, 10 s at 5, 2 min at 7)",
    )
    args = p.parse_args(argv)
    if args.env is not None and args.scenario is not None:
        p.error("give --env or --scenario, not both")
    if args.scenario is None:
        import idsjax

        args.env = args.env or "idsgame-minimal_defense-v7"
        if args.env not in idsjax.registered_envs():
            p.error(f"unknown id {args.env!r}")
    if any(h <= 0 for h in args.horizon):
        p.error("--horizon must be positive")
    if args.env_seed < 0:
        p.error("--env-seed must be >= 0")
    rows = []
    for h in args.horizon:
        try:
            row = (
                solve(args.env, args.env_seed, h)
                if args.scenario is None
                else solve_scenario(args.scenario, args.env_seed, h)
            )
        except (ValueError, OSError) as e:
            p.error(str(e).rstrip("."))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
