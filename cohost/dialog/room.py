"""The dialog loop of one room, as a state machine on explicit time (no I/O, no sleeping).

    admit(chat, now)                 → a WorkItem to decide (or None: stale on arrival)
    on_decision(item, decision, now) → queue a chat reply / count a question on the overlay
    on_event(event, now)             → product change, streamer speech and transcripts, pause, gifts
    tick(now)                        → the replies to send now, expirations, resumptions
    on_sent(handle, result, now)     → the sink's report: answered, failed, or try again later
    snapshot(now)                    → what the teleprompter overlay shows

The asyncio shell (runner.py) calls these and performs the returned actions. Because time is a
parameter, the tests replay minutes of a room in microseconds, deterministically.

Every admitted chat message ends in exactly one outcome counted in ``stats`` — answered, aggregated
into another reply, dropped at its deadline, failed to send, and so on — so no question is ever lost
silently. A reply is answered only once its sink reports the send: until then it is in ``sending``.

The room alone composes what is said in chat: the engine says which answer (``Decision.answer``), the
room adds the @mentions of everyone waiting for it, each viewer once, within the platform's limit.
Everything it hands out then passes the gate (cohost.gate) right there, in tick() for chat and in
on_talking_points() for the overlay: SendChat carries only Cleared text. In hold-for-review mode a
reply that passed waits for an approval (``approve``/``reject`` control events) until its deadline.
Each reply sent, held, approved, rejected, expired, blocked or rewritten is also an ``Audit`` action.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from ..config import DialogConfig
from ..engine import Decision
from ..events import ChatEvent, ControlEvent, Event, ProductEvent, RoomEvent, SpeechEvent, StreamEvent, TranscriptEvent
from ..gate import Cleared, Gate, Verdict
from ..knowledge.catalog import Catalog
from ..sinks.base import SendResult
from ..understand.streamer import StreamerReader, already_said, is_filler
from .compose import compose_message, mention_name
from .handle import HandleState, ReplyHandle
from .limiter import ChatLimiter, UserCooldown

# Priorities (lower first): paid messages and viewers who just gave a gift or bought; questions about
# the product on stage; other questions.
PAID, ON_STAGE, OTHER = 0, 1, 2
NEAR_DUPLICATE = 85  # rapidfuzz ratio at which two unanswered questions count as the same on the overlay
OUTCOMES = ("answered", "aggregated", "covered_by_recent", "dropped_deadline", "dropped_cooldown",
            "dropped_overload", "dropped_stale", "unanswered_question", "not_a_question", "spam", "engine_error",
            "withdrawn_catalog_changed", "withdrawn_paused", "send_failed", "complaint", "answered_by_streamer",
            "blocked_by_gate", "rejected_by_moderator", "blocked_viewer", "dropped_flood")
MAX_FAILURE_REASONS = 50  # distinct send-failure reasons kept per room (a platform's error texts vary)
TRANSCRIPT_LINES = 200    # the streamer's recent lines kept per room (/rooms/R/transcript)
OVERLAY_LINES = 3         # of which the overlay shows the last few
SAID_WINDOW_S = 300.0     # talking points do not repeat what was said this recently
HOTWORD_CHARS = 120       # context handed to Whisper (each character is decoder prompt, paid per utterance)
FLOOD_WINDOW_S = 60.0     # dialog.viewer_max_per_min counts a viewer's messages over this window
MAX_REVIEW_LOG = 20       # approvals and rejections the overlay lists (who approved what)


@dataclass
class WorkItem:
    event: ChatEvent
    received: float
    ts: float
    deadline: float


@dataclass
class Asker:
    user_id: str
    name: str
    event_id: str
    received: float
    deadline: float
    priority: int
    text: str = ""


@dataclass
class ReplyGroup:
    """A pending chat reply: one catalog answer for everyone who asked it."""

    entry_id: str
    product_id: str | None
    body: str
    askers: list[Asker]
    handle: ReplyHandle
    held_at: float | None = None       # hold-for-review: waiting for an approval since
    approved_by: str | None = None
    review_text: str = ""              # what the reviewer approves (the body after the gate)

    @property
    def priority(self) -> int:
        return min(a.priority for a in self.askers)


@dataclass
class InFlight:
    """A reply handed to the sink, not yet reported sent. Viewers asking the same meanwhile wait on it."""

    group: ReplyGroup
    text: str
    mentioned: list[Asker]
    unmentioned: list[Asker]
    previous_text: str | None
    late: list[Asker] = field(default_factory=list)

    def everyone(self) -> list[Asker]:
        return self.mentioned + self.unmentioned + self.late


@dataclass
class QuestionCluster:
    key: str
    text: str
    product_id: str | None
    answer: str | None
    faq_id: str | None
    first_seen: float
    last_seen: float
    times: list[float] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    replied_at: float | None = None  # when a chat reply with its answer was last reported sent
    spoken_at: float | None = None   # when the streamer last answered it out loud


@dataclass(frozen=True)
class Line:
    """One utterance of the streamer (or a guest), and what the room made of it."""

    ts: float
    speaker: str
    text: str
    kind: str                        # "filler", "switch", "answer", "talk"
    product_id: str | None = None    # the product it switched to
    answered: tuple[str, ...] = ()   # overlay question keys it answered

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "speaker": self.speaker, "text": self.text, "kind": self.kind,
                "product_id": self.product_id, "answered": list(self.answered)}


@dataclass(frozen=True)
class SendChat:
    text: Cleared
    in_reply_to: tuple[str, ...]
    faq_id: str
    latency_ms: float
    handle: ReplyHandle

    def __post_init__(self) -> None:
        if not isinstance(self.text, Cleared):
            raise TypeError("a chat reply must pass the gate (cohost.gate.Gate.check) before it is sent")


@dataclass(frozen=True)
class OverlayChanged:
    pass


@dataclass(frozen=True)
class StartTalkingPoints:
    handle: ReplyHandle
    product_id: str
    questions: tuple[str, ...]
    said: tuple[str, ...] = ()  # the streamer's recent words: points must not repeat them


@dataclass(frozen=True)
class Unanswered:
    """A viewer's question the catalog could not answer: a coverage gap for the catalog owner."""

    text: str
    normalized: str
    product_id: str | None
    reason: str
    ts: float


