"""The cohost server: websocket ingest, the teleprompter overlay, health and stats.

    ws://HOST:PORT/ws/ingest?room=R[&token=T]   events in (one JSON object per text frame), replies out
    ws://HOST:PORT/ws/overlay?room=R[&token=T]  overlay state snapshots out
    http://HOST:PORT/overlay?room=R             the overlay page (an OBS browser source)
    http://HOST:PORT/rooms/R/stats              what happened to every message
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse

from ..config import Config
from ..engine import AnswerEngine
from ..events import MAX_FRAME_BYTES, EventError, parse_event
from .hub import Hub, TalkingPoints

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
ROOM_NAME_MAX = 64


def _token_ok(expected_env: str, given: str | None) -> bool:
    expected = os.environ.get(expected_env)
    return not expected or (given is not None and secrets.compare_digest(expected, given))


def _room_ok(room: str) -> bool:
    return 0 < len(room) <= ROOM_NAME_MAX and room.replace("-", "").replace("_", "").isalnum()


def create_app(engine: AnswerEngine, config: Config, talking_points: TalkingPoints) -> FastAPI:
    hub = Hub(engine, config, talking_points)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await hub.close()

    app = FastAPI(title="cohost", lifespan=lifespan)
    app.state.hub = hub

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"ok": True, "rooms": sorted(hub.rooms), "catalog": engine.catalog.shop.name}

    @app.get("/overlay", response_class=HTMLResponse)
    async def overlay() -> HTMLResponse:
        return HTMLResponse((STATIC / "overlay.html").read_text(encoding="utf-8"))

    @app.get("/rooms/{room}/stats")
    async def stats(room: str) -> JSONResponse:
        entry = hub.rooms.get(room)
        if entry is None:
            raise HTTPException(404, f"no room {room!r}")
        r = entry.runner.room
        lat = sorted(r.cancel_latencies_ms)
        return JSONResponse({"room": room, "stats": dict(r.stats), "pending": r.pending_count(),
                             "idle": entry.runner.idle, "cancel_latencies_ms": lat})

    async def refused(ws: WebSocket, token_env: str, token: str | None, room: str) -> bool:
        """Close a socket with a bad token or room name before accepting it; True when closed."""
        if not _token_ok(token_env, token):
            await ws.close(code=4401, reason="bad or missing token")
            return True
        if not _room_ok(room):
            await ws.close(code=4400, reason="room must be 1-64 letters, digits, - or _")
            return True
        return False

    @app.websocket("/ws/ingest")
    async def ingest(ws: WebSocket, room: str = Query("default"), token: str | None = Query(None)) -> None:
        if await refused(ws, config.server.ingest_token_env, token, room):
            return
        entry = await hub.room(room)
        if len(entry.ingest) >= config.server.max_connections_per_room:
            await ws.close(code=4429, reason="too many connections to this room")
            return
        await ws.accept()
        entry.ingest.add(ws)
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text")
                if frame is None:
                    frame = message.get("bytes") or b""
                try:
                    event = parse_event(frame)
                except EventError as e:
                    excerpt = frame[:200] if isinstance(frame, str) else f"<{len(frame)} bytes>"
                    await ws.send_text(json.dumps({"type": "error", "error": str(e), "frame": excerpt},
                                                  ensure_ascii=False))
                    continue
                if not entry.runner.submit(event):
                    await ws.send_text(json.dumps({"type": "error", "error": "room overloaded; event dropped",
                                                   "id": getattr(event, "id", None)}))
        except WebSocketDisconnect:
            pass
        finally:
            entry.ingest.discard(ws)

    @app.websocket("/ws/overlay")
    async def overlay_ws(ws: WebSocket, room: str = Query("default"), token: str | None = Query(None)) -> None:
        if await refused(ws, config.server.overlay_token_env, token, room):
            return
        entry = await hub.room(room)
        await ws.accept()
        runner = entry.runner
        await ws.send_text(json.dumps(runner.room.snapshot(runner.clock.now()), ensure_ascii=False))
        entry.overlays.add(ws)
        try:
            while True:  # the page sends nothing we need; reading notices the disconnect
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
        except WebSocketDisconnect:
            pass
        finally:
            entry.overlays.discard(ws)

    return app


__all__ = ["MAX_FRAME_BYTES", "create_app"]
