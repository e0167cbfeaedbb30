"""A trained checkpoint over the wire: the policy runs here, on the observations the server sends.

    python examples/agents/checkpoint_agent.py --role attacker --checkpoint runs/ppo/... --env idsgame-v3

`--checkpoint` is resolved through `idsjax.policies.resolve_policy("checkpoint:PATH", ...)` (the research
kit registers the loader: `make install`). `--env` must be the server's id.
"""

from __future__ import annotations

import sys

import jax
import numpy as np
from random_agent import parse as base_parse

import idsjax
from idsjax.policies import resolve_policy


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    path = env_id = None
    for flag in ("--checkpoint", "--env"):
        if flag in argv:
            i = argv.index(flag)
            value = argv[i + 1] if i + 1 < len(argv) else None
            del argv[i : i + 2]
            path, env_id = (value, env_id) if flag == "--checkpoint" else (path, value)
    if not path:
        print("checkpoint_agent: --checkpoint PATH is required", file=sys.stderr)
        return 2
    args = base_parse(argv, __doc__)
    try:
        env, params = idsjax.make(env_id or "idsgame-v3")
        policy = jax.jit(resolve_policy(f"checkpoint:{path}", args.role, env, params))
    except Exception as err:  # noqa: BLE001 — a missing kit, a wrong side or id: one sentence
        print(f"checkpoint_agent: {err}", file=sys.stderr)
        return 2
    key = [jax.random.PRNGKey(args.agent_seed)]

    def choose(view) -> int:
        key[0], k = jax.random.split(key[0])
        # The server sends the view, not the state: the legal ids it lists are the policy's mask.
        legal = np.zeros(view["num_actions"], bool)
        legal[view["legal_actions"]] = True
        return int(policy(k, np.asarray(view["observation"], np.int8), None, legal))

    from random_agent import run

    return run(args, choose)


if __name__ == "__main__":
    sys.exit(main())
