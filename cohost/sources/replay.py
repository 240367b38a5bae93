"""`cohost replay`: play a recorded session into a room over the ingest websocket.

The recording's timing is kept (scaled by --speed); each event is stamped with the time it is sent, so
deadlines apply as if the room were live. Replies and errors from the server are collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import websockets

from ..errors import CohostError
from ..jsonl import read_objects


def load_recording(path: Path) -> list[dict[str, Any]]:
    events = []
    for n, event in read_objects(path, "recording"):
        if "type" not in event:
            raise CohostError(f"{path}: line {n}: expected an event object with a 'type'")
        events.append(event)
    return events


@dataclass
class ReplayResult:
    sent: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


async def replay(url: str, events: list[dict[str, Any]], *, speed: float = 1.0,
                 on_message: Callable[[dict[str, Any]], None] | None = None, linger_s: float = 2.0,
                 settled: Callable[[], bool] | None = None) -> ReplayResult:
    """Send events with their recorded spacing divided by speed; collect what the server answers.

    After the last event the socket stays open for linger_s, or (with ``settled``) until settled() is
    true, at most linger_s: replies still being decided or sent reach it instead of finding no relay."""
    if speed <= 0:
        raise CohostError("--speed must be positive")
    result = ReplayResult()
    async with websockets.connect(url, max_size=2**20) as ws:

        async def reader() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    msg = json.loads(raw)
                    (result.replies if msg.get("type") == "reply" else result.errors).append(msg)
                    if on_message is not None:
                        on_message(msg)

        read_task = asyncio.create_task(reader())
        start_wall = time.monotonic()
        first_ts = next((e["ts"] for e in events if isinstance(e.get("ts"), int | float)), None)
        for event in events:
            ts = event.get("ts")
            if first_ts is not None and isinstance(ts, int | float):
                due = start_wall + (ts - first_ts) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await ws.send(json.dumps({**event, "ts": time.time()}, ensure_ascii=False))
            result.sent += 1
        until = time.monotonic() + linger_s
        await asyncio.sleep(min(0.3, linger_s))  # the last frames reach the server
        # polled: the server's room is in this process but signals nothing when it settles
        while time.monotonic() < until and not (settled is not None and settled()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await ws.close()
        await read_task
    return result


def ingest_url(host: str, port: int, room: str, token: str | None = None) -> str:
    url = f"ws://{host}:{port}/ws/ingest?room={quote(room)}"
    return url + (f"&token={quote(token)}" if token else "")
