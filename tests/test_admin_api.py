"""The catalog owners' HTTP API against the real server on 127.0.0.1, with a store in tmp_path."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openpyxl import Workbook

from cohost.knowledge.catalog import Catalog, decode_text, parse_catalog, parse_faq_csv
from cohost.knowledge.export import dump_catalog
from cohost.knowledge.gaps import Gap, cluster_id
from cohost.knowledge.spreadsheet import parse_faq_xlsx
from cohost.knowledge.store import CatalogStore
from cohost.live import live_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/shops/default"
HEADER = "product_id,id,question,answer,variants\n"
POCKET = "dress,dress_pocket,有口袋吗？,两侧各有一个隐形口袋，能放手机。,有兜吗|带口袋吗|有没有口袋\n"
POCKET_ANSWER = "两侧各有一个隐形口袋，能放手机。"


@contextlib.asynccontextmanager
async def serve(engine, tmp_path: Path, *, config=None, auth: bool = True
                ) -> AsyncIterator[tuple[httpx.AsyncClient, CatalogStore]]:
    """The live server on a fresh store (the engine's catalog becomes v1) and a client for it."""
    store = CatalogStore(tmp_path / "catalog.sqlite3")
    async with live_server(engine, port=0, store=store, admin_token=TOKEN, config=config) as (_app, port):
        # English: these match the messages as raised; the Chinese default is in test_owner_small_things.py.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                     headers={**(AUTH if auth else {}), "Accept-Language": "en"}) as client:
            yield client, store


def run(coro) -> Any:
    return asyncio.run(coro)


def versions(store: CatalogStore) -> list[int]:
    return [v.version for v in store.versions("default")]


def xlsx(rows: list[list[str]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER.strip().split(","))
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


async def upload(client: httpx.AsyncClient, data: bytes, filename: str, **params: Any) -> httpx.Response:
    params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
    return await client.post(f"{API}/catalog/upload", params={"filename": filename, **params}, content=data)


async def ask(client: httpx.AsyncClient, text: str, on_stage: str | None = "dress") -> dict[str, Any]:
    r = await client.post(f"{API}/ask", json={"text": text, "on_stage": on_stage})
    assert r.status_code == 200, r.text
    return r.json()


async def current(client: httpx.AsyncClient) -> Catalog:
    r = await client.get(f"{API}/catalog", params={"format": "json"})
    assert r.status_code == 200, r.text
    return parse_catalog(r.text, "json", "download")


def faq_place(catalog: Catalog, faq_id: str) -> tuple[str | None, Any] | None:
    for f in catalog.shop.faqs:
        if f.id == faq_id:
            return None, f
    for p in catalog.products:
        for f in p.faqs:
            if f.id == faq_id:
                return p.id, f
    return None


# -- access ---------------------------------------------------------------------------------------------


PARAMS = {"shop": "default", "faq_id": "dress_plus", "product_id": "dress", "cluster_id": "abc", "draft_id": "1", "room": "r1",
          "version": "1"}


def test_every_api_route_needs_the_token_and_public_pages_do_not(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path, auth=False) as (client, store):
            schema = (await client.get("/openapi.json")).json()
            routes = [(method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path))
                      for path, ops in schema["paths"].items() if path.startswith("/api/") for method in ops]
            assert len(routes) >= 18
            wrong = [{"headers": {"Authorization": "Bearer nope"}}, {"headers": {"X-Cohost-Token": "nope"}},
                     {"params": {"token": "nope"}}, {"headers": {"Authorization": f"Basic {TOKEN}"}},
                     {"params": {"token": "密码"}}, {"headers": {"X-Cohost-Token": "s\xe9cret".encode("latin-1")}}, {}]
            refused = []
            for method, url in routes:
                for how in wrong:
                    r = await client.request(method, url, json={}, **how)
                    refused.append((method, url, r.status_code))
                    if r.status_code == 401:
                        assert r.headers["www-authenticate"] == "Bearer"
            assert [x for x in refused if x[2] != 401] == []
            assert versions(store) == [1]  # not even a DELETE got through

            # The right token works in either header (?token= is refused on /api: test_owner_small_things.py).
            for how in [{"headers": AUTH}, {"headers": {"X-Cohost-Token": TOKEN}}]:
                r = await client.get(f"{API}/status", **how)
                assert r.status_code == 200, (how, r.text)
            for path in ("/healthz", "/overlay", "/docs", "/openapi.json"):
                assert (await client.get(path)).status_code == 200, path
            health = (await client.get("/healthz")).json()
            assert health["ok"] and health["version"] == 1 and health["shop"] == "default"
    run(main())


def test_docs_are_served_from_this_server_with_every_endpoint(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path, auth=False) as (client, _store):
            r = await client.get("/docs")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            html = r.text
            assert "SwaggerUIBundle" in html
            refs = re.findall(r"""(?:src|href)=["']?([^"'\s>]+)""", html)
            assets = [u for u in refs if u.endswith((".js", ".css"))]
            assert "/static/swagger/swagger-ui-bundle.js" in assets and "/static/swagger/swagger-ui.css" in assets
            assert all(u.startswith("/") and not u.startswith("//") for u in refs), refs  # nothing from a CDN
            for url in assets:
                asset = await client.get(url)
                assert asset.status_code == 200 and len(asset.content) > 10_000, url
            assert "javascript" in (await client.get("/static/swagger/swagger-ui-bundle.js")).headers["content-type"]
            assert "'/openapi.json'" in html or '"/openapi.json"' in html

            paths = (await client.get("/openapi.json")).json()["paths"]
            p = "/api/shops/{shop}"
            expected = {f"{p}/catalog/upload": "post", f"{p}/catalog": "get", f"{p}/faqs": "post",
                        f"{p}/faqs/{{faq_id}}": "put", f"{p}/products": "post",
                        f"{p}/products/{{product_id}}": "delete", f"{p}/versions": "get", f"{p}/rollback": "post",
                        f"{p}/ask": "post", f"{p}/gaps": "get", f"{p}/gaps/{{cluster_id}}/draft": "post",
                        f"{p}/drafts": "get", f"{p}/drafts/{{draft_id}}/publish": "post", f"{p}/status": "get"}
            for path, method in expected.items():
                assert method in paths.get(path, {}), path
            assert "delete" in paths[f"{p}/faqs/{{faq_id}}"] and "put" in paths[f"{p}/products/{{product_id}}"]
            body = paths[f"{p}/catalog/upload"]["post"]["requestBody"]["content"]
            assert "application/octet-stream" in body
            assert not any(path.startswith(("/docs", "/static")) for path in paths)
    run(main())


# -- uploads --------------------------------------------------------------------------------------------


BAD_CSV = (HEADER + POCKET                                  # row 2: fine
           + "dress,dress_empty,空答案？, ,\n"                # row 3: blank answer
           + "no_such,x_unknown,问题,答案,\n"                 # row 4: unknown product
           + "dress,x_short,只有三列\n"                       # row 5: wrong column count
           + "dress,dress_pocket,重复？,重复的id。,\n")        # row 6: duplicate id


def test_bad_csv_gets_every_problem_and_writes_nothing(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            for dry_run in (True, False):
                r = await upload(client, BAD_CSV.encode(), "faqs.csv", dry_run=dry_run)
                assert r.status_code == 422, r.text
                body = r.json()
                assert body["error"] == "4 problem(s) found; nothing was changed"
                got = [(p["where"], p["field"]) for p in body["problems"]]
                assert got == [("row 3", "answer"), ("row 4", "product_id"), ("row 5", None), ("row 6", "id")]
                assert all(p["file"] == "faqs.csv" and p["message"] for p in body["problems"])
                assert "unknown product 'no_such'" in body["problems"][1]["message"]
                assert "expected 5 columns, got 3" in body["problems"][2]["message"]
            assert versions(store) == [1]
            for data, name, needle in [(b"", "faqs.csv", "empty"), (b"x", "faqs.txt", "unsupported file type"),
                                       (b"not a zip", "faqs.xlsx", "not an Excel .xlsx file"),
                                       (b"shop: [", "c.yaml", "not valid YAML")]:
                r = await upload(client, data, name, dry_run=True)
                assert r.status_code == 422 and needle in r.json()["problems"][0]["message"], (name, r.text)
            assert versions(store) == [1]
    run(main())


def test_xlsx_upload_diff_then_apply_then_answer(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            before = await ask(client, "有口袋吗")
            assert before["faq_id"] != "dress_pocket" and before["version"] == 1
            plus = next(f for f in engine.catalog.product("dress").faqs if f.id == "dress_plus")
            data = xlsx([["dress", "dress_pocket", "有口袋吗？", POCKET_ANSWER, "有兜吗|带口袋吗|有没有口袋"],
                         ["dress", "dress_plus", plus.question, "现在有XXL了。", "|".join(plus.variants)]])
            r = await upload(client, data, "faqs.xlsx", dry_run=True)
            assert r.status_code == 200, r.text
            dry = r.json()
            assert dry["kind"] == "faqs" and dry["base_version"] == 1
            assert dry["diff"]["counts"] == {"added": 1, "changed": 1, "removed": 0, "products_added": 0,
                                             "products_removed": 0, "products_changed": 0}
            changed = next(c for c in dry["diff"]["faqs"] if c["kind"] == "changed")
            assert changed["faq_id"] == "dress_plus" and changed["fields"] == ["answer"]
            assert changed["before"]["answer"] == plus.answer and changed["after"]["answer"] == "现在有XXL了。"
            assert versions(store) == [1]  # the dry run wrote nothing

            r = await upload(client, data, "faqs.xlsx", base_version=dry["base_version"])
            assert r.status_code == 200, r.text
            applied = r.json()
            assert applied["version"]["version"] == 2 and applied["version"]["status"] == "ready"
            assert applied["version"]["note"] == "upload faqs.xlsx" and applied["version"]["based_on"] == 1
            assert applied["build"]["state"] == "ready" and applied["build"]["version"] == 2
            assert applied["diff"]["counts"]["added"] == 1
            assert versions(store) == [2, 1]

            got = await ask(client, "有口袋吗")
            assert (got["answered"], got["faq_id"], got["version"]) == (True, "dress_pocket", 2)
            assert POCKET_ANSWER in got["reply"]
            assert (await ask(client, "有大码吗"))["faq_id"] == "dress_plus"
            assert "XXL" in (await ask(client, "有大码吗"))["reply"]
            listed = (await client.get(f"{API}/versions")).json()
            assert [v["version"] for v in listed] == [2, 1] and listed[0]["faqs"] == listed[1]["faqs"] + 1
    run(main())


def test_whole_catalog_yaml_upload_replaces_the_catalog(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            doc = yaml.safe_load((ROOT / "knowledge" / "shop.yaml").read_text(encoding="utf-8"))
            doc["shop"]["name"] = "小鹿优选二号店"
            removed = doc["products"].pop()["id"]
            data = yaml.safe_dump(doc, allow_unicode=True).encode("utf-8")
            r = await upload(client, data, "shop.yml", dry_run=True)
            assert r.status_code == 200, r.text
            diff = r.json()["diff"]
            assert r.json()["kind"] == "catalog"
            assert diff["shop_changed"] and diff["products_removed"] == [removed]
            assert diff["counts"]["removed"] == len(engine.catalog.product(removed).faqs)
            r = await upload(client, data, "shop.yml")
            assert r.status_code == 200 and r.json()["version"]["version"] == 2, r.text
            cat = await current(client)
            assert cat == parse_catalog(data.decode(), "yaml", "x")
            assert cat.shop.name == "小鹿优选二号店" and cat.product(removed) is None
            assert store.catalog("default", 1) == engine.catalog
            health = (await client.get("/healthz")).json()
            assert health["version"] == 2 and health["catalog"] == "小鹿优选二号店"
            # The same file again changes nothing in the diff; JSON uploads work the same way.
            r = await upload(client, json.dumps(doc, ensure_ascii=False).encode(), "shop.json", dry_run=True)
            assert r.status_code == 200 and r.json()["diff"]["empty"], r.text
    run(main())


def test_gb18030_csv_upload(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, _store):
            data = (HEADER + POCKET).replace("\n", "\r\n").encode("gb18030")
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")  # really not UTF-8
            r = await upload(client, data, "FAQ.CSV")
            assert r.status_code == 200, r.text
            assert r.json()["version"]["version"] == 2
            place = faq_place(await current(client), "dress_pocket")
            assert place is not None and place[0] == "dress"
            assert place[1].answer == POCKET_ANSWER and place[1].variants == ("有兜吗", "带口袋吗", "有没有口袋")
    run(main())


def test_upload_over_the_limit_is_refused_and_writes_nothing(engine, tmp_path):
    cfg = engine.config.model_copy(update={"store": engine.config.store.model_copy(update={"max_upload_bytes": 2048})})

    async def main():
        async with serve(engine, tmp_path, config=cfg) as (client, store):
            big = (HEADER + "".join(f",faq_{i},问题{i}？,答案{i}。,\n" for i in range(100))).encode()
            assert len(big) > 2048
            r = await upload(client, big, "big.csv")
            assert r.status_code == 413, r.text
            assert "the limit is 2048 bytes" in r.json()["detail"] and "max_upload_bytes" in r.json()["detail"]

            async def chunks():  # no Content-Length: the server must count what arrives
                for i in range(0, len(big), 512):
                    yield big[i:i + 512]

            r = await client.post(f"{API}/catalog/upload", params={"filename": "big.csv"}, content=chunks())
            assert r.status_code == 413, r.text
            assert versions(store) == [1]
            small = (HEADER + POCKET).encode()
            assert len(small) < 2048
            r = await upload(client, small, "small.csv")
            assert r.status_code == 200 and r.json()["version"]["version"] == 2, r.text
    run(main())


# -- single edits ---------------------------------------------------------------------------------------


def test_faq_add_edit_move_delete(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            new = {"id": "dress_pocket", "product_id": "dress", "question": "有口袋吗？", "answer": POCKET_ANSWER,
                   "variants": ["有兜吗", "带口袋吗"]}
            r = await client.post(f"{API}/faqs", json=new)
            assert r.status_code == 200 and r.json()["version"]["version"] == 2, r.text
            assert (await ask(client, "有口袋吗"))["faq_id"] == "dress_pocket"

            # Refusals: each writes nothing.
            r = await client.post(f"{API}/faqs", json=new)
            assert r.status_code == 422 and r.json()["problems"][0]["field"] == "id", r.text
            r = await client.post(f"{API}/faqs", json={**new, "id": "x_empty", "answer": "  "})
            assert r.status_code == 422 and [p["field"] for p in r.json()["problems"]] == ["answer"], r.text
            r = await client.post(f"{API}/faqs", json={**new, "id": "x_orphan", "product_id": "no_such"})
            assert r.status_code == 422 and "no_such" in r.text
            r = await client.post(f"{API}/faqs", json={**new, "id": "x", "colour": "red"})
            assert r.status_code == 422  # unknown fields are refused, not ignored
            r = await client.put(f"{API}/faqs/dress_pocket", json={**new, "answer": ""})
            assert r.status_code == 422 and r.json()["problems"][0]["field"] == "answer", r.text
            r = await client.put(f"{API}/faqs/nope", json={**new, "id": "nope"})
            assert r.status_code == 404 and "nope" in r.json()["error"]
            r = await client.put(f"{API}/faqs/dress_pocket", json={**new, "id": "dress_plus"})
            assert r.status_code == 422, r.text  # renaming onto another FAQ's id must not overwrite it
            assert versions(store) == [2, 1]

            # Edit: move it to another product and change the answer.
            moved = {**new, "product_id": "down_jacket", "question": "羽绒服有口袋吗？", "answer": "有两个拉链口袋。"}
            r = await client.put(f"{API}/faqs/dress_pocket", json=moved)
            assert r.status_code == 200 and r.json()["version"]["version"] == 3, r.text
            cat = await current(client)
            place = faq_place(cat, "dress_pocket")
            assert place is not None and place[0] == "down_jacket" and place[1].answer == "有两个拉链口袋。"
            assert all(f.id != "dress_pocket" for f in cat.product("dress").faqs)
            # Rename: the old id is gone, the new one holds the FAQ.
            r = await client.put(f"{API}/faqs/dress_pocket", json={**moved, "id": "jacket_pocket"})
            assert r.status_code == 200, r.text
            cat = await current(client)
            assert faq_place(cat, "dress_pocket") is None and faq_place(cat, "jacket_pocket")[0] == "down_jacket"
            # A shop-wide FAQ has no product.
            r = await client.put(f"{API}/faqs/jacket_pocket", json={**moved, "id": "jacket_pocket",
                                                                    "product_id": None})
            assert r.status_code == 200, r.text
            assert faq_place(await current(client), "jacket_pocket")[0] is None

            r = await client.delete(f"{API}/faqs/jacket_pocket")
            assert r.status_code == 200 and r.json()["version"]["version"] == 6, r.text
            assert faq_place(await current(client), "jacket_pocket") is None
            r = await client.delete(f"{API}/faqs/jacket_pocket")
            assert r.status_code == 404
            assert versions(store) == [6, 5, 4, 3, 2, 1]
            assert [v.note for v in store.versions("default")[:2]] == ["delete FAQ jacket_pocket",
                                                                       "edit FAQ jacket_pocket"]
            assert await current(client) == store.catalog("default", 1)
    run(main())


def test_product_add_edit_delete(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            scarf = {"id": "scarf", "name": "羊绒围巾", "link": 99, "price": 89.5, "aliases": ["围巾"],
                     "specs": {"材质": "羊绒"}, "selling_points": ["不扎脖子"]}
            r = await client.post(f"{API}/products", json=scarf)
            assert r.status_code == 200 and r.json()["version"]["version"] == 2, r.text
            added = (await current(client)).product("scarf")
            assert added is not None and added.price == 89.5 and added.specs == {"材质": "羊绒"}

            for body, field in [(scarf, "id"), ({**scarf, "id": "s2", "name": ""}, "name"),
                                ({**scarf, "id": "s3", "link": 1}, "link"), ({**scarf, "id": "Bad Id"}, "id")]:
                r = await client.post(f"{API}/products", json=body)
                assert r.status_code == 422, (body, r.text)
                assert field in [p["field"] for p in r.json()["problems"]], (body, r.text)
            # An edit may not take another product's id or live-room link either.
            for body, field in [({**scarf, "id": "dress"}, "id"), ({**scarf, "link": 2}, "link")]:
                r = await client.put(f"{API}/products/scarf", json=body)
                assert r.status_code == 422, (body, r.text)
                assert field in [p["field"] for p in r.json()["problems"]], (body, r.text)
            r = await client.put(f"{API}/products/nope", json={**scarf, "id": "nope"})
            assert r.status_code == 404
            r = await client.delete(f"{API}/products/nope")
            assert r.status_code == 404
            assert versions(store) == [2, 1]

            # Editing a product keeps its FAQs.
            old = engine.catalog.product("dress")
            r = await client.put(f"{API}/products/dress", json={"id": "dress", "name": "法式碎花裙", "link": old.link,
                                                                "price": 139})
            assert r.status_code == 200 and r.json()["version"]["version"] == 3, r.text
            dress = (await current(client)).product("dress")
            assert dress.name == "法式碎花裙" and dress.price == 139 and dress.faqs == old.faqs
            assert (await ask(client, "有大码吗"))["faq_id"] == "dress_plus"

            r = await client.delete(f"{API}/products/dress")
            assert r.status_code == 200 and r.json()["version"]["version"] == 4, r.text
            cat = await current(client)
            assert cat.product("dress") is None and faq_place(cat, "dress_plus") is None
            assert (await ask(client, "有大码吗", on_stage=None))["faq_id"] != "dress_plus"
            assert versions(store) == [4, 3, 2, 1]
    run(main())


def test_rollback_and_stale_base_version(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            r = await upload(client, (HEADER + POCKET).encode(), "faqs.csv", base_version=1)
            assert r.status_code == 200, r.text

            # Stale base_version: 409 from every kind of change, and nothing is written.
            stale = [
                upload(client, (HEADER + POCKET).encode(), "faqs.csv", base_version=1),
                client.post(f"{API}/faqs", json={"id": "x", "question": "问", "answer": "答", "base_version": 1}),
                client.delete(f"{API}/faqs/dress_plus", params={"base_version": 1}),
                client.post(f"{API}/rollback", json={"version": 1, "base_version": 1}),
            ]
            for call in stale:
                r = await call
                assert r.status_code == 409, r.text
                assert r.json()["head"] == 2 and r.json()["base_version"] == 1
                assert "is at version 2" in r.json()["error"]
            assert versions(store) == [2, 1]

            r = await client.post(f"{API}/rollback", json={"version": 1, "base_version": 2})
            assert r.status_code == 200, r.text
            info = r.json()["version"]
            assert (info["version"], info["note"], info["status"]) == (3, "rollback to v1", "ready")
            assert store.catalog("default", 3) == store.catalog("default", 1)
            assert faq_place(store.catalog("default", 2), "dress_pocket") is not None  # history kept
            assert (await ask(client, "有口袋吗"))["faq_id"] != "dress_pocket"
            r = await client.post(f"{API}/rollback", json={"version": 99})
            assert r.status_code == 404 and "no version 99" in r.json()["error"]
            assert versions(store) == [3, 2, 1]
    run(main())


def test_concurrent_uploads_on_the_same_base_one_wins(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            a = (HEADER + POCKET).encode()
            b = (HEADER + "dress,dress_belt,有腰带吗？,配同色腰带。,\n").encode()
            ra, rb = await asyncio.gather(upload(client, a, "a.csv", base_version=1),
                                          upload(client, b, "b.csv", base_version=1))
            assert sorted([ra.status_code, rb.status_code]) == [200, 409], (ra.text, rb.text)
            winner = ra if ra.status_code == 200 else rb
            assert winner.json()["version"]["version"] == 2
            assert versions(store) == [2, 1]
            cat = store.catalog("default", 2)
            assert (faq_place(cat, "dress_pocket") is None) != (faq_place(cat, "dress_belt") is None)
            # Without base_version both land, one after the other: neither overwrites the other.
            ra, rb = await asyncio.gather(upload(client, a, "a.csv"), upload(client, b, "b.csv"))
            assert (ra.status_code, rb.status_code) == (200, 200), (ra.text, rb.text)
            cat = await current(client)
            assert faq_place(cat, "dress_pocket") and faq_place(cat, "dress_belt")
    run(main())


def test_downloads_parse_back(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            r = await client.post(f"{API}/faqs", json={"id": "shop_hours", "question": "几点下播？",
                                                       "answer": "每晚十点下播。", "variants": ["几点结束"]})
            assert r.status_code == 200, r.text
            cat = store.catalog("default", 2)
            known = {p.id for p in cat.products}
            got = {}
            for fmt in ("yaml", "json", "csv", "xlsx"):
                r = await client.get(f"{API}/catalog", params={"format": fmt})
                assert r.status_code == 200, (fmt, r.text)
                assert f'filename="default.{fmt}"' in r.headers["content-disposition"]
                assert r.content == dump_catalog(cat, fmt) or fmt == "xlsx"
                got[fmt] = r.content
            assert parse_catalog(got["yaml"].decode("utf-8"), "yaml", "y") == cat
            assert parse_catalog(got["json"].decode("utf-8"), "json", "j") == cat
            csv_rows = parse_faq_csv(decode_text(got["csv"], "c"), "c", known)
            for rows in (csv_rows, parse_faq_xlsx(got["xlsx"], "x", known)):
                assert len(rows) == cat.faq_count()
                assert cat.with_faqs(rows) == cat  # every FAQ comes back exactly, in its place
                assert (None, next(f for f in cat.shop.faqs if f.id == "shop_hours")) in rows
            # An earlier version by number; a format that does not exist is refused.
            r = await client.get(f"{API}/catalog", params={"format": "json", "version": 1})
            assert parse_catalog(r.text, "json", "v1") == store.catalog("default", 1)
            assert 'filename="default-v1.json"' in r.headers["content-disposition"]
            assert (await client.get(f"{API}/catalog", params={"format": "pdf"})).status_code == 422
            assert (await client.get(f"{API}/catalog", params={"version": 9})).status_code == 404
            assert (await client.get("/api/shops/nobody/catalog")).status_code == 404
    run(main())


def test_status_shows_the_build_and_a_background_upload_finishes(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            r = await client.get(f"{API}/status")
            assert r.status_code == 200
            s = r.json()
            assert s["head"]["version"] == 1 and s["serving"]["version"] == 1 and s["build"] is None
            assert (await client.get("/api/shops/nobody/status")).status_code == 404

            r = await upload(client, (HEADER + POCKET).encode(), "faqs.csv", wait=False)
            assert r.status_code == 202, r.text
            assert r.json()["version"]["version"] == 2
            deadline = time.monotonic() + 60
            while True:
                s = (await client.get(f"{API}/status")).json()
                if s["build"]["state"] != "building":
                    break
                assert time.monotonic() < deadline, s
                await asyncio.sleep(0.05)
            b = s["build"]
            assert (b["state"], b["version"], b["error"]) == ("ready", 2, None)
            assert b["finished"] >= b["started"] and b["total"] >= 1 and b["done"] == b["total"]
            assert s["head"]["version"] == s["serving"]["version"] == 2 and s["head"]["status"] == "ready"
            assert (await ask(client, "有口袋吗"))["faq_id"] == "dress_pocket"
            shops = (await client.get("/api/shops")).json()
            assert shops == [{"shop": "default", "serving": s["serving"], "default": True}]
    run(main())


def test_gaps_become_a_draft_then_an_faq(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            assert (await client.get(f"{API}/gaps")).json() == []
            now = time.time()
            store.record_gaps("default", [Gap(0, "r1", t, "有口袋吗", "dress", "no_match", now - i)
                                          for i, t in enumerate(["有口袋吗", "有口袋吗", "有没有口袋"])])
            [cluster] = (await client.get(f"{API}/gaps")).json()
            cid = cluster_id("dress", "有口袋吗")
            assert (cluster["id"], cluster["count"], cluster["product_id"]) == (cid, 3, "dress")
            assert cluster["examples"] == ["有口袋吗", "有没有口袋"]

            r = await client.post(f"{API}/gaps/{cid}/draft")
            assert r.status_code == 200, r.text
            draft = r.json()
            assert (draft["question"], draft["variants"], draft["asked"]) == ("有口袋吗", ["有没有口袋"], 3)
            assert (await client.get(f"{API}/gaps")).json() == []
            assert (await client.post(f"{API}/gaps/{cid}/draft")).status_code == 404
            assert [d["id"] for d in (await client.get(f"{API}/drafts")).json()] == [draft["id"]]

            url = f"{API}/drafts/{draft['id']}/publish"
            r = await client.post(url, json={"answer": " "})
            assert r.status_code == 422 and r.json()["problems"][0]["field"] == "answer"
            r = await client.post(url, json={"answer": POCKET_ANSWER, "faq_id": "dress_pocket"})
            assert r.status_code == 200, r.text
            assert r.json()["faq_id"] == "dress_pocket" and r.json()["version"]["version"] == 2
            assert (await ask(client, "有口袋吗"))["faq_id"] == "dress_pocket"
            assert (await client.get(f"{API}/drafts")).json() == []
            done = store.draft("default", draft["id"])
            assert (done.status, done.faq_id, done.version) == ("published", "dress_pocket", 2)
            assert (await client.post(url, json={"answer": "再来一次"})).status_code == 409
            assert (await client.post(f"{API}/drafts/999/publish", json={"answer": "x"})).status_code == 404
            assert (await client.delete(f"{API}/drafts/999")).status_code == 404
            assert versions(store) == [2, 1]
    run(main())
