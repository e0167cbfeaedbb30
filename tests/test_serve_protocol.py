"""The game server as an outsider meets it: one `python -m idsjax.serve` process at its default limits
(but a 1 s request timeout, a 5 s idle timeout and 64 games), played with raw `httpx` and `websockets`
from docs/protocol.md alone (not `idsjax.client`), over loopback. Different clients use different
loopback source addresses (127.0.0.2, ...), as different machines would.

- a join flood from one address: an honest pair's step latency holds, the flood gets its share only;
- 3,000 unfinished requests from one address: the server's descriptors stay bounded and its request
  timeout closes every one;
- the document: every route and op it lists exists and answers as it says; every refusal has the one
  error shape; every WebSocket the server ends gets a close frame with a documented code and reason;
  the log gets no traceback and a bounded number of lines for client input.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect as ws_connect  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "protocol.md").read_text()
MAX_GAMES = 64
SHARE = MAX_GAMES // 4  # the default share of one address
REQUEST_TIMEOUT = 1.0
IDLE = 5.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "server.log"
    port = _free_port()
    cmd = [sys.executable, "-m", "idsjax.serve", "--port", str(port), "--max-games", str(MAX_GAMES)]
    cmd += ["--request-timeout", str(REQUEST_TIMEOUT), "--idle-timeout", str(IDLE)]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(url + "/health", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not start: {log.read_text()}")
            time.sleep(0.1)
    yield {"url": url, "port": port, "proc": proc, "log": log}
    proc.terminate()
    proc.wait(timeout=30)


def _http(url: str, source: str) -> httpx.Client:
    """A client whose connections come from loopback address `source`."""
    return httpx.Client(base_url=url, timeout=30, transport=httpx.HTTPTransport(local_address=source))


def _ws(port: int, source: str):
    return ws_connect(f"ws://127.0.0.1:{port}/ws", source_address=(source, 0))


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _is_error(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and len(body["error"]) > 10, body


# -- fair shares and timeouts ---------------------------------------------------------------------------
def test_a_join_flood_from_one_address_neither_stalls_an_honest_pair_nor_takes_the_server(server):
    from benchmarks.serve import measure_flood

    row = measure_flood(server["port"], seconds=4.0, warm=1.0, out=server["log"].parent)
    assert row["honest_steps"] > 20, row
    # Batch sizes compile on a worker thread (they compiled inside the event loop: 9-18 s stalls).
    assert row["p99_ms"] < 250 and row["max_ms"] < 2000, row
    # Joins that need a batch size still compiling wait for it (no game does); past its share of games
    # the flood is refused 429 (test_one_address_holds_only_its_share_of_games).
    assert row["flood_joins_ok"] > 0, row
    health = httpx.get(server["url"] + "/health").json()
    assert health["games"] <= SHARE, health  # the flood's games (the pair's game closed as it left)


def test_three_thousand_unfinished_requests_from_one_address_are_closed(server):
    pid, port = server["proc"].pid, server["port"]
    limits = httpx.get(server["url"] + "/health").json()["limits"]
    baseline = _fds(pid)
    heads = [
        b"POST /join HTTP/1.1\r\nHost: x\r\n",  # headers never finished
        b"POST /join HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        b"POST /join HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n10000000000000000\r\n{",  # 2^64
    ]
    socks, peak = [], baseline
    try:
        for i in range(3000):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            try:
                s.sendall(heads[i % 3])
            except OSError:
                pass  # refused at once (over the address's share of connections)
            socks.append(s)
            if i % 100 == 0:
                peak = max(peak, _fds(pid))
        # Another address is still served meanwhile (once the server has worked through the accept
        # queue: on loopback all 3,000 connections are made before it accepts the first).
        with _http(server["url"], "127.0.0.2") as other:
            assert other.get("/health").status_code == 200
        deadline = time.monotonic() + REQUEST_TIMEOUT + 10
        while time.monotonic() < deadline:
            peak = max(peak, _fds(pid))
            if _fds(pid) <= baseline + 2:
                break
            time.sleep(0.1)
        assert peak <= baseline + limits["client_connections"] + 16, (peak, baseline)
        assert _fds(pid) <= baseline + 2
        answers = {}
        for s in socks:  # every one was closed by the server: an answer (408 or 503) or nothing, then EOF
            s.settimeout(5)
            data = b""
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
            status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed"
            answers[status] = answers.get(status, 0) + 1
            if data:
                assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]
        assert set(answers) <= {"408", "503", "400", "closed"} and answers.get("408", 0) > 0, answers
    finally:
        for s in socks:
            s.close()


def test_one_address_holds_only_its_share_of_games(server):
    deadline = time.monotonic() + 300  # every batch size compiled: no join waits (and idles) meanwhile
    while httpx.get(server["url"] + "/health").json()["compiled"][-1:] != [MAX_GAMES]:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    with _http(server["url"], "127.0.0.3") as mine, _http(server["url"], "127.0.0.4") as theirs:
        tokens = []
        for _ in range(SHARE):
            r = mine.post("/join", json={"role": "attacker"})
            assert r.status_code == 200, r.text
            tokens.append(r.json()["token"])
        r = mine.post("/join", json={"role": "attacker"})
        _is_error(r, 429)
        assert "share" in r.json()["error"]
        assert theirs.post("/join", json={"role": "defender"}).status_code == 200  # another address is served
        for token in tokens:
            assert mine.post("/leave", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert mine.post("/join", json={"role": "attacker"}).status_code == 200  # a game left is one back


# -- the document -------------------------------------------------------------------------------------
def _documented_routes() -> set[tuple[str, str]]:
    return {(m, p) for m, p in re.findall(r"^\| `(GET|POST) (/[^ `?]*)", DOC, re.M)}


def _documented_ops() -> list[str]:
    section = DOC.split("## WebSocket `/ws`")[1].split("### Close codes")[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


def _documented_view_fields() -> set[str]:
    section = DOC.split("A view is what one side may know")[1].split("## Errors")[0]
    fields = set()
    for cell in re.findall(r"^\| (`[^|]+) \|", section, re.M):
        fields |= set(re.findall(r"`(\w+)`", cell))
    return fields


def test_the_document_and_the_server_agree_on_every_route(server):
    routes = _documented_routes()
    assert len(routes) >= 13
    schema = httpx.get(server["url"] + "/openapi.json").json()
    served = {(m.upper(), p) for p, ms in schema["paths"].items() for m in ms}
    assert served <= routes, served - routes  # every route of the schema is documented
    description = schema["info"]["description"]
    assert description.rstrip().endswith(".") and "close frame" in description  # whole, not cut mid-sentence
    with _http(server["url"], "127.0.0.5") as c:
        for method, path in sorted(routes):
            r = c.request(method, path)  # without a token or body: an answer, never a 404/405/500
            assert r.status_code in (200, 401, 422), (method, path, r.status_code, r.text)
            if r.status_code != 200:
                _is_error(r, r.status_code)
        page = c.get("/docs").text
        assert not re.search(r"(src|href)=['\"]https?://", page)  # nothing from another host: works offline
        assert all(path in page for _, path in routes if path in {p for _, p in served})
        assert c.get("/protocol").text == DOC
        icon = c.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert _documented_ops() == ["join", "auth", "step", "reset", "state", "leave"]


def test_a_duel_played_from_the_document_over_http_and_a_websocket(server):
    fields = _documented_view_fields()
    with _http(server["url"], "127.0.0.5") as c, _ws(server["port"], "127.0.0.5") as ws:
        ws.send(
            json.dumps(
                {"op": "join", "role": "attacker", "game_id": "doc", "players": ["attacker", "defender"], "seed": 7}
            )
        )
        joined = json.loads(ws.recv(timeout=10))
        assert joined["ok"] and joined["op"] == "join" and joined["token"]
        view_a = joined["view"]
        r = c.post("/join", json={"role": "defender", "game_id": "doc"})
        assert r.status_code == 200
        token, view_d = r.json()["token"], r.json()["view"]
        auth = {"Authorization": f"Bearer {token}"}
        assert set(view_a) <= fields and set(view_d) <= fields
        assert set(view_a) >= fields - {"note", "text"}
        for _ in range(5):
            ws.send(json.dumps({"op": "step", "action": view_a["legal_actions"][0]}))
            # A frame while the step is pending is answered 409 at once; the step's answer follows.
            ws.send(json.dumps({"op": "state"}))
            early = json.loads(ws.recv(timeout=10))
            assert early == {"ok": False, "op": "state", "status": 409, "error": early["error"]}, early
            r = c.post("/step", json={"action": view_d["legal_actions"][0]}, headers=auth)
            assert r.status_code == 200, r.text
            stepped = json.loads(ws.recv(timeout=10))
            assert stepped["ok"] and stepped["op"] == "step"
            view_a, view_d = stepped["view"], r.json()
            assert view_a["step"] == view_d["step"] and view_a["action"] is not None
        assert c.get("/state", params={"text": "true"}, headers=auth).json()["text"].startswith("You play")
        png = c.get("/frame.png", headers=auth)
        assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
        for op in ("state", "reset"):
            ws.send(json.dumps({"op": op, "text": True}))
            answer = json.loads(ws.recv(timeout=10))
            assert answer["ok"] and answer["op"] == op and "text" in answer["view"]
        assert c.post("/reset", headers=auth).json()["step"] == 0
        names = c.get("/actions").json()
        assert len(names["attacker"]) == view_a["num_actions"] and len(names["defender"]) == view_d["num_actions"]
        assert c.post("/leave", headers=auth).json() == {"left": True}
        ws.send(json.dumps({"op": "leave"}))
        assert json.loads(ws.recv(timeout=10)) == {"ok": True, "op": "leave"}
        # auth: an HTTP agent carried on by a WebSocket
        r = c.post("/join", json={"role": "attacker"})
        ws.send(json.dumps({"op": "auth", "token": r.json()["token"]}))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["ok"] and answer["op"] == "auth" and answer["view"]["game_id"] == r.json()["view"]["game_id"]
    health = httpx.get(server["url"] + "/health").json()
    assert {"client_games", "client_agents", "client_rate", "join_rate", "client_connections"} <= set(health["limits"])


def test_every_refusal_has_the_one_error_shape(server):
    documented = {int(s) for s in re.findall(r"^\| (\d{3}) \|", DOC.split("## Errors")[1].split("## HTTP")[0], re.M)}
    with _http(server["url"], "127.0.0.6") as c:
        r = c.post("/join", json={"role": "attacker", "game_id": "shape"})
        auth = {"Authorization": f"Bearer {r.json()['token']}"}
        cases = [
            (c.get("/no/such/route"), 404),
            (c.get("/step"), 405),
            (c.delete("/join"), 405),
            (c.post("/step", json={"action": 1}), 401),
            (c.post("/step", json={"action": 1}, headers={"Authorization": "Bearer forged"}), 401),
            (c.post("/step", json={"action": 10**6}, headers=auth), 422),
            (c.post("/step", json={"action": "1"}, headers=auth), 422),
            (c.post("/step", json={"action": 1, "extra": 0}, headers=auth), 422),
            (c.post("/step", content=b"{not json", headers={**auth, "content-type": "application/json"}), 422),
            (c.post("/join", content=b"role=attacker", headers={"content-type": "text/plain"}), 422),
            (c.post("/join", json={"role": "attacker", "game_id": "shape"}), 409),
            (c.post("/join", content=b"{" * 20_000, headers={"content-type": "application/json"}), 413),
            (c.post("/join", content=iter([b"{" * 8192] * 128)), 413),  # chunked: no length declared
            (c.get("/state", params={"text": "maybe"}, headers=auth), 422),
        ]
        for r, status in cases:
            assert status in documented
            _is_error(r, status)
    # Not HTTP at all: answered in the same shape.
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=10) as s:
        s.sendall(b"GARBAGE\x00 /\r\n\r\n")
        data = s.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400") and set(json.loads(body)) == {"error"}


def _closed(ws) -> tuple[int, str]:
    """Read until the server closes; its close frame's (code, reason)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=15)
    assert closed.value.rcvd is not None, "no close frame (1006)"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_every_websocket_the_server_ends_gets_a_close_frame(server):
    codes = {int(c) for c in re.findall(r"^\| (\d{4}) \|", DOC.split("### Close codes")[1], re.M)}
    for _ in range(30):  # a flood of them: logged once in a while, never with a traceback
        with _ws(server["port"], "127.0.0.7") as ws:
            ws.send(b"\xff\xfe not UTF-8", text=True)
            code, reason = _closed(ws)
            assert code == 1007 and code in codes and reason
    with _ws(server["port"], "127.0.0.7") as ws:
        ws.send("x" * 20_000)
        code, reason = _closed(ws)
        assert code == 1009 and reason
    with _ws(server["port"], "127.0.0.7") as ws:
        ws.send(json.dumps({"op": "join", "role": "attacker"}))
        assert json.loads(ws.recv(timeout=10))["ok"]
        started = time.monotonic()
        code, reason = _closed(ws)  # silent for the idle timeout
        assert code == 4408 and "no message" in reason and time.monotonic() - started >= IDLE - 1


def test_the_log_holds_no_traceback_and_few_lines_for_client_input(server):
    time.sleep(0.5)
    log = server["log"].read_text()
    assert "Traceback" not in log and "Exception in" not in log, log[-3000:]
    assert log.count("invalid UTF-8") <= 2, log  # 30 bad connections, rate-limited to one line per 10 s
    assert log.count("Invalid HTTP request") <= 2, log
