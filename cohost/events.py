"""The one event model for everything that enters a room.

Every source — the websocket ingest, `cohost replay`, future platform adapters (Bilibili, Douyin...) —
produces these events. They are frozen pydantic models, parsed from JSON at the edge with
``parse_event``, which raises EventError with a message fit to send back to the client.

Wire format: one JSON object per websocket text frame, discriminated by "type":

    {"type": "chat", "id": "e1", "user": {"id": "u1", "name": "小王"}, "text": "有大码吗", "ts": 1732250000.1}
    {"type": "product", "product_id": "dress"}
    {"type": "gift" | "like" | "enter" | "follow" | "order", "user": {...}, ...}
    {"type": "speech", "state": "start" | "end"}       the streamer started or stopped talking
    {"type": "stream", "state": "start" | "end"}       the platform says the stream went live or ended
    {"type": "control", "action": "pause" | "resume"}   the operator pauses or resumes suggestions
    {"type": "voice", "id": "v1", "user": {...}, "format": "wav" | "mp3" | "ogg" | "flac" | "m4a", "data": <base64>}
                                                        a viewer's voice message (hearing/ turns it into a chat)
    {"type": "audio_start", "speaker": "streamer" | "guest", "format": "pcm16", "rate": 16000}
                                                        binary frames of 16 kHz mono PCM16 follow on this socket
    {"type": "audio_end"}                               the audio stream stopped
    {"type": "transcript", "speaker": "streamer", "text": "来看6号链接"}
                                                        what the streamer said (from cohost's ASR, or the client's own)

Binary frames are not events: the ingest socket takes them only as the audio of a stream opened with
audio_start (``parse_event`` refuses them). A frame is at most MAX_FRAME_BYTES of UTF-8 (a voice event
up to MAX_VOICE_FRAME_BYTES, for its base64 clip), nests
at most MAX_DEPTH levels, writes integers with at most MAX_INT_DIGITS digits, and every number in it is
finite (no NaN or Infinity); ``ts`` is a real number (not a bool, not a string) or absent.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from .errors import CohostError

MAX_FRAME_BYTES = 64 * 1024  # UTF-8 bytes of one text frame
MAX_VOICE_FRAME_BYTES = 1024 * 1024  # a voice event carries its clip: about 45 s of 128 kbit/s mp3
MAX_TEXT_CHARS = 500
MAX_DEPTH = 32  # nesting of objects and arrays; deeper frames are refused before json.loads recurses
MAX_INT_DIGITS = 30  # longer integer literals are refused before int() sees them (64-bit ids have 20)

# A finite number; "paid": "30" still reads as 30.0, as before, but NaN and Infinity are refused.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class EventError(CohostError):
    """An incoming frame is not a valid event. The message says why, for the sender."""


class _Event(BaseModel):
    # Platform adapters may attach extra fields (fan level, badges...); they are kept, not rejected.
    model_config = ConfigDict(frozen=True, extra="allow")

    # Unix seconds when the platform saw it; server time when absent. Strict: a bool or a string is refused.
    ts: Annotated[float | None, Field(strict=True, allow_inf_nan=False)] = None


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
    paid: FiniteFloat = 0.0
    voice: bool = False  # transcribed from the viewer's voice message


class ProductEvent(_Event):
    type: Literal["product"]
    product_id: Annotated[str, Field(min_length=1, max_length=64)]


class RoomEvent(_Event):
    type: Literal["gift", "like", "enter", "follow", "order"]
    user: User | None = None
    product_id: str | None = None
    gift: str | None = None
    count: int = 1
    value: FiniteFloat = 0.0  # gift value in CNY, when the platform says


class SpeechEvent(_Event):
    type: Literal["speech"]
    state: Literal["start", "end"]


class StreamEvent(_Event):
    """The platform says the stream went live or ended (Bilibili LIVE/PREPARING, Douyin control status 3)."""

    type: Literal["stream"]
    state: Literal["start", "end"]


class ControlEvent(_Event):
    """The operator: pause or resume the co-host; in hold-for-review mode approve or reject a held reply
    (``id``: the reply id the overlay shows) or switch review on and off. ``by`` names who did it."""

    type: Literal["control"]
    action: Literal["pause", "resume", "approve", "reject", "review_hold", "review_auto"]
    id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    by: Annotated[str, Field(min_length=1, max_length=32)] | None = None


class VoiceEvent(_Event):
    """A viewer's voice message, the whole clip in base64 (larger clips: POST /rooms/R/voice)."""

    type: Literal["voice"]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    user: User
    format: Annotated[str, Field(min_length=1, max_length=16)]
    data: Annotated[str, Field(min_length=1, max_length=MAX_VOICE_FRAME_BYTES)]


