"""Each shop's moderation settings: the viewers it blocks and its own advertising-law words.

Stored in the catalog store's SQLite file (CatalogStore.path), one connection per call like the store.

- ``blocklist``: viewers never answered, by platform user id or by display name.
- ``shop_words``: 'banned' words extend the packaged advertising-law list; 'allowed' words are the shop's
  exceptions to it (an owner who sells large sizes allows 最大码).
- ``shop_limits``: per-viewer limits that override config.yaml (``viewer_max_per_min``).

Every change calls the listeners with the shop, on the caller's thread, after it is committed, so the live
rooms can reload what they enforce.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .sqlite import SqliteFile

log = logging.getLogger(__name__)

BLOCK_KINDS = ("user_id", "name")
WORD_KINDS = ("banned", "allowed")
VALUE_MAX = 64
NOTE_MAX = 200
WORD_MAX = 20
WORDS_MAX = 500
BLOCKED_MAX = 10_000
KIND_NAMES = {"user_id": "用户 ID", "name": "昵称"}
WORD_LIST_NAMES = {"banned": "额外禁用词", "allowed": "允许的词"}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS blocklist (
    id          INTEGER PRIMARY KEY,
    shop        TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('user_id', 'name')),
    value       TEXT    NOT NULL,
    note        TEXT    NOT NULL DEFAULT '',
    created_at  REAL    NOT NULL,
    author      TEXT    NOT NULL,
    UNIQUE (shop, kind, value)
);
CREATE TABLE IF NOT EXISTS shop_words (
    id          INTEGER PRIMARY KEY,
    shop        TEXT    NOT NULL,
    word        TEXT    NOT NULL CHECK (length(word) BETWEEN 1 AND {WORD_MAX}),
    kind        TEXT    NOT NULL CHECK (kind IN ('banned', 'allowed')),
    created_at  REAL    NOT NULL,
    author      TEXT    NOT NULL,
    UNIQUE (shop, word, kind)
);
CREATE TABLE IF NOT EXISTS shop_limits (
    shop                TEXT    PRIMARY KEY,
    viewer_max_per_min  INTEGER CHECK (viewer_max_per_min BETWEEN 1 AND 10000),
    updated_at          REAL    NOT NULL,
    author              TEXT    NOT NULL
);
"""
VIEWER_MAX_PER_MIN = (1, 10_000)


class ModerationError(ValueError):
    """A value the moderation settings refuse; the message is Chinese and names the field."""

    def __init__(self, message: str, field: str | None = None):
        self.field = field
        super().__init__(message)


def _control(text: str) -> bool:
    # Cc: C0/C1 controls (newline, tab, NUL...); Zl/Zp: line and paragraph separators. Format characters
    # (Cf) stay allowed: emoji sequences in viewers' names use the zero-width joiner.
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


def clean_value(kind: str, value: Any) -> str:
    if kind not in BLOCK_KINDS:
        raise ModerationError(f"屏蔽类型只能是 user_id（按用户 ID）或 name（按昵称），收到的是“{kind}”", "kind")
    what = KIND_NAMES[kind]
    if not isinstance(value, str):
        raise ModerationError(f"{what}必须是文字", "value")
    value = value.strip()
    if not value:
        raise ModerationError(f"{what}不能为空", "value")
    if len(value) > VALUE_MAX:
        raise ModerationError(f"{what}太长了（{len(value)} 个字），最多 {VALUE_MAX} 个字", "value")
    if _control(value):
        raise ModerationError(f"{what}里不能有换行、制表符等控制字符", "value")
    return value


def _clean_note(note: Any) -> str:
    if not isinstance(note, str):
        raise ModerationError("备注必须是文字", "note")
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ModerationError(f"备注太长了（{len(note)} 个字），最多 {NOTE_MAX} 个字", "note")
    if _control(note):
        raise ModerationError("备注里不能有换行、制表符等控制字符", "note")
    return note


def clean_words(kind: str, words: Any) -> list[str]:
    """The list as stored: each word stripped, duplicates dropped (the first kept), in the given order."""
    name = WORD_LIST_NAMES[kind]
    if isinstance(words, str) or not isinstance(words, Sequence):
        raise ModerationError(f"{name}必须是词的列表", kind)
    out: list[str] = []
    seen: set[str] = set()
    for i, word in enumerate(words, 1):
        if not isinstance(word, str):
            raise ModerationError(f"{name}第 {i} 个必须是文字", kind)
        w = word.strip()
        if not w:
            raise ModerationError(f"{name}第 {i} 个是空的", kind)
        if len(w) > WORD_MAX:
            raise ModerationError(f"{name}“{w[:WORD_MAX]}…”太长了（{len(w)} 个字），每个词最多 {WORD_MAX} 个字", kind)
        if _control(w):
            raise ModerationError(f"{name}第 {i} 个里有控制字符（每行只写一个词）", kind)
        if w not in seen:
            seen.add(w)
            out.append(w)
    if len(out) > WORDS_MAX:
        raise ModerationError(f"{name}太多了（{len(out)} 个），最多 {WORDS_MAX} 个", kind)
    return out


