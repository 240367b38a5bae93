"""Catalog loading: the sample shop, JSON round trip, CSV FAQs, and all-or-nothing error reporting."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from cohost.errors import CatalogError, Problem
from cohost.knowledge import catalog as catalog_mod
from cohost.knowledge.catalog import CSV_HEADER, load_catalog, load_faq_csv

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "knowledge" / "shop.yaml"
HEADER = ",".join(CSV_HEADER)

# A small valid catalog; each error test breaks one copy of it.
BASE = {
    "shop": {
        "name": "测试小店",
        "faqs": [
            {"id": "ship_free", "question": "包邮吗？", "answer": "全场包邮。", "variants": ["包邮不"]},
        ],
    },
    "products": [
        {
            "id": "dress",
            "link": 1,
            "name": "法式碎花连衣裙",
            "aliases": ["连衣裙"],
            "price": 159,
            "specs": {"尺码": "S/M/L"},
            "faqs": [{"id": "dress_size", "question": "怎么选码？", "answer": "按平时尺码拍。"}],
        },
        {
            "id": "fryer",
            "link": 2,
            "name": "家用空气炸锅",
            "price": 299,
            "faqs": [{"id": "fryer_clean", "question": "好清洗吗？", "answer": "炸篮可拆，好清洗。"}],
        },
    ],
}


def base() -> dict:
    return copy.deepcopy(BASE)


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_csv(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


def problems(exc: pytest.ExceptionInfo[CatalogError]) -> list[Problem]:
    assert isinstance(exc.value, CatalogError)
    assert exc.value.problems, "a CatalogError must carry at least one problem"
    return exc.value.problems


def find(probs: list[Problem], *, file: Path, where: str, field: str | None) -> Problem:
    """The one problem for this file, location and field; fails with the full list otherwise."""
    hits = [p for p in probs if p.file == str(file) and p.where == where and p.field == field]
    assert len(hits) == 1, f"no single problem at {file} {where} {field!r} in {probs}"
    return hits[0]


# -- the sample catalog ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shop():
    return load_catalog(SHOP)


def test_sample_shop_loads_with_enough_products_and_faqs(shop):
    """knowledge/shop.yaml loads with at least 8 products and 60 FAQs."""
    assert len(shop.products) >= 8
    assert shop.faq_count() >= 60
    assert shop.faq_count() == len(shop.shop.faqs) + sum(len(p.faqs) for p in shop.products)


def test_sample_shop_ids_and_links_are_unique(shop):
    """Product ids, FAQ ids and link numbers in the sample catalog are all unique."""
    pids = [p.id for p in shop.products]
    fids = [f.id for f in shop.shop.faqs] + [f.id for p in shop.products for f in p.faqs]
    links = [p.link for p in shop.products if p.link is not None]
    assert len(pids) == len(set(pids))
    assert len(fids) == len(set(fids))
    assert len(links) == len(set(links))


def test_catalog_round_trips_through_json(shop, tmp_path):
    """The sample catalog dumped to JSON loads back equal to the original."""
    path = tmp_path / "shop.json"
    path.write_text(json.dumps(shop.model_dump(), ensure_ascii=False), encoding="utf-8")
    again = load_catalog(path)
    assert again == shop
    assert again.model_dump() == shop.model_dump()


def test_numeric_specs_in_yaml_become_strings(tmp_path):
    """Spec values (and keys) written as YAML numbers are loaded as text."""
    data = base()
    data["products"][0]["specs"] = {"容量": 5, "功率": 22.5, 3: "三"}
    cat = load_catalog(write_yaml(tmp_path / "shop.yaml", data))
    specs = cat.product("dress").specs
    assert specs == {"容量": "5", "功率": "22.5", "3": "三"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in specs.items())


def test_yml_suffix_is_accepted(tmp_path):
    """A .yml catalog loads like a .yaml one."""
    cat = load_catalog(write_yaml(tmp_path / "shop.yml", base()))
    assert [p.id for p in cat.products] == ["dress", "fryer"]


# -- CSV FAQs ---------------------------------------------------------------------------------------------


def test_csv_faqs_merge_into_shop_and_products(tmp_path):
    """CSV rows add shop-wide FAQs (empty product_id) and product FAQs, with variants split on |."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = write_csv(tmp_path / "faqs.csv", [
        HEADER,
        ",invoice,能开发票吗？,可以开电子发票。,有发票吗|能开票吗",
        "fryer,fryer_oil,要放油吗？,大部分食物不用放油。, 要放油吗 | | 无油的吗 ",
    ])
    before = load_catalog(yml)
    cat = load_catalog(yml, faqs_csv=csv_path)
    assert cat.faq_count() == before.faq_count() + 2
    invoice = next(f for f in cat.shop.faqs if f.id == "invoice")
    assert invoice.answer == "可以开电子发票。"
    assert invoice.variants == ("有发票吗", "能开票吗")
    oil = next(f for f in cat.product("fryer").faqs if f.id == "fryer_oil")
    assert oil.variants == ("要放油吗", "无油的吗")
    assert "fryer_oil" not in {f.id for f in cat.product("dress").faqs}
    assert "fryer_oil" not in {f.id for f in cat.shop.faqs}


