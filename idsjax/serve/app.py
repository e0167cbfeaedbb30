"""The transport: a FastAPI application over a `Coordinator` (HTTP JSON API, WebSocket, browser page).

HTTP (OpenEnv-style; interactive documentation at `/docs`):

- `POST /join` `{"game_id", "role", "players"?, "seed"?, "text"?}` -> `{"token", "view"}`;
- `POST /step` `{"action", "text"?}`, `POST /reset`, `GET /state`, `POST /leave`, `GET /frame.png`, each
  with `Authorization: Bearer TOKEN` (tokens never travel in URLs, so access logs never hold them);
- `GET /health`; `GET /` the browser game.

WebSocket `/ws`: one JSON object per text frame, `{"op": "join" | "auth" | "step" | "reset" | "state" |
"leave", ...}` (fields as over HTTP; `auth` takes a token from an HTTP join); every answer is
`{"ok": true, "op", "view"}` (join adds `"token"`) or `{"ok": false, "status", "error"}`. A connection
carries one agent; when it closes, the agent leaves and a bot takes its role.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path

from fastapi import Depends, FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from idsjax.serve.coordinator import Coordinator, ServeError
from idsjax.serve.limits import BodyLimit, RateLimiter
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
log = logging.getLogger("idsjax.serve")


def _validation_message(err: ValidationError | RequestValidationError) -> str:
    first = err.errors()[0]
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
    connections = {"open": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        task = asyncio.create_task(coordinator.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            written = coordinator.close()  # SIGTERM lands here: every recorded step is written
            if written:
                log.info("wrote %d trajectory files", len(written))

    app = FastAPI(
        title="idsjax game server",
        lifespan=lifespan,
        description="Remote attackers and defenders play batched idsjax games. " + __doc__.split("\n\n")[1],
    )
    app.add_middleware(BodyLimit, limit=max_body)
    app.state.coordinator = coordinator

    @app.exception_handler(ServeError)
    async def serve_error(request: Request, err: ServeError):
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        return JSONResponse({"error": _validation_message(err)}, status_code=422)

    @app.middleware("http")
    async def rate_limit(request: Request, call_next):
        client = request.client.host if request.client else "?"
        if not by_client.allow(client):
            return JSONResponse({"error": "too many requests; slow down"}, status_code=429)
        return await call_next(request)

    bearer = HTTPBearer(auto_error=False)

    def token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        if credentials is None or not credentials.credentials:
            raise ServeError(401, "send your token as 'Authorization: Bearer TOKEN'")
        return credentials.credentials

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/actions")
    async def action_names() -> dict:
        """What every action id of each side means (public: the rules, not the game)."""
        return coordinator.action_names()

    @app.get("/health")
    async def health() -> dict:
        return coordinator.stats()

    @app.post("/join", response_model=JoinResponse)
    async def join(body: JoinRequest, request: Request):
        if not joins.allow(request.client.host if request.client else "?"):
            raise ServeError(429, "too many joins from your address; slow down")
        secret, view = coordinator.join(body.game_id, body.role, body.players, body.seed, body.text)
        return {"token": secret, "view": view}

    @app.post("/step", response_model=View)
    async def step(body: StepRequest, secret: str = Depends(token)):
        view = await coordinator.submit(secret, body.action)
        return _with_text(coordinator, view, body.text)

    @app.post("/reset", response_model=View)
    async def reset(body: TextRequest | None = None, secret: str = Depends(token)):
        return coordinator.reset(secret, bool(body and body.text))

    @app.get("/state", response_model=View)
    async def state(text: bool = False, secret: str = Depends(token)):
        return coordinator.state(secret, text)

    @app.post("/leave")
    async def leave(secret: str = Depends(token)) -> dict:
        coordinator.leave(secret)
        return {"left": True}

    @app.get("/frame.png", response_class=Response)
    async def frame(secret: str = Depends(token)):
        return Response(coordinator.frame_png(secret), media_type="image/png")

    @app.websocket("/ws")
    async def websocket(ws: WebSocket):
        client = ws.client.host if ws.client else "?"
        if connections["open"] >= max_connections:
            await ws.close(code=1013, reason="too many connections; try again later")
            return
        connections["open"] += 1
        await ws.accept()
        mine: str | None = None  # the token of the agent this connection carries
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                raw = message.get("text")
                if raw is None:
                    await ws.send_json({"ok": False, "status": 400, "error": "send JSON text frames"})
                    continue
                if len(raw) > max_frame:
                    await ws.close(code=1009, reason=f"frame over {max_frame} bytes")
                    break
                if not by_client.allow(client):
                    await ws.send_json({"ok": False, "status": 429, "error": "too many messages; slow down"})
                    continue
                reply, mine = await _ws_answer(coordinator, raw, mine, client, joins)
                if isinstance(reply, asyncio.Future):
                    if not await _wait_or_disconnect(ws, reply):
                        break  # the client left mid-step
                    reply = _ws_step_reply(coordinator, reply, text=json.loads(raw).get("text") is True)
                await ws.send_text(reply)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away mid-answer
        finally:
            connections["open"] -= 1
            if mine is not None and mine in coordinator.agents:
                coordinator.leave(mine)

    return app


async def _wait_or_disconnect(ws: WebSocket, step: asyncio.Future) -> bool:
    """Wait for a step's result, noticing when the client leaves meanwhile (False: it left). A client
    must wait for each answer before it sends again; a frame that arrives early ends the connection."""
    receive = asyncio.ensure_future(ws.receive())
    done, _ = await asyncio.wait({step, receive}, return_when=asyncio.FIRST_COMPLETED)
    if receive in done:
        if not step.done():
            step.cancel()
        return False
    receive.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await receive
    return True


def _ws_step_reply(coordinator: Coordinator, step: asyncio.Future, text: bool) -> str:
    try:
        view = _with_text(coordinator, step.result(), text)
    except ServeError as err:
        return json.dumps({"ok": False, "op": "step", "status": err.status, "error": err.message})
    return json.dumps({"ok": True, "op": "step", "view": view})


def _with_text(coordinator: Coordinator, view: dict, text: bool) -> dict:
    if text and "text" not in view:
        from idsjax.serve.text import text_view

        view = {**view, "text": text_view(coordinator.config, view)}
    return view


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
            token, view = coordinator.join(msg.game_id, msg.role, msg.players, msg.seed, msg.text)
            return json.dumps({"ok": True, "op": op, "token": token, "view": view}), token
        if isinstance(msg, WsAuth):
            if mine is not None and mine in coordinator.agents and mine != msg.token:
                raise ServeError(409, "this connection already carries an agent; open another one")
            view = coordinator.state(msg.token, msg.text)
            return json.dumps({"ok": True, "op": op, "view": view}), msg.token
        if mine is None:
            raise ServeError(401, "join or auth first")
        if isinstance(msg, WsStep):
            return coordinator.submit(mine, msg.action), mine  # answered by _ws_step_reply
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
