"""The relay adapter: a mapping file from a tool's websocket JSON to our events, and the client that runs it.

Mapping files are validated once with errors that name the line and field; DouyinBarrageGrab frames (written
from the shape its README and BarrageMessages.cs document, every Type) map to the right events; garbage is
counted, never raised; and over real sockets on 127.0.0.1 a fake tool re-broadcasts JSON, drops the
connection, and re-sends what it sent before, while the relay reconnects and delivers each message once,
into a real server's room that replies.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from websockets.asyncio.server import serve

from cohost.errors import CohostError
from cohost.events import ChatEvent, ProductEvent, RoomEvent
from cohost.sinks.base import SENT, OutgoingReply, SendResult
from cohost.sources.base import Backoff
from cohost.sources.relay import (
    MappingError,
    RelayDecoder,
    RelaySource,
    apply_mapping,
    decode_lines,
    load_mapping,
    map_message,
    packaged_mappings,
    parse_mapping,
    parse_path,
)

DBG = load_mapping("douyin_barrage_grab")
MAPPINGS = Path(__file__).resolve().parent.parent / "cohost/sources/mappings"

USER = {"Id": 3951234567890123, "ShortId": 2837465, "DisplayId": "xiaowang_88", "Nickname": "小王爱逛街", "Level": 0,
        "PayLevel": 12, "Gender": 2, "HeadImgUrl": "https://p11.douyinpic.com/aweme/100x100/aweme-avatar/x.jpeg",
        "SecUid": "MS4wLjABAAAAexample", "FansClub": {"ClubName": "宝藏团", "Level": 3}, "FollowerCount": 218,
        "FollowStatus": 1}
ROOM = {"RoomId": 7301998877665544332, "WebRoomId": 415926535897}


def dbg(kind: int, **data) -> str:
    """A DouyinBarrageGrab frame: the message as a JSON string in Data."""
    return json.dumps({"Type": kind, "ProcessName": "直播伴侣", "Data": json.dumps({**ROOM, **data}, ensure_ascii=False)},
                      ensure_ascii=False)


def chat_frame(msg_id: int, text: str, user: dict | None = None) -> str:
    return dbg(1, MsgId=msg_id, User=user or USER, Content=text)


def fast() -> Backoff:
    return Backoff(base_s=0.05, cap_s=0.2)


async def eventually(pred, within_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- mapping files -------------------------------------------------------------------------------------


def test_packaged_mappings_load_by_name_or_by_path(tmp_path):
    assert {"douyin_barrage_grab", "example", "oba_live_tool"} <= set(packaged_mappings())
    assert DBG.name == "douyin_barrage_grab" and DBG.url == "ws://127.0.0.1:8888"
    packaged = MAPPINGS / "example.yaml"
    copy = tmp_path / "my_tool.yaml"
    copy.write_text(packaged.read_text(encoding="utf-8").replace("name: example\n", ""), encoding="utf-8")
    mine = load_mapping(copy)
    assert mine.name == "my_tool"  # no name in the file: the file's
    assert mine.rules == load_mapping("example").rules
    assert load_mapping(str(copy)).name == "my_tool"
    with pytest.raises(MappingError, match=r"no packaged relay mapping named 'kuaishou'; packaged: douyin_barrage_grab"):
        load_mapping("kuaishou")
    with pytest.raises(MappingError, match="mapping file not found"):
        load_mapping(tmp_path / "missing.yaml")


BAD_MAPPINGS = [
    ("rules:\n  - when: {Type: 1}\n    type: danmaku\n",
     ["line 3, rules[0].type: Input should be 'chat', 'gift'"]),
    ("rules:\n  - when: {Type: 1}\n    type: chat\n    id: MsgId\n    usr: {id: uid}\n    text: t\n",
     ["line 5, rules[0].usr: Extra inputs are not permitted"]),
    ("rules:\n  - when: {Type: 2}\n    type: like\n    text: Content\n",
     ["line 4, rules[0].text: 'text' does not apply to like rules (they take: count, extra, gift, id"]),
    ("rules:\n  - type: chat\n    id: a\n    user: {id: u}\n  - when: {a: 1}\n    type: skip\n",
     ["line 2, rules[0]: a chat rule needs 'text'",
      "line 5, rules[1]: this rule never matches: rules[0] before it has no 'when'"]),
    ("rules:\n  - type: chat\n    id: a..b\n    user: {id: u}\n    text: 'x[1'\n",
     ["line 3, rules[0].id: bad path 'a..b'", "line 5, rules[0].text: bad path 'x[1'"]),
    ("rules:\n  - type: like\n    count: {path: c, unit: ms}\n    gift: {path: g, scale: 2}\n",
     ["line 3, rules[0].count.unit: 'unit' applies to ts only, not count",
      "line 4, rules[0].gift.scale: 'scale' applies to count, value and paid only, not gift"]),
    ("rules:\n  - type: gift\n    value: {path: v, times_count: yes, sclae: 0.1}\n",
     ["line 3, rules[0].value.sclae: Extra inputs are not permitted"]),
    ("rules:\n  - type: like\n    type: gift\n", ["line 3, rules[0].type: 'type' appears twice here"]),
    ("rules:\n  - type: [chat\n", ["line 3: not valid YAML"]),
    ("rules:\n  - type: chat\n    id: [a, b[0]]\n", ["line 3: not valid YAML", 'quote a path with list indexes']),
    ("name: x\n", ["line 1, rules: Field required"]),
    ("rules: []\n", ["rules: a mapping needs at least one rule"]),
    ("url: http://127.0.0.1:8888\nrules:\n  - type: gift\n    count: 5\n    extra: {text: Content}\n",
     ["line 1, url: the tool's url must start with ws:// or wss://",
      "line 4, rules[0].count: a field is a path (Data.Content), a list of paths"]),
    ("rules:\n  - type: gift\n    extra: {text: Content}\n",
     ["line 3, rules[0].extra.text: 'text' cannot be an extra field name"]),
    ("rules:\n  - type: product\n    product_id: {const: dress, path: x}\n",
     ["line 3, rules[0].product_id: give either path (one or a list) or const"]),
    ("- type: chat\n", ["the top level must be a mapping with 'rules'"]),
]


@pytest.mark.parametrize("text,expected", BAD_MAPPINGS)
def test_mapping_errors_name_the_line_and_the_field(text, expected):
    with pytest.raises(MappingError) as e:
        parse_mapping(text, source="tool.yaml")
    message = str(e.value)
    assert message.startswith("tool.yaml: ")
    for part in expected:
        assert part in message, message


def test_paths():
    assert parse_path("Data.User.Nickname") == ("Data", "User", "Nickname")
    assert parse_path("info[2][1]") == ("info", 2, 1)
    assert parse_path("a.b[-1].c") == ("a", "b", -1, "c")
    for bad in ("", " a", "a.", "a[x]", "a]b", "a[1"):
        with pytest.raises(ValueError):
            parse_path(bad)


# -- DouyinBarrageGrab ---------------------------------------------------------------------------------


def test_douyin_barrage_grab_frames_of_every_type_map_to_the_right_events():
    d = RelayDecoder(DBG)
    chat = d.feed(chat_frame(7301234567890123456, "这个有大码吗"))
    like = d.feed(dbg(2, MsgId=7301234567890123457, User=USER, Content="小王爱逛街 为主播点赞了", Count=15, Total=3080))
    enter = d.feed(dbg(3, MsgId=7301234567890123458, User={**USER, "Id": 0, "DisplayId": "guest_7"},
                       Content="guest_7 来了", CurrentCount=1288))
    follow = d.feed(dbg(4, MsgId=7301234567890123459, User=USER, Content="小王爱逛街 关注了主播"))
    gift = d.feed(dbg(5, MsgId=7301234567890123460, User=USER, Content="小王爱逛街 送出 加油鸭 x2", GiftId=6754,
                      GiftName="加油鸭", GroupId=1711111111, GiftCount=2, RepeatCount=5, DiamondCount=15))
    stats = d.feed(dbg(6, MsgId=7301234567890123461, Content="当前直播间人数 1288，累计直播间人数 2.1万",
                       OnlineUserCount=1288, TotalUserCount=21034, OnlineUserCountStr="1288", TotalUserCountStr="2.1万"))
    club = d.feed(dbg(7, MsgId=7301234567890123462, User=USER, Content="小王爱逛街 加入了粉丝团", Type=2, Level=1))
    share = d.feed(dbg(8, MsgId=7301234567890123463, User=USER, Content="小王爱逛街 分享了直播间到微信", ShareType=1))
    end = d.feed(dbg(9, MsgId=7301234567890123464, Content="直播已结束"))

    assert chat.kind == "event" and isinstance(chat.event, ChatEvent)
    c = chat.event
    assert (c.id, c.user.id, c.user.name, c.text, c.ts) == ("7301234567890123456", "3951234567890123", "小王爱逛街",
                                                            "这个有大码吗", None)
    assert c.model_extra == {"pay_level": 12, "fans_club_level": 3}
    assert isinstance(like.event, RoomEvent) and (like.event.type, like.event.count) == ("like", 15)
    assert like.event.user.name == "小王爱逛街"
    # Id 0 is still an id (anonymous viewers all share it): the first path present wins
    assert enter.event.type == "enter" and enter.event.user.id == "0" and enter.event.model_extra["online"] == 1288
    assert follow.event.type == "follow" and follow.event.user.id == "3951234567890123"
    g = gift.event
    assert (g.type, g.gift, g.count, g.value) == ("gift", "加油鸭", 2, pytest.approx(3.0))  # 15 抖币 × 2 = 3 元
    assert g.model_extra == {"gift_id": 6754, "combo": 5, "id": "7301234567890123460"}
    assert [m.kind for m in (stats, club, share)] == ["skip"] * 3
    assert end.kind == "end" and end.event is None
    assert d.counts == {"event": 5, "skip": 3, "end": 1}

    other = d.feed(json.dumps({"Type": 10, "Data": "{}"}))
    assert other.kind == "unmapped" and d.unmapped == {"Type=10": 1}
    assert map_message(DBG, json.loads(chat_frame(1, "包邮吗"))).text == "包邮吗"
    assert map_message(DBG, {"Type": 6, "Data": "{}"}) is None


def test_paths_indexes_fallbacks_scales_and_units():
    """A Bilibili-style array frame: list indexes, ms timestamps, fen → yuan, constants and defaults."""
    mapping = parse_mapping("""
