"""A synchronous client for `python -m idsjax.serve`, over HTTP (httpx) or a WebSocket (websockets).

    from idsjax.client import connect
    with connect("http://127.0.0.1:8000", role="attacker", game_id="g1") as agent:
        view = agent.view
        while view["episodes"] < 3:
            view = agent.step(view["legal_actions"][0])

`connect(..., transport="ws")` plays over one WebSocket (far fewer round trips per step). `view` is the
server's dict for your side (see `idsjax.serve.schemas.View`; the protocol: docs/protocol.md).
Refusals raise `ServerError` with the server's status and sentence (over a WebSocket the server ended:
its close code and reason).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["Agent", "ServerError", "connect"]


class ServerError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


class Agent:
    """One seat in one game. `view` is the latest view; `step`, `reset`, `state` refresh it."""

    def __init__(
        self,
        url: str,
        *,
        role: str,
        game_id: str | None = None,
        players=None,
        seed: int | None = None,
        transport: str = "http",
        text: bool = False,
        timeout: float = 120.0,
    ):
        if transport not in ("http", "ws"):
            raise ValueError("transport must be 'http' or 'ws'")
        self.transport, self.text = transport, text
        request: dict[str, Any] = {"role": role, "text": text}
        if game_id is not None:
            request["game_id"] = game_id
        if players is not None:
            request["players"] = list(players)
        if seed is not None:
            request["seed"] = seed
        if transport == "http":
            import httpx

            self._http = httpx.Client(base_url=url, timeout=timeout)
            answer = self._post("/join", request)
        else:
            from websockets.sync.client import connect as ws_connect

            parts = urlsplit(url)
            scheme = "wss" if parts.scheme == "https" else "ws"
            self._ws = ws_connect(
                urlunsplit((scheme, parts.netloc, "/ws", "", "")), open_timeout=timeout, max_size=2**22
            )
            answer = self._call({"op": "join", **request})
        self.token: str = answer["token"]
        self.view: dict = answer["view"]
        self.role, self.game_id = role, self.view["game_id"]

    # -- transports ----------------------------------------------------------------------------------
    def _post(self, path: str, body: dict | None = None, method: str = "POST", params=None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}
        r = self._http.request(method, path, json=body, headers=headers, params=params)
        data = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200:
            raise ServerError(r.status_code, data.get("error", r.text))
        return data

    def _call(self, message: dict) -> dict:
        from websockets.exceptions import ConnectionClosed

        try:
            self._ws.send(json.dumps(message))
            data = json.loads(self._ws.recv())
        except ConnectionClosed as closed:  # the server ended the connection: its code and reason
            frame = closed.rcvd
            code, reason = (frame.code, frame.reason) if frame is not None else (1006, "no close frame")
            raise ServerError(code, f"the server closed the connection: {reason}") from None
        if not data.get("ok"):
            raise ServerError(data.get("status", 0), data.get("error", "?"))
        return data

    # -- the game ------------------------------------------------------------------------------------
    def step(self, action: int) -> dict:
        """Play `action`; returns the view after the joint step (it waits for the other agent)."""
        if self.transport == "http":
            self.view = self._post("/step", {"action": int(action), "text": self.text})
        else:
            self.view = self._call({"op": "step", "action": int(action), "text": self.text})["view"]
        return self.view

    def reset(self) -> dict:
        if self.transport == "http":
            self.view = self._post("/reset", {"text": self.text})
        else:
            self.view = self._call({"op": "reset", "text": self.text})["view"]
        return self.view

    def state(self) -> dict:
        if self.transport == "http":
            self.view = self._post("/state", method="GET", params={"text": str(self.text).lower()})
        else:
            self.view = self._call({"op": "state", "text": self.text})["view"]
        return self.view

    def close(self) -> None:
        """Leave the game (a bot takes the role) and close the connection."""
        try:
            if self.transport == "http":
                self._post("/leave")
            else:
                self._call({"op": "leave"})
        except Exception:  # noqa: BLE001 — leaving a game that already ended is fine
            pass
        finally:
            if self.transport == "http":
                self._http.close()
            else:
                self._ws.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def connect(url: str = "http://127.0.0.1:8000", **kwargs) -> Agent:
    """Create or join a game (see `Agent`)."""
    return Agent(url, **kwargs)
