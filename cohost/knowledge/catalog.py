"""Catalog models and loaders (YAML, JSON, CSV; Excel FAQs are in spreadsheet.py).

Loading is all-or-nothing: every problem in a file is collected into one CatalogError that names the
file, the row or path and the field, and no partial catalog is ever returned.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from ..errors import CatalogError, Problem
from ..gate import Gate
from . import untrusted

Id = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
CSV_HEADER = ["product_id", "id", "question", "answer", "variants"]
MAX_FILE_BYTES = 20 * 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FAQ(_Model):
    id: Id
    question: Text
    answer: Text
    variants: tuple[Text, ...] = ()


class Product(_Model):
    id: Id
    link: Annotated[int, Field(ge=1, le=9999)] | None = None
    name: Text
    aliases: tuple[Text, ...] = ()
    # Finite, under ten million and in whole fen: a price said in public is said exactly as written.
    price: Annotated[float, Field(ge=0, lt=10_000_000, allow_inf_nan=False)] | None = None
    specs: dict[Text, Text] = Field(default_factory=dict)
    selling_points: tuple[Text, ...] = ()
    faqs: tuple[FAQ, ...] = ()

    @field_validator("specs", mode="before")
    @classmethod
    def _specs_as_text(cls, v: Any) -> Any:
        # YAML turns "容量: 5" into an int; a spec is shown as text either way.
        if isinstance(v, dict):
            return {str(k): (str(val) if isinstance(val, int | float) else val) for k, val in v.items()}
        return v

    @field_validator("price", mode="before")
    @classmethod
    def _price_in_fen(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().removesuffix("元").strip()
        if isinstance(v, int | float | str) and not isinstance(v, bool):
            text = str(v)
            if re.fullmatch(r"\d+(\.\d+)?", text) and "." in text and len(text.split(".")[1].rstrip("0")) > 2:
                raise ValueError(f"price {text} has more than two decimal places; write it in yuan and fen (19.99)")
        return v

    @property
    def price_text(self) -> str | None:
        if self.price is None:
            return None
        # Never round or use e-notation: a price said in public must be exactly the catalog's.
        text = f"{self.price:.2f}".rstrip("0").rstrip(".")
        return text

    def facts_text(self) -> str:
        """Everything the product's fields state, as one text: what a reply about it may rest on."""
        lines = [self.name, *self.aliases]
        if self.link is not None:
            lines.append(f"{self.link}号链接")
        if self.price_text is not None:
            lines.append(f"直播间价{self.price_text}元")
        lines += [f"{k}：{v}" for k, v in self.specs.items()]
        lines += list(self.selling_points)
        return "\n".join(lines)


class Shop(_Model):
    name: Text
    faqs: tuple[FAQ, ...] = ()


class Catalog(_Model):
    shop: Shop
    products: tuple[Product, ...] = ()

    def product(self, product_id: str) -> Product | None:
        return next((p for p in self.products if p.id == product_id), None)

    def reply_facts(self, product_id: str | None, body: str) -> str:
        """What a reply may rest on (the gate's facts): the entry it answers from and its product's own fields."""
        product = self.product(product_id) if product_id else None
        return f"{product.facts_text()}\n{body}" if product is not None else body

    def faq_count(self) -> int:
        return len(self.shop.faqs) + sum(len(p.faqs) for p in self.products)

    def with_faqs(self, rows: Iterable[tuple[str | None, FAQ]], *, source: str = "<faqs>") -> Catalog:
        """Return a new catalog with FAQs added or replaced by id. rows: (product_id or None, FAQ)."""
        rows = list(rows)
        problems = []
        known = {p.id for p in self.products}
        for i, (pid, _faq) in enumerate(rows):
            if pid and pid not in known:
                problems.append(Problem(source, f"FAQ {i + 1}", "product_id", f"unknown product '{pid}'"))
        if problems:
            raise CatalogError(problems)
        incoming = {faq.id for _, faq in rows}

        def merged(existing: tuple[FAQ, ...], pid: str | None) -> tuple[FAQ, ...]:
            # A replaced FAQ keeps its place (the owner's order); new ones go at the end.
            mine = {f.id: f for p, f in rows if (p or None) == pid}
            kept = [mine.pop(f.id, f) for f in existing if f.id not in incoming or f.id in mine]
            return tuple(kept + list(mine.values()))

        products = tuple(p.model_copy(update={"faqs": merged(p.faqs, p.id)}) for p in self.products)
        shop = self.shop.model_copy(update={"faqs": merged(self.shop.faqs, None)})
        return validate_catalog({"shop": shop.model_dump(), "products": [p.model_dump() for p in products]},
                                source)