name: arrays
decode: payload
rules:
  - when: {cmd: DANMU_MSG}
    type: chat
    id: [info.9.id_str, "info[0][5]"]
    user:
      id: "info[2][0]"
      name: info.2.1
    text: info[1]
    ts: {path: "info[0][4]", unit: ms}
    paid: {path: info.0.8, scale: 0.001}
  - when: {cmd: [GIFT, SEND_GIFT], live: true}
    type: gift
    user: {id: payload.uid}
    gift: {const: 辣条}
    count: {path: payload.num, default: 1}
    value: {path: payload.price_fen, scale: 0.01, times_count: true}
    ts: payload.timestamp
  - when: {cmd: ORDER, status: "2"}
    type: order
    id: order.id
    product_id: order.items[-1].sku
    value: {path: order.fen, scale: 0.01}
  - when: {cmd: ON_STAGE}
    type: product
    product_id: item
  - when: {cmd: null}
    type: skip
""")
    danmu = {"cmd": "DANMU_MSG", "info": [[0, 1, 25, 16777215, 1732250000123, "r7", 0, "c", 30000],
                                          "有链接吗", [42, "甲"], [], {}, {}, 0, 0, {}, {"id_str": "d-9"}]}
    e = map_message(mapping, danmu)
    assert (e.id, e.user.id, e.user.name, e.text, e.paid) == ("d-9", "42", "甲", "有链接吗", 30.0)
    assert e.ts == pytest.approx(1732250000.123)
    del danmu["info"][9]["id_str"]
    assert map_message(mapping, danmu).id == "r7"  # the first path present wins

    gift = map_message(mapping, {"cmd": "SEND_GIFT", "live": True,
                                 "payload": json.dumps({"uid": 7, "num": 3, "price_fen": 50, "timestamp": 1732250000})})
    assert (gift.type, gift.gift, gift.count, gift.value, gift.ts) == ("gift", "辣条", 3, 1.5, 1732250000.0)
    assert map_message(mapping, {"cmd": "GIFT", "live": True, "payload": {"uid": 7, "price_fen": 50}}).count == 1
    assert apply_mapping(mapping, {"cmd": "GIFT", "live": 1, "payload": {}}).kind == "unmapped"  # 1 is not true

    order = map_message(mapping, {"cmd": "ORDER", "status": 2,  # 2 matches "2"
                                  "order": {"id": 88, "fen": 19900, "items": [{"sku": "a"}, {"sku": "dress"}]}})
    assert (order.type, order.product_id, order.value, order.user) == ("order", "dress", 199.0, None)
    assert map_message(mapping, {"cmd": "ON_STAGE", "item": 1024}) == ProductEvent(type="product", product_id="1024")
    assert apply_mapping(mapping, {"other": 1}).kind == "skip"  # cmd: null matches an absent cmd
    assert apply_mapping(mapping, {"cmd": "WATCHED_CHANGE"}).key == "cmd=WATCHED_CHANGE"


def test_garbage_frames_are_counted_and_never_raise():
    d = RelayDecoder(DBG)
    garbage = ["not json", b"\xff\xfe\x00", "[1, 2, 3]", "[" * 100_000, '{"Type": 1, "Data": "{broken"}',
               json.dumps({"Type": 1, "Data": "好" * 100_000}, ensure_ascii=False),  # 300 KB: over the limit
               dbg(1, MsgId=5, User=USER),                                        # a chat without text
               dbg(1, MsgId=6, Content="hi"),                                     # nor user
               dbg(1, User=USER, Content="hi"),                                   # nor id
               dbg(1, MsgId=7, User=USER, Content={"rich": "text"}),              # text not a string
               dbg(1, MsgId="x" * 200, User=USER, Content="hi"),                  # id over 128 characters
               dbg(5, MsgId=8, User=USER, GiftCount="lots"),                      # count not a number
               '{"Type": 1, "Data": 12e999}', "9" * 5000]
    results = [d.feed(g) for g in garbage]
    assert [r.kind for r in results] == ["error"] * len(garbage), [r.as_dict() for r in results]
    errors = [r.error for r in results]
    assert "not JSON" in errors[0] and "UTF-8" in errors[1] and "JSON object" in errors[2]
    assert "deep" in errors[3] or "not JSON" in errors[3]
    assert errors[4].startswith("Data: not JSON") and "limit" in errors[5]
    assert "no text" in errors[6] and "no user id" in errors[7] and "no id" in errors[8]
    assert "text: expected text" in errors[9] and "id" in errors[10] and "count: expected a number" in errors[11]
    assert d.counts == {"error": len(garbage)}
    assert d.feed(chat_frame(9, "包邮吗")).kind == "event"  # and the next good frame still maps


def test_decode_lines_runs_a_capture_through_the_mapping(tmp_path):
    capture = tmp_path / "capture.jsonl"
    capture.write_text("\n".join([chat_frame(1, "包邮吗"), "", "garbage", dbg(6, Content="统计"), chat_frame(1, "包邮吗"),
                                  json.dumps({"Type": 42}), dbg(9)]) + "\n", encoding="utf-8")
    rows = list(decode_lines("douyin_barrage_grab", capture))
    assert [(n, m.kind) for n, m in rows] == [(1, "event"), (3, "error"), (4, "skip"), (5, "duplicate"),
                                              (6, "unmapped"), (7, "end")]
    assert rows[0][1].as_dict()["event"]["text"] == "包邮吗"
    with pytest.raises(CohostError, match="capture not found"):
        list(decode_lines(DBG, tmp_path / "nope.jsonl"))


@pytest.mark.parametrize("name,frame,expected", [
    ("example", {"event": "comment", "data": {"id": "c1", "user": {"uid": 42, "nickname": "小王"}, "text": "有大码吗",
                                              "time": 1732250000123, "renders": {"isAddCart": True, "isOrder": False}}},
     {"type": "chat", "id": "c1", "user": {"id": "42", "name": "小王"}, "text": "有大码吗", "ts": 1732250000.123,
      "added_to_cart": True, "ordered": False}),
    ("example", {"event": "gift", "data": {"id": "g1", "user": {"uid": 42}, "gift": {"name": "玫瑰", "price_fen": 100},
                                           "num": 3}},
     {"type": "gift", "id": "g1", "user": {"id": "42", "name": ""}, "gift": "玫瑰", "count": 3, "value": 3.0}),
    ("example", {"event": "order", "data": {"order_id": "o1", "buyer": ["42", "小王"], "item_id": "dress", "qty": 1,
                                            "paid_fen": 19900}},
     {"type": "order", "id": "o1", "user": {"id": "42", "name": "小王"}, "product_id": "dress", "value": 199.0}),
    ("example", {"event": "product", "data": {"item_id": "fryer"}}, {"type": "product", "product_id": "fryer"}),
    ("oba_live_tool", {"msg_type": "taobao_comment", "msg_id": "t1", "nick_name": "买家小李", "user_id": "",
                       "content": "能开发票吗", "time": "12:01:02"},
     {"type": "chat", "id": "t1", "user": {"id": "买家小李", "name": "买家小李"}, "text": "能开发票吗",
      "platform_type": "taobao_comment"}),
    ("oba_live_tool", {"msg_type": "comment", "msg_id": "d1", "nick_name": "小王", "conent": "有链接吗",
                       "time": 1732250000},
     {"type": "chat", "id": "d1", "user": {"id": "小王", "name": "小王"}, "text": "有链接吗", "ts": 1732250000.0,
      "platform_type": "comment"}),
    ("oba_live_tool", {"msg_type": "live_order", "msg_id": "o9", "nick_name": "小王", "order_status": "已付款",
                       "order_ts": 1732250000, "product_id": "3691", "product_title": "碎花连衣裙"},
     {"type": "order", "id": "o9", "user": {"id": "小王", "name": "小王"}, "product_id": "3691", "count": 1,
      "ts": 1732250000.0, "order_status": "已付款", "product_title": "碎花连衣裙"}),
])
def test_the_other_packaged_mappings_read_the_frames_their_comments_describe(name, frame, expected):
    event = map_message(load_mapping(name), frame)
    assert event is not None
    got = event.model_dump(mode="json", exclude_none=True)
    assert {k: got[k] for k in expected} == expected


def test_example_mapping_skips_and_ends():
    m = load_mapping("example")
    assert [apply_mapping(m, {"event": e}).kind for e in ("heartbeat", "stats", "live_end", "wat")] == \
        ["skip", "skip", "end", "unmapped"]


# -- over sockets: a fake tool on 127.0.0.1 ----------------------------------------------------------------


class FakeTool:
    """A local tool that re-broadcasts JSON: connection n runs scripts[n] (then waits for the client to go)."""

    def __init__(self, *scripts):
        self.scripts = list(scripts)
        self.connections = 0

    async def handler(self, ws) -> None:
        self.connections += 1
        script = self.scripts.pop(0) if self.scripts else None
        if script is not None:
            await script(ws)
        await ws.wait_closed()


def record_health(relay: RelaySource) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    real = relay.health.set

    def set_and_record(state, message, detail="", **kw):
        seen.append((state, message))
        real(state, message, detail, **kw)

    relay.health.set = set_and_record  # type: ignore[method-assign]
    return seen


def test_relay_reconnects_after_a_drop_delivers_each_message_once_and_survives_garbage():
    """The tool sends two chats with garbage between, then the connection drops (no close frame); the relay
    reconnects, the tool re-sends the second chat and a third: three events, four errors, one reconnect."""
    events: list = []
    delivered_two = asyncio.Event()

    def submit(event) -> bool:
        events.append(event)
        if len(events) == 2:
            delivered_two.set()
        return True

    async def first(ws) -> None:
        await ws.send(chat_frame(1, "有大码吗"))
        for junk in ("not json", b"\xff\xfe", '{"Type": 1, "Data": "{broken"}', "x" * 300_000):
            await ws.send(junk)
        await ws.send(chat_frame(2, "包邮吗"))
        await delivered_two.wait()
        ws.transport.abort()  # a forced drop: no close handshake

    async def second(ws) -> None:
        await ws.send(chat_frame(2, "包邮吗"))  # sent again after the reconnect
        await ws.send(chat_frame(3, "能开发票吗"))

    async def main():
        tool = FakeTool(first, second)
        async with serve(tool.handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            relay = RelaySource(f"ws://127.0.0.1:{port}", "douyin_barrage_grab", backoff=fast())
            seen = record_health(relay)
            task = asyncio.create_task(relay.run(submit))
            await eventually(lambda: len(events) == 3, what="three events")
            await asyncio.sleep(0.2)  # nothing more arrives
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return relay, seen, tool

    relay, seen, tool = asyncio.run(main())
    assert [e.id for e in events] == ["1", "2", "3"]
    assert tool.connections == 2 and relay.stats.connects == 2
    assert relay.health.errors == 4 and relay.health.events == 3
    assert relay.decoder.counts["duplicate"] == 1
    assert seen == [("live", "转发工具已连接"), ("reconnecting", "转发工具连接中断，正在重连（第1次）"),
                    ("live", "转发工具已连接"), ("stopped", "已停止")]
    assert relay.health.state == "stopped"
    assert "connection dropped" in relay.stats.last_close


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_relay_retries_until_the_tool_starts_and_stops_when_the_stream_ends():
    """Nothing listens yet: the relay keeps retrying and says so; once the tool is up it sends the mapping's
    subscribe frame, delivers the chat, and returns by itself at the stream's end (Type 9)."""
    events: list = []
    hello: list = []

    async def broadcast(ws) -> None:
        hello.append(await ws.recv())
        await ws.send(chat_frame(11, "主播好"))
        await ws.send(dbg(9, MsgId=12, Content="直播已结束"))

    mapping = parse_mapping((MAPPINGS / "douyin_barrage_grab.yaml").read_text(encoding="utf-8")
                            + "subscribe:\n  - {action: subscribe, token: demo}\n")

    async def main():
        port = free_port()
        relay = RelaySource(f"ws://127.0.0.1:{port}", mapping, backoff=fast())
        task = asyncio.create_task(relay.run(lambda e: events.append(e) or True))
        await eventually(lambda: relay.health.attempt >= 2, what="two refused connects")
        refused = (relay.health.state, relay.health.message, relay.health.detail)
        async with serve(FakeTool(broadcast).handler, "127.0.0.1", port):
            async with asyncio.timeout(10):
                await task  # returns by itself at the end of the stream
        return relay, refused

    relay, refused = asyncio.run(main())
    assert refused[0] == "reconnecting" and refused[1].startswith("连不上转发工具，正在重试（第")
    assert "connection refused" in refused[2]
    assert hello == ['{"action": "subscribe", "token": "demo"}']
    assert [e.text for e in events] == ["主播好"]
    assert (relay.health.state, relay.health.message) == ("ended", "直播已结束")


