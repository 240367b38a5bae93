"""The dialog loop on virtual time: every timestamp is a parameter, so minutes of a room run in microseconds.

Decisions are built by hand here (the engine is tested on its own), so each test states exactly what the
engine concluded and checks only what the room does with it.
"""

from __future__ import annotations

import pytest

from cohost.config import DialogConfig
from cohost.dialog.handle import HandleState
from cohost.dialog.room import OUTCOMES, Audit, OverlayChanged, Room, SendChat, StartTalkingPoints
from cohost.engine import Decision
from cohost.events import ChatEvent, ControlEvent, ProductEvent, RoomEvent, SpeechEvent, TranscriptEvent, User
from cohost.knowledge.entries import Entry
from cohost.sinks.base import SENT, SendResult
from cohost.understand.intent import IntentResult

T0 = 1_732_250_000.0


def entry(eid: str, answer: str = "直播间价159元", product: str | None = "dress") -> Entry:
    return Entry(eid, "faq", product, "q", answer, ("q",), answer)


def decision(text: str, e: Entry | None, user: str = "u", label: str = "question", product: str | None = None) -> Decision:
    intent = IntentResult(label, 0.9, {label: 0.9})  # type: ignore[arg-type]
    if e is None:
        return Decision(text, text, intent, product, "on_stage", False, "not confident")
    return Decision(text, text, intent, e.product_id, "on_stage", True, "matched", entry=e, answer=e.answer,
                    reply=f"@{user} {e.answer}")


def chat(i: int, text: str, user: str | None = None, ts: float | None = None, paid: float = 0.0) -> ChatEvent:
    uid = user or f"u{i}"
    return ChatEvent(type="chat", id=f"e{i}", user=User(id=uid, name=uid), text=text, ts=ts, paid=paid)


@pytest.fixture
def room(catalog) -> Room:
    r = Room("r", catalog, DialogConfig(deadline_s=6, min_interval_s=2, user_cooldown_s=30, aggregate_window_s=20),
             max_chars=50)
    r.on_event(ProductEvent(type="product", product_id="dress"), T0)
    return r


def feed(room: Room, i: int, text: str, e: Entry | None, now: float, **kw) -> list:
    ev = chat(i, text, **kw)
    item = room.admit(ev, now)
    assert item is not None
    return room.on_decision(item, decision(text, e, ev.user.id), now)


def sends(actions: list) -> list[SendChat]:
    return [a for a in actions if isinstance(a, SendChat)]


def tick(room: Room, now: float, result: SendResult = SENT) -> list[SendChat]:
    """Tick the room and report every reply it hands over as sent (or as result says)."""
    out = sends(room.tick(now))
    for s in out:
        room.on_sent(s.handle, result, now)
    return out


def assert_all_accounted(room: Room) -> None:
    assert room.pending_count() == 0
    assert room.outcome_total() == room.stats["received"], dict(room.stats)


def test_reply_is_sent_at_once_and_ats_the_viewer(room):
    """An answered question goes out on the next tick with the viewer mentioned."""
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 1)
    [s] = tick(room, T0 + 1)
    assert s.text == "@u1 直播间价159元"
    assert s.in_reply_to == ("e1",)
    assert s.handle.state is HandleState.DONE
    assert_all_accounted(room)


def test_message_already_past_its_deadline_is_never_answered(room):
    """A message whose platform timestamp is older than the deadline is dropped on arrival."""
    assert room.admit(chat(1, "多少钱", ts=T0), T0 + 7) is None
    assert room.stats["dropped_stale"] == 1
    assert_all_accounted(room)


