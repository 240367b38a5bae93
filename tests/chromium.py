"""Real headless Chromium (the Debian package) and the live server on a background loop, shared by the
browser tests. Importing this module skips the importing test module when Chromium or Playwright is
missing."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: browser tests need the system Chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (python)")

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def launched_browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@contextlib.contextmanager
def live_server_thread(engine: Any, **kwargs: Any) -> Iterator[tuple[Any, int]]:
    """The live server (app, port) on a loop in a background thread: Playwright's sync API owns the
    main thread."""
    from cohost.live import live_server

    ready: dict[str, Any] = {}
    stop = threading.Event()

    async def main() -> None:
        async with live_server(engine, port=0, **kwargs) as (app, port):
            ready["app"], ready["port"] = app, port
            while not stop.is_set():  # noqa: ASYNC110 (a thread's Event, not the loop's)
                await asyncio.sleep(0.05)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while "port" not in ready:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    try:
        yield ready["app"], ready["port"]
    finally:
        stop.set()
        thread.join(10)
