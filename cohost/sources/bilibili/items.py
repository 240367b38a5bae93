"""What the codec hands the client besides events of the one model (cohost.events)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...events import Event


@dataclass(frozen=True)
class DecodeError:
    """Something in a message that could not be read; counted and skipped. ``reason`` is a short stable
    name (for counters), ``detail`` says what exactly, for the operator's log."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class AuthReply:
    """op 8: 0 = accepted; -101 = the token is no good (bootstrap again)."""

    code: int

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass(frozen=True)
class HeartbeatReply:
    """op 3: the room's popularity figure (deprecated by Bilibili, still sent); proof the link is alive."""

    popularity: int


@dataclass(frozen=True)
class StreamStatus:
    """LIVE (the stream started) or PREPARING / CUT_OFF (it ended). The client passes it on to the room
    as a StreamEvent and shows it in its health ("ended")."""

    live: bool
    cmd: str
    room_id: int | None = None


@dataclass(frozen=True)
class Notice:
    """A command that is no event: room figures (WATCHED_CHANGE, LIKE_INFO_V3_UPDATE...), shares, and
    commands we do not handle (``handled`` False; Bilibili has hundreds and adds more)."""

    cmd: str
    data: Any = field(default=None, compare=False)
    handled: bool = True


Item = Event | AuthReply | HeartbeatReply | StreamStatus | Notice | DecodeError


def item_cmd(item: Item) -> str | None:
    """The Bilibili cmd an item came from (None for control items and errors)."""
    if isinstance(item, Notice | StreamStatus):
        return item.cmd
    if isinstance(item, DecodeError | AuthReply | HeartbeatReply):
        return None
    return getattr(item, "cmd", None)


__all__ = ["AuthReply", "DecodeError", "HeartbeatReply", "Item", "Notice", "StreamStatus", "item_cmd"]
