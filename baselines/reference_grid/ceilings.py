"""`python -m baselines.reference_grid.ceilings`: cache `baselines.ceiling`'s exact optima for the grid.

    python -m baselines.reference_grid.ceilings                   # the default versions below
    python -m baselines.reference_grid.ceilings --versions 0 2 3 7 --horizon 5

For every defend-minimal id of the grid that the exact search covers (layouts fixed at construction,
no full observation, no reconnaissance), the best hack probability any attacker can reach, for env
seed 0 as the grid's runs use. The search is slow for large versions, so the results are committed in
`baselines/results/reference_grid/ceilings.json` and the report reads them from there. The command
writes `<output-dir>/results/reference_grid/ceilings.json` (default output dir runs/reference_grid_report,
where the report looks first); `--publish` writes the committed file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from baselines.reference_grid.report import DEFAULT_OUTPUT, add_destination_arguments, results_dir

# v0-v3 and v7-v9: small fixed layouts (v4-v6 have 22 nodes, beyond the search's reach; v10 and up are
# fully observed, randomised at reset or have reconnaissance, outside what it covers).
DEFAULT_VERSIONS = (0, 1, 2, 3, 7, 8, 9)


def main(argv=None) -> dict:
    from baselines import ceiling

    p = argparse.ArgumentParser(prog="python -m baselines.reference_grid.ceilings", description=__doc__.splitlines()[0])
    p.add_argument("--versions", type=int, nargs="+", default=list(DEFAULT_VERSIONS))
    p.add_argument(
        "--horizon",
        type=int,
        nargs="+",
        default=[4, 5],
        help="search horizons, increasing; the last one's bounds are kept",
    )
    add_destination_arguments(p, DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    results = []
    for v in args.versions:
        env_id = f"idsgame-minimal_defense-v{v}"
        best = None
        for h in args.horizon:
            try:
                best = ceiling.solve(env_id, 0, h)
            except ValueError as e:
                print(f"{env_id}: {e}", file=sys.stderr)
                best = None
                break
            print(json.dumps(best), flush=True)
            if best["exact"]:
                break
        if best is not None:
            results.append(best)
    out = {
        "command": "python -m baselines.reference_grid.ceilings "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": results,
    }
    path = os.path.join(results_dir(args), "ceilings.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(path, file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
