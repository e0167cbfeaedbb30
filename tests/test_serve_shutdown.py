"""The game server's stop, over real sockets: `python -m idsjax.serve` processes stopped by SIGTERM and
SIGINT while steps wait for a partner. Every pending request is answered with a sentence (never a 500,
never a WebSocket dropped without a close frame), and every played step of every game is in the
recording, across a reused game id and a restart on the same directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from test_serve import _recorded  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(*args: str) -> tuple[subprocess.Popen, str, int]:
    """`python -m idsjax.serve ARGS` on a free loopback port, once it answers /health."""
    port = _free_port()
    cmd = [sys.executable, "-m", "idsjax.serve", "--port", str(port), "--log-level", "info", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/health", timeout=1).raise_for_status()
            return proc, url, port
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start: {proc.stdout.read()}")
            time.sleep(0.1)


def stop_server(proc: subprocess.Popen, sig: int) -> str:
    """Send `sig`; the server's whole log once it exited (it must exit cleanly, promptly)."""
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the server did not stop on signal {sig}: {proc.communicate()[0]}")
    assert proc.returncode == 0, out
    for bad in ("Traceback", "CancelledError", '" 500', "Exception in"):
        assert bad not in out, out
    return out


def _http_duel(url: str, game_id: str, seed: int, steps: int, leave: bool) -> None:
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(
            "/join", json={"game_id": game_id, "role": "attacker", "players": ["attacker", "defender"], "seed": seed}
        )
        ta, va = r.json()["token"], r.json()["view"]
        r = c.post("/join", json={"game_id": game_id, "role": "defender"})
        td, vd = r.json()["token"], r.json()["view"]
        for _ in range(steps):
            out = {}

            def step(role, token, action):
                out[role] = c.post("/step", json={"action": action}, headers={"Authorization": f"Bearer {token}"})

            t = threading.Thread(target=step, args=("attacker", ta, va["legal_actions"][0]))
            t.start()
            step("defender", td, vd["legal_actions"][0])
            t.join()
            assert out["attacker"].status_code == out["defender"].status_code == 200
            va, vd = out["attacker"].json(), out["defender"].json()
        if leave:
            for token in (ta, td):
                assert c.post("/leave", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _pending_http_step(url: str, answers: dict) -> threading.Thread:
    """An attacker whose partner never comes: its step waits until the server stops."""
    r = httpx.post(
        url + "/join", json={"game_id": "alone-http", "role": "attacker", "players": ["attacker", "defender"]}
    )
    token, view = r.json()["token"], r.json()["view"]

    def wait():
        try:
            answers["http"] = httpx.post(
                url + "/step",
                json={"action": view["legal_actions"][0]},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
        except httpx.HTTPError as err:
            answers["http"] = err

    thread = threading.Thread(target=wait)
    thread.start()
    return thread


def _pending_ws_step(port: int, answers: dict) -> threading.Thread:
    ws = ws_connect(f"ws://127.0.0.1:{port}/ws")
    ws.send(json.dumps({"op": "join", "game_id": "alone-ws", "role": "attacker", "players": ["attacker", "defender"]}))
    view = json.loads(ws.recv(timeout=10))["view"]
    ws.send(json.dumps({"op": "step", "action": view["legal_actions"][0]}))

    def wait():
        frames = []
        try:
            while True:
                frames.append(json.loads(ws.recv(timeout=60)))
        except ConnectionClosed as closed:
            answers["ws"] = (frames, closed.rcvd)
        except TimeoutError as err:
            answers["ws"] = (frames, err)

    thread = threading.Thread(target=wait)
    thread.start()
    return thread


@pytest.mark.slow  # two server processes (the default suite's SIGTERM test: tests/test_serve_e2e.py)
def test_stops_answer_pending_steps_and_keep_every_recorded_step(tmp_path):
    record = tmp_path / "records"
    common = ["--env", "idsgame-v3", "--record", str(record), "--max-games", "8", "--client-games", "8"]
    proc, url, port = start_server(*common)
    try:
        _http_duel(url, "g1", 1, 3, leave=True)
        _http_duel(url, "g1", 2, 1, leave=True)  # the same id again: a second recording
        _http_duel(url, "g2", 4, 5, leave=False)  # still open at the signal
        answers: dict = {}
        waiting = [_pending_http_step(url, answers), _pending_ws_step(port, answers)]
        time.sleep(0.5)  # both steps are pending now
        started = time.monotonic()
        stop_server(proc, signal.SIGTERM)
        for t in waiting:
            t.join(timeout=30)
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    http = answers["http"]
    assert isinstance(http, httpx.Response) and http.status_code in (410, 503), http
    assert set(http.json()) == {"error"} and "shut" in http.json()["error"]
    frames, close = answers["ws"]
    assert close is not None and close.code == 1001 and "shut" in close.reason, answers["ws"]
    assert all(f["ok"] is False and f["status"] in (410, 503) for f in frames), frames

    # A restart on the same directory, stopped by SIGINT: nothing earlier is overwritten.
    proc, url, port = start_server(*common)
    try:
        _http_duel(url, "g1", 3, 2, leave=False)
        stop_server(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(_recorded(record).values()) == [(1, [3]), (2, [1]), (3, [2]), (4, [5])]