def gate_problems(catalog: Catalog, gate: Gate, source: str) -> list[Problem]:
    """What the catalog would say in public that the gate refuses: advertising-law words in FAQ answers,
    spec values and product names (all sent to chat as written). Refused when a version is committed,
    so an owner learns it at upload, with the entry and the word. Selling points only feed the
    streamer's talking points, where such a word is shown with a warning instead."""
    problems: list[Problem] = []

    def check(where: str, field: str, text: str) -> None:
        for p in gate.lint(text):
            message = f"含广告法禁用词“{p.word}”：请改写，或在 /admin 的广告法禁用词里把这个说法设为允许"
            problems.append(Problem(source, where, field, message))

    for i, faq in enumerate(catalog.shop.faqs):
        check(f"shop.faqs[{i}] (FAQ {faq.id})", "answer", faq.answer)
    for i, product in enumerate(catalog.products):
        check(f"products[{i}] ({product.id})", "name", product.name)
        for key, value in product.specs.items():
            check(f"products[{i}] ({product.id}).specs", key, value)
        for j, faq in enumerate(product.faqs):
            check(f"products[{i}].faqs[{j}] (FAQ {faq.id})", "answer", faq.answer)
    return problems


def _loc(loc: tuple[Any, ...]) -> tuple[str, str | None]:
    """Split a pydantic error location into a readable path and the field name."""
    parts = [str(p) for p in loc]
    path = ""
    for p in parts:
        path += f"[{p}]" if p.isdigit() else (f".{p}" if path else p)
    field = parts[-1] if parts and not parts[-1].isdigit() else None
    return path or "(top level)", field


def validate_catalog(data: Any, source: str) -> Catalog:
    """Validate a parsed document into a Catalog, collecting every problem (schema and cross-checks)."""
    if not isinstance(data, dict):
        raise CatalogError([Problem(source, "(top level)", None, "expected a mapping with 'shop' and 'products'")])
    problems = _cross_check(data, source)
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as e:
        problems = [Problem(source, *_loc(err["loc"]), err["msg"]) for err in e.errors()] + problems
    if problems:
        raise CatalogError(problems)
    return catalog


def _as_list(v: Any) -> list[Any]:
    # Tuples too: a catalog re-validated from model_dump() (API edits, with_faqs) holds tuples, not lists.
    return list(v) if isinstance(v, list | tuple) else []


