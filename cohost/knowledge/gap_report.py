"""The live gap report: unanswered questions clustered as they arrive, so that opening /admin costs a lookup.

Computing the report on request (embed every open gap, then cluster them) took 21.8 s at 2,000 distinct
texts, and its encoder passes and Python loops took the interpreter from the live rooms meanwhile. Here
one background task per server follows the gaps table (rows the rooms' recorder writes, or anyone else)
and, a small batch at a time on the low-priority threads, paced to leave most of the time to the rooms:

- embeds each new distinct (product, normalised text) once, keeping the vector in memory only
  (``CachedEmbedder.embed_viewer``: viewer text never reaches the disk cache);
- drops what is not a question (``gaps.asks``: the intent classifier, stricter than a room's label);
- puts each question in the cluster whose members it is closest to on average (the same greedy
  average-linkage as ``gaps.cluster_gaps``, applied one text at a time);
- when a shop starts serving a new catalog version, asks that version's engine the most asked wording
  of every cluster, biggest first: a cluster it answers leaves the list. Gaps asked after that, which the
  rooms could still not answer, bring the cluster back marked ``returned`` ("之前已回答，又有人问").

A request reads the last snapshot (the default view is kept serialised). When the report is only a few
texts behind (a test, a quiet shop), a request waits for it a moment, so what was just asked is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import weakref
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..aio import create_task, to_background_thread
from .gaps import DEFAULT_THRESHOLD, Gap, GapCluster, asks, cluster_id, summarize

if TYPE_CHECKING:
    from .service import CatalogService

log = logging.getLogger(__name__)

BATCH = 16             # texts embedded, or clusters checked, per background step
PACE = 1.0             # after a step, sleep this many times as long as it took: at most half of one core
SYNC_EVERY_S = 1.0     # how often the gaps table is read for new rows
RENDER_EVERY_S = 0.5   # how often the served snapshot follows a report that is catching up
PRUNE_EVERY_S = 60.0   # how often gaps older than store.gap_days leave
SMALL_BACKLOG = 48     # a request waits for a backlog this small ...
WAIT_S = 5.0           # ... for at most this long (a few batches, on a busy machine)
DEFAULT_LIMIT = 200    # clusters a request returns unless it asks for more (the page shows the biggest)
MAX_LIMIT = 20_000
MAX_GAPS = 20_000      # open gaps read when a shop's report starts (store.open_gaps' newest first)


@dataclass(eq=False)
class _Form:
    """Every open gap with one (product, normalised text), and what the report knows of the text."""

    product_id: str | None
    normalized: str
    waiting: list[Gap] = field(default_factory=list)  # arrived before the text was embedded
    question: bool | None = None                     # None until embedded and classified
    cluster: _Cluster | None = None


@dataclass(eq=False)
class _Cluster:
    id: str
    product_id: str | None
    row: int                                         # its row in the product's sums
    open: list[Gap] = field(default_factory=list)      # unanswered, shown
    resolved: list[Gap] = field(default_factory=list)  # answered by the version that answered the cluster
    answered_version: int | None = None
    answered_at: float | None = None                 # when that version started serving
    checked_version: int | None = None
    last_seen: float = 0.0

    def add(self, gap: Gap) -> None:
        if self.answered_at is not None and gap.ts <= self.answered_at:
            self.resolved.append(gap)  # asked before the answer went live
        else:
            self.open.append(gap)
            self.last_seen = max(self.last_seen, gap.ts)


class _Product:
    """One product's clusters and the sums of their members' vectors (mean cosine = sum · v / size)."""

    def __init__(self, dim: int):
        self.sums = np.zeros((16, dim), np.float32)
        self.sizes = np.zeros(16, np.float32)
        self.clusters: list[_Cluster] = []

    def place(self, vec: np.ndarray, threshold: float) -> int | None:
        k = len(self.clusters)
        if not k:
            return None
        sims = (self.sums[:k] @ vec) / self.sizes[:k]
        best = int(np.argmax(sims))
        return best if sims[best] >= threshold else None

    def join(self, row: int, vec: np.ndarray) -> None:
        self.sums[row] += vec
        self.sizes[row] += 1

    def found(self, cluster: _Cluster, vec: np.ndarray) -> None:
        k = len(self.clusters)
        if k == len(self.sizes):
            self.sums = np.concatenate([self.sums, np.zeros_like(self.sums)])
            self.sizes = np.concatenate([self.sizes, np.zeros_like(self.sizes)])
        self.sums[k] = vec
        self.sizes[k] = 1
        self.clusters.append(cluster)


class _ShopReport:
    def __init__(self, shop: str):
        self.shop = shop
        self.lock = threading.Lock()  # the worker's threads and requests' threads both read and change it
        self.forms: dict[tuple[str | None, str], _Form] = {}
        self.pending: list[_Form] = []           # to embed, in order
        self.products: dict[str | None, _Product] = {}
        self.clusters: dict[str, _Cluster] = {}
        self.to_check: deque[_Cluster] = deque()  # popped from the right: biggest first
        self.queued: set[str] = set()            # ids in to_check
        self.embed_next = True                   # embedding and checking take turns
        self.embedding = 0                       # forms in the batch being embedded now
        self.checking = 0                        # clusters in the batch being checked now
        self.max_id = 0
        self.version: int | None = None          # the serving version clusters are checked against
        self.swapped_at = 0.0                    # when it started serving (as far as the report knows)
        self.excluded = 0                        # gaps that were not questions
        self.waiting = 0                         # gaps whose text is not embedded yet
        self.changes = 0                         # bumped on every change; the snapshot follows it
        self.snapshot: tuple[int, bytes] = (-1, b"[]")
        self.settled = asyncio.Event()
        self.reading = asyncio.Lock()            # one read of the gaps table at a time
        self.last_sync = 0.0
        self.last_render = 0.0
        self.last_prune = time.time()

    def backlog(self) -> int:
        # The batch in flight counts: a request that saw none would read a snapshot that is about to change.
        return len(self.pending) + len(self.to_check) + self.embedding + self.checking

    # -- changes, all under self.lock -------------------------------------------------------------------

    def take(self, gaps: list[Gap], *, first: bool = False) -> None:
        """New gaps: read in id order (or, the first time, all open ones in any order)."""
        for g in gaps:
            if g.id <= self.max_id and not first:
                continue  # defensive: a row read twice
            self.max_id = max(self.max_id, g.id)
            form = self.forms.get((g.product_id, g.normalized))
            if form is None:
                form = self.forms[(g.product_id, g.normalized)] = _Form(g.product_id, g.normalized)
                self.pending.append(form)
            if form.question is None:
                form.waiting.append(g)
                self.waiting += 1
            elif form.question and form.cluster is not None:
                self._add(form.cluster, g)
            else:
                self.excluded += 1
        if gaps:
            self.changes += 1

    def _add(self, cluster: _Cluster, g: Gap) -> None:
        cluster.add(g)
        if g.ts <= self.swapped_at and cluster.checked_version != self.version and cluster.id not in self.queued:
            # Asked before the serving version started: that version may answer it now. Checked after the
            # ones queued before it (the report starts with the most asked).
            self.to_check.appendleft(cluster)
            self.queued.add(cluster.id)

    def place(self, forms: list[_Form], vectors: np.ndarray, questions: list[bool], threshold: float) -> None:
        for form, vec, question in zip(forms, vectors, questions, strict=True):
            form.question = question
            waiting, form.waiting = form.waiting, []
            self.waiting -= len(waiting)
            if not question:
                self.excluded += len(waiting)
                continue
            product = self.products.get(form.product_id)
            if product is None:
                product = self.products[form.product_id] = _Product(len(vec))
            row = product.place(vec, threshold)
            if row is None:
                cid = cluster_id(form.product_id, form.normalized)
                cluster = _Cluster(cid, form.product_id, len(product.clusters))
                product.found(cluster, vec)
                self.clusters[cid] = cluster
            else:
                cluster = product.clusters[row]
                product.join(row, vec)
            form.cluster = cluster
            for g in waiting:
                self._add(cluster, g)
            if cluster.id not in self.queued:
                cluster.checked_version = self.version  # asked only while this version serves: not answered
        self.changes += 1

    def new_version(self, version: int, now: float) -> None:
        if version == self.version:
            return
        self.version, self.swapped_at = version, now
        # Every cluster, biggest first (popped from the end), most recently asked first among equals.
        self.to_check = deque(sorted((c for c in self.clusters.values() if c.open or c.resolved),
                                     key=lambda c: (len(c.open) or len(c.resolved), c.last_seen)))
        self.queued = {c.id for c in self.to_check}
        self.changes += 1

    def next_batch(self, checking: bool) -> list[_Form] | list[_Cluster]:
        if not checking:
            batch, self.pending = self.pending[:BATCH], self.pending[BATCH:]
            self.embedding = len(batch)
            return batch
        clusters = [self.to_check.pop() for _ in range(min(BATCH, len(self.to_check)))]
        self.queued.difference_update(c.id for c in clusters)
        self.checking = len(clusters)
        return clusters

    def batch_done(self) -> None:
        """The batch in flight is placed or checked (or failed): called on the loop, after the thread."""
        self.embedding = self.checking = 0

    def checked(self, cluster: _Cluster, version: int, open_answered: bool | None,
                resolved_answered: bool | None) -> None:
        """The serving version's answers to the most asked open and resolved wordings (None: none)."""
        if version != self.version:
            return
        cluster.checked_version = version
        if resolved_answered is False:
            # The answer is gone (an FAQ deleted, a rollback): its questions are open again.
            cluster.open = sorted(cluster.resolved + cluster.open, key=lambda g: (g.ts, g.id))
            cluster.resolved = []
            cluster.answered_version = cluster.answered_at = None
            cluster.last_seen = max((g.ts for g in cluster.open), default=0.0)
        elif open_answered:
            cluster.resolved += cluster.open
            cluster.open = []
            cluster.answered_version, cluster.answered_at = version, self.swapped_at
        elif resolved_answered and not cluster.open:
            cluster.answered_version = version
        self.changes += 1

    def drafted(self, gap_ids: set[int]) -> None:
        for c in self.clusters.values():
            if any(g.id in gap_ids for g in c.open):
                c.open = [g for g in c.open if g.id not in gap_ids]
                c.resolved = [g for g in c.resolved if g.id not in gap_ids]
        self.changes += 1

    def prune(self, since: float) -> None:
        for c in self.clusters.values():
            c.open = [g for g in c.open if g.ts >= since]
            c.resolved = [g for g in c.resolved if g.ts >= since]
        self.changes += 1

    # -- reading, under self.lock -----------------------------------------------------------------------

    def visible(self, since: float | None = None) -> list[tuple[_Cluster, list[Gap]]]:
        out = []
        for c in self.clusters.values():
            gaps = c.open if since is None else [g for g in c.open if g.ts >= since]
            if gaps:
                out.append((c, gaps))
        out.sort(key=lambda x: (-len(x[1]), -max(g.ts for g in x[1]), x[0].id))
        return out

    def view(self, since: float | None, limit: int) -> list[dict[str, Any]]:
        rows = []
        for c, gaps in self.visible(since)[:limit]:
            made = summarize(c.id, c.product_id, gaps)
            rows.append({**made.to_json(), "returned": c.answered_version is not None,
                         "answered_version": c.answered_version, "answered_count": len(c.resolved)})
        return rows

    def status(self) -> dict[str, Any]:
        shown = [c for c in self.clusters.values() if c.open]
        return {"clusters": len(shown), "asked": sum(len(c.open) for c in shown),
                "returned": sum(1 for c in shown if c.answered_version is not None),
                "answered": sum(len(c.resolved) for c in self.clusters.values()),
                "pending": self.waiting, "excluded": self.excluded,
                "version": self.version, "checking": len(self.to_check) + self.checking}

    def find(self, cid: str, since: float | None) -> GapCluster | None:
        c = self.clusters.get(cid)
        if c is None:
            return None
        gaps = c.open if since is None else [g for g in c.open if g.ts >= since]
        return summarize(c.id, c.product_id, gaps) if gaps else None