def test_relay_url_and_mapping_are_checked_up_front(tmp_path):
    assert RelaySource(None, "douyin_barrage_grab").url == "ws://127.0.0.1:8888"  # the mapping's default
    assert RelaySource("ws://127.0.0.1:9", DBG, name="dy:main").name == "dy:main"
    with pytest.raises(CohostError, match="ws:// or wss://"):
        RelaySource("http://127.0.0.1:8888", DBG)
    with pytest.raises(CohostError, match="no url"):
        RelaySource(None, parse_mapping("rules:\n  - type: skip\n"))
    bad = tmp_path / "bad.yaml"
    shutil.copy(MAPPINGS / "douyin_barrage_grab.yaml", bad)
    bad.write_text(bad.read_text(encoding="utf-8").replace("type: follow", "type: folow"), encoding="utf-8")
    with pytest.raises(MappingError, match=r"bad.yaml: invalid relay mapping:\n  - line \d+, rules\[3\]\.type"):
        RelaySource(None, bad)


# -- through the real server -----------------------------------------------------------------------------


class RecordingSink:
    """Where the room's replies would be posted (the tool only broadcasts: a real relay pairs with a sender)."""

    def __init__(self) -> None:
        self.name = "recording"
        self.posted: list[OutgoingReply] = []

    async def send(self, reply: OutgoingReply) -> SendResult:
        self.posted.append(reply)
        return SENT


