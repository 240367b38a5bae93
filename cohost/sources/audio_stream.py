"""Audio into a room over the ingest websocket, in real time: `cohost send-audio`, the demo's voice lines,
`cohost run --mic` and the ASR benchmark use it.

The protocol: ``{"type": "audio_start", "speaker": "streamer", "format": "pcm16", "rate": 16000}``, binary
frames of 16 kHz mono little-endian PCM16 (100 ms each here; at most 64 KiB), ``{"type": "audio_end"}``.
The server refuses audio that runs ahead of real time, so frames are paced by the clock, as a microphone
would send them, and a quiet tail follows the speech: the server's VAD hears the end of an utterance from
silence, as it would live.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CohostError

RATE = 16_000
FRAME_S = 0.1
TAIL_SILENCE_S = 0.8
LEAD_SILENCE_S = 0.5  # a microphone is open before anyone speaks: the VAD hears the speech begin from quiet
MAX_FILE_S = 3600.0


def load_audio(path: Path, *, max_seconds: float = MAX_FILE_S) -> np.ndarray:
    """An audio file (wav, mp3, ogg, flac, m4a...) as 16 kHz mono float32; CohostError when it cannot be read."""
    from ..hearing.audio import AudioLimits, decode_clip

    if not path.is_file():
        raise CohostError(f"{path}: no such file")
    data = path.read_bytes()
    fmt = path.suffix.lstrip(".").lower() or "wav"
    return decode_clip(data, fmt, AudioLimits(max_seconds=max_seconds, max_bytes=max(len(data), 1024)))


def start_frame(speaker: str) -> str:
    return json.dumps({"type": "audio_start", "speaker": speaker, "format": "pcm16", "rate": RATE})


def pcm_frames(audio: np.ndarray, frame_s: float = FRAME_S) -> list[bytes]:
    from ..hearing.audio import float_to_pcm16

    step = int(frame_s * RATE)
    return [float_to_pcm16(audio[i:i + step]) for i in range(0, len(audio), step)]


async def paced(frames: list[bytes], frame_s: float = FRAME_S) -> AsyncIterator[bytes]:
    """Each frame when a microphone would have finished recording it (never ahead of the clock)."""
    start = time.monotonic()
    for i, frame in enumerate(frames):
        due = start + (i + 1) * frame_s
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield frame


async def send_audio(ws: Any, audio: np.ndarray, speaker: str = "streamer", *, tail_silence_s: float = TAIL_SILENCE_S,
                     lead_silence_s: float = LEAD_SILENCE_S, start: bool = True, end: bool = True) -> float:
    """Stream audio on an open ingest socket in real time; returns the wall time the speech ended
    (the last sample of ``audio``, before the quiet tail). ``start=False`` goes on with an open stream."""
    # A quiet lead-in and tail, as a live microphone has around every utterance.
    if start:
        await ws.send(start_frame(speaker))
    lead = np.zeros(int(lead_silence_s * RATE), dtype=np.float32)
    speech = pcm_frames(np.concatenate([lead, audio]))
    tail = pcm_frames(np.zeros(int(tail_silence_s * RATE), dtype=np.float32))
    ended = time.time()
    async for i, frame in _enumerate(paced(speech + tail)):
        await ws.send(frame)
        if i == len(speech) - 1:
            ended = time.time()
    if end:
        await ws.send(json.dumps({"type": "audio_end"}))
    return ended


async def _enumerate(it: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    i = 0
    async for x in it:
        yield i, x
        i += 1


__all__ = ["FRAME_S", "RATE", "load_audio", "paced", "pcm_frames", "send_audio", "start_frame"]
