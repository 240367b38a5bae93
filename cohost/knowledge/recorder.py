"""Records the questions live rooms could not answer, for the gap report.

Rooms run on the event loop and must never wait for a disk: gaps are buffered in memory and written to
the store in one transaction a second from a worker thread. The buffer is bounded; under a flood the
oldest unwritten gaps are dropped and counted, the room never slows down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from ..dialog.room import Audit, Unanswered
from .audit import AuditLog, AuditRow
from .gaps import Gap
from .store import CatalogStore

log = logging.getLogger(__name__)
FORGET_EVERY_S = 3600.0


class GapRecorder:
    def __init__(self, store: CatalogStore, *, max_buffer: int = 10_000, interval_s: float = 1.0):
        self.store = store
        self.interval_s = interval_s
        self._buffer: deque[tuple[str, Gap]] = deque(maxlen=max_buffer)
        self.dropped = 0
        self.written = 0

    def add(self, shop: str, room: str, gap: Unanswered) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append((shop, Gap(0, room, gap.text, gap.normalized, gap.product_id, gap.reason, gap.ts)))

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch = list(self._buffer)
        self._buffer.clear()
        by_shop: dict[str, list[Gap]] = {}
        for shop, gap in batch:
            by_shop.setdefault(shop, []).append(gap)
        for shop, gaps in by_shop.items():
            try:
                await asyncio.to_thread(self.store.record_gaps, shop, gaps)
                self.written += len(gaps)
            except Exception:
                log.exception("could not record %d unanswered questions for shop %s", len(gaps), shop)

    async def run(self) -> None:
        """Flush every interval; cancel it, then call flush() once more on shutdown."""
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()


class AuditRecorder:
    """Writes the rooms' audit lines (every reply sent, held, approved, rejected, expired, blocked or
    rewritten) to the audit log a second at a time from a worker thread, like GapRecorder; and once an
    hour forgets the viewers' texts older than ``keep_viewer_s`` (store.gap_days)."""

    def __init__(self, log_: AuditLog, *, keep_viewer_s: float, max_buffer: int = 20_000, interval_s: float = 1.0):
        self.log = log_
        self.keep_viewer_s = keep_viewer_s
        self.interval_s = interval_s
        self._buffer: deque[AuditRow] = deque(maxlen=max_buffer)
        self.dropped = 0
        self.written = 0
        self._last_forget = 0.0

    def add(self, shop: str, room: str, a: Audit) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(AuditRow(ts=a.ts, shop=shop, room=room, outcome=a.outcome, text=a.text, kind=a.kind,
                                     original=a.original, entry_id=a.entry_id, rule=a.rule, detail=a.detail,
                                     actor=a.actor, viewer_texts=a.viewer_texts, viewers=a.viewers, handle=a.handle))

    async def flush(self) -> None:
        if self._buffer:
            batch = list(self._buffer)
            self._buffer.clear()
            try:
                await asyncio.to_thread(self.log.record, batch)
                self.written += len(batch)
            except Exception:
                log.exception("could not write %d audit lines", len(batch))
        now = time.time()
        if now - self._last_forget >= FORGET_EVERY_S:
            self._last_forget = now
            try:
                await asyncio.to_thread(self.log.forget_viewer_texts, now - self.keep_viewer_s)
            except Exception:
                log.exception("could not forget old viewer texts in the audit log")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.flush()