def test_duplicates_are_aggregated_into_one_reply(room):
    """Several viewers asking the same thing get one reply that @s them all; the overlay counts them."""
    e = entry("dress_plus", "尺码到XL")
    for i, t in enumerate(["有大码吗", "有大码吗？", "有没有大码"], start=1):
        feed(room, i, t, e, T0 + 0.1 * i)
    room.limiter.record("something else", T0)  # the limiter is busy until T0 + 2
    assert not tick(room, T0 + 1)
    [s] = tick(room, T0 + 2)
    assert s.text == "@u1 @u2 @u3 尺码到XL"
    assert set(s.in_reply_to) == {"e1", "e2", "e3"}
    q = room.snapshot(T0 + 2)["questions"][0]
    assert q["count"] == 3 and q["answer"] == "尺码到XL"
    assert room.stats["answered"] == 1 and room.stats["aggregated"] == 2
    assert_all_accounted(room)


def test_newer_duplicate_supersedes_the_older_handle(room):
    """The pending reply's handle is interrupted and replaced; the new one carries the later deadline."""
    e = entry("dress_plus")
    room.limiter.record("busy", T0 + 1)
    feed(room, 1, "有大码吗", e, T0 + 1)
    old = room.groups["dress_plus"].handle
    feed(room, 2, "有大码吗", e, T0 + 5)
    new = room.groups["dress_plus"].handle
    assert old.state is HandleState.INTERRUPTED and "superseded" in old.reason
    assert new.deadline == T0 + 11
    [s] = tick(room, T0 + 8)  # e1 expired at T0+7; e2 is still owed an answer
    assert s.in_reply_to == ("e2",)
    assert room.stats["dropped_deadline"] == 1
    assert_all_accounted(room)


def test_nothing_is_sent_after_its_deadline(room):
    """When the limiter is busy past the deadline, the reply expires instead of going out late."""
    room.limiter.record("busy", T0)
    room.limiter.min_interval_s = 10
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 0.5)
    handle = room.groups["dress.price"].handle
    assert not tick(room, T0 + 6.6)
    assert handle.state is HandleState.EXPIRED
    assert not tick(room, T0 + 10)
    assert room.stats["dropped_deadline"] == 1
    assert_all_accounted(room)


def test_limiter_spaces_messages_and_sends_the_most_valuable_first(room):
    """One message per interval; paid beats on-stage beats other products; bigger groups first."""
    room.limiter.record("busy", T0)
    feed(room, 1, "3号多少钱", entry("kids_shoes.price", "129元", "kids_shoes"), T0 + 0.1)
    feed(room, 2, "多少钱", entry("dress.price"), T0 + 0.2)
    feed(room, 3, "能机洗吗", entry("dress_wash", "手洗"), T0 + 0.3, paid=30)
    order = []
    for t in (T0 + 2, T0 + 3, T0 + 4, T0 + 6):
        order += [s.faq_id for s in tick(room, t)]
    assert order == ["dress_wash", "dress.price", "kids_shoes.price"]
    assert_all_accounted(room)


def test_room_outrun_by_traffic_sends_fewer_never_late_and_loses_nothing(room):
    """A burst far beyond the limiter: the best replies go out, the rest are counted as dropped."""
    t = T0
    for i in range(300):
        t = T0 + i * 0.01
        feed(room, i, f"问题{i}", entry(f"faq{i % 40}", f"答案{i % 40}"), t)
        tick(room, t)
    sent = []
    while t < T0 + 20:
        t += 0.5
        sent += tick(room, t)
    assert 2 <= len(sent) <= 6
    assert all(s.latency_ms <= 6000 for s in sent)
    assert room.stats["dropped_deadline"] > 0
    assert_all_accounted(room)


def test_user_cooldown_keeps_one_viewer_from_taking_over(room):
    """A viewer answered once is not @'d again within the cooldown."""
    feed(room, 1, "多少钱", entry("dress.price"), T0, user="chatty")
    assert tick(room, T0)
    feed(room, 2, "能机洗吗", entry("dress_wash", "手洗"), T0 + 3, user="chatty")
    assert not tick(room, T0 + 3)
    assert room.stats["dropped_cooldown"] == 1
    assert_all_accounted(room)


