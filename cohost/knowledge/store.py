"""The catalog store: every shop's catalog versions, unanswered questions and draft FAQs in one SQLite file.

Versions are append-only. An upload, an edit, a rollback: each writes a new version; nothing is ever
overwritten, so no change can lose an earlier one. A version is written first ("building") and marked
"ready" once its index is built; rooms are served the newest ready version. A writer that names the
version it started from (``base_version``) gets a VersionConflict when someone else wrote in between,
never a silent overwrite.

Every call opens its own connection, so the store is safe to use from any thread and from several
processes at once (the server and `cohost knowledge import` can share the file); SQLite's WAL journal
keeps readers off writers' backs, and BEGIN IMMEDIATE serialises writers.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError, CohostError
from ..gate import Gate
from .catalog import Catalog, gate_problems
from .gaps import Gap
from .sqlite import SqliteFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    shop        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    author      TEXT    NOT NULL,
    note        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    based_on    INTEGER,
    status      TEXT    NOT NULL CHECK (status IN ('building', 'ready', 'failed')),
    error       TEXT,
    faqs        INTEGER NOT NULL,
    products    INTEGER NOT NULL,
    document    TEXT    NOT NULL,
    PRIMARY KEY (shop, version)
);
CREATE TABLE IF NOT EXISTS gaps (
    id          INTEGER PRIMARY KEY,
    shop        TEXT    NOT NULL,
    room        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    normalized  TEXT    NOT NULL,
    product_id  TEXT,
    reason      TEXT    NOT NULL,
    ts          REAL    NOT NULL,
    draft_id    INTEGER
);
CREATE INDEX IF NOT EXISTS gaps_open ON gaps (shop, draft_id, ts);
CREATE TABLE IF NOT EXISTS drafts (
    id          INTEGER PRIMARY KEY,
    shop        TEXT    NOT NULL,
    product_id  TEXT,
    question    TEXT    NOT NULL,
    variants    TEXT    NOT NULL,
    cluster     TEXT    NOT NULL,
    asked       INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('draft', 'published', 'discarded')),
    faq_id      TEXT,
    version     INTEGER
);
"""


def _shop_gate(db: sqlite3.Connection, shop: str) -> Gate:
    """The reply gate with the shop's own words (cohost.knowledge.moderation keeps them in this file)."""
    try:
        rows = db.execute("SELECT word, kind FROM shop_words WHERE shop=? ORDER BY id", (shop,)).fetchall()
    except sqlite3.OperationalError:  # no moderation table yet: the packaged words only
        rows = []
    return Gate().with_words([w for w, k in rows if k == "banned"], [w for w, k in rows if k == "allowed"])


class StoreError(CohostError):
    """The store cannot do what was asked (unknown version, unknown draft...)."""


class VersionConflict(StoreError):
    """Someone else wrote a version after the one this change was based on."""

    def __init__(self, shop: str, base: int | None, head: int | None):
        self.shop, self.base, self.head = shop, base, head
        super().__init__(f"shop {shop!r} is at version {head}, but this change was made on version {base}; "
                         "reload and apply it again")


@dataclass(frozen=True)
class VersionInfo:
    shop: str
    version: int
    created_at: float
    author: str
    note: str
    source: str
    based_on: int | None
    status: str
    error: str | None
    faqs: int
    products: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Draft:
    id: int
    shop: str
    product_id: str | None
    question: str
    variants: tuple[str, ...]
    cluster: str
    asked: int
    created_at: float
    status: str
    faq_id: str | None
    version: int | None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "variants": list(self.variants)}


_VERSION_COLS = "shop, version, created_at, author, note, source, based_on, status, error, faqs, products"
_DRAFT_COLS = "id, shop, product_id, question, variants, cluster, asked, created_at, status, faq_id, version"


def _draft(row: sqlite3.Row) -> Draft:
    return Draft(*row[:4], tuple(json.loads(row[4])), *row[5:])  # type: ignore[call-arg]


