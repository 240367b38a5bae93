"""The asyncio shell around a Room: it feeds events in, runs the models off the event loop, and
performs what the room decides (send a chat reply, push the overlay, generate talking points).

Four tasks per room:
- intake:    events in arrival order; chat messages are admitted and queued for deciding
- decider:   triages queued messages and runs encoder calls, both in worker threads
- scheduler: sleeps until the room's next due time (limiter slot, deadline, resume) and ticks it
- overlay:   pushes the overlay snapshot, at most every OVERLAY_MIN_INTERVAL_S
and one task per chat reply being sent: it hands the reply to the sink, waits (at most SEND_TIMEOUT_S)
for the result and reports it to the room. The room never waits for a sink; withdrawing a reply cancels
its send.

When messages arrive faster than the engine decides, the decider drops what is already past its
deadline, triages the newest first (old messages would miss their deadline anyway) and gives the
encoder to the likeliest questions first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..aio import Clock, SystemClock, cancel_and_wait, create_task, to_background_thread
from ..engine import AnswerEngine, Decision, Message, Pending
from ..events import ChatEvent, Event
from ..sinks.base import SENT, OutgoingReply, SendResult
from .room import Action, Audit, OverlayChanged, Room, SendChat, StartTalkingPoints, Unanswered, WorkItem

log = logging.getLogger(__name__)

# Posts one reply and says how it went; a sink that returns None reports a send.
ChatSink = Callable[[str, OutgoingReply], Awaitable[SendResult | None] | SendResult | None]
SEND_TIMEOUT_S = 5.0
OverlaySink = Callable[[str, dict[str, Any]], Awaitable[None] | None]
TalkingPoints = Callable[[dict[str, Any], list[str]], Awaitable[list[str]]]
GapSink = Callable[[str, Unanswered], None]
AuditSink = Callable[[str, Audit], None]  # must not block: the hub queues rows for a writer thread
OVERLAY_MIN_INTERVAL_S = 0.1
# Encoder work for messages less likely than this to be questions (text alone) runs at low CPU priority:
# on the sample traffic 97 % of the messages that got an answer were above it.
LIKELY_QUESTION = 0.1  # coalesce overlay pushes: a burst of 1,000 msg/s is 10 pushes, not 1,000


def _is_background(p: Pending) -> bool:
    return not p.urgent and p.p_question < LIKELY_QUESTION


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    result = fn(*args)
    if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
        return await result
    return result


class RoomRunner:
    def __init__(self, room: Room, engine: AnswerEngine, *, on_chat: ChatSink, on_overlay: OverlaySink,
                 talking_points: TalkingPoints, on_gap: GapSink | None = None, on_audit: AuditSink | None = None,
                 clock: Clock | None = None, max_inbox: int = 100_000):
        self.room = room
        self.engine = engine
        self.clock = clock or SystemClock()
        self._on_chat = on_chat
        self._on_overlay = on_overlay
        self._talking_points = talking_points
        self._on_gap = on_gap
        self._on_audit = on_audit
        self._inbox: asyncio.Queue[Event] = asyncio.Queue(max_inbox)
        self._to_decide: list[tuple[WorkItem, str | None]] = []              # waiting for triage
        self._to_encode: list[tuple[Pending, list[WorkItem]]] = []          # waiting for the encoder
        self._triaging: set[asyncio.Task[Any]] = set()
        self._encoding: set[asyncio.Task[Any]] = set()
        self._encoding_background: set[asyncio.Task[Any]] = set()
        self._decide_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._overlay_dirty = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._work: set[asyncio.Task[Any]] = set()
        self._sends: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        for name, coro in (("intake", self._intake()), ("decider", self._decider()),
                           ("scheduler", self._scheduler()), ("overlay", self._overlay_pusher())):
            create_task(coro, name=f"room-{self.room.name}-{name}", tasks=self._tasks)

    async def stop(self) -> None:
        """Stop all tasks; replies in flight are withdrawn. Safe to call twice."""
        if self.room.talking_handle is not None:
            self.room.talking_handle.interrupt("shutting down", self.clock.now())
        for flight in list(self.room.sending.values()):
            flight.group.handle.interrupt("shutting down", self.clock.now())
        await cancel_and_wait(*self._tasks, *self._work, *self._sends)

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
        return (self._inbox.empty() and not self._to_decide and not self._to_encode and not self._triaging
                and not self._encoding and not self.room.groups and not self.room.sending and not self._sends)

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
        """Two stages, both off the event loop. Triage decides whatever needs no encoder pass (repeats,
        greetings, texts seen before) in batches; what is left waits for an encoder slot, likeliest
        question first. Up to ``embedder.workers`` encoder calls run at once, each short, so a new
        question never waits behind a long batch. Messages unlikely to be questions take at most one of
        those calls at a time, at low CPU priority: a likely question always finds a free one."""
        while True:
            await self._decide_ready.wait()
            self._decide_ready.clear()
            self._drop_expired()
            workers = max(1, self.engine.embedder.workers)
            while self._to_encode and len(self._encoding) < workers:
                self._sort_encode()
                background = _is_background(self._to_encode[0][0])
                if background and workers > 1 and self._encoding_background:
                    break
                n = self.room.config.max_encode
                batch, self._to_encode = self._to_encode[:n], self._to_encode[n:]
                task = self._start(self._encode(batch), "encode", self._encoding)
                if background:
                    self._encoding_background.add(task)
                    task.add_done_callback(self._encoding_background.discard)
            if self._to_decide and not self._triaging:
                self._start(self._triage(self._next_triage()), "triage", self._triaging)

    def _start(self, coro: Coroutine[Any, Any, None], what: str, into: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
        task = create_task(coro, name=f"room-{self.room.name}-{what}", tasks=self._work)
        into.add(task)
        task.add_done_callback(into.discard)
        task.add_done_callback(lambda _t: self._decide_ready.set())
        return task

    def _drop_expired(self) -> None:
        """Stale work is dropped, never decided: it would miss its deadline anyway."""
        now = self.clock.now()
        live = [(i, s) for i, s in self._to_decide if i.deadline > now]
        self.room.stats["dropped_deadline"] += len(self._to_decide) - len(live)
        self._to_decide = live
        # Waiting for the encoder, a text is dropped once all who sent it are past their deadline; one
        # still in time keeps the others with it (their decisions must stay aligned with its messages),
        # and the room drops a late reply itself.
        kept = []
        for p, items in self._to_encode:
            if any(i.deadline > now for i in items):
                kept.append((p, items))
            else:
                self.room.stats["dropped_deadline"] += len(items)
        self._to_encode = kept

    def _next_triage(self) -> list[tuple[WorkItem, str | None]]:
        # Newest first, paid first: under overload the oldest would miss their deadline anyway.
        self._to_decide.sort(key=lambda x: (x[0].event.paid <= 0, -x[0].received))
        batch = self._to_decide[:self.room.config.max_batch]
        self._to_decide = self._to_decide[self.room.config.max_batch:]
        return batch

    def _sort_encode(self) -> None:
        self._to_encode.sort(key=lambda x: (not x[0].urgent, -x[0].p_question, -max(i.received for i in x[1])))

    async def _triage(self, batch: list[tuple[WorkItem, str | None]]) -> None:
        messages = [Message(i.event.text, user=i.event.user.display, on_stage=s, urgent=i.event.paid > 0)
                    for i, s in batch]
        engine = self.engine
        try:
            decisions, pending = await asyncio.to_thread(engine.triage, messages)
        except Exception:
            # A model failure costs this batch its answers, not the room its decider.
            log.exception("deciding failed in room %s", self.room.name)
            self.room.on_engine_error([item for item, _ in batch])
            return
        if self.engine is not engine:
            # A new catalog version came in while deciding: decide again rather than act on answers
            # that may have changed.
            self._to_decide.extend(batch)
            return
        for p in pending:
            self._to_encode.append((p, [batch[i][0] for i in p.indices]))
        await self._apply([(item, d) for (item, _), d in zip(batch, decisions, strict=True) if d is not None])

    async def _encode(self, batch: list[tuple[Pending, list[WorkItem]]]) -> None:
        engine = batch[0][0].engine
        pending = [p for p, _ in batch]
        if engine is not self.engine:
            return self._triage_again(batch)
        try:
            if _is_background(pending[0]):  # the batch is sorted: its first is its likeliest question
                decided = await to_background_thread(engine.finish, pending, threads=engine.embedder.workers)
            else:
                decided = await asyncio.to_thread(engine.finish, pending)
        except Exception:
            log.exception("deciding failed in room %s", self.room.name)
            self.room.on_engine_error([i for _, items in batch for i in items])
            return None
        if engine is not self.engine:
            return self._triage_again(batch)
        await self._apply([pair for (_, items), ds in zip(batch, decided, strict=True)
                           for pair in zip(items, ds, strict=True)])
        return None

    def _triage_again(self, batch: list[tuple[Pending, list[WorkItem]]]) -> None:
        """The catalog changed before or while these were encoded: decide them again on the new engine."""
        self._to_decide.extend((i, p.key[1]) for p, items in batch for i in items)

    async def _apply(self, decided: list[tuple[WorkItem, Decision]]) -> None:
        now = self.clock.now()
        for item, d in decided:
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
                self._start_send(action)
            elif isinstance(action, OverlayChanged):
                self._overlay_dirty.set()
            elif isinstance(action, StartTalkingPoints):
                self._start_generation(action)
            elif isinstance(action, Unanswered) and self._on_gap is not None:
                try:
                    self._on_gap(self.room.name, action)
                except Exception:
                    log.exception("gap sink failed in room %s", self.room.name)
            elif isinstance(action, Audit) and self._on_audit is not None:
                try:
                    self._on_audit(self.room.name, action)
                except Exception:
                    log.exception("audit sink failed in room %s", self.room.name)
        if actions:
            self._wake.set()

    def _start_send(self, action: SendChat) -> None:
        reply = OutgoingReply(self.room.name, action.text, action.in_reply_to, action.faq_id, action.latency_ms,
                              action.handle.id)
        handle = action.handle

        call: asyncio.Future[Any] | None = None  # the sink's call, once send() has started it

        async def send() -> None:
            nonlocal call
            call = asyncio.ensure_future(_call(self._on_chat, self.room.name, reply))
            try:
                result = await asyncio.wait_for(call, SEND_TIMEOUT_S)
            except TimeoutError:
                result = SendResult(False, f"the sink did not answer within {SEND_TIMEOUT_S:g} s")
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.exception("chat sink failed in room %s", self.room.name)
                result = SendResult(False, f"sink error: {type(e).__name__}")
            if result is None:
                result = SENT
            elif not isinstance(result, SendResult):
                result = SendResult(False, f"the sink returned {type(result).__name__}, not a SendResult")
            await self._perform(self.room.on_sent(handle, result, self.clock.now()))
            self._wake.set()

        def settle_withdrawn(_task: asyncio.Task[None]) -> None:
            # Withdrawn and cancelled, so send() reported nothing: the room still hears what became of it. A
            # sink that had already posted it (the cancel came a moment late) says so, and it counts as said;
            # cancelled mid-post, or before send() ran at all, it was not.
            if handle.id not in self.room.withdrawing:
                return
            result = None
            if call is not None and call.done() and not call.cancelled() and call.exception() is None:
                result = call.result() or SENT
            if not isinstance(result, SendResult):
                result = SendResult(False, "withdrawn before the sink posted it")
            actions = self.room.on_sent(handle, result, self.clock.now())
            if actions:
                create_task(self._perform(actions), name=f"room-{self.room.name}-withdrawn", tasks=self._work)

        task = create_task(send(), name=f"room-{self.room.name}-send-{handle.id}", tasks=self._sends)
        task.add_done_callback(settle_withdrawn)
        handle.on_interrupt(lambda _h: task.cancel())

    def _start_generation(self, action: StartTalkingPoints) -> None:
        product = self.engine.catalog.product(action.product_id)
        if product is None:
            return
        card = {"id": product.id, "name": product.name, "price": product.price, "specs": dict(product.specs),
                "selling_points": list(product.selling_points), "recently_said": list(action.said)}
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
