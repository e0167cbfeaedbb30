"""The scripted bots' strategies over the wire, from the agent's own observation only.

Attacker (attack_maximal's idea): among the legal attacks, the one whose attack value is highest on the
visible node. Defender (defend_minimal's idea): raise the weakest defense value of any defendable node.

    python examples/agents/scripted_agent.py --role defender --game g1 --players attacker defender
"""

from __future__ import annotations

import sys

from random_agent import parse, run


def attacker(view) -> int:
    obs = view["observation"]
    types = len(obs[0]) - 1  # attack values then the position flag (no reconnaissance versions)
    width = view["num_actions"] // len(obs)

    def value(i):
        node, kind = divmod(i, width)
        return obs[node][kind] if kind < types else -1

    return max(view["legal_actions"], key=lambda i: (value(i), -i))


def defender(view) -> int:
    obs = view["observation"]  # per node: defense values, then detection
    width = len(obs[0])

    def value(i):
        node, kind = divmod(i, width)
        return obs[node][kind]

    return min(view["legal_actions"], key=lambda i: (value(i), i))


def main(argv=None) -> int:
    args = parse(argv, __doc__)
    return run(args, attacker if args.role == "attacker" else defender)


if __name__ == "__main__":
    sys.exit(main())
