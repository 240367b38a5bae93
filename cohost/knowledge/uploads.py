"""An uploaded file (from the API, the admin page or the CLI) as the catalog it would make."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from .. import messages
from ..errors import CatalogError, Problem
from ..gate import Gate
from .catalog import Catalog, decode_text, gate_problems, load_document, parse_faq_csv, validate_catalog
from .diff import CatalogDiff, diff_catalogs
from .parse_worker import ParseWorker, UploadTooLarge, default_worker
from .spreadsheet import parse_faq_xlsx

UPLOAD_KINDS = {".yaml": "catalog", ".yml": "catalog", ".json": "catalog", ".csv": "faqs", ".xlsx": "faqs"}


@dataclass(frozen=True)
class UploadCaps:
    """What one catalog may hold, counted on the document as loaded: a YAML alias counts as a full copy of
    what it points to (``faqs: [*a, *a, ...]`` is that many FAQs), which is what validating, storing and
    indexing it would cost. Over a cap, an upload is refused with 413 and a problem naming the cap, before
    pydantic sees it. The file itself is limited by store.max_upload_bytes (config.yaml), the parse by the
    worker's budgets (parse_worker.PARSE_MEMORY_BYTES, PARSE_TIME_S)."""

    products: int = 2_000
    faqs: int = 20_000                     # shop-wide and per product together (spreadsheet.MAX_ROWS per file)
    variants_per_faq: int = 50
    variants: int = 100_000                # all FAQs together
    aliases_per_product: int = 50
    selling_points_per_product: int = 50
    selling_points: int = 20_000
    specs_per_product: int = 100
    field_chars: int = 2_000               # the same as catalog.Text: any one name, question, answer, spec...
    total_chars: int = 10_000_000          # every string and key of the document, aliases expanded
    values: int = 2_000_000                # every value (string, number, list, mapping), aliases expanded
    depth: int = 20                        # a catalog is 6 levels deep; deeper is not a catalog


CAPS = UploadCaps()


def _too_big(source: str, where: str, what: str, count: int, cap: int, unit: str = "") -> UploadTooLarge:
    """``what``: one of messages.CAP_LABELS (raised in English like every problem; messages.py says it in
    Chinese)."""
    assert what in messages.CAP_LABELS, what
    aliases = " (YAML aliases counted expanded)" if PurePath(source).suffix.lower() in (".yaml", ".yml") else ""
    message = f"{what} over the cap: at least {count:,}, the cap is {cap:,}{aliases}; the file was not processed"
    return UploadTooLarge([Problem(source, where, None, message)])


def check_document(data: Any, source: str, caps: UploadCaps = CAPS) -> None:
    """Refuse a loaded (not yet validated) catalog document over the caps, counting aliases expanded.

    Every loop stops at the first cap it passes, so a document that expands to gigabytes costs no more
    than its caps to refuse. Strings longer than a field may be are ordinary problems (422), listed."""
    if not isinstance(data, dict):
        return  # validate_catalog says what is wrong with it
    shop = data.get("shop")
    products = data.get("products")
    products = products if isinstance(products, list) else []
    if len(products) > caps.products:
        raise _too_big(source, "products", "products", len(products), caps.products)
    faq_lists = [("shop.faqs", shop.get("faqs") if isinstance(shop, dict) else None)]
    points = 0
    for i, p in enumerate(products):
        if not isinstance(p, dict):
            continue
        where = f"products[{i}]"
        faq_lists.append((f"{where}.faqs", p.get("faqs")))
        for key, what, cap in (("aliases", "aliases of one product", caps.aliases_per_product),
                               ("selling_points", "selling points of one product", caps.selling_points_per_product),
                               ("specs", "specs of one product", caps.specs_per_product)):
            value = p.get(key)
            n = len(value) if isinstance(value, list | dict) else 0
            if n > cap:
                raise _too_big(source, f"{where}.{key}", what, n, cap)
            if key == "selling_points":
                points += n
                if points > caps.selling_points:
                    raise _too_big(source, f"{where}.{key}", "selling points in all", points, caps.selling_points)
    faqs = variants = 0
    faq_lists = [(where, items) for where, items in faq_lists if isinstance(items, list)]
    for where, items in faq_lists:
        faqs += len(items)
        if faqs > caps.faqs:
            raise _too_big(source, where, "FAQs in all", faqs, caps.faqs)
    for where, items in faq_lists:
        for j, faq in enumerate(items):
            v = faq.get("variants") if isinstance(faq, dict) else None
            n = len(v) if isinstance(v, list) else 0
            if n > caps.variants_per_faq:
                raise _too_big(source, f"{where}[{j}].variants", "variants of one FAQ", n, caps.variants_per_faq)
            variants += n
            if variants > caps.variants:
                raise _too_big(source, f"{where}[{j}].variants", "variants in all", variants, caps.variants)
    _check_values(data, source, caps)


