"""The live room over real sockets: one reply owner, writers that close slow sockets, caps, builds, sinks.

Every test runs the real server on 127.0.0.1 with real websocket clients; the platform adapter in the
sink tests is an in-process object behind the same ReplySink interface the Bilibili and Douyin adapters use.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets

from cohost.events import ChatEvent, ProductEvent, User
from cohost.live import live_server
from cohost.sinks.base import SENT, OutgoingReply, SendResult
from cohost.sources.replay import ingest_url

pytestmark = pytest.mark.slow


def chat(i: int, text: str, user: str = "小王", uid: str | None = None) -> str:
    return json.dumps({"type": "chat", "id": f"e{i}", "user": {"id": uid or f"u{i}", "name": user}, "text": text,
                       "ts": time.time()}, ensure_ascii=False)


def overlay_url(port: int, room: str, token: str | None = None) -> str:
    return f"ws://127.0.0.1:{port}/ws/overlay?room={room}" + (f"&token={token}" if token else "")


async def recv_until(ws, pred, within_s: float = 10.0):
    async with asyncio.timeout(within_s):
        while True:
            msg = json.loads(await ws.recv())
            if pred(msg):
                return msg


async def eventually(pred, within_s: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def refused(url: str):
    with pytest.raises(websockets.ConnectionClosed) as e:
        async with websockets.connect(url) as ws:
            await ws.recv()
            await ws.recv()
    return e.value.rcvd


def with_server(engine, **kw):
    return engine.config.model_copy(update={"server": engine.config.server.model_copy(update=kw)})


def get(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


# -- one reply owner -----------------------------------------------------------------------------------


def test_replies_go_to_one_owner_and_the_next_takes_over(engine):
    """Two relays in one room: only the first posts replies (no double posts); when it leaves, the second does."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            url = ingest_url("127.0.0.1", port, "own")
            async with websockets.connect(url) as first, websockets.connect(url) as second:
                await second.send(chat(1, "包邮吗"))
                reply = await recv_until(first, lambda m: m["type"] == "reply")
                assert reply["in_reply_to"] == "e1"
                with pytest.raises(TimeoutError):
                    await recv_until(second, lambda m: m["type"] == "reply", within_s=1.0)
                await first.close()
                await eventually(lambda: len(app.state.hub.rooms["own"].ingest) == 1, what="the owner to leave")
                await second.send(chat(2, "能开发票吗"))
                reply = await recv_until(second, lambda m: m["type"] == "reply")
                assert reply["in_reply_to"] == "e2"
            stats = app.state.hub.stats("own")
        assert stats["stats"]["answered"] == 2 and stats["stats"].get("send_failed", 0) == 0
    asyncio.run(main())


class FakePlatform:
    """A platform adapter's sink: refuses as told, records what it posted."""

    def __init__(self, results: list[SendResult]):
        self.name = "fake-platform"
        self.results = list(results)
        self.posted: list[OutgoingReply] = []
        self.calls = 0

    async def send(self, reply: OutgoingReply) -> SendResult:
        self.calls += 1
        result = self.results.pop(0) if self.results else SENT
        if result.ok:
            self.posted.append(reply)
        return result


