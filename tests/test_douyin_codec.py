"""The Douyin codec, sans-I/O: protobuf wire format, the f2 captures as fixtures, every method's mapping to
the event model, resume state, acks, dedupe, and fuzzing (no input makes feed() raise)."""

from __future__ import annotations

import gzip
import json
import random
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohost.errors import CohostError
from cohost.events import ChatEvent, ProductEvent, RoomEvent
from cohost.sources.douyin import messages as m
from cohost.sources.douyin import proto
from cohost.sources.douyin.codec import (
    HEARTBEAT,
    DecodeError,
    DouyinCodec,
    Signal,
    ack_frame,
    bench_decode,
    decode_file,
    frame_from_dict,
    sample_frames,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "douyin"
DOUYIN = SHARED / "douyin" / "webcast" / "dict"
TIKTOK = SHARED / "tiktok" / "webcast"
needs_fixtures = pytest.mark.skipif(not DOUYIN.is_dir(), reason="shared Douyin fixtures not present")
SHOPPING_BINS = sorted((TIKTOK / "protobuf").glob("*.bin")) if TIKTOK.is_dir() else []


def frame(*messages: bytes, **kw) -> bytes:
    resp = {k: kw.pop(k) for k in ("cursor", "internal_ext", "need_ack", "heartbeat_ms") if k in kw}
    return m.push_frame(m.response(list(messages), **resp), **kw)


VIEWER = m.user(85042060712, "一清", sec_uid="MS4wLjABAAAASpn1", display_id="667064299", fan_level=11,
                pay_level=9)


# -- wire format -------------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varints_round_trip(n):
    data = proto.varint(n)
    assert proto.read_varint(data, 0) == (n, len(data))


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int64_travels_as_twos_complement(n):
    value, _ = proto.read_varint(proto.varint(n), 0)
    assert proto.signed64(value) == n


def test_fields_of_every_wire_type_read_back():
    data = (proto.field_varint(1, 150) + proto.field_str(2, "包邮吗") + proto.field_fixed64(3, 2**63 + 5)
            + proto.field_fixed32(4, 7) + proto.field_packed(5, [1, 300, 2**40]))
    fields = [(n, w, bytes(v) if isinstance(v, memoryview) else v) for n, w, v in proto.iter_fields(data)]
    assert fields[:4] == [(1, proto.VARINT, 150), (2, proto.LEN, "包邮吗".encode()), (3, proto.FIXED64, 2**63 + 5),
                          (4, proto.FIXED32, 7)]
    assert list(proto.iter_packed_varints(fields[4][2])) == [1, 300, 2**40]
    assert proto.varint(150) == b"\x96\x01"  # the protobuf documentation's example


@pytest.mark.parametrize("data, why", [
    (b"\x08", "truncated varint"),
    (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
    (b"\x12\x05ab", "past the end"),
    (b"\x00\x01", "invalid field number 0"),
    (b"\x0b", "unsupported wire type 3"),      # a group
    (b"\x0f", "unsupported wire type 7"),
    (b"\x09\x01\x02", "truncated fixed64"),
])
def test_malformed_bytes_raise_wire_error_only(data, why):
    with pytest.raises(proto.WireError, match=why):
        list(proto.iter_fields(data))


def test_a_message_with_absurdly_many_fields_is_refused():
    with pytest.raises(proto.WireError, match="more than 50000 fields"):
        list(proto.iter_fields(b"\x08\x01" * 50_001))


def test_decode_skips_unknown_fields_and_wrong_wire_types():
    data = proto.field_str(1, "WebcastChatMessage") + proto.field_varint(99, 5) + proto.field_str(2, "x")
    data += proto.field_varint(2, 1)  # msgId as a varint is right; as a string it was skipped above
    assert m.decode("Common", data) == {"method": "WebcastChatMessage", "msgId": 1}


def test_heartbeat_and_ack_frames_are_the_documented_bytes():
    assert HEARTBEAT == DouyinCodec.encode_heartbeat() == bytes.fromhex("3a026862")
    assert m.decode("PushFrame", HEARTBEAT) == {"payloadType": "hb"}
    ack = m.decode("PushFrame", ack_frame(42, "internal_src:dim|seq:9"))
    assert (ack["logId"], ack["payloadType"], ack["payload"]) == (42, "ack", b"internal_src:dim|seq:9")
    assert DouyinCodec.encode_ack(42, "internal_src:dim|seq:9") == ack_frame(42, "internal_src:dim|seq:9")


@pytest.mark.skipif(not SHOPPING_BINS, reason="shared TikTok protobuf captures not present")
@pytest.mark.parametrize("path", SHOPPING_BINS, ids=lambda p: p.name)
def test_real_captured_payloads_parse_byte_for_byte(path):
    """f2's raw WebcastOecLiveShoppingMessage payloads: every field parses, writing each field back gives the
    same bytes, and the shared Common header reads with our field numbers."""
    data = path.read_bytes()
    out = bytearray()
    for number, wire, value in proto.iter_fields(data):
        if wire == proto.LEN:
            out += proto.field_bytes(number, value)
        elif wire == proto.VARINT:
            out += proto.field_varint(number, value)
        elif wire == proto.FIXED64:
            out += proto.field_fixed64(number, value)
        else:
            out += proto.field_fixed32(number, value)
    assert bytes(out) == data
    first = next(proto.iter_fields(data))
    common = m.decode("Common", first[2])
    assert common["method"] == "WebcastOecLiveShoppingMessage"
    assert common["msgId"] > 7 * 10**18 and common["roomId"] > 7 * 10**18 and common["isShowMsg"] is True
    codec = DouyinCodec()
    assert codec.feed(frame(m.message("WebcastOecLiveShoppingMessage", data, common["msgId"]))) == []
    assert codec.counts["ignored"] == 1 and codec.counts["errors"] == 0


# -- the f2 captures ---------------------------------------------------------------------------------------


@needs_fixtures
def test_captured_gift_is_a_gift_in_cny():
    [gift] = decode_file(DOUYIN / "WebcastGiftMessage.json")
    assert gift == {"type": "gift", "user": {"id": "85042060712", "name": "一清"}, "gift": "入团卡", "count": 1,
                    "value": 0.1, "gift_id": "3242", "diamonds": 1, "douyin_uid": "85042060712",
                    "sec_uid": "MS4wLjABAAAASpn1ksA412YU7Yd7bFLdlqQTJ2OIrozQ3wNBgSXiD_k", "display_id": "667064299",
                    "pay_level": 11, "platform": "douyin", "msg_id": "7382491109027058703", "ts": 1718870387.667}


@needs_fixtures
def test_captured_follow_is_a_follow():
    [follow] = decode_file(DOUYIN / "WebcastSocialMessage.json")
    assert follow["type"] == "follow" and follow["user"] == {"id": "52410834624", "name": "金牛"}
    assert follow["follow_count"] == 1490954 and follow["msg_id"] == "7382509374039378729"


@needs_fixtures
def test_captured_product_change_puts_the_explained_product_on_stage():
    """The capture lists 198 products; link 10 (promotion 3691984502923623681) has an explainType."""
    by_id = DouyinCodec(product_ids={"3691984502923623681": "dress"}, links={10: "scarf"})
    by_link = DouyinCodec(links={10: "scarf"})
    unmapped = DouyinCodec()
    path = DOUYIN / "WebcastProductChangeMessage.json"
    assert decode_file(path, by_id) == [{"type": "product", "product_id": "dress", "promotion_id": "3691984502923623681",
                                        "link": 10, "mapped": True, "platform": "douyin",
                                        "msg_id": "7388577384036846374"}]
    assert decode_file(path, by_link)[0]["product_id"] == "scarf"
    [event] = decode_file(path, unmapped)
    assert event["product_id"] == "douyin:3691984502923623681" and event["mapped"] is False


@needs_fixtures
def test_captured_counts_and_shopping_updates_are_signals_not_events():
    assert decode_file(DOUYIN / "WebcastRoomUserSeqMessage.json") == [
        {"type": "stats", "online": 497, "total_user": 6597, "msg_id": "7388164021503214096"}]
    assert decode_file(DOUYIN / "WebcastStatsMessage.json") == [
        {"type": "stats", "display": "2252在线观众", "display_value": 2252, "msg_id": "7388567546888702514"}]
    # A sold-out update names no product on stage.
    assert decode_file(DOUYIN / "WebcastLiveShoppingMessage.json") == [
        {"type": "shopping", "msg_type": 7, "sold_out": True, "updated_product_ids": ["3607009049079634959"],
         "msg_id": "7388567253396146955"}]
    codec = DouyinCodec()
    assert decode_file(DOUYIN / "WebcastUpdateFanTicketMessage.json", codec) == []
    assert codec.counts["ignored"] == 1 and codec.counts["errors"] == 0


@pytest.mark.skipif(not TIKTOK.is_dir(), reason="shared TikTok fixtures not present")
@pytest.mark.parametrize("name, kind, text", [("WebcastChatMessage", "chat", "hello"),
                                              ("WebcastLikeMessage", "like", None),
                                              ("WebcastMemberMessage", "enter", None)])
def test_captured_webcast_chat_like_and_member(name, kind, text):
    """Douyin's own captures have no chat, like or member message; TikTok's webcast shares the layout."""
    [event] = decode_file(TIKTOK / "dict" / f"{name}.json")
    assert event["type"] == kind and event["user"]["id"].isdigit() and event["sec_uid"].startswith("MS4wLjABAAAA")
    if text:
        assert event["text"] == text and event["id"] == "7388168242030283537" and event["ts"] == 1720191973.043


# -- frames and resume state -------------------------------------------------------------------------------


def test_a_frame_of_several_messages_acks_and_keeps_the_cursor():
    codec = DouyinCodec()
    items = codec.feed(frame(m.chat(1, VIEWER, "包邮吗", create_ms=1_700_000_000_000),
                             m.message("WebcastSomethingNewMessage", b"\x08\x01", 2),
                             m.like(3, VIEWER, 5, 120), m.member(4, VIEWER, 300), m.social(5, VIEWER),
                             cursor="t-1_r-1", internal_ext="internal_src:dim|seq:7", need_ack=True,
                             heartbeat_ms=12000, log_id=99))
    chat, like, enter, follow = items
    assert isinstance(chat, ChatEvent) and chat.id == "1" and chat.text == "包邮吗" and chat.ts == 1_700_000_000.0
    assert chat.user.id == "85042060712" and chat.user.name == "一清"
    assert (chat.fan_level, chat.pay_level, chat.sec_uid, chat.douyin_uid) == (11, 9, "MS4wLjABAAAASpn1",
                                                                            "85042060712")
    assert (like.type, like.count, like.total_likes) == ("like", 5, 120)
    assert (enter.type, enter.member_count) == ("enter", 300) and follow.type == "follow"
    assert (codec.cursor, codec.internal_ext, codec.heartbeat_ms) == ("t-1_r-1", "internal_src:dim|seq:7", 12000)
    [ack] = codec.data_to_send()
    assert ack == ack_frame(99, "internal_src:dim|seq:7") and codec.data_to_send() == []
    assert codec.counts["ignored"] == 1


def test_messages_resent_after_a_resume_are_dropped_by_msg_id():
    codec = DouyinCodec()
    first = codec.feed(frame(m.chat(1, VIEWER, "一"), m.chat(2, VIEWER, "二")))
    again = codec.feed(frame(m.chat(2, VIEWER, "二"), m.chat(3, VIEWER, "三")))
    assert [e.id for e in first + again] == ["1", "2", "3"] and codec.counts["duplicates"] == 1


def test_an_uncompressed_payload_and_gzip_without_the_header_both_decode():
    raw = m.push_frame(m.response([m.chat(1, VIEWER, "a")]), compress=False)
    magic = m.push_frame(m.gzip_bytes(m.response([m.chat(2, VIEWER, "b")])), compress=False)
    codec = DouyinCodec()
    assert [e.text for e in codec.feed(raw) + codec.feed(magic)] == ["a", "b"]


def test_anonymous_viewers_are_told_apart_by_sec_uid():
    masked = m.user(111111, "用户***", sec_uid="MS4wLjABAAAAxyz")
    [chat] = DouyinCodec().feed(frame(m.chat(1, masked, "多少钱")))
    assert chat.user.id == "MS4wLjABAAAAxyz" and chat.douyin_uid == "111111"


def test_long_names_and_texts_are_cut_to_the_model_limits():
    [chat] = DouyinCodec().feed(frame(m.chat(1, m.user(1, "名" * 100), "字" * 900)))
    assert len(chat.user.name) == 64 and len(chat.text) == 500


def test_an_empty_chat_is_skipped():
    codec = DouyinCodec()
    assert codec.feed(frame(m.chat(1, VIEWER, "  "))) == [] and codec.counts["empty_chat"] == 1


def test_a_combo_gift_counts_each_gift_once():
    codec = DouyinCodec()
    steps = [m.gift(10 + i, VIEWER, gift_id=463, name="小心心", diamonds=1, repeat=i, group_id=77, combo=True)
             for i in (1, 2, 3)]
    steps.append(m.gift(20, VIEWER, gift_id=463, name="小心心", diamonds=1, repeat=3, group_id=77, combo=True,
                        repeat_end=1))
    gifts = codec.feed(frame(*steps))
    assert [(g.gift, g.count, g.value) for g in gifts] == [("小心心", 1, 0.1)] * 3
    big = codec.feed(frame(m.gift(30, VIEWER, gift_id=1, name="嘉年华", diamonds=30000, group=2)))
    assert [(g.count, g.value, g.diamonds) for g in big] == [(2, 6000.0, 30000)]
    assert codec.feed(frame(m.gift(31, VIEWER, gift_id=1, name="嘉年华", diamonds=30000, repeat_end=1))) == []


def test_control_status_3_ends_the_stream():
    codec = DouyinCodec()
    assert codec.feed(frame(m.control(1, 3))) == [Signal("stream_end", {"status": 3, "msg_id": "1"})]
    assert codec.feed(frame(m.control(2, 2))) == [Signal("control", {"status": 2, "msg_id": "2"})]


def test_room_user_seq_is_a_stats_signal():
    assert DouyinCodec().feed(frame(m.room_user_seq(1, 497, 6597))) == [
        Signal("stats", {"online": 497, "total_user": 6597, "msg_id": "1"})]


def test_product_changes_map_through_the_id_table_then_links_and_repeat_once():
    codec = DouyinCodec(product_ids={"111": "dress"}, links={2: "scarf", 3: "hat"})
    [dress] = codec.feed(frame(m.product_change(1, [(111, 1, 1), (222, 2, 0), (333, 3, 0)])))
    assert isinstance(dress, ProductEvent) and (dress.product_id, dress.link, dress.mapped) == ("dress", 1, True)
    assert codec.feed(frame(m.product_change(2, [(111, 1, 1), (222, 2, 0)]))) == []  # still the dress
    [scarf] = codec.feed(frame(m.product_change(3, [(111, 1, 0), (222, 2, 2)])))
    assert scarf.product_id == "scarf" and scarf.promotion_id == "222"
    assert codec.feed(frame(m.product_change(4, [(111, 1, 0)]))) == [
        Signal("product_list", {"total": 1, "msg_id": "4"})]
    # A live-shopping message names a promotion; its link is known from the last product list.
    [hat] = codec.feed(frame(m.live_shopping(5, 333, msg_type=1)))
    assert (hat.product_id, hat.link, hat.shopping_msg_type) == ("hat", 3, 1)
    [sold] = codec.feed(frame(m.live_shopping(6, 222, sold_out=True)))
    assert isinstance(sold, Signal) and sold.kind == "shopping" and sold.data["sold_out"] is True


def test_shopping_types_limit_which_live_shopping_messages_change_the_product():
    codec = DouyinCodec(product_ids={"9": "dress"}, shopping_types={3})
    assert isinstance(codec.feed(frame(m.live_shopping(1, 9, msg_type=1)))[0], Signal)
    assert codec.feed(frame(m.live_shopping(2, 9, msg_type=3)))[0].product_id == "dress"


def test_other_payload_types():
    codec = DouyinCodec()
    assert codec.feed(HEARTBEAT) == [] and codec.feed(ack_frame(1, "x")) == []
    assert codec.feed(m.push_frame(payload_type="close", compress=False)) == [Signal("server_close")]
    [err] = codec.feed(m.push_frame(b"", payload_type="bogus", compress=False))
    assert isinstance(err, DecodeError) and "bogus" in err.reason


# -- bad input: each a counted error, never an exception ------------------------------------------------------


def _bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(z.compress(chunk) for _ in range(size >> 20)) + z.flush()


BOMB = _bomb(64 << 20)  # 64 MiB of zeros in about 64 KiB


@pytest.mark.parametrize("data, stage", [
    ("a text frame", "frame"),
    (b"\xff" * 20, "frame"),
    (bytes(2 << 20), "frame"),
    (m.push_frame(b"not gzip at all", headers={"compress_type": "gzip"}, compress=False), "gzip"),
    (m.push_frame(m.gzip_bytes(m.response([]) + b"x" * 100)[:-12], compress=False,
                  headers={"compress_type": "gzip"}), "gzip"),
    (m.push_frame(BOMB, compress=False, headers={"compress_type": "gzip"}), "gzip"),
    (m.push_frame(b"\x0a\x05ab", compress=True), "response"),
    (m.push_frame(zlib.compress(b"zlib, not gzip"), compress=False, headers={"compress_type": "gzip"}), "gzip"),
], ids=["text", "garbage", "oversize", "not-gzip", "truncated-gzip", "gzip-bomb", "bad-response", "zlib"])
def test_bad_frames_are_counted_errors(data, stage):
    codec = DouyinCodec()
    [err] = codec.feed(data)
    assert isinstance(err, DecodeError) and err.stage == stage
    assert codec.counts["errors"] == 1 and codec.counts["internal_errors"] == 0


def test_a_bad_message_spoils_only_itself():
    codec = DouyinCodec()
    items = codec.feed(frame(m.chat(1, VIEWER, "前"), m.message("WebcastChatMessage", b"\x12\x09short", 2),
                             m.message("WebcastGiftMessage", b"\x0b", 3), m.chat(4, VIEWER, "后")))
    assert [type(i).__name__ for i in items] == ["ChatEvent", "DecodeError", "DecodeError", "ChatEvent"]
    assert items[1].stage == "message:WebcastChatMessage" and codec.counts["errors"] == 2


def test_an_impossible_platform_time_is_left_out():
    huge_ts = m.message("WebcastChatMessage", {"common": {"createTime": 2**63}, "content": "x", "user": VIEWER}, 1)
    items = DouyinCodec().feed(frame(huge_ts))
    assert isinstance(items[0], ChatEvent) and items[0].ts is None  # out of range: no platform time


# -- fuzzing ---------------------------------------------------------------------------------------------------

WIRE_FIELD = st.one_of(
    st.tuples(st.integers(1, 40), st.just(proto.VARINT), st.integers(0, 2**64 - 1)),
    st.tuples(st.integers(1, 40), st.just(proto.LEN), st.binary(max_size=40)),
    st.tuples(st.integers(1, 40), st.sampled_from([proto.FIXED32, proto.FIXED64]), st.integers(0, 2**32 - 1)),
)


def _pb(fields) -> bytes:
    out = bytearray()
    for number, wire, value in fields:
        if wire == proto.VARINT:
            out += proto.field_varint(number, value)
        elif wire == proto.LEN:
            out += proto.field_bytes(number, value)
        elif wire == proto.FIXED32:
            out += proto.field_fixed32(number, value)
        else:
            out += proto.field_fixed64(number, value)
    return bytes(out)


GARBAGE_PB = st.recursive(st.lists(WIRE_FIELD, max_size=8).map(_pb),
                          lambda inner: st.lists(st.tuples(st.integers(1, 40), inner), max_size=5).map(
                              lambda kids: b"".join(proto.field_bytes(n, k) for n, k in kids)), max_leaves=20)
METHOD = st.sampled_from([*m.METHODS, "WebcastEmojiChatMessage", ""])
VALID = [frame(m.chat(1, VIEWER, "包邮吗"), m.gift(2, VIEWER, gift_id=1, name="玫瑰", diamonds=1, combo=True),
               m.product_change(3, [(111, 1, 1)]), m.control(4, 3), need_ack=True, cursor="c", internal_ext="e"),
         *sample_frames(3)]


def _assert_fed(codec: DouyinCodec, data) -> None:
    items = codec.feed(data)
    assert isinstance(items, list)
    assert all(isinstance(i, ChatEvent | RoomEvent | ProductEvent | Signal | DecodeError) for i in items)
    assert codec.counts["internal_errors"] == 0
    codec.data_to_send()


FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(data):
    _assert_fed(DouyinCodec(), data)


@FUZZ
@given(st.sampled_from(VALID), st.integers(0, 10_000), st.integers(0, 255), st.booleans())
def test_fuzz_truncated_and_flipped_frames(data, where, flip, truncate):
    where %= len(data)
    mutated = data[:where] if truncate else data[:where] + bytes([data[where] ^ (flip or 1)]) + data[where + 1:]
    _assert_fed(DouyinCodec(), mutated)


@FUZZ
@given(METHOD, GARBAGE_PB, st.integers(-(2**63), 2**63 - 1), st.booleans())
def test_fuzz_garbage_protobuf_in_every_method(method, payload, msg_id, gz):
    codec = DouyinCodec()
    _assert_fed(codec, m.push_frame(m.response([m.message(method, payload, msg_id)]), compress=gz))
    _assert_fed(codec, m.push_frame(payload, compress=gz))          # garbage as the Response
    _assert_fed(codec, payload)                                     # garbage as the PushFrame


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12), st.binary(max_size=64), st.dictionaries(st.text(max_size=12), st.text(max_size=12),
                                                                       max_size=3))
