"""`python -m idsjax.scenario check FILE...` validates scenario files (exit 2 on the first bad one, with
one sentence naming the file and field); `python -m idsjax.scenario builtin DIR` writes the 22 built-in
versions as scenario files (scenarios/builtin/ is its output)."""

from __future__ import annotations

import sys

from idsjax.scenario.builtin import write_all
from idsjax.scenario.schema import ScenarioError, load_scenario

USAGE = "usage: python -m idsjax.scenario check FILE... | python -m idsjax.scenario builtin DIRECTORY"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) >= 2 and argv[0] == "check":
        for path in argv[1:]:
            try:
                scenario = load_scenario(path)
            except ScenarioError as exc:
                print(exc, file=sys.stderr)
                return 2
            print(f"{path}: ok ({len(scenario.nodes)} nodes, {scenario.attack_types} attack types)")
        return 0
    if len(argv) == 2 and argv[0] == "builtin":
        for path in write_all(argv[1]):
            print(path)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
