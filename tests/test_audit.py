"""The audit log on its own (no models): recording, searching, paging, CSV export, forgetting viewer texts."""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
from pathlib import Path

import pytest

from cohost.knowledge import audit as audit_module
from cohost.knowledge.audit import CSV_COLUMNS, OUTCOMES, AuditError, AuditLog, AuditRow
from cohost.knowledge.store import CatalogStore

SHOP = "s1"
T0 = 1_700_000_000.0


def row(i: int, text: str = "", **kw) -> AuditRow:
    fields = {"ts": T0 + i, "shop": SHOP, "room": "r1", "outcome": "sent", "text": text or f"回复 {i}", **kw}
    return AuditRow(**fields)


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "catalog.sqlite3")


def texts(rows: list[dict]) -> list[str]:
    return [r["text"] for r in rows]


def test_shares_the_store_file_and_keeps_every_field(tmp_path):
    store = CatalogStore(tmp_path / "catalog.sqlite3")
    log = AuditLog(store.path)
    log.record([AuditRow(ts=T0, shop=SHOP, room="live", outcome="rewritten", text="@小王 有XL码",
                         kind="chat", original="@小王 最大码有XL", entry_id="dress_plus", rule="ad_law:最",
                         detail="最 → removed", actor=None, viewer_texts=("有大码吗", "有XL吗"),
                         viewers=(("u1", "小王"), ("u2", "小李")), handle="h-1")])
    rows, total = log.search(SHOP)
    assert total == 1
    r = rows[0]
    assert r["id"] >= 1 and r["ts"] == T0 and r["shop"] == SHOP and r["room"] == "live"
    assert (r["outcome"], r["text"], r["original"]) == ("rewritten", "@小王 有XL码", "@小王 最大码有XL")
    assert (r["entry_id"], r["rule"], r["detail"], r["actor"]) == ("dress_plus", "ad_law:最", "最 → removed", None)
    assert (r["kind"], r["handle"]) == ("chat", "h-1")
    assert r["viewer_texts"] == ["有大码吗", "有XL吗"]
    assert r["viewers"] == [{"id": "u1", "name": "小王"}, {"id": "u2", "name": "小李"}]
    assert store.versions(SHOP) == []  # the store's own tables are untouched and still usable
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {r[1] for r in db.execute("PRAGMA index_list(audit)")}
        assert "audit_shop_ts" in indexes
        assert [r[2] for r in db.execute("PRAGMA index_info(audit_shop_ts)")] == ["shop", "ts"]


def test_rows_without_viewers_store_null(log):
    log.record([row(1, kind="talking_point")])
    (r,), _ = log.search(SHOP)
    assert r["viewer_texts"] is None and r["viewers"] is None and r["kind"] == "talking_point"


def test_a_bad_row_refuses_the_whole_batch(log):
    with pytest.raises(AuditError, match="未知的结果") as e:
        log.record([row(1), row(2, outcome="shouted")])
    assert e.value.field == "outcome"
    with pytest.raises(AuditError, match="未知的类型"):
        log.record([row(3, kind="email")])
    assert log.search(SHOP) == ([], 0)
    log.record([])  # nothing to do
    # the table itself refuses an unknown outcome, whoever writes it
    with sqlite3.connect(log.path) as db, pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO audit (ts, shop, room, outcome, text, kind) VALUES (1, 's', 'r', 'nope', 't', 'chat')")


def test_every_outcome_is_accepted(log):
    log.record([row(i, outcome=o) for i, o in enumerate(OUTCOMES)])
    for o in OUTCOMES:
        rows, total = log.search(SHOP, outcome=o)
        assert total == 1 and rows[0]["outcome"] == o


def test_newest_first_paging_and_total(log):
    log.record([row(i) for i in range(25)])
    page1, total = log.search(SHOP, limit=10)
    page3, total3 = log.search(SHOP, limit=10, offset=20)
    assert total == total3 == 25
    assert texts(page1) == [f"回复 {i}" for i in range(24, 14, -1)]
    assert texts(page3) == [f"回复 {i}" for i in range(4, -1, -1)]
    assert log.search(SHOP, limit=10, offset=30) == ([], 25)
    # equal timestamps: the later insert first, and paging neither repeats nor skips a row
    log.record([row(100, f"同时 {k}") for k in range(5)])
    seen = [r["id"] for off in range(0, 30, 7) for r in log.search(SHOP, limit=7, offset=off)[0]]
    assert len(seen) == len(set(seen)) == 30
    assert texts(log.search(SHOP, limit=2)[0]) == ["同时 4", "同时 3"]


