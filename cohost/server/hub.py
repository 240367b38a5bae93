"""Rooms and the sockets attached to them.

Each room has one Room + RoomRunner, the ingest sockets that feed it (replies go back to them), and the
overlay pages that watch it. A socket that cannot keep up or has gone is dropped from the room; it never
blocks the room. A room answers from one shop's catalog; when a new version of it starts serving, the
room's runner is switched to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.websockets import WebSocket

from ..aio import cancel_and_wait, create_task
from ..config import Config
from ..dialog.room import Room, SendChat
from ..dialog.runner import RoomRunner, TalkingPoints
from ..engine import AnswerEngine
from ..knowledge.recorder import GapRecorder
from ..knowledge.service import CatalogService

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 2.0


class RoomShopMismatch(Exception):
    pass


class TooManyRooms(Exception):
    pass


class RoomCrowded(Exception):
    pass


SocketKind = Literal["ingest", "overlay"]


@dataclass
class RoomEntry:
    runner: RoomRunner
    shop: str
    ingest: set[WebSocket] = field(default_factory=set)
    overlays: set[WebSocket] = field(default_factory=set)
    last_state: dict[str, Any] | None = None
    last_used: float = field(default_factory=time.monotonic)  # a socket came or went

    def sockets(self, kind: SocketKind) -> set[WebSocket]:
        return self.ingest if kind == "ingest" else self.overlays

    def leave(self, kind: SocketKind, ws: WebSocket) -> None:
        self.sockets(kind).discard(ws)
        self.last_used = time.monotonic()

    @property
    def vacant(self) -> bool:
        """No socket attached and nothing queued, deciding or waiting to be sent."""
        return not self.ingest and not self.overlays and self.runner.idle


class Hub:
    def __init__(self, catalogs: CatalogService, config: Config, talking_points: TalkingPoints):
        self.catalogs = catalogs
        self.config = config
        self._talking_points = talking_points
        self.rooms: dict[str, RoomEntry] = {}
        self._lock = asyncio.Lock()
        self.gaps = GapRecorder(catalogs.store)
        self._tasks: set[asyncio.Task[None]] = set()
        catalogs.listen(self._catalog_swapped)

    async def start(self) -> None:
        create_task(self.gaps.run(), name="gap-recorder", tasks=self._tasks)
        create_task(self.catalogs.watch(), name="catalog-watch", tasks=self._tasks)

    @property
    def engine(self) -> AnswerEngine:
        """The default shop's engine."""
        return self.catalogs.engine(self.catalogs.default_shop)

    async def join(self, name: str, shop: str | None, kind: SocketKind, ws: WebSocket) -> RoomEntry:
        """Attach a socket to its room, made on first use, in one step: a room being joined is never
        closed to make way for another.

        StoreError for a shop with no catalog, RoomShopMismatch when the room already answers from
        another shop, TooManyRooms when server.max_rooms are in use, RoomCrowded when the room has
        server.max_connections_per_room ingest sockets."""
        shop = shop or self.catalogs.default_shop
        async with self._lock:
            entry = self.rooms.get(name)
            if entry is None:
                await self._make_way()
                engine = await self.catalogs.load(shop)
                room = Room(name, engine.catalog, self.config.dialog, max_chars=self.config.reply.max_chars)
                runner = RoomRunner(room, engine, on_chat=self._send_reply, on_overlay=self._push_overlay,
                                    talking_points=self._talking_points,
                                    on_gap=lambda r, gap, s=shop: self.gaps.add(s, r, gap))
                entry = self.rooms[name] = RoomEntry(runner, shop)
                await runner.start()
            elif entry.shop != shop:
                raise RoomShopMismatch(f"room {name!r} answers from shop {entry.shop!r}, not {shop!r}")
            if kind == "ingest" and len(entry.ingest) >= self.config.server.max_connections_per_room:
                raise RoomCrowded("too many connections to this room")
            entry.sockets(kind).add(ws)
            entry.last_used = time.monotonic()
            return entry

    async def _make_way(self) -> None:
        """At the cap, close the vacant room unused longest; refuse when none is vacant."""
        cap = self.config.server.max_rooms
        if len(self.rooms) < cap:
            return
        vacant = [(e.last_used, n) for n, e in self.rooms.items() if e.vacant]
        if not vacant:
            raise TooManyRooms(f"this server has {cap} rooms in use (server.max_rooms)")
        _, name = min(vacant)
        entry = self.rooms.pop(name)
        await entry.runner.stop()
        log.info("closed vacant room %s to make way for a new one", name)

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        for entry in list(self.rooms.values()):
            await entry.runner.stop()
        self.rooms.clear()
        await self.gaps.flush()

    def _catalog_swapped(self, shop: str, engine: AnswerEngine) -> None:
        for entry in self.rooms.values():
            if entry.shop == shop:
                entry.runner.swap_engine(engine)

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
