"""The game server: remote agents (any language, over HTTP or WebSocket) play batched JAX games.

    python -m idsjax.serve --env idsgame-v3 --port 8000

`coordinator` (games, roles, tokens, the batched tick; transport-free), `engine` (the batched JAX
model), `app` (the FastAPI application: HTTP JSON API, WebSocket, the browser page), `schemas`
(request validation), `text` (the text view for language-model agents), `recorder` (trajectories).
"""

from idsjax.serve.coordinator import Coordinator, ServeError

__all__ = ["Coordinator", "ServeError"]