def test_repeat_of_a_just_answered_question_is_not_reanswered(room):
    """Within the aggregation window the answer is still in chat; the repeat only counts on the overlay."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    assert tick(room, T0)
    feed(room, 2, "多少钱", entry("dress.price"), T0 + 5)
    assert not tick(room, T0 + 7)
    assert room.stats["covered_by_recent"] == 1
    assert room.snapshot(T0 + 7)["questions"][0]["count"] == 2
    assert_all_accounted(room)


def test_unanswered_questions_reach_the_overlay_grouped_by_near_duplicates(room):
    """Questions the catalog cannot answer are for the streamer: counted, grouped, no chat reply."""
    for i, t in enumerate(["有口袋吗", "有口袋吗？", "有没有口袋呀", "好看"], start=1):
        ev = chat(i, t)
        item = room.admit(ev, T0 + i)
        label = "chitchat" if t == "好看" else "question"
        room.on_decision(item, decision(t, None, label=label, product="dress"), T0 + i)
    snap = room.snapshot(T0 + 5)
    assert not tick(room, T0 + 5)
    counts = [q["count"] for q in snap["questions"]]
    assert counts[0] >= 2 and sum(counts) == 3
    assert all(q["answer"] is None for q in snap["questions"])
    assert room.stats["unanswered_question"] == 3 and room.stats["not_a_question"] == 1
    assert_all_accounted(room)


def test_spam_is_ignored(room):
    """Spam is neither answered nor shown."""
    ev = chat(1, "加微信")
    room.on_decision(room.admit(ev, T0), decision("加微信", entry("dress.price"), label="spam"), T0)
    assert not tick(room, T0) and room.snapshot(T0)["questions"] == []
    assert_all_accounted(room)


def test_product_change_withdraws_suggestions_and_restarts_talking_points(room):
    """The old product's questions and talking points leave the overlay; generation in flight is interrupted."""
    start = room.on_event(ProductEvent(type="product", product_id="fryer"), T0)
    gen = next(a for a in start if isinstance(a, StartTalkingPoints))
    room.on_talking_points(gen.handle, ["1500W 大功率"], T0 + 1)
    feed(room, 1, "有口袋吗", None, T0 + 2)
    assert room.snapshot(T0 + 2)["talking_points"] == ["1500W 大功率"]
    actions = room.on_event(ProductEvent(type="product", product_id="serum"), T0 + 3)
    new_gen = next(a for a in actions if isinstance(a, StartTalkingPoints))
    snap = room.snapshot(T0 + 3)
    assert snap["product"]["id"] == "serum"
    assert snap["talking_points"] == [] and snap["talking_points_state"] == "generating"
    # a slow generation for the old product that finishes late is not shown
    late = room.on_event(ProductEvent(type="product", product_id="dress"), T0 + 4)
    assert new_gen.handle.state is HandleState.INTERRUPTED
    assert room.on_talking_points(new_gen.handle, ["精华液"], T0 + 5) == []
    assert any(isinstance(a, StartTalkingPoints) for a in late)


def test_streamer_speech_pauses_suggestions_and_resumes_after_a_delay(room):
    """Speech start pauses at once; speech end resumes after resume_after_speech_s, not before."""
    assert any(isinstance(a, OverlayChanged) for a in room.on_event(SpeechEvent(type="speech", state="start"), T0))
    assert room.snapshot(T0)["paused"] and room.snapshot(T0)["pause_reason"] == "主播正在讲解"
    room.on_event(SpeechEvent(type="speech", state="end"), T0 + 10)
    assert room.snapshot(T0 + 10.5)["paused"]
    room.tick(T0 + 10.5)
    assert room.paused
    room.tick(T0 + 11.6)
    assert not room.paused


