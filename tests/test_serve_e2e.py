"""The game server over real sockets: `python -m idsjax.serve` started and stopped by these tests on
127.0.0.1 (a free port). Example clients play full episodes that must equal the in-process replay; a
fuzzer sends >= 10,000 hostile messages while honest games go on (and still replay exactly); thousands
of games are created and abandoned; SIGTERM writes every recorded step."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from test_serve import assert_matches  # noqa: E402
from test_serve_shutdown import _pending_http_step, _pending_ws_step  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

import idsjax  # noqa: E402
from idsjax.client import ServerError, connect  # noqa: E402
from idsjax.serve.replay import replay  # noqa: E402
from idsjax.trajectories import load_trajectories  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ENV = "idsgame-v3"
MAX_GAMES = 64
IDLE = 3.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    record = tmp_path_factory.mktemp("records")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "idsjax.serve",
        "--env",
        ENV,
        "--port",
        str(port),
        "--max-games",
        str(MAX_GAMES),
        "--record",
        str(record),
        "--idle-timeout",
        str(IDLE),
        "--join-rate",
        "100000",
        "--client-rate",
        "100000",
        "--client-games",
        str(MAX_GAMES),  # every test client is 127.0.0.1: the whole server is its share
        "--opponent",
        "bot:defend_minimal",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start: {proc.stdout.read()}")
            time.sleep(0.1)
    yield {"url": url, "proc": proc, "record": record, "port": port}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _views(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_two_example_clients_play_full_episodes_that_match_the_environment(server, tmp_path):
    """The README's three terminals: the server and two example clients (one over HTTP, one over WS),
    here as two threads running the examples' `main` (a process each would only add two JAX imports)."""
    sys.path.insert(0, str(REPO / "examples" / "agents"))
    try:
        import random_agent
        import scripted_agent
    finally:
        sys.path.pop(0)
    common = [
        "--url",
        server["url"],
        "--game",
        "e2e",
        "--players",
        "attacker",
        "defender",
        "--seed",
        "77",
        "--episodes",
        "3",
    ]
    codes = {}

    def run(role, module, transport):
        codes[role] = module.main(
            ["--role", role, "--transport", transport, "--log", str(tmp_path / f"{role}.jsonl"), *common]
        )

    attacker = threading.Thread(target=run, args=("attacker", random_agent, "ws"))
    attacker.start()
    time.sleep(0.3)  # the attacker creates the game; the defender joins it
    run("defender", scripted_agent, "http")
    attacker.join(timeout=120)
    assert codes == {"attacker": 0, "defender": 0}
    views = {role: _views(tmp_path / f"{role}.jsonl")[1:] for role in codes}
    actions = [{"attacker": a["action"], "defender": d["action"]} for a, d in zip(views["attacker"], views["defender"])]
    env, params = idsjax.make(ENV)
    records = replay(env, params, 77, actions)
    for role in codes:
        assert_matches(views[role], records, role)
    assert sum(r["done"] for r in records) == 3


def _honest_game(url, game_id, seed, steps, results, transport_a="ws", joined=None, stop=None):
    """A duel of two seeded random agents; the views of both go into `results[game_id]`."""
    views = {"attacker": [], "defender": []}

    def play(role, transport):
        rng = random.Random(f"{game_id}-{role}")
        kwargs = dict(game_id=game_id, players=["attacker", "defender"], seed=seed, transport=transport)
        with connect(url, role=role, **kwargs) as agent:
            if role == "defender" and joined is not None:
                joined.release()
            view = agent.view
            # At least `steps`, then until the fuzzer stops. The sides may stop one step apart (the
            # last step of the one that stays is then played by the bot): the test compares the
            # steps both played.
            while len(views[role]) < steps or (stop is not None and not stop.is_set()):
                view = agent.step(rng.choice(view["legal_actions"]))
                views[role].append(view)

    att = threading.Thread(target=play, args=("attacker", transport_a))
    att.start()
    time.sleep(0.2)
    play("defender", "http" if transport_a == "ws" else "ws")
    att.join()
    results[game_id] = views


def _bot_game(url, seed, steps, results, joined=None):
    rng = random.Random(seed)
    with connect(url, role="attacker", game_id="honest-bot", seed=seed, transport="ws") as agent:
        joined.release()
        view, views = agent.view, []
        for _ in range(steps):
            view = agent.step(rng.choice(view["legal_actions"]))
            views.append(view)
    results["honest-bot"] = {"attacker": views}