def test_csv_faq_replaces_faq_with_same_id(tmp_path):
    """A CSV row whose id already exists replaces that FAQ instead of adding a duplicate."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = write_csv(tmp_path / "faqs.csv", [
        HEADER,
        ",ship_free,包邮吗？,新疆西藏除外全场包邮。,",
        "dress,dress_size,怎么选码？,偏小，建议拍大一码。,选多大码",
    ])
    before = load_catalog(yml)
    cat = load_catalog(yml, faqs_csv=csv_path)
    assert cat.faq_count() == before.faq_count()
    ship = [f for f in cat.shop.faqs if f.id == "ship_free"]
    assert len(ship) == 1 and ship[0].answer == "新疆西藏除外全场包邮。"
    size = [f for f in cat.product("dress").faqs if f.id == "dress_size"]
    assert len(size) == 1 and size[0].answer == "偏小，建议拍大一码。"
    assert size[0].variants == ("选多大码",)


def test_csv_saved_as_gb18030_loads(tmp_path):
    """A CSV saved by Excel as GB18030 (not valid UTF-8) decodes and loads correctly."""
    lines = [HEADER, ",invoice,能开发票吗？,可以开电子发票。,有发票吗|能开票吗"]
    raw = ("\n".join(lines) + "\n").encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    path = tmp_path / "faqs.csv"
    path.write_bytes(raw)
    rows = load_faq_csv(path)
    assert len(rows) == 1
    pid, faq = rows[0]
    assert pid is None
    assert (faq.id, faq.question, faq.answer, faq.variants) == (
        "invoice", "能开发票吗？", "可以开电子发票。", ("有发票吗", "能开票吗"))


def test_utf8_csv_with_bom_loads(tmp_path):
    """A UTF-8 CSV that starts with a byte-order mark still matches the header and loads."""
    path = write_csv(tmp_path / "faqs.csv", [HEADER, "dress,dress_wash,能机洗吗？,建议手洗。,"], "utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = load_faq_csv(path)
    assert [(pid, f.id, f.answer) for pid, f in rows] == [("dress", "dress_wash", "建议手洗。")]


@pytest.mark.parametrize(("sep", "encoding"), [("\t", "utf-16"), (";", "utf-8-sig")],
                         ids=["excel-unicode-text", "excel-european-csv"])
def test_csv_separated_by_tabs_or_semicolons_loads(tmp_path, sep, encoding):
    """Excel's "Unicode text" is UTF-16 with tabs; Excel in a European locale writes "CSV" with semicolons."""
    rows = [HEADER.split(","), ["dress", "dress_wash", "能机洗吗？", "建议手洗，水温不超过30度。", "能洗衣机洗吗"]]
    path = tmp_path / "faqs.csv"
    path.write_bytes(("\r\n".join(sep.join(r) for r in rows) + "\r\n").encode(encoding))
    [(pid, faq)] = load_faq_csv(path)
    assert (pid, faq.id, faq.answer, faq.variants) == ("dress", "dress_wash", "建议手洗，水温不超过30度。", ("能洗衣机洗吗",))


