"""The live server over real websockets on 127.0.0.1: ingest, replies, errors, overlay, replay."""

from __future__ import annotations

import asyncio
import json
import time
import zlib

import pytest
import websockets

from cohost.live import live_server
from cohost.sources.replay import ingest_url, replay

pytestmark = pytest.mark.slow


def run(coro):
    return asyncio.run(coro)


async def recv_until(ws, pred, within_s: float = 10.0):
    """Read frames until one satisfies pred; return it."""
    async with asyncio.timeout(within_s):
        while True:
            msg = json.loads(await ws.recv())
            if pred(msg):
                return msg


def chat(i: int, text: str, user: str = "小王", **extra) -> str:
    return json.dumps({"type": "chat", "id": f"e{i}", "user": {"id": f"u{i}", "name": user}, "text": text,
                       "ts": time.time(), **extra}, ensure_ascii=False)


def test_chat_question_gets_a_reply_on_the_same_socket(engine):
    """A question the catalog answers comes back as a reply frame naming the message it answers."""
    async def main():
        async with live_server(engine, port=0) as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r1")) as ws:
                await ws.send(json.dumps({"type": "product", "product_id": "dress"}))
                await ws.send(chat(1, "有大码吗"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
        assert reply["room"] == "r1" and reply["in_reply_to"] == "e1"
        assert reply["text"].startswith("@小王 ") and reply["faq_id"] == "dress_plus"
        assert 0 <= reply["latency_ms"] < 6000
    run(main())


def test_bad_frames_get_errors_and_the_connection_stays_up(engine):
    """Malformed, unknown, oversized and binary-garbage frames each get an error; a good frame still works."""
    async def main():
        async with live_server(engine, port=0) as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r2"), max_size=2**20) as ws:
                errors = []
                for frame in ["not json", "[1,2]", '{"type":"nope"}', '{"type":"chat","id":"x"}',
                              json.dumps({"type": "chat", "id": "big", "user": {"id": "u"}, "text": "x" * 70_000}),
                              b"\xff\xfe\x00binary"]:
                    await ws.send(frame)
                    errors.append(await recv_until(ws, lambda m: m["type"] == "error"))
                await ws.send(chat(9, "3号多少钱"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
        assert [("JSON" in e["error"]) for e in errors][:1] == [True]
        assert "JSON object" in errors[1]["error"]
        assert "nope" in errors[2]["error"]
        assert "user" in errors[3]["error"] or "text" in errors[3]["error"]
        assert "limit" in errors[4]["error"]
        assert errors[5]["error"]
        assert reply["faq_id"] == "kids_shoes.price"
    run(main())


def test_compression_bomb_closes_only_that_connection(engine):
    """A frame that inflates far past the limit closes that socket; the server keeps serving others."""
    async def main():
        async with live_server(engine, port=0) as (_app, port):
            url = ingest_url("127.0.0.1", port, "r3")
            async with websockets.connect(url, compression="deflate", max_size=2**24) as bomb:
                await bomb.send(json.dumps({"type": "chat", "id": "b", "user": {"id": "u"}, "text": "A" * 5_000_000}))
                with pytest.raises(websockets.ConnectionClosed) as info:
                    await asyncio.wait_for(bomb.recv(), 10)
                assert info.value.rcvd is not None and info.value.rcvd.code == 1009
            async with websockets.connect(url) as ws:
                await ws.send(chat(1, "包邮吗"))
                assert (await recv_until(ws, lambda m: m["type"] == "reply"))["faq_id"] == "ship_free"
        assert len(zlib.compress(b"A" * 5_000_000)) < 10_000  # it really is a bomb
    run(main())


def test_stale_timestamp_is_never_answered(engine):
    """A message whose ts is already past the deadline gets no reply and is counted as dropped."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r4")) as ws:
                await ws.send(json.dumps({"type": "chat", "id": "old", "user": {"id": "u"}, "text": "包邮吗",
                                          "ts": time.time() - 60}))
                await ws.send(chat(2, "能开发票吗"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
            stats = app.state.hub.rooms["r4"].runner.room.stats
        assert reply["in_reply_to"] == "e2"
        assert stats["dropped_stale"] == 1
    run(main())


@pytest.mark.parametrize("stage", ["triage", "finish"])
def test_engine_failure_loses_no_message_and_the_room_keeps_answering(engine, monkeypatch, stage):
    """A model error, in triage or in the encoder stage, fails that batch (counted as engine_error), not
    the room's decider."""
    real = getattr(engine, stage)
    calls = {"n": 0}

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("encoder crashed")
        return real(*args)

    monkeypatch.setattr(engine, stage, flaky)
    engine.clear_cache()

    async def main():
        async with live_server(engine, port=0) as (app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r_err")) as ws:
                # Never seen before, so it needs the encoder stage.
                await ws.send(chat(1, "请问一下这款到底包不包邮呀"))
                runner = app.state.hub.rooms
                async with asyncio.timeout(5):
                    while "r_err" not in runner or runner["r_err"].runner.room.stats["engine_error"] < 1:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
                await ws.send(chat(2, "能开发票吗"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
            room = app.state.hub.rooms["r_err"].runner.room
        assert calls["n"] >= 1
        assert reply["in_reply_to"] == "e2"
        assert room.stats["engine_error"] == 1 and room.outcome_total() == room.stats["received"] == 2
    run(main())


def test_duplicates_from_many_viewers_get_one_aggregated_reply(engine):
    """Twelve viewers asking about XL within a moment: one reply lists several of them in in_reply_to."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r5")) as ws:
                await ws.send(json.dumps({"type": "product", "product_id": "dress"}))
                await ws.send(chat(100, "多少钱", user="先来的"))
                await recv_until(ws, lambda m: m["type"] == "reply")  # the limiter is now busy for 2 s
                for i in range(12):
                    await ws.send(chat(i, "有大码吗" if i % 2 else "有大码吗？？", user=f"观众{i}"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/overlay?room=r5") as ov:
                    state = json.loads(await ov.recv())
        assert isinstance(reply["in_reply_to"], list) and len(reply["in_reply_to"]) >= 2
        assert reply["text"].count("@") >= 2
        top = state["questions"][0]
        assert top["count"] == 12 and top["faq_id"] == "dress_plus"
    run(main())


def test_overlay_socket_receives_product_changes(engine):
    """An overlay page connected to a room sees the product on stage change without reconnecting."""
    async def main():
        async with live_server(engine, port=0) as (_app, port):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/overlay?room=r6") as ov, \
                    websockets.connect(ingest_url("127.0.0.1", port, "r6")) as ws:
                first = json.loads(await ov.recv())
                await ws.send(json.dumps({"type": "product", "product_id": "fryer"}))
                state = await recv_until(ov, lambda m: m.get("product") and m["product"]["id"] == "fryer")
                points = await recv_until(ov, lambda m: m["talking_points_state"] == "ready")
        assert first["product"] is None
        assert state["product"]["name"] == "家用空气炸锅"
        assert points["talking_points"]
    run(main())


def _with_server(engine, **kw):
    return engine.config.model_copy(update={"server": engine.config.server.model_copy(update=kw)})


async def _refused(url: str):
    with pytest.raises(websockets.ConnectionClosed) as refused:
        async with websockets.connect(url) as ws:
            await ws.recv()
    return refused.value.rcvd


def test_token_is_required_when_configured(engine, monkeypatch):
    """With COHOST_INGEST_TOKEN set, a connection without the token is refused and one with it works."""
    monkeypatch.setenv("COHOST_INGEST_TOKEN", "s3cret")

    async def main():
        async with live_server(engine, port=0) as (_app, port):
            refused = await _refused(ingest_url("127.0.0.1", port, "r7"))
            assert refused.code == 4401 and "token" in refused.reason
            async with websockets.connect(ingest_url("127.0.0.1", port, "r7", "s3cret")) as ws:
                await ws.send(chat(1, "包邮吗"))
                assert (await recv_until(ws, lambda m: m["type"] == "reply"))["faq_id"] == "ship_free"
    run(main())


def test_rooms_are_capped_and_a_vacant_room_makes_way(engine):
    """At server.max_rooms a new room takes the place of the room vacant longest; when every room has
    a socket, a new room is refused with 4503 and the rooms in use keep answering. A room's ingest
    sockets are capped too (4429)."""
    async def main():
        cfg = _with_server(engine, max_rooms=2, max_connections_per_room=1)
        async with live_server(engine, port=0, config=cfg) as (app, port):
            rooms = app.state.hub.rooms
            async with websockets.connect(ingest_url("127.0.0.1", port, "a")) as a:
                await a.send(chat(1, "包邮吗"))
                await recv_until(a, lambda m: m["type"] == "reply")
            async with asyncio.timeout(5):  # the server notices the close a moment after the client
                while not rooms["a"].vacant:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            async with websockets.connect(ingest_url("127.0.0.1", port, "b")) as b:
                await b.send(chat(2, "包邮吗"))
                await recv_until(b, lambda m: m["type"] == "reply")
                async with websockets.connect(ingest_url("127.0.0.1", port, "c")) as c:
                    assert sorted(rooms) == ["b", "c"]  # "a" had no socket left: it made way
                    closed = await _refused(ingest_url("127.0.0.1", port, "d"))
                    assert closed.code == 4503 and "max_rooms" in closed.reason
                    assert sorted(rooms) == ["b", "c"]
                    crowded = await _refused(ingest_url("127.0.0.1", port, "b"))
                    assert crowded.code == 4429
                    for n, ws in ((3, b), (4, c)):
                        await ws.send(chat(n, "3号多少钱"))
                        reply = await recv_until(ws, lambda m: m["type"] == "reply")
                        assert reply["in_reply_to"] == f"e{n}"
    run(main())


def test_replay_plays_a_recording_into_a_room(engine, tmp_path):
    """`cohost replay` keeps the recording's order and collects replies from the server."""
    rec = [{"type": "product", "product_id": "thermos", "ts": 100.0},
           {"type": "chat", "id": "a", "user": {"id": "u1", "name": "甲"}, "text": "多少钱", "ts": 100.2},
           {"type": "chat", "id": "b", "user": {"id": "u2", "name": "乙"}, "text": "主播好美", "ts": 100.4},
           {"type": "gift", "user": {"id": "u2", "name": "乙"}, "gift": "小心心", "ts": 100.5}]

    async def main():
        async with live_server(engine, port=0) as (app, port):
            result = await replay(ingest_url("127.0.0.1", port, "r8"), rec, speed=10.0, linger_s=1.5)
            stats = app.state.hub.rooms["r8"].runner.room.stats
        assert result.sent == 4 and not result.errors
        assert [r["in_reply_to"] for r in result.replies] == ["a"]
        assert "69" in result.replies[0]["text"]
        assert stats["not_a_question"] == 1 and stats["event_gift"] == 1
    run(main())


def _with_llm(engine, base_url: str, **kw):
    llm = engine.config.llm.model_copy(update={"enabled": True, "base_url": base_url, **kw})
    return engine.config.model_copy(update={"llm": llm})


def test_product_change_cancels_llm_generation_and_closes_its_stream(engine):
    """Talking points streaming from the LLM are withdrawn when the product changes; the HTTP stream closes."""
    from cohost.testing.fake_openai import FakeOpenAI

    async def main():
        async with FakeOpenAI(mode="slow", first_delay=0.05, token_delay=0.2, text="1. 面料柔软\n2. 版型好\n") as fake:
            cfg = _with_llm(engine, fake.base_url, timeout_s=30.0, first_token_timeout_s=10.0)
            async with live_server(engine, port=0, config=cfg) as (app, port):
                async with websockets.connect(ingest_url("127.0.0.1", port, "llm1")) as ws:
                    await ws.send(json.dumps({"type": "product", "product_id": "dress"}))
                    assert await fake.await_requests(1)
                    await ws.send(json.dumps({"type": "product", "product_id": "fryer"}))
                    assert await fake.await_disconnects(1)
                    room = app.state.hub.rooms["llm1"].runner.room
                    assert room.stats["talking_points_withdrawn"] >= 1
                    assert room.cancel_latencies_ms and max(room.cancel_latencies_ms) < 1000
                    # the viewer-question block of the prompt carries no instructions from us
                    assert "法式碎花连衣裙" in json.dumps(fake.requests[0].messages, ensure_ascii=False)
    run(main())


def test_failing_llm_falls_back_to_catalog_talking_points(engine):
    """With the LLM answering 500, the overlay still gets talking points built from the catalog."""
    from cohost.testing.fake_openai import FakeOpenAI

    async def main():
        async with FakeOpenAI(mode="fail") as fake:
            async with live_server(engine, port=0, config=_with_llm(engine, fake.base_url)) as (_app, port):
                async with websockets.connect(f"ws://127.0.0.1:{port}/ws/overlay?room=llm2") as ov, \
                        websockets.connect(ingest_url("127.0.0.1", port, "llm2")) as ws:
                    await ws.send(json.dumps({"type": "product", "product_id": "fryer"}))
                    state = await recv_until(ov, lambda m: m["talking_points_state"] == "ready")
            assert fake.requests
        assert state["talking_points"]
        assert all("最" not in p for p in state["talking_points"])
    run(main())
