"""The transport: a FastAPI application over a `Coordinator` (HTTP JSON API, WebSocket, browser page).

Remote attackers and defenders play batched idsjax games. The whole protocol, for clients in any
language (every route and WebSocket op, fields, answers, errors, close codes, limits):
docs/protocol.md, also served at `GET /protocol`. In short:

HTTP: `POST /join` `{"game_id"?, "role", "players"?, "seed"?, "text"?}` answers `{"token", "view"}`;
`POST /step` `{"action", "text"?}`, `POST /reset`, `GET /state`, `POST /leave` and `GET /frame.png`
take `Authorization: Bearer TOKEN` (tokens never travel in URLs, so access logs never hold them);
`GET /health`, `GET /actions`, `GET /protocol`, `GET /docs`, `GET /openapi.json`; `GET /` is the
browser game. Every refusal is `{"error": sentence}` with its status.

WebSocket `/ws`: one JSON object per text frame, `{"op": "join" | "auth" | "step" | "reset" | "state" |
"leave", ...}` with the HTTP fields (`auth` takes a token from an HTTP join); every answer is
`{"ok": true, "op", "view"}` (join adds `"token"`) or `{"ok": false, "op", "status", "error"}`. A
connection carries one agent; when it closes, the agent leaves and a bot takes its role. Every
connection the server ends gets a close frame with a code and a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from idsjax.serve.coordinator import Coordinator, ServeError
from idsjax.serve.limits import BodyLimit, ClientRate, RateLimiter
from idsjax.serve.schemas import (
    JoinRequest,
    JoinResponse,
    StepRequest,
    TextRequest,
    View,
    WsAuth,
    WsJoin,
    WsLeave,
    WsMessage,
    WsReset,
    WsState,
    WsStep,
)

STATIC = Path(__file__).parent / "static"
PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"  # in a source checkout


class ErrorBody(BaseModel):
    """Every refusal: one sentence for a person or a program to read."""

    error: str


# The refusals each route may answer (besides 429 for every route: too many requests from an address).
ERRORS = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        401: "no token, or an unknown or expired one",
        404: "no such route",
        405: "this route takes another method",
        408: "the request did not arrive whole in time",
        409: "a conflict with the game's state (a seat taken, a step already sent)",
        410: "the game ended (every agent left, or an idle agent ended it)",
        413: "the body is over the size limit",
        422: "a field is missing, of the wrong type or out of range",
        429: "too many requests or joins from your address, or over its share of games or agents",
        503: "the server is full or shutting down",
    }.items()
}
log = logging.getLogger("idsjax.serve")


def _docs_page(openapi: dict) -> str:
    """The API as one self-contained HTML page (no scripts, no fonts, nothing from another host)."""
    from html import escape

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='/favicon.ico'>",
        f"<title>{escape(openapi['info']['title'])}: API</title><style>body{{font-family:system-ui,sans-serif;"
        "max-width:60em;margin:1.5em auto;padding:0 1em;color:#222}pre{background:#f5f5f5;padding:.6em;"
        "overflow:auto}code{background:#f5f5f5}h3{margin-bottom:.2em}.m{font-weight:bold}</style></head><body>",
        f"<h1>{escape(openapi['info']['title'])}</h1>",
        "<p>The whole protocol (WebSocket ops and close codes included): <a href='/protocol'>/protocol</a> "
        "(Markdown). Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>",
        f"<pre>{escape(openapi['info'].get('description', ''))}</pre><h2>Routes</h2>",
    ]
    for path, methods in openapi["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h3><span class='m'>{method.upper()}</span> <code>{escape(path)}</code></h3>")
            if op.get("description") or op.get("summary"):
                parts.append(f"<p>{escape(op.get('description') or op.get('summary'))}</p>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                parts.append(f"<p>Body: <code>{escape(json.dumps(body))}</code></p>")
            for param in op.get("parameters", []):
                parts.append(f"<p>{escape(param['in'])} parameter <code>{escape(param['name'])}</code></p>")
            answers = ", ".join(
                f"{code} {escape(r.get('description', ''))}" for code, r in op.get("responses", {}).items()
            )
            parts.append(f"<p>Answers: {answers}</p>")
    parts.append("<h2>Schemas</h2>")
    for name, schema in openapi.get("components", {}).get("schemas", {}).items():
        parts.append(f"<h3 id='{escape(name)}'>{escape(name)}</h3><pre>{escape(json.dumps(schema, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _validation_message(err: ValidationError | RequestValidationError) -> str:
    first = err.errors()[0]
    if first.get("type") == "json_invalid":
        return f"the body is not JSON ({first.get('ctx', {}).get('error', 'cannot parse it')})"
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") in ("model_attributes_type", "dict_type"):
        return "the body must be a JSON object (content-type: application/json)"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))


def create_app(
    coordinator: Coordinator,
    *,
    max_body: int = 16_384,
    max_frame: int = 16_384,
    client_rate: float = 2_000.0,
    client_burst: float = 4_000.0,
    join_rate: float = 50.0,
    join_burst: float = 200.0,
    max_connections: int | None = None,
) -> FastAPI:
    """The application. Rates are per second: all requests and frames of one client address
    (`client_rate`), and joins of one address (`join_rate`); `max_connections` WebSockets at once."""
    max_connections = 2 * coordinator.max_agents if max_connections is None else max_connections
    by_client = RateLimiter(client_rate, client_burst)
    joins = RateLimiter(join_rate, join_burst)
    live: dict[WebSocket, _Connection] = {}  # the open WebSockets
    stopping = asyncio.Event()  # set once the server stops: every WebSocket closes with 1001

    async def stop() -> None:
        """The server's stop, before it waits for connections: answer every pending step (503),
        write the records, close every WebSocket with a close frame."""
        coordinator.close()
        stopping.set()
        for conn in list(live.values()):
            if not conn.busy:  # a busy one sends its step's answer first, then closes itself
                await conn.close(1001, "the server is shutting down")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while live and loop.time() < deadline:
            await asyncio.sleep(0.02)

    async def sweep(every: float = 1.0) -> None:
        """Close WebSockets silent for the idle timeout (one task for all: a frame costs nothing)."""
        idle = coordinator.idle_timeout
        while True:
            await asyncio.sleep(min(every, idle / 2))
            now = time.monotonic()
            for conn in list(live.values()):
                if not conn.busy and now - conn.last > idle:
                    await conn.close(4408, f"no message for {idle:g} s")

    @contextlib.asynccontextmanager
    async def lifespan(app):
        tasks = [asyncio.create_task(coordinator.run()), asyncio.create_task(sweep())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            written = coordinator.close()  # SIGTERM lands here: every recorded step is written
            if written:
                log.info("wrote %d trajectory files", len(written))

    app = FastAPI(
        title="idsjax game server",
        lifespan=lifespan,
        description=__doc__.split("\n\n", 1)[1].strip(),  # all of it but the module's first line
        docs_url=None,  # Swagger UI loads from a CDN: /docs below is a page of its own, offline
        redoc_url=None,
        responses={429: ERRORS[429]},
    )
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(ClientRate, limiter=by_client)  # outermost: a refused request costs least
    app.state.coordinator = coordinator
    app.state.stop = stop
    app.state.limits = {  # what /health reports; the server process adds its connection limits
        "max_games": coordinator.max_games,
        "max_agents": coordinator.max_agents,
        "client_games": coordinator.client_games,
        "client_agents": coordinator.client_agents,
        "client_rate": client_rate,
        "join_rate": join_rate,
        "idle_timeout": coordinator.idle_timeout,
        "max_body": max_body,
        "max_frame": max_frame,
    }

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, err: ServeError):
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return JSONResponse({"error": _validation_message(err)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException):
        # Starlette's own refusals (no such route, wrong method, a body it cannot parse) in the one shape.
        if err.status_code == 404:
            message = f"no such route: {request.method} {request.url.path} (the routes: /docs)"
        elif err.status_code == 405:
            allowed = (err.headers or {}).get("Allow") or (err.headers or {}).get("allow")
            message = f"{request.url.path} does not take {request.method}" + (f"; use {allowed}" if allowed else "")
        else:
            message = str(err.detail) if err.detail else "the request was refused"
        return JSONResponse({"error": message}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, err: Exception):
        log.exception("answered 500 to %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error; the server's log has the details"}, status_code=500)

    bearer = HTTPBearer(auto_error=False)

    def token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        if credentials is None or not credentials.credentials:
            raise ServeError(401, "send your token as 'Authorization: Bearer TOKEN'")
        return credentials.credentials

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon")

    @app.get("/docs", include_in_schema=False)
    async def docs():
        return HTMLResponse(_docs_page(app.openapi()))

    @app.get("/protocol", response_class=PlainTextResponse, responses={404: ERRORS[404]})
    async def protocol():
        """The protocol document (Markdown): every route and WebSocket op, fields, answers, close codes."""
        if not PROTOCOL.is_file():
            raise ServeError(404, "the protocol document ships with the source: docs/protocol.md")
        return PlainTextResponse(PROTOCOL.read_text(encoding="utf-8"), media_type="text/markdown; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/actions", responses={401: ERRORS[401]})
    async def action_names(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict:
        """What every action id of each side means (public: the rules, not the game). With your token,
        in your game now: a generated family draws each game's network at its reset, so its nodes
        (which exist, what they are) are your game's, and change with its episodes."""
        return coordinator.action_names(credentials.credentials if credentials else None)

    @app.get("/health")
    async def health() -> dict:
        """The server's counters and the limits it runs under (each per client address but max_games)."""
        return {**coordinator.stats(), "limits": app.state.limits}

    @app.post("/join", response_model=JoinResponse, responses={s: ERRORS[s] for s in (409, 413, 422, 503)})
    async def join(body: JoinRequest, request: Request):
        """Create game `game_id` (a fresh id when omitted) or take a free seat in it. The creator's
        `players` are the seats for remote agents (the server's opponent plays the others) and `seed`
        its randomness (secret when omitted); joiners give a role only. Answers your token (send it as
        `Authorization: Bearer TOKEN`) and your first view."""
        client = request.client.host if request.client else "?"
        if not joins.allow(client):
            raise ServeError(429, "too many joins from your address; slow down")
        if body.game_id is None or body.game_id not in coordinator.games:
            await coordinator.make_room()  # a new game: its batch size compiled off the event loop
        secret, view = coordinator.join(body.game_id, body.role, body.players, body.seed, body.text, client)
        return {"token": secret, "view": view}

    @app.post("/step", response_model=View, responses={s: ERRORS[s] for s in (401, 409, 410, 413, 422, 503)})
    async def step(body: StepRequest, secret: str = Depends(token)):
        """Play `action` (one of your view's `legal_actions`) in the current step; the answer comes when
        every remote agent of the game has acted (the long wait is normal) and is your next view."""
        return await coordinator.submit(secret, body.action, body.text)

    @app.post("/reset", response_model=View, responses={s: ERRORS[s] for s in (401, 413, 422)})
    async def reset(body: TextRequest | None = None, secret: str = Depends(token)):
        """Start the next episode now (a no-op at an episode's first step); the other agents' actions
        of the abandoned step are dropped and they are answered with the new episode's view."""
        return coordinator.reset(secret, bool(body and body.text))

    @app.get("/state", response_model=View, responses={401: ERRORS[401], 422: ERRORS[422]})
    async def state(text: bool = False, secret: str = Depends(token)):
        """Your view now, without acting."""
        return coordinator.state(secret, text)

    @app.post("/leave", responses={401: ERRORS[401]})
    async def leave(secret: str = Depends(token)) -> dict:
        """Leave the game: the server's opponent takes your role; the game closes when no agent is left.
        Your token dies with it."""
        coordinator.leave(secret)
        return {"left": True}

    @app.get(
        "/frame.png",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}}, "description": "the board as your side sees it"},
            **{401: ERRORS[401]},
        },
    )
    async def frame(secret: str = Depends(token)):
        """The board as your side sees it (nothing your observation hides), as a PNG image."""
        return Response(coordinator.frame_png(secret), media_type="image/png")

    @app.websocket("/ws")
    async def websocket(ws: WebSocket):
        client = ws.client.host if ws.client else "?"
        await ws.accept()  # then a refusal is a close frame with a code and a reason
        if len(live) >= max_connections:
            await ws.close(code=1013, reason="too many connections; try again later")
            return
        if stopping.is_set():
            await ws.close(code=1001, reason="the server is shutting down")
            return
        conn = live[ws] = _Connection(ws)
        mine: str | None = None  # the token of the agent this connection carries
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                conn.last = time.monotonic()
                raw = message.get("text")
                if raw is None:
                    await ws.send_json({"ok": False, "op": None, "status": 400, "error": "send JSON text frames"})
                    continue
                if len(raw) > max_frame:
                    await conn.close(1009, f"frame over {max_frame} bytes")
                    break
                if not by_client.allow(client):
                    await ws.send_json(
                        {"ok": False, "op": None, "status": 429, "error": "too many messages; slow down"}
                    )
                    continue
                reply, mine = await _ws_answer(coordinator, raw, mine, client, joins)
                if isinstance(reply, asyncio.Future):
                    conn.busy = True
                    reply = await _wait_for_step(ws, reply)
                    conn.busy, conn.last = False, time.monotonic()
                    if reply is None:
                        break  # the client left mid-step
                await ws.send_text(reply)
                if stopping.is_set():  # a step answered by the stop: this connection closes too
                    await conn.close(1001, "the server is shutting down")
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-answer
        finally:
            live.pop(ws, None)
            if mine is not None and mine in coordinator.agents:
                coordinator.leave(mine)

    return app


