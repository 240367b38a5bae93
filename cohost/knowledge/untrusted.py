"""Reading what shop staff upload: the file's encoding, YAML and JSON documents, spreadsheet cells.

Everything here turns a bad input into Problems (file, where, field, message), never a library
exception, and never lets garbage through: a file decoded in the wrong encoding, a duplicate key, a number no
one means, a formula or a control character would otherwise be published as an FAQ or crash the request.
catalog.py (decode_text, load_document, faq_rows) and spreadsheet.py call these; they run wherever those do,
in the upload parse worker included. Messages are English, as everywhere in the code; cohost/messages.py holds
their Chinese, which is what owners read by default.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from functools import lru_cache
from pathlib import PurePath
from typing import Any

import yaml

from ..errors import CatalogError, Problem
from .hanzi import COMMON

# -- encodings ------------------------------------------------------------------------------------------------

# What a Chinese shop's tools write: UTF-8 (Excel's "CSV UTF-8", every editor), UTF-16 (Excel's "Unicode text"),
# the simplified Windows code page (GBK, read as its superset GB18030) and the traditional one (Big5: cp950 on
# Windows, HKSCS in Hong Kong). Only these are tried, so a short file cannot come out as Korean or Japanese.
DETECTED = ["utf_8", "utf_16_le", "utf_16_be", "gb18030", "cp950", "big5hkscs"]
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8", "utf_8": "UTF-8", "utf-16": "UTF-16", "utf_16_le": "UTF-16",
          "utf_16_be": "UTF-16", "gb18030": "GBK/GB18030", "cp950": "Big5", "big5hkscs": "Big5-HKSCS"}
SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: Save As, CSV UTF-8 (Comma delimited)) and upload it again"

# A file is mojibake when more than this share of its distinct CJK-looking characters are implausible, and at
# least MOJIBAKE_MIN_CHARS of them (or when it is a garbling that can be undone: _repairable). Measured by
# benchmarks/upload_input.py on LCQMC questions and the sample shops' lines, 1 to 20 lines a file: real text is
# refused 0-0.33% of the time (kana in GBK files), Big5 read as GBK and GBK read as Big5 100% (docs/benchmarks.md).
MOJIBAKE_SHARE = 0.15
RANK_BYTES = 256 * 1024
MOJIBAKE_MIN_CHARS = 2

_COMMON = frozenset(COMMON)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
# What Chinese read in the wrong code page turns into besides rare characters: Big5 read as GBK gives kana,
# Greek, Cyrillic, bopomofo and box drawing (GBK's symbol rows), private-use code points (GBK's user rows),
# and U+FFFD from an earlier failed conversion.
_ODD = re.compile(r"[\u0370-\u04ff\u2500-\u257f\u3040-\u30ff\u3100-\u312f\ue000-\uf8ff\ufffd]")
# Kana are also what a Japanese product name is written in: odd only in text read from a Chinese code page.
_KANA = re.compile(r"[\u3040-\u30ff]")
# C0 and C1 control characters except tab, newline and carriage return, and DEL.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@lru_cache(maxsize=1)
def _t2s() -> Any:
    import opencc

    return opencc.OpenCC("t2s")


@lru_cache(maxsize=65536)
def _plausible(c: str) -> bool:
    return c in _COMMON or _t2s().convert(c) in _COMMON


def _implausible(text: str, kana: bool = True) -> tuple[set[str], int]:
    """The distinct characters of text that real Chinese text rarely holds, and how many distinct CJK-looking
    characters it has. Distinct, not counted: a rare character in a brand name repeated on every row is one."""
    chars = set(text)
    if not kana:
        chars = {c for c in chars if not _KANA.match(c)}
    bad = {c for c in chars if CONTROL.match(c) or _ODD.match(c) or (_HAN.match(c) and not _plausible(c))}
    total = sum(1 for c in chars if _HAN.match(c) or _ODD.match(c))
    return bad, total


def _score(text: str, kana: bool = True) -> float:
    bad, total = _implausible(text, kana)
    return len(bad) / max(total, 1)


def decode_text(data: bytes, source: str) -> str:
    """An uploaded file's text: UTF-8 or UTF-16 with a BOM as it says, BOM-less UTF-8 when it is valid UTF-8,
    else whichever of UTF-16, GBK/GB18030 and Big5 charset-normalizer finds reads as real Chinese.

    Raises CatalogError, with the rows, when the text comes out as mojibake in every encoding: published, it
    would be garbage said in chat. On a few hundred bytes a detector cannot tell Big5 from GBK (both decode
    almost any bytes), so the candidates are ranked by how plausible their characters are."""
    text, encoding = _decode(data, source)
    _refuse_mojibake(text, encoding, source)
    return text


def _decode(data: bytes, source: str) -> tuple[str, str]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return _strict(data, encoding, source), encoding
    if data.isascii() and b"\x00" not in data:
        return data.decode("ascii"), "utf-8"
    if b"\x00" not in data:  # NULs mean UTF-16 without a BOM, whose ASCII bytes can look like UTF-8
        try:
            # Valid UTF-8 is almost never anything else: GBK and Big5 Chinese is invalid UTF-8 within a few bytes.
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    found = [m.encoding for m in from_bytes(data, cp_isolation=DETECTED, preemptive_behaviour=False)]
    # The detector may leave the right one out on a short file; ranking below picks among all of them. With NULs
    # only UTF-8 (a NUL in a cell, refused there by field) is worth a try: GBK and Big5 have no NUL bytes in text.
    found += [e for e in (("utf_8",) if b"\x00" in data else ("gb18030", "cp950")) if e not in found]
    if "big5hkscs" in found:
        # Windows' Big5 (what Excel writes) before Hong Kong's: they differ in the extension rows (kana, symbols),
        # where a tie in the ranking would otherwise go to whichever the detector named first.
        found = [e for e in found if e != "cp950"]
        found.insert(found.index("big5hkscs"), "cp950")
    # Ranked on the first RANK_BYTES (a file is in one encoding throughout), then decoded whole, strictly.
    sample = data[:RANK_BYTES]
    candidates = []
    for order, encoding in enumerate(found):
        try:
            text = codecs.getincrementaldecoder(encoding)().decode(sample, final=len(data) <= RANK_BYTES)
        except (UnicodeDecodeError, LookupError):
            continue
        candidates.append((_score(text, kana=encoding == "gb18030"), order, encoding))
    for _, _, encoding in sorted(candidates):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise CatalogError([Problem(source, "(file)", None,
                                f"cannot tell the file's encoding (not UTF-8, UTF-16, GBK or Big5 text); "
                                f"{SAVE_AS_UTF8}")])


def _strict(data: bytes, encoding: str, source: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[:e.start].decode(encoding, errors="replace").count("\n") + 1
        name = _NAMES.get(encoding, encoding)
        raise CatalogError([Problem(source, f"line {line}", None,
                                    f"the file starts with a {name} byte order mark, but this line is "
                                    f"not {name} text; {SAVE_AS_UTF8}")]) from None


def _refuse_mojibake(text: str, encoding: str, source: str) -> None:
    if text.isascii():
        return
    # Kana are what Big5 read as GBK turns into; elsewhere they may be a Japanese product name.
    bad, total = _implausible(text, kana=encoding == "gb18030")
    bad = {c for c in bad if not CONTROL.match(c)}  # control characters are refused where they are, by field
    if len(bad) < MOJIBAKE_MIN_CHARS or len(bad) <= MOJIBAKE_SHARE * total:
        if not _repairable(text):
            return
        bad = {c for c in set(text) if _HAN.match(c) or _ODD.match(c)}
    name = _NAMES.get(encoding, encoding)
    problems = [Problem(source, where, None, f"looks like mojibake: “{_excerpt(line, bad)}”; read as "
                        f"{name} it is not real Chinese, so the file is in another encoding or was "
                        f"garbled before; {SAVE_AS_UTF8}")
                for where, line in _lines_with(text, bad, source)[:3]]
    raise CatalogError(problems or [Problem(source, "(file)", None, f"looks like mojibake; {SAVE_AS_UTF8}")])


# Garbling that can be undone: text written in the second encoding and read in the first. UTF-8 read as GBK can
# look like ordinary characters (你好 becomes 浣犲ソ), but written back as GBK it is valid UTF-8 again, which
# real Chinese text almost never is.
_REPAIRS = (("gb18030", "utf-8"), ("gb18030", "cp950"), ("cp950", "gb18030"), ("cp950", "utf-8"))


def _repairable(text: str) -> bool:
    """Whether text is a known garbling of other text that reads as more plausible Chinese (judged on its start:
    a file is garbled throughout)."""
    text = text[:RANK_BYTES // 2]
    before = _score(text)
    for written, read in _REPAIRS:
        try:
            repaired = text.encode(written).decode(read)
        except UnicodeError:
            continue
        if repaired == text or not _HAN.search(repaired):
            continue
        after = _score(repaired)
        # Valid UTF-8 out of GBK/Big5 bytes is a signature on its own; between the code pages, both decode
        # almost anything, so the repaired text must be clearly more plausible.
        if (read == "utf-8" and after <= before) or after < before / 2:
            return True
    return False


def _lines_with(text: str, bad: set[str], source: str) -> list[tuple[str, str]]:
    """The rows (a CSV's records, else lines) holding any of bad, numbered as the rest of the problems are."""
    found: list[tuple[str, str]] = []
    if PurePath(source).suffix.lower() == ".csv":
        try:
            for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
                line = ",".join(row)
                if any(c in bad for c in line):
                    found.append((f"row {n}", line))
                    if len(found) == 3:
                        break
            return found
        except csv.Error:
            found = []
    for n, line in enumerate(text.split("\n"), start=1):
        if any(c in bad for c in line):
            found.append((f"line {n}", line.rstrip("\r")))
            if len(found) == 3:
                break
    return found


def _excerpt(line: str, bad: set[str], width: int = 60) -> str:
    if len(line) <= width:
        return line
    first = next(i for i, c in enumerate(line) if c in bad)
    start = max(0, min(first - width // 3, len(line) - width))
    return ("…" if start else "") + line[start:start + width] + ("…" if start + width < len(line) else "")


# -- YAML and JSON documents ------------------------------------------------------------------------------------

# A catalog is 6 levels deep (products[i].faqs[j].variants[k]); parsers recurse once per level, so deeper
# documents are refused as they are read, before any recursion limit is near.
MAX_DEPTH = 20
# Longer integers are refused where they stand: a link is at most 4 digits, a price 7, a barcode 13, and
# Python's int() refuses more than 4,300 digits with a ValueError (a 500, not a problem naming the field).
MAX_INT_DIGITS = 30
_INT_LIMIT = 10**MAX_INT_DIGITS
MAX_PROBLEMS = 20


class _Refused(Exception):
    def __init__(self, where: str, field: str | None, message: str):
        self.where, self.field, self.message = where, field, message


class _HugeInt:
    """An integer literal longer than MAX_INT_DIGITS, kept as its length until check_values names its place."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits


def _int(literal: str) -> int | _HugeInt:
    digits = sum(1 for c in literal if c.isdigit())
    return _HugeInt(digits) if digits > MAX_INT_DIGITS else int(literal)


def load_document(text: str, fmt: str, source: str) -> Any:
    """Catalog text in 'yaml' or 'json' as plain data, not yet validated. Refuses duplicate keys (with the key
    and its line), nesting past MAX_DEPTH, integers past MAX_INT_DIGITS, numbers that are not finite (1e999, NaN,
    .inf) and strings with control characters or lone surrogates (with the path to them)."""
    try:
        data = _load_json(text) if fmt == "json" else _load_yaml(text)
    except _Refused as e:
        raise CatalogError([Problem(source, e.where, e.field, e.message)]) from None
    except (json.JSONDecodeError, yaml.YAMLError) as e:  # the message says the line
        raise CatalogError([Problem(source, "(file)", None, f"not valid {fmt.upper()}: {e}")]) from None
    problems = check_values(data, source, strings="\\" in text)
    if problems:
        raise CatalogError(problems)
    return data


class _DuplicateKey(Exception):
    def __init__(self, key: str, closed: int):
        self.key, self.closed = key, closed


def _load_json(text: str) -> Any:
    closed = 0

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal closed
        closed += 1
        out = dict(items)
        if len(out) != len(items):
            seen: set[str] = set()
            key = next(k for k, _ in items if k in seen or seen.add(k))  # type: ignore[func-returns-value]
            raise _DuplicateKey(key, closed)
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=_int)
    except RecursionError:
        raise _too_deep_json(text) from None
    except _DuplicateKey as e:
        raise _duplicate_json(text, e) from None


_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"(?:\s*:)?|[\[\]{},]', re.DOTALL)


def _too_deep_json(text: str) -> _Refused:
    """Where the JSON first nests past MAX_DEPTH: its path (keys and indexes) and line, by a linear scan."""
    stack: list[list[Any]] = []  # [bracket, key or index]
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token in "[{":
            if len(stack) >= MAX_DEPTH:
                line = text.count("\n", 0, m.start()) + 1
                path = _path(tuple(p for _, p in stack if p is not None))
                return _Refused(path if path != "(top level)" else f"line {line}", _field(stack),
                                f"nested deeper than {MAX_DEPTH} levels (line {line}); a catalog is not")
            stack.append([token, 0 if token == "[" else None])
        elif token in "]}":
            if stack:
                stack.pop()
        elif token == ",":
            if stack and stack[-1][0] == "[":
                stack[-1][1] += 1
        elif token.endswith(":") and stack and stack[-1][0] == "{":
            stack[-1][1] = json.loads(token[:-1].rstrip())
    return _Refused("(file)", None, f"nested deeper than {MAX_DEPTH} levels; a catalog is not")


def _field(stack: list[list[Any]]) -> str | None:
    keys = [p for b, p in stack if b == "{" and isinstance(p, str)]
    return keys[-1] if keys else None


def _duplicate_json(text: str, e: _DuplicateKey) -> _Refused:
    """The line of both copies of a duplicate key: the object is the e.closed-th to close, found by a scan."""
    opened: list[int] = []
    closed = 0
    start = None
    for m in _JSON_TOKEN.finditer(text):
        token = m.group()
        if token == "{":
            opened.append(m.end())
        elif token == "}" and opened:
            closed += 1
            begin = opened.pop()
            if closed == e.closed:
                start = begin
                break
    lines = [text.count("\n", 0, pos) + 1 for pos in _key_positions(text, start, e.key)] if start else []
    if len(lines) >= 2:
        return _Refused(f"line {lines[1]}", e.key, f"duplicate key '{e.key}' (lines {lines[0]} and {lines[1]}); "
                        "a key may appear only once in a mapping")
    return _Refused("(file)", e.key, f"duplicate key '{e.key}'; a key may appear only once in a mapping")


def _key_positions(text: str, start: int, key: str) -> list[int]:
    """Where key stands among the keys of the object whose '{' ends at start (values skipped unparsed)."""
    found: list[int] = []
    depth = 0
    for m in _JSON_TOKEN.finditer(text, start):
        token = m.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and token.endswith(":") and json.loads(token[:-1].rstrip()) == key:
            found.append(m.start())
    return found


_MERGE = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and deep nesting, and keeps integers too long to mean anything
    as _HugeInt (check_values names them) instead of calling int() on thousands of digits."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._path: list[Any] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        # The composer recurses once per level: refuse past MAX_DEPTH before Python's recursion limit.
        self._path.append(index.value if isinstance(index, yaml.ScalarNode) else index)
        try:
            if len(self._path) > MAX_DEPTH + 1:
                mark = self.peek_event().start_mark
                raise _Refused(_path(tuple(p for p in self._path[1:] if isinstance(p, str | int))),
                               None, f"nested deeper than {MAX_DEPTH} levels (line {mark.line + 1}); a catalog is not")
            return super().compose_node(parent, index)
        finally:
            self._path.pop()

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:  # keys merged in with << may be overridden: that is what << is for
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise _Refused(f"line {line}", str(key), f"duplicate key '{key}' (lines {first} and {line}); "
                                   "a key may appear only once in a mapping")
                seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: Any) -> Any:
        value = self.construct_scalar(node)
        digits = sum(1 for c in value if c.isalnum()) - value.lower().startswith(("0x", "0b", "0o")) * 1
        if digits > MAX_INT_DIGITS:
            return _HugeInt(digits)
        return super().construct_yaml_int(node)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:  # 2024-13-45 as a date, a float() or int() refusal...
            raise _Refused(f"line {node.start_mark.line + 1}", None,
                           f"the value '{_cut(str(getattr(node, 'value', '')))}' cannot be read ({e}); "
                           "if it is text, put it in quotes") from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _load_yaml(text: str) -> Any:
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _cut(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "…"


def _path(path: tuple[Any, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_values(data: Any, source: str, *, strings: bool = True) -> list[Problem]:
    """Problems with the values of a loaded document, by path: integers past MAX_INT_DIGITS, numbers that are not
    finite, nesting past MAX_DEPTH, and (with strings) control characters and lone surrogates in strings and keys.

    Iterative, and each list or mapping is looked at once however many YAML aliases point to it, so an alias
    bomb costs what its file holds, not what it expands to (uploads.check_document counts that)."""
    problems: list[Problem] = []
    seen: set[int] = set()
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]  # containers (and values too deep) with their paths

    def report(path: tuple[Any, ...], message: str, field: str | None = None) -> None:
        field = field or next((str(p) for p in reversed(path) if not isinstance(p, int)), None)
        problems.append(Problem(source, _path(path), field, message))

    while stack and len(problems) < MAX_PROBLEMS:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            report(path, f"nested deeper than {MAX_DEPTH} levels; a catalog is not")
            continue
        if not isinstance(value, dict | list):
            if message := _scalar_problem(value, strings):
                report(path, message)
            continue
        if id(value) in seen:
            continue
        seen.add(id(value))
        deep = len(path) + 1 > MAX_DEPTH
        is_dict = isinstance(value, dict)
        for k, v in value.items() if is_dict else enumerate(value):
            if is_dict and type(k) is not str:
                if isinstance(k, _HugeInt):
                    report(path, f"key is a number of {k.digits} digits, too long (at most {MAX_INT_DIGITS})", "")
            elif is_dict and strings and (why := _bad_string(k)):
                report(path, f"key {why}", _cut(ascii(k)))
            # Scalars are checked here rather than pushed: a document is mostly scalars.
            if deep or isinstance(v, dict | list):
                stack.append((v, (*path, k)))
            elif type(v) is not str or strings:
                if message := _scalar_problem(v, strings):
                    report((*path, k), message)
    return problems


def _scalar_problem(value: Any, strings: bool) -> str | None:
    if isinstance(value, _HugeInt) or (type(value) is int and not -_INT_LIMIT < value < _INT_LIMIT):
        digits = value.digits if isinstance(value, _HugeInt) else len(str(abs(value)))
        return f"number of {digits} digits is too long (at most {MAX_INT_DIGITS}); if it is text, put it in quotes"
    if type(value) is float and not math.isfinite(value):
        return f"number {value} is out of range (not finite); write the actual number"
    if strings and type(value) is str:
        return _bad_string(value)
    return None


def _bad_string(text: str) -> str | None:
    m = CONTROL.search(text)
    if m:
        return _control(m)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return (f"contains an invalid character (a lone surrogate \\u{ord(text[e.start]):04x}, "
                    f"character {e.start + 1}); delete it")
    return None


def _control(m: re.Match[str]) -> str:
    return f"contains the invisible control character U+{ord(m.group()):04X} (character {m.start() + 1}); delete it"


# -- spreadsheet cells ------------------------------------------------------------------------------------------

# Excel (and LibreOffice, Google Sheets) read a cell starting with one of these as a formula when a CSV is opened.
FORMULA_START = ("=", "+", "-", "@")
# A leading ' marks a cell as text in Excel; export writes one before text that starts like a formula (and
# before text that already starts with ' then such a character, so that reading strips exactly one).
_QUOTED = re.compile(r"'+[=+\-@\t\r]")
_NEEDS_QUOTE = re.compile(r"'*[=+\-@\t\r]")
# After + - or @, only these make a formula rather than text like "+86 400-800-8888", "-5%" or "@主播":
# a function call (HYPERLINK(, cmd|), a DDE link (cmd|' /C calc'!A0) or a cell reference (+A1).
_FORMULA_LIKE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\(|\w+\|'[^']*'!|^[+\-@]\s*\$?[A-Za-z]{1,3}\$?\d+\b")


def cell_value(cell: str) -> tuple[str, str | None]:
    """A stripped FAQ table cell as the text it stands for, and why it is refused (None when it is not).

    Formulas are refused rather than neutralised: what Excel showed the owner was the formula's result, not its
    text, so neither the text ("=HYPERLINK(...)") nor a guess at the result is what they meant to say in chat.
    A cell marked as text with a leading ' is that text."""
    m = CONTROL.search(cell)
    if m:
        return cell, _control(m)
    if _QUOTED.match(cell):
        return cell[1:], None
    if cell.startswith("=") or (cell.startswith(FORMULA_START) and _FORMULA_LIKE.search(cell)):
        return cell, (f"'{_cut(cell)}' is a formula: Excel calculates it instead of showing this text; copy the "
                      "column and paste it back as values (Paste Special, Values), or start it with ' if it is text")
    return cell, None


def export_cell(text: str) -> str:
    """A cell's text for a CSV or Excel download: control characters dropped (no spreadsheet can hold them and
    an upload refuses them), and a ' in front of text that Excel would otherwise run as a formula."""
    text = CONTROL.sub("", text)
    return "'" + text if _NEEDS_QUOTE.match(text) else text


def starts_like_formula(text: str) -> bool:
    return bool(_NEEDS_QUOTE.match(text))
