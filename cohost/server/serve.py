"""Run the app on uvicorn inside the current event loop (so tests, the demo and the bench share it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from ..events import MAX_VOICE_FRAME_BYTES


@contextlib.asynccontextmanager
async def running_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[int]:
    """Serve app until the block exits; yields the bound port (port 0 picks a free one)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", ws="websockets-sansio",
                            # Frames over the event limit get a clear error; far larger ones (and
                            # decompression bombs) close the socket before they are buffered whole.
                            ws_max_size=2 * MAX_VOICE_FRAME_BYTES, lifespan="on")
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise a start-up failure (port in use...)
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