class Moderation(SqliteFile):
    SCHEMA = SCHEMA

    def __init__(self, path: str | Path):
        super().__init__(path)
        self._listeners: list[Callable[[str], None]] = []

    # -- listeners --------------------------------------------------------------------------------------

    def listen(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(shop)`` after every committed change, on the thread that made it."""
        self._listeners.append(fn)

    def _changed(self, shop: str) -> None:
        for fn in list(self._listeners):
            try:
                fn(shop)
            except Exception:  # the change is committed; one listener's failure must not undo or hide it
                log.exception("moderation listener %r failed for shop %s", fn, shop)

    # -- blocklist --------------------------------------------------------------------------------------

    def blocklist(self, shop: str) -> list[dict[str, Any]]:
        """Newest first."""
        with self._connect() as db:
            rows = db.execute("SELECT kind, value, note, created_at, author FROM blocklist WHERE shop=? "
                              "ORDER BY created_at DESC, id DESC", (shop,)).fetchall()
        return [dict(zip(("kind", "value", "note", "created_at", "author"), r, strict=True)) for r in rows]

    def block(self, shop: str, kind: str, value: str, *, note: str = "", author: str = "admin") -> None:
        """Block a viewer; blocking one already blocked updates the note (and keeps the date)."""
        value = clean_value(kind, value)
        note = _clean_note(note)
        with self._write() as db:
            exists = db.execute("SELECT 1 FROM blocklist WHERE shop=? AND kind=? AND value=?",
                                (shop, kind, value)).fetchone()
            if not exists:
                (count,) = db.execute("SELECT COUNT(*) FROM blocklist WHERE shop=?", (shop,)).fetchone()
                if count >= BLOCKED_MAX:
                    raise ModerationError(f"屏蔽名单已有 {count} 条，最多 {BLOCKED_MAX} 条；请先删掉一些", "value")
            db.execute("INSERT INTO blocklist (shop, kind, value, note, created_at, author) VALUES (?,?,?,?,?,?) "
                       "ON CONFLICT (shop, kind, value) DO UPDATE SET note=excluded.note, author=excluded.author",
                       (shop, kind, value, note, time.time(), author))
        self._changed(shop)

    def unblock(self, shop: str, kind: str, value: str) -> bool:
        """Whether it was on the list."""
        value = clean_value(kind, value)
        with self._write() as db:
            removed = db.execute("DELETE FROM blocklist WHERE shop=? AND kind=? AND value=?",
                                 (shop, kind, value)).rowcount > 0
        if removed:
            self._changed(shop)
        return removed

    # -- per-viewer limits ------------------------------------------------------------------------------

    def limits(self, shop: str) -> dict[str, int | None]:
        """{"viewer_max_per_min": n, or None for config.yaml's dialog.viewer_max_per_min}."""
        with self._connect() as db:
            row = db.execute("SELECT viewer_max_per_min FROM shop_limits WHERE shop=?", (shop,)).fetchone()
        return {"viewer_max_per_min": row[0] if row else None}

    def set_limits(self, shop: str, viewer_max_per_min: int | None, *, author: str = "admin") -> None:
        low, high = VIEWER_MAX_PER_MIN
        if viewer_max_per_min is not None and (isinstance(viewer_max_per_min, bool) or not isinstance(
                viewer_max_per_min, int) or not low <= viewer_max_per_min <= high):
            raise ModerationError(f"每位观众每分钟最多几条：请填 {low}–{high} 的整数，或留空用默认值",
                                  "viewer_max_per_min")
        with self._write() as db:
            db.execute("INSERT INTO shop_limits (shop, viewer_max_per_min, updated_at, author) VALUES (?,?,?,?) "
                       "ON CONFLICT (shop) DO UPDATE SET viewer_max_per_min=excluded.viewer_max_per_min, "
                       "updated_at=excluded.updated_at, author=excluded.author",
                       (shop, viewer_max_per_min, time.time(), author))
        self._changed(shop)

    # -- advertising-law words --------------------------------------------------------------------------

    def words(self, shop: str) -> dict[str, list[str]]:
        """{"banned": [...], "allowed": [...]}, each in the order the owner wrote them."""
        out: dict[str, list[str]] = {k: [] for k in WORD_KINDS}
        with self._connect() as db:
            for word, kind in db.execute("SELECT word, kind FROM shop_words WHERE shop=? ORDER BY id", (shop,)):
                out[kind].append(word)
        return out

    def set_words(self, shop: str, banned: Sequence[str], allowed: Sequence[str], *, author: str = "admin") -> None:
        """Replace both lists. A word kept from before keeps its date and author."""
        lists = {"banned": clean_words("banned", banned), "allowed": clean_words("allowed", allowed)}
        allowed_set = set(lists["allowed"])
        both = [w for w in lists["banned"] if w in allowed_set]
        if both:
            raise ModerationError(f"“{both[0]}”不能同时是禁用词和允许的词", "allowed")
        now = time.time()
        with self._write() as db:
            before = {(w, k): (c, a) for w, k, c, a in db.execute(
                "SELECT word, kind, created_at, author FROM shop_words WHERE shop=?", (shop,))}
            db.execute("DELETE FROM shop_words WHERE shop=?", (shop,))
            db.executemany("INSERT INTO shop_words (shop, word, kind, created_at, author) VALUES (?,?,?,?,?)",
                           [(shop, w, k, *before.get((w, k), (now, author))) for k in WORD_KINDS for w in lists[k]])
        self._changed(shop)