class _Connection:
    """An open WebSocket: when it last heard from its client, whether a step of it is pending."""

    def __init__(self, ws: WebSocket):
        self.ws, self.last, self.busy, self.closed = ws, time.monotonic(), False, False

    async def close(self, code: int, reason: str) -> None:
        """Send the close frame (once); the client's echo then ends the connection's receive."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await self.ws.close(code=code, reason=reason)


async def _wait_for_step(ws: WebSocket, step: asyncio.Future):
    """The step's answer (None: the client left meanwhile). A client waits for each answer before it
    sends again; a frame that arrives early is answered 409 at once, and the step's answer follows."""
    while True:
        receive = asyncio.ensure_future(ws.receive())
        await asyncio.wait({step, receive}, return_when=asyncio.FIRST_COMPLETED)
        if step.done():
            if receive.done():  # a frame arrived with the answer: answered after it, in order
                message = receive.result()
                if message["type"] == "websocket.disconnect":
                    return None
                await ws.send_json(_early(message))
            else:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive
            return _ws_step_reply(step)
        message = receive.result()
        if message["type"] == "websocket.disconnect":
            step.cancel()
            return None
        await ws.send_json(_early(message))


def _early(message: dict) -> dict:
    return {
        "ok": False,
        "op": _op_of(message.get("text")),
        "status": 409,
        "error": "wait for the answer to your step before you send another message",
    }