Speaker = Literal["streamer", "guest"]


class AudioStartEvent(_Event):
    """Opens a continuous audio stream on this socket: binary PCM16 frames follow until audio_end."""

    type: Literal["audio_start"]
    speaker: Speaker = "streamer"
    format: Literal["pcm16"] = "pcm16"
    rate: int = 16_000

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: int) -> int:
        if v != 16_000:
            raise ValueError(f"rate {v} Hz is not taken: send 16000 Hz mono PCM16 (resample before sending)")
        return v


class AudioEndEvent(_Event):
    type: Literal["audio_end"]


class TranscriptEvent(_Event):
    """What someone on stage said: one finished utterance."""

    type: Literal["transcript"]
    speaker: Speaker = "streamer"
    text: Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
    start: FiniteFloat | None = None   # unix seconds the speech began and ended, when known
    end: FiniteFloat | None = None


Event = Annotated[ChatEvent | ProductEvent | RoomEvent | SpeechEvent | StreamEvent | ControlEvent | VoiceEvent
                  | AudioStartEvent | AudioEndEvent | TranscriptEvent, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(frame: str | bytes | dict[str, Any]) -> Event:
    """Parse one frame. Raises EventError naming what is wrong; never anything else."""
    if isinstance(frame, bytes | bytearray | memoryview):
        raise EventError("binary frames are not accepted; send JSON text")
    large = False
    if isinstance(frame, str):
        frame, large = _loads(frame)
    if not isinstance(frame, dict):
        raise EventError("an event must be a JSON object")
    _check_values(frame)
    if "type" not in frame:
        raise EventError("missing 'type'")
    if large and frame["type"] != "voice":
        raise EventError(f"frame is over the {MAX_FRAME_BYTES}-byte limit (only voice events may be larger)")
    try:
        return _ADAPTER.validate_python(frame)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"][1:]) or "type"
        raise EventError(f"invalid {_short(frame.get('type'))} event: {loc}: {_cut(first['msg'], 200)}") from None


# A JSON string, escapes included. The closing quote is optional so an unterminated string matches to the end of the
# frame at once: with it required, every later quote would start a fresh scan to the end (quadratic time).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _loads(text: str) -> tuple[Any, bool]:
    """The parsed frame, and whether it is over MAX_FRAME_BYTES (then it must turn out a voice event)."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: only a Python caller can hand us these, never a socket
        raise EventError("frame is not valid UTF-8 text") from None
    limit = MAX_VOICE_FRAME_BYTES if '"voice"' in text else MAX_FRAME_BYTES  # a cheap test before parsing
    if size > limit:
        raise EventError(f"frame of {size} bytes is over the {limit}-byte limit")
    if text.count("[") + text.count("{") > MAX_DEPTH:  # a frame with fewer brackets cannot be too deep
        _check_depth(text)
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_parse_constant), size > MAX_FRAME_BYTES
    except RecursionError:  # _check_depth makes this unreachable; kept so a recursion can never escape
        raise EventError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError is a ValueError
        raise EventError(f"not JSON: {e}") from None


def _check_depth(text: str) -> None:
    """Refuse nesting past MAX_DEPTH, counting brackets outside strings; no recursion, linear time."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise EventError(f"JSON nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1


def _parse_int(literal: str) -> int:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        raise EventError(f"integer of {digits} digits is too long (at most {MAX_INT_DIGITS})")
    return int(literal)


def _parse_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise EventError(f"number {_cut(literal)} is out of range; numbers must be finite")
    return number


def _parse_constant(name: str) -> float:
    raise EventError(f"{name} is not allowed; numbers must be finite")


def _check_values(event: dict[str, Any]) -> None:
    """The rules _loads applies while parsing, for an event handed over as a dict, plus valid Unicode in every
    string (a JSON escape such as "\\ud800" makes a lone surrogate, which cannot be sent back out as UTF-8).
    Iterative, so a deep or cyclic dict is refused rather than recursed into."""
    stack: list[tuple[Any, int]] = [(event, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise EventError(f"string {_short(value)} is not valid Unicode (a lone surrogate)") from None
        elif isinstance(value, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise EventError(f"JSON nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise EventError(f"{value} is not allowed; numbers must be finite")
        elif isinstance(value, int):
            if abs(value) >= 10**MAX_INT_DIGITS:
                raise EventError(f"integer too long (at most {MAX_INT_DIGITS} digits)")


def _cut(text: str, limit: int = 40) -> str:
    """Error messages echo input, and input may be 64 KiB: keep the first limit characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def _short(value: Any) -> str:
    return _cut(repr(value))
