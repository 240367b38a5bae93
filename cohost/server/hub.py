"""Rooms and the sockets attached to them.

Each room has one Room + RoomRunner, the ingest sockets that feed it (replies go back to them), and the
overlay pages that watch it. A socket that cannot keep up or has gone is dropped from the room; it never
blocks the room.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from ..config import Config
from ..dialog.room import Room, SendChat
from ..dialog.runner import RoomRunner, TalkingPoints
from ..engine import AnswerEngine

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 2.0


@dataclass
class RoomEntry:
    runner: RoomRunner
    ingest: set[WebSocket] = field(default_factory=set)
    overlays: set[WebSocket] = field(default_factory=set)
    last_state: dict[str, Any] | None = None


class Hub:
    def __init__(self, engine: AnswerEngine, config: Config, talking_points: TalkingPoints):
        self.engine = engine
        self.config = config
        self._talking_points = talking_points
        self.rooms: dict[str, RoomEntry] = {}
        self._lock = asyncio.Lock()

    async def room(self, name: str) -> RoomEntry:
        async with self._lock:
            entry = self.rooms.get(name)
            if entry is None:
                room = Room(name, self.engine.catalog, self.config.dialog, max_chars=self.config.reply.max_chars)
                runner = RoomRunner(room, self.engine, on_chat=self._send_reply, on_overlay=self._push_overlay,
                                    talking_points=self._talking_points)
                entry = self.rooms[name] = RoomEntry(runner)
                await runner.start()
            return entry

    async def close(self) -> None:
        for entry in list(self.rooms.values()):
            await entry.runner.stop()
        self.rooms.clear()

    async def _send_reply(self, room: str, action: SendChat) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        ids = action.in_reply_to
        in_reply_to: str | list[str] = ids[0] if len(ids) == 1 else list(ids)
        frame = json.dumps({"type": "reply", "room": room, "in_reply_to": in_reply_to, "text": action.text,
                            "faq_id": action.faq_id, "latency_ms": round(action.latency_ms, 1)}, ensure_ascii=False)
        await self._broadcast(entry.ingest, frame)

    async def _push_overlay(self, room: str, state: dict[str, Any]) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        entry.last_state = state
        await self._broadcast(entry.overlays, json.dumps(state, ensure_ascii=False))

    async def _broadcast(self, sockets: set[WebSocket], frame: str) -> None:
        if not sockets:
            return
        targets = list(sockets)
        results = await asyncio.gather(*(asyncio.wait_for(ws.send_text(frame), SEND_TIMEOUT_S) for ws in targets),
                                       return_exceptions=True)
        for ws, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                sockets.discard(ws)  # gone or too slow: the room does not wait for it
