"""`cohost knowledge import|export|versions|rollback|gaps` through the real CLI entry point, on a store in tmp_path.

Imports and rollbacks build the engine for the new version (a few seconds each with the embedding cache).
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
import yaml
from openpyxl import load_workbook
from rich.console import Console

from cohost.cli import main
from cohost.config import load_config
from cohost.knowledge import manage
from cohost.knowledge.catalog import load_catalog, parse_catalog, parse_faq_csv
from cohost.knowledge.gaps import Gap, cluster_id
from cohost.knowledge.store import CatalogStore

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SHOP_YAML = ROOT / "knowledge" / "shop.yaml"
SHOP = "default"
HEADER = "product_id,id,question,answer,variants\n"
POCKET = "dress,dress_pocket,有口袋吗？,两侧各有一个隐形口袋。,有兜吗|带口袋吗\n"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich wraps and truncates at 80 columns when it does not write to a terminal; tables would be cut."""
    monkeypatch.setattr(manage, "out", Console(highlight=False, width=250))
    monkeypatch.setattr(manage, "err", Console(stderr=True, highlight=False, width=250))


@pytest.fixture
def cfg_path(tmp_path: Path, cache_dir: Path) -> Path:
    return write_config(tmp_path, cache_dir)


def write_config(tmp_path: Path, cache_dir: Path, **store: object) -> Path:
    # The session's embedding cache keeps builds quick; everything else stays at the defaults.
    path = tmp_path / "config.yaml"
    doc = {"cache_dir": str(cache_dir), "store": {"path": str(tmp_path / "db" / "catalog.sqlite3"), **store}}
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def store_of(cfg_path: Path) -> CatalogStore:
    cfg = load_config(cfg_path)
    return CatalogStore(cfg.resolve(cfg.store.path))


