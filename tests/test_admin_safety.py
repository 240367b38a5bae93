"""The /admin API for the audit log, the blocklist and the shop's advertising-law words, against the real server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cohost.knowledge.audit import CSV_COLUMNS, AuditLog, AuditRow
from cohost.knowledge.moderation import Moderation
from cohost.knowledge.store import CatalogStore
from cohost.live import live_server
from cohost.server.admin import install_error_handlers, make_router

pytestmark = pytest.mark.slow

TOKEN = "safety-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/shops/default"
T0 = 1_700_000_000.0
CJK = re.compile(r"[\u4e00-\u9fff]")


@contextlib.asynccontextmanager
async def serve(engine, tmp_path: Path, *, auth: bool = True) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    store = CatalogStore(tmp_path / "catalog.sqlite3")
    async with live_server(engine, port=0, store=store, admin_token=TOKEN) as (app, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=AUTH if auth else None,
                                     timeout=60) as client:
            yield client, app


def run(coro) -> Any:
    return asyncio.run(coro)


def rows(n: int, **kw: Any) -> list[AuditRow]:
    return [AuditRow(**{"ts": T0 + i, "shop": "default", "room": "live", "outcome": "sent", "text": f"回复 {i}",
                        **kw}) for i in range(n)]


def refused(r: httpx.Response, status: int, field: str | None) -> str:
    """The error body: a Chinese message and the field it is about."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["field"] == field, body
    assert CJK.search(body["error"]), body
    return body["error"]


ROUTES = [("GET", f"{API}/audit"), ("GET", f"{API}/audit.csv"), ("GET", f"{API}/blocklist"),
          ("POST", f"{API}/blocklist"), ("DELETE", f"{API}/blocklist?kind=name&value=x"), ("GET", f"{API}/words"),
          ("PUT", f"{API}/words")]


def test_the_store_file_holds_the_audit_log_and_every_route_needs_the_token(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path, auth=False) as (client, app):
            assert isinstance(app.state.audit, AuditLog) and isinstance(app.state.moderation, Moderation)
            assert app.state.audit.path == app.state.moderation.path == app.state.catalogs.store.path
            app.state.moderation.block("default", "name", "已屏蔽")
            paths = (await client.get("/openapi.json")).json()["paths"]
            for method, url in ROUTES:
                assert method.lower() in paths[url.split("?")[0].replace(API, "/api/shops/{shop}")], url
                for how in ({}, {"headers": {"Authorization": "Bearer wrong"}}, {"params": {"token": "wrong"}}):
                    r = await client.request(method, url, json={"kind": "name", "value": "x", "banned": [],
                                                                "allowed": []}, **how)
                    assert r.status_code == 401, (method, url, how, r.text)
            assert [b["value"] for b in app.state.moderation.blocklist("default")] == ["已屏蔽"]
            assert app.state.moderation.words("default") == {"banned": [], "allowed": []}
            for method, url in ROUTES[:3] + ROUTES[5:6]:
                assert (await client.request(method, url, headers=AUTH)).status_code == 200, url
    run(main())


def test_audit_search_filters_and_pages(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, app):
            log: AuditLog = app.state.audit
            await asyncio.to_thread(log.record, rows(30) + rows(3, outcome="blocked", rule="ad_law:最", room="r2",
                                                                   text="全网最低价") + rows(2, shop="other"))
            r = await client.get(f"{API}/audit")
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["total"] == 33 and len(body["rows"]) == 33
            assert [x["ts"] for x in body["rows"]] == sorted((x["ts"] for x in body["rows"]), reverse=True)
            r = await client.get(f"{API}/audit", params={"limit": 10, "offset": 10})
            assert r.json()["total"] == 33 and len(r.json()["rows"]) == 10
            assert (await client.get(f"{API}/audit", params={"limit": 500})).status_code == 200
            r = await client.get(f"{API}/audit", params={"outcome": "blocked", "q": "最低", "room": "r2"})
            assert r.json()["total"] == 3 and {x["rule"] for x in r.json()["rows"]} == {"ad_law:最"}
            r = await client.get(f"{API}/audit", params={"since": T0 + 28, "until": T0 + 30})
            assert [x["text"] for x in r.json()["rows"]] == ["回复 29", "回复 28"]
            r = await client.get(f"{API}/audit", params={"q": "", "outcome": "", "since": ""})  # blank: no filter
            assert r.json()["total"] == 33
            r = await client.get("/api/shops/other/audit")
            assert r.json()["total"] == 2
            r = await client.get("/api/shops/nobody/audit")
            assert r.json() == {"rows": [], "total": 0}
    run(main())