class CatalogStore(SqliteFile):
    SCHEMA = SCHEMA

    # -- versions ---------------------------------------------------------------------------------------

    def shops(self) -> list[str]:
        with self._connect() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT shop FROM versions ORDER BY shop")]

    def versions(self, shop: str) -> list[VersionInfo]:
        """Newest first."""
        with self._connect() as db:
            rows = db.execute(f"SELECT {_VERSION_COLS} FROM versions WHERE shop=? ORDER BY version DESC", (shop,))
            return [VersionInfo(*r) for r in rows]

    def version(self, shop: str, version: int) -> VersionInfo:
        with self._connect() as db:
            row = db.execute(f"SELECT {_VERSION_COLS} FROM versions WHERE shop=? AND version=?",
                             (shop, version)).fetchone()
        if row is None:
            raise StoreError(f"shop {shop!r} has no version {version}")
        return VersionInfo(*row)

    def head(self, shop: str) -> VersionInfo | None:
        """The newest version in any state: the one the next change must be based on."""
        with self._connect() as db:
            row = db.execute(f"SELECT {_VERSION_COLS} FROM versions WHERE shop=? ORDER BY version DESC LIMIT 1",
                             (shop,)).fetchone()
        return VersionInfo(*row) if row else None

    def serving(self, shop: str) -> VersionInfo | None:
        """The newest ready version: the one rooms answer from."""
        with self._connect() as db:
            row = db.execute(f"SELECT {_VERSION_COLS} FROM versions WHERE shop=? AND status='ready' "
                             "ORDER BY version DESC LIMIT 1", (shop,)).fetchone()
        return VersionInfo(*row) if row else None

    def catalog(self, shop: str, version: int | None = None) -> Catalog:
        """A version's catalog; the serving one when version is None."""
        if version is None:
            info = self.serving(shop) or self.head(shop)
            if info is None:
                raise StoreError(f"shop {shop!r} has no catalog yet")
            version = info.version
        with self._connect() as db:
            row = db.execute("SELECT document FROM versions WHERE shop=? AND version=?", (shop, version)).fetchone()
        if row is None:
            raise StoreError(f"shop {shop!r} has no version {version}")
        return Catalog.model_validate_json(row[0])

    def check_gate(self, shop: str, catalog: Catalog, source: str) -> None:
        """CatalogError when the catalog says something in public the shop's gate refuses (a preview
        shows it before anything is written; commit refuses it again)."""
        with self._connect() as db:
            problems = gate_problems(catalog, _shop_gate(db, shop), source)
        if problems:
            raise CatalogError(problems)

    def commit(self, shop: str, change: Callable[[Catalog | None], Catalog], *, base_version: int | None = None,
               author: str = "api", note: str = "", source: str = "") -> tuple[VersionInfo, Catalog]:
        """Write a new version made by ``change`` from the head catalog (None for a new shop).

        The head is read and the new version written in one transaction, so two edits at once are
        applied one after the other, never one over the other. With ``base_version`` the change is
        refused when the head has moved on since the writer looked."""
        with self._write() as db:
            row = db.execute("SELECT version, document FROM versions WHERE shop=? ORDER BY version DESC LIMIT 1",
                             (shop,)).fetchone()
            head = row[0] if row else None
            if base_version is not None and base_version != (head or 0):
                raise VersionConflict(shop, base_version, head)
            catalog = change(Catalog.model_validate_json(row[1]) if row else None)
            problems = gate_problems(catalog, _shop_gate(db, shop), source or "catalog")
            if problems:
                raise CatalogError(problems)
            version = (head or 0) + 1
            db.execute(f"INSERT INTO versions ({_VERSION_COLS}, document) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (shop, version, time.time(), author, note, source, head, "building", None,
                        catalog.faq_count(), len(catalog.products), catalog.model_dump_json()))
        return self.version(shop, version), catalog

    def mark(self, shop: str, version: int, status: str, error: str | None = None) -> None:
        with self._write() as db:
            db.execute("UPDATE versions SET status=?, error=? WHERE shop=? AND version=?",
                       (status, error, shop, version))

    # -- coverage gaps ----------------------------------------------------------------------------------

    def record_gaps(self, shop: str, gaps: Sequence[Gap]) -> None:
        if not gaps:
            return
        with self._write() as db:
            db.executemany("INSERT INTO gaps (shop, room, text, normalized, product_id, reason, ts) "
                           "VALUES (?,?,?,?,?,?,?)",
                           [(shop, g.room, g.text, g.normalized, g.product_id, g.reason, g.ts) for g in gaps])

    def open_gaps(self, shop: str, since: float = 0.0, limit: int = 20_000) -> list[Gap]:
        """Unanswered questions not yet turned into a draft, newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT id, room, text, normalized, product_id, reason, ts FROM gaps "
                              "WHERE shop=? AND draft_id IS NULL AND ts>=? ORDER BY ts DESC LIMIT ?",
                              (shop, since, limit))
            return [Gap(*r) for r in rows]

    # -- drafts -----------------------------------------------------------------------------------------

    def create_draft(self, shop: str, *, product_id: str | None, question: str, variants: Sequence[str],
                     cluster: str, gap_ids: Sequence[int]) -> Draft:
        """A draft FAQ from a cluster of gaps; the gaps leave the open list."""
        with self._write() as db:
            cur = db.execute("INSERT INTO drafts (shop, product_id, question, variants, cluster, asked, created_at, "
                             "status) VALUES (?,?,?,?,?,?,?, 'draft')",
                             (shop, product_id, question, json.dumps(list(variants), ensure_ascii=False), cluster,
                              len(gap_ids), time.time()))
            draft_id = int(cur.lastrowid or 0)
            db.executemany("UPDATE gaps SET draft_id=? WHERE id=? AND shop=?",
                           [(draft_id, g, shop) for g in gap_ids])
        return self.draft(shop, draft_id)

    def drafts(self, shop: str, status: str = "draft") -> list[Draft]:
        with self._connect() as db:
            rows = db.execute(f"SELECT {_DRAFT_COLS} FROM drafts WHERE shop=? AND status=? ORDER BY id DESC",
                              (shop, status))
            return [_draft(r) for r in rows]

    def draft(self, shop: str, draft_id: int) -> Draft:
        with self._connect() as db:
            row = db.execute(f"SELECT {_DRAFT_COLS} FROM drafts WHERE shop=? AND id=?", (shop, draft_id)).fetchone()
        if row is None:
            raise StoreError(f"shop {shop!r} has no draft {draft_id}")
        return _draft(row)

    def close_draft(self, shop: str, draft_id: int, status: str, *, faq_id: str | None = None,
                    version: int | None = None) -> None:
        with self._write() as db:
            # A discarded draft keeps its gaps: the owner decided those questions need no FAQ.
            cur = db.execute("UPDATE drafts SET status=?, faq_id=?, version=? WHERE shop=? AND id=?",
                             (status, faq_id, version, shop, draft_id))
            if cur.rowcount == 0:
                raise StoreError(f"shop {shop!r} has no draft {draft_id}")