def _cross_check(data: dict[str, Any], source: str) -> list[Problem]:
    """Uniqueness of product ids, links and FAQ ids, checked on the raw document so that these problems
    are reported together with schema errors."""
    problems: list[Problem] = []
    product_ids: set[Any] = set()
    links: dict[Any, Any] = {}
    faq_ids: dict[Any, str] = {}

    def check_faqs(faqs: Any, prefix: str) -> None:
        for j, faq in enumerate(_as_list(faqs)):
            fid = faq.get("id") if isinstance(faq, dict) else None
            if not isinstance(fid, str):
                continue
            where = f"{prefix}.faqs[{j}]"
            if fid in faq_ids:
                problems.append(Problem(source, where, "id", f"duplicate FAQ id '{fid}' (first at {faq_ids[fid]})"))
            else:
                faq_ids[fid] = where

    shop = data.get("shop")
    check_faqs(shop.get("faqs") if isinstance(shop, dict) else None, "shop")
    for i, p in enumerate(_as_list(data.get("products"))):
        if not isinstance(p, dict):
            continue
        where = f"products[{i}]"
        pid, link = p.get("id"), p.get("link")
        if isinstance(pid, str):
            if pid in product_ids:
                problems.append(Problem(source, where, "id", f"duplicate product id '{pid}'"))
            product_ids.add(pid)
        if isinstance(link, int) and not isinstance(link, bool):
            if link in links:
                problems.append(Problem(source, where, "link", f"link {link} is already used by '{links[link]}'"))
            links.setdefault(link, pid)
        check_faqs(p.get("faqs"), where)
    return problems


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CatalogError([Problem(str(path), "(file)", None, "file not found")]) from None
    if size > MAX_FILE_BYTES:
        raise CatalogError([Problem(str(path), "(file)", None,
                                    f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes")])
    return path.read_bytes()


def decode_text(data: bytes, source: str) -> str:
    """A file's text in UTF-8, UTF-16, GBK/GB18030 or Big5, detected; CatalogError (with the rows) when it
    comes out as mojibake. See untrusted.decode_text."""
    return untrusted.decode_text(data, source)


def load_document(text: str, fmt: str, source: str) -> Any:
    """Catalog text in 'yaml' or 'json' format as plain data, not yet validated (uploads check its size
    with YAML aliases expanded before validating it: see uploads.check_document). Duplicate keys, deep
    nesting, huge or non-finite numbers and control characters are refused here: see untrusted.load_document."""
    return untrusted.load_document(text, fmt, source)


def parse_catalog(text: str, fmt: str, source: str) -> Catalog:
    """Parse catalog text in 'yaml' or 'json' format."""
    return validate_catalog(load_document(text, fmt, source), source)


def load_catalog(path: str | Path, faqs_csv: str | Path | None = None) -> Catalog:
    """Load a catalog from .yaml/.yml/.json, optionally adding FAQs from a CSV file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise CatalogError([Problem(str(path), "(file)", None, "catalog must be .yaml, .yml or .json")])
    catalog = parse_catalog(decode_text(_read_bytes(path), str(path)), "json" if suffix == ".json" else "yaml",
                            str(path))
    if faqs_csv is not None:
        rows = load_faq_csv(faqs_csv, known_products={p.id for p in catalog.products})
        catalog = catalog.with_faqs(rows, source=str(faqs_csv))
    return catalog


def load_faq_csv(path: str | Path, known_products: set[str] | None = None) -> list[tuple[str | None, FAQ]]:
    """Load FAQ rows from CSV with the header product_id,id,question,answer,variants."""
    path = Path(path)
    return parse_faq_csv(decode_text(_read_bytes(path), str(path)), str(path), known_products)


def parse_faq_csv(text: str, source: str, known_products: set[str] | None = None) -> list[tuple[str | None, FAQ]]:
    """Parse FAQ CSV rows. With known_products, an unknown product_id is reported at its row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        return faq_rows(enumerate(reader, start=1), source, known_products)
    except csv.Error as e:  # a field over the csv module's limit, a NUL byte...
        raise CatalogError([Problem(source, f"row {reader.line_num}", None, f"not readable as CSV: {e}")]) from None


def _delimiter(text: str) -> str:
    """The separator the header row uses. Excel's "Unicode text" (UTF-16) is tab-separated, and Excel set to
    a European locale saves "CSV" with semicolons; a comma unless the header reads right with another."""
    first = text.split("\n", 1)[0]
    for d in ("\t", ";"):
        if d in first and [h.strip().strip('"').lower() for h in first.split(d)] == CSV_HEADER:
            return d
    return ","


def faq_rows(rows: Iterable[tuple[int, list[str]]], source: str,
             known_products: set[str] | None = None) -> list[tuple[str | None, FAQ]]:
    """Validate a FAQ table given as (row number, cells), the header first.

    Shared by the CSV and Excel readers so that both follow the same rules and name the same rows.
    Returns (product_id or None, FAQ) pairs; raises one CatalogError with every problem found.
    """
    it = iter(rows)
    first = next(it, None)
    if first is None:
        raise CatalogError([Problem(source, "row 1", None,
                                    "empty file; expected the header " + ",".join(CSV_HEADER))])
    header_row, header = first
    header = [h.strip().lower() for h in header]
    if header != CSV_HEADER:
        raise CatalogError([Problem(source, f"row {header_row}", None,
                                    f"header must be {','.join(CSV_HEADER)}, got {','.join(header)}")])
    result: list[tuple[str | None, FAQ]] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, row in it:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(CSV_HEADER):
            problems.append(Problem(source, f"row {n}", None, f"expected {len(CSV_HEADER)} columns, got {len(row)}"))
            continue
        # Formulas and control characters are refused by cell, before the FAQ is validated: either would be
        # published as written (see untrusted.cell_value).
        cells, refused = [], []
        for name, cell in zip(CSV_HEADER, row, strict=True):
            value, why = untrusted.cell_value(cell.strip())
            cells.append(value)
            if why:
                refused.append(Problem(source, f"row {n}", name, why))
        if refused:
            problems += refused
            continue
        pid, fid, question, answer, variants = cells
        try:
            faq = FAQ(id=fid, question=question, answer=answer,
                      variants=tuple(v.strip() for v in variants.split("|") if v.strip()))
        except ValidationError as e:
            for err in e.errors():
                field = str(err["loc"][0]) if err["loc"] else None
                problems.append(Problem(source, f"row {n}", field, err["msg"]))
            continue
        if fid in seen:
            problems.append(Problem(source, f"row {n}", "id", f"duplicate FAQ id '{fid}' (first in row {seen[fid]})"))
            continue
        if pid and known_products is not None and pid not in known_products:
            problems.append(Problem(source, f"row {n}", "product_id", f"unknown product '{pid}'"))
            continue
        seen[fid] = n
        result.append((pid or None, faq))
    if problems:
        raise CatalogError(problems)
    return result
