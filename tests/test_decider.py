"""The room's decider: triage without the encoder, then encoder calls for the likeliest questions first,
never more at once than the embedder's workers. Real engine, real threads; the encoder stage is gated
so that work queues up behind it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from cohost.dialog.room import Room
from cohost.dialog.runner import RoomRunner
from cohost.engine import Message
from cohost.events import ChatEvent, User

pytestmark = pytest.mark.slow

# Never in the catalog or the intent seeds, and none plainly chatter: each needs an encoder pass.
CANDIDATES = ["这件外套下雨天到底能不能穿出门", "我觉得这个颜色我妈妈应该会喜欢的吧", "昨天那个链接我好像没抢到呢",
              "麻烦问下这条裤子腰围最大能到多少", "主播今天穿的这身搭配真的挺特别", "发顺丰的话偏远地区要加运费不",
              "哎呀今天的灯光好像有点暗了", "请问小个子一米五穿会不会拖地"]


class GatedFinish:
    """Wraps engine.finish: records each call's texts and how many run at once; holds calls at a gate."""

    def __init__(self, real):
        self.real, self.gate, self.lock = real, threading.Event(), threading.Lock()
        self.calls: list[list[str]] = []
        self.active = self.peak = 0

    def __call__(self, pending):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.calls.append([p.messages[0].text for p in pending])
        try:
            assert self.gate.wait(10)
            return self.real(pending)
        finally:
            with self.lock:
                self.active -= 1


def pending_texts(engine) -> dict[str, float]:
    """The candidates that need the encoder, with their text-only probability of being a question."""
    norm = [engine.normalizer(t) for t in CANDIDATES]
    screened, p_question = engine.intent.screen(engine.intent.text_features(norm, CANDIDATES))
    return {t: float(p) for t, n, s, p in zip(CANDIDATES, norm, screened, p_question, strict=True)
            if s is None and engine.embedder.known(engine.resolver.resolve(n, None).rest) is None}


async def run_room(engine, texts: list[str], gated: GatedFinish, *, first_alone: bool) -> Room:
    dialog = engine.config.dialog.model_copy(update={"min_interval_s": 0.0, "user_cooldown_s": 0.0})
    room = Room("decider", engine.catalog, dialog, max_chars=50)

    async def no_points(card, questions):
        return []

    runner = RoomRunner(room, engine, on_chat=lambda r, a: None, on_overlay=lambda r, s: None,
                        talking_points=no_points)
    await runner.start()
    try:
        def send(i: int, text: str) -> None:
            runner.submit(ChatEvent(type="chat", id=f"e{i}", user=User(id=f"u{i}", name=f"观众{i}"), text=text, ts=time.time()))

        rest = texts
        if first_alone:  # occupy the encoder first, so that everything after it queues
            send(0, texts[0])
            rest = texts[1:]
            async with asyncio.timeout(10):
                while not gated.calls:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
        for i, t in enumerate(rest, start=1):
            send(i, t)
        async with asyncio.timeout(10):
            while room.stats["received"] < len(texts) or runner._to_decide or runner._triaging:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        gated.gate.set()
        async with asyncio.timeout(20):
            while not runner.idle:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        await runner.stop()
    return room


def test_encoder_goes_to_the_likeliest_questions_first(engine, monkeypatch):
    engine.clear_cache()
    texts = pending_texts(engine)
    assert len(texts) >= 4, texts
    gated = GatedFinish(engine.finish)
    monkeypatch.setattr(engine, "finish", gated)
    monkeypatch.setattr(engine.embedder, "workers", 1)
    room = asyncio.run(run_room(engine, list(texts), gated, first_alone=True))
    queued = [c[0] for c in gated.calls[1:]]
    assert sorted(queued, key=lambda t: -texts[t]) == queued
    assert all(len(c) == engine.config.dialog.max_encode for c in gated.calls)
    assert gated.peak == 1
    assert room.outcome_total() == room.stats["received"] == len(texts)


def test_encoder_calls_run_side_by_side_up_to_the_workers(engine, monkeypatch):
    engine.clear_cache()
    texts = pending_texts(engine)
    gated = GatedFinish(engine.finish)
    monkeypatch.setattr(engine, "finish", gated)
    assert engine.embedder.workers == 2
    room = asyncio.run(run_room(engine, list(texts), gated, first_alone=False))
    assert gated.peak == 2
    assert sorted(t for c in gated.calls for t in c) == sorted(texts)
    assert room.outcome_total() == room.stats["received"] == len(texts)


def test_a_text_waiting_for_the_encoder_is_dropped_only_when_all_who_sent_it_are_late(engine):
    """Two viewers sent the same new text; the first is past its deadline while it waits for the
    encoder. Both still reach an outcome; once both are late, both are dropped and counted."""
    engine.clear_cache()
    text = "这个面料夏天穿会不会闷汗呀主播"
    dialog = engine.config.dialog

    async def main():
        async def no_points(card, questions):
            return []

        room = Room("late", engine.catalog, dialog, max_chars=50)
        runner = RoomRunner(room, engine, on_chat=lambda r, a: None, on_overlay=lambda r, s: None,
                            talking_points=no_points)
        now = time.time()
        events = [ChatEvent(type="chat", id="a", user=User(id="a"), text=text, ts=now - dialog.deadline_s + 0.05),
                  ChatEvent(type="chat", id="b", user=User(id="b"), text=text, ts=now)]
        items = [room.admit(e, now) for e in events]
        _, pending = engine.triage([Message(text), Message(text)])
        assert len(pending) == 1 and len(pending[0].messages) == 2
        runner._to_encode.append((pending[0], items))
        await asyncio.sleep(0.1)
        runner._drop_expired()
        assert len(runner._to_encode) == 1
        await runner._encode(runner._to_encode)
        assert room.outcome_total() == room.stats["received"] == 2

        engine.clear_cache()
        late = [room.admit(e, now) for e in events]
        _, pending = engine.triage([Message(text), Message(text)])
        runner._to_encode = [(pending[0], late)]
        runner.clock = type("Later", (), {"now": staticmethod(lambda: now + dialog.deadline_s + 1)})()
        runner._drop_expired()
        assert runner._to_encode == [] and room.stats["dropped_deadline"] == 2
        assert room.outcome_total() == room.stats["received"] == 4

    asyncio.run(main())
