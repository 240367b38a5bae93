"""DouyinClient against FakeDouyin on 127.0.0.1: bootstrap, signature, heartbeats, acks, exactly-once delivery
across forced disconnects and stalls (resume with cursor + internal_ext, re-sent messages dropped), host
rotation, products on stage, the stream's end; ConsoleRelaySink; and one chat through the real server to a
console tool."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest
import websockets

from cohost.errors import CohostError
from cohost.events import ChatEvent, ProductEvent
from cohost.gate import Gate
from cohost.sinks.base import SENT, OutgoingReply
from cohost.sinks.console import ConsoleRelaySink
from cohost.sources.base import Backoff
from cohost.sources.douyin import HEARTBEAT, DouyinClient
from cohost.sources.douyin import messages as m
from cohost.sources.douyin.client import Bootstrap, push_params, push_url, signature_params, x_ms_stub
from cohost.testing.fake_douyin import FakeDouyin, fake_signer

VIEWER = m.user(7001, "小王", sec_uid="MS4wLjABAAAAwang", fan_level=3)


def client_for(fake: FakeDouyin, **kw) -> DouyinClient:
    options = {"signer": fake_signer, "live_base": fake.live_base, "hosts": fake.hosts, "heartbeat_s": 0.1,
               "recv_timeout_s": 3.0, "backoff": Backoff(base_s=0.01, cap_s=0.05), "proxy": None,
               "open_timeout_s": 3.0, **kw}
    return DouyinClient(fake.web_rid, **options)


async def eventually(pred, within_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Collector:
    def __init__(self) -> None:
        self.events: list = []

    def __call__(self, event) -> bool:
        self.events.append(event)
        return True

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events if isinstance(e, ChatEvent)]


async def started(fake: FakeDouyin, client: DouyinClient, got: Collector) -> asyncio.Task:
    task = asyncio.create_task(client.run(got))
    await eventually(lambda: fake.conns and client.health.state == "live", what="the first connection")
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def chats(start: int, n: int) -> list[bytes]:
    now = int(time.time() * 1000)
    return [m.chat(i, VIEWER, f"第{i}条", create_ms=now) for i in range(start, start + n)]


# -- the client's pieces -----------------------------------------------------------------------------------


def test_without_a_signer_the_client_says_what_it_needs():
    with pytest.raises(CohostError, match=r"signer=f.*x_ms_stub"):
        DouyinClient("123", signer=None)


def test_the_push_url_carries_the_documented_query_and_the_signature():
    boot = Bootstrap("7388523424571869991", "ttw", "7300000000000000001")
    params = push_params(boot, now_ms=1_720_000_000_000)
    url = push_url("wss://webcast5-ws-web-lq.douyin.com", params, "SIG")
    assert url.startswith("wss://webcast5-ws-web-lq.douyin.com/webcast/im/push/v2/?app_name=douyin_web&")
    for part in ("compress=gzip", "room_id=7388523424571869991", "user_unique_id=7300000000000000001",
                 "aid=6383", "identity=audience", "did_rule=3", "signature=SIG",
                 "internal_ext=internal_src%3Adim%7Cwss_push_room_id%3A7388523424571869991%7Cwss_push_did%3A"):
        assert part in url
    resumed = push_params(boot, cursor="t-9_r-1", internal_ext="internal_src:dim|seq:9")
    assert (resumed["cursor"], resumed["internal_ext"]) == ("t-9_r-1", "internal_src:dim|seq:9")
    signed = signature_params(params)
    assert list(signed) == ["live_id", "aid", "version_code", "webcast_sdk_version", "room_id", "sub_room_id",
                            "sub_channel_id", "did_rule", "user_unique_id", "device_platform", "device_type", "ac",
                            "identity"]
    assert len(x_ms_stub(signed)) == 32


def test_bootstrap_reads_the_ttwid_cookie_and_the_room_id_from_the_page():
    async def main():
        async with FakeDouyin(room_id=7123) as fake:
            boot = await client_for(fake).bootstrap()
            assert boot.room_id == "7123" and boot.ttwid.startswith("1%7C") and len(boot.did) == 19
    asyncio.run(main())


def test_a_wrong_web_rid_fails_with_the_reason_after_max_attempts():
    async def main():
        async with FakeDouyin() as fake:
            client = DouyinClient("no-such-room", signer=fake_signer, live_base=fake.live_base, hosts=fake.hosts,
                                  backoff=Backoff(0.01, 0.02), max_attempts=2, proxy=None)
            await asyncio.wait_for(client.run(Collector()), 10)
            h = client.health
            assert (h.state, h.message, h.attempt) == ("failed", "抖音连接失败（已重试2次）", 2)
            assert "no room id on the page of no-such-room (HTTP 404)" in h.detail
    asyncio.run(main())


def test_a_refused_signature_is_retried_and_reported():
    async def main():
        async with FakeDouyin() as fake:
            client = client_for(fake, signer=lambda params: "forged", max_attempts=3)
            seen = []
            task = asyncio.create_task(client.run(Collector()))
            while not task.done():
                seen.append(client.health.message)
                await asyncio.sleep(0.005)
            assert fake.refusals == ["bad signature"] * 3 and fake.stats["connections"] == 0
            assert "抖音连接失败，正在重试（第1次）" in seen and client.health.state == "failed"
            assert client.health.detail == "handshake refused: HTTP 403"
    asyncio.run(main())


def test_a_signer_that_returns_no_signature_is_reported():
    async def main():
        async with FakeDouyin() as fake:
            client = client_for(fake, signer=lambda params: None, max_attempts=1)
            await asyncio.wait_for(client.run(Collector()), 5)
            assert client.health.state == "failed" and fake.stats["connections"] == 0
            assert client.health.detail == "the Douyin signer returned NoneType, not a signature string"
    asyncio.run(main())


def test_an_async_signer_works():
    async def main():
        async def signer(params):
            await asyncio.sleep(0)
            return fake_signer(params)

        async with FakeDouyin() as fake:
            got = Collector()
            task = await started(fake, client_for(fake, signer=signer), got)
            fake.push(*chats(1, 2))
            await eventually(lambda: len(got.events) == 2)
            await eventually(lambda: fake.stats["acks"] == fake.stats["frames"] == 1, what="the ack")
            assert fake.unacked == 0 and fake.stats["bad_acks"] == 0
            await stop(task)
    asyncio.run(main())


# -- delivery --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, k", [(60, 5), (25, 1)])
def test_n_chats_across_k_forced_disconnects_arrive_exactly_once(n, k):
    async def main():
        async with FakeDouyin(batch=2, drop_every=3, max_drops=k) as fake:
            client = client_for(fake)
            got = Collector()
            task = await started(fake, client, got)
            for raw in chats(1, n):  # the room goes on while the client reconnects
                fake.push(raw)
                await asyncio.sleep(0.003)
            await eventually(lambda: len(got.events) >= n, what=f"{n} chats")
            await asyncio.sleep(0.2)  # nothing more comes: no duplicate is late
            await stop(task)
            assert got.ids == [str(i) for i in range(1, n + 1)]
            assert fake.stats["drops"] == k and fake.stats["resumes"] == k and fake.stats["fresh"] == 1
            assert fake.stats["reconnect_without_cursor"] == 0 and fake.stats["resume_without_internal_ext"] == 0
            assert client.codec.counts["duplicates"] == k  # each resume re-sent its last message once
            # Each drop may lose the acks in flight; the rest all came back right.
            assert fake.stats["acks"] >= fake.stats["frames"] - 3 * k and fake.stats["bad_acks"] == 0
            assert client.health.events == n and client.health.errors == 0
            assert client.health.state == "stopped" and client.attempt == 0
            # The resumes asked for the cursor and internal_ext of the last frame delivered.
            for query in fake.connects[1:]:
                assert query["cursor"].startswith("fake-") and "fake_seq:" in query["internal_ext"]
    asyncio.run(main())


class SlowBackoff(Backoff):
    def next_delay(self) -> float:
        self.attempt += 1
        return 0.3  # long enough to be seen


def test_health_says_reconnecting_in_chinese_and_recovers():
    async def main():
        async with FakeDouyin() as fake:
            client = client_for(fake, backoff=SlowBackoff())
            got = Collector()
            task = await started(fake, client, got)
            fake.drop()
            await eventually(lambda: client.health.state == "reconnecting")
            assert (client.health.message, client.health.attempt) == ("抖音连接中断，正在重连（第1次）", 1)
            await eventually(lambda: client.health.state == "live")
            fake.push(*chats(1, 1))
            await eventually(lambda: client.health.attempt == 0 and got.events)
            await stop(task)
    asyncio.run(main())


def test_a_stalled_connection_times_out_and_resumes():
    async def main():
        async with FakeDouyin() as fake:
            client = client_for(fake, recv_timeout_s=0.5)
            got = Collector()
            task = await started(fake, client, got)
            fake.push(*chats(1, 2))
            await eventually(lambda: len(got.events) == 2)
            fake.stall()
            fake.push(*chats(3, 3))  # not sent on the stalled connection
            await eventually(lambda: len(got.events) == 5, what="the chats after the stall")
            await stop(task)
            assert got.ids == ["1", "2", "3", "4", "5"] and fake.stats["connections"] == 2
            assert fake.stats["resumes"] == 1
    asyncio.run(main())


def test_heartbeats_keep_a_quiet_connection_and_their_absence_loses_it():
    async def main():
        async with FakeDouyin(idle_timeout_s=0.4) as fake:
            client = client_for(fake, heartbeat_s=0.1)
            task = await started(fake, client, Collector())
            await asyncio.sleep(1.0)
            assert fake.stats["connections"] == 1 and fake.stats["heartbeats"] >= 5
            assert fake.stats["idle_drops"] == 0
            await stop(task)
            # A client that never beats is dropped.
            boot = await client.bootstrap()
            params = push_params(boot)
            url = push_url(fake.hosts[0], params, fake_signer(signature_params(params)))
            async with websockets.connect(url, additional_headers={"cookie": f"ttwid={boot.ttwid}"}) as raw:
                with pytest.raises(websockets.ConnectionClosed):
                    await asyncio.wait_for(raw.recv(), 3)
            assert fake.stats["idle_drops"] == 1
            # And a heartbeat is answered with one.
            async with websockets.connect(url, additional_headers={"cookie": f"ttwid={boot.ttwid}"}) as raw:
                await raw.send(HEARTBEAT)
                assert m.decode("PushFrame", await asyncio.wait_for(raw.recv(), 3))["payloadType"] == "hb"
    asyncio.run(main())


def test_a_server_close_frame_makes_the_client_come_back_and_resume():
    async def main():
        async with FakeDouyin() as fake:
            client = client_for(fake)
            got = Collector()
            task = await started(fake, client, got)
            fake.push(*chats(1, 2))
            await eventually(lambda: len(got.events) == 2)
            await fake.close_frames()
            await eventually(lambda: fake.stats["connections"] == 2)
            fake.push(*chats(3, 1))
            await eventually(lambda: len(got.events) == 3)
            await stop(task)
            assert got.ids == ["1", "2", "3"] and fake.stats["resumes"] == 1
    asyncio.run(main())


def test_hosts_rotate_past_a_dead_one():
    async def main():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"ws://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: connection refused
            async with FakeDouyin() as fake:
                client = client_for(fake, hosts=[dead, *fake.hosts])
                got = Collector()
                task = await started(fake, client, got)
                fake.push(*chats(1, 1))
                await eventually(lambda: got.events)
                detail = client.health.detail
                await stop(task)
                assert client.connections == 1 and detail == fake.hosts[0]
    asyncio.run(main())


def test_room_events_products_and_the_stream_end():
    async def main():
        async with FakeDouyin(batch=1) as fake:  # one message a frame: nothing comes after the end
            client = client_for(fake, product_ids={"3691984502923623681": "dress"}, links={2: "scarf"})
            got = Collector()
            task = await started(fake, client, got)
            fake.push(m.gift(1, VIEWER, gift_id=3242, name="入团卡", diamonds=1),
                      m.like(2, VIEWER, 10), m.member(3, VIEWER, 88), m.social(4, VIEWER),
                      m.room_user_seq(5, 497, 6597),
                      m.product_change(6, [(3691984502923623681, 1, 1), (3650022775957120561, 2, 0)]),
                      m.product_change(7, [(3691984502923623681, 1, 0), (3650022775957120561, 2, 1)]),
                      *chats(8, 1), m.control(9, 3), *chats(10, 1))
            await asyncio.wait_for(task, 5)  # run returns: the stream is over
            kinds = [e.type for e in got.events]
            assert kinds == ["gift", "like", "enter", "follow", "product", "product", "chat", "stream"]
            products = [e for e in got.events if isinstance(e, ProductEvent)]
            assert [p.product_id for p in products] == ["dress", "scarf"] and products[0].mapped
            assert got.events[0].value == 0.1 and got.events[0].user.name == "小王"
            assert client.stats == {"online": 497, "total_user": 6597}
            assert (client.health.state, client.health.message) == ("ended", "抖音直播已结束")
    asyncio.run(main())


# -- the console relay -------------------------------------------------------------------------------------


def reply(n: int = 1, ids: tuple[str, ...] = ("e1",)) -> OutgoingReply:
    return OutgoingReply(room="r1", text=Gate().check("@小王 包邮的", "包邮的", names=["小王"]).text, in_reply_to=ids, faq_id="shipping", latency_ms=812.44,
                         reply_id=n)


def test_console_relay_sends_to_every_tool_and_records_acks():
    async def main():
        async with ConsoleRelaySink(token="s3cret") as sink:
            assert await sink.send(reply()) == sink_failure("no console tool connected")
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(sink.url + "?token=wrong"):
                    pass
            assert refused.value.response.status_code == 401
            async with websockets.connect(sink.url + "?token=s3cret") as a, \
                    websockets.connect(sink.url, additional_headers={"Authorization": "Bearer s3cret"}) as b:
                assert json.loads(await a.recv()) == {"type": "hello", "sink": "console"}
                await b.recv()
                await eventually(lambda: len(sink.tools) == 2)
                assert await sink.send(reply(7, ("e1", "e2"))) is SENT
                for tool in (a, b):
                    assert json.loads(await tool.recv()) == {
                        "type": "reply", "reply_id": 7, "room": "r1", "text": "@小王 包邮的",
                        "in_reply_to": ["e1", "e2"], "faq_id": "shipping", "latency_ms": 812.4}
                await a.send(json.dumps({"type": "ack", "reply_id": 7, "ok": False, "error": "风控"}))
                await b.send("not json")
                await eventually(lambda: 7 in sink.acks and sink.counts["bad_frames"] == 1)
                assert sink.acks[7] == {"ok": False, "error": "风控"} and sink.counts["nacks"] == 1
            await eventually(lambda: not sink.tools)
            assert (await sink.send(reply())).reason == "no console tool connected"
    asyncio.run(main())


def test_a_console_relay_nobody_started_starts_on_the_first_reply():
    async def main():
        sink = ConsoleRelaySink()
        try:
            assert (await sink.send(reply())).retry_after_s == 1.0 and sink.port > 0
            async with websockets.connect(sink.url) as tool:
                await tool.recv()
                await eventually(lambda: sink.tools)
                assert await sink.send(reply(2)) is SENT
                assert json.loads(await tool.recv())["reply_id"] == 2
        finally:
            await sink.stop()
    asyncio.run(main())


def sink_failure(reason: str):
    from cohost.sinks.base import SendResult
    return SendResult(False, reason, retry_after_s=1.0)


# -- through the real server ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_douyin_chat_gets_a_reply_on_a_console_tool(engine):
    """FakeDouyin → DouyinClient → hub.run_source → the room answers "包邮吗" → ConsoleRelaySink → a tool."""
    from cohost.live import live_server

    async def main():
        async with live_server(engine, port=0) as (app, _port), FakeDouyin() as fake, \
                ConsoleRelaySink() as sink:
            hub = app.state.hub
            client = client_for(fake)
            async with websockets.connect(sink.url) as tool:
                await tool.recv()  # hello
                task = asyncio.create_task(hub.run_source("dy", None, client, sink))
                await eventually(lambda: client.health.state == "live" and fake.conns)
                fake.push(m.chat(7388168242030283537, VIEWER, "包邮吗", create_ms=int(time.time() * 1000)))
                got = json.loads(await asyncio.wait_for(tool.recv(), 20))
                await tool.send(json.dumps({"type": "ack", "reply_id": got["reply_id"], "ok": True}))
                await eventually(lambda: got["reply_id"] in sink.acks)
                stats = hub.stats("dy")
                await stop(task)
            assert got["type"] == "reply" and got["room"] == "dy" and got["in_reply_to"] == "7388168242030283537"
            assert "包邮" in got["text"] or got["faq_id"]
            assert stats["reply_owner"] == client.name and stats["source_health"][0]["message"] == "抖音已连接"
            assert stats["source_health"][0]["events"] == 1
    asyncio.run(main())