def test_operator_pause_holds_until_resume(room):
    """A manual pause is not lifted by the streamer finishing a sentence."""
    room.on_event(ControlEvent(type="control", action="pause"), T0)
    room.on_event(SpeechEvent(type="speech", state="start"), T0 + 1)
    room.on_event(SpeechEvent(type="speech", state="end"), T0 + 2)
    room.tick(T0 + 10)
    assert room.paused and room.snapshot(T0 + 10)["pause_reason"] == "已手动暂停"
    room.on_event(ControlEvent(type="control", action="resume"), T0 + 11)
    assert not room.paused


def test_gifters_and_buyers_come_first(room):
    """A viewer who just sent a paid gift is answered before earlier askers."""
    room.limiter.record("busy", T0)
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 0.1)
    room.on_event(RoomEvent(type="gift", user=User(id="fan", name="fan"), gift="火箭", value=100), T0 + 0.2)
    feed(room, 2, "能机洗吗", entry("dress_wash", "手洗"), T0 + 0.3, user="fan")
    [s] = tick(room, T0 + 2)
    assert s.faq_id == "dress_wash"


def test_overload_sheds_the_least_valuable_pending_replies(catalog):
    """With more distinct pending replies than max_pending, the least valuable are dropped and counted."""
    room = Room("r", catalog, DialogConfig(max_pending=5, min_interval_s=60), max_chars=50)
    room.limiter.record("busy", T0)
    for i in range(12):
        feed(room, i, f"q{i}", entry(f"f{i}", f"a{i}"), T0)
    assert len(room.groups) == 5
    assert room.stats["dropped_overload"] == 7
    room.tick(T0 + 60)
    assert_all_accounted(room)


def test_every_outcome_is_a_known_counter():
    """The outcome names used for accounting are the ones the room counts."""
    assert len(set(OUTCOMES)) == len(OUTCOMES)


# -- one reply, one handle: composing, sending, failing ----------------------------------------------------


def named_chat(i: int, text: str, uid: str, name: str) -> ChatEvent:
    return ChatEvent(type="chat", id=f"e{i}", user=User(id=uid, name=name), text=text)


def feed_named(room: Room, i: int, uid: str, name: str, e: Entry, now: float) -> None:
    ev = named_chat(i, "有大码吗", uid, name)
    room.on_decision(room.admit(ev, now), decision("有大码吗", e, ev.user.display), now)


def test_names_with_spaces_are_mentioned_whole_and_everyone_once(room):
    """"Tom Lee" then 小王 asking the same: both mentioned as named, the answer whole (no "@Tom Lee Lee")."""
    e = entry("dress_plus", "尺码到XL")
    room.limiter.record("busy", T0)
    feed_named(room, 1, "tom", "Tom Lee", e, T0 + 0.1)
    feed_named(room, 2, "wang", "小王", e, T0 + 0.2)
    [s] = tick(room, T0 + 2)
    assert s.text == "@Tom Lee @小王 尺码到XL"
    assert set(s.in_reply_to) == {"e1", "e2"}


def test_a_viewer_asking_twice_is_mentioned_once(room):
    """The same viewer in a group twice (and two viewers with one display name) get one @ each name."""
    e = entry("dress_plus", "尺码到XL")
    room.limiter.record("busy", T0)
    feed_named(room, 1, "hu", "胖虎", e, T0 + 0.1)
    feed_named(room, 2, "mi", "米粒", e, T0 + 0.2)
    feed_named(room, 3, "hu", "胖虎", e, T0 + 0.3)
    feed_named(room, 4, "hu2", "米粒", e, T0 + 0.4)
    [s] = tick(room, T0 + 2)
    assert s.text == "@胖虎 @米粒 尺码到XL"
    assert set(s.in_reply_to) == {"e1", "e2", "e3", "e4"}
    assert room.stats["answered"] == 1 and room.stats["aggregated"] == 3
    assert_all_accounted(room)


