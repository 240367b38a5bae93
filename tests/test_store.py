"""The catalog store on its own (no models): append-only versions, conflicts, concurrency, gaps and drafts."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cohost.errors import CatalogError, Problem
from cohost.knowledge.catalog import FAQ, Catalog, validate_catalog
from cohost.knowledge.gaps import Gap
from cohost.knowledge.store import CatalogStore, StoreError, VersionConflict

ROOT = Path(__file__).resolve().parent.parent
SHOP = "s1"


def small_catalog(name: str = "小店", answer: str = "全场包邮。") -> Catalog:
    return validate_catalog({
        "shop": {"name": name, "faqs": [{"id": "ship_free", "question": "包邮吗", "answer": answer}]},
        "products": [{"id": "dress", "name": "连衣裙", "link": 1, "price": 159,
                      "faqs": [{"id": "dress_plus", "question": "有大码吗", "answer": "有XL。",
                                "variants": ["胖子能穿吗"]}]}],
    }, "test")


def add_faq(faq_id: str, product_id: str | None = None):
    """A change function that adds one FAQ to the head catalog."""
    def change(cat: Catalog | None) -> Catalog:
        assert cat is not None
        return cat.with_faqs([(product_id, FAQ(id=faq_id, question=f"问题 {faq_id}", answer=f"答案 {faq_id}"))])
    return change


def table_counts(path: Path) -> tuple[int, int, int]:
    with sqlite3.connect(path) as db:
        return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("versions", "gaps", "drafts"))


@pytest.fixture
def store(tmp_path: Path) -> CatalogStore:
    return CatalogStore(tmp_path / "store" / "catalog.sqlite3")


@pytest.fixture
def seeded(store: CatalogStore) -> CatalogStore:
    info, _ = store.commit(SHOP, lambda _old: small_catalog(), author="test", note="seed", source="seed.yaml")
    store.mark(SHOP, info.version, "ready")
    return store


# -- versions -------------------------------------------------------------------------------------------


def test_empty_store_has_no_head_serving_or_catalog(store):
    assert store.shops() == [] and store.versions(SHOP) == []
    assert store.head(SHOP) is None and store.serving(SHOP) is None
    with pytest.raises(StoreError, match="no catalog yet"):
        store.catalog(SHOP)
    with pytest.raises(StoreError, match="no version 1"):
        store.version(SHOP, 1)


def test_versions_are_append_only_and_numbered_from_one(store):
    seen_heads = []

    def change(old: Catalog | None) -> Catalog:
        seen_heads.append(old)
        return small_catalog(answer=f"答案{len(seen_heads)}")

    infos = [store.commit(SHOP, change, author="a", note=f"n{i}", source="src")[0] for i in range(3)]
    assert [i.version for i in infos] == [1, 2, 3]
    assert [i.based_on for i in infos] == [None, 1, 2]
    # The change function sees the head as it was: nothing for a new shop, then the previous version.
    assert seen_heads[0] is None
    assert seen_heads[1] == small_catalog(answer="答案1") and seen_heads[2] == small_catalog(answer="答案2")
    assert [v.version for v in store.versions(SHOP)] == [3, 2, 1]  # newest first
    # Earlier versions are untouched by later ones.
    for n in (1, 2, 3):
        assert store.catalog(SHOP, n) == small_catalog(answer=f"答案{n}")
    v2 = store.version(SHOP, 2)
    assert (v2.author, v2.note, v2.source, v2.status, v2.error) == ("a", "n1", "src", "building", None)
    assert (v2.faqs, v2.products) == (2, 1)
    assert v2.to_json()["version"] == 2 and v2.to_json()["shop"] == SHOP
    assert store.shops() == [SHOP]


def test_head_is_newest_and_serving_is_newest_ready(store):
    v1, _ = store.commit(SHOP, lambda _o: small_catalog(answer="一"))
    assert store.head(SHOP).version == 1 and store.serving(SHOP) is None  # building does not serve
    # With nothing ready, catalog() falls back to the head.
    assert store.catalog(SHOP) == small_catalog(answer="一")
    store.mark(SHOP, v1.version, "ready")
    assert store.serving(SHOP).version == 1

    store.commit(SHOP, lambda _o: small_catalog(answer="二"))
    assert store.head(SHOP).version == 2 and store.head(SHOP).status == "building"
    assert store.serving(SHOP).version == 1
    assert store.catalog(SHOP) == small_catalog(answer="一")  # the serving one, not the head

    store.mark(SHOP, 2, "failed", "boom")
    failed = store.version(SHOP, 2)
    assert (failed.status, failed.error) == ("failed", "boom")
    assert store.serving(SHOP).version == 1  # failed never serves
    store.commit(SHOP, lambda _o: small_catalog(answer="三"))
    store.mark(SHOP, 3, "ready")
    assert store.serving(SHOP).version == 3
    # A failed version stays in the history but is never the base of the next change (issue 15).
    assert store.head(SHOP).based_on == 1


def test_mark_refuses_an_unknown_status(seeded):
    with pytest.raises(sqlite3.IntegrityError):
        seeded.mark(SHOP, 1, "published")
    assert seeded.version(SHOP, 1).status == "ready"


def test_catalog_round_trips_exactly(seeded):
    original = validate_catalog({
        "shop": {"name": "小鹿优选", "faqs": [{"id": "a", "question": "发什么快递", "answer": "中通。",
                                             "variants": ["顺丰吗", "😀 emoji"]}]},
        "products": [{"id": "p1", "name": "裙子", "link": 7, "price": 159.9, "aliases": ["碎花裙"],
                      "specs": {"颜色": "蓝", "尺码": "S-XL"}, "selling_points": ["不起球"],
                      "faqs": [{"id": "b", "question": "起球吗", "answer": "不起球。"}]}],
    }, "t")
    info, returned = seeded.commit(SHOP, lambda _o: original)
    assert returned == original
    assert seeded.catalog(SHOP, info.version) == original
    assert seeded.catalog(SHOP, info.version).model_dump() == original.model_dump()
    assert (info.faqs, info.products) == (2, 1)


def test_stale_base_version_raises_conflict_and_writes_nothing(seeded):
    seeded.commit(SHOP, add_faq("x1"), base_version=1)
    before = table_counts(seeded.path)
    called = []

    def change(cat):
        called.append(cat)
        return cat

    with pytest.raises(VersionConflict) as e:
        seeded.commit(SHOP, change, base_version=1)
    assert (e.value.shop, e.value.base, e.value.head) == (SHOP, 1, 2)
    assert "version 2" in str(e.value) and "version 1" in str(e.value)
    assert called == []  # the change is never even computed on a stale base
    assert table_counts(seeded.path) == before
    assert seeded.head(SHOP).version == 2
    # A base ahead of the head is as wrong as one behind it.
    with pytest.raises(VersionConflict):
        seeded.commit(SHOP, change, base_version=5)
    assert isinstance(e.value, StoreError)


def test_new_shop_accepts_base_version_zero_only(store):
    with pytest.raises(VersionConflict):
        store.commit(SHOP, lambda _o: small_catalog(), base_version=1)
    assert store.head(SHOP) is None
    info, _ = store.commit(SHOP, lambda _o: small_catalog(), base_version=0)
    assert info.version == 1


def test_failing_change_writes_nothing(seeded):
    before = table_counts(seeded.path)

    def bad(_cat):
        raise CatalogError([Problem("api", "faqs.x", "answer", "empty")])

    with pytest.raises(CatalogError):
        seeded.commit(SHOP, bad)
    # An invalid result (FAQ on an unknown product) is refused inside the change, also before writing.
    with pytest.raises(CatalogError):
        seeded.commit(SHOP, add_faq("x", product_id="no_such_product"))
    assert table_counts(seeded.path) == before
    assert seeded.head(SHOP).version == 1
    # The store is not left locked: the next writer gets in at once.
    assert seeded.commit(SHOP, add_faq("ok"), base_version=1)[0].version == 2


def test_store_survives_reopen(seeded, tmp_path):
    seeded.commit(SHOP, add_faq("x1"))
    seeded.mark(SHOP, 2, "failed", "bad index")
    seeded.record_gaps(SHOP, [Gap(0, "r1", "有口袋吗", "有口袋吗", "dress", "no_match", time.time())])
    draft = seeded.create_draft(SHOP, product_id=None, question="q", variants=["v"], cluster="c", gap_ids=[])

    again = CatalogStore(seeded.path)
    assert [v.version for v in again.versions(SHOP)] == [2, 1]
    assert again.serving(SHOP).version == 1
    assert again.version(SHOP, 2).error == "bad index"
    assert again.catalog(SHOP, 1) == small_catalog()
    assert [g.text for g in again.open_gaps(SHOP)] == ["有口袋吗"]
    assert again.draft(SHOP, draft.id) == draft
    assert again.commit(SHOP, add_faq("x2"), base_version=2)[0].version == 3


# -- concurrency ----------------------------------------------------------------------------------------


def test_threads_committing_at_once_lose_nothing(seeded):
    """8 threads x 10 commits without base_version: every change lands, versions 2..81 without a gap."""
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(t: int) -> None:
        try:
            start.wait()
            for i in range(10):
                seeded.commit(SHOP, add_faq(f"t{t}_{i}"), author=f"thread{t}")
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors and not any(th.is_alive() for th in threads)

    versions = sorted(v.version for v in seeded.versions(SHOP))
    assert versions == list(range(1, 82))
    for v in seeded.versions(SHOP):
        assert v.based_on == (v.version - 1 if v.version > 1 else None)
        cat = seeded.catalog(SHOP, v.version)  # each document loads and validates
        # Each version holds exactly one FAQ more than the one before: no change overwrote another.
        assert cat.faq_count() == v.faqs == 2 + (v.version - 1)
    final = seeded.catalog(SHOP, 81)
    ids = {f.id for f in final.shop.faqs}
    assert ids >= {f"t{t}_{i}" for t in range(8) for i in range(10)}


CHILD = """
import sys, time
from pathlib import Path
from cohost.knowledge.catalog import FAQ
from cohost.knowledge.store import CatalogStore, VersionConflict

