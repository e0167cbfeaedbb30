"""Request and response shapes (pydantic): strict types, bounded sizes, no unknown fields.

Action ranges depend on the environment, so the coordinator checks them (and says which ids exist).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from idsjax.serve.coordinator import MAX_SEED

Role = Literal["attacker", "defender"]
GameId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
ActionId = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JoinRequest(_Strict):
    """Create game `game_id` (a fresh id when omitted) or join it as `role`."""

    game_id: GameId | None = None
    role: Role
    players: Annotated[list[Role], Field(min_length=1, max_length=2)] | None = Field(
        None, description="roles reserved for remote agents when creating (default: yours); the rest are bots"
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        None, description="the game's seed (default: a secret random one); whoever knows it can predict the draws"
    )
    text: bool = Field(False, description="add the text view for language-model agents")


class StepRequest(_Strict):
    action: ActionId
    text: bool = False


class TextRequest(_Strict):
    text: bool = False


class View(BaseModel):
    """What one agent may know of its game now."""

    game_id: str
    role: Role
    env_id: str
    episode: int
    step: int = Field(description="joint steps played in this episode")
    observation: list[list[int]] = Field(description="your observation (the environment's view of your side)")
    legal_actions: list[int]
    num_actions: int
    reward: float = Field(description="your reward of the last step")
    done: bool = Field(description="the last step ended an episode (a new one has started)")
    terminated: bool
    truncated: bool
    hacked: bool
    detected: bool
    action: int | None = Field(description="your action played in the last step")
    final_observation: list[list[int]] | None = Field(description="your last observation of the ended episode")
    episode_return: float
    episodes: int
    hacks: int
    detections: int
    players: list[Role]
    waiting_for: list[Role]
    note: str | None = None
    text: str | None = None


class JoinResponse(BaseModel):
    token: str = Field(description="your secret: send it as 'Authorization: Bearer TOKEN'")
    view: View


# -- WebSocket messages: one JSON object per text frame, tagged by "op" ---------------------------------
class WsJoin(JoinRequest):
    op: Literal["join"]


class WsAuth(_Strict):
    op: Literal["auth"]
    token: Token
    text: bool = False


class WsStep(StepRequest):
    op: Literal["step"]


class WsReset(TextRequest):
    op: Literal["reset"]


class WsState(TextRequest):
    op: Literal["state"]


class WsLeave(_Strict):
    op: Literal["leave"]


WsMessage = TypeAdapter(Annotated[WsJoin | WsAuth | WsStep | WsReset | WsState | WsLeave, Field(discriminator="op")])
