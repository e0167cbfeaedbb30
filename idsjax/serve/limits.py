"""Request-rate buckets and the HTTP body-size limit (Starlette has no built-in for either)."""

from __future__ import annotations

import time

from starlette.responses import JSONResponse


class RateLimiter:
    """Token buckets by key (a client address, an agent token, a connection): `rate` per second, `burst`
    at once. The table is bounded: when it reaches `max_keys`, full (idle) buckets are dropped first."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000, clock=time.monotonic):
        self.rate, self.burst, self.max_keys, self.clock = float(rate), float(burst), max_keys, clock
        self._buckets: dict = {}

    def allow(self, key) -> bool:
        now = self.clock()
        level, last = self._buckets.get(key, (self.burst, now))
        level = min(self.burst, level + (now - last) * self.rate)
        if len(self._buckets) >= self.max_keys and key not in self._buckets:
            self._prune(now)
        if level < 1.0:
            self._buckets[key] = (level, now)
            return False
        self._buckets[key] = (level - 1.0, now)
        return True

    def _prune(self, now: float) -> None:
        full = [k for k, (lvl, last) in self._buckets.items() if lvl + (now - last) * self.rate >= self.burst]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:  # everyone is busy: forget the oldest half
            for k in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.max_keys // 2]:
                del self._buckets[k]


class BodyLimit:
    """ASGI middleware: an HTTP request body over `limit` bytes is refused with 413 and the server's
    error shape, whether declared (content-length) or streamed (chunked). The body is read here, up to
    the limit, before the application sees it: the application's own body parsing never meets a
    half-read stream (FastAPI turned that into a 400)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.limit + 1
                if declared > self.limit:
                    return await self._refuse(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left (or timed out) mid-body: an
                # answer no one reads, so that every request has one (middleware above expects it)
                response = JSONResponse({"error": "the request's body did not arrive whole"}, status_code=400)
                return await response(scope, receive, send)
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                return await self._refuse(scope, receive, send)
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        async def replay():
            nonlocal whole
            if whole is not None:
                message, whole = whole, None
                return message
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _refuse(self, scope, receive, send):
        response = JSONResponse(
            {"error": f"request body over {self.limit} bytes"}, status_code=413, headers={"connection": "close"}
        )
        await response(scope, receive, send)


class ClientRate:
    """ASGI middleware: HTTP requests of one client address beyond `limiter` are answered 429 (a plain
    ASGI class: Starlette's `BaseHTTPMiddleware` costs a task and a stream per request)."""

    def __init__(self, app, limiter: RateLimiter):
        self.app, self.limiter = app, limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            client = scope.get("client")
            if not self.limiter.allow(client[0] if client else "?"):
                response = JSONResponse({"error": "too many requests from your address; slow down"}, status_code=429)
                return await response(scope, receive, send)
        await self.app(scope, receive, send)
