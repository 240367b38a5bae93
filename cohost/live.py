"""Wiring for the live server: engine + talking points + app + uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from .config import Config
from .dialog.talking import make_talking_points
from .engine import AnswerEngine
from .server.app import create_app
from .server.serve import running_server


@contextlib.asynccontextmanager
async def live_server(engine: AnswerEngine, *, host: str | None = None, port: int | None = None,
                      config: Config | None = None) -> AsyncIterator[tuple[FastAPI, int]]:
    """Start the server; yields (app, port). Everything stops when the block exits.

    ``config`` overrides the engine's for the live parts (dialog, server, LLM)."""
    cfg = config or engine.config
    generate, client = make_talking_points(cfg)
    app = create_app(engine, cfg, generate)
    try:
        async with running_server(app, host or cfg.server.host, cfg.server.port if port is None else port) as bound:
            yield app, bound
    finally:
        if client is not None:
            await client.aclose()


async def serve_forever(engine: AnswerEngine, *, host: str | None = None, port: int | None = None) -> int:
    async with live_server(engine, host=host, port=port) as (_app, bound):
        shown = host or engine.config.server.host
        print(f"cohost is live on {shown}:{bound}")
        print(f"  ingest:  ws://{shown}:{bound}/ws/ingest?room=ROOM")
        print(f"  overlay: http://{shown}:{bound}/overlay?room=ROOM   (add &transparent=1 in OBS)")
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
    return 0
