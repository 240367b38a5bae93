"""Excel FAQ uploads, the shared FAQ row rules, catalog diffs and catalog exports."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
import yaml
from openpyxl import Workbook

from cohost.errors import CatalogError, Problem
from cohost.knowledge import catalog as catalog_mod
from cohost.knowledge import spreadsheet
from cohost.knowledge.catalog import (
    CSV_HEADER,
    FAQ,
    decode_text,
    faq_rows,
    load_catalog,
    parse_catalog,
    parse_faq_csv,
    validate_catalog,
)
from cohost.knowledge.diff import diff_catalogs
from cohost.knowledge.export import FORMATS, dump_catalog
from cohost.knowledge.spreadsheet import cell_text, parse_faq_xlsx

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "knowledge" / "shop.yaml"
SRC = "faqs.xlsx"
KNOWN = {"dress", "fryer"}


def xlsx(tmp_path: Path, rows: list[list], *, name: str = "faqs.xlsx") -> bytes:
    """An .xlsx saved by openpyxl whose first sheet holds rows (None leaves a cell empty)."""
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    path = tmp_path / name
    wb.save(path)
    return path.read_bytes()


def rezip(data: bytes, parts: dict[str, bytes]) -> bytes:
    """The same zip with some parts' contents replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, parts.get(info.filename, src.read(info.filename)))
    return out.getvalue()


def problems_of(exc: pytest.ExceptionInfo[CatalogError]) -> list[Problem]:
    assert isinstance(exc.value, CatalogError)
    assert exc.value.problems, "a CatalogError must carry at least one problem"
    return exc.value.problems


def only_problem(data: bytes, **kwargs) -> Problem:
    with pytest.raises(CatalogError) as exc:
        parse_faq_xlsx(data, SRC, **kwargs)
    probs = problems_of(exc)
    assert len(probs) == 1, probs
    assert probs[0].file == SRC
    return probs[0]


def summary(rows: list[tuple[str | None, FAQ]]) -> list[tuple]:
    return [(pid, f.id, f.question, f.answer, f.variants) for pid, f in rows]


# -- XLSX: good files --------------------------------------------------------------------------------------


def test_xlsx_rows_are_read_like_csv_rows(tmp_path):
    """Shop-wide and product rows come back with variants split on |; blank rows and missing trailing cells are fine."""
    data = xlsx(tmp_path, [
        CSV_HEADER,
        [None, "invoice", "能开发票吗？", "可以开电子发票。", "有发票吗|能开票吗"],
        [],
        [None, None, None, None, None],
        ["fryer", "fryer_oil", " 要放油吗？ ", "大部分食物不用放油。", " 要放油吗 | | 无油的吗 "],
        ["dress", "dress_wash", "能机洗吗？", "建议手洗。"],
    ])
    rows = parse_faq_xlsx(data, SRC, KNOWN)
    assert summary(rows) == [
        (None, "invoice", "能开发票吗？", "可以开电子发票。", ("有发票吗", "能开票吗")),
        ("fryer", "fryer_oil", "要放油吗？", "大部分食物不用放油。", ("要放油吗", "无油的吗")),
        ("dress", "dress_wash", "能机洗吗？", "建议手洗。", ()),
    ]


def test_xlsx_numeric_and_date_cells_become_text(tmp_path):
    """Numbers lose a trailing .0 only when whole, dates print as ISO dates, and an upper-case header still matches."""
    data = xlsx(tmp_path, [
        [h.upper() for h in CSV_HEADER],
        [None, 2024, 12.0, 3.5, 100],
        [None, "sale_day", "哪天开售？", dt.datetime(2024, 5, 1), "开售|几号"],
        [None, "sale_time", "几点开始？", dt.datetime(2024, 5, 1, 20, 30), 0.25],
    ])
    rows = parse_faq_xlsx(data, SRC)
    assert summary(rows) == [
        (None, "2024", "12", "3.5", ("100",)),
        (None, "sale_day", "哪天开售？", "2024-05-01", ("开售", "几号")),
        (None, "sale_time", "几点开始？", "2024-05-01 20:30:00", ("0.25",)),
    ]


