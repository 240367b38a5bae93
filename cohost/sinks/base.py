"""The sink interface: one object per place a room's chat replies can be posted.

A room has one reply owner at a time (the ingest socket or platform adapter that will post the reply
in the platform's chat). The runner hands it each reply and waits for the result; the room counts the
reply as answered only when the result says it was sent. A platform that answers "too fast" returns a
result with ``slow_down`` (and ``retry_after_s`` when it says how long), and the room's limiter slows.

    class MySink:
        name = "my-platform"

        async def send(self, reply: OutgoingReply) -> SendResult:
            ok = await post(reply.text)
            return SENT if ok else SendResult(False, "refused by the platform")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..gate import Cleared


@dataclass(frozen=True)
class OutgoingReply:
    """A chat reply the room decided to send, composed and within the platform's length limit."""

    room: str
    text: str
    in_reply_to: tuple[str, ...]  # the ids of the chat messages it answers, mentioned or not
    faq_id: str
    latency_ms: float             # from the first asker's message reaching us to now
    reply_id: int                 # the id of its ReplyHandle

    def __post_init__(self) -> None:
        # Every word posted in the shop's name passes the one gate; a path that skipped it fails here.
        if not isinstance(self.text, Cleared):
            raise TypeError("OutgoingReply.text must be Cleared text from cohost.gate.Gate.check")


@dataclass(frozen=True)
class SendResult:
    """What became of one send. A failure with ``retry_after_s`` may be tried again after that long
    (if its viewers are still within their deadline); ``slow_down`` asks the room to send less often."""

    ok: bool
    reason: str = ""
    retry_after_s: float | None = None
    slow_down: bool = False

    @property
    def retryable(self) -> bool:
        return not self.ok and self.retry_after_s is not None


SENT = SendResult(True, "sent")


class ReplySink(Protocol):
    """Posts a room's replies to one place. ``send`` must not raise for a refused reply: it returns
    a failed result with the reason (an exception is counted as a failure too)."""

    name: str

    async def send(self, reply: OutgoingReply) -> SendResult: ...


__all__ = ["SENT", "OutgoingReply", "ReplySink", "SendResult"]
