"""Catalog versions in service: write a version, build its engine, swap it in while rooms keep answering.

    change (upload, edit, rollback) → store.commit (a "building" version; the data is safe from here on)
        → engine built in a worker thread (only new keys are embedded; progress is reported)
        → store.mark ready → the engine is swapped in, in one assignment on the event loop

Until the swap the previous engine answers every question; after it the new one does. A message being
decided during the swap finishes on the engine it started with, so no lookup ever sees half an index.
The store may also be written by another process (`cohost knowledge import`): ``watch`` notices new
ready versions and swaps them in the same way.

A build cut off by a crash (kill -9 mid-build) leaves its version "building" in the store. At start-up
(``around``) such a version is marked failed: it never served, so it is not inherited, and the next
change is based on the newest ready version instead (store.head). The owner can rebuild it from /admin
(``rebuild``): once ready it serves if it is then the newest ready version, as any version would;
if a newer version was made meanwhile, that one keeps serving and the rebuilt one waits in the history,
ready for a rollback. Either way nothing goes live that the owner did not ask for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..aio import create_task
from ..engine import AnswerEngine
from .catalog import Catalog
from .store import CatalogStore, StoreError, VersionInfo

# Beside a version left "building" by another process (`cohost knowledge import`) that died mid-build.
BUILDER_DIED = "建立索引的进程中断了（例如导入命令被强制结束）"

log = logging.getLogger(__name__)
Listener = Callable[[str, AnswerEngine], None]


@dataclass
class Build:
    """Progress of one version's index build, for the admin page and the CLI."""

    shop: str
    version: int
    started: float
    done: int = 0
    total: int = 0
    state: str = "building"  # building | ready | failed
    error: str | None = None
    finished: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