@pytest.mark.parametrize(("params", "field", "says"), [
    ({"limit": 0}, "limit", "1 到 500"),
    ({"limit": 501}, "limit", "1 到 500"),
    ({"limit": "十"}, "limit", "整数"),
    ({"offset": -1}, "offset", "整数"),
    ({"outcome": "lost"}, "outcome", "只能是"),
    ({"since": "yesterday"}, "since", "Unix 时间"),
    ({"until": "inf"}, "until", "Unix 时间"),
    ({"since": T0 + 10, "until": T0}, "since", "不能晚于"),
    ({"q": "长" * 201}, "q", "太长"),
])
def test_audit_refuses_bad_filters_in_chinese(engine, tmp_path, params, field, says):
    async def main():
        async with serve(engine, tmp_path) as (client, _app):
            paging = field in ("limit", "offset")  # the CSV has every row: it takes no paging
            for path in ("/audit",) if paging else ("/audit", "/audit.csv"):
                message = refused(await client.get(f"{API}{path}", params=params), 422, field)
                assert says in message and field in message, message
    run(main())


def test_audit_csv_has_a_bom_a_header_and_no_formulas(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, app):
            await asyncio.to_thread(app.state.audit.record, [
                *rows(450), AuditRow(ts=T0 + 1000, shop="default", room="live", outcome="rewritten",
                                     text="=HYPERLINK(\"http://evil\")", original="-1+1", entry_id="dress_plus",
                                     viewer_texts=("@SUM(1)", "有大码吗"), viewers=(("u1", "+小王"),))])
            r = await client.get(f"{API}/audit.csv")
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/csv; charset=utf-8"
            assert re.fullmatch(r'attachment; filename="default-audit-\d{8}-\d{6}\.csv"',
                                r.headers["content-disposition"])
            assert r.content.startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8 Chinese only after a BOM
            assert r.content.count(b"\xef\xbb\xbf") == 1
            table = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
            assert table[0] == list(CSV_COLUMNS)
            assert len(table) == 452
            first = dict(zip(CSV_COLUMNS, table[1], strict=True))
            assert first["text"] == "'=HYPERLINK(\"http://evil\")" and first["original"] == "'-1+1"
            assert first["viewer_texts"] == "'@SUM(1) | 有大码吗" and first["viewers"] == "'+小王 (u1)"
            assert first["outcome"] == "rewritten" and first["entry_id"] == "dress_plus"
            assert [row[CSV_COLUMNS.index("text")] for row in table[2:5]] == ["回复 449", "回复 448", "回复 447"]
            r = await client.get(f"{API}/audit.csv", params={"outcome": "rewritten"})
            assert len(list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))) == 2
            assert "token" not in str(r.url)
    run(main())


def test_blocklist_add_list_remove(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, app):
            heard: list[tuple[str, bool]] = []
            loop_thread = threading.get_ident()
            app.state.moderation.listen(lambda shop: heard.append((shop, threading.get_ident() != loop_thread)))
            assert (await client.get(f"{API}/blocklist")).json() == {"blocklist": []}
            r = await client.post(f"{API}/blocklist", json={"kind": "user_id", "value": " 10086 ", "note": "刷广告"})
            assert r.status_code == 200, r.text
            assert [(b["kind"], b["value"], b["note"], b["author"]) for b in r.json()["blocklist"]] == [
                ("user_id", "10086", "刷广告", "admin")]
            r = await client.post(f"{API}/blocklist", json={"kind": "name", "value": "加V看福利"})
            assert [b["value"] for b in r.json()["blocklist"]] == ["加V看福利", "10086"]
            assert [b["value"] for b in (await client.get(f"{API}/blocklist")).json()["blocklist"]] == [
                "加V看福利", "10086"]
            r = await client.delete(f"{API}/blocklist", params={"kind": "user_id", "value": "10086"})
            assert r.status_code == 200 and [b["value"] for b in r.json()["blocklist"]] == ["加V看福利"]
            message = refused(await client.delete(f"{API}/blocklist", params={"kind": "user_id", "value": "10086"}),
                              404, "value")
            assert "10086" in message
            assert heard == [("default", True)] * 3  # after each change, on a worker thread, not the event loop
            assert [b["value"] for b in app.state.moderation.blocklist("default")] == ["加V看福利"]
    run(main())


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"kind": "ip", "value": "1.2.3.4"}, "kind", "屏蔽类型"),
    ({"kind": "name", "value": "  "}, "value", "昵称不能为空"),
    ({"kind": "user_id", "value": "x" * 65}, "value", "最多 64 个字"),
    ({"kind": "name", "value": "a\nb"}, "value", "控制字符"),
    ({"kind": "name"}, "value", "缺少 value"),
    ({"value": "x"}, "kind", "缺少 kind"),
    ({"kind": "name", "value": 12}, "value", "必须是文字"),
    ({"kind": "name", "value": "x", "reason": "?"}, "reason", "不认识的字段"),
    ({"kind": "name", "value": "x", "note": "长" * 201}, "note", "备注太长"),
    (["name", "x"], None, "JSON 对象"),
    ("not json", None, "不是有效的 JSON"),
])
def test_blocklist_refuses_bad_input_in_chinese(engine, tmp_path, body, field, says):
    async def main():
        async with serve(engine, tmp_path) as (client, app):
            if body == "not json":
                r = await client.post(f"{API}/blocklist", content=b"{kind: name", headers={"Content-Type": "application/json"})
            else:
                r = await client.post(f"{API}/blocklist", json=body)
            assert says in refused(r, 422, field)
            assert app.state.moderation.blocklist("default") == []
    run(main())


