"""The game server under load: N concurrent two-agent games over loopback WebSockets, and a join flood.

    python -m benchmarks.serve                            # N = 1, 16, 64 (defaults) and 1..256 (lifted)
    python -m benchmarks.serve --games 64 --seconds 5 --limits defaults
    python -m benchmarks.serve --flood --seconds 10       # an honest pair's latency during a join flood

Starts `python -m idsjax.serve` and plays N duels at once from one asyncio client process written from
the protocol (docs/protocol.md: raw `websockets`, 2N connections, each agent sending its next action as
soon as it has its answer), measuring once every agent has joined; reports aggregate agent-steps per
second, the p50/p99 latency of one step (send to answer), and where the time goes: the server's and
the client's CPU seconds per second and the server's ticks (how many games each batched call steps).
Server and client share this machine's cores, so the figures are a floor.

`--limits defaults` runs the server as `python -m idsjax.serve --env ENV --max-games M` would: one client
address is then held to its share (a quarter of the games) and to 2,000 messages/s, so N stops at the
share. `--limits lifted` adds `--client-rate 1e7 --join-rate 1e6 --client-games M`. The server's own
limits (`GET /health`) are printed and written with every row.

`--flood`: a server at its defaults; an honest pair plays from 127.0.0.2 while another process joins
games from 127.0.0.1 as fast as it can (8 connections, fresh game ids, seats never filled) for
`--seconds`; reports the pair's p50/p99/max step latency during the flood and what the flood got.

Writes `benchmarks/results/serve/serve.csv`, `serve.png` and (with `--flood`) `flood.csv`.
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
LIFTED = ["--client-rate", "1e7", "--join-rate", "1e6"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _join(ws, game_id, role, seed) -> dict:
    request = {"op": "join", "game_id": game_id, "role": role, "players": ["attacker", "defender"], "seed": seed}
    await ws.send(json.dumps(request))
    answer = json.loads(await ws.recv())
    if not answer["ok"] and answer.get("status") == 409:  # the creator sent players and a seed; join plainly
        await ws.send(json.dumps({"op": "join", "game_id": game_id, "role": role}))
        answer = json.loads(await ws.recv())
    if not answer["ok"]:
        raise SystemExit(f"benchmarks.serve: a join was refused: {answer}")
    return answer["view"]


async def _agent(url, game_id, role, clock, latencies, counts, rng, local_addr=None):
    """One agent: join, wait for everyone (`clock["joined"]`), then step until `clock["stop_at"]`,
    timing the steps after `clock["measure_from"]`."""
    from websockets.asyncio.client import connect

    extra = {"local_addr": (local_addr, 0)} if local_addr else {}
    async with connect(url, max_size=2**22, **extra) as ws:
        view = await _join(ws, game_id, role, rng.randrange(2**31))
        clock["arrived"] += 1
        if clock["arrived"] == clock["agents"]:
            clock["joined"].set()
        await clock["joined"].wait()
        while (now := time.perf_counter()) < clock["stop_at"]:
            await ws.send(json.dumps({"op": "step", "action": rng.choice(view["legal_actions"])}))
            answer = json.loads(await ws.recv())
            if not answer["ok"] and answer.get("status") == 429:
                # At its defaults the server holds one address to its message rate: a client written
                # from the protocol waits and sends the step again (nothing was played).
                await asyncio.sleep(0.05)
                continue
            if not answer["ok"]:
                raise SystemExit(f"benchmarks.serve: a step was refused: {answer}")
            view = answer["view"]
            if now >= clock["measure_from"]:
                latencies.append((now, time.perf_counter() - now))
                counts[0] += 1
        await ws.send(json.dumps({"op": "leave"}))
        await ws.recv()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _snapshot(port: int, pid: int | None) -> dict:
    import httpx

    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(f"http://127.0.0.1:{port}/health")).json()
    return {
        "server_cpu": _cpu_seconds(pid) if pid else float("nan"),
        "client_cpu": time.process_time(),
        "ticks": health["ticks"],
        "steps": health["steps"],
    }


async def _duels(port: int, games: int, seconds: float, warm: float, seed: int, local_addr=None, pid=None):
    url = f"ws://127.0.0.1:{port}/ws"
    clock = {"agents": 2 * games, "arrived": 0, "joined": asyncio.Event(), "measure_from": 0.0, "stop_at": 0.0}
    latencies: list = []
    counts = [0]
    rng = random.Random(seed)
    tasks = [
        asyncio.ensure_future(
            _agent(url, f"bench-{seed}-{g}", role, clock, latencies, counts, random.Random(rng.random()), local_addr)
        )
        for g in range(games)
        for role in ("attacker", "defender")
    ]
    clock["measure_from"] = clock["stop_at"] = float("inf")
    joined = asyncio.ensure_future(clock["joined"].wait())
    await asyncio.wait([joined, *tasks], return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        if t.done() and t.exception():
            raise t.exception()
    start = time.perf_counter()
    clock["measure_from"], clock["stop_at"] = start + warm, start + warm + seconds
    await asyncio.sleep(warm)
    first = await _snapshot(port, pid)
    await asyncio.sleep(max(0.0, clock["stop_at"] - time.perf_counter()))
    last = await _snapshot(port, pid)
    await asyncio.gather(*tasks)
    # Where the time goes: the two processes' CPU over the measured window, and the batched ticks.
    ticks = last["ticks"] - first["ticks"]
    spent = {
        "server_cpu_s": last["server_cpu"] - first["server_cpu"],
        "client_cpu_s": last["client_cpu"] - first["client_cpu"],
        "ticks_per_s": ticks / seconds,
        "games_per_tick": (last["steps"] - first["steps"]) / ticks if ticks else float("nan"),
    }
    return counts[0], latencies, spent


def _summary(latencies) -> dict:
    lat = np.asarray([dt for _, dt in latencies]) * 1000
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "max_ms": float(lat.max()),
    }


def start_server(port: int, env_id: str, extra: list[str]) -> subprocess.Popen:
    import httpx

    cmd = [sys.executable, "-m", "idsjax.serve", "--env", env_id, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd)
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


def server_limits(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["limits"]


def _describe(limits: dict) -> str:
    return (
        f"max-games {limits['max_games']}; per client address: {limits['client_rate']:g} messages/s, "
        f"{limits['join_rate']:g} joins/s, {limits['client_games']} games, {limits['client_agents']} agents, "
        f"{limits['client_connections']} connections"
    )


# -- the join flood -------------------------------------------------------------------------------------
async def _flood(url: str, seconds: float, connections: int = 8) -> dict:
    """Join fresh games from this address as fast as the server answers, for `seconds`."""
    import httpx

    counts: dict = {}
    stop_at = time.monotonic() + seconds

    async def one(client):
        while time.monotonic() < stop_at:
            try:
                r = await client.post("/join", json={"role": "attacker", "players": ["attacker", "defender"]})
                key = str(r.status_code)
            except httpx.HTTPError as err:
                key = type(err).__name__
            counts[key] = counts.get(key, 0) + 1

    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(connections)))
    return counts


def _flood_worker(url: str, seconds: float, out: str) -> int:
    Path(out).write_text(json.dumps(asyncio.run(_flood(url, seconds))))
    return 0


async def _honest_pair_under_flood(port: int, warm: float, seconds: float, flood_out: Path):
    """The pair's step latencies (time, seconds), and the flood's window (start, end)."""
    url = f"ws://127.0.0.1:{port}/ws"
    clock = {"agents": 2, "arrived": 0, "joined": asyncio.Event(), "measure_from": 0.0, "stop_at": float("inf")}
    latencies: list = []
    rng = random.Random(0)
    tasks = [
        asyncio.ensure_future(
            _agent(url, "honest", role, clock, latencies, [0], random.Random(rng.random()), "127.0.0.2")
        )
        for role in ("attacker", "defender")
    ]
    await clock["joined"].wait()
    start = time.perf_counter()
    clock["stop_at"] = start + warm + seconds + warm
    await asyncio.sleep(warm)
    flood = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.serve",
        "--flood-worker",
        f"http://127.0.0.1:{port}",
        str(seconds),
        str(flood_out),
    )
    began = time.perf_counter()
    await flood.wait()
    ended = time.perf_counter()
    await asyncio.gather(*tasks)
    return latencies, (began, ended)


def measure_flood(port: int, seconds: float, warm: float = 1.0, out: Path = RESULTS) -> dict:
    """An honest pair's step latency while another address floods the server with joins."""
    out.mkdir(parents=True, exist_ok=True)
    flood_out = out / ".flood.json"
    latencies, (began, ended) = asyncio.run(_honest_pair_under_flood(port, warm, seconds, flood_out))
    during = [(t, dt) for t, dt in latencies if began <= t <= ended]
    before = [(t, dt) for t, dt in latencies if t < began]
    flood = json.loads(flood_out.read_text())
    flood_out.unlink()
    row = {"honest_steps": len(during), **_summary(during), "flood_seconds": ended - began}
    row["before_p99_ms"] = _summary(before)["p99_ms"] if before else float("nan")
    row["flood_joins_ok"] = flood.get("200", 0)
    row["flood_refused"] = sum(v for k, v in flood.items() if k != "200")
    row["flood_answers"] = json.dumps(flood, sort_keys=True)
    return row


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for limits, marker in (("lifted", "o"), ("defaults", "s")):
        sel = [r for r in rows if r["limits"] == limits]
        if not sel:
            continue
        n = [r["games"] for r in sel]
        a.plot(n, [r["agent_steps_per_s"] for r in sel], marker + "-", label=f"limits {limits}")
        b.plot(n, [r["p99_ms"] for r in sel], marker + "-", label=f"p99, limits {limits}")
        b.plot(n, [r["p50_ms"] for r in sel], marker + ":", label=f"p50, limits {limits}")
    a.set(xscale="log", xlabel="concurrent two-agent games", ylabel="agent-steps / s", title="throughput")
    b.set(xscale="log", yscale="log", xlabel="concurrent two-agent games", ylabel="ms", title="step latency")
    a.legend()
    b.legend(fontsize=7)
    fig.suptitle(f"idsjax.serve over loopback WebSockets ({os.cpu_count()} cores shared by server and client)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--flood-worker"]:  # the flooding process of --flood
        return _flood_worker(argv[1], float(argv[2]), argv[3])
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.splitlines()[0])
    p.add_argument("--games", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds per N (the flood's length)")
    p.add_argument("--warm", type=float, default=2.0, help="unmeasured seconds first, once every agent joined")
    p.add_argument("--limits", nargs="+", choices=("defaults", "lifted"), default=["defaults", "lifted"])
    p.add_argument("--flood", action="store_true", help="measure an honest pair during a join flood instead")
    p.add_argument("--env", default="idsgame-v3")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if any(g < 1 for g in args.games) or args.seconds <= 0 or args.warm < 0:
        print("benchmarks.serve: --games must be positive, --seconds > 0 and --warm >= 0", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.flood:
        port = _free_port()
        proc = start_server(port, args.env, [])
        try:
            limits = server_limits(port)
            print(f"server at its defaults: {_describe(limits)}", flush=True)
            row = measure_flood(port, args.seconds, out=out)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        row.update({f"limit_{k}": v for k, v in limits.items()})
        print(
            f"honest pair during a {row['flood_seconds']:.1f} s join flood from another address: "
            f"{row['honest_steps']} steps, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
            f"max {row['max_ms']:.1f} ms (p99 before the flood {row['before_p99_ms']:.1f} ms); "
            f"the flood: {row['flood_joins_ok']} joins accepted, {row['flood_refused']} refused {row['flood_answers']}"
        )
        with open(out / "flood.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
        print(f"wrote {out / 'flood.csv'}")
        return 0
    rows = []
    max_games = max(args.games)
    for mode in args.limits:
        port = _free_port()
        extra = ["--max-games", str(max_games)]
        if mode == "lifted":
            extra += [*LIFTED, "--client-games", str(max_games)]
        proc = start_server(port, args.env, extra)
        try:
            limits = server_limits(port)
            print(f"limits {mode} ({' '.join(extra)}): {_describe(limits)}", flush=True)
            for i, games in enumerate(args.games):
                if 2 * games > limits["client_agents"]:
                    print(f"{games:>4} games: skipped (over one address's share: {limits['client_agents']} agents)")
                    continue
                count, latencies, spent = asyncio.run(
                    _duels(port, games, args.seconds, args.warm, seed=i, pid=proc.pid)
                )
                row = {
                    "limits": mode,
                    "games": games,
                    "agent_steps": count,
                    "seconds": args.seconds,
                    "agent_steps_per_s": count / args.seconds,
                    **_summary(latencies),
                    **spent,
                    **{f"limit_{k}": v for k, v in limits.items()},
                }
                rows.append(row)
                print(
                    f"{games:>4} games: {row['agent_steps_per_s']:>8.0f} agent-steps/s, "
                    f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms; CPU s per s: server "
                    f"{row['server_cpu_s'] / args.seconds:.2f}, client {row['client_cpu_s'] / args.seconds:.2f}; "
                    f"{row['ticks_per_s']:.0f} ticks/s of {row['games_per_tick']:.1f} games",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    with open(out / "serve.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "serve.png")
    print(f"wrote {out / 'serve.csv'} and {out / 'serve.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
