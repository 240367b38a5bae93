"""Asyncio helpers: the clock every timed component reads, task hygiene, and a low-priority thread pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

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


BACKGROUND_NICE = 10
_background: concurrent.futures.ThreadPoolExecutor | None = None
_background_lock = threading.Lock()


def _lower_priority() -> None:
    # Per thread on Linux; an unprivileged process may lower its threads' priority, never raise it back,
    # which is why background work has threads of its own.
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def background_executor(threads: int = 2) -> concurrent.futures.ThreadPoolExecutor:
    """A process-wide pool whose threads run at a lower CPU priority (nice +10).

    On a small machine the encoder, the event loop and triage compete for the same cores. Work that is
    unlikely to produce a reply runs here, so it takes what is left over and never slows a question.
    """
    global _background
    with _background_lock:
        if _background is None:
            _background = concurrent.futures.ThreadPoolExecutor(
                max(1, threads), thread_name_prefix="cohost-background", initializer=_lower_priority)
        return _background


async def to_background_thread(fn: Callable[..., T], *args: Any, threads: int = 2) -> T:
    """Like asyncio.to_thread, on the low-priority pool."""
    return await asyncio.get_running_loop().run_in_executor(background_executor(threads), fn, *args)


LIVE_SWITCH_INTERVAL_S = 0.001


@contextlib.contextmanager
def live_runtime() -> Any:
    """Interpreter settings for serving a live room, restored afterwards.

    - A thread that comes back from the encoder (C code, lock released) needs the interpreter lock for
      a moment to finish its decision; with the default 5 ms switch interval it can wait that long
      behind the event loop or triage, several times per decision. 1 ms cut the p95 reply time at
      200 msg/s by about a fifth (docs/benchmarks.md).
    - The models built at start-up are millions of long-lived objects: frozen, they are left out of
      the collector's full passes, which otherwise stall every thread for over 100 ms now and then.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(LIVE_SWITCH_INTERVAL_S)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        sys.setswitchinterval(before)
