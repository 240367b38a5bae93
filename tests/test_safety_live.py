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
