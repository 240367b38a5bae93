"""One writer task per websocket: frames go out in order from a bounded queue, and never silently stop.

A client that stops reading (an OBS source hidden and throttled, a relay stuck on its own I/O) must not
make a room wait, grow the server's memory, or keep a connection that no longer gets frames. So:

- ``send(frame)`` never waits: it queues the frame and returns a future that says whether it went out;
- an overlay writer keeps only the newest frame (each overlay frame is a whole state: older ones are moot);
- when the queue is full, or one send takes longer than ``send_timeout_s``, the socket is closed with
  1013 ("try again later") and the reason, and every queued frame is failed. The client reconnects and
  an overlay gets the current state on connect. If the close itself cannot be written (the peer reads
  nothing at all), the TCP connection is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable

from starlette.websockets import WebSocket

log = logging.getLogger(__name__)
CLOSE_TRY_AGAIN = 1013
CLOSE_GRACE_S = 1.0


def _abort_transport(ws: WebSocket) -> None:
    """Drop the TCP connection under a websocket whose close frame cannot be written.

    Starlette keeps no handle on the transport; uvicorn's ASGI ``send`` is a bound method of its protocol
    object, which has it. Anything else (another server) is left to its own keepalive."""
    protocol = getattr(getattr(ws, "_send", None), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()


class SocketWriter:
    def __init__(self, ws: WebSocket, *, name: str, max_queue: int = 64, send_timeout_s: float = 2.0,
                 latest_only: bool = False, on_closed: Callable[[SocketWriter], None] | None = None):
        self.ws = ws
        self.name = name
        self.max_queue = max_queue
        self.send_timeout_s = send_timeout_s
        self.latest_only = latest_only
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self.on_closed = on_closed
        self._queue: deque[tuple[str, asyncio.Future[bool]]] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending = False  # the frame at the head of the queue is being written
        self._closing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<SocketWriter {self.name} queued={len(self._queue)} closed={self.closed}>"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"writer-{self.name}")

    @property
    def queued(self) -> int:
        return len(self._queue)

    def send(self, frame: str) -> asyncio.Future[bool]:
        """Queue a text frame. The future is True once it was written to the connection, False if the
        socket closed first. Never raises, never waits."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_result(False)
            return fut
        if self.latest_only:
            while self._queue:
                _, old = self._queue.popleft()
                if not old.done():
                    old.set_result(False)  # superseded by a newer state
        elif len(self._queue) >= self.max_queue:
            fut.set_result(False)
            self.close(CLOSE_TRY_AGAIN, f"too slow: {self.max_queue} frames waiting")
            return fut
        self._queue.append((frame, fut))
        self._ready.set()
        return fut

    def withdraw(self, fut: asyncio.Future[bool]) -> bool:
        """Take a frame back if it has not started going out. True when it was taken back."""
        for i, (_, queued) in enumerate(self._queue):
            if queued is fut:
                if i == 0 and self._sending:
                    return False
                del self._queue[i]
                if not fut.done():
                    fut.set_result(False)
                return True
        return False

    def close(self, code: int, reason: str) -> None:
        """Close the socket with code and reason (once), failing what is queued. Returns at once."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(False)
        if self.on_closed is not None:
            self.on_closed(self)
        log.info("closing %s: %s (%d)", self.name, reason, code)
        self._closing = asyncio.create_task(self._close(code, reason), name=f"writer-{self.name}-close")

    async def stop(self) -> None:
        """The connection is over (the client left): end the writer task."""
        self.closed = True
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_result(False)
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._closing is not None:  # let our close frame (or the abort) finish
            await asyncio.wait({self._closing}, timeout=CLOSE_GRACE_S * 2)

    async def _run(self) -> None:
        while not self.closed:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            frame, fut = self._queue[0]
            self._sending = True
            try:
                await asyncio.wait_for(self.ws.send_text(frame), self.send_timeout_s)
            except TimeoutError:
                self._pop(fut, False)
                self.close(CLOSE_TRY_AGAIN, f"stalled: a frame took over {self.send_timeout_s:g} s to send")
                return
            except Exception:  # the client went away; the receive loop sees the disconnect
                self._pop(fut, False)
                self.closed = True
                return
            finally:
                self._sending = False
            self.sent += 1
            self._pop(fut, True)

    def _pop(self, fut: asyncio.Future[bool], ok: bool) -> None:
        if self._queue and self._queue[0][1] is fut:
            self._queue.popleft()
        if not fut.done():
            fut.set_result(ok)

    async def _close(self, code: int, reason: str) -> None:
        if self._task is not None and self._task is not asyncio.current_task() and not self._task.done():
            self._task.cancel()  # a send stuck on a full buffer would hold the close behind it
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        try:
            await asyncio.wait_for(self.ws.close(code=code, reason=reason[:120]), CLOSE_GRACE_S)
        except Exception:
            _abort_transport(self.ws)


__all__ = ["CLOSE_TRY_AGAIN", "SocketWriter"]
