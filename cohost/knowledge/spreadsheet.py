"""FAQ uploads from Excel (.xlsx): the first worksheet, read with the same rules as the FAQ CSV.

Uploads come from shop staff through the admin page, so the file is treated as untrusted: its zip entries are
checked before openpyxl sees it, and whatever goes wrong comes back as a CatalogError, never a library exception.
"""

from __future__ import annotations

import datetime as dt
import io
import warnings
import zipfile
from typing import Any

from openpyxl import load_workbook

from ..errors import CatalogError, Problem
from . import catalog, untrusted
from .catalog import CSV_HEADER, FAQ, faq_rows

MAX_ROWS = 20_000  # FAQ rows, header and blank rows not counted
MAX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024
MAX_COMPRESSION_RATIO = 200
# A small entry cannot hurt whatever its ratio, and tiny repetitive XML parts can compress very well.
RATIO_CHECK_FROM_BYTES = 1024 * 1024
EXCEL_MAX_ROW = 1_048_576

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def parse_faq_xlsx(data: bytes, source: str,
                   known_products: set[str] | None = None) -> list[tuple[str | None, FAQ]]:
    """Parse FAQ rows from the first worksheet of an .xlsx file.

    Columns and rules are those of the FAQ CSV (header product_id,id,question,answer,variants); problems are
    located by Excel's row number. Raises one CatalogError with every problem found.
    """
    _check_container(data, source)
    return faq_rows(_read_first_sheet(data, source), source, known_products)


def _fail(source: str, message: str, where: str = "(file)") -> CatalogError:
    return CatalogError([Problem(source, where, None, message)])


def _check_container(data: bytes, source: str) -> None:
    """Refuse anything that is not a plain, reasonably sized .xlsx zip, before any of it is decompressed."""
    if len(data) > catalog.MAX_FILE_BYTES:
        raise _fail(source, f"file is {len(data)} bytes; the limit is {catalog.MAX_FILE_BYTES} bytes")
    if data.startswith(OLE_MAGIC):
        # Password-protected .xlsx files are OLE containers too, so both causes are named.
        raise _fail(source, "old Excel .xls format or a password-protected workbook; "
                            "save it as an unprotected Excel Workbook (.xlsx)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise _fail(source, "not an Excel .xlsx file") from None
    # Declared sizes are binding: zipfile stops reading an entry at its declared size and checks its CRC.
    total = sum(e.file_size for e in entries)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise _fail(source, f"unpacks to {total} bytes; the limit is {MAX_UNCOMPRESSED_BYTES} bytes")
    for e in entries:
        if e.file_size >= RATIO_CHECK_FROM_BYTES and e.file_size > MAX_COMPRESSION_RATIO * max(e.compress_size, 1):
            raise _fail(source, f"part '{e.filename}' is compressed more than {MAX_COMPRESSION_RATIO}:1; "
                                "the file looks damaged or malicious")
    names = {e.filename for e in entries}
    if "xl/workbook.bin" in names:
        raise _fail(source, "Excel binary .xlsb format; save it as Excel Workbook (.xlsx)")
    if "[Content_Types].xml" not in names:  # every Office Open XML package has one
        raise _fail(source, "not an Excel .xlsx file")


def _read_first_sheet(data: bytes, source: str) -> list[tuple[int, list[str]]]:
    """Cell texts of the first worksheet by Excel row number, rows padded to the FAQ columns."""
    rows: list[tuple[int, list[str]]] = []
    faq_count = 0
    try:
        # openpyxl warns about features it drops (data validation, default styles); they do not matter here and
        # would turn into errors where warnings are errors.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Formulas as formulas (not their cached results), so that faq_rows can refuse them by cell.
            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
            try:
                if not wb.worksheets:
                    raise _fail(source, "the workbook has no worksheet")
                ws = wb.worksheets[0]
                # The stored dimension can be wrong (some tools write A1:A1), which would cut rows off.
                ws.reset_dimensions()
                for n, values in enumerate(ws.iter_rows(), start=1):
                    if n > EXCEL_MAX_ROW:
                        raise _fail(source, f"more than {EXCEL_MAX_ROW} rows; the file is damaged")
                    cells = _row_texts(values)
                    if n == 1:
                        rows.append((n, cells))
                    elif any(c.strip() for c in cells):
                        # Blank rows are skipped here rather than kept: a sheet can claim a million of them.
                        faq_count += 1
                        if faq_count > MAX_ROWS:
                            raise _fail(source, f"more than {MAX_ROWS} FAQ rows; split the file", f"row {n}")
                        rows.append((n, cells))
            finally:
                wb.close()
    except CatalogError:
        raise
    except Exception as e:  # a damaged file can make openpyxl raise almost anything
        raise _fail(source, f"could not read the Excel file ({type(e).__name__}); open it in Excel and save "
                            "it again as .xlsx") from None
    return rows


def _row_texts(values: tuple[Any, ...]) -> list[str]:
    cells = [_cell(c) for c in values]
    # Excel leaves out trailing empty cells, or keeps formatted empty ones; neither is a column count mistake.
    while cells and not cells[-1].strip():
        cells.pop()
    if cells:
        cells += [""] * (len(CSV_HEADER) - len(cells))
    return cells


def _cell(cell: Any) -> str:
    """A cell as faq_rows reads a CSV cell: a formula as its "=..." text (refused there), and text that merely
    starts like one (Excel keeps it as text, e.g. typed with a leading ') marked with ', as a CSV export does."""
    value = getattr(cell, "value", None)
    if getattr(cell, "data_type", None) == "f":
        text = value if isinstance(value, str) else getattr(value, "text", None) or ""  # ArrayFormula: .text
        return text if text.startswith("=") else "=" + text
    text = cell_text(value)
    if isinstance(value, str) and untrusted.starts_like_formula(text.strip()):
        return "'" + text.strip()
    return text


def cell_text(value: Any) -> str:
    """A cell value as the text a person sees in Excel: 12 not 12.0, a date without a midnight time."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)
