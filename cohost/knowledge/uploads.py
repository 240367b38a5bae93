"""An uploaded file (from the API, the admin page or the CLI) as the catalog it would make."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath

from ..errors import CatalogError, Problem
from .catalog import Catalog, decode_text, parse_catalog, parse_faq_csv
from .spreadsheet import parse_faq_xlsx

UPLOAD_KINDS = {".yaml": "catalog", ".yml": "catalog", ".json": "catalog", ".csv": "faqs", ".xlsx": "faqs"}


def parse_upload(data: bytes, filename: str, head: Catalog | None) -> tuple[Catalog, str]:
    """An uploaded file as the catalog it would make: a whole catalog (YAML/JSON) replaces the head,
    FAQ rows (CSV/XLSX) are added to it or replace FAQs with the same id."""
    suffix = PurePath(filename).suffix.lower()
    kind = UPLOAD_KINDS.get(suffix)
    if kind is None:
        raise CatalogError([Problem(filename, "(file)", None, f"unsupported file type {suffix or '(none)'}; "
                                    "use .yaml, .yml, .json (whole catalog) or .csv, .xlsx (FAQs)")])
    if kind == "catalog":
        return parse_catalog(decode_text(data, filename), "json" if suffix == ".json" else "yaml", filename), kind
    if head is None:
        raise CatalogError([Problem(filename, "(file)", None,
                                    "this shop has no catalog yet: upload a whole catalog (.yaml/.json) first")])
    known = {p.id for p in head.products}
    rows = parse_faq_xlsx(data, filename, known) if suffix == ".xlsx" else parse_faq_csv(decode_text(data, filename),
                                                                                         filename, known)
    return head.with_faqs(rows, source=filename), kind




def upload_change(data: bytes, filename: str, candidate: Catalog, kind: str) -> Callable[[Catalog | None], Catalog]:
    """The change a previewed upload makes when it is written: a whole catalog is the candidate as
    previewed; FAQ rows are merged into the head as it is at that moment (it may have moved on)."""
    def change(current: Catalog | None) -> Catalog:
        return candidate if kind == "catalog" or current is None else parse_upload(data, filename, current)[0]
    return change
