"""What catalog owners notice: one language on the CLI and /admin, `cohost ask` from the store, eval's n/a,
unchanged uploads, a token that survives restarts, page headers, headers-only tokens on /api, huge ids.

Real parts: the server on 127.0.0.1, SQLite stores under tmp_path, the CLI in-process (`cohost.cli.main`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from cohost import cli
from cohost.cli import main
from cohost.config import Config, load_config
from cohost.knowledge.catalog import load_catalog
from cohost.knowledge.store import CatalogStore
from cohost.live import live_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SHOP_YAML = ROOT / "knowledge" / "shop.yaml"
TOKEN = "owner-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
API = "/api/shops/default"
HUGE = "99999999999999999999"  # past SQLite's int64
CJK = re.compile(r"[\u4e00-\u9fff]")
BAD_CSV = ("product_id,id,question,answer,variants\n"
           "dress,x_blank,空答案？, ,\n"          # row 2: blank answer
           "no_such,x_unknown,问题,答案,\n"        # row 3: unknown product
           "dress,x_short,只有三列\n")             # row 4: wrong column count


@contextlib.asynccontextmanager
async def serve(engine, tmp_path: Path, **headers: str) -> AsyncIterator[tuple[httpx.AsyncClient, CatalogStore, int]]:
    store = CatalogStore(tmp_path / "catalog.sqlite3")
    async with live_server(engine, port=0, store=store, admin_token=TOKEN) as (_app, port):
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers={**AUTH, **headers},
                                     timeout=60) as client:
            yield client, store, port


def run(coro) -> Any:
    return asyncio.run(coro)


def versions(store: CatalogStore) -> list[int]:
    return [v.version for v in store.versions("default")]


def write_config(tmp_path: Path, cache_dir: Path) -> Path:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"cache_dir: {cache_dir}\nstore:\n  path: store/catalog.sqlite3\n", encoding="utf-8")
    return cfg


def seed(cfg_path: Path, catalog) -> CatalogStore:
    cfg = load_config(str(cfg_path))
    store = CatalogStore(cfg.resolve(cfg.store.path))
    info, _ = store.commit("default", lambda _old: catalog, author="test", note="seed")
    store.mark("default", info.version, "ready")
    return store


# -- one message catalog: the CLI says what /admin says ------------------------------------------------------


def test_cli_and_api_give_the_same_chinese_problems_and_english_on_request(engine, tmp_path, cache_dir, capsys):
    cfg_path = write_config(tmp_path, cache_dir)
    seed(cfg_path, load_catalog(SHOP_YAML))
    bad = tmp_path / "faqs.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")

    code = main(["--config", str(cfg_path), "knowledge", "import", str(bad), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert "发现 3 个问题，知识库没有任何改动" in err and "problem(s)" not in err
    assert "String should" not in err and "unknown product" not in err and "expected 5 columns" not in err
    assert "第 2 行 答案：不能为空" in err
    assert "第 3 行 商品编号：商品“no_such”不存在" in err
    assert "第 4 行：应该有 5 列，这一行有 3 列" in err

    async def api(**headers: str) -> dict[str, Any]:
        async with serve(engine, tmp_path / f"api-{len(headers)}", **headers) as (client, _store, _port):
            r = await client.post(f"{API}/catalog/upload", params={"filename": "faqs.csv", "dry_run": "true"},
                                  content=BAD_CSV.encode())
            assert r.status_code == 422, r.text
            return r.json()

    zh = run(api())
    assert zh["error"] == "发现 3 个问题，知识库没有任何改动"
    for p in zh["problems"]:  # the very sentence the CLI printed, and the original beside it
        assert CJK.search(p["message"]) and p["message"] in err, p
        assert p["message_en"] and not CJK.search(p["message_en"]), p
    assert [p["where"] for p in zh["problems"]] == ["row 2", "row 3", "row 4"]  # machine-readable, as before

    en = run(api(**{"Accept-Language": "en-US,en;q=0.9"}))
    assert en["error"] == "3 problem(s) found; nothing was changed"
    assert "unknown product 'no_such'" in en["problems"][1]["message"]

    code = main(["--config", str(cfg_path), "knowledge", "import", str(bad), "--dry-run", "--lang", "en"])
    err = capsys.readouterr().err
    assert code == 2 and "3 problem(s) found" in err and "unknown product 'no_such'" in err
    assert not CJK.search(err)


def test_cli_progress_and_results_are_chinese_by_default_and_english_on_request(tmp_path, cache_dir, capsys,
                                                                              monkeypatch):
    from rich.console import Console

    from cohost.knowledge import manage

    monkeypatch.setattr(manage, "out", Console(highlight=False, width=250))  # no wrapping off a terminal
    cfg_path = write_config(tmp_path, cache_dir)
    store = seed(cfg_path, load_catalog(SHOP_YAML))
    good = tmp_path / "faqs.csv"
    good.write_text("product_id,id,question,answer,variants\ndress,dress_pocket,有口袋吗？,两侧各有一个隐形口袋。,\n",
                    encoding="utf-8")

    assert main(["--config", str(cfg_path), "knowledge", "import", str(good), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "FAQ：新增 1，修改 0，删除 0" in out and "试运行：没有做任何改动" in out and "added" not in out, out
    assert main(["--config", str(cfg_path), "knowledge", "import", str(good)]) == 0
    out = capsys.readouterr().out
    assert "default v2 已生效（" in out and "is ready" not in out, out
    assert main(["--config", str(cfg_path), "knowledge", "import", str(good)]) == 0
    assert "没有变化：default 仍是 v2" in capsys.readouterr().out

    assert main(["--config", str(cfg_path), "knowledge", "rollback", "1", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "default v3 is ready" in out and not CJK.search(out), out
    assert store.serving("default").version == 3


def test_a_pydantic_error_in_a_yaml_is_chinese_on_the_cli_with_the_path_as_written(tmp_path, cache_dir, capsys):
    cfg_path = write_config(tmp_path, cache_dir)
    bad = tmp_path / "shop.yaml"
    bad.write_text("shop: {name: x}\nproducts:\n  - {id: Bad!, name: y, price: 1.234}\n  - {id: b, name: '', link: 0}\n",
                   encoding="utf-8")
    code = main(["--config", str(cfg_path), "knowledge", "import", str(bad), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("错误：发现 4 个问题")
    assert "第 1 个商品 › 编号（products[0].id）：只能用小写英文字母、数字、- 或 _" in err
    assert "（products[0].price）：价格 1.234 超过两位小数" in err
    assert "第 2 个商品 › 链接号（products[1].link）：不能小于 1" in err
    assert "第 2 个商品 › 名称（products[1].name）：不能为空" in err
    assert "Input should" not in err and "String should" not in err and "Value error" not in err


# -- cohost ask answers from the store cohost run serves ------------------------------------------------------


def test_ask_answers_from_the_store_by_default_and_from_a_file_with_catalog(tmp_path, cache_dir, capsys):
    cfg_path = write_config(tmp_path, cache_dir)
    file_catalog = load_catalog(SHOP_YAML)
    ship = next(f for f in file_catalog.shop.faqs if f.id == "ship_free")
    edited = file_catalog.model_copy(update={"shop": file_catalog.shop.model_copy(update={"faqs": tuple(
        f.model_copy(update={"answer": "全场包邮，今天下单明天就到。"}) if f.id == "ship_free" else f
        for f in file_catalog.shop.faqs)})})
    store = seed(cfg_path, file_catalog)
    info, _ = store.commit("default", lambda _old: edited, author="api", note="edit FAQ ship_free")
    store.mark("default", info.version, "ready")  # what /admin did: v2 serves

    assert main(["--config", str(cfg_path), "ask", "包邮吗"]) == 0
    out, err = capsys.readouterr()
    assert "今天下单明天就到" in out and "faq ship_free]" in out, out
    assert "v2" in err and str(store.path) in err

    assert main(["--config", str(cfg_path), "ask", "--catalog", str(SHOP_YAML), "包邮吗"]) == 0
    out, err = capsys.readouterr()
    assert ship.answer[:6] in out and "明天就到" not in out, out
    assert str(SHOP_YAML) in err


def test_ask_without_a_store_uses_the_config_catalog_and_creates_no_store(tmp_path, cache_dir, capsys):
    cfg_path = write_config(tmp_path, cache_dir)
    assert main(["--config", str(cfg_path), "ask", "--lang", "en", "包邮吗"]) == 0
    _out, err = capsys.readouterr()
    assert "answering from the file" in err and "has no version of shop default" in err
    assert not (tmp_path / "store").exists()


# -- eval: nothing to divide is n/a ---------------------------------------------------------------------------


def test_eval_prints_n_a_when_there_is_nothing_to_divide(engine, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda _args, _catalog=None: engine)
    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps({"id": str(i), "text": t, "expect_faq": None}, ensure_ascii=False) + "\n"
                             for i, t in enumerate(["哈哈哈哈", "主播好漂亮"])), encoding="utf-8")
    code = main(["eval", "faq", "--catalog", str(SHOP_YAML), "--cases", str(cases), "--output",
                 str(tmp_path / "out.jsonl")])
    out = capsys.readouterr().out
    assert code == 0
    assert "precision n/a (0/0)" in out and "recall n/a (0/0)" in out, out
    assert "abstention on unanswerable 1.000 (2/2)" in out
    assert "1.000 (0/0)" not in out and "0.000 (0/0)" not in out

    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert main(["eval", "faq", "--catalog", str(SHOP_YAML), "--cases", str(empty), "--output",
                 str(tmp_path / "o2.jsonl")]) == 0
    assert "0 cases: 0 answered, 0 abstained; latency —" in capsys.readouterr().out


# -- an unchanged upload is a no-op ---------------------------------------------------------------------------


def test_reuploading_the_live_catalog_makes_no_version_and_says_so(engine, tmp_path):
    async def main_() -> None:
        async with serve(engine, tmp_path) as (client, store, _port):
            live = (await client.get(f"{API}/catalog", params={"format": "yaml"})).content
            for wait in ("true", "false"):
                r = await client.post(f"{API}/catalog/upload", params={"filename": "shop.yaml", "wait": wait},
                                      content=live)
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["unchanged"] is True and body["version"]["version"] == 1, body
                assert "没有变化" in body["message"] and "v1" in body["message"]
            csv = (await client.get(f"{API}/catalog", params={"format": "csv"})).content
            r = await client.post(f"{API}/catalog/upload", params={"filename": "faqs.csv"}, content=csv)
            assert r.status_code == 200 and r.json()["unchanged"] is True, r.text
            assert versions(store) == [1]

            changed = live.replace("全场包邮".encode(), "全场包邮哦".encode(), 1)
            assert changed != live
            r = await client.post(f"{API}/catalog/upload", params={"filename": "shop.yaml"}, content=changed)
            assert r.status_code == 200 and "unchanged" not in r.json(), r.text
            assert versions(store) == [2, 1]
    run(main_())


# -- the admin token survives a restart, and is rotated by a command ------------------------------------------


def test_the_generated_admin_token_is_kept_0600_in_the_store_dir_and_rotated(tmp_path, cache_dir, capsys,
                                                                              monkeypatch):
    from cohost.server.app import admin_token, admin_token_path  # here: older code has neither

    monkeypatch.delenv("COHOST_ADMIN_TOKEN", raising=False)
    cfg_path = write_config(tmp_path, cache_dir)
    cfg = load_config(str(cfg_path))
    first, generated = admin_token(cfg, persist=True)  # what `cohost run` does at start
    path = admin_token_path(cfg)
    assert generated and path == tmp_path / "store" / "admin_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token(cfg, persist=True)[0] == first  # the next start: the bookmarked link still works

    assert main(["--config", str(cfg_path), "admin-token"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == first and f"/admin#token={first}" in err

    assert main(["--config", str(cfg_path), "admin-token", "--rotate"]) == 0
    rotated = capsys.readouterr().out.strip()
    assert rotated != first and admin_token(cfg, persist=True)[0] == rotated
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    path.chmod(0o644)  # restored from a backup, say: tightened again when read
    assert admin_token(cfg, persist=True)[0] == rotated and stat.S_IMODE(path.stat().st_mode) == 0o600

    monkeypatch.setenv("COHOST_ADMIN_TOKEN", "from-the-environment")
    assert admin_token(cfg, persist=True) == ("from-the-environment", False)  # the variable still wins
    assert admin_token(Config(), persist=False)[0] != rotated  # tests and the demo: throwaway, nothing saved


# -- page headers; tokens in headers only on /api -------------------------------------------------------------


def test_pages_refuse_framing_and_api_refuses_a_token_in_the_url(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("COHOST_INGEST_TOKEN", "ingest-secret")

    async def main_() -> None:
        async with serve(engine, tmp_path) as (client, _store, port):
            for path in ("/admin", "/overlay", "/docs"):
                r = await client.get(path)
                assert r.status_code == 200, path
                assert r.headers["x-frame-options"] == "DENY", path
                assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            admin_csp = (await client.get("/admin")).headers["content-security-policy"]
            assert "default-src 'none'" in admin_csp and "connect-src 'self'" in admin_csp
            overlay_csp = (await client.get("/overlay")).headers["content-security-policy"]
            assert "connect-src 'self' ws: wss:" in overlay_csp  # the overlay's websocket still allowed

            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as bare:
                for url in (f"{API}/status", "/api/rooms", "/api/shops"):
                    r = await bare.get(url, params={"token": TOKEN})  # the right token, in the wrong place
                    assert r.status_code == 401, (url, r.text)
                    assert "Authorization" in r.json()["detail"] and CJK.search(r.json()["detail"]), r.text
                    r = await bare.get(url, params={"token": TOKEN}, headers=AUTH)  # even beside a good header
                    assert r.status_code == 401, url
                    assert (await bare.get(url, headers=AUTH)).status_code == 200, url
                    r = await bare.get(url, params={"token": TOKEN}, headers={"Accept-Language": "en"})
                    assert "in the header Authorization" in r.json()["detail"], r.text
            schema = (await client.get("/openapi.json")).json()
            status_params = schema["paths"]["/api/shops/{shop}/status"]["get"].get("parameters", [])
            assert "token" not in [p["name"] for p in status_params]  # /docs no longer offers it

            # Browsers cannot set headers on a websocket: ?token= stays there.
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/ingest?room=r1&token=ingest-secret") as ws:
                await ws.send(json.dumps({"type": "chat", "id": "e1", "user": {"id": "u"}, "text": "包邮吗"}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert reply["type"] == "reply", reply
            r = await client.get("/rooms/r1/stats", params={"token": "ingest-secret"})
            assert r.status_code == 200  # not /api: the operator's stats link keeps working
    run(main_())


def test_obs_loads_the_overlay_top_level_and_no_page_can_be_framed(engine):
    """OBS's browser source is a top-level page (CEF), so frame-ancestors 'none' does not touch it: the overlay
    connects under the enforced header CSP; an iframe of /admin or /overlay from another page is blocked."""
    from chromium import launched_browser, live_server_thread

    with live_server_thread(engine, admin_token=TOKEN) as (_app, port), launched_browser() as browser:
        context = browser.new_context(bypass_csp=False)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{port}/overlay?room=obs&layout=obs")
        page.wait_for_selector('#connection-status[data-state="connected"]', state="attached", timeout=30_000)
        page.goto(f"http://127.0.0.1:{port}/admin#token={TOKEN}")
        page.wait_for_selector('[data-testid="serving-version"]', timeout=30_000)
        assert errors == []

        for path in ("/admin", "/overlay?room=obs"):
            framer = context.new_page()
            framer.set_content(f'<iframe src="http://127.0.0.1:{port}{path}" width="800" height="600"></iframe>')
            framer.wait_for_timeout(1500)
            inner = [f for f in framer.frames if f != framer.main_frame]
            assert inner, path
            assert inner[0].evaluate("() => location.href").startswith("chrome-error:"), path
        context.close()


# -- huge ids are a 4xx naming the field ----------------------------------------------------------------------


def test_huge_ids_and_versions_are_422_in_chinese_naming_the_field(engine, tmp_path):
    async def main_() -> None:
        async with serve(engine, tmp_path) as (client, store, _port):
            calls = [
                ("version", client.get(f"{API}/catalog", params={"version": HUGE})),
                ("version", client.post(f"{API}/rollback", content=f'{{"version": {HUGE}}}',
                                        headers={"Content-Type": "application/json"})),
                ("base_version", client.post(f"{API}/rollback", content=f'{{"version": 1, "base_version": {HUGE}}}',
                                             headers={"Content-Type": "application/json"})),
                ("draft_id", client.post(f"{API}/drafts/{HUGE}/publish", json={"answer": "有的"})),
                ("draft_id", client.delete(f"{API}/drafts/{HUGE}")),
                ("base_version", client.post(f"{API}/faqs", content=(
                    '{"id": "x1", "question": "问", "answer": "答", "base_version": ' + HUGE + "}").encode(),
                    headers={"Content-Type": "application/json"})),
            ]
            for field, call in calls:
                r = await call
                assert r.status_code == 422, (field, r.status_code, r.text)
                body = r.json()
                assert body["field"] == field and field in body["error"] and CJK.search(body["error"]), body
                assert "9223372036854775807" in body["error"], body
            r = await client.get(f"{API}/catalog", params={"version": "0"})
            assert r.status_code == 422 and r.json()["field"] == "version"
            r = await client.get(f"{API}/catalog", params={"version": "7"})
            assert r.status_code == 404 and "没有 v7" in r.json()["error"], r.text  # a store error, in Chinese
            assert versions(store) == [1]
    run(main_())


def test_huge_versions_on_the_cli_are_a_clear_error(tmp_path, cache_dir, capsys):
    cfg_path = write_config(tmp_path, cache_dir)
    seed(cfg_path, load_catalog(SHOP_YAML))
    for args in (["knowledge", "export", "--version", HUGE], ["knowledge", "rollback", HUGE],
                 ["knowledge", "rollback", "1", "--base-version", HUGE]):
        code = main(["--config", str(cfg_path), *args])
        err = capsys.readouterr().err
        assert code == 2, (args, err)
        assert "9223372036854775807" in err and "Traceback" not in err and CJK.search(err), err