def test_a_long_name_never_shortens_the_answer(room):
    """An answer that fits the limit alone is sent whole; a name that does not fit beside it is left out."""
    answer = "尺码S到XL，胖一点的拍大一码就好啦"
    e = entry("dress_plus", answer)
    feed_named(room, 1, "long", "非常非常长的名字" * 4, e, T0)
    [s] = tick(room, T0)
    assert s.text == answer
    assert room.stats["answered"] == 1
    assert_all_accounted(room)


def test_max_chars_is_respected_with_many_askers(catalog):
    """However many viewers ask, the message stays within reply.max_chars (a Bilibili 20)."""
    room = Room("r", catalog, DialogConfig(min_interval_s=2), max_chars=20)
    e = entry("dress_plus", "尺码到XL")
    room.limiter.record("busy", T0)
    for i in range(8):
        feed_named(room, i, f"u{i}", f"观众{i}号", e, T0 + 0.01 * i)
    [s] = tick(room, T0 + 2)
    assert len(s.text) <= 20 and s.text.endswith("尺码到XL") and s.text.startswith("@观众0号 ")


def test_a_reply_is_answered_only_when_its_sink_reports_the_send(room):
    """Handed to the sink the handle is running and nothing is counted; the report completes it."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    [s] = sends(room.tick(T0))
    assert s.handle.state is HandleState.RUNNING
    assert room.stats["answered"] == 0 and room.pending_count() == 1
    # A viewer asking the same meanwhile waits on the reply in flight rather than get a second one.
    feed(room, 2, "多少钱", entry("dress.price"), T0 + 0.5)
    assert not sends(room.tick(T0 + 3))
    room.on_sent(s.handle, SENT, T0 + 3.1)
    assert s.handle.state is HandleState.DONE
    assert room.stats["answered"] == 1 and room.stats["aggregated"] == 1
    assert room.snapshot(T0 + 3.1)["questions"][0]["replied"] is True
    assert_all_accounted(room)


def test_a_failed_send_is_counted_with_its_reason_not_answered(room):
    """The platform refused the reply: the handle fails, each asker is counted as send_failed."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    [s] = tick(room, T0, SendResult(False, "账号被禁言"))
    assert s.handle.state is HandleState.FAILED and s.handle.reason == "账号被禁言"
    assert room.stats["answered"] == 0 and room.stats["send_failed"] == 1
    assert room.send_failures == {"账号被禁言": 1}
    assert room.snapshot(T0)["questions"][0]["replied"] is False
    assert_all_accounted(room)


def test_too_fast_slows_the_limiter_and_the_reply_is_tried_again_in_time(room):
    """A "too fast" answer with a retry-after: the room waits that long, sends less often, then retries."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    before = room.limiter.min_interval_s
    [s] = tick(room, T0, SendResult(False, "10031 发送频率过快", retry_after_s=1.5, slow_down=True))
    assert s.handle.state is HandleState.PENDING and room.limiter.min_interval_s > before
    assert not tick(room, T0 + 1.0)                 # held for the platform's retry-after
    [again] = tick(room, T0 + 3.0)                  # and the slower interval
    assert again.text == s.text and again.handle is s.handle
    assert room.stats["answered"] == 1 and room.stats["send_retried"] == 1
    assert_all_accounted(room)


def test_a_retry_that_would_be_late_fails_instead(room):
    """No retry past the deadline: the viewers were owed an answer within deadline_s, not later."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    tick(room, T0 + 5, SendResult(False, "too fast", retry_after_s=3.0, slow_down=True))
    assert room.stats["send_failed"] == 1 and not room.groups
    assert_all_accounted(room)


