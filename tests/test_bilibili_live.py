"""The Bilibili client and sink against the fake Bilibili (cohost.testing.fake_bilibili) on 127.0.0.1:
reconnects without loss or duplicates, heartbeats, stalls, stale tokens, host rotation, Wbi, stream end,
posting replies (form, cookies, 'too fast', splitting), and one room end to end through the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import websockets

from cohost.events import ChatEvent, RoomEvent
from cohost.gate import Gate
from cohost.live import live_server
from cohost.sinks.base import SENT, OutgoingReply
from cohost.sinks.bilibili import BilibiliSink, split_sentences
from cohost.sources.base import Backoff, SourceHealth
from cohost.sources.bilibili import BilibiliClient, BilibiliCredentials, builders
from cohost.testing.fake_bilibili import FakeBilibili


class RecordingHealth(SourceHealth):
    """SourceHealth that remembers every state it was set to."""

    def __init__(self, name: str):
        super().__init__(name)
        self.history: list[tuple[str, str, int]] = []

    def set(self, state, message, detail="", *, attempt=None):  # type: ignore[override]
        super().set(state, message, detail, attempt=attempt)
        self.history.append((state, message, self.attempt))


def make_client(fake: FakeBilibili, **kw) -> BilibiliClient:
    kw.setdefault("credentials", fake.credentials)
    kw.setdefault("backoff", Backoff(base_s=0.01, cap_s=0.05))
    kw.setdefault("proxy", None)  # 127.0.0.1, whatever the environment's proxy settings
    client = BilibiliClient(kw.pop("room", fake.short_id), api_base=fake.api_base, nav_base=fake.api_base,
                            ws_scheme="ws", **kw)
    client.health = RecordingHealth(client.name)
    return client


class Run:
    """A client running in the background, collecting what it submits."""

    def __init__(self, client: BilibiliClient):
        self.client = client
        self.events: list = []
        self.task: asyncio.Task | None = None

    def submit(self, event) -> bool:
        self.events.append(event)
        return True

    async def until(self, pred, within_s: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + within_s
        while not pred():
            if self.task is not None and self.task.done():
                raise AssertionError(f"the client stopped while waiting for {what}: {self.client.health.as_dict()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; health {self.client.health.as_dict()}")
            await asyncio.sleep(0.01)

    def live(self) -> bool:
        return self.client.health.state == "live"


@contextlib.asynccontextmanager
async def running(client: BilibiliClient) -> AsyncIterator[Run]:
    run = Run(client)
    run.task = asyncio.create_task(client.run(run.submit))
    try:
        yield run
    finally:
        run.task.cancel()
        await asyncio.gather(run.task, return_exceptions=True)


def chats(run: Run) -> list[ChatEvent]:
    return [e for e in run.events if isinstance(e, ChatEvent)]


def reply(text: str, reply_id: int = 1) -> OutgoingReply:
    # Only gated text can be posted; the text is its own fact here.
    return OutgoingReply("bili", Gate().check(text, text).text, ("e1",), "faq", 10.0, reply_id)


# -- the client -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("drops", [3])
def test_every_danmaku_is_delivered_once_across_forced_disconnects(drops):
    """N danmaku in ver 0, zlib and brotli messages, the link aborted K times mid-stream, and the fake
    re-sending the last few on every reconnect: each danmaku reaches the room exactly once."""
    n = 90

    async def main():
        async with FakeBilibili(replay_overlap=4, send_interval_s=0.002) as fake, running(make_client(fake)) as run:
            await run.until(run.live, what="the first connection")
            fake.drop_after(*[n * (k + 1) // (drops + 1) for k in range(drops)])
            for i in range(n):
                fake.push_danmaku(f"第{i}条", uid=100 + i, uname=f"观众{i}", id_str=f"id-{i}", ver=(0, 2, 3)[i % 3])
            await run.until(lambda: len(chats(run)) >= n and run.live(), what="all danmaku")
            await asyncio.sleep(0.3)  # anything late would show up as a duplicate now
            return fake.connections, run.client.stats, run.client.health.history, [c.id for c in chats(run)]

    connections, stats, history, ids = asyncio.run(main())
    assert ids == [f"id-{i}" for i in range(n)]  # every one, once, in order
    assert connections == drops + 1 and stats["duplicates"] > 0 and stats["bootstraps"] == 1
    states = [s for s, _m, _a in history]
    assert states == ["live"] + ["reconnecting", "live"] * drops + ["stopped"]
    assert ("reconnecting", "B站连接中断，正在重连（第1次）", 1) in history
    assert all(a == 0 for s, _m, a in history if s == "live")


def test_heartbeats_are_answered_and_a_stalled_link_is_replaced():
    async def main():
        async with FakeBilibili(popularity=4321) as fake, \
                running(make_client(fake, heartbeat_s=0.05, receive_timeout_s=0.6)) as run:
            await run.until(lambda: fake.heartbeats >= 3 and run.client.popularity == 4321, what="heartbeats")
            fake.stall()  # no data, no heartbeat replies: the receive timeout must notice
            await run.until(lambda: fake.connections == 2 and run.live(), within_s=5, what="a new connection")
            fake.push_danmaku("还在吗", uid=5, id_str="after-stall")
            await run.until(lambda: chats(run), what="the danmaku after the stall")
            return run.client.health.history, chats(run)

    history, got = asyncio.run(main())
    assert [c.text for c in got] == ["还在吗"]
    assert any(s == "reconnecting" and "正在重连" in m for s, m, _a in history)


def test_a_stale_token_makes_the_client_bootstrap_again():
    async def main():
        async with FakeBilibili() as fake, running(make_client(fake)) as run:
            await run.until(run.live)
            fake.expire_token()  # new token at the next getDanmuInfo; the live link is dropped
            await run.until(lambda: len(fake.bootstraps) == 2 and run.live(), what="a fresh token")
            fake.push_danmaku("新令牌", uid=5, id_str="t2")
            await run.until(lambda: chats(run))
            return fake.auths, run.client.stats

    auths, stats = asyncio.run(main())
    assert [a["key"] for a in auths] == ["fake-token-1", "fake-token-1", "fake-token-2"]
    assert stats["auth_rejected"] == 1 and stats["bootstraps"] == 2
    assert auths[0]["uid"] == 777 and auths[0]["roomid"] == 10001 and auths[0]["buvid"] == "fake-buvid3"
    assert auths[0]["protover"] == 3 and auths[0]["ver"] == 1


def test_hosts_rotate_past_one_that_is_down():
    async def main():
        async with FakeBilibili(dead_hosts=1) as fake, running(make_client(fake)) as run:
            await run.until(run.live, what="a connection on the next host")
            return run.client.health.history, fake.ws_ports[0], run.client.health.detail

    history, good_port, detail = asyncio.run(main())
    assert history[0][:2] == ("reconnecting", "B站连接失败，正在重试（第1次）")
    assert history[1][0] == "live" and f":{good_port}/" in detail


def test_an_unanswered_auth_times_out_and_is_retried():
    async def main():
        async with FakeBilibili(hold_auth=True) as fake, running(make_client(fake, auth_timeout_s=0.2)) as run:
            await run.until(lambda: fake.connections >= 2, what="a retry")
            fake.configure(hold_auth=False)
            await run.until(run.live)
            return run.client.health.history

    history = asyncio.run(main())
    assert history[0][0] == "reconnecting" and [s for s, _m, _a in history][-2:] == ["live", "stopped"]


def test_wbi_signing_required_without_a_signer_fails_with_a_clear_message():
    async def main():
        async with FakeBilibili(require_wbi=True) as fake:
            client = make_client(fake)
            await asyncio.wait_for(client.run(lambda e: True), 10)  # returns: retrying cannot help
            signed = make_client(fake, wbi_signer=lambda p: {**p, "wts": "1700000000", "w_rid": "f" * 32})
            async with running(signed) as run:
                await run.until(run.live)
            return client.health, fake.bootstraps

    health, boots = asyncio.run(main())
    assert health.state == "failed" and "Wbi" in health.message and "wbi_signer" in health.detail
    assert boots[-1]["w_rid"] == "f" * 32


def test_an_unknown_room_fails_and_max_attempts_gives_up():
    async def main():
        async with FakeBilibili() as fake:
            missing = make_client(fake, room=999)
            await asyncio.wait_for(missing.run(lambda e: True), 10)
            fake.configure(hold_auth=True)
            stubborn = make_client(fake, auth_timeout_s=0.05, max_attempts=2)
            await asyncio.wait_for(stubborn.run(lambda e: True), 10)
            return missing.health, stubborn.health

    missing, stubborn = asyncio.run(main())
    assert (missing.state, missing.message) == ("failed", "B站直播间不存在")
    assert stubborn.state == "failed" and stubborn.message == "B站连接失败，已重试2次"


def test_the_stream_ending_and_starting_again_shows_in_health():
    async def main():
        async with FakeBilibili() as fake:
            async with running(make_client(fake)) as run:
                await run.until(run.live)
                fake.end_stream()
                await run.until(lambda: run.client.health.state == "ended")
                message = run.client.health.message
                fake.push(builders.live(fake.room_id))
                await run.until(run.live)
            ends = make_client(fake, stop_on_end=True)
            task = asyncio.create_task(ends.run(lambda e: True))
            await asyncio.sleep(0.2)
            fake.end_stream()
            await asyncio.wait_for(task, 5)  # run returns: the stream is over
            return message, ends.health.state

    message, state = asyncio.run(main())
    assert message == "B站直播已结束" and state == "ended"


def test_events_of_every_kind_and_the_accounts_own_danmaku_is_skipped():
    async def main():
        async with FakeBilibili() as fake, running(make_client(fake)) as run:
            await run.until(run.live)
            fake.push(builders.danmu_msg("有大码吗", uid=5, id_str="q1"), builders.send_gift(6, "老板", "小花花", tid="g0"),
                      builders.send_gift_v2(6, "老板", [("小花花", 1, 100)], tid_prefix="g"),  # the same gift as V2
                      builders.interact_word(7, "路人", msg_type=2), ver=3)
            fake.push(builders.danmu_msg("我自己发的", uid=fake.account_uid, id_str="own"), builders.watched_change(5),
                      ver=2)
            fake.push_raw(b"\x00\x00\x00\x10garbage!")
            await run.until(lambda: len(run.events) == 3 and run.client.health.errors == 1)
            await asyncio.sleep(0.2)
            return run.events, run.client.stats

    events, stats = asyncio.run(main())
    chat, gift, follow = events
    assert chat.text == "有大码吗" and gift.type == "gift" and gift.value == 0.1 and follow.type == "follow"
    assert isinstance(gift, RoomEvent) and stats["duplicates"] == 1 and stats["own"] == 1


def test_credentials_come_from_the_environment_and_never_print(monkeypatch):
    monkeypatch.setenv("COHOST_BILIBILI_SESSDATA", "s3cr3t")
    monkeypatch.setenv("COHOST_BILIBILI_BILI_JCT", "csrf-token-9")
    monkeypatch.setenv("COHOST_BILIBILI_BUVID3", "b3")
    creds = BilibiliCredentials.from_env()
    assert creds == BilibiliCredentials("s3cr3t", "csrf-token-9", "b3") and creds.can_send
    assert "s3cr3t" not in repr(creds) and "csrf-token-9" not in repr(creds)
    assert BilibiliClient(1).credentials == creds and BilibiliSink(1).credentials == creds
    monkeypatch.delenv("COHOST_BILIBILI_SESSDATA")
    assert not BilibiliCredentials.from_env().logged_in


def test_a_guest_connects_with_uid_0_and_an_expired_login_falls_back_to_guest():
    async def main():
        async with FakeBilibili() as fake:
            async with running(make_client(fake, credentials=BilibiliCredentials())) as run:
                await run.until(run.live)
            stale = BilibiliCredentials("old-session", "jct", "b3")
            async with running(make_client(fake, credentials=stale)) as run:
                await run.until(run.live)
            return fake.auths

    auths = asyncio.run(main())
    assert [a["uid"] for a in auths] == [0, 0] and auths[0]["buvid"] == "" and auths[1]["buvid"] == "b3"


# -- the sink -----------------------------------------------------------------------------------------------


def sink_for(fake: FakeBilibili, **kw) -> BilibiliSink:
    kw.setdefault("credentials", fake.credentials)
    kw.setdefault("min_interval_s", 0.0)
    kw.setdefault("proxy", None)
    return BilibiliSink(fake.room_id, api_base=fake.api_base, **kw)


def test_the_sink_posts_the_form_and_cookies_the_endpoint_checks():
    async def main():
        async with FakeBilibili() as fake:
            sink = sink_for(fake)
            try:
                return await sink.send(reply("@小王 有现货")), fake.posts
            finally:
                await sink.aclose()

    result, posts = asyncio.run(main())
    assert result == SENT
    (post,) = posts
    assert post.code == 0 and post.text == "@小王 有现货"
    f = post.form
    assert (f["roomid"], f["color"], f["fontsize"], f["mode"]) == ("10001", "16777215", "25", "1")
    assert f["rnd"].isdigit() and abs(int(f["rnd"]) - time.time()) < 60
    assert f["csrf"] == f["csrf_token"] == "fake-bili-jct"
    assert post.cookies["SESSDATA"] == "fake-sessdata" and post.cookies["bili_jct"] == "fake-bili-jct"


def test_too_fast_asks_the_room_to_slow_down():
    async def main():
        async with FakeBilibili(min_send_interval_s=30) as fake:
            sink = sink_for(fake, too_fast_retry_s=2.5)
            try:
                first = await sink.send(reply("第一条", 1))
                second = await sink.send(reply("第二条", 2))
                third = await sink.send(reply("第三条", 3))  # the sink itself holds off now
                return first, second, third, [p.code for p in fake.posts]
            finally:
                await sink.aclose()

    first, second, third, codes = asyncio.run(main())
    assert first.ok and codes == [0, 10031]
    assert not second.ok and second.slow_down and second.retry_after_s == 2.5 and "10031" in second.reason
    assert not third.ok and not third.slow_down and 0 < third.retry_after_s <= 2.5


def test_refusals_http_errors_and_timeouts():
    async def main():
        async with FakeBilibili() as fake:
            out = {}
            wrong = sink_for(fake, credentials=BilibiliCredentials("fake-sessdata", "forged", "b3"))
            out["csrf"] = await wrong.send(reply("x"))
            out["none"] = await sink_for(fake, credentials=BilibiliCredentials()).send(reply("x"))
            fake.configure(send_mode="fail")
            ok_sink = sink_for(fake, timeout_s=0.3)
            out["500"] = await ok_sink.send(reply("x"))
            fake.configure(send_mode="hang")
            out["hang"] = await ok_sink.send(reply("x"))
            await wrong.aclose()
            await ok_sink.aclose()
            return out

    out = asyncio.run(main())
    assert not out["csrf"].ok and "-111" in out["csrf"].reason and "csrf" in out["csrf"].reason
    assert not out["csrf"].retryable
    assert not out["none"].ok and "COHOST_BILIBILI_SESSDATA" in out["none"].reason
    assert out["500"].retryable and "500" in out["500"].reason
    assert out["hang"].retryable and "in time" in out["hang"].reason


def test_a_long_reply_is_split_at_sentence_ends_and_a_retry_sends_only_what_is_left():
    text = "@小王 有现货。今天下单，明天发货。"  # 9 + 9 characters
    assert split_sentences(text, 10, 2) == ["@小王 有现货。", "今天下单，明天发货。"]
    assert split_sentences(text, 10, 1) is None and split_sentences("一句很长很长很长很长的话没有句号", 10, 3) is None

    async def main():
        async with FakeBilibili(max_msg_chars=10, min_send_interval_s=0.3) as fake:
            sink = sink_for(fake, max_chars=10, min_interval_s=0.0, too_fast_retry_s=0.4)
            try:
                first = await sink.send(reply(text, 7))       # the second part is too fast
                await asyncio.sleep(0.45)
                retry = await sink.send(reply(text, 7))       # only the second part goes
                await asyncio.sleep(0.35)
                cut = await sink.send(reply("这款锅容量五升适合三到五口之家使用", 8))
                return first, retry, cut, fake.posts, fake.sent_texts
            finally:
                await sink.aclose()

    first, retry, cut, posts, sent = asyncio.run(main())
    assert first.slow_down and retry == SENT and cut == SENT
    assert [p.code for p in posts] == [0, 10031, 0, 0]
    assert sent[:2] == ["@小王 有现货。", "今天下单，明天发货。"]
    assert len(sent[2]) <= 10 and sent[2].startswith("这款锅容量")


# -- end to end: the fake Bilibili, the client, the real server, the sink ----------------------------------


async def recv_until(ws, pred, within_s: float = 15.0):
    async with asyncio.timeout(within_s):
        while True:
            msg = json.loads(await ws.recv())
            if pred(msg):
                return msg


CAPTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "bilibili"
CAPTURED = ("03_ver2_op5_WATCHED_CHANGE+INTERACT_WORD.bin", "04_ver3_op5_INTERACT_WORD.bin", "05_ver0_op5_DANMU_MSG.bin")


@pytest.mark.slow
@pytest.mark.skipif(not CAPTURES.is_dir(), reason="needs ../shared/data/bilibili")
def test_a_danmaku_gets_a_reply_posted_in_the_bilibili_room(engine):
    """包邮吗 pushed by the fake → BilibiliClient → hub.run_source → the room answers → BilibiliSink posts it
    on the fake /msg/send; the overlay shows the source live; the reply's echo is not taken as a question."""
    cfg = engine.config.model_copy(update={"reply": engine.config.reply.model_copy(update={"max_chars": 20})})

    async def main():
        async with FakeBilibili(echo_sent=True, min_send_interval_s=0.5) as fake, \
                live_server(engine, port=0, config=cfg) as (app, port):
            hub = app.state.hub
            client = make_client(fake)  # by the short id, as streamers give it
            sink = BilibiliSink(fake.short_id, api_base=fake.api_base, credentials=fake.credentials, proxy=None,
                                source=client)
            task = asyncio.create_task(hub.run_source("bili", None, client, sink))
            try:
                # The hub pushes a health change only once the room has an overlay state: connect when live.
                assert await fake.await_for(lambda f: client.health.state == "live", 15), client.health
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/overlay?room=bili") as page:
                    live = await recv_until(page, lambda m: m.get("sources") and m["sources"][0]["state"] == "live")
                    for name in CAPTURED:  # real captured traffic first: two entries and a danmaku "what"
                        fake.push_raw((CAPTURES / name).read_bytes())
                    fake.push_danmaku("包邮吗", uid=5, uname="小王", id_str="q-1", ver=3)
                    assert await fake.await_for(lambda f: f.sent_texts, 15), fake.posts
                    await fake.await_for(lambda f: client.stats["own"] >= 1, 5)
                stats = hub.stats("bili")
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await sink.aclose()
            return live, fake.sent_texts, stats, client.stats, fake.posts

    live, sent, stats, client_stats, posts = asyncio.run(main())
    assert posts[0].form["roomid"] == "10001"  # the real room id the client bootstrapped
    assert live["sources"][0]["message"] == "B站已连接" and live["sources"][0]["name"] == "bilibili:1"
    assert len(sent) >= 1 and all(len(t) <= 20 for t in sent) and "包邮" in "".join(sent)
    assert stats["stats"]["answered"] == 1 and stats["reply_owner"] == "bilibili:1"
    assert client_stats["own"] == 1  # our reply came back into the room and was not answered again
    assert stats["stats"]["event_enter"] == 2 and stats["stats"]["received"] == 2  # "what" and 包邮吗
