"""The catalog store: every shop's catalog versions, unanswered questions and draft FAQs in one SQLite file.

Versions are append-only. An upload, an edit, a rollback: each writes a new version; nothing is ever
overwritten, so no change can lose an earlier one. A version is written first ("building") and marked
"ready" once its index is built; rooms are served the newest ready version. A writer that names the
version it started from (``base_version``) gets a VersionConflict when someone else wrote in between,
never a silent overwrite.

A change is based on the *head*: the newest version that is ready or still being built by a live
process. A failed version (its build raised, or its process died mid-build) is kept as history but is
never a base unless the writer names it as ``base_version`` while it is the newest version: a crashed
upload must not go live through the next one-FAQ edit, without the preview its owner never saw.
Whether a "building" version's builder is alive is known from a lock file the builder holds
(``<store>.builds/``); the OS drops it when the process dies, even on kill -9, so ``recover`` can tell
an interrupted build from one in progress in another process (`cohost knowledge import`).

Every call opens its own connection, so the store is safe to use from any thread and from several
processes at once (the server and `cohost knowledge import` can share the file); SQLite's WAL journal
keeps readers off writers' backs, and BEGIN IMMEDIATE serialises writers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CatalogError, CohostError
from ..gate import Gate
from .catalog import Catalog, gate_problems
from .gaps import Gap
from .sqlite import SqliteFile

try:
    import fcntl
except ImportError:  # Windows: no flock; see _Leases
    fcntl = None  # type: ignore[assignment]

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


class VersionState(StoreError):
    """The version is not in a state that allows this (e.g. rebuilding one that is not failed)."""


# Shown on /admin beside a version whose build was cut off (kill -9, power loss, OOM): it never served.
INTERRUPTED = "服务器在建立索引时中断"

# Build leases held by this process, for every store file: {(lease dir, shop, version): fd or -1}.
_HELD: dict[tuple[str, str, int], int] = {}
_HELD_LOCK = threading.Lock()


class _Leases:
    """The process building a version holds an exclusive flock on a file named after it.

    flock belongs to an open file, so another process (or another open of the file in this one) sees it
    held until the builder releases it or dies; the OS drops it on kill -9. Leases are taken and dead
    ones cleared only inside a write transaction, which BEGIN IMMEDIATE serialises across processes.
    Without fcntl (Windows) only this process's own leases are known: a build in another live process
    then looks interrupted."""

    def __init__(self, store_path: Path):
        self.dir = store_path.with_name(store_path.name + ".builds")

    def _key(self, shop: str, version: int) -> tuple[str, str, int]:
        return (str(self.dir), shop, version)

    def _path(self, shop: str, version: int) -> Path:
        # A shop id may hold any character (the CLI takes it from config.yaml): never use it in a file name.
        return self.dir / f"{hashlib.sha256(shop.encode()).hexdigest()[:16]}-v{version}.lock"

    def take(self, shop: str, version: int) -> None:
        key = self._key(shop, version)
        if fcntl is None:
            with _HELD_LOCK:
                _HELD[key] = -1
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(shop, version)
        deadline = time.monotonic() + 2.0
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                # A reader probing liveness holds it for a moment; a real builder holds it for the whole build.
                if time.monotonic() > deadline:
                    raise VersionState(f"version {version} of shop {shop!r} is being built by another process"
                                       ) from None
                time.sleep(0.01)
                continue
            try:  # unlinked by a releasing builder between our open and our lock: nobody else can see it
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        with _HELD_LOCK:
            _HELD[key] = fd

    def release(self, shop: str, version: int) -> None:
        with _HELD_LOCK:
            fd = _HELD.pop(self._key(shop, version), None)
        if fd is None or fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._path(shop, version))  # before the lock goes, so no one locks a file about to vanish
        os.close(fd)

    def alive(self, shop: str, version: int) -> bool:
        """Whether some live process holds the version's build lease."""
        with _HELD_LOCK:
            if self._key(shop, version) in _HELD:
                return True
        if fcntl is None:
            return False
        try:
            fd = os.open(self._path(shop, version), os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # also drops the lock if we got it
        return False

    def clear(self, shop: str, version: int) -> None:
        """Remove a dead builder's lease file."""
        with contextlib.suppress(OSError):
            os.unlink(self._path(shop, version))


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

    @property
    def _leases(self) -> _Leases:
        return _Leases(self.path)

    def _head_row(self, db: sqlite3.Connection, shop: str) -> tuple[Any, ...] | None:
        for row in db.execute(f"SELECT {_VERSION_COLS} FROM versions WHERE shop=? AND status!='failed' "
                              "ORDER BY version DESC", (shop,)):
            if row[7] == "ready" or self._leases.alive(shop, row[1]):
                return tuple(row)
        return None

    def head(self, shop: str) -> VersionInfo | None:
        """The version the next change is based on: the newest that is ready or still being built by a
        live process. Never a failed one, nor one whose builder died (see the module's docstring)."""
        with self._connect() as db:
            row = self._head_row(db, shop)
        return VersionInfo(*row) if row else None

    def _fail_dead(self, db: sqlite3.Connection, shop: str | None, reason: str) -> list[tuple[str, int]]:
        """Inside a write transaction: mark "building" versions whose builder died as failed."""
        rows = db.execute("SELECT shop, version FROM versions WHERE status='building'" +
                          (" AND shop=?" if shop is not None else ""), (shop,) if shop is not None else ()).fetchall()
        dead = [(s, v) for s, v in rows if not self._leases.alive(s, v)]
        db.executemany("UPDATE versions SET status='failed', error=? WHERE shop=? AND version=? AND status='building'",
                       [(reason, s, v) for s, v in dead])
        for s, v in dead:
            self._leases.clear(s, v)
        return dead

    def recover(self, shop: str | None = None, reason: str = INTERRUPTED) -> list[VersionInfo]:
        """Mark every version left "building" by a process that died mid-build as failed, with ``reason``
        (all shops when shop is None). Run at start-up: an interrupted build is never inherited.
        Builds in progress in live processes are left alone. Returns the versions marked."""
        with self._connect() as db:  # the common case (nothing to do) takes no write lock
            rows = db.execute("SELECT shop, version FROM versions WHERE status='building'" +
                              (" AND shop=?" if shop is not None else ""),
                              (shop,) if shop is not None else ()).fetchall()
        if all(self._leases.alive(s, v) for s, v in rows):
            return []
        with self._write() as db:
            dead = self._fail_dead(db, shop, reason)
        return [self.version(s, v) for s, v in dead]

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

    def gate(self, shop: str) -> Gate:
        """The shop's gate, for checking a catalog elsewhere (an upload is checked in the parse worker)."""
        with self._connect() as db:
            return _shop_gate(db, shop)

    def commit(self, shop: str, change: Callable[[Catalog | None], Catalog], *, base_version: int | None = None,
               author: str = "api", note: str = "", source: str = "") -> tuple[VersionInfo, Catalog]:
        """Write a new version made by ``change`` from the head catalog (None for a new shop).

        The head is read and the new version written in one transaction, so two edits at once are
        applied one after the other, never one over the other. With ``base_version`` the change is
        refused when the head has moved on since the writer looked. ``base_version`` may also name a
        failed version newer than the head (nothing was changed since it): the owner chose to build on it.
        The writer holds the new version's build lease until ``mark`` gives it its final status."""
        with self._write() as db:
            self._fail_dead(db, shop, INTERRUPTED)
            head_row = self._head_row(db, shop)
            head = head_row[1] if head_row else None
            newest = db.execute("SELECT MAX(version) FROM versions WHERE shop=?", (shop,)).fetchone()[0]
            base = head
            if base_version is not None and base_version != (head or 0):
                chosen = db.execute("SELECT status FROM versions WHERE shop=? AND version=?",
                                    (shop, base_version)).fetchone() if 0 < base_version <= (newest or 0) else None
                if chosen is None or base_version < (head or 0):
                    raise VersionConflict(shop, base_version, head)
                base = base_version  # a failed version after the head: every newer one failed too
            row = db.execute("SELECT document FROM versions WHERE shop=? AND version=?",
                             (shop, base)).fetchone() if base is not None else None
            catalog = change(Catalog.model_validate_json(row[0]) if row else None)
            problems = gate_problems(catalog, _shop_gate(db, shop), source or "catalog")
            if problems:
                raise CatalogError(problems)
            version = (newest or 0) + 1
            db.execute(f"INSERT INTO versions ({_VERSION_COLS}, document) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                       (shop, version, time.time(), author, note, source, base, "building", None,
                        catalog.faq_count(), len(catalog.products), catalog.model_dump_json()))
            self._leases.take(shop, version)  # before COMMIT: no one can see it "building" without a builder
        return self.version(shop, version), catalog

    def retry_build(self, shop: str, version: int, *, source: str = "rebuild") -> tuple[VersionInfo, Catalog]:
        """Make a failed version "building" again, for its index to be rebuilt (its content is unchanged;
        the shop's gate is checked again, its words may have changed since). VersionState when it is not
        failed. Like commit, the caller holds its build lease until ``mark``."""
        with self._write() as db:
            self._fail_dead(db, shop, INTERRUPTED)
            row = db.execute("SELECT status, document FROM versions WHERE shop=? AND version=?",
                             (shop, version)).fetchone()
            if row is None:
                raise StoreError(f"shop {shop!r} has no version {version}")
            if row[0] != "failed":
                raise VersionState(f"version {version} of shop {shop!r} is {row[0]}; only a failed version "
                                   "can be rebuilt")
            catalog = Catalog.model_validate_json(row[1])
            problems = gate_problems(catalog, _shop_gate(db, shop), source)
            if problems:
                raise CatalogError(problems)
            db.execute("UPDATE versions SET status='building', error=NULL WHERE shop=? AND version=?",
                       (shop, version))
            self._leases.take(shop, version)
        return self.version(shop, version), catalog

    def mark(self, shop: str, version: int, status: str, error: str | None = None) -> None:
        with self._write() as db:
            db.execute("UPDATE versions SET status=?, error=? WHERE shop=? AND version=?",
                       (status, error, shop, version))
        if status != "building":
            self._leases.release(shop, version)  # after COMMIT: the final status is visible first

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

    def gaps_after(self, shop: str, after_id: int, since: float = 0.0, limit: int = 5_000) -> list[Gap]:
        """Open gaps with an id above ``after_id``, oldest first: for a reader that follows the table as it
        grows (the live gap report). Ids only grow, so the last id returned is where to go on from."""
        with self._connect() as db:
            rows = db.execute("SELECT id, room, text, normalized, product_id, reason, ts FROM gaps "
                              "WHERE id>? AND shop=? AND draft_id IS NULL AND ts>=? ORDER BY id LIMIT ?",
                              (after_id, shop, since, limit))
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