def _most_asked(gaps: list[Gap]) -> Gap | None:
    """The most asked raw text of the most asked form: what a room would be asked again."""
    if not gaps:
        return None
    top = Counter(g.normalized for g in gaps).most_common(1)[0][0]
    raw = Counter(g.text for g in gaps if g.normalized == top).most_common(1)[0][0]
    return next(g for g in gaps if g.text == raw)


_REPORTS: weakref.WeakKeyDictionary[Any, GapReport] = weakref.WeakKeyDictionary()


class GapReport:
    """Every shop's live gap report on one server (see the module's docstring)."""

    def __init__(self, catalogs: CatalogService, *, gap_days: float, threshold: float = DEFAULT_THRESHOLD):
        # Weak: the registry below is keyed by the service, and a strong reference back would keep every
        # service (and its engines) alive for as long as the process runs.
        self._catalogs = weakref.ref(catalogs)
        self.store = catalogs.store
        self.gap_days = gap_days
        self.threshold = threshold
        self._shops: dict[str, _ShopReport] = {}
        self._starting: dict[str, asyncio.Future[_ShopReport]] = {}
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None

    @property
    def catalogs(self) -> CatalogService:
        catalogs = self._catalogs()
        if catalogs is None:
            raise RuntimeError("the catalog service of this gap report is gone")
        return catalogs

    @classmethod
    def of(cls, catalogs: CatalogService, *, gap_days: float | None = None) -> GapReport:
        """The report of the server built on ``catalogs``: the hub (which starts it) and the admin API
        (which reads it) are made separately from the same service and must share one."""
        report = _REPORTS.get(catalogs)
        if report is None:
            days = gap_days if gap_days is not None else catalogs.base.config.store.gap_days
            report = _REPORTS[catalogs] = cls(catalogs, gap_days=days)
        return report

    # -- running ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (idempotent; on the running loop)."""
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = create_task(self._run(), name="gap-report", tasks=self._tasks)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def _since(self) -> float:
        return time.time() - 86400 * self.gap_days

    async def _shop(self, shop: str) -> _ShopReport:
        st = self._shops.get(shop)
        if st is not None:
            return st
        starting = self._starting.get(shop)
        if starting is None:
            starting = self._starting[shop] = asyncio.ensure_future(self._open(shop))
            starting.add_done_callback(lambda _f, s=shop: self._starting.pop(s, None))
        return await asyncio.shield(starting)

    async def _open(self, shop: str) -> _ShopReport:
        st = _ShopReport(shop)
        gaps = await asyncio.to_thread(self.store.open_gaps, shop, self._since(), MAX_GAPS)
        # Most asked texts first, as cluster_gaps does: each cluster is founded by its most asked form.
        counts = Counter((g.product_id, g.normalized) for g in gaps)
        gaps.sort(key=lambda g: (-counts[(g.product_id, g.normalized)], g.ts, g.id))
        with st.lock:
            st.take(gaps, first=True)
        self._shops[shop] = st
        if self._wake is not None:
            self._wake.set()
        return st

    async def _sync(self, st: _ShopReport) -> None:
        async with st.reading:
            gaps = await asyncio.to_thread(self.store.gaps_after, st.shop, st.max_id, self._since())
            st.last_sync = time.monotonic()
            if gaps:
                await asyncio.to_thread(self._locked, st, st.take, gaps)

    @staticmethod
    def _locked(st: _ShopReport, fn: Any, *args: Any) -> Any:
        with st.lock:
            return fn(*args)

    async def _run(self) -> None:
        assert self._wake is not None
        with contextlib.suppress(Exception):
            await self._shop(self.catalogs.default_shop)  # /admin opens on it: have it ready
        while True:
            busy = False
            for st in list(self._shops.values()):
                try:
                    busy = await self._step(st) or busy
                except Exception:
                    log.exception("gap report of shop %s failed a step", st.shop)
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), SYNC_EVERY_S)

    async def _step(self, st: _ShopReport) -> bool:
        """One small piece of work for a shop; whether there was any."""
        if time.monotonic() - st.last_sync >= SYNC_EVERY_S:
            await self._sync(st)
        if time.time() - st.last_prune >= PRUNE_EVERY_S:
            st.last_prune = time.time()
            await asyncio.to_thread(self._locked, st, st.prune, self._since())
        version = self.catalogs.serving_version(st.shop)
        started = time.perf_counter()
        with st.lock:
            if version is not None and version != st.version:
                st.new_version(version, time.time())
            can_check = bool(st.to_check) and version is not None
            # Embedding and checking take turns, so that a new version is checked while a backlog of texts
            # (a restart with thousands of open gaps) is still being embedded.
            checking = can_check and (not st.pending or not st.embed_next)
            st.embed_next = not st.embed_next
            batch = st.next_batch(checking) if st.pending or can_check else []
        if not batch:
            if st.snapshot[0] != st.changes:
                await asyncio.to_thread(self._render, st)
            if not st.backlog():  # a request may have brought more meanwhile
                st.settled.set()
            return False
        st.settled.clear()
        try:
            if checking:
                await to_background_thread(self._check, st, version, batch)
            else:
                await to_background_thread(self._embed, st, batch)
        finally:
            st.batch_done()  # two int stores, atomic: no need to wait for the lock on the loop
        if st.snapshot[0] != st.changes and time.monotonic() - st.last_render >= RENDER_EVERY_S:
            await asyncio.to_thread(self._render, st)
        # Pacing: the rooms' encoder calls and decisions come first; this takes what they leave.
        await asyncio.sleep(PACE * (time.perf_counter() - started))
        return True

    def _engine(self, shop: str) -> Any:
        try:
            return self.catalogs.engine(shop)
        except KeyError:
            return self.catalogs.base  # the models are shared by every shop's engine

    def _embed(self, st: _ShopReport, forms: list[_Form]) -> None:
        engine = self._engine(st.shop)
        texts = [f.normalized for f in forms]
        vectors = engine.embedder.embed_viewer(texts)
        raw = [f.waiting[0].text if f.waiting else f.normalized for f in forms]
        intents = engine.intent.classify_many(texts, raw, vectors)
        with st.lock:
            st.place(forms, vectors, [asks(i) for i in intents], self.threshold)

    def _check(self, st: _ShopReport, version: int, clusters: list[_Cluster]) -> None:
        from ..engine import Message

        engine = self._engine(st.shop)
        asked: list[tuple[_Cluster, Gap | None, Gap | None]] = []
        with st.lock:
            for c in clusters:
                asked.append((c, _most_asked(c.open), _most_asked(c.resolved)))
        messages = [Message(g.text, None, c.product_id) for c, *gaps in asked for g in gaps if g is not None]
        answers = iter(d.answered for d in engine.answer_many(messages))
        with st.lock:
            for c, open_gap, resolved_gap in asked:
                open_answered = next(answers) if open_gap is not None else None
                resolved_answered = next(answers) if resolved_gap is not None else None
                st.checked(c, version, open_answered, resolved_answered)

    def _render(self, st: _ShopReport) -> None:
        with st.lock:
            changes = st.changes
            rows = st.view(None, DEFAULT_LIMIT)
        st.snapshot = (changes, json.dumps(rows, ensure_ascii=False).encode())
        st.last_render = time.monotonic()

    # -- requests ---------------------------------------------------------------------------------------

    async def _fresh(self, shop: str) -> _ShopReport:
        self.start()
        st = await self._shop(shop)
        await self._sync(st)
        version = self.catalogs.serving_version(shop)
        if version is not None and version != st.version:
            # An upload or edit just started serving: its answers are checked before this is shown.
            await asyncio.to_thread(self._locked, st, st.new_version, version, time.time())
        deadline = time.monotonic() + WAIT_S
        while 0 < st.backlog() <= SMALL_BACKLOG and (left := deadline - time.monotonic()) > 0:
            assert self._wake is not None
            st.settled.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(st.settled.wait(), left)
        if not st.backlog() and st.snapshot[0] != st.changes:
            await asyncio.to_thread(self._render, st)
        return st

    async def clusters_json(self, shop: str, *, days: float | None = None, limit: int = DEFAULT_LIMIT) -> bytes:
        """The clusters shown, biggest first, as JSON (GapCluster.to_json plus returned, answered_version
        and answered_count)."""
        st = await self._fresh(shop)
        if days is None and limit == DEFAULT_LIMIT:
            return st.snapshot[1]
        since = None if days is None else time.time() - 86400 * days
        rows = await asyncio.to_thread(self._locked, st, st.view, since, limit)
        return json.dumps(rows, ensure_ascii=False).encode()

    async def status(self, shop: str) -> dict[str, Any]:
        st = await self._fresh(shop)
        return await asyncio.to_thread(self._locked, st, st.status)

    async def cluster(self, shop: str, cid: str, *, days: float | None = None) -> GapCluster | None:
        st = await self._fresh(shop)
        since = None if days is None else time.time() - 86400 * days
        return await asyncio.to_thread(self._locked, st, st.find, cid, since)

    async def drafted(self, shop: str, gap_ids: tuple[int, ...]) -> None:
        st = await self._shop(shop)
        await asyncio.to_thread(self._locked, st, st.drafted, set(gap_ids))
        await asyncio.to_thread(self._render, st)