path, go, name = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
store = CatalogStore(path)
print("waiting", flush=True)
while not go.exists():
    time.sleep(0.001)

def change(cat):
    time.sleep(0.3)  # hold the write lock long enough for the other process to queue up behind it
    return cat.with_faqs([(None, FAQ(id=name, question="问题" + name, answer="答案"))])

try:
    info, _ = store.commit("s1", change, base_version=1, author=name)
except VersionConflict as e:
    print("conflict", e.head, flush=True)
else:
    print("ok", info.version, flush=True)
"""


def test_two_processes_with_the_same_base_one_wins_one_conflicts(seeded, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(seeded.path), str(go), name], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("p_a", "p_b")]
    try:
        for p in procs:  # both are started and polling before the gate opens
            assert p.stdout is not None and p.stdout.readline().strip() == "waiting"
        go.touch()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    outcomes = sorted(out.split()[0] for out, _ in results)
    assert outcomes == ["conflict", "ok"], results
    winner = next(out for out, _ in results if out.startswith("ok")).split()
    loser = next(out for out, _ in results if out.startswith("conflict")).split()
    assert winner[1] == "2" and loser[1] == "2"
    assert [v.version for v in seeded.versions(SHOP)] == [2, 1]
    won_faqs = {f.id for f in seeded.catalog(SHOP, 2).shop.faqs} & {"p_a", "p_b"}
    assert len(won_faqs) == 1
    with sqlite3.connect(seeded.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- gaps and drafts ------------------------------------------------------------------------------------


def gap(text: str, ts: float, product_id: str | None = "dress", room: str = "r1") -> Gap:
    return Gap(0, room, text, text.rstrip("?？"), product_id, "no_match", ts)


def test_open_gaps_newest_first_with_since_filter(store):
    now = time.time()
    store.record_gaps(SHOP, [gap("有口袋吗", now - 300), gap("有口袋吗？", now - 100), gap("起球吗", now - 200)])
    store.record_gaps("other", [gap("别家的", now)])
    store.record_gaps(SHOP, [])  # nothing to record is fine

    found = store.open_gaps(SHOP)
    assert [g.text for g in found] == ["有口袋吗？", "起球吗", "有口袋吗"]
    assert len({g.id for g in found}) == 3 and all(g.id > 0 for g in found)
    first = found[0]
    assert (first.room, first.normalized, first.product_id, first.reason) == ("r1", "有口袋吗", "dress", "no_match")
    assert first.ts == pytest.approx(now - 100)
    assert [g.text for g in store.open_gaps(SHOP, since=now - 250)] == ["有口袋吗？", "起球吗"]
    assert [g.text for g in store.open_gaps(SHOP, limit=1)] == ["有口袋吗？"]
    assert [g.text for g in store.open_gaps("other")] == ["别家的"]
    assert store.open_gaps("nobody") == []


def test_drafts_hide_their_gaps_and_close(store):
    now = time.time()
    store.record_gaps(SHOP, [gap("有口袋吗", now - 3), gap("有兜吗", now - 2), gap("起球吗", now - 1)])
    pockets = [g.id for g in store.open_gaps(SHOP) if g.text != "起球吗"]

    d = store.create_draft(SHOP, product_id="dress", question="有口袋吗", variants=["有兜吗"], cluster="abc",
                           gap_ids=pockets)
    assert (d.shop, d.product_id, d.question, d.variants, d.cluster, d.asked, d.status) == (
        SHOP, "dress", "有口袋吗", ("有兜吗",), "abc", 2, "draft")
    assert d.faq_id is None and d.version is None
    assert d.to_json()["variants"] == ["有兜吗"]
    assert [g.text for g in store.open_gaps(SHOP)] == ["起球吗"]  # the drafted gaps left the open list
    assert store.drafts(SHOP) == [d] and store.draft(SHOP, d.id) == d
    assert store.drafts("other") == []
    with pytest.raises(StoreError):
        store.draft("other", d.id)  # drafts belong to their shop

    d2 = store.create_draft(SHOP, product_id=None, question="起球吗", variants=[], cluster="def",
                            gap_ids=[g.id for g in store.open_gaps(SHOP)])
    assert store.open_gaps(SHOP) == []
    assert [x.id for x in store.drafts(SHOP)] == [d2.id, d.id]  # newest first

    store.close_draft(SHOP, d.id, "published", faq_id="dress_pocket", version=7)
    published = store.draft(SHOP, d.id)
    assert (published.status, published.faq_id, published.version) == ("published", "dress_pocket", 7)
    assert store.drafts(SHOP, "published") == [published]
    store.close_draft(SHOP, d2.id, "discarded")
    assert store.drafts(SHOP) == [] and [x.id for x in store.drafts(SHOP, "discarded")] == [d2.id]
    # A discarded draft keeps its gaps: they do not come back to the report.
    assert store.open_gaps(SHOP) == []


def test_unknown_draft_is_a_store_error(store):
    with pytest.raises(StoreError, match="no draft 42"):
        store.draft(SHOP, 42)
    with pytest.raises(StoreError, match="no draft 42"):
        store.close_draft(SHOP, 42, "discarded")
    assert table_counts(store.path) == (0, 0, 0)


def test_create_draft_does_not_take_another_shops_gaps(store):
    store.record_gaps("other", [gap("别家的", time.time())])
    theirs = [g.id for g in store.open_gaps("other")]
    store.create_draft(SHOP, product_id=None, question="q", variants=[], cluster="c", gap_ids=theirs)
    assert [g.text for g in store.open_gaps("other")] == ["别家的"]
