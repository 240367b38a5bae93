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
    """A recording's events. A ``voice_line`` ({"type": "voice_line", "file": "fryer.wav", "speaker":
    "streamer"}) names an audio file beside the recording, or one of cohost's packaged voice lines."""
    events = []
    for n, event in read_objects(path, "recording"):
        if "type" not in event:
            raise CohostError(f"{path}: line {n}: expected an event object with a 'type'")
        if event["type"] == "voice_line":
            event = {**event, "file": str(_voice_file(path, n, event.get("file")))}
        events.append(event)
    return events


def _voice_file(recording: Path, n: int, name: Any) -> Path:
    import importlib.resources

    if not isinstance(name, str) or not name:
        raise CohostError(f"{recording}: line {n}: a voice_line needs a \"file\"")
    beside = recording.parent / name
    if beside.is_file():
        return beside
    packaged = Path(str(importlib.resources.files("cohost") / "samples" / "voice" / Path(name).name))
    if packaged.is_file():
        return packaged
    raise CohostError(f"{recording}: line {n}: no audio file {name!r} beside the recording or in cohost's samples")


@dataclass
class ReplayResult:
    sent: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    heard: list[dict[str, Any]] = field(default_factory=list)  # what the server heard of the voice lines


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
                    kind = msg.get("type")
                    if kind == "audio_end":
                        continue
                    {"reply": result.replies, "heard": result.heard}.get(kind, result.errors).append(msg)
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
            if event["type"] == "voice_line":
                # Audio cannot be sped up: the recording waits while the line is spoken and heard.
                started = time.monotonic()
                await _speak(ws, event, result)
                start_wall += time.monotonic() - started
                result.sent += 1
                continue
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


async def _speak(ws: Any, event: dict[str, Any], result: ReplayResult, hear_within_s: float = 4.0) -> None:
    from .audio_stream import load_audio, send_audio

    audio = await asyncio.to_thread(load_audio, Path(event["file"]), max_seconds=120.0)
    heard = len(result.heard)
    await send_audio(ws, audio, str(event.get("speaker") or "streamer"))
    until = time.monotonic() + hear_within_s
    while len(result.heard) == heard and time.monotonic() < until:  # noqa: ASYNC110 (the reader appends)
        await asyncio.sleep(0.05)


def ingest_url(host: str, port: int, room: str, token: str | None = None) -> str:
    url = f"ws://{host}:{port}/ws/ingest?room={quote(room)}"
    return url + (f"&token={quote(token)}" if token else "")