def _op_of(raw) -> str | None:
    """The op of a frame, if it names a known one (for the answer's `op`)."""
    try:
        op = json.loads(raw).get("op")
    except (TypeError, ValueError, AttributeError, RecursionError):
        return None
    return op if op in ("join", "auth", "step", "reset", "state", "leave") else None


def _ws_step_reply(step: asyncio.Future) -> str:
    try:
        view = step.result()  # with the text view when the step asked for it (`Coordinator.submit`)
    except ServeError as err:
        return json.dumps({"ok": False, "op": "step", "status": err.status, "error": err.message})
    return json.dumps({"ok": True, "op": "step", "view": view})


async def _ws_answer(coordinator: Coordinator, raw: str, mine: str | None, client: str, joins: RateLimiter):
    """One message -> (reply text, the connection's token afterwards). Never raises for client input."""
    op = None
    try:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise ServeError(400, "not JSON") from None
        try:
            msg = WsMessage.validate_python(data)
        except ValidationError as err:
            raise ServeError(422, _validation_message(err)) from None
        op = msg.op
        if isinstance(msg, WsJoin):
            if mine is not None and mine in coordinator.agents:
                raise ServeError(409, "this connection already carries an agent; open another one")
            if not joins.allow(client):
                raise ServeError(429, "too many joins from your address; slow down")
            if msg.game_id is None or msg.game_id not in coordinator.games:
                await coordinator.make_room()
            token, view = coordinator.join(msg.game_id, msg.role, msg.players, msg.seed, msg.text, client)
            return json.dumps({"ok": True, "op": op, "token": token, "view": view}), token
        if isinstance(msg, WsAuth):
            if mine is not None and mine in coordinator.agents and mine != msg.token:
                raise ServeError(409, "this connection already carries an agent; open another one")
            view = coordinator.state(msg.token, msg.text)
            return json.dumps({"ok": True, "op": op, "view": view}), msg.token
        if mine is None:
            raise ServeError(401, "join or auth first")
        if isinstance(msg, WsStep):
            return coordinator.submit(mine, msg.action, msg.text), mine  # answered by _ws_step_reply
        if isinstance(msg, WsReset):
            view = coordinator.reset(mine, msg.text)
        elif isinstance(msg, WsState):
            view = coordinator.state(mine, msg.text)
        else:
            assert isinstance(msg, WsLeave)
            coordinator.leave(mine)
            return json.dumps({"ok": True, "op": op}), None
        return json.dumps({"ok": True, "op": op, "view": view}), mine
    except ServeError as err:
        return json.dumps({"ok": False, "op": op, "status": err.status, "error": err.message}), mine