def test_words_save_and_refuse(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, app):
            assert (await client.get(f"{API}/words")).json() == {"banned": [], "allowed": []}
            r = await client.put(f"{API}/words", json={"banned": ["秒杀价", "全网最低", "秒杀价"], "allowed": ["最大码"]})
            assert r.status_code == 200, r.text
            assert r.json() == {"ok": True, "banned": ["秒杀价", "全网最低"], "allowed": ["最大码"]}
            assert (await client.get(f"{API}/words")).json() == {"banned": ["秒杀价", "全网最低"], "allowed": ["最大码"]}
            assert (await client.get("/api/shops/other/words")).json() == {"banned": [], "allowed": []}
            bad = [({"banned": ["x" * 21], "allowed": []}, "banned", "最多 20 个字"),
                   ({"banned": [], "allowed": ["最大码", ""]}, "allowed", "第 2 个是空的"),
                   ({"banned": [f"词{i}" for i in range(501)], "allowed": []}, "banned", "最多 500 个"),
                   ({"banned": ["最"], "allowed": ["最"]}, "allowed", "不能同时"),
                   ({"banned": "秒杀价", "allowed": []}, "banned", "列表"),
                   ({"banned": [1], "allowed": []}, "banned", "列表"),
                   ({"banned": []}, "allowed", "缺少 allowed"),
                   ({"banned": [], "allowed": [], "extra": []}, "extra", "不认识的字段")]
            for body, field, says in bad:
                assert says in refused(await client.put(f"{API}/words", json=body), 422, field), body
            assert app.state.moderation.words("default") == {"banned": ["秒杀价", "全网最低"], "allowed": ["最大码"]}
            r = await client.put(f"{API}/words", content=b"x" * (300 * 1024), headers={"Content-Type": "application/json"})
            assert r.status_code == 413 and CJK.search(r.json()["error"])
    run(main())


def test_without_an_audit_log_or_moderation_the_routes_say_so(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (_client, live):
            app = FastAPI()
            app.include_router(make_router(live.state.catalogs, TOKEN, 1000))
            install_error_handlers(app)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                         headers=AUTH) as client:
                for method, url in ROUTES:
                    r = await client.request(method, url, json={"kind": "name", "value": "x", "banned": [],
                                                                "allowed": []})
                    assert r.status_code == 503 and CJK.search(r.json()["error"]), (url, r.text)
    run(main())


def test_try_it_shows_the_reply_after_the_gate(engine, tmp_path):
    """试一试 (/ask) previews what a room would send: a word the owner banned after the FAQ was written is cut or blocked
    there too, with the rule and the engine's own reply."""
    async def main() -> None:
        async with serve(engine, tmp_path) as (api, _app):
            before = (await api.post(f"{API}/ask", json={"text": "发什么快递"})).json()
            assert before["answered"] and "中通" in before["reply"] and before["gate"]["action"] == "pass"
            assert (await api.put(f"{API}/words", json={"banned": ["中通"], "allowed": []})).status_code == 200
            after = (await api.post(f"{API}/ask", json={"text": "发什么快递"})).json()
            assert "中通" not in (after["reply"] or "") and after["gate"]["action"] in ("rewrite", "block")
            assert "中通" in after["gate"]["engine_reply"]
            assert after["gate"]["rule"]
    run(main())