def _hostile(url: str, port: int, count: int, stop_at: float) -> int:
    """Send `count` malformed or hostile messages (or stop at `stop_at`); returns how many were sent."""
    rng = random.Random(0)
    ws_url = f"ws://127.0.0.1:{port}/ws"
    frames = [
        "{",
        "null",
        "[]",
        "42",
        '"step"',
        "{}",
        '{"op": 1}',
        '{"op": "fly"}',
        '{"op": "step"}',
        '{"op": "step", "action": "1"}',
        '{"op": "step", "action": 1.5}',
        '{"op": "step", "action": true}',
        '{"op": "step", "action": 1e308}',
        '{"op": "step", "action": ' + "9" * 4000 + "}",
        '{"op": "step", "action": -99999999999999999999}',
        '{"op": "auth", "token": "forged-token"}',
        '{"op": "auth", "token": ""}',
        '{"op": "auth", "token": "' + "A" * 500 + '"}',
        '{"op": "join", "role": "attacker", "game_id": "honest-0"}',
        '{"op": "join", "role": "defender", "game_id": "honest-1"}',
        '{"op": "join", "role": "defender", "game_id": "honest-bot"}',
        '{"op": "join", "role": "thief", "game_id": "x"}',
        '{"op": "join", "role": "attacker", "game_id": "../etc"}',
        '{"op": "join", "role": "attacker", "seed": -1}',
        '{"op": "join", "role": "attacker", "players": "all"}',
        '{"op": "reset"}',
        '{"op": "leave"}',
        '{"op": "state", "text": "yes"}',
        "[" * 5000,
        "\x00\xff",
        '{"op": "step", "action": 1, "extra": {"a": [1, 2, 3]}}',
    ]
    sent = 0
    ws = ws_connect(ws_url, max_size=2**22)
    while sent < count and time.monotonic() < stop_at:
        kind = rng.random()
        try:
            if kind < 0.04:  # oversized frame: the server closes this connection
                ws.send("x" * 20_000)
                sent += 1
                with pytest.raises(Exception):
                    ws.recv(timeout=5)
                ws = ws_connect(ws_url, max_size=2**22)
            elif kind < 0.08:  # abrupt disconnect mid-step, in a game of its own that waits for a defender
                mid = ws_connect(ws_url)
                mid.send(json.dumps({"op": "join", "role": "attacker", "players": ["attacker", "defender"]}))
                answer = json.loads(mid.recv(timeout=10))
                mid.send(json.dumps({"op": "step", "action": answer["view"]["legal_actions"][0]}))
                mid.socket.close()  # no close frame: the TCP connection just ends
                sent += 3
            elif kind < 0.12:  # a binary frame
                ws.send(b"\x00\x01binary")
                assert json.loads(ws.recv(timeout=10))["ok"] is False
                sent += 1
            elif kind < 0.30:  # HTTP: bad bodies, wrong tokens, oversized bodies, no such route or method
                choice = rng.randrange(9)
                if choice == 0:
                    r = httpx.post(url + "/step", content=b"{bad json", headers={"Authorization": "Bearer x"})
                elif choice == 1:
                    r = httpx.post(url + "/step", json={"action": 1}, headers={"Authorization": "Bearer " + "z" * 43})
                elif choice == 2:
                    r = httpx.post(url + "/join", content=b"{" * 100_000)
                elif choice == 3:
                    r = httpx.post(url + "/join", json={"role": "attacker", "game_id": "honest-0", "seed": 1})
                elif choice == 4:
                    r = httpx.get(url + "/state", headers={"Authorization": "Basic abc"})
                elif choice == 5:
                    r = httpx.get(url + "/no/such/route")
                elif choice == 6:
                    r = httpx.get(url + "/step")  # a POST route
                elif choice == 7:  # chunked (no length declared), over the limit
                    r = httpx.post(url + "/join", content=iter([b"{" * 8192] * 64))
                else:
                    r = httpx.post(url + "/join", content=b"role=attacker", headers={"content-type": "text/plain"})
                assert 400 <= r.status_code < 500, r.text
                assert r.headers["content-type"] == "application/json" and set(r.json()) == {"error"}, r.text
                assert isinstance(r.json()["error"], str) and r.json()["error"], r.text
                if choice == 7:
                    assert r.status_code == 413, r.text
                sent += 1
            else:  # 20 frames at once, then their 20 answers (the server answers a connection in order)
                batch = [rng.choice(frames) for _ in range(20)]
                for frame in batch:
                    ws.send(frame)
                for _ in batch:
                    answer = json.loads(ws.recv(timeout=10))
                    if answer["ok"] is False:  # the WebSocket's one error shape
                        assert set(answer) == {"ok", "op", "status", "error"} and answer["error"], answer
                    # Refused, unless it was a well-formed join of a free game id (an honest game that has
                    # ended frees its id) or an op of the agent such a join gave this connection.
                    assert answer["ok"] is False or answer["op"] in ("join", "reset", "state", "leave"), answer
                sent += len(batch)
        except (OSError, TimeoutError) as err:
            raise AssertionError(f"the server stopped answering after {sent} hostile messages: {err}") from err
    ws.close()
    return sent