def test_blank_csv_rows_are_skipped(tmp_path):
    """Empty lines and rows of empty cells in a CSV are ignored."""
    path = write_csv(tmp_path / "faqs.csv", [HEADER, "", ",,,,", "dress,dress_wash,能机洗吗？,建议手洗。,"])
    assert [f.id for _, f in load_faq_csv(path)] == ["dress_wash"]


# -- errors: one problem, located ---------------------------------------------------------------------------


def test_bad_product_id_pattern_is_reported(tmp_path):
    """A product id like 'Dress!' is rejected, naming the file, products[0] and the field id."""
    data = base()
    data["products"][0]["id"] = "Dress!"
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="products[0].id", field="id")


def test_missing_faq_answer_is_reported(tmp_path):
    """An FAQ without an answer is rejected, naming its path and the field answer."""
    data = base()
    del data["products"][1]["faqs"][0]["answer"]
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="products[1].faqs[0].answer", field="answer")


def test_empty_answer_in_csv_row_is_reported(tmp_path):
    """A CSV row with an empty answer is rejected, naming the CSV file, its row and the field answer."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = write_csv(tmp_path / "faqs.csv", [HEADER, "dress,dress_wash,能机洗吗？,建议手洗。,",
                                                 "dress,dress_iron,能熨吗？,  ,"])
    with pytest.raises(CatalogError) as exc:
        load_catalog(yml, faqs_csv=csv_path)
    probs = problems(exc)
    find(probs, file=csv_path, where="row 3", field="answer")
    assert len(probs) == 1


def test_duplicate_faq_id_across_products_is_reported(tmp_path):
    """The same FAQ id under two products is rejected at the second one, naming the first."""
    data = base()
    data["products"][1]["faqs"][0]["id"] = "dress_size"
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    p = find(problems(exc), file=path, where="products[1].faqs[0]", field="id")
    assert "dress_size" in p.message and "products[0].faqs[0]" in p.message


def test_duplicate_link_number_is_reported(tmp_path):
    """Two products with the same link number are rejected, naming the second product and field link."""
    data = base()
    data["products"][1]["link"] = 1
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    p = find(problems(exc), file=path, where="products[1]", field="link")
    assert "dress" in p.message


def test_unknown_product_id_in_csv_is_reported(tmp_path):
    """A CSV row for a product that is not in the catalog is rejected, naming the CSV row and product_id."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = write_csv(tmp_path / "faqs.csv", [HEADER, "dress,dress_wash,能机洗吗？,建议手洗。,",
                                                 "nope,nope_q,问？,答。,"])
    with pytest.raises(CatalogError) as exc:
        load_catalog(yml, faqs_csv=csv_path)
    p = find(problems(exc), file=csv_path, where="row 3", field="product_id")
    assert "nope" in p.message


