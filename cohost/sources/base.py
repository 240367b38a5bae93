"""The source interface: one object per place a room's events come from (a platform adapter, a relay).

A platform is two parts, after websockets and blivedm:

- a **codec**, sans-I/O: ``feed(data: bytes) -> list[Event | DecodeError]`` plus encoders for what the
  client sends (auth, heartbeat, ack). No sockets, no clock, no tasks: tested byte for byte on captures
  and fuzzed;
- a **client**, a thin asyncio loop around it: bootstrap, connect, authenticate, heartbeat, receive with
  a timeout, reconnect with capped exponential backoff and jitter, resume where the platform allows, and
  keep ``health`` current for the overlay and /healthz.

A client is a ``Source``; the hub runs it with ``run_source`` and its events go into the room like an
ingest socket's. Replies go out through the platform's ``ReplySink`` (cohost/sinks), when it has one.

    class MyPlatform:
        name = "my-platform"

        def __init__(self):
            self.health = SourceHealth(self.name)

        async def run(self, submit):
            while True:
                async for event in self._connect_and_read():   # reconnects inside
                    submit(event)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..events import Event

HealthState = Literal["connecting", "live", "reconnecting", "ended", "failed", "stopped"]


@dataclass
class SourceHealth:
    """How a source's connection is doing, in words for the streamer (``message``, Chinese) and the
    operator (``detail``)."""

    name: str
    state: HealthState = "connecting"
    attempt: int = 0               # reconnect attempts since the last good connection
    message: str = "连接中…"
    detail: str = ""
    since: float = field(default_factory=time.time)
    events: int = 0                # events delivered
    errors: int = 0                # bad packets or payloads, counted and skipped

    def set(self, state: HealthState, message: str, detail: str = "", *, attempt: int | None = None) -> None:
        if state != self.state:
            self.since = time.time()
        self.state, self.message, self.detail = state, message, detail
        if attempt is not None:
            self.attempt = attempt

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "attempt": self.attempt, "message": self.message,
                "detail": self.detail, "since": self.since, "events": self.events, "errors": self.errors}


Submit = Callable[[Event], bool]


class Source(Protocol):
    """Delivers a room's events with ``submit`` until cancelled, reconnecting by itself. ``run`` returns
    only when the source has ended for good (the stream ended, credentials refused)."""

    name: str
    health: SourceHealth

    async def run(self, submit: Submit) -> None: ...


@dataclass
class Backoff:
    """Capped exponential backoff with full jitter (AWS architecture blog): attempt n waits a random
    time in [0, min(cap, base * 2**n)], so a platform outage does not bring every client back at once."""

    base_s: float = 0.5
    cap_s: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        delay = self.rng.uniform(0, min(self.cap_s, self.base_s * 2 ** self.attempt))
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class SeenIds:
    """Message ids delivered recently, so what a platform re-sends after a reconnect is dropped."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._ids: dict[str, None] = {}

    def first_time(self, msg_id: str | int | None) -> bool:
        if msg_id is None or msg_id == "" or msg_id == 0:
            return True  # no id to go by: delivered
        key = str(msg_id)
        if key in self._ids:
            return False
        self._ids[key] = None
        if len(self._ids) > self.size:
            del self._ids[next(iter(self._ids))]
        return True


__all__ = ["Backoff", "HealthState", "SeenIds", "Source", "SourceHealth", "Submit"]