@pytest.mark.parametrize(("value", "text"), [
    (None, ""), (7, "7"), (7.0, "7"), (-3.0, "-3"), (0.1, "0.1"), (1e20, "100000000000000000000"),
    (True, "TRUE"), (dt.date(2024, 1, 2), "2024-01-02"), (dt.time(9, 5), "09:05:00"), ("  x ", "  x "),
])
def test_cell_text(value, text):
    """Each kind of cell value turns into the text Excel shows for it."""
    assert cell_text(value) == text


def test_xlsx_reads_the_first_worksheet_not_the_active_one(tmp_path):
    """FAQs come from the first sheet even when another sheet is the one Excel opens on."""
    wb = Workbook()
    first = wb.active
    first.append(CSV_HEADER)
    first.append([None, "first", "问？", "答。", None])
    other = wb.create_sheet("notes")
    other.append(["just", "notes"])
    wb.active = 1
    path = tmp_path / "two.xlsx"
    wb.save(path)
    assert [f.id for _, f in parse_faq_xlsx(path.read_bytes(), SRC)] == ["first"]


def test_xlsx_with_a_wrong_stored_dimension_is_read_in_full(tmp_path):
    """A sheet whose stored dimension claims A1:A1 (some tools write that) still gives every row."""
    data = xlsx(tmp_path, [CSV_HEADER, [None, "a", "问一？", "答一。"], [None, "b", "问二？", "答二。"]])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert '<dimension ref="A1:E3"' in sheet
    data = rezip(data, {"xl/worksheets/sheet1.xml": sheet.replace('ref="A1:E3"', 'ref="A1:A1"').encode()})
    assert [f.id for _, f in parse_faq_xlsx(data, SRC)] == ["a", "b"]


def test_xlsx_text_that_looks_like_a_formula_is_kept(tmp_path):
    """Formulas are read as their last calculated value; a cell without one counts as empty."""
    wb = Workbook()
    ws = wb.active
    ws.append(CSV_HEADER)
    ws.append([None, "calc", "问？", "=1+1", None])  # openpyxl stores a formula with no cached value
    path = tmp_path / "f.xlsx"
    wb.save(path)
    p = only_problem(path.read_bytes())
    assert (p.where, p.field) == ("row 2", "answer")


# -- XLSX: row problems ------------------------------------------------------------------------------------


def test_all_xlsx_row_problems_are_reported_with_excel_row_numbers(tmp_path):
    """Empty answer, duplicate id, unknown product and a bad id are all reported, each at its Excel row."""
    data = xlsx(tmp_path, [
        CSV_HEADER,
        ["dress", "dress_wash", "能机洗吗？", "建议手洗。", None],
        ["dress", "dress_iron", "能熨吗？", "   ", None],
        [],
        ["fryer", "dress_wash", "好洗吗？", "好洗。", None],
        ["nope", "nope_q", "问？", "答。", None],
        ["fryer", "Bad Id", "问？", "答。", None],
        ["fryer", "fryer_ok", "问？", "答。", None],
    ])
    with pytest.raises(CatalogError) as exc:
        parse_faq_xlsx(data, SRC, KNOWN)
    probs = problems_of(exc)
    assert [(p.file, p.where, p.field) for p in probs] == [
        (SRC, "row 3", "answer"),
        (SRC, "row 5", "id"),
        (SRC, "row 6", "product_id"),
        (SRC, "row 7", "id"),
    ]
    assert "row 2" in probs[1].message and "dress_wash" in probs[1].message
    assert "nope" in probs[2].message
    assert str(exc.value).startswith("4 problem(s)")


def test_xlsx_wrong_header_is_reported_at_row_1(tmp_path):
    """A sheet whose first row is not the FAQ header is rejected at row 1, naming the expected header."""
    p = only_problem(xlsx(tmp_path, [["product", "id", "q", "a", "variants"], ["dress", "x", "问？", "答。"]]))
    assert (p.where, p.field) == ("row 1", None)
    assert ",".join(CSV_HEADER) in p.message and "product,id,q,a,variants" in p.message


def test_xlsx_extra_filled_column_is_reported(tmp_path):
    """A value in a sixth column is a column count problem; empty cells after the fifth are not."""
    data = xlsx(tmp_path, [
        CSV_HEADER,
        ["dress", "a", "问？", "答。", None, None, None],
        ["dress", "b", "问？", "答。", None, "备注"],
    ])
    p = only_problem(data)
    assert (p.where, p.field) == ("row 3", None)
    assert "expected 5 columns, got 6" in p.message


