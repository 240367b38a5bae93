"""The safety settings over the real server: what an owner sets on /api reaches live rooms at once, and
every reply lands in the audit log."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from test_live_room import chat, eventually, recv_until

from cohost.live import live_server
from cohost.sources.replay import ingest_url

pytestmark = pytest.mark.slow
TOKEN = "t0ken-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_blocklist_limits_and_words_reach_the_room_and_replies_are_audited(engine):
    async def main():
        async with live_server(engine, port=0, admin_token=TOKEN) as (app, port):
            hub = app.state.hub
            base = f"http://127.0.0.1:{port}/api/shops/default"
            async with httpx.AsyncClient(headers=AUTH, timeout=10) as api, \
                    websockets.connect(ingest_url("127.0.0.1", port, "r1")) as ws:
                await ws.send(chat(1, "包邮吗", uid="u1"))
                first = await recv_until(ws, lambda m: m["type"] == "reply")
                room = hub.rooms["r1"].runner.room

                r = await api.post(f"{base}/blocklist", json={"kind": "user_id", "value": "troll", "note": "刷广告"})
                assert r.status_code == 200
                await eventually(lambda: "troll" in room.blocked_ids, what="the blocklist to reach the room")
                await ws.send(chat(2, "多少钱", uid="troll"))
                await eventually(lambda: room.stats["blocked_viewer"] == 1, what="the blocked viewer to be ignored")

                r = await api.put(f"{base}/limits", json={"viewer_max_per_min": 2})
                assert r.status_code == 200 and r.json()["viewer_max_per_min"] == 2
                await eventually(lambda: room.viewer_max_per_min == 2, what="the limit to reach the room")
                bad = await api.put(f"{base}/limits", json={"viewer_max_per_min": 0})
                assert bad.status_code == 422 and "每分钟" in bad.json()["error"]
                for i in range(3):
                    await ws.send(chat(10 + i, f"第{i}句", uid="fast"))
                await eventually(lambda: room.stats["dropped_flood"] == 1, what="the third message to be dropped")

                r = await api.put(f"{base}/words", json={"banned": ["中通"], "allowed": []})
                assert r.status_code == 200
                await eventually(lambda: "中通" in room.gate.banned_extra, what="the words to reach the room")

                await hub.audit.flush()
                rows = (await api.get(f"{base}/audit", params={"outcome": "sent"})).json()["rows"]
                assert [row["text"] for row in rows] == [first["text"]]
                assert rows[0]["room"] == "r1" and rows[0]["entry_id"] == first["faq_id"]
                assert "包邮吗" in json.dumps(rows[0]["viewer_texts"], ensure_ascii=False)

    asyncio.run(main())


def test_an_upload_with_a_banned_word_is_refused_at_preview_with_the_row(engine):
    async def main():
        async with live_server(engine, port=0, admin_token=TOKEN) as (_app, port):
            base = f"http://127.0.0.1:{port}/api/shops/default"
            csv = "product_id,id,question,answer,variants\ndress,dress_best,质量怎么样,全网第一的好面料,\n"
            async with httpx.AsyncClient(headers=AUTH, timeout=30) as api:
                for dry in ("true", "false"):
                    r = await api.post(f"{base}/catalog/upload", params={"filename": "faqs.csv", "dry_run": dry},
                                       content=csv.encode())
                    assert r.status_code == 422, r.text
                    text = r.text
                    assert "dress_best" in text and "第一" in text
                await api.put(f"{base}/words", json={"banned": [], "allowed": ["全网第一的好面料"]})
                r = await api.post(f"{base}/catalog/upload", params={"filename": "faqs.csv"}, content=csv.encode())
                assert r.status_code == 200, r.text

    asyncio.run(main())


def test_review_over_the_api_and_the_overlay_socket_records_who_and_says_when_too_late(engine):
    """/api/rooms lists held replies for the admin token only; an overlay's `by` is recorded under overlay: (a page
    cannot pass for an /admin moderator); deciding a reply that is gone is a 409 on the API and a 'late' entry in
    the overlay's log, not silence."""
    from test_live_room import overlay_url

    dialog = engine.config.dialog.model_copy(update={"review": "hold", "min_interval_s": 0})
    cfg = engine.config.model_copy(update={"dialog": dialog})

    async def main():
        async with live_server(engine, port=0, config=cfg, admin_token=TOKEN) as (app, port):
            hub = app.state.hub
            base = f"http://127.0.0.1:{port}/api"
            async with httpx.AsyncClient(headers=AUTH, timeout=10) as api, \
                    websockets.connect(ingest_url("127.0.0.1", port, "r1")) as ws, \
                    websockets.connect(overlay_url(port, "r1")) as overlay:
                async with httpx.AsyncClient(timeout=10) as anonymous:
                    assert (await anonymous.get(f"{base}/rooms")).status_code == 401
                    assert (await anonymous.post(f"{base}/rooms/r1/review", json={"action": "auto"})).status_code == 401
                await ws.send(chat(1, "包邮吗", uid="u1"))
                await ws.send(chat(2, "有大码吗", uid="u2"))

                async def held() -> list[dict]:
                    return [x for r in (await api.get(f"{base}/rooms")).json() if r["room"] == "r1" for x in r["held"]]
                for _ in range(100):
                    if len(items := await held()) == 2:
                        break
                    await asyncio.sleep(0.1)
                assert len(items) == 2, items
                first, second = items

                await overlay.send(json.dumps({"type": "control", "action": "approve", "id": first["id"],
                                               "by": "admin:冒充的"}))
                reply = await recv_until(ws, lambda m: m["type"] == "reply")
                assert reply["text"] == first["text"]

                gone = await api.post(f"{base}/rooms/r1/review", json={"action": "approve", "id": first["id"]})
                assert gone.status_code == 409 and "已过期或已被处理" in gone.json()["detail"]
                r = await api.post(f"{base}/rooms/r1/review", json={"action": "reject", "id": second["id"], "by": "小李"})
                assert r.status_code == 202

                await overlay.send(json.dumps({"type": "control", "action": "approve", "id": second["id"], "by": "小美"}))
                state = await recv_until(overlay, lambda m: m.get("type") == "state"
                                         and any(x["action"] == "late" for x in m["review"]["log"]))
                late = next(x for x in state["review"]["log"] if x["action"] == "late")
                assert late["id"] == second["id"] and late["by"] == "overlay:小美"

                await hub.audit.flush()
                rows = (await api.get(f"{base}/shops/default/audit", params={"room": "r1"})).json()["rows"]
                actors = {(row["outcome"], row["actor"]) for row in rows if row["actor"]}
                assert ("approved", "overlay:admin:冒充的") in actors and ("rejected", "admin:小李") in actors
                assert not any(row["outcome"] == "sent" and row["text"] == second["text"] for row in rows)

    asyncio.run(main())
