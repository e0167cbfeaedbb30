"""python -m idsjax.serve: serve batched idsjax games to remote agents (HTTP, WebSocket, a browser page).

    python -m idsjax.serve --env idsgame-v3 --port 8000 --record runs/games
    python -m idsjax.serve --env idsgame-v3 --opponent bot:defend_minimal --opponent attacker=random
    python -m idsjax.serve --scenario scenarios/examples/office_dmz.yaml --record runs/office
    python -m idsjax.serve --generator small --generator-arg max_layers=3 --record runs/small

Roles no remote agent plays are played by `--opponent` policies: a bot name goes to its side
(`bot:attack_maximal`, `bot:random_attack` attack; `bot:defend_minimal`, `bot:random_defense` defend);
`SIDE=SPEC` names the side (`defender=checkpoint:runs/ppo/...`, `attacker=random`). Default: the id's
bots (random bots on two-agent ids).

The game: `--env ID`, `--scenario FILE` or `--generator NAME` (a fresh network at every episode of every
game), with `--mode` and `--generator-arg K=V` as `idsjax.play` and `idsjax.render` take them.
"""

from __future__ import annotations

import argparse
import gc
import sys

from idsjax.game_arguments import add_game_arguments
from idsjax.policies import ATTACK_BOTS, ATTACKER, DEFENDER, DEFENSE_BOTS, SIDES


def _opponents(specs: list[str]) -> dict:
    out = {}
    for spec in specs:
        side, sep, policy = spec.partition("=")
        if not sep:
            policy = spec
            name = spec[4:] if spec.startswith("bot:") else spec
            if name in ATTACK_BOTS:
                side = ATTACKER
            elif name in DEFENSE_BOTS:
                side = DEFENDER
            else:
                raise ValueError(f"--opponent {spec!r}: say which side it plays, e.g. defender={spec}")
        if side not in SIDES:
            raise ValueError(f"--opponent {spec!r}: the side must be 'attacker' or 'defender'")
        out[side] = policy
    return out


def _parse(argv):
    p = argparse.ArgumentParser(prog="python -m idsjax.serve", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    add_game_arguments(p, env_default="idsgame-v3")
    p.add_argument(
        "--instance-seed",
        type=int,
        default=0,
        help="the instance's construction seed (an id's or a scenario's; a generated family draws at every reset)",
    )
    p.add_argument("--max-games", type=int, default=256, help="games at once (the batch doubles up to it)")
    p.add_argument("--max-agents", type=int, default=None, help="agents at once (default 2 x max-games)")
    p.add_argument(
        "--opponent",
        action="append",
        default=[],
        metavar="[SIDE=]SPEC",
        help="who plays a role no agent plays: bot:NAME, random, checkpoint:PATH (repeatable)",
    )
    p.add_argument("--idle-timeout", type=float, default=60.0, help="seconds an agent may stay silent")
    p.add_argument(
        "--on-idle",
        choices=("bot", "end"),
        default="bot",
        help="when an agent idles: a bot takes its role, or the game ends",
    )
    p.add_argument("--record", default=None, metavar="DIR", help="write every game's trajectories here")
    p.add_argument("--window-ms", type=float, default=2.0, help="gathering window before a tick")
    p.add_argument("--join-rate", type=float, default=50.0, help="joins per second per client address")
    p.add_argument("--client-rate", type=float, default=2000.0, help="messages per second per client address")
    p.add_argument(
        "--client-games", type=int, default=None, help="games one client address may hold (default max-games / 4)"
    )
    p.add_argument(
        "--client-agents", type=int, default=None, help="agents one client address may hold (default 2 x client-games)"
    )
    p.add_argument(
        "--client-connections",
        type=int,
        default=None,
        help="connections one client address may hold open, WebSockets included (default 2 x client-agents)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="seconds a request has to arrive whole (headers and body) before it is answered 408 and closed",
    )
    p.add_argument(
        "--warm-up",
        action="store_true",
        help="compile every batch size before serving (default: the first, then the others on a worker "
        "thread while serving; a join that needs a size not compiled yet waits for it, no game does)",
    )
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    try:
        import uvicorn

        from idsjax.serve.app import create_app
        from idsjax.serve.coordinator import Coordinator
        from idsjax.serve.transport import GameServer, protocols
    except ImportError as err:
        print(f"the server needs its extra: pip install 'idsjax[serve]' ({err})", file=sys.stderr)
        return 2
    try:
        if not 1 <= args.port <= 65535:
            raise ValueError(f"--port must be in 1..65535, got {args.port}")
        if args.max_games < 1:
            raise ValueError(f"--max-games must be positive, got {args.max_games}")
        if args.idle_timeout <= 0 or args.window_ms < 0:
            raise ValueError("--idle-timeout must be positive and --window-ms non-negative")
        if args.request_timeout <= 0 or (args.client_connections is not None and args.client_connections < 1):
            raise ValueError("--request-timeout and --client-connections must be positive")
        if args.join_rate <= 0 or args.client_rate <= 0:
            raise ValueError("--join-rate and --client-rate must be positive")
        coordinator = Coordinator(
            args.env,
            scenario=args.scenario,
            generator=args.generator,
            generator_args=args.generator_arg,
            mode=args.mode,
            instance_seed=args.instance_seed,
            max_games=args.max_games,
            max_agents=args.max_agents,
            opponents=_opponents(args.opponent),
            idle_timeout=args.idle_timeout,
            on_idle=args.on_idle,
            record_dir=args.record,
            window=args.window_ms / 1000,
            client_games=args.client_games,
            client_agents=args.client_agents,
            compile_ahead=not args.warm_up,
        )
    except Exception as err:  # noqa: BLE001 — bad options of any kind: one sentence, exit code 2
        print(f"python -m idsjax.serve: {err}", file=sys.stderr)
        return 2
    if args.warm_up:
        coordinator.engine.warm_up()
    else:  # the first batch size now; the others on a worker thread while the server already serves
        coordinator.engine.prepare(coordinator.engine.capacity)
    app = create_app(
        coordinator, join_rate=args.join_rate, client_rate=args.client_rate, client_burst=2 * args.client_rate
    )
    print(f"idsjax.serve: {coordinator.env_id} on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    # The start-up heap (JAX, the compiled programs, FastAPI) is a great many long-lived objects that
    # every full garbage collection walks while all games wait: frozen, they are left out of the
    # collections (what games allocate is still collected). At 64 games this took the p99 step latency
    # from 162 ms to 16 ms (python -m benchmarks.serve).
    gc.collect()
    gc.freeze()
    # SIGTERM/SIGINT: GameServer answers every pending request and writes the records, then stops.
    client_connections = args.client_connections or 2 * coordinator.client_agents
    try:
        http, ws = protocols(args.request_timeout, client_connections)
    except ImportError as err:  # httptools: part of uvicorn[standard], which the extra installs
        print(f"the server needs its extra: pip install 'idsjax[serve]' ({err})", file=sys.stderr)
        return 2
    app.state.limits.update(client_connections=client_connections, request_timeout=args.request_timeout)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        http=http,
        ws=ws,
        ws_max_size=16_384,
        timeout_graceful_shutdown=5,
    )
    GameServer(config, on_stop=app.state.stop).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