@pytest.mark.slow
def test_a_chat_relayed_from_the_tool_gets_a_reply_from_the_room(engine):
    """live_server + hub.run_source(room, None, relay, sink): 包邮吗 from the tool is answered, once, though the
    tool sends it twice; the relay's health is in the room's stats."""
    from cohost.live import live_server

    async def broadcast(ws) -> None:
        await ws.send(dbg(3, MsgId=100, User=USER, Content="小王爱逛街 来了", CurrentCount=12))
        await ws.send(chat_frame(7301234567890000001, "包邮吗"))
        await ws.send(chat_frame(7301234567890000001, "包邮吗"))

    async def main():
        async with live_server(engine, port=0) as (app, _port), \
                serve(FakeTool(broadcast).handler, "127.0.0.1", 0) as tool:
            hub, sink = app.state.hub, RecordingSink()
            relay = RelaySource(f"ws://127.0.0.1:{tool.sockets[0].getsockname()[1]}", "douyin_barrage_grab",
                                backoff=fast())
            task = asyncio.create_task(hub.run_source("dy", None, relay, sink))
            await eventually(lambda: sink.posted, within_s=20, what="the reply")
            await asyncio.sleep(0.5)
            stats = hub.stats("dy")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(lambda: not hub.rooms["dy"].ingest, what="the relay to leave")
        return sink, stats, relay

    sink, stats, relay = asyncio.run(main())
    assert len(sink.posted) == 1 and sink.posted[0].in_reply_to == ("7301234567890000001",)
    assert sink.posted[0].faq_id == "ship_free"
    assert stats["reply_owner"] == "relay:douyin_barrage_grab"
    assert stats["source_health"][0]["state"] == "live" and stats["source_health"][0]["events"] == 2
    assert stats["stats"]["answered"] == 1
    assert relay.health.state == "stopped"