def test_empty_xlsx_is_reported(tmp_path):
    """A workbook with an empty first sheet asks for the header."""
    p = only_problem(xlsx(tmp_path, []))
    assert p.where == "row 1" and "header" in p.message


def test_too_many_xlsx_rows_are_refused(tmp_path, monkeypatch):
    """More FAQ rows than MAX_ROWS are refused with one problem; exactly MAX_ROWS load."""
    monkeypatch.setattr(spreadsheet, "MAX_ROWS", 3)
    rows = [[None, f"q{i}", "问？", "答。"] for i in range(4)]
    assert len(parse_faq_xlsx(xlsx(tmp_path, [CSV_HEADER, *rows[:3], [], []], name="ok.xlsx"), SRC)) == 3
    p = only_problem(xlsx(tmp_path, [CSV_HEADER, *rows[:2], [], *rows[2:]], name="big.xlsx"))
    assert p.where == "row 6"
    assert "more than 3" in p.message


def test_max_rows_is_twenty_thousand():
    assert spreadsheet.MAX_ROWS == 20_000


# -- XLSX: files that are not good spreadsheets --------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, this is not a spreadsheet", b"PK\x03\x04broken", bytes(range(256)) * 4])
def test_garbage_is_not_an_xlsx(data):
    """Bytes that are not a zip at all are refused as not an .xlsx file."""
    p = only_problem(data)
    assert p.where == "(file)" and p.message == "not an Excel .xlsx file"


def test_zip_that_is_not_an_office_file_is_refused():
    """A valid zip without the Office content-types part is not an .xlsx file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    assert only_problem(buf.getvalue()).message == "not an Excel .xlsx file"


def test_old_xls_file_is_refused():
    """A file with the OLE header of the old .xls format is refused with a hint to save as .xlsx."""
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Workbook"
    p = only_problem(data)
    assert ".xls" in p.message and ".xlsx" in p.message


def test_xlsb_file_is_refused():
    """An Excel binary workbook (.xlsb) is named as such."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.bin", b"\x00\x01")
    assert ".xlsb" in only_problem(buf.getvalue()).message


def test_zip_bomb_is_refused_before_openpyxl_opens_it(monkeypatch):
    """A small zip whose one entry unpacks to 200 MB of zeros is refused without being opened."""
    opened = []
    monkeypatch.setattr(spreadsheet, "load_workbook", lambda *a, **k: opened.append(1))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open("xl/worksheets/sheet1.xml", "w") as entry:
        chunk = bytes(1024 * 1024)
        for _ in range(200):
            entry.write(chunk)
    data = buf.getvalue()
    assert len(data) < 1024 * 1024
    p = only_problem(data)
    assert p.where == "(file)"
    assert str(200 * 1024 * 1024) in p.message and "limit" in p.message
    assert opened == []


def test_highly_compressed_entry_is_refused(tmp_path, monkeypatch):
    """An entry compressed far beyond what real spreadsheets reach is refused even when it is small in total."""
    opened = []
    monkeypatch.setattr(spreadsheet, "load_workbook", lambda *a, **k: opened.append(1))
    data = xlsx(tmp_path, [CSV_HEADER])
    data = rezip(data, {"xl/worksheets/sheet1.xml": bytes(5 * 1024 * 1024)})
    p = only_problem(data)
    assert "xl/worksheets/sheet1.xml" in p.message and "200:1" in p.message
    assert opened == []


def test_uncompressed_size_limit_applies(tmp_path, monkeypatch):
    """An ordinary file over the uncompressed size limit is refused, naming both sizes."""
    data = xlsx(tmp_path, [CSV_HEADER, [None, "a", "问？", "答。"]])
    assert parse_faq_xlsx(data, SRC)
    monkeypatch.setattr(spreadsheet, "MAX_UNCOMPRESSED_BYTES", 1000)
    p = only_problem(data)
    assert "unpacks to" in p.message and "1000" in p.message


def test_file_size_limit_applies_to_xlsx(tmp_path, monkeypatch):
    """An .xlsx larger than MAX_FILE_BYTES is refused before anything else."""
    data = xlsx(tmp_path, [CSV_HEADER])
    monkeypatch.setattr(catalog_mod, "MAX_FILE_BYTES", len(data) - 1)
    p = only_problem(data)
    assert str(len(data)) in p.message and str(len(data) - 1) in p.message


