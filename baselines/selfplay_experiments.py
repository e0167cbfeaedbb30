"""Moved: the quick table of self-play's league modes is `python -m baselines.league_comparison --quick`
(issue 23: one pipeline for the league's runs, with the unbiased exploitability and the paired
statistics). This alias says so and runs that command with the options given (`--vmap-seeds` and
`--br-timesteps` are gone: the league always trains a mode's seeds together, best responses as long
as the policies they attack)."""

from __future__ import annotations

import shlex
import sys

from baselines import league_comparison


def parse(argv):
    """The options `main` runs with: `league_comparison`'s, in quick mode."""
    return league_comparison.parse(["--quick", *argv])[1]


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    print(
        "baselines.selfplay_experiments has moved: running python -m baselines.league_comparison --quick "
        + " ".join(shlex.quote(a) for a in argv),
        file=sys.stderr,
        flush=True,
    )
    return league_comparison.main(["--quick", *argv])


if __name__ == "__main__":
    main()