def test_fuzz_10000_hostile_messages_while_honest_games_replay_exactly(server):
    url = server["url"]
    results: dict = {}
    steps = 60
    joined, stop = threading.Semaphore(0), threading.Event()
    honest = [
        threading.Thread(
            target=_honest_game,
            args=(url, f"honest-{i}", 100 + i, steps, results, "ws" if i % 2 == 0 else "http", joined, stop),
        )
        for i in range(2)
    ]
    honest.append(threading.Thread(target=_bot_game, args=(url, 200, steps, results, joined)))
    for t in honest:
        t.start()
    for _ in honest:  # every honest seat is taken before the hostile messages name those games
        assert joined.acquire(timeout=60)
    try:
        sent = _hostile(url, server["port"], 10_000, time.monotonic() + 60)
    finally:
        stop.set()
    for t in honest:
        t.join(timeout=120)
    assert sent >= 10_000
    assert httpx.get(url + "/health").status_code == 200
    env, params = idsjax.make(ENV)
    for i in range(2):
        views = results[f"honest-{i}"]
        both = min(len(views["attacker"]), len(views["defender"]))
        assert both >= steps
        actions = [
            {"attacker": a["action"], "defender": d["action"]}
            for a, d in zip(views["attacker"][:both], views["defender"][:both])
        ]
        records = replay(env, params, 100 + i, actions)
        for role in ("attacker", "defender"):
            assert_matches(views[role][:both], records, role)
    views = results["honest-bot"]["attacker"]
    records = replay(env, params, 200, [{"attacker": v["action"]} for v in views], bots={"defender": "defend_minimal"})
    assert_matches(views, records, "attacker")


def _wait_until_reclaimed(url: str) -> dict:
    """The server's health once the idle rule has reclaimed every abandoned game (or time is up)."""
    deadline = time.monotonic() + 3 * IDLE + 5
    while (health := httpx.get(url + "/health").json())["games"] > 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    return health


def test_churn_abandoned_games_are_reclaimed(server):
    url, port, pid = server["url"], server["port"], server["proc"].pid
    ws_url = f"ws://127.0.0.1:{port}/ws"
    created = 0
    # The first round grows the slots to --max-games, compiling each doubling once: memory is measured
    # from its end, so that the bound is on churn alone whichever test ran on this server before.
    for round_ in range(3):  # (thousands more in-process: tests/test_serve.py)
        if round_ == 1:
            _wait_until_reclaimed(url)
            before = _rss_kib(pid)
        for _ in range(300):  # join a game and vanish without a word
            ws = ws_connect(ws_url)
            ws.send(json.dumps({"op": "join", "role": "defender"}))
            assert json.loads(ws.recv(timeout=10))["ok"]
            ws.socket.close()
            created += 1
        for _ in range(MAX_GAMES // 2):  # over HTTP: never heard of again (the idle rule reclaims them)
            r = httpx.post(url + "/join", json={"role": "attacker", "players": ["attacker", "defender"]})
            assert r.status_code == 200, r.text
            created += 1
    health = _wait_until_reclaimed(url)
    assert created >= 600
    assert health["games"] == 0 and health["agents"] == 0, health
    assert health["capacity"] <= MAX_GAMES
    assert _rss_kib(pid) - before < 100_000, "memory grew by over 100 MB under churn"


def test_sigterm_writes_every_recorded_step(server):
    url, proc, record = server["url"], server["proc"], server["record"]
    # A game still open in another connection when the signal comes: its steps must be written too
    # (the test makes its own, so it holds whichever tests ran on this server before).
    earlier = connect(url, role="attacker", game_id="earlier-game", seed=4, transport="http")
    earlier_view = earlier.view
    for _ in range(20):
        earlier_view = earlier.step(earlier_view["legal_actions"][0])
    with connect(url, role="attacker", game_id="last-words", seed=5, transport="ws") as agent:
        view = agent.view
        for _ in range(7):
            view = agent.step(view["legal_actions"][0])
        played = agent.view["episodes"]
        # Steps waiting for a partner who never comes, over HTTP and over a WebSocket: the stop
        # answers both with a sentence (uvicorn alone cancelled the request: a 500).
        answers: dict = {}
        waiting = [_pending_http_step(url, answers), _pending_ws_step(server["port"], answers)]
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        for t in waiting:
            t.join(timeout=30)
        with pytest.raises(ServerError) as closed:  # the client reports the server's close frame
            agent.state()
        assert closed.value.status == 1001 and "shutting down" in closed.value.message
    assert proc.returncode == 0
    assert answers["http"].status_code == 503 and "shutting down" in answers["http"].json()["error"]
    frames, close = answers["ws"]
    assert [f["status"] for f in frames] == [503] and (close.code, close.reason) == (
        1001,
        "the server is shutting down",
    )
    files = sorted(record.glob("last-words.*.npz"))
    assert files, os.listdir(record)
    total = sum(int(load_trajectories(f).length.sum()) for f in files)
    assert total == 7 and played >= 0
    earlier_files = sorted(record.glob("earlier-game.*.npz"))
    assert earlier_files and sum(int(load_trajectories(f).length.sum()) for f in earlier_files) == 20