def test_a_platform_sink_reports_failures_and_too_fast(engine):
    """Through the sink interface: "too fast" slows the room and the reply goes out on the retry; a
    refusal is counted as send_failed with its reason, never as answered."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            hub = app.state.hub
            sink = FakePlatform([SendResult(False, "10031 频率过快", retry_after_s=0.3, slow_down=True)])
            entry, source = await hub.attach("plat", None, "fake-platform", sink)
            entry.runner.submit(ChatEvent(type="chat", id="p1", user=User(id="a", name="Tom Lee"), text="包邮吗",
                                          ts=time.time()))
            await eventually(lambda: sink.posted, what="the retried reply")
            assert sink.calls == 2 and sink.posted[0].text.startswith("@Tom Lee ")
            slower = hub.stats("plat")["min_interval_s"]
            assert slower > engine.config.dialog.min_interval_s
            sink.results = [SendResult(False, "账号被禁言")]
            entry.runner.submit(ChatEvent(type="chat", id="p2", user=User(id="b", name="小王"), text="能开发票吗",
                                          ts=time.time()))
            await eventually(lambda: entry.runner.room.stats["send_failed"] == 1, what="the failure")
            stats = hub.stats("plat")
            entry.leave(source)
            _, health = await asyncio.to_thread(get, port, "/healthz")
        assert stats["stats"]["answered"] == 1 and stats["send_failures"] == {"账号被禁言": 1}
        assert stats["reply_owner"] == "fake-platform"
        assert "plat" in health["rooms"]
    asyncio.run(main())


def test_a_reply_with_no_owner_waits_for_one_within_its_deadline(engine):
    """Nobody can post (the relay dropped): the reply is tried again, and goes out when a relay is back."""
    async def main():
        async with live_server(engine, port=0) as (app, _port):
            hub = app.state.hub
            listener, _ = await hub.attach("gap", None, "listen-only", None)
            listener.runner.submit(ChatEvent(type="chat", id="g1", user=User(id="a", name="甲"), text="包邮吗",
                                             ts=time.time()))
            await eventually(lambda: listener.runner.room.stats["send_retried"] >= 1, what="a retry")
            sink = FakePlatform([])
            await hub.attach("gap", None, "late-relay", sink)
            await eventually(lambda: sink.posted, what="the reply on the late relay")
        assert sink.posted[0].in_reply_to == ("g1",)
    asyncio.run(main())


# -- writers: no socket goes silent --------------------------------------------------------------------


def big_catalog(catalog):
    """The sample shop with ~600 KB of selling points on the dress: every overlay frame is large."""
    products = [p.model_copy(update={"selling_points": tuple(f"卖点{i}" + "好" * 1990 for i in range(100))})
                if p.id == "dress" else p for p in catalog.products]
    return catalog.model_copy(update={"products": tuple(products)})


def test_a_stalled_overlay_is_closed_and_reconnects_to_the_current_state(engine, catalog):
    """An overlay that stops reading is closed (1013, or dropped if even the close cannot be written)
    instead of staying connected with no frames; the room keeps answering meanwhile; the page
    reconnects and gets the state of now."""
    big = engine.rebuilt(big_catalog(catalog))

    async def main():
        async with live_server(big, port=0) as (app, port):
            hub = app.state.hub
            async with websockets.connect(ingest_url("127.0.0.1", port, "obs")) as ingest:
                await ingest.send(json.dumps({"type": "product", "product_id": "dress"}))
                stalled = await websockets.connect(overlay_url(port, "obs"), max_queue=1, max_size=None, compression=None)
                await eventually(lambda: len(hub.rooms["obs"].overlays) == 1, what="the overlay to join")
                for i in range(60):  # every product change is a new overlay frame of ~600 KB
                    if not hub.rooms["obs"].overlays:
                        break
                    await ingest.send(json.dumps({"type": "product", "product_id": "dress" if i % 2 else "fryer"}))
                    await asyncio.sleep(0.12)
                await eventually(lambda: not hub.rooms["obs"].overlays, within_s=15, what="the stalled overlay to go")
                assert hub.rooms["obs"].closed_slow == 1
                await ingest.send(chat(1, "包邮吗"))  # the room was never held up
                assert (await recv_until(ingest, lambda m: m["type"] == "reply"))["faq_id"] == "ship_free"
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(20):
                        while True:
                            await stalled.recv()
                code = closed.value.rcvd.code if closed.value.rcvd else 1006
                assert code in (1013, 1006), code
                await ingest.send(json.dumps({"type": "product", "product_id": "fryer"}))
                await asyncio.sleep(0.3)
                async with websockets.connect(overlay_url(port, "obs"), max_size=None) as again:
                    state = json.loads(await again.recv())
                assert state["product"]["id"] == "fryer"
    asyncio.run(main())


def test_an_ingest_client_that_reads_nothing_is_closed_not_buffered(engine):
    """A relay flooding bad frames and reading none of the errors fills its own queue and is closed with
    1013; other rooms answer all along."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            hub = app.state.hub
            async with websockets.connect(ingest_url("127.0.0.1", port, "good")) as good:
                flood = await websockets.connect(ingest_url("127.0.0.1", port, "flood"), max_queue=1, compression=None)
                bad = "x" * 30_000
                with pytest.raises(websockets.ConnectionClosed):
                    for _ in range(40_000):
                        await flood.send(bad)
                        if hub.rooms.get("flood") is not None and hub.rooms["flood"].closed_slow:
                            break
                    else:
                        raise AssertionError("never closed")
                    for _ in range(2000):  # the close reaches us once we read again
                        await flood.recv()
                await good.send(chat(1, "包邮吗"))
                assert (await recv_until(good, lambda m: m["type"] == "reply"))["faq_id"] == "ship_free"
                assert hub.stats("flood")["closed_slow"] == 1
    asyncio.run(main())


