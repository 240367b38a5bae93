"""parse_event: the edge where frames from the socket become events. Bad input raises EventError, nothing else."""

from __future__ import annotations

import json
import random
import time

import pytest

from cohost.events import (
    MAX_DEPTH,
    MAX_FRAME_BYTES,
    ChatEvent,
    ControlEvent,
    EventError,
    ProductEvent,
    RoomEvent,
    parse_event,
)

CHAT = {"type": "chat", "id": "e1", "user": {"id": "u1", "name": "小王"}, "text": "有大码吗", "ts": 1732250000.1}


def chat(**fields) -> str:
    return json.dumps({**CHAT, **fields}, ensure_ascii=False)


def refused(frame) -> str:
    with pytest.raises(EventError) as info:
        parse_event(frame)
    return str(info.value)


# --- valid events still parse ---------------------------------------------------------------------------------

def test_chat_product_and_control_events_parse():
    event = parse_event(chat())
    assert isinstance(event, ChatEvent)
    assert (event.id, event.user.display, event.text, event.ts, event.paid) == ("e1", "小王", "有大码吗",
                                                                                1732250000.1, 0.0)
    product = parse_event('{"type": "product", "product_id": "dress"}')
    assert isinstance(product, ProductEvent) and product.product_id == "dress" and product.ts is None
    pause = parse_event({"type": "control", "action": "pause"})
    assert isinstance(pause, ControlEvent) and pause.action == "pause"


def test_valid_numbers_and_extras_are_kept():
    assert parse_event(chat(ts=1732250000)).ts == 1732250000.0  # an int ts is fine
    assert parse_event(chat(ts=None)).ts is None
    assert parse_event(chat(paid=30)).paid == 30.0
    assert parse_event(chat(paid="30")).paid == 30.0  # lax as before: only non-finite amounts are new refusals
    gift = parse_event({"type": "gift", "user": {"id": "u"}, "gift": "rose", "value": 5.5, "count": 3})
    assert isinstance(gift, RoomEvent) and (gift.value, gift.count) == (5.5, 3)
    event = parse_event(chat(fan_level=12, badges=[{"name": "粉丝团", "level": [1, [2, [3]]]}],
                             douyin_uid=1234567890123456789012345678))  # 28 digits: under the cap
    assert event.model_extra["badges"][0]["name"] == "粉丝团"
    assert event.model_extra["douyin_uid"] == 1234567890123456789012345678
    assert parse_event(chat(text="😀 \\ud83d\\ude00")).text == "😀 \\ud83d\\ude00"  # literal backslashes
    assert parse_event('{"type":"chat","id":"e","user":{"id":"u"},"text":"\\ud83d\\ude00"}').text == "😀"


def test_nesting_up_to_the_limit_is_fine():
    inner = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)  # plus the event object itself: MAX_DEPTH levels
    assert parse_event('{"type":"product","product_id":"d","x":' + inner + "}").model_extra["x"]
    # brackets inside strings do not count
    assert parse_event(chat(text="[" * 400)).text == "[" * 400


def test_a_frame_just_under_the_byte_limit_parses():
    frame = chat(text="x", pad="a" * (MAX_FRAME_BYTES - 200))
    assert len(frame.encode()) <= MAX_FRAME_BYTES
    assert parse_event(frame).text == "x"


# --- what used to escape or be accepted -------------------------------------------------------------------------

def test_deep_nesting_is_refused_without_recursion_error():
    assert "nested deeper than 32" in refused("[" * 1000 + "]" * 1000)
    assert "nested deeper than 32" in refused('{"type":"chat","x":' + "[" * 1000 + "]" * 1000 + "}")
    assert "nested deeper than 32" in refused("{\"a\":" * 10_000 + "1" + "}" * 10_000)
    assert "nested deeper than 32" in refused("[" * 60_000)  # unbalanced, too


def test_deep_or_cyclic_dicts_are_refused():
    deep: dict = {"type": "product", "product_id": "d"}
    node = deep
    for _ in range(1000):
        node["x"] = {}
        node = node["x"]
    assert "nested deeper" in refused(deep)
    cyclic: dict = {"type": "product", "product_id": "d"}
    cyclic["self"] = cyclic
    assert "nested deeper" in refused(cyclic)


def test_huge_integer_literal_is_refused():
    message = refused('{"type":"product","product_id":"d","n":' + "9" * 5000 + "}")
    assert message == "integer of 5000 digits is too long (at most 30)"
    assert "too long" in refused('{"type":"product","product_id":"d","n":-' + "1" * 31 + "}")
    assert "too long" in refused({"type": "product", "product_id": "d", "n": 10**5000})


@pytest.mark.parametrize("ts", ["true", "false", '"NaN"', '"1732250000.1"', "NaN", "Infinity", "-Infinity", "1e999",
                                "[1]", "{}"])
def test_ts_must_be_a_finite_real_number(ts):
    message = refused('{"type":"product","product_id":"d","ts":' + ts + "}")
    assert "ts" in message or "finite" in message, message


def test_ts_messages_name_the_problem():
    assert refused('{"type":"product","product_id":"d","ts":true}') == \
        "invalid 'product' event: ts: Input should be a valid number"
    assert refused('{"type":"product","product_id":"d","ts":"NaN"}') == \
        "invalid 'product' event: ts: Input should be a valid number"
    assert refused('{"type":"product","product_id":"d","ts":NaN}') == "NaN is not allowed; numbers must be finite"
    assert refused('{"type":"product","product_id":"d","ts":Infinity}') == \
        "Infinity is not allowed; numbers must be finite"
    assert refused('{"type":"product","product_id":"d","ts":1e999}') == \
        "number 1e999 is out of range; numbers must be finite"
    # the same rules for an event handed over as a dict
    assert "ts" in refused({"type": "product", "product_id": "d", "ts": True})
    assert "finite" in refused({"type": "product", "product_id": "d", "ts": float("nan")})
    assert "finite" in refused({"type": "product", "product_id": "d", "ts": float("inf")})