def test_filters_shop_outcome_room_and_time(log):
    log.record([row(0), row(1, outcome="blocked", room="r2"), row(2, outcome="held", room="r2"),
                row(3, shop="other"), row(4, outcome="blocked")])
    assert log.search(SHOP)[1] == 4
    assert log.search("other")[1] == 1
    assert texts(log.search(SHOP, outcome="blocked")[0]) == ["回复 4", "回复 1"]
    assert texts(log.search(SHOP, room="r2")[0]) == ["回复 2", "回复 1"]
    assert texts(log.search(SHOP, room="r2", outcome="held")[0]) == ["回复 2"]
    assert texts(log.search(SHOP, since=T0 + 1, until=T0 + 4)[0]) == ["回复 2", "回复 1"]  # since in, until out
    assert log.search(SHOP, since=T0 + 10) == ([], 0)
    with pytest.raises(AuditError) as e:
        log.search(SHOP, outcome="lost")
    assert e.value.field == "outcome"
    with pytest.raises(AuditError):
        log.search(SHOP, limit=0)
    with pytest.raises(AuditError):
        log.search(SHOP, offset=-1)


def test_q_searches_every_text_column(log):
    log.record([row(0, "包邮的"), row(1, original="原来说最便宜"), row(2, rule="ad_law:第一"),
                row(3, entry_id="dress_wash"), row(4, actor="overlay:小助理"),
                row(5, viewer_texts=("能机洗吗",)), row(6, detail="not searched: 隐藏")])
    assert texts(log.search(SHOP, q="包邮")[0]) == ["包邮的"]
    assert texts(log.search(SHOP, q="最便宜")[0]) == ["回复 1"]
    assert texts(log.search(SHOP, q="ad_law")[0]) == ["回复 2"]
    assert texts(log.search(SHOP, q="DRESS_WASH")[0]) == ["回复 3"]  # ASCII case does not matter
    assert texts(log.search(SHOP, q="小助理")[0]) == ["回复 4"]
    assert texts(log.search(SHOP, q="机洗")[0]) == ["回复 5"]
    assert log.search(SHOP, q="隐藏")[1] == 0
    assert log.search(SHOP, q="   ")[1] == 7  # blank: no filter


def test_q_treats_like_wildcards_as_text(log):
    log.record([row(0, "满100%退款"), row(1, "满100元"), row(2, "a_b"), row(3, "axb"), row(4, r"c\d"), row(5, "cd")])
    assert texts(log.search(SHOP, q="100%")[0]) == ["满100%退款"]
    assert texts(log.search(SHOP, q="a_b")[0]) == ["a_b"]
    assert texts(log.search(SHOP, q="%")[0]) == ["满100%退款"]
    assert texts(log.search(SHOP, q=r"c\d")[0]) == [r"c\d"]
    assert texts(log.search(SHOP, q="_")[0]) == ["a_b"]


def read_csv(lines) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


def test_csv_has_a_header_newest_first_and_the_filters(log):
    log.record([row(0, "第一条", viewer_texts=("有大码吗",), viewers=(("u1", "小王"),), entry_id="dress_plus"),
                row(1, "第二条", outcome="blocked", rule="ad_law:最"), row(2, "别的店", shop="other")])
    table = read_csv(log.export_csv(SHOP))
    assert table[0] == list(CSV_COLUMNS)
    assert [r[CSV_COLUMNS.index("text")] for r in table[1:]] == ["第二条", "第一条"]
    first = dict(zip(CSV_COLUMNS, table[2], strict=True))
    assert first["viewer_texts"] == "有大码吗" and first["viewers"] == "小王 (u1)" and first["entry_id"] == "dress_plus"
    assert first["outcome"] == "sent" and first["ts"] == f"{T0:.3f}" and first["time"].startswith("2023-11-1")
    blocked = read_csv(log.export_csv(SHOP, outcome="blocked"))
    assert [r[CSV_COLUMNS.index("rule")] for r in blocked[1:]] == ["ad_law:最"]
    assert read_csv(log.export_csv(SHOP, q="没有这句")) == [list(CSV_COLUMNS)]