@dataclass
class _Shop:
    engine: AnswerEngine
    version: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class CatalogService:
    """Serves each shop's newest ready catalog version and builds new ones without stopping."""

    def __init__(self, store: CatalogStore, base: AnswerEngine, *, default_shop: str | None = None):
        self.store = store
        self.base = base  # its models are shared by every shop's engine
        self.default_shop = default_shop or base.config.store.shop
        self._shops: dict[str, _Shop] = {}
        self._listeners: list[Listener] = []
        self.builds: dict[str, Build] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # builds in flight (wait=False callers do not hold them)
        self._loading: dict[str, asyncio.Future[AnswerEngine]] = {}  # first builds, one per shop
        self.engine_builds = 0

    @classmethod
    def around(cls, store: CatalogStore, engine: AnswerEngine, *, shop: str | None = None,
               source: str = "start-up") -> CatalogService:
        """Serve ``engine`` for the default shop, recording its catalog as a new version when the store
        does not already serve exactly that catalog."""
        service = cls(store, engine, default_shop=shop)
        name = service.default_shop
        for lost in store.recover():  # builds a crashed server left "building": failed, never inherited
            log.warning("version %s of shop %s was interrupted while building; marked failed", lost.version,
                        lost.shop)
        serving = store.serving(name)
        if serving is None or store.catalog(name, serving.version) != engine.catalog:
            serving, _ = store.commit(name, lambda _old: engine.catalog, author="cohost", note="catalog at start-up",
                                      source=source)
            store.mark(name, serving.version, "ready")
        service._shops[name] = _Shop(engine, serving.version)
        return service

    # -- serving ----------------------------------------------------------------------------------------

    def engine(self, shop: str) -> AnswerEngine:
        """The engine answering for a shop now. KeyError when the shop is not loaded (see ``load``)."""
        return self._shops[shop].engine

    def serving_version(self, shop: str) -> int | None:
        s = self._shops.get(shop)
        return s.version if s else None

    def loaded(self) -> list[str]:
        return sorted(self._shops)

    async def load(self, shop: str) -> AnswerEngine:
        """The shop's engine, built from its newest ready version on first use. One build per shop at a
        time: callers arriving while it builds wait for that build (and a caller giving up does not
        cancel it for the others)."""
        if shop in self._shops:
            return self._shops[shop].engine
        loading = self._loading.get(shop)
        if loading is None:
            loading = self._loading[shop] = asyncio.ensure_future(self._load(shop))
            loading.add_done_callback(lambda _f, s=shop: self._loading.pop(s, None))
        return await asyncio.shield(loading)

    async def _load(self, shop: str) -> AnswerEngine:
        info = await asyncio.to_thread(self.store.serving, shop)
        if info is None:
            raise StoreError(f"shop {shop!r} has no catalog yet; upload one first")
        catalog = await asyncio.to_thread(self.store.catalog, shop, info.version)
        engine = await asyncio.to_thread(self.base.rebuilt, catalog)
        self.engine_builds += 1
        if shop not in self._shops:  # a new version may have started serving meanwhile
            self._shops[shop] = _Shop(engine, info.version)
        return self._shops[shop].engine

    def listen(self, listener: Listener) -> None:
        """Called on the event loop with (shop, engine) whenever a new version starts serving."""
        self._listeners.append(listener)

    # -- changing ---------------------------------------------------------------------------------------

    async def change(self, shop: str, change: Callable[[Catalog | None], Catalog], *,
                     base_version: int | None = None, author: str = "api", note: str = "", source: str = "",
                     wait: bool = True) -> VersionInfo:
        """Write a new version made by ``change`` and build it; with wait, return once it serves.

        Errors from ``change`` (CatalogError for an invalid result) and VersionConflict are raised
        before anything is written."""
        info, catalog = await asyncio.to_thread(self.store.commit, shop, change, base_version=base_version,
                                                author=author, note=note, source=source)
        return await self._start(shop, info, catalog, wait)

    async def rebuild(self, shop: str, version: int, *, wait: bool = True) -> VersionInfo:
        """Build a failed version's index again (VersionState when it is not failed). Once ready it
        serves only if it is the newest ready version; otherwise it stays in the history for a rollback."""
        info, catalog = await asyncio.to_thread(self.store.retry_build, shop, version)
        return await self._start(shop, info, catalog, wait)

    async def _start(self, shop: str, info: VersionInfo, catalog: Catalog, wait: bool) -> VersionInfo:
        build = self.builds[shop] = Build(shop, info.version, time.time())
        task = create_task(self._build(shop, info.version, catalog, build), name=f"build-{shop}-v{info.version}",
                           tasks=self._tasks)
        if wait:
            await asyncio.shield(task)
            return await asyncio.to_thread(self.store.version, shop, info.version)
        return info

    async def rollback(self, shop: str, to_version: int, *, base_version: int | None = None, author: str = "api",
                       wait: bool = True) -> VersionInfo:
        """A new version with the content of an earlier one: history is never rewritten."""
        old = await asyncio.to_thread(self.store.catalog, shop, to_version)
        return await self.change(shop, lambda _head: old, base_version=base_version, author=author,
                                 note=f"rollback to v{to_version}", source=f"v{to_version}", wait=wait)

    async def _build(self, shop: str, version: int, catalog: Catalog, build: Build, *, record: bool = True) -> None:
        """Build a version's engine and swap it in. ``record`` marks the version ready or failed in the
        store; a version another process already made ready is only loaded."""
        state = self._shops.get(shop)
        lock = state.lock if state else asyncio.Lock()
        async with lock:  # one build at a time per shop: they share the encoder anyway
            try:
                engine = await asyncio.to_thread(self.base.rebuilt, catalog, build.progress)
            except Exception as e:
                log.exception("building version %s of shop %s failed", version, shop)
                build.state, build.error, build.finished = "failed", f"{type(e).__name__}: {e}", time.time()
                if record:
                    await asyncio.to_thread(self.store.mark, shop, version, "failed", build.error)
                return
            if record:
                await asyncio.to_thread(self.store.mark, shop, version, "ready")
            build.state, build.finished = "ready", time.time()
            self._swap(shop, engine, version)

    def _swap(self, shop: str, engine: AnswerEngine, version: int) -> None:
        current = self._shops.get(shop)
        if current is not None and current.version >= version:
            return  # a newer version already serves (built here or by another process)
        if current is None:
            self._shops[shop] = _Shop(engine, version)
        else:
            current.engine, current.version = engine, version
        log.info("shop %s now serves version %s", shop, version)
        for listener in self._listeners:
            try:
                listener(shop, engine)
            except Exception:
                log.exception("catalog listener failed")

    async def watch(self, interval_s: float = 2.0) -> None:
        """Swap in versions another process made ready (e.g. `cohost knowledge import`)."""
        while True:
            await asyncio.sleep(interval_s)
            for shop in list(self._shops):
                try:
                    await asyncio.to_thread(self.store.recover, shop, BUILDER_DIED)
                    info = await asyncio.to_thread(self.store.serving, shop)
                    build = self.builds.get(shop)
                    if info is None or info.version <= self._shops[shop].version:
                        continue
                    if build is not None and (build.state == "building" or (
                            build.version == info.version and build.state == "failed")):
                        continue  # being built here, or it already failed here (not retried)
                    catalog = await asyncio.to_thread(self.store.catalog, shop, info.version)
                except StoreError:
                    continue
                except Exception:  # a store that cannot be read this time must not stop the watch
                    log.exception("could not read the newest version of shop %s", shop)
                    continue
                self.builds[shop] = Build(shop, info.version, time.time())
                await self._build(shop, info.version, catalog, self.builds[shop], record=False)