def test_a_catalog_change_withdraws_a_reply_in_flight(room, catalog):
    """The price changed while its reply was being sent: the handle is interrupted (the runner cancels
    the send), and the sink's report says whether it was stopped in time."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    [s] = sends(room.tick(T0))
    room.on_catalog_changed(catalog, {"dress.price"}, {}, T0 + 0.1)
    assert s.handle.state is HandleState.INTERRUPTED
    assert room.pending_count() == 1  # owed an outcome until the sink reports
    assert room.on_sent(s.handle, SendResult(False, "withdrawn before the sink posted it"), T0 + 0.2) == []
    assert room.stats["withdrawn_catalog_changed"] == 1 and room.stats["answered"] == 0
    assert_all_accounted(room)


def test_a_reply_the_sink_posted_before_the_withdrawal_reached_it_counts_as_sent(room, catalog):
    """Withdrawn a moment too late: the platform already had it, viewers saw it. It is counted and
    audited as sent (before, it was counted as withdrawn and the audit log missed a public reply)."""
    feed(room, 1, "多少钱", entry("dress.price"), T0)
    feed(room, 2, "多少钱", entry("dress.price"), T0)
    [s] = sends(room.tick(T0))
    room.on_catalog_changed(catalog, {"dress.price"}, {}, T0 + 0.1)
    actions = room.on_sent(s.handle, SENT, T0 + 0.2)
    [audit] = [a for a in actions if isinstance(a, Audit)]
    assert audit.outcome == "sent" and audit.text == s.text
    assert room.stats["withdrawn_catalog_changed"] == 0
    assert (room.stats["answered"], room.stats["aggregated"], room.stats["sent_before_withdrawal"]) == (1, 1, 1)
    assert room.on_sent(s.handle, SENT, T0 + 0.3) == []  # reported once
    assert_all_accounted(room)


def test_a_send_withdrawn_before_its_task_ran_is_settled_as_withdrawn(room, catalog):
    """Handed to the runner and withdrawn in the same loop step, before the send task started: the sink is
    never called, and the room still hears of it (nothing stays owed)."""
    import asyncio

    from cohost.dialog.runner import RoomRunner

    called = []

    async def main():
        runner = RoomRunner(room, None, on_chat=lambda r, reply: called.append(reply), on_overlay=lambda r, s: None,
                            talking_points=None)
        feed(room, 1, "多少钱", entry("dress.price"), T0)
        [s] = sends(room.tick(T0))
        runner._start_send(s)
        room.on_catalog_changed(catalog, {"dress.price"}, {}, T0 + 0.1)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert called == [] and not room.withdrawing
    assert room.stats["withdrawn_catalog_changed"] == 1
    assert_all_accounted(room)


def test_operator_pause_withdraws_pending_replies_and_suggestions(room):
    """Paused by the operator: queued replies are withdrawn through their handles, talking points too,
    and nothing more goes to chat until resume."""
    start = room.on_event(ProductEvent(type="product", product_id="fryer"), T0)
    gen = next(a for a in start if isinstance(a, StartTalkingPoints))
    room.limiter.record("busy", T0)
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 0.1)
    handle = room.groups["dress.price"].handle
    room.on_event(ControlEvent(type="control", action="pause"), T0 + 0.2)
    assert handle.state is HandleState.INTERRUPTED and gen.handle.state is HandleState.INTERRUPTED
    feed(room, 2, "能机洗吗", entry("dress_wash", "手洗"), T0 + 1)
    assert not tick(room, T0 + 3)
    assert room.stats["withdrawn_paused"] == 2
    resumed = room.on_event(ControlEvent(type="control", action="resume"), T0 + 4)
    assert any(isinstance(a, StartTalkingPoints) for a in resumed)
    assert_all_accounted(room)


def test_an_unknown_product_on_stage_is_shown_as_such(room):
    """A product id the catalog does not hold: the overlay says so (shop-wide answers go on)."""
    room.on_event(ProductEvent(type="product", product_id="sku_123456"), T0)
    assert room.snapshot(T0)["product"] == {"id": "sku_123456", "unknown": True}
    feed(room, 1, "包邮吗", entry("ship_free", "全场包邮", product=None), T0 + 1)
    [s] = tick(room, T0 + 1)
    assert s.text == "@u1 全场包邮"


def test_non_questions_never_appear_as_people_asking(room):
    """An unanswered complaint or remark is counted, but not shown as "N 人在问"."""
    for i, (text, label) in enumerate([("儿子正好缺鞋", "complaint"), ("骗子", "complaint"), ("有口袋吗", "question")]):
        ev = chat(i, text)
        room.on_decision(room.admit(ev, T0), decision(text, None, label=label, product="dress"), T0)
    assert [q["text"] for q in room.snapshot(T0)["questions"]] == ["有口袋吗"]
    assert room.stats["complaint"] == 2
    assert_all_accounted(room)


def test_names_are_cleaned_before_they_are_mentioned(room):
    """Newlines, NUL, right-to-left overrides, spaces at the edges and a name's own "@" never reach chat;
    a name with nothing printable left is not mentioned."""
    e = entry("dress_plus", "尺码到XL")
    room.limiter.record("busy", T0)
    for i, name in enumerate(["a\nb", "x\u202ey", "\x00z", "  空格   名 ", "@Tom", "\u200b\u200b"]):
        feed_named(room, i, f"n{i}", name, e, T0 + 0.01 * i)
    [s] = tick(room, T0 + 2)
    assert s.text == "@a b @xy @z @空格 名 @Tom 尺码到XL"


def test_a_stream_that_ends_withdraws_suggestions_and_says_so(room):
    """The platform says the stream ended: talking points are withdrawn and the overlay says why; when it
    goes live again suggestions come back."""
    from cohost.events import StreamEvent

    start = room.on_event(ProductEvent(type="product", product_id="fryer"), T0)
    gen = next(a for a in start if isinstance(a, StartTalkingPoints))
    room.on_event(StreamEvent(type="stream", state="end"), T0 + 1)
    assert gen.handle.state is HandleState.INTERRUPTED
    assert room.snapshot(T0 + 1)["pause_reason"] == "直播已结束"
    again = room.on_event(StreamEvent(type="stream", state="start"), T0 + 2)
    assert any(isinstance(a, StartTalkingPoints) for a in again) and not room.paused


# -- what the streamer says (transcripts) -------------------------------------------------------------------


def heard(room: Room, text: str, now: float, end: float | None = None) -> list:
    return room.on_event(TranscriptEvent(type="transcript", speaker="streamer", text=text, end=end), now)


def test_filler_gives_the_turn_back_after_the_false_interruption_timeout(room):
    """嗯/对对对 while speaking: suggestions come back false_interruption_s after it, not the full delay."""
    room.on_event(SpeechEvent(type="speech", state="start"), T0)
    room.on_event(SpeechEvent(type="speech", state="end"), T0 + 0.6)
    heard(room, "嗯对对对", T0 + 0.8)
    assert room.paused
    room.tick(T0 + 1.1)
    assert room.paused
    room.tick(T0 + 1.25)
    assert not room.paused
    assert room.stats["speech_filler"] == 1
    assert room.snapshot(T0 + 1.3)["transcript"][-1]["kind"] == "filler"


def test_a_real_sentence_keeps_the_full_resume_delay(room):
    """A transcript that says something, even without speech events (a client with its own ASR), pauses."""
    heard(room, "这款面料是雪纺的，夏天穿很凉快", T0)
    assert room.paused and room.snapshot(T0)["speaking"]
    room.tick(T0 + 1.0)
    assert room.paused
    room.tick(T0 + 1.6)
    assert not room.paused


def test_the_streamer_switches_the_product_by_voice(room):
    """来看6号链接 puts the fryer on stage: the dress's suggestions are withdrawn, new ones start."""
    actions = heard(room, "好，来看6号链接", T0 + 1, end=T0 + 0.2)
    assert room.on_stage == "fryer"
    assert any(isinstance(a, StartTalkingPoints) and a.product_id == "fryer" for a in actions)
    assert room.snapshot(T0 + 1)["product"]["id"] == "fryer"
    assert room.transcript[-1].kind == "switch" and room.transcript[-1].product_id == "fryer"
    assert room.stats["voice_product_switch"] == 1
    assert list(room.voice_latencies_ms) == [pytest.approx(800.0)]
    heard(room, "这个空气炸锅容量很大", T0 + 3)   # a name without a cue: no switch, no restart
    assert room.on_stage == "fryer" and room.stats["voice_product_switch"] == 1