@pytest.mark.parametrize("field,frame", [
    ("paid", chat(paid="NaN")), ("paid", chat(paid="Infinity")), ("paid", chat(paid="-inf")),
    ("value", '{"type":"gift","gift":"rose","value":"NaN"}'),
])
def test_amounts_must_be_finite(field, frame):
    message = refused(frame)
    assert field in message and "finite" in message, message


def test_byte_limit_counts_utf8_bytes_not_characters():
    frame = chat(text="x", pad="有" * 30_000)  # ~30k characters, ~90 KB of UTF-8
    assert len(frame) < MAX_FRAME_BYTES < len(frame.encode())
    message = refused(frame)
    assert message == f"frame of {len(frame.encode())} bytes is over the {MAX_FRAME_BYTES}-byte limit"


def test_binary_frames_are_refused():
    good = chat().encode()
    for frame in [good, b"\xff\xfe\x00binary", b"", bytearray(good)]:
        assert refused(frame) == "binary frames are not accepted; send JSON text"


def test_lone_surrogates_are_refused():
    assert "not valid Unicode" in refused('{"type":"chat","id":"e","user":{"id":"u","name":"\\ud800"},"text":"hi"}')
    assert "not valid Unicode" in refused('{"type":"product","product_id":"d","\\udfff":1}')
    assert refused('{"type":"product","product_id":"d","x":"\ud800"}') == "frame is not valid UTF-8 text"


def test_messages_that_echo_input_stay_short():
    assert len(refused(json.dumps({"type": "x" * 60_000}))) < 400
    assert len(refused('{"type":"product","product_id":"d","n":' + "1" * 400 + ".5e99999}")) < 200


def test_depth_scan_is_linear_on_unterminated_strings():
    """Thousands of escaped quotes after an unterminated string once meant a rescan from each: seconds per frame."""
    frame = chat(text="x", pad='"[{' * 20_000)[:MAX_FRAME_BYTES - 100]
    start = time.perf_counter()
    assert refused(frame).startswith("not JSON")
    assert time.perf_counter() - start < 1.0


def test_other_non_object_input():
    assert refused("[1,2]") == "an event must be a JSON object"
    assert refused("null") == "an event must be a JSON object"
    assert refused(42) == "an event must be a JSON object"  # type: ignore[arg-type]
    assert refused("not json").startswith("not JSON: ")
    assert refused('{"product_id":"d"}') == "missing 'type'"


# --- fuzz: whatever arrives, only EventError comes out ----------------------------------------------------------

SEEDS = [
    chat(), chat(paid=30), '{"type":"product","product_id":"dress"}', '{"type":"control","action":"pause"}',
    '{"type":"speech","state":"start"}', '{"type":"gift","user":{"id":"u"},"gift":"rose","value":5,"count":2}',
    '{"type":"voice","id":"v","user":{"id":"u"},"format":"wav","data":"UklGRg=="}', '{"type":"audio_start","rate":16000}', '{"type":"transcript","text":"来看6号链接"}', '{"type":"order","user":{"id":"u"},"product_id":"dress"}',
]
NASTY = ["[", "]", "{", "}", '"', "\\", ",", ":", "NaN", "Infinity", "-", "1e999", "9" * 50, "true", "null",
         "\\ud800", "\\u0000", "有", "\x00", "[" * 200, "{\"a\":" * 50, "0" * 5000, "e", ".", '"ts":', "\ud800"]
VALUES = [True, False, None, 0, -1, 1.5, 10**40, "NaN", "inf", "", "x" * 600, [], {}, [[[]]], {"id": 1}, "有" * 70]


def mutate(rng: random.Random, frame: str) -> str:
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(frame))
        op = rng.random()
        if op < 0.4:
            frame = frame[:pos] + rng.choice(NASTY) + frame[pos:]
        elif op < 0.7:
            frame = frame[:pos] + frame[pos + rng.randint(1, 8):]
        else:
            frame = frame[:pos] + chr(rng.randint(0, 0x10FFFF)) + frame[pos:]
    return frame


def test_fuzzed_frames_raise_only_event_error():
    rng = random.Random(20250101)
    outcomes = {"parsed": 0, "refused": 0}
    for i in range(600):
        kind = i % 3
        if kind == 0:
            frame: object = mutate(rng, rng.choice(SEEDS))
        elif kind == 1:
            event = json.loads(rng.choice(SEEDS))
            event[rng.choice(["ts", "paid", "value", "count", "user", "text", "id", "type", "x"])] = rng.choice(VALUES)
            frame = json.dumps(event, ensure_ascii=rng.random() < 0.5) if rng.random() < 0.7 else event
        else:
            frame = rng.choice(SEEDS).encode() if rng.random() < 0.5 else bytes(rng.getrandbits(8)
                                                                            for _ in range(rng.randint(0, 64)))
        try:
            parse_event(frame)  # type: ignore[arg-type]
            outcomes["parsed"] += 1
        except EventError as e:
            assert str(e) and len(str(e)) < 400
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 30 and outcomes["refused"] > 300  # the loop really exercised both sides
