"""Wiring for the live server: engine + talking points + app + uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from .aio import cancel_and_wait, create_task, live_runtime
from .config import Config
from .dialog.talking import make_talking_points
from .engine import AnswerEngine
from .knowledge.service import CatalogService
from .knowledge.store import CatalogStore
from .server.app import admin_token as make_admin_token
from .server.app import announced, create_app
from .server.serve import running_server

if TYPE_CHECKING:
    from .sources.platforms import Connection


@contextlib.asynccontextmanager
async def live_server(engine: AnswerEngine, *, host: str | None = None, port: int | None = None,
                      config: Config | None = None, store: CatalogStore | None = None,
                      admin_token: str | None = None, source: str = "start-up"
                      ) -> AsyncIterator[tuple[FastAPI, int]]:
    """Start the server; yields (app, port). Everything stops when the block exits.

    ``engine`` serves the store's default shop (its catalog is recorded as a version when the store
    does not serve exactly it). Without ``store`` a throwaway store in a temporary directory is used.
    ``config`` overrides the engine's for the live parts (dialog, server, LLM)."""
    cfg = config or engine.config
    with contextlib.ExitStack() as stack:
        if store is None:
            store = CatalogStore(Path(stack.enter_context(tempfile.TemporaryDirectory())) / "catalog.sqlite3")
        catalogs = await asyncio.to_thread(CatalogService.around, store, engine, source=source)
        generate, client = make_talking_points(cfg)
        token = admin_token or make_admin_token(cfg)[0]
        app = create_app(catalogs, cfg, generate, admin_token=token)
        stack.enter_context(live_runtime())
        try:
            async with running_server(app, host or cfg.server.host,
                                      cfg.server.port if port is None else port) as bound:
                yield app, bound
        finally:
            if client is not None:
                await client.aclose()


async def until_interrupted() -> None:
    """Wait for Ctrl-C: asyncio.run cancels the main task on SIGINT, and that ends the wait (not an error)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the interrupt is handled: what follows (shutting down) may await again


async def serve_forever(engine: AnswerEngine, *, host: str | None = None, port: int | None = None,
                        source: str = "start-up", platform: Connection | None = None, room: str = "live",
                        mic: str | int | None = None) -> int:
    """Serve until Ctrl-C; with ``platform``, its room's events feed cohost room ``room`` and its sink
    posts the replies; with ``mic`` (a device, "" for the default), the microphone is its streamer.
    When the platform's stream ends the server stays up (the overlay says so)."""
    cfg = engine.config
    token, generated = make_admin_token(cfg, persist=True)  # kept in the store's directory across restarts
    store = CatalogStore(cfg.resolve(cfg.store.path))
    async with live_server(engine, host=host, port=port, store=store, admin_token=token, source=source) as (app, bound):
        shown = host or cfg.server.host
        with announced(cfg, shown, bound):  # for `cohost admin-token`: run --port may differ from the config
            catalogs = app.state.catalogs
            print(f"cohost is live on {shown}:{bound} (shop {catalogs.default_shop!r}, catalog version "
                  f"{catalogs.serving_version(catalogs.default_shop)}, store {store.path})")
            print(f"  ingest:  ws://{shown}:{bound}/ws/ingest?room=ROOM")
            print(f"  overlay: http://{shown}:{bound}/overlay?room=ROOM   (add &layout=obs in OBS)")
            print(f"  admin:   http://{shown}:{bound}/admin#token={token}" if generated else
                  f"  admin:   http://{shown}:{bound}/admin   (token from ${cfg.server.admin_token_env})")
            print(f"  API:     http://{shown}:{bound}/docs", flush=True)
            tasks: set[asyncio.Task[None]] = set()
            if platform is not None:
                print(f"  {platform.source.name} → room {room!r}: http://{shown}:{bound}/overlay?room={room}")
                start = getattr(platform.sink, "start", None)  # a sink that serves (the console relay) listens now
                if start is not None:
                    await start()
                for note in platform.notes:
                    print(f"  note: {note}")
                create_task(app.state.hub.run_source(room, None, platform.source, platform.sink),
                            name=f"platform-{platform.source.name}", tasks=tasks)
            if mic is not None:  # "" is the default input device
                from .sources.microphone import Microphone

                print(f"  microphone → room {room!r}: http://{shown}:{bound}/overlay?room={room}", flush=True)
                create_task(app.state.hub.run_source(room, None, Microphone(app.state.hub.hearing, room, mic or None),
                                                     None), name="microphone", tasks=tasks)
            await until_interrupted()
            await cancel_and_wait(*tasks)
            stop = getattr(platform.sink if platform else None, "stop", None)
            if stop is not None:
                await stop()
    return 0
