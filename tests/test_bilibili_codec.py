"""The Bilibili codec, sans-I/O: real captures byte for byte, encoders, bundles, commands, bounds, fuzz.

Captures: shared/data/bilibili (ProgramRipper/BroadcastLV test packets, MIT; see SOURCE.txt there).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path

import brotli
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohost.events import ChatEvent, ProductEvent, RoomEvent
from cohost.sources.bilibili import builders
from cohost.sources.bilibili import protobuf as pb
from cohost.sources.bilibili.codec import (
    HEARTBEAT_BODY,
    BilibiliCodec,
    Limits,
    Op,
    PacketDecoder,
    Ver,
    bench_decode,
    decode_file,
    encode_auth,
    encode_heartbeat,
    encode_packet,
)
from cohost.sources.bilibili.commands import HANDLERS
from cohost.sources.bilibili.items import AuthReply, DecodeError, HeartbeatReply, Notice, StreamStatus, item_cmd
from cohost.testing.fake_bilibili import command_packet, frame, packet

CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "bilibili"
needs_captures = pytest.mark.skipif(not CAPTURES.is_dir(), reason=f"captures not found at {CAPTURES}")
FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_JSON = settings(FUZZ, max_examples=800)  # generating nested JSON is the slow part


def capture(name: str) -> bytes:
    return next(CAPTURES.glob(f"{name}_*.bin")).read_bytes()


def feed(data: bytes, **kw) -> list:
    return BilibiliCodec(**kw).feed(data)


def one(items: list):
    assert len(items) == 1, items
    return items[0]


def assert_clean(items: list) -> None:
    errors = [i for i in items if isinstance(i, DecodeError)]
    assert not errors, errors


# -- the captures ---------------------------------------------------------------------------------------


@needs_captures
def test_capture_00_auth_reply_and_the_encoder_frames_it_byte_for_byte():
    data = capture("00")
    assert one(feed(data)) == AuthReply(0)
    assert encode_packet(Op.AUTH_REPLY, b'{"code":0}', ver=Ver.RAW, seq=0) == data


@needs_captures
def test_capture_01_an_unknown_command_is_a_notice_not_an_error():
    codec = BilibiliCodec()
    item = one(codec.feed(capture("01")))
    assert isinstance(item, Notice) and item.cmd == "UNKNOWN_COMMAND" and not item.handled
    assert codec.stats.unhandled["UNKNOWN_COMMAND"] == 1 and codec.stats.error_count == 0
    assert encode_packet(Op.SEND_MSG_REPLY, b'{"cmd":"UNKNOWN_COMMAND"}', ver=Ver.JSON, seq=0) == capture("01")


@needs_captures
def test_capture_02_heartbeat_reply():
    assert one(feed(capture("02"))) == HeartbeatReply(1)
    assert encode_packet(Op.HEARTBEAT_REPLY, (1).to_bytes(4, "big"), ver=Ver.RAW, seq=0) == capture("02")


@needs_captures
def test_capture_03_zlib_bundle_watched_change_and_an_entry():
    items = feed(capture("03"))
    assert [item_cmd(i) for i in items] == ["WATCHED_CHANGE", "INTERACT_WORD"]
    watched, enter = items
    assert isinstance(watched, Notice) and watched.data["num"] == 1126 and watched.data["text_large"] == "1126人看过"
    assert isinstance(enter, RoomEvent) and enter.type == "enter"
    assert (enter.user.id, enter.user.name) == ("49820933", "塔塔宝宝W")
    assert enter.ts == 1672606860.0 and enter.uid == 49820933 and enter.dmscore == 4
    assert enter.medal == {"level": 3, "name": "猫咪罐", "anchor": "", "anchor_uid": 68412710, "room_id": 2900469,
                           "guard_level": 0, "lit": False}
    assert enter.medal_level == 3 and enter.guard_level == 0 and enter.platform == "bilibili"
    assert enter.msg_id == "iw:49820933:1672606860437300700:1"


@needs_captures
def test_capture_04_brotli_bundle_entry_without_a_medal():
    enter = one(feed(capture("04")))
    assert isinstance(enter, RoomEvent) and item_cmd(enter) == "INTERACT_WORD" and enter.type == "enter"
    assert (enter.user.id, enter.user.name, enter.ts) == ("46343327", "gahara1", 1672607068.0)
    assert enter.medal is None and enter.medal_level == 0 and enter.dmscore == 2


@needs_captures
def test_capture_05_danmaku_with_its_medal():
    chat = one(feed(capture("05")))
    assert isinstance(chat, ChatEvent) and chat.text == "what" and chat.paid == 0
    assert (chat.user.id, chat.user.name) == ("1087319369", "ProgramRipper")
    assert chat.ts == pytest.approx(1672600515.362) and chat.uid == 1087319369
    assert chat.medal == {"level": 18, "name": "鲸呆", "anchor": "希月萌奈", "anchor_uid": 591892279,
                          "room_id": 22889484, "guard_level": 0, "lit": True}
    assert chat.medal_level == 18 and chat.guard_level == 0 and chat.user_level == 9
    assert chat.dm_type == 1 and chat.emoticon == "official_114" and chat.recommend_score == 7
    # A 2023 capture: no id_str yet, so the id is made of sender, send time (ms) and rnd.
    assert chat.id == chat.msg_id == "dm:1087319369:1672600515362:1672599856"
    assert not chat.mirror and not chat.lottery


@needs_captures
@pytest.mark.parametrize(("name", "reason"), [("06", "bad-protover"), ("07", "unknown-op")])
def test_captures_06_07_are_rejected_as_counted_errors_and_the_codec_reads_on(name, reason):
    codec = BilibiliCodec()
    assert one(codec.feed(capture(name))) == DecodeError(reason, one(codec.feed(capture(name))).detail)
    assert codec.stats.errors[reason] == 2
    assert isinstance(one(codec.feed(capture("05"))), ChatEvent)  # the next message is read afresh


@needs_captures
def test_all_captures_in_one_message_decode_in_order():
    data = b"".join(capture(n) for n in ("00", "02", "03", "04", "05"))
    items = feed(data)
    assert [type(i).__name__ for i in items] == ["AuthReply", "HeartbeatReply", "Notice", "RoomEvent", "RoomEvent",
                                                 "ChatEvent"]


@needs_captures
def test_decode_file_gives_json_ready_dicts():
    out = decode_file(next(CAPTURES.glob("05_*.bin")))
    assert out[0]["kind"] == "event" and out[0]["cmd"] == "DANMU_MSG" and out[0]["event"]["text"] == "what"
    json.dumps(out, ensure_ascii=False)
    assert decode_file(next(CAPTURES.glob("07_*.bin")))[0]["kind"] == "error"


# -- encoders ---------------------------------------------------------------------------------------------


def test_auth_packet_bytes():
    body = b'{"uid":777,"roomid":10001,"protover":3,"platform":"web","type":2,"buvid":"b3","key":"tok"}'
    assert encode_auth(10001, "tok", uid=777, buvid="b3") == struct.pack(">IHHII", 16 + len(body), 16, 1, 7, 1) + body


def test_guest_auth_packet_bytes():
    body = b'{"uid":0,"roomid":5,"protover":3,"platform":"web","type":2,"buvid":"","key":""}'
    assert encode_auth(5, "") == bytes.fromhex("0000005f00100001 0000000700000001") + body


def test_heartbeat_packet_bytes():
    assert encode_heartbeat() == bytes.fromhex("0000001f00100001 0000000200000001") + b"[object Object]"
    assert HEARTBEAT_BODY == b"[object Object]"


# -- framing and bundles ----------------------------------------------------------------------------------


def danmaku_frame(n: int, ver: int) -> bytes:
    return frame([builders.danmu_msg(f"弹幕{i}", uid=i + 1, id_str=f"id{i}") for i in range(n)], ver)


@pytest.mark.parametrize("ver", [0, 2, 3])
def test_bundles_of_every_version_decode_to_the_same_events(ver):
    items = feed(danmaku_frame(5, ver))
    assert_clean(items)
    assert [i.text for i in items] == [f"弹幕{i}" for i in range(5)] and [i.id for i in items] == [f"id{i}" for i in range(5)]


def test_nested_bundles_open_up_to_the_depth_limit():
    inner = danmaku_frame(2, 3)                                  # brotli
    middle = packet(Op.SEND_MSG_REPLY, zlib.compress(inner), ver=2)  # zlib around brotli
    assert [i.text for i in feed(middle)] == ["弹幕0", "弹幕1"]
    deep = middle
    for _ in range(3):
        deep = packet(Op.SEND_MSG_REPLY, zlib.compress(deep), ver=2)
    codec = BilibiliCodec()
    items = codec.feed(deep)
    assert [i.reason for i in items] == ["nested-too-deep"] and codec.stats.errors["nested-too-deep"] == 1


@pytest.mark.parametrize("ver", [2, 3])
def test_a_decompression_bomb_is_an_error_not_a_memory_spike(ver):
    zeros = b"\0" * (64 * 1024 * 1024)
    body = zlib.compress(zeros, 9) if ver == 2 else brotli.compress(zeros, quality=5)
    assert len(body) < 1024 * 1024
    items = BilibiliCodec(limits=Limits(max_inflated_bytes=1024 * 1024)).feed(packet(5, body, ver=ver))
    assert [i.reason for i in items] == ["inflate-limit"]


def test_the_inflate_budget_is_shared_by_all_bundles_of_a_message():
    one_bundle = danmaku_frame(20, 2)
    size = len(zlib.decompress(one_bundle[16:]))
    codec = BilibiliCodec(limits=Limits(max_inflated_bytes=size * 2 + size // 2))
    items = codec.feed(one_bundle * 3)
    assert sum(isinstance(i, ChatEvent) for i in items) == 40 and [i.reason for i in items if isinstance(i, DecodeError)] == ["inflate-limit"]
    assert sum(isinstance(i, ChatEvent) for i in codec.feed(one_bundle)) == 20  # the next message has its own


@pytest.mark.parametrize(("data", "reason"), [
    (b"\x00\x00\x00", "truncated-header"),
    (struct.pack(">IHHII", 40, 16, 0, 5, 0) + b"{}", "truncated-packet"),
    (struct.pack(">IHHII", 8, 16, 0, 5, 0), "bad-header"),
    (struct.pack(">IHHII", 16, 12, 0, 5, 0), "bad-header"),
    (packet(5, b"not json"), "bad-json"),
    (packet(5, b"\xff\xfe"), "bad-json"),
    (packet(5, b"[1,2]"), "bad-command"),
    (packet(5, b'{"cmd": 5}'), "bad-command"),
    (packet(5, b"[" * 100_000 + b"]" * 100_000), "bad-json"),
    (packet(5, b'{"cmd":"X"}', ver=7), "bad-protover"),
    (packet(5, b"garbage", ver=2), "bad-zlib"),
    (packet(5, zlib.compress(command_packet({"cmd": "X"}))[:-3], ver=2), "bad-zlib"),
    (packet(5, zlib.compress(command_packet({"cmd": "X"})) + b"tail", ver=2), "bad-zlib"),
    (packet(5, b"garbage", ver=3), "bad-brotli"),
    (packet(5, brotli.compress(command_packet({"cmd": "X"}))[:-2], ver=3), "bad-brotli"),
    (packet(5, zlib.compress(b""), ver=2), "empty-bundle"),
    (packet(3, b"\x00\x01"), "bad-heartbeat-reply"),
    (packet(8, b'{"code":"0"}'), "bad-auth-reply"),
    (packet(8, b'{"code":0}', ver=3), "bad-protover"),
    (packet(2, b""), "unexpected-op"),
    (packet(7, b"{}"), "unexpected-op"),
    (packet(17, b""), "unknown-op"),
])
def test_bad_input_is_a_counted_error(data, reason):
    codec = BilibiliCodec()
    items = codec.feed(data)
    assert [i.reason for i in items if isinstance(i, DecodeError)] == [reason], items
    assert codec.stats.errors[reason] == 1


def test_good_packets_before_a_truncated_one_are_kept():
    data = danmaku_frame(3, 0)
    items = feed(data + data[:30])
    assert [type(i).__name__ for i in items] == ["ChatEvent"] * 3 + ["DecodeError"]


def test_the_heartbeat_echo_after_a_reply_is_not_an_error():
    # The server echoes the client's heartbeat body after its reply, outside pack_len.
    assert feed(packet(3, (9890).to_bytes(4, "big"), ver=1) + b"[object Object]") == [HeartbeatReply(9890)]
    # ...but a real packet after a heartbeat reply is read.
    items = feed(packet(3, (1).to_bytes(4, "big"), ver=1) + danmaku_frame(1, 0))
    assert [type(i).__name__ for i in items] == ["HeartbeatReply", "ChatEvent"]


def test_message_size_and_packet_count_are_bounded():
    codec = BilibiliCodec(limits=Limits(max_message_bytes=1000, max_packets=5))
    assert [i.reason for i in codec.feed(b"\0" * 1001)] == ["message-too-large"]
    items = codec.feed(packet(5, b'{"cmd":"X"}') * 8)
    assert len(items) == 6 and items[-1].reason == "too-many-packets"


def test_packet_decoder_reports_header_fields():
    (p,) = PacketDecoder().feed(encode_packet(Op.HEARTBEAT_REPLY, b"\0\0\0\7", ver=1, seq=9))
    assert (p.ver, p.op, p.seq, p.body) == (1, 3, 9, b"\0\0\0\7")


# -- commands ---------------------------------------------------------------------------------------------


def items_of(*cmds, **kw) -> list:
    items = feed(frame(list(cmds)), **kw)
    assert_clean(items)
    return items


def test_danmaku_with_id_str_suffix_cmd_and_reply():
    cmd = builders.danmu_msg("有大码吗", uid=5, uname="小王", id_str="abc123", medal=(7, "粉丝团", "主播", 1000),
                             guard_level=3, reply_mid=9, reply_uname="老王")
    cmd["cmd"] = "DANMU_MSG:4:0:2:2:2:0"
    chat = one(items_of(cmd))
    assert chat.id == chat.msg_id == "abc123" and chat.cmd == "DANMU_MSG"
    assert chat.guard_level == 3 and chat.medal["level"] == 7 and chat.medal["guard_level"] == 3
    assert chat.reply_to == {"uid": 9, "name": "老王"}


def test_mirrored_danmaku_and_guests():
    chat = one(items_of(builders.danmu_msg("hi", uid=0, uname="小***", cmd="DANMU_MSG_MIRROR")))
    assert chat.mirror and chat.user.id.startswith("hash:") and chat.uid == 0
    long_name = one(items_of(builders.danmu_msg("hi", uid=3, uname="名" * 100)))
    assert len(long_name.user.name) == 64


def test_super_chat_is_a_paid_chat_and_its_jpn_twin_has_the_same_id():
    sc = builders.super_chat("主播看看我", sc_id=88, uid=5, uname="老板", price=50, guard_level=2, medal=(20, "粉丝团"))
    jpn = json.loads(json.dumps(sc))
    jpn["cmd"] = "SUPER_CHAT_MESSAGE_JPN"
    jpn["data"]["id"] = "88"
    a, b = items_of(sc, jpn)
    assert isinstance(a, ChatEvent) and a.paid == 50.0 and a.text == "主播看看我" and a.guard_level == 2
    assert a.id == b.id == a.msg_id == "sc:88" and a.medal["level"] == 20 and a.dmscore == 120 and a.sc_seconds == 60


def test_gifts_are_valued_in_cny():
    gold = one(items_of(builders.send_gift(5, "老板", "小花花", num=10, price=100, tid="T1")))
    assert isinstance(gold, RoomEvent) and gold.type == "gift" and gold.gift == "小花花"
    assert (gold.count, gold.value, gold.coins, gold.msg_id) == (10, 1.0, 1000, "gift:T1")
    silver = one(items_of(builders.send_gift(5, "老板", "辣条", num=5, price=100, coin_type="silver")))
    assert silver.value == 0.0


def test_send_gift_v2_protobuf_one_event_per_gift_and_blind_boxes_at_their_price():
    cmd = builders.send_gift_v2(5, "老板", [("小花花", 2, 100), ("棒棒糖", 1, 1000)], tid_prefix="T",
                                medal=(12, "粉丝团"), guard_level=3)
    a, b = items_of(cmd)
    assert (a.gift, a.count, a.value, a.msg_id, a.user.name) == ("小花花", 2, 0.2, "gift:T0", "老板")
    assert (b.gift, b.value, b.guard_level, b.medal["level"], b.dmscore) == ("棒棒糖", 1.0, 3, 12, 80)
    box = one(items_of(builders.send_gift_v2(6, "x", [("礼物", 3, 500)], blind=("心动盲盒", 15_000))))
    assert box.blind_box == "心动盲盒" and box.value == 45.0  # paid 3 boxes, whatever came out


def test_the_same_gift_as_send_gift_and_send_gift_v2_shares_its_msg_id():
    v1 = one(items_of(builders.send_gift(5, "老板", "小花花", tid="T0")))
    v2 = one(items_of(builders.send_gift_v2(5, "老板", [("小花花", 1, 100)], tid_prefix="T")))
    assert v1.msg_id == v2.msg_id == "gift:T0"


def test_guard_buy_is_a_gift_with_its_guard_level():
    g = one(items_of(builders.guard_buy(5, "老板", guard_level=3, num=2, price=198_000)))
    assert (g.type, g.gift, g.count, g.value, g.guard_level) == ("gift", "舰长", 2, 396.0, 3)


@pytest.mark.parametrize(("msg_type", "kind"), [(1, "enter"), (2, "follow"), (4, "follow"), (5, "follow")])
def test_interact_word_types(msg_type, kind):
    assert one(items_of(builders.interact_word(5, "路人", msg_type=msg_type))).type == kind


def test_interact_word_v2_protobuf():
    enter = one(items_of(builders.interact_word_v2(5, "路人", msg_type=1, ts=1700000000, medal=(4, "团"))))
    assert (enter.type, enter.user.id, enter.user.name, enter.ts) == ("enter", "5", "路人", 1700000000.0)
    assert enter.medal["level"] == 4 and enter.dmscore == 3
    assert one(items_of(builders.interact_word_v2(5, "路人", msg_type=2))).type == "follow"
    assert one(items_of(builders.interact_word_v2(5, "路人", msg_type=6))).type == "like"
    share = one(items_of(builders.interact_word_v2(5, "路人", msg_type=3)))
    assert isinstance(share, Notice) and share.handled


def test_likes_figures_and_stream_status():
    like, total, watched, start, end = items_of(builders.like_click(5, "点赞的人"), builders.like_update(321),
                                                builders.watched_change(99), builders.live(10001),
                                                builders.preparing(10001))
    assert isinstance(like, RoomEvent) and like.type == "like" and like.user.name == "点赞的人"
    assert isinstance(total, Notice) and total.data == {"click_count": 321}
    assert isinstance(watched, Notice) and watched.data["num"] == 99
    assert start == StreamStatus(True, "LIVE", 10001) and end == StreamStatus(False, "PREPARING", 10001)


def test_product_on_stage_maps_goods_ids_to_catalog_ids():
    p = one(items_of(builders.shopping_explain_card("1531173988422647808", "空气炸锅"), products={
        "1531173988422647808": "fryer"}))
    assert isinstance(p, ProductEvent) and p.product_id == "fryer" and p.goods_name == "空气炸锅"
    assert one(items_of(builders.shopping_explain_card("77", "x"))).product_id == "77"


def test_repeats_of_counted_gifts_are_notices():
    for cmd in ("COMBO_SEND", "USER_TOAST_MSG"):
        assert one(items_of({"cmd": cmd, "data": {}})).handled


@pytest.mark.parametrize("payload", [
    {"cmd": "DANMU_MSG", "info": "nope"},
    {"cmd": "DANMU_MSG", "info": [[], "hi", [1]]},
    {"cmd": "DANMU_MSG", "info": [[], "hi", ["x", "y"], 5, 6, 7, 8, 9, 10]},
    {"cmd": "SEND_GIFT", "data": {"uid": 1}},
    {"cmd": "SEND_GIFT_V2", "data": {"pb": "!!!"}},
    {"cmd": "SEND_GIFT_V2", "data": {"pb": base64.b64encode(b"\x0a\xff").decode()}},
    {"cmd": "SEND_GIFT_V2", "data": {"pb": base64.b64encode(pb.message((1, 5))).decode()}},
    {"cmd": "SEND_GIFT_V2", "data": {"pb": base64.b64encode(pb.message((10, 5))).decode()}},
    {"cmd": "INTERACT_WORD_V2", "data": {"pb": base64.b64encode(pb.message((2, 7))).decode()}},
    {"cmd": "INTERACT_WORD", "data": []},
    {"cmd": "SUPER_CHAT_MESSAGE", "data": {"id": 1}},
    {"cmd": "SHOPPING_EXPLAIN_CARD", "data": {}},
])
def test_payloads_that_break_their_cmd_are_counted(payload):
    codec = BilibiliCodec()
    item = one(codec.feed(command_packet(payload)))
    assert isinstance(item, DecodeError) and item.reason in ("bad-payload", "empty-text"), item
    assert codec.stats.error_count == 1


# -- the protobuf reader --------------------------------------------------------------------------------


def test_protobuf_wire_types():
    data = (pb.field(1, 300) + pb.field(2, "名字") + bytes([0x19]) + (7).to_bytes(8, "little")
            + bytes([0x25]) + (9).to_bytes(4, "little") + pb.field(1, 301) + pb.field(6, -2))
    f = pb.parse(data)
    assert f[1] == [300, 301] and pb.get_int(f, 1) == 301 and pb.get_str(f, 2) == "名字"
    assert f[3] == [7] and f[4] == [9] and pb.get_int(f, 6) == -2
    assert pb.get_message(f, 99) == {} and pb.get_int(f, 99, 5) == 5


@pytest.mark.parametrize("data", [b"\x08", b"\x08" + b"\xff" * 11, b"\x12\x05ab", b"\x1b", b"\x00\x01",
                                  b"\x19\x01", b"\x25\x01"])
def test_protobuf_errors(data):
    with pytest.raises(pb.ProtobufError):
        pb.parse(data)


def test_protobuf_type_confusion_is_an_error():
    f = pb.parse(pb.field(1, 5) + pb.field(2, "x"))
    for get in (lambda: pb.get_str(f, 1), lambda: pb.get_int(f, 2), lambda: pb.get_message(f, 1),
                lambda: pb.get_messages(f, 1)):
        with pytest.raises(pb.ProtobufError):
            get()


# -- fuzz: thousands of bad inputs, no exception, every failure counted --------------------------------------


def check(codec: BilibiliCodec, data: bytes) -> list:
    items = codec.feed(data)  # must not raise
    for item in items:
        assert isinstance(item, ChatEvent | RoomEvent | ProductEvent | AuthReply | HeartbeatReply | Notice
                          | StreamStatus | DecodeError), item
    assert codec.stats.errors["internal"] == 0, [i for i in items if isinstance(i, DecodeError)]
    return items


SAMPLE_CMDS = [builders.danmu_msg("包邮吗", uid=3, id_str="x"), builders.send_gift(3, "a", "b"),
               builders.send_gift_v2(3, "a", [("b", 1, 1)]), builders.interact_word(3, "c"),
               builders.interact_word_v2(3, "c"), builders.super_chat("m", sc_id=1), builders.guard_buy(3, "g"),
               builders.like_click(3, "l"), builders.preparing(1), builders.watched_change(3)]

packets = st.builds(
    lambda op, ver, seq, body: packet(op, body, ver=ver, seq=seq),
    st.sampled_from([0, 2, 3, 5, 5, 5, 7, 8, 17, 2**32 - 1]), st.sampled_from([0, 1, 2, 3, 4, 65535]),
    st.integers(0, 2**32 - 1), st.one_of(st.binary(max_size=64), st.sampled_from([command_packet(c)[16:] for c in SAMPLE_CMDS])),
)


@st.composite
def messages(draw) -> bytes:
    """Packets, bundles of packets (nested), concatenated, then maybe truncated or corrupted."""
    parts = draw(st.lists(packets, min_size=1, max_size=4))
    data = b"".join(parts)
    for _ in range(draw(st.integers(0, 4))):
        ver = draw(st.sampled_from([2, 3]))
        body = zlib.compress(data) if ver == 2 else brotli.compress(data, quality=1)
        data = packet(5, body, ver=ver)
        if draw(st.booleans()):
            data += draw(packets)
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:
        data = data[:cut]
    flips = draw(st.lists(st.tuples(st.integers(0, max(len(data) - 1, 0)), st.integers(0, 255)), max_size=3))
    buf = bytearray(data)
    for pos, value in flips:
        if buf:
            buf[pos] = value
    return bytes(buf)


@FUZZ
@given(st.binary(max_size=512))
def test_fuzz_random_bytes(data):
    check(BilibiliCodec(), data)


@FUZZ
@given(messages())
def test_fuzz_structured_messages(data):
    check(BilibiliCodec(limits=Limits(max_inflated_bytes=256 * 1024)), data)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=5), max_leaves=20)


@FUZZ_JSON
@given(st.sampled_from(sorted(HANDLERS)), st.dictionaries(st.sampled_from(["info", "data", "roomid", "dmscore"]),
                                                          json_values, max_size=3))
def test_fuzz_every_command_with_junk_payloads(cmd, payload):
    check(BilibiliCodec(), command_packet({"cmd": cmd, **payload}))


@FUZZ_JSON
@given(st.sampled_from(SAMPLE_CMDS), st.lists(st.tuples(st.integers(0, 10_000), json_values), max_size=4))
def test_fuzz_real_commands_with_fields_replaced(cmd, edits):
    cmd = json.loads(json.dumps(cmd))
    for where, value in edits:
        target = cmd.get("data") if isinstance(cmd.get("data"), dict) else cmd
        if isinstance(cmd.get("info"), list) and cmd["info"] and where % 2:
            cmd["info"][where % len(cmd["info"])] = value
        elif target:
            keys = sorted(target)
            target[keys[where % len(keys)]] = value
    check(BilibiliCodec(), command_packet(cmd))


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_protobuf_payloads(data):
    b64 = base64.b64encode(data).decode()
    codec = BilibiliCodec()
    for cmd in ("SEND_GIFT_V2", "INTERACT_WORD_V2"):
        check(codec, command_packet({"cmd": cmd, "data": {"pb": b64}}))


def test_bench_decode_reports_packets_per_second():
    assert bench_decode(0.05) > 100