def test_workbook_without_worksheet_is_refused(tmp_path):
    """A workbook whose sheet list is empty says there is no worksheet."""
    data = xlsx(tmp_path, [CSV_HEADER])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        book = z.read("xl/workbook.xml").decode()
    book, n = re.subn(r"<sheets>.*</sheets>", "<sheets/>", book)
    assert n == 1
    p = only_problem(rezip(data, {"xl/workbook.xml": book.encode()}))
    assert "no worksheet" in p.message


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml", "[Content_Types].xml"])
def test_damaged_xlsx_parts_give_a_catalog_error(tmp_path, part):
    """Broken XML inside the zip is a CatalogError, not an openpyxl or XML exception."""
    data = rezip(xlsx(tmp_path, [CSV_HEADER, [None, "a", "问？", "答。"]]), {part: b"<<<not xml"})
    p = only_problem(data)
    assert p.where == "(file)" and "Excel" in p.message


def test_truncated_xlsx_gives_a_catalog_error(tmp_path):
    """The first half of an .xlsx (an interrupted upload) is a CatalogError."""
    data = xlsx(tmp_path, [CSV_HEADER, [None, "a", "问？", "答。"]])
    assert only_problem(data[: len(data) // 2]).where == "(file)"


# -- CSV and XLSX follow the same rules -----------------------------------------------------------------------


def test_csv_and_xlsx_report_the_same_problems(tmp_path):
    """The same table as CSV and as XLSX gives the same problems at the same rows (one set of row rules)."""
    table = [
        CSV_HEADER,
        ["dress", "ok", "问？", "答。", ""],
        ["dress", "Bad Id", "问？", "答。", ""],
        ["", "", "", "", ""],
        ["dress", "no_answer", "问？", "", ""],
        ["nope", "ok", "问？", "答。", ""],
        ["nope", "other", "问？", "答。", ""],
    ]
    buf = io.StringIO()
    csv.writer(buf).writerows(table)
    with pytest.raises(CatalogError) as from_csv:
        parse_faq_csv(buf.getvalue(), SRC, KNOWN)
    with pytest.raises(CatalogError) as from_xlsx:
        parse_faq_xlsx(xlsx(tmp_path, table), SRC, KNOWN)
    assert problems_of(from_xlsx) == problems_of(from_csv)
    assert [(p.where, p.field) for p in problems_of(from_csv)] == [
        ("row 3", "id"), ("row 5", "answer"), ("row 6", "id"), ("row 7", "product_id")]


def test_csv_parsing_still_works_after_the_refactor():
    """parse_faq_csv keeps its rules: header, split variants, blank rows skipped, row numbers by record."""
    text = "\n".join([",".join(CSV_HEADER), ",a,问？,答。,x|y", "", "dress,b,问二？,答二。,"]) + "\n"
    assert summary(parse_faq_csv(text, "f.csv", KNOWN)) == [
        (None, "a", "问？", "答。", ("x", "y")), ("dress", "b", "问二？", "答二。", ())]
    with pytest.raises(CatalogError) as exc:
        parse_faq_csv("", "f.csv")
    assert problems_of(exc)[0].where == "row 1" and "empty file" in problems_of(exc)[0].message


def test_faq_rows_names_the_header_row_it_was_given():
    """faq_rows takes (row number, cells) pairs; problems use the given numbers, not positions."""
    with pytest.raises(CatalogError) as exc:
        faq_rows([(4, ["wrong"])], "s")
    assert problems_of(exc)[0].where == "row 4"
    with pytest.raises(CatalogError) as exc:
        faq_rows([(1, CSV_HEADER), (10, ["", "a", "问？", "", ""])], "s")
    assert [(p.where, p.field) for p in problems_of(exc)] == [("row 10", "answer")]


# -- diff ---------------------------------------------------------------------------------------------------------


BASE = {
    "shop": {"name": "测试小店", "faqs": [{"id": "ship_free", "question": "包邮吗？", "answer": "全场包邮。"}]},
    "products": [
        {"id": "dress", "link": 1, "name": "连衣裙", "price": 159,
         "faqs": [{"id": "dress_size", "question": "怎么选码？", "answer": "按平时尺码拍。", "variants": ["选码"]},
                  {"id": "dress_wash", "question": "能机洗吗？", "answer": "建议手洗。"}]},
        {"id": "fryer", "link": 2, "name": "空气炸锅", "price": 299,
         "faqs": [{"id": "fryer_clean", "question": "好清洗吗？", "answer": "好清洗。"}]},
    ],
}


def cat(data: dict) -> catalog_mod.Catalog:
    return validate_catalog(data, "test")


def test_identical_catalogs_have_an_empty_diff():
    d = diff_catalogs(cat(BASE), cat(copy.deepcopy(BASE)))
    assert d.empty
    assert d.faqs == () and not d.shop_changed
    assert set(d.counts().values()) == {0}


def test_diff_finds_added_changed_removed_and_moved_faqs():
    """Each kind of FAQ change is found, with the changed fields, sorted added, changed, removed then by id."""
    new = copy.deepcopy(BASE)
    dress, fryer = new["products"]
    dress["faqs"][0]["answer"] = "偏小，拍大一码。"              # changed: answer
    dress["faqs"][0]["variants"] = ["选码", "多大码"]            # changed: variants
    wash = dress["faqs"].pop(1)                                 # dress_wash moves to the shop
    new["shop"]["faqs"].append(wash)
    fryer["faqs"] = [{"id": "fryer_oil", "question": "要放油吗？", "answer": "不用。"},
                     {"id": "a_first", "question": "问？", "answer": "答。"}]  # fryer_clean removed, two added
    d = diff_catalogs(cat(BASE), cat(new))
    assert [(c.kind, c.faq_id, c.product_id, c.fields) for c in d.faqs] == [
        ("added", "a_first", "fryer", ()),
        ("added", "fryer_oil", "fryer", ()),
        ("changed", "dress_size", "dress", ("answer", "variants")),
        ("changed", "dress_wash", None, ("product_id",)),
        ("removed", "fryer_clean", "fryer", ()),
    ]
    size = d.faqs[2]
    assert size.before.answer == "按平时尺码拍。" and size.after.answer == "偏小，拍大一码。"
    assert d.faqs[0].before is None and d.faqs[-1].after is None
    assert d.counts() == {"added": 2, "changed": 2, "removed": 1,
                          "products_added": 0, "products_removed": 0, "products_changed": 0}
    assert not d.empty and not d.shop_changed


def test_diff_json_is_serialisable_and_shows_where_a_faq_moved():
    new = copy.deepcopy(BASE)
    new["products"][1]["faqs"].append(new["products"][0]["faqs"].pop(1))  # dress_wash: dress -> fryer
    data = json.loads(json.dumps(diff_catalogs(cat(BASE), cat(new)).to_json(), ensure_ascii=False))
    assert data["counts"]["changed"] == 1 and data["empty"] is False
    (change,) = data["faqs"]
    assert change["kind"] == "changed" and change["fields"] == ["product_id"]
    assert change["before"] == {"question": "能机洗吗？", "answer": "建议手洗。", "variants": [], "product_id": "dress"}
    assert change["after"]["product_id"] == "fryer"


def test_diff_finds_product_and_shop_changes():
    """Added, removed and edited products are listed; a product whose FAQs alone changed is not edited."""
    new = copy.deepcopy(BASE)
    new["shop"]["name"] = "新店名"
    new["products"][0]["price"] = 139                       # dress edited
    new["products"][0]["faqs"][1]["answer"] = "可以机洗。"    # an FAQ change is not a product change
    del new["products"][1]                                  # fryer removed (and its FAQ)
    new["products"].append({"id": "kettle", "link": 3, "name": "电水壶"})
    d = diff_catalogs(cat(BASE), cat(new))
    assert d.products_added == ("kettle",)
    assert d.products_removed == ("fryer",)
    assert d.products_changed == ("dress",)
    assert d.shop_changed
    assert d.counts()["changed"] == 1 and d.counts()["removed"] == 1
    assert d.to_json()["products_changed"] == ["dress"]


@pytest.mark.parametrize(("field", "value"), [
    ("name", "新名字"), ("link", 9), ("aliases", ["裙子"]), ("specs", {"尺码": "S"}), ("selling_points", ["好看"])])
def test_every_product_field_counts_as_a_product_change(field, value):
    new = copy.deepcopy(BASE)
    new["products"][1][field] = value
    assert diff_catalogs(cat(BASE), cat(new)).products_changed == ("fryer",)


def test_diff_against_no_catalog_adds_everything():
    d = diff_catalogs(None, cat(BASE))
    assert {c.kind for c in d.faqs} == {"added"}
    assert [c.faq_id for c in d.faqs] == ["dress_size", "dress_wash", "fryer_clean", "ship_free"]
    assert d.products_added == ("dress", "fryer")
    assert d.products_removed == () and d.products_changed == ()
    assert d.shop_changed and not d.empty
    assert d.counts()["added"] == 4


# -- export -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop():
    return load_catalog(SHOP)


def all_faqs(catalog) -> list[tuple[str | None, FAQ]]:
    return [(None, f) for f in catalog.shop.faqs] + [(p.id, f) for p in catalog.products for f in p.faqs]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_yaml_and_json_exports_load_back_equal(shop, fmt):
    """The sample catalog dumped as YAML or JSON parses back to an equal Catalog."""
    text = dump_catalog(shop, fmt).decode("utf-8")
    assert parse_catalog(text, fmt, f"shop.{fmt}") == shop


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_yaml_and_json_exports_read_like_hand_written_files(shop, fmt):
    """Chinese stays readable, shop comes before products, defaults are left out and whole prices have no .0."""
    text = dump_catalog(shop, fmt).decode("utf-8")
    assert shop.shop.name in text and "\\u" not in text
    assert text.index("shop") < text.index("products")
    assert "159.0" not in text and "null" not in text
    data = yaml.safe_load(text)  # JSON is YAML too
    dress = data["products"][0]
    assert dress["price"] == 159 and isinstance(dress["price"], int)
    assert list(data) == ["shop", "products"]


def test_exports_leave_defaults_out():
    """A product with only an id and name is written with only those keys."""
    c = cat({"shop": {"name": "店"}, "products": [{"id": "x", "name": "东西"}]})
    assert json.loads(dump_catalog(c, "json")) == {"shop": {"name": "店"}, "products": [{"id": "x", "name": "东西"}]}
    assert yaml.safe_load(dump_catalog(c, "yaml")) == {"shop": {"name": "店"}, "products": [{"id": "x", "name": "东西"}]}


def test_yaml_export_indents_lists_and_keeps_variants_on_one_line(shop):
    text = dump_catalog(shop, "yaml").decode("utf-8")
    assert "\n  faqs:\n    - id: " in text
    assert "\n      variants: [" in text
    assert "price: 159\n" in text


def test_csv_export_loads_back_every_faq_with_its_product(shop):
    """The CSV export starts with a UTF-8 BOM and the header, and parse_faq_csv gives back every FAQ in place."""
    data = dump_catalog(shop, "csv")
    assert data.startswith(b"\xef\xbb\xbf" + ",".join(CSV_HEADER).encode())
    rows = parse_faq_csv(decode_text(data, "faqs.csv"), "faqs.csv", {p.id for p in shop.products})
    assert rows == all_faqs(shop)
    assert len(rows) == shop.faq_count()


def test_xlsx_export_loads_back_every_faq_with_its_product(shop):
    rows = parse_faq_xlsx(dump_catalog(shop, "xlsx"), "faqs.xlsx", {p.id for p in shop.products})
    assert rows == all_faqs(shop)
    assert any(pid is None for pid, _ in rows) and any(pid for pid, _ in rows)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_spreadsheet_exports_keep_formula_like_and_quoted_text(fmt):
    """Text starting with = or holding commas, quotes and newlines comes back as it was."""
    faq = {"id": "odd", "question": '=1+1, "really"?', "answer": "+86 电话\n第二行", "variants": ["-5%", "@me"]}
    c = cat({"shop": {"name": "店", "faqs": [faq]}})
    data = dump_catalog(c, fmt)
    rows = parse_faq_xlsx(data, "f") if fmt == "xlsx" else parse_faq_csv(decode_text(data, "f"), "f")
    assert rows == all_faqs(c)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_variant_with_separator_cannot_be_exported(fmt):
    c = cat({"shop": {"name": "店", "faqs": [{"id": "a", "question": "问？", "answer": "答。", "variants": ["a|b"]}]}})
    with pytest.raises(ValueError, match="'a'"):
        dump_catalog(c, fmt)


def test_unknown_export_format_is_a_value_error(shop):
    with pytest.raises(ValueError, match="xml"):
        dump_catalog(shop, "xml")


def test_formats_cover_every_export():
    assert set(FORMATS) == {"yaml", "json", "csv", "xlsx"}
    assert FORMATS["xlsx"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "charset=utf-8" in FORMATS["csv"]
