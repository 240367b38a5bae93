"""Uploads are parsed in a worker process with caps and budgets: none of it stalls a room.

Caps count YAML aliases expanded (a 226 KB file once stored 209 MB per version); the memory and time
budgets and the worker's replacement after a crash run against the real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import websockets
from test_admin_api import HEADER, POCKET, serve, upload, versions
from test_knowledge_cli import cfg_path, knowledge, store_of, wide_console, write  # noqa: F401 (fixtures)
from test_live_room import chat, eventually, recv_until

from cohost import messages
from cohost.errors import CatalogError
from cohost.knowledge.catalog import FAQ
from cohost.knowledge.parse_worker import ParseWorker, UploadTooLarge, set_default_worker
from cohost.knowledge.uploads import CAPS, parse_upload
from cohost.sources.replay import ingest_url


def variant_bomb() -> bytes:
    """2,000 FAQs with 10 variants each, every variant an alias of one 2,000-character string: 20,000
    aliases in ~226 KB that expand to 40 million characters (the issue's 209 MB version)."""
    lines = ["shop:", "  name: 别名店", "  faqs:"]
    long = "好" * 2000
    for i in range(2000):
        refs = ", ".join(["*v"] * 10)
        first = f"&v {long}" if i == 0 else None
        variants = f"[{first}, {', '.join(['*v'] * 9)}]" if first else f"[{refs}]"
        lines.append(f"    - {{id: f{i}, question: 问{i}, answer: 答{i}, variants: {variants}}}")
    return ("\n".join(lines) + "\n").encode()


def faq_list_bomb() -> bytes:
    """1,500 products that each alias the same 14 FAQs: 21,000 FAQs from a 60 KB file."""
    lines = ["anchors:"]
    for k in range(14):
        lines.append(f"  - &f{k} {{id: faq{k}, question: 问题{k}, answer: 回答{k}}}")
    lines += ["shop:", "  name: 别名店", "products:"]
    refs = ", ".join(f"*f{k}" for k in range(14))
    lines += [f"  - {{id: p{i}, name: 商品{i}, faqs: [{refs}]}}" for i in range(1500)]
    return ("\n".join(lines) + "\n").encode()


def big_csv(rows: int) -> bytes:
    return (HEADER + "".join(f",bulk{i},问题{i}？,回答{i}。,\n" for i in range(rows))).encode()


def hungry_json() -> bytes:
    """An 18 MB document of six million empty lists: the C JSON parser builds them in a second or two, and
    they need far more than 400 MB (each list is an object of its own)."""
    return ('{"shop": {"name": "店"}, "padding": [' + "[]," * 6_000_000 + "[]]}").encode()


def slow_yaml() -> bytes:
    """An 18 MB document of six million tiny values: loading it takes the YAML parser far longer than the
    budgets below, and far more memory than 400 MB."""
    return ("shop:\n  name: 店\npadding: [" + "a, " * 6_000_000 + "a]\n").encode()


@pytest.fixture
def worker_with():
    """Make the process's upload worker one with other budgets for this test."""
    made: list[ParseWorker] = []

    def make(**kw) -> ParseWorker:
        worker = ParseWorker(**kw)
        made.append(worker)
        set_default_worker(worker)
        return worker

    old = set_default_worker(None)
    yield make
    set_default_worker(old)
    for w in made:
        w.close()


# -- caps that count aliases expanded -------------------------------------------------------------------


def test_an_alias_bomb_of_variants_is_refused_naming_the_size_cap():
    data = variant_bomb()
    assert len(data) < 240_000 and data.count(b"*v") == 19_999
    with pytest.raises(UploadTooLarge) as e:
        parse_upload(data, "bomb.yaml", None)
    message = messages.message(e.value.problems[0].message)  # as /admin says it
    assert "总字数" in message and f"{CAPS.total_chars:,}" in message and "别名" in message


def test_an_alias_bomb_of_faqs_is_refused_naming_the_faq_cap():
    with pytest.raises(UploadTooLarge) as e:
        parse_upload(faq_list_bomb(), "bomb.yml", None)
    message = messages.message(e.value.problems[0].message)
    assert "FAQ 总数" in message and f"{CAPS.faqs:,}" in message


def test_a_100k_row_csv_is_refused_at_the_row_cap(catalog):
    with pytest.raises(UploadTooLarge) as e:
        parse_upload(big_csv(100_000), "bulk.csv", catalog)
    message = messages.message(e.value.problems[0].message)
    assert "FAQ 行数" in message and f"{CAPS.faqs:,}" in message


def test_faq_rows_that_take_the_catalog_over_the_cap_are_refused(catalog):
    # The file alone is under the row cap; with the FAQs already live it is not.
    full = catalog.with_faqs([(None, FAQ(id=f"old{i}", question=f"旧问题{i}", answer="旧回答"))
                              for i in range(CAPS.faqs - catalog.faq_count() - 1)])
    with pytest.raises(UploadTooLarge) as e:
        parse_upload(big_csv(5), "bulk.csv", full)
    assert "FAQ 总数" in messages.message(e.value.problems[0].message)


def test_a_field_over_its_length_is_a_problem_with_its_place_not_a_cap():
    data = ("shop:\n  name: 店\n  faqs:\n    - {id: a, question: 问, answer: " + "长" * 2500 + "}\n").encode()
    with pytest.raises(CatalogError) as e:
        parse_upload(data, "long.yaml", None)
    assert not isinstance(e.value, UploadTooLarge)
    assert e.value.problems[0].where == "shop.faqs[0].answer" and "2,000" in e.value.problems[0].message


slow = pytest.mark.slow


@slow
def test_an_alias_bomb_upload_is_413_and_writes_nothing(engine, tmp_path):
    async def main():
        async with serve(engine, tmp_path) as (client, store):
            for name, data in (("bomb.yaml", variant_bomb()), ("bomb2.yaml", faq_list_bomb())):
                for dry_run in (True, False):
                    r = await upload(client, data, name, dry_run=dry_run)
                    assert r.status_code == 413, r.text
                    assert "over the cap" in r.json()["problems"][0]["message"]
            r = await upload(client, big_csv(100_000), "bulk.csv", dry_run=True)
            assert r.status_code == 413 and "FAQ rows over the cap" in r.json()["problems"][0]["message"]
            # this client asks for English; /admin's default is Chinese, naming the cap the same way
            r = await client.post("/api/shops/default/catalog/upload", params={"filename": "bomb.yaml", "dry_run": True},
                                  content=variant_bomb(), headers={"Accept-Language": "zh-CN"})
            assert r.status_code == 413
            problem = r.json()["problems"][0]
            assert "超过上限" in problem["message"] and "over the cap" in problem["message_en"]
            assert versions(store) == [1]
    asyncio.run(main())


# -- budgets, and the room meanwhile --------------------------------------------------------------------


@slow
def test_an_upload_over_the_time_budget_is_413_while_the_room_keeps_answering(engine, tmp_path, worker_with):
    worker = worker_with(time_s=8)

    async def main():
        async with serve(engine, tmp_path) as (client, store):
            port = client.base_url.port
            pending = asyncio.create_task(upload(client, slow_yaml(), "big.yaml", dry_run=True))
            await eventually(lambda: worker.busy, within_s=60, what="the parse to start")
            async with websockets.connect(ingest_url("127.0.0.1", port, "budget")) as ws:
                await ws.send(chat(1, "包邮吗"))
                reply = await recv_until(ws, lambda m: m["type"] == "reply", within_s=30)
            health = await client.get("/healthz")
            # Both while the upload was still being parsed: the parse holds no lock the room needs.
            assert not pending.done()
            assert reply["in_reply_to"] == "e1" and health.status_code == 200
            r = await pending
            assert r.status_code == 413, r.text
            [problem] = r.json()["problems"]
            # Raised in English (this client asks for it), said in Chinese by the messages catalog.
            assert "8 s limit" in problem["message"] and "超过 8 秒" in messages.message(problem["message"]), problem
            assert versions(store) == [1]
            # The worker that was killed at the budget is replaced for the next upload.
            r = await upload(client, (HEADER + POCKET).encode(), "faqs.csv", dry_run=True)
            assert r.status_code == 200 and r.json()["diff"]["counts"]["added"] == 1, r.text
            assert worker.started == 2
    asyncio.run(main())


@slow
def test_an_upload_over_the_memory_budget_is_413_and_the_worker_is_replaced(engine, tmp_path, worker_with):
    worker = worker_with(memory_bytes=400 * 1024 ** 2)

    async def main():
        async with serve(engine, tmp_path) as (client, store):
            # JSON, not YAML: the pure-Python YAML parser reaches 400 MB only after tens of seconds, and on a
            # busy machine the 120 s time budget can come first.
            r = await client.post("/api/shops/default/catalog/upload", params={"filename": "big.json", "dry_run": "true"},
                                  content=hungry_json(), timeout=120)
            assert r.status_code == 413, r.text
            assert "400 MB memory limit" in r.json()["problems"][0]["message"], r.text
            health = await client.get("/healthz")
            assert health.status_code == 200
            r = await upload(client, (HEADER + POCKET).encode(), "faqs.csv")
            assert r.status_code == 200, r.text
            assert versions(store) == [2, 1] and worker.started == 2
    asyncio.run(main())


@slow
def test_a_worker_killed_mid_parse_is_replaced_and_the_next_upload_works(engine, tmp_path, worker_with):
    worker = worker_with()

    async def main():
        async with serve(engine, tmp_path) as (client, store):
            pending = asyncio.create_task(upload(client, slow_yaml(), "big.yaml", dry_run=True))
            await eventually(lambda: worker.busy, within_s=60, what="the parse to start")
            pid = worker.pid
            assert pid is not None and pid != os.getpid()
            os.kill(pid, signal.SIGKILL)
            r = await pending
            assert r.status_code == 422 and "exited unexpectedly" in r.json()["problems"][0]["message"], r.text
            r = await upload(client, (HEADER + POCKET).encode(), "faqs.csv")
            assert r.status_code == 200, r.text
            assert versions(store) == [2, 1]
            assert worker.started == 2 and worker.pid not in (None, pid)
    asyncio.run(main())


@slow
def test_the_cli_import_uses_the_same_caps(capsys, cfg_path, tmp_path):  # noqa: F811 (the imported fixture)
    bomb = write(tmp_path, "bomb.yml", faq_list_bomb())
    for dry_run in (("--dry-run",), ()):
        code, _out, err = knowledge(capsys, cfg_path, "import", str(bomb), *dry_run)
        assert code == 2 and "FAQs in all over the cap" in err and f"{CAPS.faqs:,}" in err, err  # (--lang en)
    assert store_of(cfg_path).versions("default") == []
