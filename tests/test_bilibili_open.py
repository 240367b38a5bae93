"""The Bilibili open platform adapter: signing, commands to events, and the client against the fake server
(cohost.testing.fake_bilibili_open) on 127.0.0.1 — reconnects, new games, heartbeats, app/end, the room."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time

import httpx
import pytest

from cohost.errors import CohostError
from cohost.events import ChatEvent, RoomEvent, StreamEvent
from cohost.sources.base import Backoff
from cohost.sources.bilibili.open_platform import (
    ApiError,
    OpenPlatformClient,
    OpenPlatformCodec,
    OpenPlatformCredentials,
    encode_body,
    sign_headers,
    translate,
)
from cohost.testing import fake_bilibili_open as fo
from cohost.testing.fake_bilibili_open import FakeOpenPlatform

ENV = {"COHOST_BILIBILI_APP_ID": "1650000000000", "COHOST_BILIBILI_ACCESS_KEY": "ak-1",
       "COHOST_BILIBILI_ACCESS_SECRET": "very-secret-value"}


async def eventually(pred, within_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def client_for(fake: FakeOpenPlatform, **kw) -> OpenPlatformClient:
    kw.setdefault("backoff", Backoff(base_s=0.01, cap_s=0.05))
    return OpenPlatformClient(fake.code, credentials=fake.credentials, api_base=fake.api_base, proxy=None, **kw)


# -- credentials and signing ----------------------------------------------------------------------------


def test_credentials_come_from_the_environment_and_never_show_the_secret():
    creds = OpenPlatformCredentials.from_env(ENV)
    assert creds == OpenPlatformCredentials(1650000000000, "ak-1", "very-secret-value")
    assert "very-secret-value" not in repr(creds) and "very-secret-value" not in str(creds)
    with pytest.raises(CohostError, match="COHOST_BILIBILI_ACCESS_SECRET"):
        OpenPlatformCredentials.from_env({k: v for k, v in ENV.items() if "SECRET" not in k})
    with pytest.raises(CohostError, match="COHOST_BILIBILI_APP_ID"):
        OpenPlatformCredentials.from_env({**ENV, "COHOST_BILIBILI_APP_ID": "abc"})


def test_the_signature_is_the_documented_hmac_over_the_sorted_x_bili_headers():
    body = encode_body({"code": "ABCD1234", "app_id": 42})
    assert body == b'{"code":"ABCD1234","app_id":42}'
    headers = sign_headers(body, "ak-1", "sk-1", timestamp=1700000000, nonce="n-1")
    md5 = hashlib.md5(body).hexdigest()
    by_hand = ("x-bili-accesskeyid:ak-1\n"
               f"x-bili-content-md5:{md5}\n"
               "x-bili-signature-method:HMAC-SHA256\n"
               "x-bili-signature-nonce:n-1\n"
               "x-bili-signature-version:1.0\n"
               "x-bili-timestamp:1700000000")
    assert headers["Authorization"] == hmac.new(b"sk-1", by_hand.encode(), hashlib.sha256).hexdigest()
    assert headers["x-bili-content-md5"] == md5
    assert headers["Accept"] == headers["Content-Type"] == "application/json"
    assert sign_headers(body, "ak-1", "sk-1")["x-bili-signature-nonce"] != \
        sign_headers(body, "ak-1", "sk-1")["x-bili-signature-nonce"]


def test_the_fake_refuses_a_wrong_secret_a_changed_body_and_a_reused_nonce():
    with FakeOpenPlatform(code="ABCD1234") as fake:
        def post(body: bytes, secret: str = fake.access_secret, headers: dict | None = None) -> int:
            h = headers or sign_headers(body, fake.access_key, secret)
            return httpx.post(fake.api_base + "/v2/app/start", content=body, headers=h, trust_env=False).json()["code"]

        good = encode_body({"code": "ABCD1234", "app_id": fake.app_id})
        assert post(good, secret="wrong-secret") == 4002
        signed = sign_headers(good, fake.access_key, fake.access_secret)
        assert post(encode_body({"code": "ZZZZ", "app_id": fake.app_id}), headers=signed) == 4002  # md5
        assert post(good, headers=signed) == 0
        assert post(good, headers=signed) == 4004  # the same nonce twice
        assert post(encode_body({"code": "WRONG", "app_id": fake.app_id})) == 7007


# -- commands to events ---------------------------------------------------------------------------------


def test_each_command_maps_to_its_event():
    dm = translate(fo.dm("包邮吗", open_id="o1", uname="小王", msg_id="m1", fans_medal_level=5,
                         fans_medal_name="粉丝团", guard_level=3))[0]
    assert isinstance(dm, ChatEvent) and dm.text == "包邮吗" and dm.user.id == "o1" and dm.user.name == "小王"
    assert dm.id == "m1" and dm.msg_id == "m1" and dm.guard_level == 3 and dm.medal["level"] == 5
    assert dm.platform == "bilibili-open" and dm.ts

    gift = translate(fo.send_gift("小花花", gift_num=3, price=100, open_id="o2"))[0]
    assert isinstance(gift, RoomEvent) and gift.type == "gift" and gift.count == 3
    assert gift.value == pytest.approx(0.3) and gift.gift == "小花花" and gift.user.id == "o2"
    free = translate(fo.send_gift("辣条", gift_num=10, price=100, paid=False))[0]
    assert free.value == 0

    sc = translate(fo.super_chat("能开发票吗", rmb=30, open_id="o3", message_id=77))[0]
    assert isinstance(sc, ChatEvent) and sc.paid == 30 and sc.text == "能开发票吗" and sc.user.id == "o3"

    g = translate(fo.guard(guard_level=3, guard_num=2, price=198_000, open_id="o4", uname="舰长大人"))[0]
    assert g.type == "gift" and g.gift == "舰长" and g.count == 2 and g.value == pytest.approx(396)
    assert g.user.id == "o4" and g.user.name == "舰长大人"

    lk = translate(fo.like(like_count=7, open_id="o5"))[0]
    assert lk.type == "like" and lk.count == 7
    en = translate(fo.enter(open_id="o6", uname="路人"))[0]
    assert en.type == "enter" and en.user.id == "o6"

    start, end = translate(fo.live_start())[0], translate(fo.live_end())[0]
    assert start.live is True and end.live is False
    assert translate(fo.interaction_end("g1"))[0].cmd == "LIVE_OPEN_PLATFORM_INTERACTION_END"
    assert translate({"cmd": "LIVE_OPEN_PLATFORM_SUPER_CHAT", "data": {}})[0].reason == "bad-payload"
    assert translate({"cmd": "SOMETHING_NEW", "data": {}})[0].handled is False


def test_the_codec_opens_zlib_bundles_of_open_platform_commands():
    items = OpenPlatformCodec().feed(fo.frame([fo.dm("a", msg_id="1"), fo.dm("b", msg_id="2")]))
    assert [i.text for i in items] == ["a", "b"]


# -- the client against the fake ------------------------------------------------------------------------


def test_danmaku_across_a_dropped_link_arrive_once_each_and_cancel_ends_the_game():
    async def main():
        async with FakeOpenPlatform(links=2, replay_overlap=3) as fake:
            got: list = []
            client = client_for(fake, game_heartbeat_s=0.1)
            task = asyncio.create_task(client.run(lambda e: got.append(e) or True))
            for i in range(5):
                fake.push(fo.dm(f"第{i}条", msg_id=f"m{i}"))
            await eventually(lambda: len(got) >= 5, what="the first five")
            assert client.health.state == "live" and client.health.message == "B站已连接"
            fake.drop()
            for i in range(5, 10):
                fake.push(fo.dm(f"第{i}条", msg_id=f"m{i}"))
            await eventually(lambda: len(got) >= 10, what="the rest")
            await eventually(lambda: fake.game_heartbeats, what="a project heartbeat")
            await eventually(lambda: fake.heartbeats, what="a websocket heartbeat")
            await asyncio.sleep(0.2)
            assert [e.text for e in got] == [f"第{i}条" for i in range(10)]
            assert client.stats["duplicates"] >= 3 and len(fake.starts) == 1 and fake.connections >= 2
            client_game_id = client.game.game_id
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            assert client.health.state == "stopped"
            ends = [c for c in fake.ends if c.code == 0]
            game_id = client_game_id
            assert len(ends) == 1 and ends[0].body == {"game_id": game_id, "app_id": fake.app_id}
            assert fake.active_games == []
    asyncio.run(main())


def test_interaction_end_starts_a_new_game():
    async def main():
        async with FakeOpenPlatform() as fake:
            got: list = []
            client = client_for(fake)
            task = asyncio.create_task(client.run(lambda e: got.append(e) or True))
            fake.push(fo.dm("一", msg_id="a"))
            await eventually(lambda: got, what="the first danmaku")
            first_game = client.game.game_id
            assert fake.end_interaction() == 1
            await eventually(lambda: len(fake.starts) == 2 and client.health.state == "live", what="a new game")
            fake.push(fo.dm("二", msg_id="b"))
            await eventually(lambda: len(got) == 2, what="the second danmaku")
            assert client.game.game_id != first_game and client.stats["interaction_ends"] == 1
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


def test_a_refused_project_heartbeat_starts_a_new_game():
    async def main():
        async with FakeOpenPlatform() as fake:
            client = client_for(fake, game_heartbeat_s=0.1)
            task = asyncio.create_task(client.run(lambda e: True))
            await eventually(lambda: client.health.state == "live", what="live")
            fake.expire_games()
            await eventually(lambda: len(fake.starts) == 2 and client.health.state == "live", what="a new game")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


def test_an_invalid_code_fails_with_a_clear_message_and_other_codes_retry():
    async def main():
        async with FakeOpenPlatform(code="REALCODE") as fake:
            client = OpenPlatformClient("WRONGCODE", credentials=fake.credentials, api_base=fake.api_base, proxy=None)
            assert client.name == "bilibili-open:WRON…"
            await asyncio.wait_for(client.run(lambda e: True), 10)
            assert client.health.state == "failed" and "身份码无效" in client.health.message
            assert "7007" in client.health.detail

            fake.configure(start_codes=[7001, 7001])
            states: list = []
            client = client_for(fake)
            client.code = "REALCODE"
            original = client.health.set

            def spy(state, message, detail="", **kw):
                states.append((state, message, detail))
                original(state, message, detail, **kw)
            client.health.set = spy
            task = asyncio.create_task(client.run(lambda e: True))
            await eventually(lambda: client.health.state == "live", what="live after two refusals")
            assert [s[1] for s in states[:2]] == ["B站连接失败，正在重试（第1次）", "B站连接失败，正在重试（第2次）"]
            assert "7001" in states[0][2]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        bad = OpenPlatformCredentials(fake.app_id, fake.access_key, "wrong")
        async with FakeOpenPlatform() as fake2:
            client = OpenPlatformClient(fake2.code, credentials=bad, api_base=fake2.api_base, proxy=None)
            await asyncio.wait_for(client.run(lambda e: True), 10)
            assert client.health.state == "failed" and "签名" in client.health.message
    asyncio.run(main())


def test_stream_start_and_end_become_stream_events():
    async def main():
        async with FakeOpenPlatform() as fake:
            got: list = []
            client = client_for(fake)
            task = asyncio.create_task(client.run(lambda e: got.append(e) or True))
            fake.push(fo.live_start(), fo.send_gift("小心心", price=0, paid=False), fo.live_end())
            await eventually(lambda: len(got) == 3, what="three events")
            assert isinstance(got[0], StreamEvent) and got[0].state == "start"
            assert got[1].type == "gift" and got[2].state == "end"
            assert client.health.state == "ended"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


def test_api_error_names_its_code():
    assert ApiError("app/start", 7007, "身份码错误").fatal and not ApiError("app/start", 7001, "x").fatal
    assert json.loads(encode_body({"a": "中"})) == {"a": "中"}


# -- through the real server ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_danmaku_through_the_open_platform_gets_a_reply_in_the_room(engine):
    from cohost.live import live_server
    from cohost.sinks.base import SENT

    class Sink:
        name = "console"

        def __init__(self) -> None:
            self.posted: list = []

        async def send(self, reply):
            self.posted.append(reply)
            return SENT

    async def main():
        async with FakeOpenPlatform() as fake, live_server(engine, port=0) as (app, _port):
            hub, client, sink = app.state.hub, client_for(fake), Sink()
            task = asyncio.create_task(hub.run_source("bili-open", None, client, sink))
            await eventually(lambda: client.health.state == "live", what="live")
            fake.push(fo.dm("包邮吗", open_id="o-1", uname="小王", msg_id="x1"))
            await eventually(lambda: sink.posted, what="the reply", within_s=20)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(lambda: fake.ends, what="app/end")
        assert sink.posted[0].text
    asyncio.run(main())


def test_cohost_run_platform_bilibili_open_builds_this_client(monkeypatch):
    from cohost.sources.platforms import PlatformOptions, connect

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    conn = connect("bilibili-open", PlatformOptions(code="ABCD1234XYZ"))
    assert isinstance(conn.source, OpenPlatformClient) and conn.source.name == "bilibili-open:ABCD…"
    assert conn.source.credentials.app_id == 1650000000000 and conn.sink is not None
    monkeypatch.delenv("COHOST_BILIBILI_ACCESS_KEY")
    with pytest.raises(CohostError, match="COHOST_BILIBILI_ACCESS_KEY"):
        connect("bilibili-open", PlatformOptions(code="ABCD1234XYZ"))