# -- caps ----------------------------------------------------------------------------------------------


def test_overlay_only_rooms_cannot_squat_the_server(engine):
    """33 overlay-only rooms (no overlay token) leave every ingest place free; they have a cap of their own."""
    async def main():
        cfg = with_server(engine, max_rooms=2, max_overlay_only_rooms=33)
        async with live_server(engine, port=0, config=cfg) as (app, port):
            pages = [await websockets.connect(overlay_url(port, f"squat{i}")) for i in range(33)]
            for p in pages:
                assert json.loads(await p.recv())["type"] == "state"
            closed = await refused(overlay_url(port, "squat33"))
            assert closed.code == 4503 and "max_overlay_only_rooms" in closed.reason
            for n, room in enumerate(("shop1", "squat0")):  # a new room, and one an overlay was waiting on
                async with websockets.connect(ingest_url("127.0.0.1", port, room)) as ws:
                    await ws.send(chat(n, "包邮吗"))
                    assert (await recv_until(ws, lambda m: m["type"] == "reply"))["faq_id"] == "ship_free"
            for p in pages:
                await p.close()
    asyncio.run(main())


def test_overlays_are_capped_per_room_and_count_when_the_overlay_token_is_set(engine, monkeypatch):
    """Per room at most max_overlays_per_room pages (4429); with the overlay token set an overlay room
    holds a max_rooms place like any other."""
    monkeypatch.setenv("COHOST_OVERLAY_TOKEN", "ov")

    async def main():
        cfg = with_server(engine, max_rooms=1, max_overlays_per_room=2)
        async with live_server(engine, port=0, config=cfg) as (_app, port):
            a = await websockets.connect(overlay_url(port, "one", "ov"))
            b = await websockets.connect(overlay_url(port, "one", "ov"))
            crowded = await refused(overlay_url(port, "one", "ov"))
            assert crowded.code == 4429 and "overlays" in crowded.reason
            full = await refused(ingest_url("127.0.0.1", port, "two"))
            assert full.code == 4503
            await a.close()
            await b.close()
    asyncio.run(main())


def test_room_names_and_stats_need_a_token_when_tokens_are_set(engine, monkeypatch):
    """With the ingest token set, /healthz leaves out the room list and /rooms/R/stats refuses without it."""
    monkeypatch.setenv("COHOST_INGEST_TOKEN", "in")

    async def main():
        async with live_server(engine, port=0, admin_token="adm") as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "secret-room", "in")) as ws:
                await ws.send(chat(1, "包邮吗"))
                await recv_until(ws, lambda m: m["type"] == "reply")
                status, health = await asyncio.to_thread(get, port, "/healthz")
                assert status == 200 and health["ok"] and "rooms" not in health
                assert (await asyncio.to_thread(get, port, "/rooms/secret-room/stats"))[0] == 401
                assert (await asyncio.to_thread(get, port, "/rooms/secret-room/stats", "wrong"))[0] == 401
                for token in ("in", "adm"):
                    status, body = await asyncio.to_thread(get, port, "/rooms/secret-room/stats", token)
                    assert status == 200 and body["stats"]["answered"] == 1
                _, health = await asyncio.to_thread(get, port, "/healthz", "in")
                assert health["rooms"] == ["secret-room"]
    asyncio.run(main())


