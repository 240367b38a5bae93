"""The asyncio shell around a Room: it feeds events in, runs the models off the event loop, and
performs what the room decides (send a chat reply, push the overlay, generate talking points).

Four tasks per room:
- intake:    events in arrival order; chat messages are admitted and queued for deciding
- decider:   batches of queued messages through the answer engine in a worker thread
- scheduler: sleeps until the room's next due time (limiter slot, deadline, resume) and ticks it
- overlay:   pushes the overlay snapshot, at most every OVERLAY_MIN_INTERVAL_S

When messages arrive faster than the engine decides, the decider drops what is already past its
deadline and decides the newest first: old messages would miss their deadline anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..aio import Clock, SystemClock, cancel_and_wait, create_task
from ..engine import AnswerEngine, Message
from ..events import ChatEvent, Event
from .room import Action, OverlayChanged, Room, SendChat, StartTalkingPoints, Unanswered, WorkItem

log = logging.getLogger(__name__)

ChatSink = Callable[[str, SendChat], Awaitable[None] | None]
OverlaySink = Callable[[str, dict[str, Any]], Awaitable[None] | None]
TalkingPoints = Callable[[dict[str, Any], list[str]], Awaitable[list[str]]]
GapSink = Callable[[str, Unanswered], None]
OVERLAY_MIN_INTERVAL_S = 0.1  # coalesce overlay pushes: a burst of 1,000 msg/s is 10 pushes, not 1,000


async def _call(fn: Callable[..., Any], *args: Any) -> None:
    result = fn(*args)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        await result


class RoomRunner:
    def __init__(self, room: Room, engine: AnswerEngine, *, on_chat: ChatSink, on_overlay: OverlaySink,
                 talking_points: TalkingPoints, on_gap: GapSink | None = None, clock: Clock | None = None,
                 max_inbox: int = 100_000):
        self.room = room
        self.engine = engine
        self.clock = clock or SystemClock()
        self._on_chat = on_chat
        self._on_overlay = on_overlay
        self._talking_points = talking_points
        self._on_gap = on_gap
        self._inbox: asyncio.Queue[Event] = asyncio.Queue(max_inbox)
        self._to_decide: list[tuple[WorkItem, str | None]] = []
        self._decide_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._overlay_dirty = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._work: set[asyncio.Task[Any]] = set()
        self.deciding = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, coro in (("intake", self._intake()), ("decider", self._decider()),
                           ("scheduler", self._scheduler()), ("overlay", self._overlay_pusher())):
            create_task(coro, name=f"room-{self.room.name}-{name}", tasks=self._tasks)

    async def stop(self) -> None:
        """Stop all tasks; replies in flight are withdrawn. Safe to call twice."""
        if self.room.talking_handle is not None:
            self.room.talking_handle.interrupt("shutting down", self.clock.now())
        await cancel_and_wait(*self._tasks, *self._work)

    def swap_engine(self, engine: AnswerEngine) -> None:
        """Answer from a new catalog version from now on (synchronous: every room of a shop switches in
        the same event-loop step). A batch being decided is decided again on the new engine; replies
        promised whose answer has since changed are withdrawn by the room."""
        old = {e.id: e.answer for e in self.engine.entries}
        new = {e.id: e.answer for e in engine.entries}
        changed = {k for k, a in old.items() if new.get(k) != a}
        self.engine = engine
        actions = self.room.on_catalog_changed(engine.catalog, changed, new, self.clock.now())
        if actions:
            create_task(self._perform(actions), name=f"room-{self.room.name}-catalog", tasks=self._work)

    def submit(self, event: Event) -> bool:
        """Queue an event without waiting. False when the inbox is full (the event is counted as dropped)."""
        try:
            self._inbox.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.room.stats["received"] += 1
            self.room.stats["dropped_overload"] += 1
            return False

    @property
    def idle(self) -> bool:
        """Nothing queued, deciding or waiting to be sent."""
        return self._inbox.empty() and not self._to_decide and not self.deciding and not self.room.groups

    # -- tasks ---------------------------------------------------------------------------------------------

    async def _intake(self) -> None:
        while True:
            event = await self._inbox.get()
            now = self.clock.now()
            if isinstance(event, ChatEvent):
                item = self.room.admit(event, now)
                if item is not None:
                    self._to_decide.append((item, self.room.on_stage))
                    self._decide_ready.set()
            else:
                await self._perform(self.room.on_event(event, now))

    async def _decider(self) -> None:
        max_batch = self.room.config.max_batch
        while True:
            await self._decide_ready.wait()
            self._decide_ready.clear()
            while self._to_decide:
                now = self.clock.now()
                live = []
                for item, stage in self._to_decide:
                    if item.deadline <= now:
                        self.room.stats["dropped_deadline"] += 1  # stale work is dropped, never decided
                    else:
                        live.append((item, stage))
                # Newest first, paid first: under overload the oldest would miss their deadline anyway.
                live.sort(key=lambda x: (x[0].event.paid <= 0, -x[0].received))
                batch, self._to_decide = live[:max_batch], live[max_batch:]
                if not batch:
                    break
                messages = [Message(i.event.text, user=i.event.user.display, on_stage=s) for i, s in batch]
                self.deciding = len(batch)
                try:
                    while True:
                        engine = self.engine
                        decisions = await asyncio.to_thread(engine.answer_many, messages)
                        if self.engine is engine:
                            break
                        # A new catalog version came in while deciding: decide again rather than
                        # act on answers that may have changed.
                except Exception:
                    # A model failure costs this batch its answers, not the room its decider.
                    log.exception("deciding failed in room %s", self.room.name)
                    self.room.on_engine_error([item for item, _ in batch])
                    continue
                finally:
                    self.deciding = 0
                now = self.clock.now()
                for (item, _), d in zip(batch, decisions, strict=True):
                    await self._perform(self.room.on_decision(item, d, now))
                self._wake.set()

    async def _scheduler(self) -> None:
        while True:
            await self._perform(self.room.tick(self.clock.now()))
            wake = self.room.next_wakeup()
            self._wake.clear()
            timeout = None if wake is None else max(0.0, wake - self.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _overlay_pusher(self) -> None:
        while True:
            await self._overlay_dirty.wait()
            self._overlay_dirty.clear()
            try:
                await _call(self._on_overlay, self.room.name, self.room.snapshot(self.clock.now()))
            except Exception:
                log.exception("overlay push failed in room %s", self.room.name)
            await self.clock.sleep(OVERLAY_MIN_INTERVAL_S)

    # -- actions -------------------------------------------------------------------------------------------

    async def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendChat):
                try:
                    await _call(self._on_chat, self.room.name, action)
                except Exception:
                    log.exception("chat sink failed in room %s", self.room.name)
            elif isinstance(action, OverlayChanged):
                self._overlay_dirty.set()
            elif isinstance(action, StartTalkingPoints):
                self._start_generation(action)
            elif isinstance(action, Unanswered) and self._on_gap is not None:
                try:
                    self._on_gap(self.room.name, action)
                except Exception:
                    log.exception("gap sink failed in room %s", self.room.name)
        if actions:
            self._wake.set()

    def _start_generation(self, action: StartTalkingPoints) -> None:
        product = self.engine.catalog.product(action.product_id)
        if product is None:
            return
        card = {"id": product.id, "name": product.name, "price": product.price, "specs": dict(product.specs),
                "selling_points": list(product.selling_points)}
        handle = action.handle

        async def generate() -> None:
            handle.start()
            try:
                points = await self._talking_points(card, list(action.questions))
            except asyncio.CancelledError:
                if handle.interrupted_at is not None:
                    self.room.cancel_latencies_ms.append((self.clock.now() - handle.interrupted_at) * 1000)
                raise
            await self._perform(self.room.on_talking_points(handle, points, self.clock.now()))

        task = create_task(generate(), name=f"room-{self.room.name}-talking-points-{handle.id}", tasks=self._work)
        handle.on_interrupt(lambda _h: task.cancel())