def test_a_question_answered_out_loud_is_marked_and_its_chat_reply_withdrawn(room):
    """The limiter holds a reply; the streamer answers it first: the reply is withdrawn and counted,
    the overlay marks the question, and repeats within the window count as covered."""
    room.limiter.record("busy", T0)
    ship = entry("ship_time", "江浙沪次日达，广东2天左右", None)
    feed(room, 1, "发货到广东要几天", ship, T0 + 0.1)
    feed(room, 2, "发货到广东要几天", ship, T0 + 0.2)
    group = room.groups["ship_time"]
    heard(room, "广东两天就到", T0 + 0.8)
    assert group.handle.state is HandleState.INTERRUPTED
    assert not tick(room, T0 + 3)
    assert room.stats["answered_by_streamer"] == 2
    [q] = room.snapshot(T0 + 3)["questions"]
    assert q["spoken"] and not q["replied"]
    assert room.transcript[-1].kind == "answer" and room.transcript[-1].answered == ("faq:ship_time",)
    feed(room, 3, "发货到广东要几天", ship, T0 + 5)
    assert not tick(room, T0 + 6)
    assert room.stats["covered_by_recent"] == 1
    assert_all_accounted(room)


def test_an_unanswerable_question_answered_out_loud_is_marked(room):
    """A question the catalog cannot answer stays for the streamer; once they answer it, the overlay says so."""
    for i in range(3):
        room.on_decision(room.admit(chat(i, "有XXL吗"), T0 + i), decision("有XXL吗", None, product="dress"), T0 + i)
    heard(room, "有人问XXL有没有", T0 + 4)     # reading it out is not answering it
    assert not room.snapshot(T0 + 4)["questions"][0]["spoken"]
    heard(room, "XXL也有的", T0 + 5)
    assert room.snapshot(T0 + 5)["questions"][0]["spoken"]
    assert room.stats["voice_answered"] == 1