# -- builds --------------------------------------------------------------------------------------------


def test_a_shop_builds_once_and_other_rooms_do_not_wait_for_it(engine, catalog, monkeypatch, tmp_path):
    """Ten joins for a new shop build its engine once; meanwhile a room of the default shop joins and
    answers at once instead of queueing behind the build."""
    from cohost.knowledge.store import CatalogStore

    real = type(engine).rebuilt

    def slow_rebuilt(self, cat, *a, **kw):
        if cat.shop.name == "二号店":
            time.sleep(2.0)
        return real(self, cat, *a, **kw)

    async def main():
        store = CatalogStore(tmp_path / "catalog.sqlite3")
        other = catalog.model_copy(update={"shop": catalog.shop.model_copy(update={"name": "二号店"})})
        info, _ = store.commit("second", lambda _old: other, author="test")
        store.mark("second", info.version, "ready")
        monkeypatch.setattr(type(engine), "rebuilt", slow_rebuilt)
        async with live_server(engine, port=0, store=store) as (app, port):
            catalogs = app.state.catalogs
            builds = catalogs.engine_builds
            url = ingest_url("127.0.0.1", port, "s2") + "&shop=second"

            async def join():
                return await websockets.connect(url)

            joins = [asyncio.create_task(join()) for _ in range(10)]
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            async with websockets.connect(ingest_url("127.0.0.1", port, "main")) as ws:
                await ws.send(chat(1, "包邮吗"))
                await recv_until(ws, lambda m: m["type"] == "reply")
            waited = time.monotonic() - t0
            sockets = await asyncio.gather(*joins)  # accepted at once; joined once the shop is built
            rooms = app.state.hub.rooms
            await eventually(lambda: "s2" in rooms and len(rooms["s2"].ingest) == 10, within_s=30, what="joins")
            assert catalogs.engine_builds - builds == 1
            for s in sockets:
                await s.close()
        assert waited < 1.5, waited  # the 2 s build of the other shop did not hold this room up
    asyncio.run(main())


# -- unknown product, frames -----------------------------------------------------------------------------


def test_an_unknown_product_on_stage_keeps_shop_answers_and_says_so(engine):
    """After a product id the catalog does not hold, 包邮吗 / 能开发票吗 are still answered and the overlay
    shows the product as not in the catalog."""
    async def main():
        async with live_server(engine, port=0) as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "sku")) as ws, \
                    websockets.connect(overlay_url(port, "sku")) as page:
                await ws.send(json.dumps({"type": "product", "product_id": "sku_123456"}))
                state = await recv_until(page, lambda m: m.get("product") is not None)
                assert state["product"] == {"id": "sku_123456", "unknown": True}
                await ws.send(chat(1, "包邮吗"))
                first = await recv_until(ws, lambda m: m["type"] == "reply")
                await ws.send(chat(2, "能开发票吗"))
                second = await recv_until(ws, lambda m: m["type"] == "reply")
        assert (first["faq_id"], second["faq_id"]) == ("ship_free", "invoice")
    asyncio.run(main())