def test_fuzz_payload_types_and_headers(payload_type, payload, headers):
    _assert_fed(DouyinCodec(), m.push_frame(payload, payload_type=payload_type, compress=False, headers=headers))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3 << 20))
def test_fuzz_gzip_sizes_around_the_limit(size):
    limit = 1 << 20
    codec = DouyinCodec(max_payload_bytes=limit)
    payload = m.response([m.chat(1, VIEWER, "x")]) + proto.field_bytes(100, bytes(size))
    items = codec.feed(m.push_frame(gzip.compress(payload, compresslevel=1, mtime=0), compress=False,
                                    headers={"compress_type": "gzip"}))
    if len(payload) > limit:
        assert isinstance(items[0], DecodeError) and items[0].stage == "gzip"
    else:
        assert isinstance(items[0], ChatEvent)
    assert codec.counts["internal_errors"] == 0


# -- tools ---------------------------------------------------------------------------------------------------


def test_decode_file_reads_binary_hex_base64_and_json(tmp_path):
    data = frame(m.chat(1, VIEWER, "包邮吗"), m.control(2, 3))
    (tmp_path / "one.bin").write_bytes(data)
    (tmp_path / "frames.hex").write_text(f"# two frames\n{data.hex()}\n\n{frame(m.like(3, VIEWER, 2)).hex()}\n")
    import base64
    (tmp_path / "frames.b64").write_text(base64.b64encode(data).decode() + "\n")
    (tmp_path / "chat.json").write_text(json.dumps({"common": {"method": "WebcastChatMessage", "msgId": "9"},
                                                    "content": "有大码吗", "user": {"id": "5", "nickname": "小王"}},
                                                   ensure_ascii=False))
    expected = [{"type": "chat", "text": "包邮吗"}, {"type": "stream_end"}]
    for name in ("one.bin", "frames.b64"):
        got = decode_file(tmp_path / name)
        assert [{k: d[k] for k in e} for d, e in zip(got, expected, strict=True)] == expected
    assert [d["type"] for d in decode_file(tmp_path / "frames.hex")] == ["chat", "stream_end", "like"]
    [chat] = decode_file(tmp_path / "chat.json")
    assert (chat["id"], chat["text"], chat["user"]) == ("9", "有大码吗", {"id": "5", "name": "小王"})
    (tmp_path / "junk.bin").write_bytes(b"\xff\xfe\x00")
    assert decode_file(tmp_path / "junk.bin")[0]["type"] == "error"
    with pytest.raises(CohostError, match="cannot read"):
        decode_file(tmp_path / "missing.bin")


def test_frame_from_dict_takes_the_method_from_common():
    data = frame_from_dict({"common": {"method": "WebcastControlMessage", "msgId": "5"}, "status": 3})
    assert DouyinCodec().feed(data) == [Signal("stream_end", {"status": 3, "msg_id": "5"})]


def test_bench_decode_reports_packets_per_second():
    assert bench_decode(seconds=0.05, frames=sample_frames(10)) > 100


def test_sample_frames_decode_without_errors():
    codec = DouyinCodec()
    for data in sample_frames(50):
        codec.feed(data)
    assert codec.counts["errors"] == 0 and codec.counts["events"] > 200


def test_random_mutations_are_deterministic_enough_to_rerun():
    rng = random.Random(7)
    codec = DouyinCodec()
    for _ in range(300):
        data = bytearray(rng.choice(VALID))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        _assert_fed(codec, bytes(data))
