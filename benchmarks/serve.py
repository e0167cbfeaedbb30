"""The game server under load: N concurrent two-agent games over loopback WebSockets.

    python -m benchmarks.serve                      # N = 1, 16, 64, 256; 8 s each
    python -m benchmarks.serve --games 64 --seconds 5

Starts `python -m idsjax.serve` (every batch size compiled first), then plays N duels at once from one
asyncio client process (2N WebSocket connections, each agent sending its next action as soon as it has
its answer) and reports aggregate agent-steps per second and the p50/p99 latency of one step (send to
answer). Server and clients share this machine's cores, so the figures are a floor. Writes
`benchmarks/results/serve/serve.csv` and `serve.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "serve"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _agent(url, game_id, role, stop_at, warm_until, latencies, counts, rng):
    from websockets.asyncio.client import connect

    async with connect(url, max_size=2**22) as ws:
        await ws.send(
            json.dumps(
                {
                    "op": "join",
                    "game_id": game_id,
                    "role": role,
                    "players": ["attacker", "defender"],
                    "seed": rng.randrange(2**31),
                }
            )
        )
        answer = json.loads(await ws.recv())
        if not answer["ok"] and answer.get("status") == 409:  # the creator sent players and a seed; join plainly
            await ws.send(json.dumps({"op": "join", "game_id": game_id, "role": role}))
            answer = json.loads(await ws.recv())
        assert answer["ok"], answer
        view = answer["view"]
        while (now := time.perf_counter()) < stop_at:
            await ws.send(json.dumps({"op": "step", "action": rng.choice(view["legal_actions"])}))
            answer = json.loads(await ws.recv())
            assert answer["ok"], answer
            view = answer["view"]
            if now >= warm_until:
                latencies.append(time.perf_counter() - now)
                counts[0] += 1
        await ws.send(json.dumps({"op": "leave"}))
        await ws.recv()


async def _run(port: int, games: int, seconds: float, warm: float, seed: int):
    url = f"ws://127.0.0.1:{port}/ws"
    start = time.perf_counter()
    warm_until, stop_at = start + warm, start + warm + seconds
    latencies: list[float] = []
    counts = [0]
    rng = random.Random(seed)
    tasks = []
    for g in range(games):
        for role in ("attacker", "defender"):
            tasks.append(
                _agent(
                    url, f"bench-{seed}-{g}", role, stop_at, warm_until, latencies, counts, random.Random(rng.random())
                )
            )
    await asyncio.gather(*tasks)
    lat = np.asarray(latencies) * 1000
    return {
        "games": games,
        "agent_steps": counts[0],
        "seconds": seconds,
        "agent_steps_per_s": counts[0] / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def _start_server(port: int, max_games: int, env_id: str) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "idsjax.serve",
            "--env",
            env_id,
            "--port",
            str(port),
            "--max-games",
            str(max_games),
            "--warm-up",
            "--join-rate",
            "1e6",
            "--client-rate",
            "1e7",
        ]
    )
    deadline = time.monotonic() + 600
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("benchmarks.serve: the server did not start") from None
            time.sleep(0.2)


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["games"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(n, [r["agent_steps_per_s"] for r in rows], "o-")
    a.set(xscale="log", xlabel="concurrent two-agent games", ylabel="agent-steps / s", title="throughput")
    b.plot(n, [r["p50_ms"] for r in rows], "o-", label="p50")
    b.plot(n, [r["p99_ms"] for r in rows], "s-", label="p99")
    b.set(xscale="log", yscale="log", xlabel="concurrent two-agent games", ylabel="ms", title="step latency")
    b.legend()
    fig.suptitle(f"idsjax.serve over loopback WebSockets ({os.cpu_count()} cores shared by server and clients)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per N")
    p.add_argument("--warm", type=float, default=2.0, help="unmeasured seconds first")
    p.add_argument("--env", default="idsgame-v3")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if any(g < 1 for g in args.games) or args.seconds <= 0:
        print("benchmarks.serve: --games must be positive and --seconds > 0", file=sys.stderr)
        return 2
    port = _free_port()
    proc = _start_server(port, max(args.games), args.env)
    rows = []
    try:
        for i, games in enumerate(args.games):
            row = asyncio.run(_run(port, games, args.seconds, args.warm, seed=i))
            rows.append(row)
            print(
                f"{games:>4} games: {row['agent_steps_per_s']:>8.0f} agent-steps/s, "
                f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms",
                flush=True,
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "serve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "serve.png")
    print(f"wrote {out / 'serve.csv'} and {out / 'serve.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