def test_hostile_frames_get_an_error_and_the_connection_stays_up(engine):
    """Nesting 1,000 deep, a 5,000-digit integer, ts true / NaN, a binary frame, 30k CJK characters
    (over 64 KiB in bytes): each gets an error frame; then a question is still answered."""
    frames = ["[" * 1000 + "]" * 1000, '{"type":"chat","id":"a","user":{"id":"u"},"text":"x","paid":' + "9" * 5000 + "}",
              '{"type":"product","product_id":"dress","ts":true}', '{"type":"product","product_id":"dress","ts":NaN}',
              b'{"type":"chat","id":"b","user":{"id":"u"},"text":"hi"}',
              json.dumps({"type": "chat", "id": "c", "user": {"id": "u"}, "text": "好" * 30_000}, ensure_ascii=False)]

    async def main():
        async with live_server(engine, port=0) as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "hostile"), max_size=2**20) as ws:
                errors = []
                for frame in frames:
                    await ws.send(frame)
                    errors.append((await recv_until(ws, lambda m: m["type"] == "error"))["error"])
                await ws.send(chat(9, "包邮吗"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
        assert "nested" in errors[0] and "digits" in errors[1] and "ts" in errors[2] and "NaN" in errors[3]
        assert "binary" in errors[4] and "byte" in errors[5]
        assert reply["faq_id"] == "ship_free"
    asyncio.run(main())


def test_product_event_through_an_adapter_reaches_the_overlay(engine):
    """An in-process source feeds the same event model as the socket."""
    async def main():
        async with live_server(engine, port=0) as (app, port):
            entry, _ = await app.state.hub.attach("adapter", None, "fake", FakePlatform([]))
            async with websockets.connect(overlay_url(port, "adapter")) as page:
                entry.runner.submit(ProductEvent(type="product", product_id="fryer"))
                state = await recv_until(page, lambda m: (m.get("product") or {}).get("id") == "fryer")
        assert state["product"]["unknown"] is False and state["speaking"] is False
    asyncio.run(main())


def test_with_only_the_overlay_token_set_stats_need_the_admin_token(engine, monkeypatch):
    """The overlay token is read-only and in OBS's scene file: it does not open stats, nor does any guess."""
    monkeypatch.setenv("COHOST_OVERLAY_TOKEN", "ov")

    async def main():
        async with live_server(engine, port=0, admin_token="adm") as (_app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "r")) as ws:
                await ws.send(chat(1, "包邮吗"))
                await recv_until(ws, lambda m: m["type"] == "reply")
                for token in (None, "ov", "guess"):
                    assert (await asyncio.to_thread(get, port, "/rooms/r/stats", token))[0] == 401
                assert (await asyncio.to_thread(get, port, "/rooms/r/stats", "adm"))[0] == 200
    asyncio.run(main())


def test_a_platform_source_runs_into_a_room_and_its_health_reaches_the_overlay(engine):
    """hub.run_source: the adapter's events reach the room, its replies its sink, its connection state
    the overlay ("B站连接中断，正在重连（第3次）") and the room's stats."""
    from cohost.sources.base import SourceHealth

    class Adapter:
        name = "bilibili:1"

        def __init__(self) -> None:
            self.health = SourceHealth(self.name)
            self.go_on = asyncio.Event()

        async def run(self, submit) -> None:
            self.health.set("live", "B站已连接")
            submit(ChatEvent(type="chat", id="b1", user=User(id="1", name="观众"), text="包邮吗", ts=time.time()))
            await self.go_on.wait()
            self.health.set("reconnecting", "B站连接中断，正在重连（第3次）", attempt=3)
            await asyncio.sleep(3600)

    async def main():
        async with live_server(engine, port=0) as (app, port):
            hub, adapter, sink = app.state.hub, Adapter(), FakePlatform([])
            task = asyncio.create_task(hub.run_source("bili", None, adapter, sink))
            await eventually(lambda: sink.posted, what="the reply")
            async with websockets.connect(overlay_url(port, "bili")) as page:
                first = json.loads(await page.recv())
                adapter.go_on.set()
                later = await recv_until(page, lambda m: m["sources"] and m["sources"][0]["state"] == "reconnecting")
            stats = hub.stats("bili")
            _, health = await asyncio.to_thread(get, port, "/healthz")
            assert health["sources"]["bili"][0]["state"] == "reconnecting"
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await eventually(lambda: not hub.rooms["bili"].ingest, what="the adapter to leave")
        assert first["sources"][0]["message"] == "B站已连接"
        assert later["sources"][0]["message"] == "B站连接中断，正在重连（第3次）"
        assert stats["source_health"][0]["attempt"] == 3 and stats["reply_owner"] == "bilibili:1"
    asyncio.run(main())
