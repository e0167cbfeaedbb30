"""The game server: remote agents (any language, over HTTP or WebSocket) play batched JAX games.

    python -m idsjax.serve --env idsgame-v3 --port 8000

`coordinator` (games, roles, tokens, shares per address, the batched tick; transport-free), `engine`
(the batched JAX model, its batch sizes compiled ahead), `app` (the FastAPI application: HTTP JSON API,
WebSocket, the browser page), `transport` (the uvicorn server: its stop, request deadlines, connections
per address), `limits` (rates, body size), `schemas` (request validation), `text` (the text view for
language-model agents), `recorder` (trajectories). The protocol for clients: docs/protocol.md.
"""

from idsjax.serve.coordinator import Coordinator, ServeError

__all__ = ["Coordinator", "ServeError"]
