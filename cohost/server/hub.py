"""Rooms and what is attached to them.

Each room has one Room + RoomRunner, the sources that feed it (ingest sockets, platform adapters), the
overlay pages that watch it, and one reply owner: the source attached longest that can post replies
(an ingest socket, or an adapter's sink). Replies go to the owner only, so two relays in one room never
post the same reply twice; when the owner leaves, the next one takes over and a reply in flight is
tried again on it while its viewers are within their deadline.

Every socket has a SocketWriter (writer.py): the room never waits for a socket, and a socket that cannot
keep up is closed with a code and reason, never dropped silently. Building a shop's engine happens
outside the hub's lock (CatalogService.load is single-flight per shop): a join waits only for its own
shop, and only while rooms change is the lock held.

Caps: a room counts towards ``server.max_rooms`` while a source is attached (an overlay alone counts
only when the overlay token is set, so pages that anyone can open cannot squat rooms); overlay-only rooms
are capped by ``server.max_overlay_only_rooms``; each room takes ``server.max_connections_per_room``
sources and ``server.max_overlays_per_room`` overlays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.websockets import WebSocket

from ..aio import cancel_and_wait, create_task
from ..config import Config
from ..dialog.room import Room
from ..dialog.runner import RoomRunner, TalkingPoints
from ..engine import AnswerEngine
from ..gate import Gate
from ..hearing.ears import Hearing
from ..knowledge.audit import AuditLog
from ..knowledge.gap_report import GapReport
from ..knowledge.moderation import Moderation
from ..knowledge.recorder import AuditRecorder, GapRecorder
from ..knowledge.service import CatalogService
from ..sinks.base import SENT, OutgoingReply, ReplySink, SendResult
from ..sources.base import Source as EventSource
from ..sources.base import SourceHealth
from .writer import SocketWriter

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 2.0
WRITER_QUEUE = 64
# A reply whose owner is gone is tried again this soon: a relay reconnecting takes about this long.
NO_OWNER_RETRY_S = 1.0
HEALTH_POLL_S = 0.5


class RoomShopMismatch(Exception):
    pass


class TooManyRooms(Exception):
    pass


class RoomCrowded(Exception):
    pass


SocketKind = Literal["ingest", "overlay"]


class SocketSink:
    """Posts a room's replies as ``{"type": "reply", ...}`` frames on the ingest socket that owns the room;
    the relay on the other end posts them to the platform. Sent = written to the connection."""

    def __init__(self, writer: SocketWriter):
        self.writer = writer
        self.name = writer.name

    async def send(self, reply: OutgoingReply) -> SendResult:
        ids = reply.in_reply_to
        frame = json.dumps({"type": "reply", "room": reply.room, "in_reply_to": ids[0] if len(ids) == 1 else list(ids),
                            "text": reply.text, "faq_id": reply.faq_id, "latency_ms": round(reply.latency_ms, 1)},
                           ensure_ascii=False)
        sent = self.writer.send(frame)
        try:
            ok = await sent
        except asyncio.CancelledError:  # withdrawn (catalog changed, paused): it must not go out later
            self.writer.withdraw(sent)
            raise
        if ok:
            return SENT
        why = self.writer.close_reason or "disconnected"
        return SendResult(False, f"reply socket closed ({why})", retry_after_s=0.2)


@dataclass
class Source:
    """Something feeding a room: an ingest socket or a platform adapter, with the sink that posts its
    replies (None for a source that only listens)."""

    name: str
    sink: ReplySink | None
    writer: SocketWriter | None = None
    health: SourceHealth | None = None  # a platform adapter's connection state


@dataclass
class RoomEntry:
    runner: RoomRunner
    shop: str
    ingest: list[Source] = field(default_factory=list)      # in the order they joined
    overlays: list[SocketWriter] = field(default_factory=list)
    last_state: dict[str, Any] | None = None
    last_used: float = field(default_factory=time.monotonic)  # something came or went
    closed_slow: int = 0                                      # sockets closed for not keeping up

    def with_sources(self, state: dict[str, Any]) -> dict[str, Any]:
        """An overlay state with the connection state of the room's platform adapters."""
        return {**state, "sources": [s.health.as_dict() for s in self.ingest if s.health is not None]}

    def overlay_state(self) -> dict[str, Any]:
        return self.with_sources(self.runner.room.snapshot(self.runner.clock.now()))

    @property
    def owner(self) -> Source | None:
        """Who posts this room's replies: the source attached longest that can."""
        return next((s for s in self.ingest if s.sink is not None), None)

    def leave(self, what: Source | SocketWriter) -> None:
        if isinstance(what, Source):
            if what in self.ingest:
                self.ingest.remove(what)
        elif what in self.overlays:
            self.overlays.remove(what)
        self.last_used = time.monotonic()

    @property
    def vacant(self) -> bool:
        """Nothing attached and nothing queued, deciding or being sent."""
        return not self.ingest and not self.overlays and self.runner.idle