def _check_values(data: Any, source: str, caps: UploadCaps) -> None:
    """Every value once per place it appears (so aliases expanded), without recursion (deep documents).
    Values are counted when they are put on the stack, so the stack never holds more than the cap."""
    problems: list[Problem] = []
    values, chars = 1, 0
    # (value, depth, path) where path is (parent path, key): built only when a problem names it.
    stack: list[tuple[Any, int, Any]] = [(data, 0, None)]
    while stack:
        value, depth, path = stack.pop()
        if depth > caps.depth:
            raise UploadTooLarge([Problem(source, _path(path), None, f"嵌套超过 {caps.depth} 层，这不是一个商品目录")])
        if isinstance(value, str):
            chars += len(value)
            if len(value) > caps.field_chars and len(problems) < 20:
                key = path[1] if path else None
                problems.append(Problem(source, _path(path), key if isinstance(key, str) else None,
                                        f"有 {len(value):,} 个字，一个字段最多 {caps.field_chars:,} 个字"))
        elif isinstance(value, dict | list):
            values += len(value)
            if values > caps.values:
                raise _too_big(source, _path(path), "values in the file", values, caps.values)
            if isinstance(value, dict):
                for k, v in value.items():
                    chars += len(k) if isinstance(k, str) else 0
                    stack.append((v, depth + 1, (path, k)))
            else:
                stack.extend((v, depth + 1, (path, i)) for i, v in enumerate(value))
        if chars > caps.total_chars:
            raise _too_big(source, "(file)", "characters in the file", chars, caps.total_chars)
    if problems:
        raise CatalogError(problems)


def _path(path: Any) -> str:
    keys: list[Any] = []
    while path is not None:
        path, key = path
        keys.append(key)
    out = ""
    for p in reversed(keys):
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_catalog(catalog: Catalog, source: str, caps: UploadCaps = CAPS) -> None:
    """The caps on a validated catalog: FAQ rows (CSV/XLSX) are merged into the head, so the result is
    checked too. Over a cap, the document's check says which."""
    faqs = catalog.shop.faqs + tuple(f for p in catalog.products for f in p.faqs)
    if (len(catalog.products) > caps.products or len(faqs) > caps.faqs
            or any(len(f.variants) > caps.variants_per_faq for f in faqs)
            or sum(len(f.variants) for f in faqs) > caps.variants
            or sum(len(p.selling_points) for p in catalog.products) > caps.selling_points):
        check_document({"shop": {"faqs": [{"variants": list(f.variants)} for f in catalog.shop.faqs]},
                        "products": [{"selling_points": list(p.selling_points),
                                      "faqs": [{"variants": list(f.variants)} for f in p.faqs]}
                                     for p in catalog.products]}, source, caps)


def _count_csv_rows(text: str, source: str, caps: UploadCaps) -> None:
    # Before any row is validated: a 100k-row file is refused in a fraction of a second.
    rows = 0
    try:
        for row in csv.reader(io.StringIO(text, newline="")):
            if any(cell.strip() for cell in row):
                rows += 1
                if rows > caps.faqs + 1:  # the header is a row
                    raise _too_big(source, f"row {rows}", "FAQ rows", rows - 1, caps.faqs)
    except csv.Error:
        return  # parse_faq_csv names the row


