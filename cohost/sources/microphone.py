"""`cohost run --mic`: a local microphone as the streamer's audio stream, behind the source interface.

sounddevice (PortAudio) is an optional extra (``pip install 'cohost[mic]'``): without it, or without an
input device, ``check()`` says so before the server starts. PortAudio calls back from its own thread
with 100 ms blocks of 16 kHz mono PCM16; they are handed to the loop and fed to the room's audio stream,
exactly as frames from a websocket would be.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..errors import CohostError
from .base import SourceHealth, Submit

log = logging.getLogger(__name__)
RATE = 16_000
BLOCK = 1_600     # 100 ms
MAX_WAITING = 50  # blocks queued for the loop (5 s): past that the oldest are the loop's problem, not memory's


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as e:
        raise CohostError("--mic needs the sounddevice package: pip install 'cohost[mic]'") from e
    except OSError as e:  # the module is there, PortAudio is not
        raise CohostError(f"--mic needs PortAudio (apt install libportaudio2): {e}") from e
    return sounddevice


def check(device: str | int | None = None) -> str:
    """The input device that will be used, by name; CohostError when there is none."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "input")
    except Exception as e:
        raise CohostError(f"no microphone {device!r}: {e}. List them with: python -m sounddevice") from e
    return str(info["name"])


class Microphone:
    name = "mic"

    def __init__(self, hearing: Any, room: str, device: str | int | None = None):
        self.hearing = hearing
        self.room = room
        self.device = device
        self.health = SourceHealth(self.name)

    async def run(self, submit: Submit) -> None:
        sd = _sounddevice()
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[bytes] = asyncio.Queue(MAX_WAITING)

        def put(data: bytes) -> None:
            if blocks.full():
                blocks.get_nowait()
            blocks.put_nowait(data)

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            loop.call_soon_threadsafe(put, bytes(indata))

        stream = self.hearing.open_stream(self.room, "streamer", submit,
                                          lambda error: log.warning("microphone: %s", error))
        try:
            with sd.RawInputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=BLOCK, device=self.device,
                                   callback=callback):
                self.health.set("live", "麦克风已连接")
                while True:
                    error = stream.feed(await blocks.get())
                    if error is not None:
                        self.health.errors += 1
                        log.warning("microphone: %s", error)
        except sd.PortAudioError as e:
            self.health.set("failed", "麦克风不可用", str(e))
            raise CohostError(f"the microphone failed: {e}") from e
        finally:
            await stream.close()


__all__ = ["Microphone", "check"]