def test_unknown_product_row_number_counts_blank_rows(tmp_path):
    """The row named for an unknown product_id is the CSV's own row number, even after blank rows."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = write_csv(tmp_path / "faqs.csv", [HEADER, "", ",,,,", "dress,dress_wash,能机洗吗？,建议手洗。,",
                                                 "nope,nope_q,问？,答。,"])
    with pytest.raises(CatalogError) as exc:
        load_catalog(yml, faqs_csv=csv_path)
    find(problems(exc), file=csv_path, where="row 5", field="product_id")


def test_wrong_csv_header_is_reported(tmp_path):
    """A CSV whose header is not product_id,id,question,answer,variants is rejected at row 1."""
    csv_path = write_csv(tmp_path / "faqs.csv", ["product,id,q,a,variants", "dress,x,问？,答。,"])
    with pytest.raises(CatalogError) as exc:
        load_faq_csv(csv_path)
    p = find(problems(exc), file=csv_path, where="row 1", field=None)
    assert HEADER in p.message


def test_wrong_csv_column_count_is_reported(tmp_path):
    """A CSV row with too few or too many columns is rejected, naming its row and the counts."""
    csv_path = write_csv(tmp_path / "faqs.csv", [HEADER, "dress,x,问？,答。", "dress,y,问？,答。,,extra"])
    with pytest.raises(CatalogError) as exc:
        load_faq_csv(csv_path)
    probs = problems(exc)
    assert "got 4" in find(probs, file=csv_path, where="row 2", field=None).message
    assert "got 6" in find(probs, file=csv_path, where="row 3", field=None).message


def test_duplicate_faq_id_within_csv_is_reported(tmp_path):
    """Two CSV rows with the same FAQ id are rejected at the second row, naming the first."""
    csv_path = write_csv(tmp_path / "faqs.csv", [HEADER, "dress,x,问？,答。,", "fryer,x,问二？,答二。,"])
    with pytest.raises(CatalogError) as exc:
        load_faq_csv(csv_path)
    assert "row 2" in find(problems(exc), file=csv_path, where="row 3", field="id").message


def test_unknown_top_level_key_is_reported(tmp_path):
    """An unknown top-level key is rejected (extra='forbid'), naming the key."""
    data = base()
    data["prodcuts"] = []
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="prodcuts", field="prodcuts")


def test_unknown_nested_key_is_reported(tmp_path):
    """An unknown key inside a product is rejected, naming its path."""
    data = base()
    data["products"][0]["prise"] = 10
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="products[0].prise", field="prise")


def test_invalid_yaml_syntax_is_reported(tmp_path):
    """A YAML syntax error is a CatalogError naming the file, not a yaml exception."""
    path = tmp_path / "shop.yaml"
    path.write_text("shop: {name: 小店\nproducts: [\n", encoding="utf-8")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    p = find(problems(exc), file=path, where="(file)", field=None)
    assert "YAML" in p.message


def test_json_list_is_reported(tmp_path):
    """A JSON catalog whose top level is a list is rejected at the top level."""
    path = tmp_path / "shop.json"
    path.write_text(json.dumps([base()]), encoding="utf-8")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="(top level)", field=None)


def test_invalid_json_is_reported(tmp_path):
    """A JSON syntax error is a CatalogError naming the file."""
    path = tmp_path / "shop.json"
    path.write_text('{"shop": ', encoding="utf-8")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert "JSON" in find(problems(exc), file=path, where="(file)", field=None).message


def test_missing_catalog_file_is_reported(tmp_path):
    """A catalog path that does not exist is a CatalogError saying so."""
    path = tmp_path / "absent.yaml"
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    assert "not found" in find(problems(exc), file=path, where="(file)", field=None).message


def test_missing_csv_file_is_reported(tmp_path):
    """A FAQ CSV path that does not exist is a CatalogError naming the CSV."""
    yml = write_yaml(tmp_path / "shop.yaml", base())
    csv_path = tmp_path / "absent.csv"
    with pytest.raises(CatalogError) as exc:
        load_catalog(yml, faqs_csv=csv_path)
    find(problems(exc), file=csv_path, where="(file)", field=None)


def test_unsupported_suffix_is_reported(tmp_path):
    """A catalog that is not .yaml/.yml/.json is rejected before it is read."""
    path = tmp_path / "shop.txt"
    path.write_text("shop: {name: x}", encoding="utf-8")
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    find(problems(exc), file=path, where="(file)", field=None)


def test_file_over_size_limit_is_reported(tmp_path, monkeypatch):
    """A file larger than MAX_FILE_BYTES is refused with its size and the limit."""
    path = write_yaml(tmp_path / "shop.yaml", base())
    size = path.stat().st_size
    assert load_catalog(path).shop.name == "测试小店"  # under the real limit it loads
    monkeypatch.setattr(catalog_mod, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    p = find(problems(exc), file=path, where="(file)", field=None)
    assert str(size) in p.message and str(size - 1) in p.message


def test_error_message_names_file_and_count(tmp_path):
    """The CatalogError text states how many problems there are and names the file in each line."""
    data = base()
    data["products"][0]["id"] = "Dress!"
    data["products"][1]["price"] = -1
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    text = str(exc.value)
    assert text.startswith("2 problem(s)")
    assert text.count(str(path)) == 2


# -- errors: every problem reported -------------------------------------------------------------------------


def test_all_schema_problems_in_one_file_are_reported(tmp_path):
    """Three schema errors in one YAML file give three problems, one per location."""
    data = base()
    data["products"][0]["id"] = "Dress!"
    del data["products"][0]["faqs"][0]["answer"]
    data["products"][1]["price"] = -5
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    probs = problems(exc)
    assert len(probs) == 3
    find(probs, file=path, where="products[0].id", field="id")
    find(probs, file=path, where="products[0].faqs[0].answer", field="answer")
    find(probs, file=path, where="products[1].price", field="price")


def test_all_cross_check_problems_are_reported(tmp_path):
    """Duplicate product id, link and FAQ id in one file are three problems."""
    data = base()
    third = copy.deepcopy(data["products"][1])
    third["link"] = 3
    third["faqs"][0]["id"] = "other"
    data["products"].append(third)                         # duplicate product id 'fryer'
    data["products"][1]["link"] = 1                        # duplicate link
    data["shop"]["faqs"][0]["id"] = "dress_size"           # duplicate FAQ id (shop vs dress)
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    probs = problems(exc)
    assert len(probs) == 3
    find(probs, file=path, where="products[2]", field="id")
    find(probs, file=path, where="products[1]", field="link")
    find(probs, file=path, where="products[0].faqs[0]", field="id")


def test_all_csv_row_problems_are_reported(tmp_path):
    """Every bad CSV row is reported, not just the first."""
    csv_path = write_csv(tmp_path / "faqs.csv", [
        HEADER,
        "dress,ok,问？,答。,",
        "dress,Bad Id,问？,答。,",
        "dress,no_answer,问？,,",
        "dress,short,问？",
    ])
    with pytest.raises(CatalogError) as exc:
        load_faq_csv(csv_path)
    probs = problems(exc)
    assert len(probs) == 3
    assert [p.where for p in probs] == ["row 3", "row 4", "row 5"]


def test_schema_and_cross_check_problems_are_reported_together(tmp_path):
    """A file with a schema error and a duplicate link reports both (every problem in the file)."""
    data = base()
    data["products"][0]["id"] = "Dress!"
    data["products"][1]["link"] = 1
    path = write_yaml(tmp_path / "shop.yaml", data)
    with pytest.raises(CatalogError) as exc:
        load_catalog(path)
    probs = problems(exc)
    find(probs, file=path, where="products[0].id", field="id")
    find(probs, file=path, where="products[1]", field="link")


def test_unreadable_csv_is_a_row_problem_not_a_crash():
    """A field beyond the csv module's limit (a pasted blob) is reported at its row."""
    from cohost.knowledge.catalog import parse_faq_csv

    text = "product_id,id,question,answer,variants\n,a,q," + "x" * 200_000 + ",\n"
    with pytest.raises(CatalogError) as e:
        parse_faq_csv(text, "faqs.csv")
    (problem,) = e.value.problems
    assert problem.where == "row 2" and "not readable as CSV" in problem.message


