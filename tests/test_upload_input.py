"""What shop staff upload, read strictly: encodings (Big5, GBK, GB18030, UTF-16, UTF-8) detected and mojibake
refused with its row; duplicate keys, deep nesting and numbers no one means refused with the key or path (a 4xx
from the real server, never a 500); formulas and control characters refused in FAQ tables and neutralised in
CSV and Excel downloads."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import re
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml
from openpyxl import Workbook, load_workbook

from cohost.cli import main
from cohost.config import load_config
from cohost.errors import CatalogError, Problem
from cohost.knowledge.catalog import FAQ, decode_text, load_catalog, parse_catalog, parse_faq_csv, validate_catalog
from cohost.knowledge.export import dump_catalog
from cohost.knowledge.spreadsheet import parse_faq_xlsx
from cohost.knowledge.store import CatalogStore
from cohost.knowledge.uploads import parse_upload

ROOT = Path(__file__).resolve().parent.parent
SHOP_YAML = ROOT / "knowledge" / "shop.yaml"
HEADER = ["product_id", "id", "question", "answer", "variants"]
KNOWN = {"dress", "fryer"}

# A Taiwanese or Hong Kong shop's FAQ sheet, and a mainland one's, as Excel on their Windows would save them.
TRADITIONAL = [
    ["", "ship_time", "幾天發貨？", "付款後48小時內發貨，一般3到5天送達。", "什麼時候出貨|多久到貨"],
    ["dress", "dress_size", "有大碼嗎？", "有的，S到XXL都有，版型偏小建議拍大一碼。", "大碼有沒有|微胖能穿嗎"],
    ["dress", "dress_wash", "可以機洗嗎？", "建議冷水手洗，不要漂白，陰涼處晾乾。", "能用洗衣機嗎"],
    ["", "returns", "可以退換貨嗎？", "七天無理由退換，商品不影響二次銷售即可。", "能退嗎|不合適怎麼辦"],
]
SIMPLIFIED = [
    ["", "ship_time", "几天发货？", "付款后48小时内发货，一般3到5天送达。", "什么时候发货|多久到货"],
    ["dress", "dress_size", "有大码吗？", "有的，S到XXL都有，版型偏小建议拍大一码。", "大码有没有|微胖能穿吗"],
    ["fryer", "fryer_clean", "炸锅好清洗吗？", "内胆是不粘涂层，温水加洗洁精一擦就干净。", "好不好洗|怎么清洗"],
    ["", "returns", "可以退换货吗？", "七天无理由退换，商品不影响二次销售即可。", "能退吗|不合适怎么办"],
]
# Short files are where detectors guess: a few dozen bytes of Big5 and GBK decode in either.
SHORT_TRADITIONAL = [["", "stock", "有貨嗎", "有", ""]]
SHORT_SIMPLIFIED = [["", "stock", "有货吗", "有", ""]]


def csv_text(rows: list[list[str]], newline: str = "\r\n") -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=newline).writerows([HEADER, *rows])
    return buf.getvalue()


def expected(rows: list[list[str]]) -> list[tuple[str | None, FAQ]]:
    return [(pid or None, FAQ(id=fid, question=q, answer=a, variants=tuple(v for v in vs.split("|") if v)))
            for pid, fid, q, a, vs in rows]


def refused(fn, *args) -> list[Problem]:
    with pytest.raises(CatalogError) as exc:
        fn(*args)
    return exc.value.problems


# -- encodings -------------------------------------------------------------------------------------------------

ENCODED = [
    ("big5", TRADITIONAL), ("cp950", TRADITIONAL), ("big5hkscs", TRADITIONAL), ("big5", SHORT_TRADITIONAL),
    ("gbk", SIMPLIFIED), ("gb2312", SIMPLIFIED), ("gbk", SHORT_SIMPLIFIED),
    ("gb18030", SIMPLIFIED), ("gb18030", TRADITIONAL), ("gb18030", SHORT_TRADITIONAL),
    ("utf-16", TRADITIONAL), ("utf-16", SIMPLIFIED), ("utf-16-le", SIMPLIFIED), ("utf-16-be", TRADITIONAL),
    ("utf-16-le", SHORT_SIMPLIFIED), ("utf-8", TRADITIONAL), ("utf-8-sig", SIMPLIFIED), ("utf-8", SHORT_SIMPLIFIED),
]


@pytest.mark.parametrize(("encoding", "rows"), ENCODED,
                         ids=[f"{e}-{'short' if len(r) == 1 else 'trad' if r is TRADITIONAL else 'simp'}"
                              for e, r in ENCODED])
def test_faq_csv_in_every_encoding_a_chinese_shop_saves_loads_exactly(encoding, rows):
    """Big5 (Taiwan, Hong Kong), GBK/GB18030 (mainland Windows), UTF-16 with and without a BOM (Excel's Unicode
    text) and UTF-8: each file, short ones included, gives back its rows exactly, through the upload path too."""
    data = csv_text(rows).encode(encoding)
    if encoding in ("big5", "cp950", "gbk", "gb2312"):
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # really not UTF-8
    assert parse_faq_csv(decode_text(data, "faqs.csv"), "faqs.csv", KNOWN) == expected(rows)
    head = load_catalog(SHOP_YAML)
    candidate, kind = parse_upload(data, "faqs.csv", head)
    assert kind == "faqs"
    faqs = {f.id: f for f in candidate.shop.faqs + tuple(f for p in candidate.products for f in p.faqs)}
    assert [faqs[r[1]].question for r in rows] == [r[2] for r in rows]


@pytest.mark.parametrize("encoding", ["big5", "gbk", "utf-16-le"])
def test_yaml_catalog_in_other_encodings_loads(tmp_path, encoding):
    text = "shop:\n  name: 小鹿優選\n  faqs:\n    - {id: ship, question: 幾天發貨, answer: 付款後48小時內發貨}\n"
    if encoding == "gbk":
        text = text.replace("優選", "优选").replace("幾天發貨", "几天发货").replace("付款後48小時內發貨", "付款后48小时内发货")
    path = tmp_path / "shop.yaml"
    path.write_bytes(text.encode(encoding))
    catalog = load_catalog(path)
    assert catalog.shop.faqs[0].question == yaml.safe_load(text)["shop"]["faqs"][0]["question"]


def big5_read_as_gbk(rows: list[list[str]]) -> str:
    """A Big5 sheet as GBK software shows it, then saved: the mojibake the old reader published."""
    return csv_text(rows).encode("cp950").decode("gb18030")


@pytest.mark.parametrize("rows", [TRADITIONAL, SHORT_TRADITIONAL], ids=["sheet", "one-row"])
def test_mojibake_is_refused_with_its_row(rows):
    """Text already garbled (Big5 read as GBK, saved as UTF-8) decodes as UTF-8, but is refused with the rows."""
    garbled = big5_read_as_gbk(rows)
    assert "Τ" in garbled  # 有 in Big5 is Greek Tau in GBK
    problems = refused(decode_text, garbled.encode("utf-8"), "faqs.csv")
    assert problems[0].where == "row 2" and problems[0].field is None
    second_row = garbled.split("\r\n")[1]
    assert "mojibake" in problems[0].message and second_row[:20] in problems[0].message
    assert len(problems) == min(len(rows), 3)


def test_utf8_read_as_gbk_and_saved_is_refused():
    garbled = csv_text(SIMPLIFIED).encode("utf-8").decode("gbk", errors="replace").encode("utf-8")
    problems = refused(decode_text, garbled, "faqs.csv")
    assert problems[0].where == "row 2" and "mojibake" in problems[0].message


def test_utf8_read_as_gbk_is_refused_even_when_its_characters_look_common():
    """几天发货 in UTF-8 read as GBK is 鍑犲ぉ鍙戣揣: nothing rare in it, but written back as GBK it is valid UTF-8."""
    garbled = csv_text([["", "ship", "几天发货", "48h", ""]]).encode("utf-8").decode("gbk")
    assert "鍑犲ぉ鍙戣揣" in garbled
    p = refused(decode_text, garbled.encode("utf-8"), "faqs.csv")[0]
    assert p.where == "row 2" and "鍑犲ぉ鍙戣揣" in p.message


def test_rare_characters_in_a_real_file_are_not_mojibake():
    """A brand name with a rare character on every row, and an emoji, are text, not mojibake."""
    rows = [[p, f, q, a.replace("有的", "龘牌有的") + "👍", v] for p, f, q, a, v in SIMPLIFIED]
    assert parse_faq_csv(decode_text(csv_text(rows).encode("gbk", errors="ignore"), "f.csv"), "f.csv", KNOWN)
    assert parse_faq_csv(decode_text(csv_text(rows).encode("utf-8"), "f.csv"), "f.csv", KNOWN)


def test_a_japanese_product_name_in_a_utf8_file_is_not_mojibake():
    rows = [["", "collab", "有ポケモン联名款吗？", "有的，ピカチュウ款今晚8点开抢。", ""]]
    assert parse_faq_csv(decode_text(csv_text(rows).encode("utf-8"), "f.csv"), "f.csv") == expected(rows)


def test_a_bom_that_lies_is_refused_with_its_line():
    data = codecs.BOM_UTF8 + csv_text(SIMPLIFIED).encode("gbk")
    p = refused(decode_text, data, "faqs.csv")[0]
    assert p.where == "line 2" and "byte order mark" in p.message


# -- duplicate keys, nesting, numbers --------------------------------------------------------------------------

DUP_YAML = """shop:
  name: 小鹿优选