class Hub:
    def __init__(self, catalogs: CatalogService, config: Config, talking_points: TalkingPoints):
        self.catalogs = catalogs
        self.config = config
        self._talking_points = talking_points
        self.rooms: dict[str, RoomEntry] = {}
        self._lock = asyncio.Lock()
        self.gaps = GapRecorder(catalogs.store)
        # Follows what the recorder writes and keeps the clustered report that /admin reads.
        self.gap_report = GapReport.of(catalogs, gap_days=config.store.gap_days)
        self.hearing = Hearing(config.asr, config.resolve(config.cache_dir), config.base_dir)
        self.audit_log = AuditLog(catalogs.store.path)
        self.audit = AuditRecorder(self.audit_log, keep_viewer_s=config.store.gap_days * 86_400)
        self.moderation = Moderation(catalogs.store.path)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._moderation: dict[str, tuple[Gate, set[str], set[str], int | None]] = {}
        catalogs.listen(self._catalog_swapped)
        self.moderation.listen(self._moderation_changed)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        shop = self.catalogs.default_shop
        self._moderation[shop] = await asyncio.to_thread(self._read_moderation, shop)
        create_task(self.audit.run(), name="audit-recorder", tasks=self._tasks)
        create_task(self.gaps.run(), name="gap-recorder", tasks=self._tasks)
        self.gap_report.start()
        create_task(self.catalogs.watch(), name="catalog-watch", tasks=self._tasks)
        create_task(self.hearing.start(), name="asr-preload", tasks=self._tasks)

    @property
    def engine(self) -> AnswerEngine:
        """The default shop's engine."""
        return self.catalogs.engine(self.catalogs.default_shop)

    def _overlay_token_set(self) -> bool:
        return bool(os.environ.get(self.config.server.overlay_token_env))

    def _counts(self, entry: RoomEntry) -> bool:
        """Whether a room holds one of the server.max_rooms places: all do but those watched by overlays
        alone while anyone may open an overlay (no overlay token)."""
        return bool(entry.ingest) or not entry.overlays or self._overlay_token_set()

    # -- joining ---------------------------------------------------------------------------------------

    async def join(self, name: str, shop: str | None, kind: SocketKind, ws: WebSocket
                   ) -> tuple[RoomEntry, Source | SocketWriter]:
        """Attach a websocket to its room, made on first use; returns (entry, what to pass to leave()).

        StoreError for a shop with no catalog, RoomShopMismatch when the room already answers from
        another shop, TooManyRooms when the caps are reached, RoomCrowded when the room is full."""
        peer = f"{ws.client.host}:{ws.client.port}" if ws.client else f"{id(ws):x}"
        writer = SocketWriter(ws, name=f"{kind} {peer}", max_queue=WRITER_QUEUE,
                              send_timeout_s=SEND_TIMEOUT_S, latest_only=kind == "overlay")
        if kind == "ingest":
            what: Source | SocketWriter = Source(writer.name, None, writer)
            what.sink = SocketSink(writer)
        else:
            what = writer
        entry = await self._attach(name, shop, kind, what)
        writer.on_closed = lambda w, e=entry, x=what: self._closed_slow(e, x, w)
        writer.start()
        return entry, what

    async def attach(self, name: str, shop: str | None, source_name: str, sink: ReplySink | None
                     ) -> tuple[RoomEntry, Source]:
        """Attach a platform adapter (or any in-process source) to a room. Feed events with
        ``entry.runner.submit(event)``; call ``entry.leave(source)`` when it stops."""
        source = Source(source_name, sink)
        return await self._attach(name, shop, "ingest", source), source

    async def _attach(self, name: str, shop: str | None, kind: SocketKind, what: Source | SocketWriter
                      ) -> RoomEntry:
        shop = shop or self.catalogs.default_shop
        engine = await self.catalogs.load(shop)  # may build for seconds: outside the lock
        # The shop's gate and blocklist: read from SQLite once per shop, outside the lock, then kept
        # current by Moderation.listen.
        if shop not in self._moderation:
            self._moderation[shop] = await asyncio.to_thread(self._read_moderation, shop)
        cfg = self.config.server
        async with self._lock:
            entry = self.rooms.get(name)
            if entry is not None and entry.shop != shop:
                raise RoomShopMismatch(f"room {name!r} answers from shop {entry.shop!r}, not {shop!r}")
            if kind == "ingest" and entry is not None and len(entry.ingest) >= cfg.max_connections_per_room:
                raise RoomCrowded("too many connections to this room")
            if kind == "overlay" and entry is not None and len(entry.overlays) >= cfg.max_overlays_per_room:
                raise RoomCrowded(f"too many overlays on this room ({cfg.max_overlays_per_room})")
            counted_after = kind == "ingest" or self._overlay_token_set() or (entry is not None and entry.ingest)
            if counted_after and (entry is None or not self._counts(entry)):
                await self._make_way(keep=name)
            if not counted_after and (entry is None or not entry.overlays):
                waiting = sum(1 for e in self.rooms.values() if not self._counts(e))
                if waiting >= cfg.max_overlay_only_rooms:
                    raise TooManyRooms(f"{cfg.max_overlay_only_rooms} rooms have an overlay and no source "
                                       "(server.max_overlay_only_rooms)")
            if entry is None:
                gate, ids, names, per_min = self._moderation[shop]
                room = Room(name, engine.catalog, self.config.dialog, max_chars=self.config.reply.max_chars,
                            mention=self.config.reply.mention, gate=gate)
                room.set_blocklist(ids, names)
                room.set_viewer_limit(per_min)
                runner = RoomRunner(room, engine, on_chat=self._send_reply, on_overlay=self._push_overlay,
                                    talking_points=self._talking_points,
                                    on_gap=lambda r, gap, s=shop: self.gaps.add(s, r, gap),
                                    on_audit=lambda r, a, s=shop: self.audit.add(s, r, a))
                entry = self.rooms[name] = RoomEntry(runner, shop)
                self.hearing.listen_for(name, lambda r=runner: r.room.listening_words(r.clock.now()))
                await runner.start()
            if isinstance(what, Source):
                entry.ingest.append(what)
            else:
                entry.overlays.append(what)
            entry.last_used = time.monotonic()
            return entry

    async def _make_way(self, keep: str) -> None:
        """At server.max_rooms, close the vacant room unused longest; refuse when none is vacant."""
        cap = self.config.server.max_rooms
        while sum(1 for n, e in self.rooms.items() if n != keep and self._counts(e)) >= cap:
            vacant = [(e.last_used, n) for n, e in self.rooms.items() if n != keep and e.vacant]
            if not vacant:
                raise TooManyRooms(f"this server has {cap} rooms in use (server.max_rooms)")
            _, name = min(vacant)
            entry = self.rooms.pop(name)
            self.hearing.forget(name)
            await entry.runner.stop()
            log.info("closed vacant room %s to make way for a new one", name)

    async def run_source(self, name: str, shop: str | None, source: EventSource, sink: ReplySink | None) -> None:
        """Run a platform adapter into a room until it ends or is cancelled; its replies go to sink (when
        it can post), its connection state to the overlay and /healthz."""
        entry, attached = await self.attach(name, shop, source.name, sink)
        attached.health = source.health
        watcher = asyncio.create_task(self._watch_health(name, source.health), name=f"health-{name}")
        try:
            await source.run(entry.runner.submit)
        finally:
            watcher.cancel()
            entry.leave(attached)
            if entry.last_state is not None:
                await self._push_overlay(name, entry.last_state)

    async def _watch_health(self, name: str, health: SourceHealth) -> None:
        """The overlay hears of a connection change within HEALTH_POLL_S (adapters only set fields)."""
        seen = None
        while True:
            now = (health.state, health.attempt, health.message)
            entry = self.rooms.get(name)
            if now != seen and entry is not None:  # before the room's first push too
                await self._push_overlay(name, entry.last_state or entry.overlay_state())
            seen = now
            await asyncio.sleep(HEALTH_POLL_S)

    def _closed_slow(self, entry: RoomEntry, what: Source | SocketWriter, writer: SocketWriter) -> None:
        """A socket closed for not keeping up leaves its room at once: it holds no place and no ownership."""
        entry.closed_slow += 1
        entry.leave(what)

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        await self.gap_report.close()
        for entry in list(self.rooms.values()):
            await entry.runner.stop()
            for writer in [*entry.overlays, *(s.writer for s in entry.ingest if s.writer is not None)]:
                await writer.stop()
        self.rooms.clear()
        await self.gaps.flush()
        await self.audit.flush()
        await asyncio.to_thread(self.hearing.close)

    def _read_moderation(self, shop: str) -> tuple[Gate, set[str], set[str], int | None]:
        """The shop's gate (packaged words plus the owner's), blocklist (user ids, names) and per-viewer
        limit (None: config.yaml's)."""
        words = self.moderation.words(shop)
        blocked = self.moderation.blocklist(shop)
        ids = {b["value"] for b in blocked if b["kind"] == "user_id"}
        names = {b["value"] for b in blocked if b["kind"] == "name"}
        per_min = self.moderation.limits(shop)["viewer_max_per_min"]
        return Gate().with_words(words["banned"], words["allowed"]), ids, names, per_min

    def _moderation_changed(self, shop: str) -> None:
        """An owner changed the blocklist or the word list (on whatever thread wrote it): the shop's
        rooms read the new settings, applied on the event loop."""
        if self._loop is None or self._loop.is_closed():
            return
        try:
            moderation = self._read_moderation(shop)
        except Exception:
            log.exception("could not read the moderation settings of shop %s", shop)
            return

        def apply() -> None:
            self._moderation[shop] = moderation
            gate, ids, names, per_min = moderation
            for entry in self.rooms.values():
                if entry.shop == shop:
                    entry.runner.room.set_gate(gate)
                    entry.runner.room.set_blocklist(ids, names)
                    entry.runner.room.set_viewer_limit(per_min)

        try:
            if asyncio.get_running_loop() is self._loop:
                apply()
                return
        except RuntimeError:
            pass
        self._loop.call_soon_threadsafe(apply)

    def _catalog_swapped(self, shop: str, engine: AnswerEngine) -> None:
        for entry in self.rooms.values():
            if entry.shop == shop:
                entry.runner.swap_engine(engine)

    # -- output ----------------------------------------------------------------------------------------

    async def _send_reply(self, room: str, reply: OutgoingReply) -> SendResult:
        entry = self.rooms.get(room)
        owner = entry.owner if entry is not None else None
        if owner is None or owner.sink is None:
            return SendResult(False, "no source connected that can post replies", retry_after_s=NO_OWNER_RETRY_S)
        return await owner.sink.send(reply)

    async def _push_overlay(self, room: str, state: dict[str, Any]) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        state = entry.with_sources(state)
        entry.last_state = state
        if entry.overlays:
            frame = json.dumps(state, ensure_ascii=False)
            for writer in list(entry.overlays):
                writer.send(frame)

    def stats(self, name: str) -> dict[str, Any] | None:
        entry = self.rooms.get(name)
        if entry is None:
            return None
        r = entry.runner.room
        owner = entry.owner
        return {"room": name, "shop": entry.shop, "stats": dict(r.stats), "pending": r.pending_count(),
                "idle": entry.runner.idle, "cancel_latencies_ms": sorted(r.cancel_latencies_ms),
                "voice_latencies_ms": sorted(r.voice_latencies_ms),
                "send_failures": dict(r.send_failures), "send_retries": dict(r.retry_reasons),
                "reply_owner": owner.name if owner else None,
                "sources": len(entry.ingest), "overlays": len(entry.overlays),
                "closed_slow": entry.closed_slow, "min_interval_s": r.limiter.min_interval_s,
                "source_health": [s.health.as_dict() for s in entry.ingest if s.health is not None]}


__all__ = ["Hub", "RoomCrowded", "RoomEntry", "RoomShopMismatch", "SocketKind", "SocketSink", "Source",
           "TalkingPoints", "TooManyRooms"]