@dataclass(frozen=True)
class Audit:
    """One line of the audit log: what was (or would have been) said, what became of it and why."""

    outcome: str            # sent held approved rejected expired blocked rewritten failed
    text: str
    ts: float
    kind: str = "chat"      # chat | talking_point
    entry_id: str | None = None
    rule: str | None = None
    detail: str | None = None
    original: str | None = None
    actor: str | None = None
    viewer_texts: tuple[str, ...] = ()
    viewers: tuple[tuple[str, str], ...] = ()
    handle: str | None = None


Action = SendChat | OverlayChanged | StartTalkingPoints | Unanswered | Audit


class Room:
    def __init__(self, name: str, catalog: Catalog, config: DialogConfig, *, max_chars: int, mention: bool = True,
                 gate: Gate | None = None):
        self.name = name
        self.catalog = catalog
        self.config = config
        self.mention = mention
        self.gate = gate or Gate()
        self.review = config.review
        self.review_log: deque[dict[str, Any]] = deque(maxlen=MAX_REVIEW_LOG)
        self.blocked_ids: frozenset[str] = frozenset()
        self.blocked_names: frozenset[str] = frozenset()
        self._viewer_times: dict[str, deque[float]] = {}
        self.viewer_max_per_min = config.viewer_max_per_min
        self._name_ok: dict[str, bool] = {}
        self.talking_warnings: list[str | None] = []
        self.limiter = ChatLimiter(config.min_interval_s, max_chars)
        self.cooldown = UserCooldown(config.user_cooldown_s)
        self.on_stage: str | None = None
        self.paused_by: set[str] = set()      # "speech", "operator", "ended" (the stream)
        self.resume_at: float | None = None
        self.groups: dict[str, ReplyGroup] = {}
        self.sending: dict[str, InFlight] = {}   # by entry id
        # Withdrawn while the sink had them, by handle id: what the sink reports decides the outcome (a
        # reply it had already posted was said in public, and is counted and audited as sent).
        self.withdrawing: dict[int, InFlight] = {}
        self.send_failures: Counter[str] = Counter()   # why replies failed, and why they were tried again
        self.retry_reasons: Counter[str] = Counter()
        self.recently_sent: dict[str, float] = {}
        self.clusters: dict[str, QuestionCluster] = {}
        self.talking_points: list[str] = []
        self.talking_state = "idle"
        self.talking_handle: ReplyHandle | None = None
        self.gifters: dict[str, float] = {}
        self.transcript: deque[Line] = deque(maxlen=TRANSCRIPT_LINES)
        self.reader = StreamerReader(catalog)
        self.stats: Counter[str] = Counter()
        self.cancel_latencies_ms: deque[float] = deque(maxlen=10_000)
        self.decide_latencies_ms: deque[float] = deque(maxlen=100_000)
        self.voice_latencies_ms: deque[float] = deque(maxlen=10_000)
        self.version = 0

    # -- input --------------------------------------------------------------------------------------------

    def admit(self, chat: ChatEvent, now: float) -> WorkItem | None:
        """Accept a chat message for deciding. A message already past its deadline is never answered."""
        self.stats["received"] += 1
        if chat.user.id in self.blocked_ids or chat.user.display in self.blocked_names:
            self.stats["blocked_viewer"] += 1
            return None
        if self._flooding(chat.user.id, now):
            self.stats["dropped_flood"] += 1
            return None
        ts = min(chat.ts, now) if chat.ts is not None else now  # a client clock ahead of ours is clamped
        item = WorkItem(chat, now, ts, ts + self.config.deadline_s)
        if now >= item.deadline:
            self.stats["dropped_stale"] += 1
            return None
        return item

    def _flooding(self, user_id: str, now: float) -> bool:
        """More than dialog.viewer_max_per_min messages from one viewer in the last minute."""
        times = self._viewer_times.get(user_id)
        if times is None:
            if len(self._viewer_times) > 20_000:
                self._viewer_times = {u: t for u, t in self._viewer_times.items() if t and now - t[-1] < FLOOD_WINDOW_S}
            times = self._viewer_times[user_id] = deque(maxlen=self.viewer_max_per_min)
        flooding = len(times) == times.maxlen and now - times[0] < FLOOD_WINDOW_S
        times.append(now)
        return flooding

    def set_blocklist(self, user_ids: set[str] | frozenset[str], names: set[str] | frozenset[str]) -> None:
        """Viewers never answered, never counted on the overlay (by platform user id or by name)."""
        self.blocked_ids, self.blocked_names = frozenset(user_ids), frozenset(names)

    def set_viewer_limit(self, per_min: int | None) -> None:
        """The shop's own per-viewer limit (from /admin), or config.yaml's when None."""
        per_min = per_min or self.config.viewer_max_per_min
        if per_min != self.viewer_max_per_min:
            self.viewer_max_per_min = per_min
            self._viewer_times.clear()

    def set_gate(self, gate: Gate) -> None:
        """The shop's word lists changed: every text from now on passes the new gate."""
        self.gate = gate
        self._name_ok.clear()

    def on_engine_error(self, items: list[WorkItem]) -> None:
        """The engine failed on these messages: they are not answered, and they are counted."""
        self.stats["engine_error"] += len(items)

    def on_decision(self, item: WorkItem, d: Decision, now: float) -> list[Action]:
        chat = item.event
        self.decide_latencies_ms.append((now - item.received) * 1000)
        label = d.intent.label
        if label == "spam":
            self.stats["spam"] += 1
            return []
        if not d.answered:
            if label == "question":
                self.stats["unanswered_question"] += 1
                self._count_question(d, chat, now)
                return [OverlayChanged(), Unanswered(chat.text, d.normalized, d.product_id or self.on_stage, d.reason,
                                                     item.ts)]
            self.stats["complaint" if label == "complaint" else "not_a_question"] += 1
            return []
        assert d.entry is not None and d.answer is not None
        changed = self._count_question(d, chat, now)
        if now >= item.deadline:
            self.stats["dropped_deadline"] += 1
            return [OverlayChanged()] if changed else []
        if "operator" in self.paused_by:
            self.stats["withdrawn_paused"] += 1
            return [OverlayChanged()] if changed else []
        entry_id = d.entry.id
        sent_at = self.recently_sent.get(entry_id)
        if sent_at is not None and now - sent_at < self.config.aggregate_window_s:
            self.stats["covered_by_recent"] += 1
            return [OverlayChanged()] if changed else []
        gifted = self.gifters.get(chat.user.id)
        paid = chat.paid > 0 or (gifted is not None and now - gifted < self.config.gifter_priority_s)
        priority = PAID if paid else ON_STAGE if d.product_id in (None, self.on_stage) else OTHER
        asker = Asker(chat.user.id, chat.user.display, chat.id, item.received, item.deadline, priority, chat.text)
        flight = self.sending.get(entry_id)
        if flight is not None:  # the answer is on its way to chat: this viewer will see it there
            flight.late.append(asker)
            return [OverlayChanged()] if changed else []
        group = self.groups.get(entry_id)
        if group is None:
            handle = ReplyHandle("chat", priority=priority, deadline=item.deadline, created=now,
                                 product_id=d.product_id)
            self.groups[entry_id] = ReplyGroup(entry_id, d.product_id, d.answer, [asker], handle)
            self._shed_overload(now)
        else:
            # A newer duplicate supersedes the pending reply: one reply, a fresh deadline, every asker.
            group.askers.append(asker)
            group.handle.interrupt("superseded by a newer duplicate", now)
            group.handle = ReplyHandle("chat", priority=group.priority, deadline=max(a.deadline for a in group.askers),
                                       created=now, product_id=group.product_id)
        return [OverlayChanged()] if changed else []

    def on_event(self, event: Event, now: float) -> list[Action]:
        if isinstance(event, ProductEvent):
            return self._change_product(event.product_id, now)
        if isinstance(event, StreamEvent):
            # Nothing to suggest to a stream that ended; chat replies still owed go out.
            self.stats[f"stream_{event.state}"] += 1
            return self._pause("ended", now) if event.state == "end" else self._resume("ended", now)
        if isinstance(event, SpeechEvent):
            return self._pause("speech", now) if event.state == "start" else self._resume_later("speech", now)
        if isinstance(event, TranscriptEvent):
            return self._heard(event, now)
        if isinstance(event, ControlEvent):
            if event.action in ("approve", "reject"):
                return self.decide_review(event.id or "", event.action == "approve", event.by or "operator", now)
            if event.action in ("review_hold", "review_auto"):
                return self.set_review(event.action.removeprefix("review_"), event.by or "operator", now)  # type: ignore[arg-type]
            return self._pause("operator", now) if event.action == "pause" else self._resume("operator", now)
        if isinstance(event, RoomEvent):
            self.stats[f"event_{event.type}"] += 1
            if event.user is not None and (event.type == "order" or (event.type == "gift" and event.value > 0)):
                self.gifters[event.user.id] = now
                if len(self.gifters) > 10_000:
                    self.gifters = {u: t for u, t in self.gifters.items() if now - t < self.config.gifter_priority_s}
        return []

    def _heard(self, event: TranscriptEvent, now: float) -> list[Action]:
        """The streamer said something: filler gives the turn back, a cue switches the product, an
        answer to a question on the overlay marks it answered and withdraws its pending chat reply."""
        text = event.text.strip()
        self.stats["transcripts"] += 1
        if event.end is not None:  # end of speech → the room acting on it (wall clock, as the ASR stamps it)
            self.voice_latencies_ms.append(max(0.0, (now - event.end) * 1000))
        if is_filler(text):
            self.stats["speech_filler"] += 1
            if text:
                self.transcript.append(Line(now, event.speaker, text, "filler"))
            # A false interruption: suggestions come back after the short timeout, not the full delay.
            if "speech" in self.paused_by and self.resume_at is not None:
                self.resume_at = min(self.resume_at, now + self.config.false_interruption_s)
            return [OverlayChanged()] if text else []
        actions: list[Action] = []
        if "speech" not in self.paused_by:
            # A transcript without speech events (a client with its own ASR): the streamer spoke just now.
            actions += self._pause("speech", now)
            actions += self._resume_later("speech", now)
        switch = self.reader.product_switch(text)
        if switch is not None and switch.product_id != self.on_stage:
            self.stats["voice_product_switch"] += 1
            actions += self._change_product(switch.product_id, now)
            self.transcript.append(Line(now, event.speaker, text, "switch", product_id=switch.product_id))
            return actions + [OverlayChanged()]
        shown = self.snapshot(now)["questions"]
        keys = self.reader.answered(text, [(q["key"], q["text"], q["answer"]) for q in shown])
        for key in keys:
            self._answered_aloud(key, now)
        self.transcript.append(Line(now, event.speaker, text, "answer" if keys else "talk", answered=tuple(keys)))
        return actions + [OverlayChanged()]

    def _answered_aloud(self, key: str, now: float) -> None:
        cluster = self.clusters.get(key)
        if cluster is None:
            return
        cluster.spoken_at = now
        self.stats["voice_answered"] += 1
        if cluster.faq_id is None:
            return
        # Everyone watching heard it: the chat reply still waiting is withdrawn, and repeats of the
        # question within the aggregation window count as covered, like a reply just sent.
        group = self.groups.pop(cluster.faq_id, None)
        if group is not None:
            group.handle.interrupt("the streamer answered it out loud", now)
            self.stats["answered_by_streamer"] += len(group.askers)
        self.recently_sent[cluster.faq_id] = now

    def recently_said(self, now: float) -> list[str]:
        """What the streamer said lately (fillers left out), oldest first: talking points must not repeat it."""
        return [line.text for line in self.transcript if line.kind != "filler" and now - line.ts <= SAID_WINDOW_S]

    def on_talking_points(self, handle: ReplyHandle, points: list[str], now: float) -> list[Action]:
        """Generated talking points arrive; they are shown only if nobody withdrew them meanwhile."""
        if handle is not self.talking_handle or handle.done():
            return []
        handle.complete()
        said = self.recently_said(now)
        kept = [p for p in points if not already_said(p, said)]
        self.stats["talking_points_already_said"] += len(points) - len(kept)
        product = self.catalog.product(handle.product_id) if handle.product_id else None
        facts = product.facts_text() if product is not None else ""
        actions: list[Action] = []
        shown: list[str] = []
        warnings: list[str | None] = []
        for point in kept:
            verdict = self.gate.check(point, facts, kind="point")
            if verdict.action != "pass":
                self.stats["talking_points_blocked" if not verdict.ok else "talking_points_rewritten"] += 1
                actions.append(Audit("blocked" if not verdict.ok else "rewritten", verdict.text or point, now,
                                     "talking_point", rule=verdict.rule, detail=verdict.explain(), original=point,
                                     handle=str(handle.id)))
            if verdict.ok and verdict.text not in shown:
                shown.append(verdict.text)
                warnings.append(f"含{verdict.explain()}，别照念" if verdict.warnings else None)
        self.talking_points = shown
        self.talking_warnings = warnings
        self.talking_state = "ready"
        return actions + [OverlayChanged()]

    # -- time ---------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if self.resume_at is not None and now >= self.resume_at:
            actions += self._resume("speech", now)
        actions += self._expire(now)
        if "operator" in self.paused_by:
            return actions
        if self.review == "hold":
            actions += self._hold_new(now)
        if not self._ready() or not self.limiter.ready(now):
            return actions
        while ready := self._ready():
            group = min(ready, key=lambda g: (g.priority, -len(g.askers), g.handle.deadline))
            composed, mentioned, unmentioned = self._compose(group, now)
            if not mentioned:  # everyone in the group is cooling down
                del self.groups[group.entry_id]
                group.handle.interrupt("every asker is cooling down", now)
                self.stats["dropped_cooldown"] += len(group.askers)
                continue
            verdict = self._gate(composed, group, mentioned)
            if not verdict.ok:
                actions.append(self._block(group, verdict, now))
                continue
            text = verdict.text
            assert isinstance(text, Cleared)
            why = self.limiter.check(text, now)
            if why == "rate limit":
                break
            if why is not None:  # the very same message was just sent: these viewers have their answer
                del self.groups[group.entry_id]
                group.handle.interrupt(why, now)
                self.stats["covered_by_recent"] += len(group.askers)
                continue
            del self.groups[group.entry_id]
            group.handle.start()
            if verdict.action == "rewrite":
                self.stats["rewritten_by_gate"] += 1
                actions.append(self._audit("rewritten", text, group, now, verdict))
            # The slot is taken when the reply is handed over, so a slow sink cannot make a burst.
            self.sending[group.entry_id] = InFlight(group, text, mentioned, unmentioned, self.limiter.last_text)
            self.limiter.record(text, now)
            first = min(a.received for a in mentioned)
            actions.append(SendChat(text, tuple(a.event_id for a in mentioned + unmentioned), group.entry_id,
                                    (now - first) * 1000, group.handle))
            break
        return actions

    def on_sent(self, handle: ReplyHandle, result: SendResult, now: float) -> list[Action]:
        """The sink reports what became of a reply handed to it by tick()."""
        withdrawn = self.withdrawing.pop(handle.id, None)
        if withdrawn is not None:
            return self._withdrawn_send(withdrawn, result, now)
        flight = next((f for f in self.sending.values() if f.group.handle is handle), None)
        if flight is None or handle.done():
            return []
        group = flight.group
        del self.sending[group.entry_id]
        if result.ok:
            handle.complete()
            self.recently_sent[group.entry_id] = now
            return self._posted(flight, now)
        self.limiter.unrecord(flight.text, flight.previous_text)
        if result.slow_down:
            self.limiter.slow_down(now, result.retry_after_s)
            self.stats["slowed_down"] += 1
        elif result.retry_after_s is not None:
            self.limiter.hold(now, result.retry_after_s)
        askers = flight.everyone()
        live = [a for a in askers if a.deadline > now]
        self.stats["dropped_deadline"] += len(askers) - len(live)
        if "operator" in self.paused_by:  # paused while it was being sent: not tried again
            handle.interrupt("paused by the operator", now)
            self.stats["withdrawn_paused"] += len(live)
            return []
        if result.retryable and live and now + (result.retry_after_s or 0.0) < max(a.deadline for a in live):
            handle.retry()
            group.askers = live
            self.groups[group.entry_id] = group
            self.stats["send_retried"] += 1
            self._count_reason(self.retry_reasons, result.reason or "retry")
            return []
        handle.fail(result.reason or "send failed")
        self.stats["send_failed"] += len(live)
        self._count_reason(self.send_failures, result.reason or "send failed")
        return [self._audit("failed", flight.text, group, now, detail=result.reason or "send failed", askers=askers)]

    # -- the gate and review --------------------------------------------------------------------------------

    def _facts(self, group: ReplyGroup) -> str:
        return self.catalog.reply_facts(group.product_id, group.body)

    def _gate(self, composed: str, group: ReplyGroup, mentioned: list[Asker]) -> Verdict:
        # Names the room may have @mentioned (an unsafe one stands for its viewer but is not in the text).
        names = [mention_name(a.name) for a in mentioned if self._safe_name(a.name)]
        return self.gate.check(composed, self._facts(group), names=names)

    def _block(self, group: ReplyGroup, verdict: Verdict, now: float) -> Audit:
        del self.groups[group.entry_id]
        group.handle.interrupt(f"blocked by the gate: {verdict.rule}", now)
        self.stats["blocked_by_gate"] += len(group.askers)
        return self._audit("blocked", verdict.original, group, now, verdict)

    def _ready(self) -> list[ReplyGroup]:
        """Replies that may go out now: in auto mode all, in hold mode the approved ones."""
        if self.review == "auto":
            return list(self.groups.values())
        return [g for g in self.groups.values() if g.approved_by is not None]

    def _hold_new(self, now: float) -> list[Action]:
        """Hold-for-review: a reply that passes the gate waits for an approval; one that fails never
        reaches the reviewer."""
        actions: list[Action] = []
        for group in [g for g in self.groups.values() if g.held_at is None]:
            composed, mentioned, _ = self._compose(group, now)
            verdict = self._gate(composed, group, mentioned or [])
            if not verdict.ok:
                actions.append(self._block(group, verdict, now))
                continue
            group.held_at = now
            group.review_text = verdict.text
            self.stats["held_for_review"] += 1
            actions.append(self._audit("held", verdict.text, group, now, verdict))
        return actions + [OverlayChanged()] if actions else []

    def is_held(self, reply_id: str) -> bool:
        """Whether ``reply_id`` waits for a reviewer now (not yet decided, not expired)."""
        group = self.groups.get(reply_id)
        return group is not None and group.held_at is not None and group.approved_by is None

    def decide_review(self, reply_id: str, approve: bool, actor: str, now: float) -> list[Action]:
        """A reviewer approved or rejected a held reply (``reply_id``: its entry id on the overlay)."""
        if not self.is_held(reply_id):
            # Too late (it expired, or someone else decided first): the reviewer's log says so, or a tap that
            # did nothing would look like one that worked.
            self.stats["review_unknown"] += 1
            self.review_log.appendleft({"id": reply_id, "text": None, "action": "late", "by": actor, "ts": now})
            return [OverlayChanged()]
        group = self.groups[reply_id]
        self.review_log.appendleft({"id": reply_id, "text": group.review_text,
                                    "action": "approve" if approve else "reject", "by": actor, "ts": now})
        if approve:
            group.approved_by = actor
            self.stats["approved_by_moderator"] += 1
            return [self._audit("approved", group.review_text, group, now, actor=actor), OverlayChanged()]
        del self.groups[reply_id]
        group.handle.interrupt(f"rejected by {actor}", now)
        self.stats["rejected_by_moderator"] += len(group.askers)
        return [self._audit("rejected", group.review_text, group, now, actor=actor), OverlayChanged()]

    def set_review(self, mode: str, actor: str, now: float) -> list[Action]:
        """Switch hold-for-review on or off while live; replies held so far go out once it is off."""
        if mode not in ("auto", "hold") or mode == self.review:
            return []
        self.review = mode  # type: ignore[assignment]
        self.review_log.appendleft({"id": None, "text": None, "action": f"review_{mode}", "by": actor, "ts": now})
        return [OverlayChanged()]

    def _audit(self, outcome: str, text: str, group: ReplyGroup, now: float, verdict: Verdict | None = None, *,
               actor: str | None = None, detail: str | None = None, askers: list[Asker] | None = None) -> Audit:
        who = askers if askers is not None else group.askers
        return Audit(outcome, str(text), now, "chat", group.entry_id,
                     rule=verdict.rule if verdict is not None else None,
                     detail=detail or (verdict.explain() if verdict is not None and verdict.problems else None),
                     original=verdict.original if verdict is not None and verdict.action == "rewrite" else None,
                     actor=actor, viewer_texts=tuple(a.text for a in who),
                     viewers=tuple((a.user_id, a.name) for a in who), handle=str(group.handle.id))

    @staticmethod
    def _count_reason(counter: Counter[str], reason: str) -> None:
        reason = reason[:80]
        counter[reason if reason in counter or len(counter) < MAX_FAILURE_REASONS else "other"] += 1

    def next_wakeup(self) -> float | None:
        """The earliest clock time at which tick() may have something to do."""
        times = [g.handle.deadline for g in self.groups.values()]
        if self.review == "hold" and any(g.held_at is None for g in self.groups.values()):
            times.append(float("-inf"))  # new replies to hold for review: now
        if self._ready():
            times.append(self.limiter.next_allowed())
        if self.resume_at is not None:
            times.append(self.resume_at)
        return min(times) if times else None

    # -- overlay ------------------------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return bool(self.paused_by)

    def snapshot(self, now: float, limit: int = 8) -> dict[str, Any]:
        window = self.config.overlay_window_s
        questions = []
        for c in self.clusters.values():
            count = sum(1 for t in c.times if now - t <= window)
            if count and (c.product_id is None or c.product_id == self.on_stage):
                questions.append((count, c.last_seen, c))
        questions.sort(key=lambda x: (-x[0], -x[1]))
        reason = None
        if "ended" in self.paused_by:
            reason = "直播已结束"
        elif "operator" in self.paused_by:
            reason = "已手动暂停"
        elif "speech" in self.paused_by:
            reason = "主播正在讲解"
        lines = [line for line in self.transcript if now - line.ts <= window][-OVERLAY_LINES:]
        return {
            "type": "state", "room": self.name, "paused": self.paused, "pause_reason": reason,
            "speaking": "speech" in self.paused_by,
            "transcript": [{"text": line.text, "kind": line.kind, "ts": line.ts} for line in lines],
            "product": self._product_card(),
            "questions": [{"key": c.key, "text": c.text, "count": n, "users": c.users[-5:], "answer": c.answer,
                           "faq_id": c.faq_id, "product_id": c.product_id,
                           "replied": c.replied_at is not None and now - c.replied_at <= window,
                           "spoken": c.spoken_at is not None and now - c.spoken_at <= window}
                          for n, _, c in questions[:limit]],
            "talking_points": list(self.talking_points) if self.talking_state == "ready" else [],
            "talking_point_warnings": list(self.talking_warnings) if self.talking_state == "ready" else [],
            "talking_points_state": self.talking_state,
            "review": self._review_state(now),
            "ignored": {"spam": self.stats["spam"], "blocked_viewer": self.stats["blocked_viewer"],
                        "flood": self.stats["dropped_flood"], "blocked_by_gate": self.stats["blocked_by_gate"]},
            "ts": now,
        }

    def _review_state(self, now: float) -> dict[str, Any]:
        held = sorted((g for g in self.groups.values() if g.held_at is not None and g.approved_by is None),
                      key=lambda g: g.handle.deadline)
        return {
            "mode": self.review,
            "held": [{"id": g.entry_id, "text": g.review_text, "users": [a.name for a in g.askers][-5:],
                      "questions": [a.text for a in g.askers][-3:], "count": len(g.askers),
                      "deadline": max(a.deadline for a in g.askers),
                      "remaining_s": round(max(0.0, max(a.deadline for a in g.askers) - now), 1)}
                     for g in held[:10]],
            "log": list(self.review_log)[:5],
        }

    def top_questions(self, now: float, n: int = 5) -> list[str]:
        return [q["text"] for q in self.snapshot(now, n)["questions"]]

    def listening_words(self, now: float, max_chars: int = HOTWORD_CHARS) -> str:
        """Words the speech model should expect from the streamer now: the product on stage, the questions
        on the overlay (the streamer reads from it), the other products' names, then the answers shown."""
        words: list[str] = []
        product = self.catalog.product(self.on_stage) if self.on_stage else None
        if product is not None:
            words.append(product.name)
        questions = self.snapshot(now, 5)["questions"]
        words += [q["text"] for q in questions]
        words += [p.name for p in self.catalog.products if p is not product]
        words += [(q["answer"] or "")[:20] for q in questions]
        out = ""
        for w in words:
            w = " ".join(w.split())
            if w and w not in out and len(out) + len(w) < max_chars:
                out = f"{out} {w}" if out else w
        return out

    # -- internals ----------------------------------------------------------------------------------------

    def _count_question(self, d: Decision, chat: ChatEvent, now: float) -> bool:
        """Aggregate a question for the overlay. Returns True (the overlay changes)."""
        if d.answered and d.entry is not None:
            key, answer, faq_id = f"faq:{d.entry.id}", d.entry.answer, d.entry.id
        else:
            key, answer, faq_id = f"q:{d.product_id}:{d.normalized}", None, None
            if key not in self.clusters:
                for c in self.clusters.values():
                    if (c.faq_id is None and c.product_id == d.product_id
                            and fuzz.ratio(c.text, d.normalized) >= NEAR_DUPLICATE):
                        key = c.key
                        break
        cluster = self.clusters.get(key)
        if cluster is None:
            cluster = self.clusters[key] = QuestionCluster(key, chat.text if d.answered else d.normalized,
                                                           d.product_id, answer, faq_id, now, now)
        cluster.last_seen = now
        cluster.times.append(now)
        cluster.times = [t for t in cluster.times if now - t <= self.config.overlay_window_s]
        name = chat.user.display
        if name in cluster.users:
            cluster.users.remove(name)
        cluster.users.append(name)
        del cluster.users[:-20]
        self._forget_old_clusters(now)
        return True

    def _forget_old_clusters(self, now: float) -> None:
        if len(self.clusters) > 500:
            window = self.config.overlay_window_s
            self.clusters = {k: c for k, c in self.clusters.items() if now - c.last_seen <= window}

    def _compose(self, group: ReplyGroup, now: float) -> tuple[str, list[Asker], list[Asker]]:
        """"@甲 @乙 answer" within the length limit, each viewer once. Askers whose names do not fit, who
        asked twice, or who are cooling down, are not mentioned but still see the answer in chat."""
        live = sorted((a for a in group.askers if a.deadline > now), key=lambda a: (a.priority, a.received))
        allowed: list[Asker] = []
        seen: set[str] = set()
        for a in live:
            if a.user_id not in seen and self.cooldown.allowed(a.user_id, now):
                seen.add(a.user_id)
                allowed.append(a)
        # A name that would put words in the shop's mouth ("【官方】全场免费") is never @mentioned; that
        # viewer still sees the answer in chat.
        safe = [a for a in allowed if self._safe_name(a.name)]
        self.stats["mention_refused"] += len(allowed) - len(safe)
        text, chosen = compose_message(group.body, [a.name for a in safe], max_chars=self.limiter.max_chars,
                                       mention=self.mention)
        mentioned = [safe[i] for i in chosen]
        if allowed and not mentioned:  # no name fits (or mentions are off): the answer goes out without one
            mentioned = [safe[0] if safe else allowed[0]]
        unmentioned = [a for a in live if a not in mentioned]
        return text, mentioned, unmentioned

    def _safe_name(self, name: str) -> bool:
        ok = self._name_ok.get(name)
        if ok is None:
            if len(self._name_ok) > 10_000:
                self._name_ok.clear()
            ok = self._name_ok[name] = not self.gate.name_problems(mention_name(name))
        return ok

    def _expire(self, now: float) -> list[Action]:
        actions: list[Action] = []
        for key, group in list(self.groups.items()):
            expired = [a for a in group.askers if a.deadline <= now]
            if not expired:
                continue
            group.askers = [a for a in group.askers if a.deadline > now]
            self.stats["dropped_deadline"] += len(expired)
            if not group.askers:
                group.handle.expire()
                del self.groups[key]
                if group.held_at is not None and group.approved_by is None:
                    self.stats["review_expired"] += 1
                    actions += [self._audit("expired", group.review_text, group, now, askers=expired),
                                OverlayChanged()]
        return actions

    def on_catalog_changed(self, catalog: Catalog, changed: set[str], answers: dict[str, str], now: float
                           ) -> list[Action]:
        """A new catalog version serves. Replies not yet sent whose answer changed or is gone are
        withdrawn (a price said in public must be the current one); overlay answers are refreshed."""
        self.catalog = catalog
        self.reader = StreamerReader(catalog)
        withdrawn = [g for g in self.groups.values() if g.entry_id in changed]
        for g in withdrawn:
            del self.groups[g.entry_id]
            g.handle.interrupt("catalog changed", now)
            self.stats["withdrawn_catalog_changed"] += len(g.askers)
        for entry_id in [k for k in self.sending if k in changed]:
            flight = self.sending.pop(entry_id)
            self.withdrawing[flight.group.handle.id] = flight  # counted when the sink reports (on_sent)
            flight.group.handle.interrupt("catalog changed", now)  # the runner cancels the send
        for entry_id in changed:
            self.recently_sent.pop(entry_id, None)
        refreshed = False
        for c in self.clusters.values():
            if c.faq_id in changed:
                c.answer = answers.get(c.faq_id)
                c.faq_id = c.faq_id if c.answer is not None else None
                refreshed = True
        return [OverlayChanged()] if withdrawn or refreshed else []

    def _posted(self, flight: InFlight, now: float) -> list[Action]:
        """A reply the sink posted: the limiter, the viewers' cooldowns, the counts, the overlay, the audit."""
        self.limiter.sent_ok()
        for a in flight.mentioned:
            self.cooldown.record(a.user_id, now)
        self.stats["answered"] += 1
        self.stats["aggregated"] += len(flight.everyone()) - 1
        self.stats["sent_messages"] += 1
        cluster = self.clusters.get(f"faq:{flight.group.entry_id}")
        if cluster is not None:
            cluster.replied_at = now
        return [OverlayChanged(), self._audit("sent", flight.text, flight.group, now, actor=flight.group.approved_by,
                                              askers=flight.everyone())]

    def _withdrawn_send(self, flight: InFlight, result: SendResult, now: float) -> list[Action]:
        """The sink's report on a reply withdrawn while it had it (the catalog changed)."""
        if not result.ok:
            self.stats["withdrawn_catalog_changed"] += len(flight.everyone())
            return []
        # Posted before the cancel reached the sink: viewers saw it, so it counts (and is audited) as sent.
        # Not marked recently sent: the entry changed, and the next asker gets the new answer.
        self.stats["sent_before_withdrawal"] += 1
        return self._posted(flight, now)

    def _shed_overload(self, now: float) -> None:
        while len(self.groups) > self.config.max_pending:
            worst = max(self.groups.values(), key=lambda g: (g.priority, -len(g.askers), -g.handle.deadline))
            del self.groups[worst.entry_id]
            worst.handle.interrupt("overload: more valuable replies first", now)
            self.stats["dropped_overload"] += len(worst.askers)

    def _change_product(self, product_id: str, now: float) -> list[Action]:
        old = self.on_stage
        self.on_stage = product_id
        # Suggestions about the old product are withdrawn; chat replies already promised stay, they name
        # their product and keep their deadlines.
        self.clusters = {k: c for k, c in self.clusters.items() if c.product_id in (None, product_id)}
        for g in self.groups.values():
            if g.product_id == old and g.priority == ON_STAGE:
                g.handle.priority = OTHER
                for a in g.askers:
                    a.priority = max(a.priority, OTHER)
        self._withdraw_talking_points("product changed", now)
        actions: list[Action] = [OverlayChanged()]
        if self.catalog.product(product_id) is not None:
            actions += self._start_talking_points(now)
        return actions

    def _withdraw_talking_points(self, reason: str, now: float) -> None:
        handle = self.talking_handle
        if handle is not None and handle.interrupt(reason, now):
            self.stats["talking_points_withdrawn"] += 1
        self.talking_handle = None
        self.talking_points = []
        self.talking_state = "withdrawn" if handle is not None else "idle"

    def _start_talking_points(self, now: float) -> list[Action]:
        if self.on_stage is None:
            return []
        handle = ReplyHandle("talking_points", priority=ON_STAGE, deadline=now + 60.0, created=now,
                             product_id=self.on_stage)
        self.talking_handle = handle
        self.talking_state = "generating"
        return [StartTalkingPoints(handle, self.on_stage, tuple(self.top_questions(now)),
                                   tuple(self.recently_said(now)))]

    def _pause(self, why: str, now: float) -> list[Action]:
        if why == "speech":
            self.resume_at = None
        if why in self.paused_by:
            return []
        self.paused_by.add(why)
        if why == "ended":
            self._withdraw_talking_points("the stream ended", now)
        if why == "operator":
            # The operator stops the co-host: nothing more goes to chat, suggestions are withdrawn; a
            # reply already handed to the platform cannot be called back.
            for key, g in list(self.groups.items()):
                del self.groups[key]
                g.handle.interrupt("paused by the operator", now)
                self.stats["withdrawn_paused"] += len(g.askers)
            self._withdraw_talking_points("paused by the operator", now)
        return [OverlayChanged()]

    def _resume_later(self, why: str, now: float) -> list[Action]:
        if why in self.paused_by:
            self.resume_at = now + self.config.resume_after_speech_s
        return []

    def _resume(self, why: str, now: float) -> list[Action]:
        if why == "speech":
            self.resume_at = None
        if why not in self.paused_by:
            return []
        self.paused_by.discard(why)
        actions: list[Action] = [OverlayChanged()]
        if not self.paused and self.talking_handle is None and self.on_stage is not None:
            actions += self._start_talking_points(now)
        return actions

    def _product_card(self) -> dict[str, Any] | None:
        if self.on_stage is None:
            return None
        p = self.catalog.product(self.on_stage)
        if p is None:  # shop-wide answers still go out; the streamer should know product answers cannot
            return {"id": self.on_stage, "unknown": True}
        return {"id": p.id, "unknown": False, "name": p.name, "link": p.link, "price": p.price,
                "facts": [[k, v] for k, v in list(p.specs.items())[:5]],
                "selling_points": list(p.selling_points)}

    def pending_count(self) -> int:
        """Messages owed a reply: queued, or being sent (or withdrawn, until the sink says whether it was sent)."""
        return (sum(len(g.askers) for g in self.groups.values())
                + sum(len(f.everyone()) for f in [*self.sending.values(), *self.withdrawing.values()]))

    def outcome_total(self) -> int:
        """Messages that reached an outcome. Equals received once nothing is pending or deciding."""
        return sum(self.stats[k] for k in OUTCOMES if k not in ("answered", "aggregated")) + \
            self.stats["answered"] + self.stats["aggregated"]


__all__ = ["Action", "Audit", "HandleState", "Line", "OverlayChanged", "Room", "SendChat", "StartTalkingPoints",
           "Unanswered", "WorkItem"]
