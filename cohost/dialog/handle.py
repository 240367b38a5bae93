"""One handle per reply or suggestion, so that it can be interrupted.

A handle is created when work is scheduled and ends in exactly one terminal state. Whoever runs the
work (a task streaming from the LLM, the chat sender) watches ``interrupted``; whoever decides it is
stale calls ``interrupt(reason)``. Awaiting a handle never raises: read ``state`` and ``reason``.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from collections.abc import Callable, Generator
from typing import Any

_ids = itertools.count(1)


class HandleState(enum.Enum):
    PENDING = "pending"          # scheduled, not started
    RUNNING = "running"          # generating, or handed to the sink and not yet reported sent
    DONE = "done"                # delivered: the sink reported the send
    INTERRUPTED = "interrupted"  # withdrawn: product changed, superseded, paused, shut down
    EXPIRED = "expired"          # its deadline passed before it could be delivered
    FAILED = "failed"            # the sink could not send it, and there is no time to try again

    @property
    def terminal(self) -> bool:
        return self in (HandleState.DONE, HandleState.INTERRUPTED, HandleState.EXPIRED, HandleState.FAILED)


class ReplyHandle:
    """An interruptible unit of output: a chat reply or a set of talking points."""

    def __init__(self, kind: str, *, priority: int, deadline: float, created: float, product_id: str | None = None):
        self.id = next(_ids)
        self.kind = kind
        self.priority = priority          # lower is more urgent
        self.deadline = deadline          # clock time after which delivering is wrong
        self.created = created
        self.product_id = product_id
        self.state = HandleState.PENDING
        self.reason = ""
        self.interrupted_at: float | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._on_interrupt: list[Callable[[ReplyHandle], None]] = []

    def __repr__(self) -> str:
        return f"<ReplyHandle {self.id} {self.kind} {self.state.value} p={self.priority}>"

    @property
    def interrupted(self) -> bool:
        return self.state is HandleState.INTERRUPTED

    def done(self) -> bool:
        return self.state.terminal

    def start(self) -> None:
        if self.state is HandleState.PENDING:
            self.state = HandleState.RUNNING

    def retry(self) -> None:
        """A send that failed in a way worth trying again goes back to the queue."""
        if self.state is HandleState.RUNNING:
            self.state = HandleState.PENDING

    def on_interrupt(self, callback: Callable[[ReplyHandle], None]) -> None:
        """Call back (synchronously, once) when interrupted; used to cancel the task doing the work."""
        if self.interrupted:
            callback(self)
        elif not self.done():
            self._on_interrupt.append(callback)

    def interrupt(self, reason: str, now: float | None = None) -> bool:
        """Withdraw this reply. Returns False when it had already ended (delivered or expired)."""
        if self.done():
            return False
        self.interrupted_at = now
        self._finish(HandleState.INTERRUPTED, reason)
        for cb in self._on_interrupt:
            cb(self)
        self._on_interrupt.clear()
        return True

    def expire(self) -> bool:
        if self.done():
            return False
        self._finish(HandleState.EXPIRED, "deadline passed")
        return True

    def fail(self, reason: str) -> bool:
        if self.done():
            return False
        self._finish(HandleState.FAILED, reason)
        return True

    def complete(self) -> bool:
        if self.done():
            return False
        self._finish(HandleState.DONE, "delivered")
        return True

    def _finish(self, state: HandleState, reason: str) -> None:
        self.state = state
        self.reason = reason
        self._on_interrupt = [] if state is not HandleState.INTERRUPTED else self._on_interrupt
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    def __await__(self) -> Generator[Any, None, ReplyHandle]:
        """Wait until the handle ends, however it ends. Cancelling the wait is safe."""
        if not self.done():
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            yield from fut.__await__()
        return self