def test_csv_filters_are_checked_before_the_first_line(log):
    with pytest.raises(AuditError):
        log.export_csv(SHOP, outcome="bogus")  # not on first next(): the HTTP response has not started yet


def test_csv_neutralises_formulas(log):
    evil = ["=HYPERLINK(\"http://x\",\"点我\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "正常=文本"]
    log.record([row(i, t, viewer_texts=(t,), actor=t) for i, t in enumerate(evil)])
    table = read_csv(log.export_csv(SHOP))
    got = {r[CSV_COLUMNS.index("text")]: r for r in table[1:]}
    for t in evil[:-1]:
        cells = got["'" + t]
        assert cells[CSV_COLUMNS.index("viewer_texts")] == "'" + t
        assert cells[CSV_COLUMNS.index("actor")] == "'" + t
    assert got["正常=文本"][CSV_COLUMNS.index("text")] == "正常=文本"
    for cells in table[1:]:
        assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells), cells


def test_csv_streams_in_pages_from_any_thread(log, monkeypatch):
    monkeypatch.setattr(audit_module, "_CSV_PAGE", 3)
    log.record([row(i // 2, f"行 {i}") for i in range(10)])  # pairs share a timestamp: the page edge must not split
    lines = log.export_csv(SHOP)
    got: list[str] = [next(lines)]

    def drain() -> None:  # as Starlette does: next() on a worker thread, not the one that made the iterator
        got.extend(lines)
    t = threading.Thread(target=drain)
    t.start()
    t.join()
    table = read_csv(got)
    assert len(table) == 11
    ids = [int(r[0]) for r in table[1:]]
    assert len(set(ids)) == 10
    assert [r[CSV_COLUMNS.index("text")] for r in table[1:]] == [r["text"] for r in log.search(SHOP, limit=20)[0]]


def test_forget_viewer_texts_keeps_the_reply(log):
    log.record([row(0, "旧的", viewer_texts=("我叫张三 电话138",), viewers=(("u1", "张三"),)),
                row(1, "旧的无观众"),
                row(10, "新的", viewer_texts=("有大码吗",), viewers=(("u2", "李四"),)),
                row(2, "别的店", shop="other", viewers=(("u3", "王五"),))])
    assert log.forget_viewer_texts(T0 + 5) == 2  # rows with something to forget, in every shop
    rows = {r["text"]: r for r in log.search(SHOP)[0]}
    assert rows["旧的"]["viewer_texts"] is None and rows["旧的"]["viewers"] is None
    assert rows["旧的"]["outcome"] == "sent" and rows["旧的"]["text"] == "旧的"
    assert rows["新的"]["viewer_texts"] == ["有大码吗"] and rows["新的"]["viewers"] == [{"id": "u2", "name": "李四"}]
    assert log.search("other")[0][0]["viewers"] is None
    assert log.search(SHOP, q="张三")[1] == 0  # gone from search too
    assert log.forget_viewer_texts(T0 + 5) == 0  # nothing left to forget
    with sqlite3.connect(log.path) as db:
        assert db.execute("SELECT COUNT(*) FROM audit WHERE viewer_texts LIKE '%张三%' OR viewers LIKE '%张三%'"
                          ).fetchone()[0] == 0


def test_concurrent_writers_from_threads_lose_nothing(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    store = CatalogStore(path)
    logs = [AuditLog(path) for _ in range(4)]
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for b in range(25):
                logs[w].record([row(w * 1000 + b * 4 + k, f"w{w} b{b} k{k}") for k in range(4)])
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    def gap_writer() -> None:  # the catalog store writes into the same file meanwhile
        from cohost.knowledge.gaps import Gap
        try:
            for i in range(50):
                store.record_gaps(SHOP, [Gap(0, "r1", f"问{i}", f"问{i}", None, "none", T0 + i)])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)] + [threading.Thread(target=gap_writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows, total = logs[0].search(SHOP, limit=1000)
    assert total == 400 and len({r["text"] for r in rows}) == 400
    assert len(store.open_gaps(SHOP, since=0)) == 50
