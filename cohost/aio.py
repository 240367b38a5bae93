"""Asyncio helpers: the clock every timed component reads, and task hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Wall-clock seconds (unix time, so platform timestamps compare with it) and a way to wait."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def create_task(coro: Coroutine[Any, Any, Any], *, name: str, tasks: set[asyncio.Task[Any]]) -> asyncio.Task[Any]:
    """Start a named task, keep a reference until it ends, and log an unexpected failure."""
    task = asyncio.create_task(coro, name=name)
    tasks.add(task)

    def _done(t: asyncio.Task[Any]) -> None:
        tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("task %s failed", t.get_name(), exc_info=t.exception())

    task.add_done_callback(_done)
    return task


async def cancel_and_wait(*tasks: asyncio.Task[Any], grace_s: float = 3.0) -> None:
    """Cancel tasks and wait (at most grace_s: some libraries swallow CancelledError) for them to end.

    If the caller itself is being cancelled meanwhile, that cancellation propagates."""
    for t in tasks:
        t.cancel()
    if not tasks:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait(tasks, timeout=grace_s)
    current = asyncio.current_task()
    if current is not None and current.cancelling():
        raise asyncio.CancelledError
