"""A minimal stand-in for the live server, for browser tests of the teleprompter overlay.

It serves ``GET /overlay`` (cohost/server/static/overlay.html) and the ``/ws/overlay?room=<room>`` websocket with
the same protocol as the real server: JSON text frames, each a full ``{"type": "state", ...}`` snapshot. The last
state pushed to a room is sent to a page as soon as it connects.

    with OverlayHarness() as h:
        page.goto(h.url(room="r1"))
        h.push("r1", {"type": "state", ...})
        h.drop_connections(reject_new=True)   # the page shows "连接中…" and retries
        h.accept_connections()                # the page reconnects and gets the last state
        h.drop_connections(reject_new=True, code=4401)   # refused like the live server refuses a bad token
        h.wait_for_frames("r1", 1)            # the control frames the page sent (approve, reject, review_hold, ...)

uvicorn runs on 127.0.0.1, port 0, in a background thread with its own event loop; the test thread talks to it
through ``asyncio.run_coroutine_threadsafe``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cohost.config import packaged

OVERLAY_HTML = packaged("server", "static", "overlay.html")  # the page the live server serves


class OverlayHarness:
    """Test server for the overlay page. Use as a context manager."""

    def __init__(self, html_path: Path = OVERLAY_HTML, host: str = "127.0.0.1") -> None:
        self.html_path = Path(html_path)
        self.host = host
        self.port: int | None = None
        # Touched only on the server loop.
        self._rooms: dict[str, set[WebSocket]] = {}
        self._last: dict[str, dict[str, Any]] = {}
        self._reject = False
        self._reject_code = 1013
        # Every websocket connection attempt: {"room", "token", "accepted"}, and its whole query string.
        # Appended on the server loop.
        self.connections: list[dict[str, Any]] = []
        self.queries: list[dict[str, str]] = []
        # Every text frame a page sent (the live server takes control events: approve/reject a held reply,
        # review_hold/review_auto, pause/resume): {"room", "frame" (the parsed JSON, or None), "text"}.
        self.received: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # ---------------------------------------------------------------- app

    def _app(self) -> Starlette:
        async def overlay(request: Request) -> HTMLResponse:
            return HTMLResponse(self.html_path.read_text(encoding="utf-8"), headers={"Cache-Control": "no-store"})

        async def ws_overlay(websocket: WebSocket) -> None:
            room = websocket.query_params.get("room") or "default"
            token = websocket.query_params.get("token")
            self.queries.append(dict(websocket.query_params))
            if self._reject:
                self.connections.append({"room": room, "token": token, "accepted": False})
                if self._reject_code != 1013:  # like the live server: accept, then close, so the page sees the code
                    await websocket.accept()
                await websocket.close(code=self._reject_code)
                return
            await websocket.accept()
            self.connections.append({"room": room, "token": token, "accepted": True})
            self._rooms.setdefault(room, set()).add(websocket)
            try:
                last = self._last.get(room)
                if last is not None:
                    await websocket.send_text(_dump(last))
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    if text is not None:
                        try:
                            frame = json.loads(text)
                        except ValueError:
                            frame = None
                        self.received.append({"room": room, "frame": frame, "text": text})
            except (WebSocketDisconnect, RuntimeError):
                pass
            finally:
                self._rooms.get(room, set()).discard(websocket)

        return Starlette(
            routes=[
                Route("/overlay", overlay),
                WebSocketRoute("/ws/overlay", ws_overlay),
            ]
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> OverlayHarness:
        config = uvicorn.Config(
            self._app(),
            host=self.host,
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="overlay-harness", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"overlay harness failed to start: {self._error!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("overlay harness did not start within 10 s")
            time.sleep(0.01)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            assert self._server is not None
            await self._server.serve()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()/stop()
            self._error = exc

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("overlay harness did not stop within 10 s")
        self._server = None
        self._thread = None

    def __enter__(self) -> OverlayHarness:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- test API

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, room: str | None = None, **params: str) -> str:
        """URL of the overlay page, e.g. url(room="r1", transparent="1", token="t")."""
        query = dict(params)
        if room is not None:
            query = {"room": room, **query}
        return f"{self.base_url}/overlay" + (f"?{urlencode(query)}" if query else "")

    def _call(self, coro: Any, timeout: float = 5.0) -> Any:
        if self._loop is None:
            coro.close()
            raise RuntimeError("overlay harness is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def push(self, room: str, state: Mapping[str, Any]) -> int:
        """Remember `state` as the room's last state and send it to every connected page. Returns pages reached."""
        return self._call(self._push(room, dict(state)))

    async def _push(self, room: str, state: dict[str, Any]) -> int:
        self._last[room] = state
        text = _dump(state)
        sent = 0
        for ws in list(self._rooms.get(room, ())):
            try:
                await ws.send_text(text)
                sent += 1
            except Exception:  # the page went away mid-send; it will get the last state on reconnect
                self._rooms.get(room, set()).discard(ws)
        return sent

    def send_raw(self, room: str, text: str) -> int:
        """Send a raw text frame (e.g. an unknown message type or invalid JSON) without remembering it."""
        return self._call(self._send_raw(room, text))

    async def _send_raw(self, room: str, text: str) -> int:
        sent = 0
        for ws in list(self._rooms.get(room, ())):
            try:
                await ws.send_text(text)
                sent += 1
            except Exception:
                self._rooms.get(room, set()).discard(ws)
        return sent

    def drop_connections(self, reject_new: bool = False, code: int = 1013) -> int:
        """Close every page's socket. With reject_new, refuse new ones until accept_connections(), closing them
        with `code` (1013 "try again later"; the live server's refusals use 4400-4503 with a reason)."""
        return self._call(self._drop(reject_new, code))

    async def _drop(self, reject_new: bool, code: int = 1013) -> int:
        self._reject = reject_new
        self._reject_code = code
        dropped = 0
        for room, sockets in list(self._rooms.items()):
            for ws in list(sockets):
                sockets.discard(ws)
                try:
                    await ws.close(code=1012)
                    dropped += 1
                except Exception:
                    pass
            self._rooms.pop(room, None)
        return dropped

    def accept_connections(self) -> None:
        """Accept new sockets again after drop_connections(reject_new=True)."""
        self._call(self._set_reject(False))

    async def _set_reject(self, value: bool) -> None:
        self._reject = value
        self._reject_code = 1013

    def connection_count(self, room: str | None = None) -> int:
        """Open page sockets, in one room or in all."""
        return self._call(self._count(room))

    async def _count(self, room: str | None) -> int:
        if room is not None:
            return len(self._rooms.get(room, ()))
        return sum(len(s) for s in self._rooms.values())

    def wait_for_connections(self, room: str, n: int = 1, timeout: float = 10.0) -> None:
        """Block until at least `n` pages are connected to `room`."""
        deadline = time.monotonic() + timeout
        while self.connection_count(room) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} connection(s) to room {room!r} not seen within {timeout} s")
            time.sleep(0.02)

    def frames(self, room: str) -> list[Any]:
        """The parsed frames pages sent to `room`, oldest first."""
        return [r["frame"] for r in list(self.received) if r["room"] == room]

    def wait_for_frames(self, room: str, n: int = 1, timeout: float = 5.0) -> list[Any]:
        """Block until pages sent at least `n` frames to `room`; returns them all."""
        deadline = time.monotonic() + timeout
        while len(got := self.frames(room)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} frame(s) from pages in room {room!r} not seen within {timeout} s: {got}")
            time.sleep(0.02)
        return got


def _dump(state: Mapping[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False)