def test_talking_points_do_not_repeat_what_was_just_said(room):
    """Generation is told what the streamer said; points that repeat it anyway are dropped."""
    heard(room, "这个空气炸锅功率1500瓦，五分钟就能炸好", T0)
    start = room.on_event(ProductEvent(type="product", product_id="fryer"), T0 + 1)
    gen = next(a for a in start if isinstance(a, StartTalkingPoints))
    assert gen.said == ("这个空气炸锅功率1500瓦，五分钟就能炸好",)
    room.on_talking_points(gen.handle, ["功率1500瓦，五分钟炸好", "5升大容量，一家人够用"], T0 + 2)
    assert room.snapshot(T0 + 2)["talking_points"] == ["5升大容量，一家人够用"]
    assert room.stats["talking_points_already_said"] == 1


def test_the_overlay_shows_the_last_lines_and_the_speech_model_hears_the_room(room):
    for i, text in enumerate(["大家好", "嗯", "今天给大家带来这条裙子", "面料是雪纺的"]):
        heard(room, text, T0 + i)
    assert [line["text"] for line in room.snapshot(T0 + 4)["transcript"]] == ["嗯", "今天给大家带来这条裙子", "面料是雪纺的"]
    assert room.recently_said(T0 + 4) == ["大家好", "今天给大家带来这条裙子", "面料是雪纺的"]
    room.on_decision(room.admit(chat(9, "发货到广东要几天"), T0 + 4),
                     decision("发货到广东要几天", None, product="dress"), T0 + 4)
    words = room.listening_words(T0 + 5)
    assert words.startswith("法式碎花连衣裙") and "发货到广东要几天" in words and "家用空气炸锅" in words
    assert len(words) <= 120
