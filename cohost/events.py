"""The one event model for everything that enters a room.

Every source — the websocket ingest, `cohost replay`, future platform adapters (Bilibili, Douyin...) —
produces these events. They are frozen pydantic models, parsed from JSON at the edge with
``parse_event``, which raises EventError with a message fit to send back to the client.

Wire format: one JSON object per websocket text frame, discriminated by "type":

    {"type": "chat", "id": "e1", "user": {"id": "u1", "name": "小王"}, "text": "有大码吗", "ts": 1732250000.1}
    {"type": "product", "product_id": "dress"}
    {"type": "gift" | "like" | "enter" | "follow" | "order", "user": {...}, ...}
    {"type": "speech", "state": "start" | "end"}       the streamer started or stopped talking
    {"type": "control", "action": "pause" | "resume"}   the operator pauses or resumes suggestions
    {"type": "audio", ...}                              voice clips: accepted, not yet used
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import CohostError

MAX_FRAME_BYTES = 64 * 1024
MAX_TEXT_CHARS = 500


class EventError(CohostError):
    """An incoming frame is not a valid event. The message says why, for the sender."""


class _Event(BaseModel):
    # Platform adapters may attach extra fields (fan level, badges...); they are kept, not rejected.
    model_config = ConfigDict(frozen=True, extra="allow")

    ts: float | None = None  # unix seconds when the platform saw it; server time when absent


class User(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    id: Annotated[str, Field(min_length=1, max_length=128)]
    name: Annotated[str, Field(max_length=64)] = ""

    @property
    def display(self) -> str:
        return self.name or self.id


class ChatEvent(_Event):
    type: Literal["chat"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    user: User
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
    # Paid messages (super chat, 付费弹幕) outrank everything else.
    paid: float = 0.0


class ProductEvent(_Event):
    type: Literal["product"]
    product_id: Annotated[str, Field(min_length=1, max_length=64)]


class RoomEvent(_Event):
    type: Literal["gift", "like", "enter", "follow", "order"]
    user: User | None = None
    product_id: str | None = None
    gift: str | None = None
    count: int = 1
    value: float = 0.0  # gift value in CNY, when the platform says


class SpeechEvent(_Event):
    type: Literal["speech"]
    state: Literal["start", "end"]


class ControlEvent(_Event):
    type: Literal["control"]
    action: Literal["pause", "resume"]


class AudioEvent(_Event):
    type: Literal["audio"]


Event = Annotated[ChatEvent | ProductEvent | RoomEvent | SpeechEvent | ControlEvent | AudioEvent,
                  Field(discriminator="type")]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(frame: str | bytes | dict[str, Any]) -> Event:
    """Parse one frame. Raises EventError naming what is wrong; never anything else."""
    if isinstance(frame, bytes | str):
        if len(frame) > MAX_FRAME_BYTES:
            raise EventError(f"frame of {len(frame)} bytes is over the {MAX_FRAME_BYTES}-byte limit")
        try:
            frame = json.loads(frame)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise EventError(f"not JSON: {e}") from None
    if not isinstance(frame, dict):
        raise EventError("an event must be a JSON object")
    if "type" not in frame:
        raise EventError("missing 'type'")
    try:
        return _ADAPTER.validate_python(frame)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise EventError(f"invalid {frame.get('type')!r} event: {loc}: {first['msg']}") from None