def knowledge(capsys, cfg_path: Path, *args: str) -> tuple[int, str, str]:
    # English: these match the messages as raised; the Chinese default is in test_owner_small_things.py.
    code = main(["--config", str(cfg_path), "--lang", "en", "knowledge", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def seeded(cfg_path: Path) -> CatalogStore:
    """The sample catalog as v1 (ready), written straight into the store: no engine build needed."""
    store = store_of(cfg_path)
    info, _ = store.commit(SHOP, lambda _old: load_catalog(SHOP_YAML), author="test", note="seed")
    store.mark(SHOP, info.version, "ready")
    return store


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def test_import_catalog_makes_v1_ready(capsys, cfg_path):
    code, out, err = knowledge(capsys, cfg_path, "import", str(SHOP_YAML))
    assert code == 0, err
    expected = load_catalog(SHOP_YAML)
    assert f"default v1 is ready ({expected.faq_count()} FAQs, {len(expected.products)} products)" in out
    assert f"FAQs: {expected.faq_count()} added" in out and "+ dress_plus (dress)" in out
    store = store_of(cfg_path)
    v1 = store.version(SHOP, 1)
    assert (v1.status, v1.author, v1.note) == ("ready", "cli", "import shop.yaml")
    assert store.serving(SHOP).version == 1
    assert store.catalog(SHOP, 1) == expected
    assert [v.version for v in store.versions(SHOP)] == [1]


def test_import_faq_csv_adds_a_version(capsys, cfg_path, seeded, tmp_path):
    csv = write(tmp_path, "faqs.csv", HEADER + POCKET)
    code, out, err = knowledge(capsys, cfg_path, "import", str(csv))
    assert code == 0, err
    assert "FAQs: 1 added, 0 changed, 0 removed" in out and "+ dress_pocket (dress) 有口袋吗？" in out
    assert "default v2 is ready" in out
    assert seeded.serving(SHOP).version == 2
    v2 = seeded.catalog(SHOP, 2)
    pocket = next(f for f in v2.product("dress").faqs if f.id == "dress_pocket")
    assert (pocket.question, pocket.answer, pocket.variants) == ("有口袋吗？", "两侧各有一个隐形口袋。",
                                                                 ("有兜吗", "带口袋吗"))
    assert v2.faq_count() == seeded.catalog(SHOP, 1).faq_count() + 1
    assert seeded.catalog(SHOP, 1) == load_catalog(SHOP_YAML)  # v1 is untouched


def test_faq_rows_into_a_fresh_store_start_from_the_config_catalog(capsys, cfg_path, tmp_path):
    """What `cohost run` would serve first is the config's catalog: a CSV imported before the server ever
    ran is added to it (it was refused), and its dry run does not create the store file."""
    config_catalog = load_catalog(load_config(cfg_path).catalog)
    store_file = load_config(cfg_path).resolve(load_config(cfg_path).store.path)
    csv = write(tmp_path, "faqs.csv", HEADER + POCKET)
    code, out, err = knowledge(capsys, cfg_path, "import", str(csv), "--dry-run")
    assert code == 0, err
    assert "FAQs: 1 added, 0 changed, 0 removed" in out and "has no version of shop default yet" in err
    assert not store_file.exists()
    bad = write(tmp_path, "bad.csv", HEADER + "dress,dress_empty,空答案？, ,\n")
    assert knowledge(capsys, cfg_path, "import", str(bad))[0] == 2
    assert not store_file.exists()  # refused: nothing written, not even an empty store

    code, out, err = knowledge(capsys, cfg_path, "import", str(csv))
    assert code == 0, err
    assert "default v1 is ready" in out
    v1 = store_of(cfg_path).catalog(SHOP, 1)
    assert v1.faq_count() == config_catalog.faq_count() + 1
    assert [p.id for p in v1.products] == [p.id for p in config_catalog.products]
    assert any(f.id == "dress_pocket" for f in v1.product("dress").faqs)


def test_dry_run_changes_nothing(capsys, cfg_path, seeded, tmp_path):
    csv = write(tmp_path, "faqs.csv", HEADER + POCKET)
    before = seeded.path.read_bytes()
    code, out, err = knowledge(capsys, cfg_path, "import", str(csv), "--dry-run")
    assert code == 0, err
    assert "+ dress_pocket" in out and "dry run: nothing was changed" in out
    assert "ready" not in out
    assert [v.version for v in seeded.versions(SHOP)] == [1]
    assert seeded.path.read_bytes() == before


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig"], ids=["excel-gb18030", "utf8-bom"])
def test_import_csv_as_excel_saves_it(capsys, cfg_path, seeded, tmp_path, encoding):
    # Excel writes CRLF line ends, and GB18030 (the Chinese system code page) or UTF-8 with a BOM.
    text = (HEADER + POCKET + ",ship_sf,能发顺丰吗？,可以补差价发顺丰，拍下后联系客服。,\n").replace("\n", "\r\n")
    csv = write(tmp_path, "faqs.csv", text.encode(encoding))
    code, out, err = knowledge(capsys, cfg_path, "import", str(csv))
    assert code == 0, err
    assert "FAQs: 2 added" in out and "default v2 is ready" in out
    v2 = seeded.catalog(SHOP, 2)
    pocket = next(f for f in v2.product("dress").faqs if f.id == "dress_pocket")
    assert pocket.question == "有口袋吗？" and pocket.variants == ("有兜吗", "带口袋吗")
    sf = next(f for f in v2.shop.faqs if f.id == "ship_sf")
    assert sf.answer == "可以补差价发顺丰，拍下后联系客服。"


def test_bad_rows_exit_2_with_every_problem_and_write_nothing(capsys, cfg_path, seeded, tmp_path):
    csv = write(tmp_path, "bad.csv", HEADER
                + POCKET                                        # row 2: fine
                + "dress,dress_empty,空答案？, ,\n"             # row 3: blank answer
                + "no_such,x_unknown,问题,答案,\n"               # row 4: unknown product
                + "dress,x_short,只有三列\n"                     # row 5: wrong column count
                + "dress,dress_pocket,重复？,重复的id。,\n"       # row 6: duplicate id
                + "dress,Bad Id,问题,答案,\n")                   # row 7: id pattern
    code, out, err = knowledge(capsys, cfg_path, "import", str(csv))
    assert code == 2
    assert "5 problem(s) found" in err
    for needle in ("row 3 field 'answer'", "row 4 field 'product_id': unknown product 'no_such'",
                   "row 5: expected 5 columns, got 3", "row 6 field 'id': duplicate FAQ id 'dress_pocket'",
                   "row 7 field 'id'"):
        assert needle in err, needle
    assert "bad.csv: row 2" not in err
    assert [v.version for v in seeded.versions(SHOP)] == [1]
    # --dry-run reports the same problems, with the same exit code.
    code, _out, err = knowledge(capsys, cfg_path, "import", str(csv), "--dry-run")
    assert code == 2 and "5 problem(s) found" in err


def test_file_over_the_upload_limit_is_refused(capsys, tmp_path, cache_dir):
    cfg_path = write_config(tmp_path, cache_dir, max_upload_bytes=2048)
    big = write(tmp_path, "big.csv", HEADER + POCKET * 1 + "".join(
        f",faq_{i},问题{i}？,答案{i}。,\n" for i in range(100)))
    assert big.stat().st_size > 2048
    code, out, err = knowledge(capsys, cfg_path, "import", str(big))
    assert code == 2
    assert f"file is {big.stat().st_size} bytes; the limit is 2048 bytes (store.max_upload_bytes)" in err
    assert "ready" not in out
    assert store_of(cfg_path).versions(SHOP) == []
    # Just under the limit is fine: the limit is on size, not on the file kind.
    small = write(tmp_path, "small.yaml", "shop:\n  name: 小店\n")
    code, out, err = knowledge(capsys, cfg_path, "import", str(small))
    assert code == 0, err
    assert "default v1 is ready (0 FAQs, 0 products)" in out


def test_versions_lists_every_version_and_marks_the_serving_one(capsys, cfg_path, seeded):
    seeded.commit(SHOP, lambda c: c, author="alice", note="second")
    seeded.mark(SHOP, 2, "ready")
    seeded.commit(SHOP, lambda c: c, author="bob", note="third")
    seeded.mark(SHOP, 3, "failed", "ModelError: no model")
    code, out, err = knowledge(capsys, cfg_path, "versions")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip().startswith(("│ v", "| v"))]
    assert [line.split()[1] for line in lines] == ["v3", "v2", "v1"]
    assert "v2 ◀ serving" in out and "v1 ◀" not in out and "v3 ◀" not in out
    assert "failed: ModelError: no model" in out and "alice" in out and "second" in out
    faqs = str(seeded.catalog(SHOP, 1).faq_count())
    assert faqs in lines[2]
    # A shop without versions is an error that names the store.
    code, _out, err = knowledge(capsys, cfg_path, "versions", "--shop", "nobody")
    assert code == 2 and "'nobody' has no versions" in err


def export_and_reimport_unchanged(capsys, cfg_path, path: Path) -> None:
    """Export to path, then import it back: the store must say nothing changed."""
    code, _out, err = knowledge(capsys, cfg_path, "export", "--format", path.suffix[1:], "-o", str(path))
    assert code == 0, err
    assert f"wrote {path}" in err
    code, out, err = knowledge(capsys, cfg_path, "import", str(path))
    assert code == 0, err
    assert "nothing changed: default stays at v1" in out


def test_yaml_export_reimports_as_nothing_changed(capsys, cfg_path, seeded, tmp_path):
    path = tmp_path / "out.yaml"
    export_and_reimport_unchanged(capsys, cfg_path, path)
    assert parse_catalog(path.read_text(encoding="utf-8"), "yaml", "x") == seeded.catalog(SHOP, 1)
    assert [v.version for v in seeded.versions(SHOP)] == [1]


def test_json_and_csv_export_to_stdout(capsys, cfg_path, seeded):
    code, out, err = knowledge(capsys, cfg_path, "export", "--format", "json")
    assert code == 0, err
    assert parse_catalog(out, "json", "stdout") == seeded.catalog(SHOP, 1)
    code, out, err = knowledge(capsys, cfg_path, "export", "--format", "csv", "--version", "1")
    assert code == 0, err
    rows = parse_faq_csv(out.lstrip("\ufeff"), "stdout", {p.id for p in seeded.catalog(SHOP, 1).products})
    assert len(rows) == seeded.catalog(SHOP, 1).faq_count()
    code, _out, err = knowledge(capsys, cfg_path, "export", "--format", "xlsx")
    assert code == 2 and "needs -o FILE.xlsx" in err
    code, _out, err = knowledge(capsys, cfg_path, "export", "--version", "9")
    assert code == 2 and "no version 9" in err


def test_xlsx_export_edited_in_excel_imports(capsys, cfg_path, seeded, tmp_path):
    path = tmp_path / "faqs.xlsx"
    export_and_reimport_unchanged(capsys, cfg_path, path)
    # An owner edits one answer and adds a row, then imports the workbook.
    wb = load_workbook(path)
    ws = wb.active
    row = next(r for r in ws.iter_rows(min_row=2) if r[1].value == "dress_plus")
    row[3].value = "现在有XXL和3XL了。"
    ws.append(["dress", "dress_pocket", "有口袋吗？", "两侧各有一个隐形口袋。", "有兜吗"])
    buf = io.BytesIO()
    wb.save(buf)
    path.write_bytes(buf.getvalue())
    code, out, err = knowledge(capsys, cfg_path, "import", str(path))
    assert code == 0, err
    assert "FAQs: 1 added, 1 changed, 0 removed" in out and "default v2 is ready" in out
    dress = seeded.catalog(SHOP, 2).product("dress")
    assert next(f for f in dress.faqs if f.id == "dress_plus").answer == "现在有XXL和3XL了。"
    assert any(f.id == "dress_pocket" for f in dress.faqs)


def test_rollback_makes_a_new_version_with_the_old_content(capsys, cfg_path, seeded, tmp_path):
    seeded.commit(SHOP, lambda c: c.with_faqs([]).model_copy(update={"products": c.products[:1]}), note="cut")
    seeded.mark(SHOP, 2, "ready")
    assert seeded.catalog(SHOP, 2) != seeded.catalog(SHOP, 1)
    code, out, err = knowledge(capsys, cfg_path, "rollback", "1")
    assert code == 0, err
    assert "default v3 is ready" in out
    v3 = seeded.version(SHOP, 3)
    assert (v3.note, v3.source, v3.based_on, v3.status) == ("rollback to v1", "v1", 2, "ready")
    assert seeded.catalog(SHOP, 3) == seeded.catalog(SHOP, 1)
    assert seeded.catalog(SHOP, 2) != seeded.catalog(SHOP, 1)  # history is not rewritten


def test_rollback_on_a_stale_base_is_refused(capsys, cfg_path, seeded):
    seeded.commit(SHOP, lambda c: c, note="someone else")
    seeded.mark(SHOP, 2, "ready")
    code, out, err = knowledge(capsys, cfg_path, "rollback", "1", "--base-version", "1")
    assert code == 2
    assert "shop 'default' is at version 2, but this change was made on version 1" in err
    assert "ready" not in out
    assert [v.version for v in seeded.versions(SHOP)] == [2, 1]
    code, _out, err = knowledge(capsys, cfg_path, "rollback", "7")
    assert code == 2 and "no version 7" in err


def test_import_with_a_stale_base_is_refused(capsys, cfg_path, seeded, tmp_path):
    seeded.commit(SHOP, lambda c: c, note="someone else")
    csv = write(tmp_path, "faqs.csv", HEADER + POCKET)
    code, _out, err = knowledge(capsys, cfg_path, "import", str(csv), "--base-version", "1")
    assert code == 2 and "is at version 2" in err
    assert [v.version for v in seeded.versions(SHOP)] == [2, 1]


def test_gaps_report_and_draft(capsys, cfg_path, seeded):
    code, out, err = knowledge(capsys, cfg_path, "gaps")
    assert code == 0, err
    assert "no unanswered questions in the last 14 days" in out

    now = time.time()
    seeded.record_gaps(SHOP, [Gap(0, f"room{i % 2}", text, "有口袋吗", "dress", "no_match", now - 60 * i)
                              for i, text in enumerate(["有口袋吗", "有口袋吗？", "有口袋吗", "有没有口袋"])]
                       + [Gap(0, "room0", "老问题", "老问题", None, "no_match", now - 86400 * 30)])
    code, out, err = knowledge(capsys, cfg_path, "gaps")
    assert code == 0, err
    cid = cluster_id("dress", "有口袋吗")
    assert "4 in 1 clusters" in out  # the month-old gap is outside the 14-day window
    row = next(line for line in out.splitlines() if cid in line)
    assert row.split("│")[2].strip() == "4" and "dress" in row
    assert "gaps --draft CLUSTER" in out
    code, out, err = knowledge(capsys, cfg_path, "gaps", "--days", "60")
    assert code == 0 and "5 in 2 clusters" in out

    code, out, err = knowledge(capsys, cfg_path, "gaps", "--draft", cid)
    assert code == 0, err
    [draft] = seeded.drafts(SHOP)
    assert f"draft {draft.id}: 有口袋吗 (4 questions)" in out
    assert (draft.product_id, draft.question, draft.cluster, draft.asked) == ("dress", "有口袋吗", cid, 4)
    assert set(draft.variants) == {"有口袋吗？", "有没有口袋"}
    # The drafted questions leave the report; the same cluster cannot be drafted twice.
    code, out, err = knowledge(capsys, cfg_path, "gaps")
    assert code == 0 and "no unanswered questions" in out
    code, _out, err = knowledge(capsys, cfg_path, "gaps", "--draft", cid)
    assert code == 2 and f"no open gap cluster '{cid}'" in err
    assert len(seeded.drafts(SHOP)) == 1


def test_import_of_a_missing_or_unsupported_file(capsys, cfg_path, seeded, tmp_path):
    code, _out, err = knowledge(capsys, cfg_path, "import", str(tmp_path / "nope.csv"))
    assert code == 2 and "file not found" in err
    txt = write(tmp_path, "faqs.txt", "hello")
    code, _out, err = knowledge(capsys, cfg_path, "import", str(txt))
    assert code == 2 and "unsupported file type .txt" in err
    assert [v.version for v in seeded.versions(SHOP)] == [1]
    bad = write(tmp_path, "broken.json", json.dumps({"shop": {"name": ""}, "products": [{"id": "X"}]}))
    code, _out, err = knowledge(capsys, cfg_path, "import", str(bad))
    assert code == 2 and "shop.name" in err and "products[0]" in err
    assert [v.version for v in seeded.versions(SHOP)] == [1]