def parse_upload(data: bytes, filename: str, head: Catalog | None) -> tuple[Catalog, str]:
    """An uploaded file as the catalog it would make: a whole catalog (YAML/JSON) replaces the head,
    FAQ rows (CSV/XLSX) are added to it or replace FAQs with the same id."""
    suffix = PurePath(filename).suffix.lower()
    kind = UPLOAD_KINDS.get(suffix)
    if kind is None:
        raise CatalogError([Problem(filename, "(file)", None, f"unsupported file type {suffix or '(none)'}; "
                                    "use .yaml, .yml, .json (whole catalog) or .csv, .xlsx (FAQs)")])
    if kind == "catalog":
        document = load_document(decode_text(data, filename), "json" if suffix == ".json" else "yaml", filename)
        check_document(document, filename)
        candidate = validate_catalog(document, filename)
        check_catalog(candidate, filename)
        return candidate, kind
    if head is None:
        raise CatalogError([Problem(filename, "(file)", None,
                                    "this shop has no catalog yet: upload a whole catalog (.yaml/.json) first")])
    known = {p.id for p in head.products}
    if suffix == ".xlsx":
        rows = parse_faq_xlsx(data, filename, known)
    else:
        text = decode_text(data, filename)
        _count_csv_rows(text, filename, CAPS)
        rows = parse_faq_csv(text, filename, known)
    candidate = head.with_faqs(rows, source=filename)
    check_catalog(candidate, filename)
    return candidate, kind


@dataclass(frozen=True)
class Prepared:
    """An upload parsed, validated, gate-checked and compared with the head, in the parse worker."""

    kind: str                   # "catalog" or "faqs"
    diff_json: bytes            # diff.to_json() encoded: the server sends it as it is, encoding nothing itself
    empty: bool                 # the upload changes nothing
    candidate: Catalog | None   # when asked for: the catalog it would make (a preview does not need it)
    diff: CatalogDiff | None    # when asked for (the CLI prints it)


def _prepare(data: bytes, filename: str, head: Catalog | None, gate: Gate | None, want_candidate: bool,
             want_diff: bool) -> Prepared:
    try:
        candidate, kind = parse_upload(data, filename, head)
    except RecursionError:
        raise CatalogError([Problem(filename, "(file)", None, "嵌套层数太多，无法读取")]) from None
    if gate is not None:
        problems = gate_problems(candidate, gate, filename)
        if problems:
            raise CatalogError(problems)
    diff = diff_catalogs(head, candidate)
    encoded = json.dumps(diff.to_json(), ensure_ascii=False, separators=(",", ":")).encode()
    return Prepared(kind, encoded, diff.empty, candidate if want_candidate else None, diff if want_diff else None)


def prepare_upload(data: bytes, filename: str, head: Catalog | None, gate: Gate | None = None, *,
                   want_candidate: bool = False, want_diff: bool = False,
                   worker: ParseWorker | None = None) -> Prepared:
    """parse_upload, the gate's check and the diff in the parse worker (another process, with a memory and
    a time budget): the caller's interpreter lock stays free. Raises CatalogError (UploadTooLarge over a
    cap or budget, ParseWorkerCrashed when the worker died)."""
    return (worker or default_worker()).run(_prepare, data, filename, head, gate, want_candidate, want_diff,
                                            source=filename)


async def aprepare_upload(data: bytes, filename: str, head: Catalog | None, gate: Gate | None = None, *,
                          want_candidate: bool = False, want_diff: bool = False,
                          worker: ParseWorker | None = None) -> Prepared:
    """prepare_upload from the event loop (waiting on a thread of the worker's own)."""
    return await (worker or default_worker()).arun(_prepare, data, filename, head, gate, want_candidate, want_diff,
                                                   source=filename)


def _parse(data: bytes, filename: str, head: Catalog | None) -> Catalog:
    return parse_upload(data, filename, head)[0]


def upload_change(data: bytes, filename: str, candidate: Catalog, kind: str, *,
                  worker: ParseWorker | None = None) -> Callable[[Catalog | None], Catalog]:
    """The change a previewed upload makes when it is written: a whole catalog is the candidate as
    previewed; FAQ rows are merged into the head as it is at that moment (it may have moved on), in the
    parse worker like the preview."""
    def change(current: Catalog | None) -> Catalog:
        if kind == "catalog" or current is None:
            return candidate
        return (worker or default_worker()).run(_parse, data, filename, current, source=filename)
    return change
