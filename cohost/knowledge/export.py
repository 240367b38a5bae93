"""Catalog downloads: the whole catalog as YAML or JSON, the FAQs as CSV or Excel.

Every format loads back with the matching loader (parse_catalog, parse_faq_csv, parse_faq_xlsx) to what was dumped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import yaml
from openpyxl import Workbook
from openpyxl.styles import Font

from .catalog import CSV_HEADER, FAQ, Catalog
from .untrusted import export_cell, starts_like_formula

FORMATS = {
    "yaml": "application/yaml",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def dump_catalog(catalog: Catalog, fmt: str) -> bytes:
    """The catalog as a file in fmt, one of FORMATS. csv and xlsx hold the FAQs only."""
    if fmt == "yaml":
        return yaml.dump(_document(catalog), Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                         width=1 << 16).encode("utf-8")
    if fmt == "json":
        return (json.dumps(_document(catalog), ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    if fmt == "csv":
        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(CSV_HEADER)
        writer.writerows(_faq_table(catalog))
        # The BOM is what makes Excel read the file as UTF-8 instead of the system code page.
        return buf.getvalue().encode("utf-8-sig")
    if fmt == "xlsx":
        return _xlsx(catalog)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def _document(catalog: Catalog) -> dict[str, Any]:
    """The catalog as plain data without default values, so the file reads like a hand-written one."""
    data = catalog.model_dump(mode="json", exclude_defaults=True)
    for product in data.get("products", []):
        price = product.get("price")
        # Prices are floats in the model; 159 is what a person writes, and it loads back as 159.0.
        if isinstance(price, float) and price.is_integer():
            product["price"] = int(price)
        if "aliases" in product:
            product["aliases"] = _Flow(product["aliases"])
    for faq in _all_faq_dicts(data):
        if "variants" in faq:
            faq["variants"] = _Flow(faq["variants"])
    return data


def _all_faq_dicts(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from data["shop"].get("faqs", [])
    for product in data.get("products", []):
        yield from product.get("faqs", [])


class _Flow(list):
    """A short list written on one line, [a, b], as in knowledge/shop.yaml. JSON sees a plain list."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them, instead of PyYAML's flush-left default.
        return super().increase_indent(flow, False)


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _faq_table(catalog: Catalog) -> Iterator[list[str]]:
    """FAQ rows in CSV_HEADER order, shop-wide ones first with an empty product_id."""
    rows: list[tuple[str, FAQ]] = [("", f) for f in catalog.shop.faqs]
    rows += [(p.id, f) for p in catalog.products for f in p.faqs]
    for pid, faq in rows:
        if any("|" in v for v in faq.variants):
            # Variants are joined with | in a cell; one containing | would come back split in two.
            raise ValueError(f"FAQ '{faq.id}' has a variant containing '|', which CSV and Excel exports cannot hold")
        # Neutralised for spreadsheets: nothing downloaded runs as a formula when opened in Excel (a ' in front,
        # which parse_faq_csv and parse_faq_xlsx take off again), and control characters are dropped.
        yield [export_cell(cell) for cell in (pid, faq.id, faq.question, faq.answer, "|".join(faq.variants))]


def _xlsx(catalog: Catalog) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "FAQs"
    ws.append(CSV_HEADER)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for row in _faq_table(catalog):
        # In a workbook the ' is a cell style (quotePrefix, what Excel sets when one types '=...), not text.
        quoted = [text.startswith("'") and starts_like_formula(text[1:]) for text in row]
        ws.append([text[1:] if q else text for text, q in zip(row, quoted, strict=True)])
        for cell, q in zip(ws[ws.max_row], quoted, strict=False):
            # openpyxl stores text starting with '=' as a formula, which would come back empty (never calculated).
            cell.data_type = "s"
            if q:
                cell.quotePrefix = True
    for letter, width in zip("ABCDE", (14, 18, 30, 60, 40), strict=True):
        ws.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
