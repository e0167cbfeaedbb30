"""The server process around the application: uvicorn, with a stop that answers before it waits.

uvicorn's graceful stop closes idle connections, waits up to `timeout_graceful_shutdown` for the busy
ones, cancels what is left (a `/step` waiting for its partner is cancelled mid-request: a 500) and only
then runs the application's shutdown. `GameServer` runs the application's `on_stop` first: the
coordinator closes every game (pending steps are answered 503 with a sentence, recordings written)
and every WebSocket is closed with 1001 and a reason, so that the wait finds nothing left to cancel.
A stop by SIGTERM or SIGINT then exits with status 0 (uvicorn would re-raise the signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
import time

import uvicorn


class GameServer(uvicorn.Server):
    """`uvicorn.Server` whose stop first calls `on_stop()` (an async callable) of the application."""

    def __init__(self, config: uvicorn.Config, on_stop=None):
        super().__init__(config)
        self.on_stop = on_stop

    async def shutdown(self, sockets=None) -> None:
        if self.on_stop is not None:
            await self.on_stop()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self):
        # As uvicorn's, less the signal re-raised at the end: the stop it asked for is complete.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


# -- connections: a share per address and a deadline per request ---------------------------------------
def _raw_response(status: int, phrase: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def protocols(request_timeout: float, client_connections: int, log_every: float = 10.0):
    """(HTTP protocol class, WebSocket protocol class) for `uvicorn.Config(http=..., ws=...)`.

    uvicorn times out only idle keep-alive connections: a request whose headers or body never finish
    holds its socket forever. Here a request must arrive whole (headers and body) within
    `request_timeout` seconds of its first byte (or of the connection), else it is answered 408 and
    the connection closed; one address holds at most `client_connections` connections at once,
    WebSockets included (one more is answered 503 and closed). Parse errors are answered with the
    server's error shape, and client-input warnings are logged at most once per `log_every` s per
    kind (with a count of those left out), never with a traceback."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

    held: dict[str, int] = {}  # open connections by peer address (shared by both classes)
    warn = RateLimitedLog(logging.getLogger("idsjax.serve"), log_every)

    def release(host: str) -> None:
        n = held.get(host, 0) - 1
        if n > 0:
            held[host] = n
        else:
            held.pop(host, None)

    class Http(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _host: str | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._host = self.client[0] if self.client else "?"
            held[self._host] = held.get(self._host, 0) + 1
            if held[self._host] > client_connections:
                warn("refused-connection", "refused a connection from %s: over its share", self._host)
                message = f"too many connections from your address (at most {client_connections}); close some"
                transport.write(_raw_response(503, "Service Unavailable", message))
                transport.close()
                return
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            if self._host is not None:
                release(self._host)
                self._host = None
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is None or not self.cycle.response_started:
                message = f"the request did not arrive whole within {request_timeout:g} s"
                self.transport.write(_raw_response(408, "Request Timeout", message))
            self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()  # each request of a keep-alive connection has its own deadline

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def handle_websocket_upgrade(self) -> None:
            self._disarm()
            self._host = None  # the WebSocket protocol holds the address's count from here
            super().handle_websocket_upgrade()

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.logger = _QuietLogger(self.logger, warn)  # uvicorn's client-input warnings, rate-limited

        def send_400_response(self, msg: str) -> None:
            self.transport.write(_raw_response(400, "Bad Request", msg))
            self.transport.close()

    class WebSocket(WebSocketsSansIOProtocol):
        def connection_lost(self, exc) -> None:
            if self.client is not None and getattr(self, "_counted", True):
                self._counted = False
                release(self.client[0])
            super().connection_lost(exc)

        def send_receive_event_to_app(self) -> None:
            # uvicorn logs invalid UTF-8 with a traceback (any client could flood the log): closed
            # here with 1007 and a reason, logged once in a while.
            if self.curr_msg_data_type == "text" and not self.close_sent:
                try:
                    b"".join(self.frames).decode()
                except UnicodeDecodeError:
                    self.frames = []
                    warn("utf8", "closed a WebSocket from %s: invalid UTF-8", self.client[0] if self.client else "?")
                    self.conn.send_close(1007, "a text frame must be UTF-8")
                    self.handle_parser_exception()
                    return
            super().send_receive_event_to_app()

    return Http, WebSocket


class RateLimitedLog:
    """`warn(kind, fmt, *args)`: a warning of each kind at most once per `every` seconds; the next
    one says how many were left out meanwhile."""

    def __init__(self, logger: logging.Logger, every: float, clock=time.monotonic):
        self.logger, self.every, self.clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._dropped: dict[str, int] = {}

    def __call__(self, kind: str, fmt: str, *args) -> bool:
        now = self.clock()
        if now - self._last.get(kind, -float("inf")) < self.every:
            self._dropped[kind] = self._dropped.get(kind, 0) + 1
            return False
        self._last[kind] = now
        dropped = self._dropped.pop(kind, 0)
        if dropped:
            fmt += f" (and {dropped} more like it in the last {self.every:g} s)"
        self.logger.warning(fmt, *args)
        return True


class _QuietLogger:
    """uvicorn's HTTP logger with its client-input warnings rate-limited and everything else as is."""

    _CLIENT_INPUT = ("Invalid HTTP request received.", "Unsupported upgrade request.")

    def __init__(self, logger, warn: RateLimitedLog):
        self._logger, self._warn = logger, warn

    def warning(self, msg, *args, **kwargs):
        if msg in self._CLIENT_INPUT:
            self._warn(msg, "%s", msg)
        else:
            self._logger.warning(msg, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._logger, name)
