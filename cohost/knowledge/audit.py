"""The audit log: every reply cohost sent, held, blocked, rewritten or withdrawn, and why.

It lives in the catalog store's SQLite file (CatalogStore.path) in its own table. Like the store, every call
opens its own connection (WAL journal, BEGIN IMMEDIATE for writes), so the room's worker threads, the admin
API and `cohost knowledge` commands can use one file at once.

What a viewer wrote is personal data: ``forget_viewer_texts`` drops the viewers' messages and names from rows
older than ``store.gap_days``; the reply itself, its rule and its approver stay.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .sqlite import SqliteFile

OUTCOMES = ("sent", "held", "approved", "rejected", "expired", "blocked", "rewritten", "failed", "withdrawn")
KINDS = ("chat", "talking_point")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    id            INTEGER PRIMARY KEY,
    ts            REAL    NOT NULL,
    shop          TEXT    NOT NULL,
    room          TEXT    NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ({", ".join(f"'{o}'" for o in OUTCOMES)})),
    text          TEXT    NOT NULL,
    original      TEXT,
    entry_id      TEXT,
    rule          TEXT,
    detail        TEXT,
    actor         TEXT,
    kind          TEXT    NOT NULL,
    viewer_texts  TEXT,
    viewers       TEXT,
    handle        TEXT
);
CREATE INDEX IF NOT EXISTS audit_shop_ts ON audit (shop, ts);
CREATE INDEX IF NOT EXISTS audit_viewer_ts ON audit (ts) WHERE viewer_texts IS NOT NULL OR viewers IS NOT NULL;
"""

_COLS = ("id", "ts", "shop", "room", "outcome", "text", "original", "entry_id", "rule", "detail", "actor", "kind",
         "viewer_texts", "viewers", "handle")
_SEARCHED = ("text", "original", "rule", "entry_id", "actor", "viewer_texts")
CSV_COLUMNS = ("id", "time", "ts", "room", "outcome", "kind", "text", "original", "entry_id", "rule", "detail",
               "actor", "viewer_texts", "viewers", "handle")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CSV_PAGE = 500
MAX_LIMIT = 10_000


class AuditError(ValueError):
    """A row or a filter the audit log cannot take; the message is Chinese, meant for the person asking."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class AuditRow:
    """One outgoing text and what became of it."""

    ts: float
    shop: str
    room: str
    outcome: str
    text: str  # what was said, or would have been said
    kind: str = "chat"  # "chat" | "talking_point"
    original: str | None = None  # the text before a rewrite
    entry_id: str | None = None  # the FAQ or fact it rests on
    rule: str | None = None  # the gate rule, e.g. "ad_law:最", "unsupported_number:9.9"
    detail: str | None = None
    actor: str | None = None  # who approved or rejected it: "overlay:主播", "admin"
    viewer_texts: tuple[str, ...] = ()  # the viewers' messages it answered
    viewers: tuple[tuple[str, str], ...] = ()  # (id, name) of those viewers
    handle: str | None = None  # the reply handle id


def _check(row: AuditRow) -> None:
    if row.outcome not in OUTCOMES:
        raise AuditError(f"未知的结果“{row.outcome}”，应为 {'、'.join(OUTCOMES)} 之一", "outcome")
    if row.kind not in KINDS:
        raise AuditError(f"未知的类型“{row.kind}”，应为 {'、'.join(KINDS)} 之一", "kind")
    if not row.shop or not isinstance(row.shop, str):
        raise AuditError("缺少店铺", "shop")


def _params(row: AuditRow) -> tuple[Any, ...]:
    texts = json.dumps(list(row.viewer_texts), ensure_ascii=False) if row.viewer_texts else None
    viewers = (json.dumps([{"id": str(i), "name": str(n)} for i, n in row.viewers], ensure_ascii=False)
               if row.viewers else None)
    return (float(row.ts), row.shop, row.room or "", row.outcome, row.text or "", row.original, row.entry_id,
            row.rule, row.detail, row.actor, row.kind, texts, viewers, row.handle)


def _row(values: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_COLS, values, strict=True))
    out["viewer_texts"] = json.loads(out["viewer_texts"]) if out["viewer_texts"] else None
    out["viewers"] = json.loads(out["viewers"]) if out["viewers"] else None
    return out


def _like(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def neutralise(cell: str) -> str:
    """A cell Excel will show as text: one that starts like a formula gets a leading apostrophe."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