products:
  - id: dress
    name: 法式碎花连衣裙
    price: 159
    specs: {面料: 雪纺}
    price: 1.59
"""
DUP_JSON = """{
  "shop": {"name": "小鹿优选"},
  "products": [
    {"id": "dress", "name": "法式碎花连衣裙",
     "price": 159,
     "price": 1.59}
  ]
}"""


def test_duplicate_yaml_key_is_refused_with_the_key_and_both_lines():
    p = refused(parse_catalog, DUP_YAML, "yaml", "shop.yaml")[0]
    assert (p.where, p.field) == ("line 8", "price")
    assert "duplicate key 'price' (lines 6 and 8)" in p.message


def test_duplicate_json_key_is_refused_with_the_key_and_both_lines():
    p = refused(parse_catalog, DUP_JSON, "json", "shop.json")[0]
    assert (p.where, p.field) == ("line 6", "price")
    assert "duplicate key 'price' (lines 5 and 6)" in p.message


def test_yaml_merge_keys_may_still_be_overridden():
    text = "base: &b {name: 裙子, price: 159}\nshop: {name: 店}\nproducts:\n  - <<: *b\n    id: dress\n    price: 139\n"
    doc = yaml.safe_load(text)
    del doc["base"]
    assert validate_catalog(doc, "x").products[0].price == 139
    with pytest.raises(CatalogError, match="base"):  # the extra top-level key, not a duplicate
        parse_catalog(text, "yaml", "x.yaml")


HUGE = str(10**400)


def jp(fields: str) -> str:
    """A JSON catalog with one product holding fields."""
    return '{"shop": {"name": "店"}, "products": [{"id": "a", "name": "裙", ' + fields + "}]}"


def yp(fields: str) -> str:
    return "shop: {name: 店}\nproducts:\n  - {id: a, name: 裙, " + fields + "}\n"


BAD_DOCUMENTS = [
    # (id, format, text, where, field)
    ("json-deep-list", "json", '{"shop": {"name": "店"}, "products": ' + "[" * 10_000 + "]" * 10_000 + "}",
     "products" + "[0]" * 19, "products"),
    ("yaml-deep-list", "yaml", "shop: {name: 店}\nproducts: " + "[" * 10_000 + "]" * 10_000 + "\n",
     "products" + "[0]" * 20, None),
    ("yaml-deep-block", "yaml", "shop: {name: 店}\nproducts:\n" + "".join("  " * i + "- \n" for i in range(2000)),
     "products" + "[0]" * 20, None),
    ("json-price-10e400", "json", jp('"price": ' + HUGE), "products[0].price", "price"),
    ("json-price-5000-digits", "json", jp('"price": ' + "9" * 5000), "products[0].price", "price"),
    ("json-id-10e400", "json", '{"shop": {"name": "店"}, "products": [{"id": ' + HUGE + ', "name": "裙"}]}',
     "products[0].id", "id"),
    ("json-link-10e400", "json", jp('"link": ' + HUGE), "products[0].link", "link"),
    ("json-spec-1e999", "json", jp('"specs": {"重量": 1e999}'), "products[0].specs.重量", "重量"),
    ("json-price-nan", "json", jp('"price": NaN'), "products[0].price", "price"),
    ("yaml-price-10e400", "yaml", yp("price: " + HUGE), "products[0].price", "price"),
    ("yaml-spec-5000-digits", "yaml", yp("specs: {条码: " + "9" * 5000 + "}"), "products[0].specs.条码", "条码"),
    ("yaml-spec-inf", "yaml", yp("specs: {重量: .inf}"), "products[0].specs.重量", "重量"),
    ("yaml-bad-date", "yaml", yp("specs: {上市: 2024-13-45}"), "line 3", None),
    ("json-nul-escape", "json", '{"shop": {"name": "店", "faqs": [{"id": "a", "question": "问\\u0000", "answer": "答"}]}}',
     "shop.faqs[0].question", "question"),
    ("yaml-bell-escape", "yaml", 'shop:\n  name: 店\n  faqs:\n    - {id: a, question: 问, answer: "答\\a"}\n',
     "shop.faqs[0].answer", "answer"),
    ("json-lone-surrogate", "json", '{"shop": {"name": "店\\ud800"}}', "shop.name", "name"),
]


@pytest.mark.parametrize(("fmt", "text", "where", "field"), [d[1:] for d in BAD_DOCUMENTS],
                         ids=[d[0] for d in BAD_DOCUMENTS])
def test_bad_documents_are_problems_naming_the_field(fmt, text, where, field):
    """Deep nesting, numbers no one means (10**400, 5,000 digits, 1e999, NaN, .inf), an impossible date and control
    characters are CatalogErrors at their path, never a RecursionError, ValueError or a silent 'inf' spec."""
    problems = refused(parse_catalog, text, fmt, f"shop.{fmt}")
    assert [(p.where, p.field) for p in problems][:1] == [(where, field)]


# -- formulas and control characters in FAQ tables ---------------------------------------------------------

def table(*rows: list[str]) -> str:
    return csv_text([list(r) for r in rows], newline="\n")


@pytest.mark.parametrize(("cell", "column"), [
    ('=HYPERLINK("http://evil.example","点这里领券")', "answer"),
    ("=1+1", "question"),
    ("+HYPERLINK(\"http://evil.example\")", "answer"),
    ("-2+3+cmd|' /C calc'!A0", "answer"),
    ("@SUM(1+1)*cmd|' /C calc'!A0", "variants"),
    ("+A1", "question"),
    ("=cmd|' /C notepad'!A0", "id"),
])
def test_formula_cells_are_refused_with_row_and_field(cell, column):
    row = ["", "f1", "问？", "答。", ""]
    row[HEADER.index(column)] = cell
    p = refused(parse_faq_csv, table(row), "faqs.csv")[0]
    assert (p.where, p.field) == ("row 2", column) and "formula" in p.message


@pytest.mark.parametrize("cell", ["+86 400-800-8888（工作日 9:00-18:00）", "-5", "-5%", "@主播 看这里", "+1元换购",
                                  "-XL码已售罄", "'=这不是公式"])
def test_text_that_only_starts_like_a_formula_is_text(cell):
    rows = parse_faq_csv(table(["", "f1", "问？", cell, ""]), "faqs.csv")
    assert rows[0][1].answer == cell.removeprefix("'")


@pytest.mark.parametrize(("char", "column"), [("\x00", "question"), ("\x07", "answer"), ("\x1b", "variants"),
                                              ("\x08", "id"), ("\x7f", "answer"), ("\x85", "question")])
def test_control_characters_are_refused_with_row_and_field(char, column):
    row = ["", "f1", "问？", "答。", "问法"]
    row[HEADER.index(column)] = row[HEADER.index(column)][:1] + char + row[HEADER.index(column)][1:]
    p = refused(parse_faq_csv, table(row), "faqs.csv")[0]
    assert (p.where, p.field) == ("row 2", column) and f"U+{ord(char):04X}" in p.message


def test_tabs_and_newlines_in_cells_are_text():
    rows = parse_faq_csv(table(["", "f1", "问？", "第一行\n第二行\t完", ""]), "faqs.csv")
    assert rows[0][1].answer == "第一行\n第二行\t完"


CACHED = "点这里领券".encode()


def xlsx_with_cached_formula() -> bytes:
    """A sheet whose answer is a HYPERLINK formula with the result Excel last showed ("点这里领券")."""
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append([None, "coupon", "有优惠券吗？", '=HYPERLINK("http://evil.example","点这里领券")', None])
    buf = io.BytesIO()
    wb.save(buf)
    out = io.BytesIO()
    with zipfile.ZipFile(buf) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            part = src.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                part, n = re.subn(rb'<c r="D2"><f>(.*?)</f><v ?/>',
                                  lambda m: b'<c r="D2" t="str"><f>' + m[1] + b"</f><v>" + CACHED + b"</v>", part)
                assert n == 1
            dst.writestr(info.filename, part)
    return out.getvalue()


def test_xlsx_formula_cell_is_refused_even_with_a_cached_value():
    data = xlsx_with_cached_formula()
    wb = load_workbook(io.BytesIO(data), data_only=True)
    assert wb.active["D2"].value == "点这里领券"  # what the old reader published as the answer
    p = refused(parse_faq_xlsx, data, "faqs.xlsx")[0]
    assert (p.where, p.field) == ("row 2", "answer") and "HYPERLINK" in p.message


def test_xlsx_text_cells_that_start_like_formulas_are_text(tmp_path):
    """A string cell (Excel's '=... typed as text) is text; openpyxl writes it as a string when told to."""
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    ws.append([None, "tel", "电话多少？", "+86 400-800-8888", None])
    ws.append([None, "eq", "等于几？", "=这是文字", None])
    ws["D3"].data_type = "s"
    buf = io.BytesIO()
    wb.save(buf)
    rows = parse_faq_xlsx(buf.getvalue(), "faqs.xlsx")
    assert [f.answer for _, f in rows] == ["+86 400-800-8888", "=这是文字"]


# -- exports --------------------------------------------------------------------------------------------------

RISKY = [
    {"id": "coupon", "question": "有优惠券吗？", "answer": '=HYPERLINK("http://evil.example","点这里")'},
    {"id": "tel", "question": "+86 电话多少？", "answer": "+86 400-800-8888", "variants": ["-5%", "@客服"]},
    {"id": "dde", "question": "@SUM(1+1)*cmd|' /C calc'!A0", "answer": "-2+3+cmd|' /C calc'!A0"},
    {"id": "quote", "question": "'=引号开头", "answer": "普通文字"},
]


def risky_catalog(extra: list[dict] | None = None):
    return validate_catalog({"shop": {"name": "店", "faqs": RISKY + (extra or [])}}, "api")


def test_csv_export_runs_no_formula_in_excel_and_loads_back():
    data = dump_catalog(risky_catalog(), "csv")
    cells = [c for row in csv.reader(io.StringIO(data.decode("utf-8-sig"))) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'=HYPERLINK(\"http://evil.example\",\"点这里\")" in cells and "'+86 400-800-8888" in cells
    rows = parse_faq_csv(decode_text(data, "faqs.csv"), "faqs.csv")
    assert [f for _, f in rows] == list(risky_catalog().shop.faqs)


def test_xlsx_export_has_no_formula_cell_and_marks_formula_like_text():
    data = dump_catalog(risky_catalog(), "xlsx")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet
    ws = load_workbook(io.BytesIO(data)).active
    d2 = ws["D2"]
    assert d2.data_type == "s" and d2.value.startswith("=HYPERLINK") and d2.quotePrefix
    assert not ws["C2"].quotePrefix  # plain text keeps the plain style
    assert [f for _, f in parse_faq_xlsx(data, "faqs.xlsx")] == list(risky_catalog().shop.faqs)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_control_characters_are_dropped_from_spreadsheet_exports(fmt):
    """A catalog edited through the API can hold a control character; the download drops it, as no spreadsheet
    can hold it and an upload would refuse it, and loads back."""
    c = risky_catalog([{"id": "bell", "question": "响\x07铃？", "answer": "答\x00案"}])
    data = dump_catalog(c, fmt)
    rows = parse_faq_xlsx(data, "f.xlsx") if fmt == "xlsx" else parse_faq_csv(decode_text(data, "f.csv"), "f.csv")
    bell = rows[-1][1]
    assert (bell.question, bell.answer) == ("响铃？", "答案")


# -- the real server and the CLI ----------------------------------------------------------------------------

TOKEN = "secret"


@pytest.mark.slow
def test_server_answers_bad_uploads_with_422_in_chinese_and_reads_big5(engine, tmp_path):
    """Through the real server on 127.0.0.1: a Big5 sheet previews with its real questions; mojibake, duplicate
    keys, deep or huge documents and formulas are 4xx (never 500) with a Chinese message naming the place."""
    from cohost.live import live_server

    async def main() -> None:
        store = CatalogStore(tmp_path / "catalog.sqlite3")
        async with live_server(engine, port=0, store=store, admin_token=TOKEN) as (_app, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                async def upload(data: bytes, filename: str) -> httpx.Response:
                    return await client.post("/api/shops/default/catalog/upload", content=data,
                                             params={"filename": filename, "dry_run": "true"})

                r = await upload(csv_text(TRADITIONAL).encode("big5"), "faqs.csv")
                assert r.status_code == 200, r.text
                assert "有大碼嗎？" in r.text and "Τ" not in r.text

                bad = [(big5_read_as_gbk(TRADITIONAL).encode("utf-8"), "faqs.csv", "row 2", "乱码"),
                       (DUP_YAML.encode(), "shop.yaml", "line 8", "重复"),
                       (DUP_JSON.encode(), "shop.json", "line 6", "重复"),
                       (table(["", "c", "问？", '=HYPERLINK("http://evil.example","点这里")', ""]).encode(),
                        "faqs.csv", "row 2", "公式"),
                       (table(["", "c", "问\x00？", "答", ""]).encode(), "faqs.csv", "row 2", "控制字符")]
                bad += [(text.encode(), f"shop.{fmt}", where, None) for _, fmt, text, where, _f in BAD_DOCUMENTS]
                for data, name, where, needle in bad:
                    r = await upload(data, name)
                    assert 400 <= r.status_code < 500, (name, where, r.status_code, r.text[:300])
                    problem = r.json()["problems"][0]
                    assert problem["where"] == where, (name, problem)
                    assert re.search(r"[\u4e00-\u9fff]", problem["message"]), problem
                    if needle:
                        assert needle in problem["message"], problem
                assert [v.version for v in store.versions("default")] == [1]

    asyncio.run(main())


@pytest.mark.slow
def test_cli_dry_run_import_of_mojibake_exits_non_zero(capsys, tmp_path, cache_dir):
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(yaml.safe_dump({"cache_dir": str(cache_dir),
                                        "store": {"path": str(tmp_path / "db" / "catalog.sqlite3")}}),
                        encoding="utf-8")
    cfg = load_config(cfg_path)
    store = CatalogStore(cfg.resolve(cfg.store.path))
    info, _ = store.commit("default", lambda _old: load_catalog(SHOP_YAML), author="test", note="seed")
    store.mark("default", info.version, "ready")

    garbled = tmp_path / "faqs.csv"
    garbled.write_bytes(big5_read_as_gbk(TRADITIONAL).encode("utf-8"))
    code = main(["--config", str(cfg_path), "knowledge", "import", "--dry-run", str(garbled)])
    out, err = capsys.readouterr()
    assert code != 0
    assert "乱码" in out + err and "第 2 行" in out + err and "changed" not in out

    big5 = tmp_path / "big5.csv"
    big5.write_bytes(csv_text(TRADITIONAL).encode("big5"))
    code = main(["--config", str(cfg_path), "knowledge", "import", "--dry-run", str(big5)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "有大碼嗎？" in out
    assert [v.version for v in store.versions("default")] == [1]


def test_loaded_documents_hold_no_placeholder_values():
    """Integers up to MAX_INT_DIGITS stay ints (a 13-digit barcode spec reads as text as before)."""
    c = parse_catalog("shop: {name: 店}\nproducts:\n  - {id: a, name: 裙, specs: {条码: 6901234567892}}\n", "yaml", "x")
    assert c.products[0].specs == {"条码": "6901234567892"}
    assert json.loads(dump_catalog(c, "json"))["products"][0]["specs"] == {"条码": "6901234567892"}