def test_with_faqs_edits_in_place_and_appends_new_ones():
    """Replacing an FAQ keeps the owner's order; a new one goes last; one moved to another product leaves."""
    from cohost.knowledge.catalog import FAQ

    c = load_catalog(Path(__file__).resolve().parent.parent / "knowledge" / "shop.yaml")
    before = [f.id for f in c.product("dress").faqs]
    after = c.with_faqs([("dress", FAQ(id=before[0], question="改过的问题", answer="改过的答案")),
                         ("dress", FAQ(id="dress_new", question="新问题", answer="新答案")),
                         ("fryer", FAQ(id=before[1], question="搬走的", answer="答案"))])
    dress = after.product("dress").faqs
    assert [f.id for f in dress] == [before[0], *before[2:], "dress_new"]
    assert dress[0].answer == "改过的答案"
    assert after.product("fryer").faqs[-1].id == before[1]


@pytest.mark.parametrize("path", sorted((ROOT / "knowledge" / "shops").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_sample_shop_loads_and_its_cases_name_its_entries(path):
    """The sample shops that docs/quality.md measures load, and every case expects an entry they have."""
    from cohost.knowledge.entries import catalog_entries
    ids = {e.id for e in catalog_entries(load_catalog(path))}
    case_files = sorted((ROOT / "knowledge" / "eval").glob(f"{path.stem}_*.jsonl"))
    assert case_files
    for f in case_files:
        for line in f.read_text(encoding="utf-8").splitlines():
            expect = json.loads(line).get("expect_faq")
            assert expect is None or expect in ids, f"{f.name}: {expect}"