class AuditLog(SqliteFile):
    SCHEMA = SCHEMA

    # -- writing ----------------------------------------------------------------------------------------

    def record(self, rows: Sequence[AuditRow]) -> None:
        """Write a batch in one transaction; a bad row refuses the whole batch (AuditError) before anything
        is written."""
        if not rows:
            return
        for row in rows:
            _check(row)
        params = [_params(r) for r in rows]
        with self._write() as db:
            db.executemany(f"INSERT INTO audit ({', '.join(_COLS[1:])}) VALUES ({', '.join('?' * (len(_COLS) - 1))})",
                           params)

    def forget_viewer_texts(self, older_than: float) -> int:
        """Drop the viewers' messages and names from rows with ts < older_than (every shop); how many rows."""
        with self._write() as db:
            cur = db.execute("UPDATE audit SET viewer_texts=NULL, viewers=NULL "
                             "WHERE ts<? AND (viewer_texts IS NOT NULL OR viewers IS NOT NULL)", (older_than,))
            return cur.rowcount

    # -- reading ----------------------------------------------------------------------------------------

    @staticmethod
    def _where(shop: str, q: str | None, outcome: str | None, room: str | None, since: float | None,
               until: float | None) -> tuple[str, list[Any]]:
        clauses, args = ["shop=?"], [shop]
        if outcome:
            if outcome not in OUTCOMES:
                raise AuditError(f"未知的结果“{outcome}”，应为 {'、'.join(OUTCOMES)} 之一", "outcome")
            clauses.append("outcome=?")
            args.append(outcome)
        if room:
            clauses.append("room=?")
            args.append(room)
        if since is not None:
            clauses.append("ts>=?")
            args.append(float(since))
        if until is not None:
            clauses.append("ts<?")
            args.append(float(until))
        if q and q.strip():
            pattern = _like(q.strip())
            clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _SEARCHED) + ")")
            args.extend([pattern] * len(_SEARCHED))
        return " AND ".join(clauses), args

    def search(self, shop: str, *, q: str | None = None, outcome: str | None = None, room: str | None = None,
               since: float | None = None, until: float | None = None, limit: int = 100, offset: int = 0
               ) -> tuple[list[dict[str, Any]], int]:
        """Rows of one shop, newest first, and how many match in all.

        ``q`` is found in the text, the original, the rule, the FAQ id, the approver and the viewers' messages
        (a plain substring: % and _ are themselves); ``since`` is inclusive, ``until`` exclusive."""
        if not 1 <= limit <= MAX_LIMIT:
            raise AuditError(f"每页条数必须在 1 到 {MAX_LIMIT} 之间", "limit")
        if offset < 0:
            raise AuditError("起始位置不能小于 0", "offset")
        where, args = self._where(shop, q, outcome, room, since, until)
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM audit WHERE {where}", args).fetchone()[0]
            rows = db.execute(f"SELECT {', '.join(_COLS)} FROM audit WHERE {where} ORDER BY ts DESC, id DESC "
                              "LIMIT ? OFFSET ?", [*args, limit, offset]).fetchall()
        return [_row(r) for r in rows], int(total)

    def export_csv(self, shop: str, *, q: str | None = None, outcome: str | None = None, room: str | None = None,
                   since: float | None = None, until: float | None = None) -> Iterator[str]:
        """Every matching row as CSV lines (a header first), newest first, read a page at a time.

        The filters are checked at once (AuditError), before the first line. Each page opens its own
        connection, so the lines may be drawn from different threads (as a streaming HTTP response does).
        Cells that Excel would run as a formula (= + - @ at the start) get a leading apostrophe."""
        where, args = self._where(shop, q, outcome, room, since, until)
        return self._csv_lines(where, args)

    def _csv_lines(self, where: str, args: list[Any]) -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")

        def line(cells: Sequence[Any]) -> str:
            buf.seek(0)
            buf.truncate()
            writer.writerow(cells)
            return buf.getvalue()

        yield line(CSV_COLUMNS)
        after: tuple[float, int] | None = None
        while True:
            page_where, page_args = where, list(args)
            if after is not None:
                page_where += " AND (ts<? OR (ts=? AND id<?))"
                page_args += [after[0], after[0], after[1]]
            with self._connect() as db:
                rows = db.execute(f"SELECT {', '.join(_COLS)} FROM audit WHERE {page_where} "
                                  "ORDER BY ts DESC, id DESC LIMIT ?", [*page_args, _CSV_PAGE]).fetchall()
            for values in rows:
                yield line([neutralise(c) for c in _csv_cells(_row(values))])
            if len(rows) < _CSV_PAGE:
                return
            after = (rows[-1][1], rows[-1][0])


def _csv_cells(r: dict[str, Any]) -> list[str]:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ts"]))
    texts = " | ".join(r["viewer_texts"] or [])
    viewers = " | ".join(f"{v['name']} ({v['id']})" for v in r["viewers"] or [])
    cells = [r["id"], when, f"{r['ts']:.3f}", r["room"], r["outcome"], r["kind"], r["text"], r["original"],
             r["entry_id"], r["rule"], r["detail"], r["actor"], texts, viewers, r["handle"]]
    return ["" if c is None else str(c) for c in cells]
