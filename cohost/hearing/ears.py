"""Hearing for a server: audio in, events out, into the room like any other source's.

    hearing = Hearing(config.asr, cache_dir, base_dir)
    stream = hearing.open_stream(room, "streamer", submit)     # after {"type": "audio_start"}
    stream.feed(pcm16_bytes)                                   # each binary frame; returns an error or None
    await stream.finish()                                      # {"type": "audio_end"}
    chat = await hearing.voice_message(room, voice_event)      # a viewer's clip → ChatEvent(voice=True)

A stream becomes SpeechEvent start/end as the VAD hears them (so suggestions wait at once, before any
text), then a TranscriptEvent per utterance with ``end`` = the wall time its last word arrived, which
the room reads (filler, product switch, answers). The VAD runs in a worker thread a few frames at a
time; transcription runs on the ASR worker (worker.py), streamer first. Nothing here blocks the loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..aio import cancel_and_wait, create_task
from ..config import AsrConfig
from ..errors import CohostError
from ..events import ChatEvent, Event, SpeechEvent, TranscriptEvent, VoiceEvent
from .audio import RATE, AudioError, AudioLimits, decode_clip, pcm16_to_float
from .vad import Segmenter, SpeechEnded, SpeechStarted, VadOptions
from .whisper import Transcriber
from .worker import GUEST, STREAMER, VIEWER, AsrBusy, AsrStale, AsrWorker

log = logging.getLogger(__name__)
MAX_FRAME_BYTES = 64 * 1024      # one binary frame: 2 s of 16 kHz PCM16
MAX_BACKLOG_S = 10.0             # audio waiting for the VAD; past this the stream is behind and frames are dropped
PAD_S = 0.3                      # silence around a voice clip: Whisper drops a first word cut tight
MIN_CLIP_S = 0.2
Submit = Callable[[Event], bool]


class RoomRate:
    """Voice messages a room takes per minute (a sliding window)."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] > 60.0:
            self._times.popleft()
        if len(self._times) >= self.per_minute:
            return False
        self._times.append(now)
        return True


class Hearing:
    def __init__(self, config: AsrConfig, cache_dir: Path, base_dir: Path | None = None, *,
                 transcriber: Transcriber | None = None):
        self.config = config
        self.transcriber = transcriber or Transcriber(config.model, cache_dir=cache_dir, base_dir=base_dir,
                                                      threads=config.threads, compute_type=config.compute_type,
                                                      beam_size=config.beam_size)
        self.worker = AsrWorker(self.transcriber, max_clips=config.max_queued_clips)
        self.limits = AudioLimits(config.max_clip_s, config.max_clip_bytes)
        self._rates: dict[str, RoomRate] = {}
        self._context: dict[str, Callable[[], str]] = {}
        self.stats: dict[str, int] = {"voice_messages": 0, "voice_refused": 0, "streams": 0}

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    async def start(self) -> None:
        if self.enabled and self.config.preload:
            await self.worker.preload()

    def close(self) -> None:
        self.worker.stop()

    def listen_for(self, room: str, words: Callable[[], str]) -> None:
        """What Whisper should expect in this room, asked for at each utterance (the room knows: the product
        on stage, the questions on the overlay). Off with asr.hotwords: false."""
        self._context[room] = words

    def forget(self, room: str) -> None:
        self._context.pop(room, None)
        self._rates.pop(room, None)

    def hotwords(self, room: str) -> str | None:
        words = self._context.get(room)
        if words is None or not self.config.hotwords:
            return None
        try:
            return words() or None
        except Exception:  # a room closing meanwhile: hear without context rather than not at all
            log.exception("hotwords for room %s", room)
            return None

    # -- viewers' voice messages ---------------------------------------------------------------------------

    def clip_bytes(self, event: VoiceEvent) -> bytes:
        try:
            data = base64.b64decode(event.data, validate=True)
        except (binascii.Error, ValueError):
            raise AudioError("data is not valid base64") from None
        return data

    async def voice_message(self, room: str, event: VoiceEvent, data: bytes | None = None, *,
                            deadline_s: float = 6.0) -> ChatEvent:
        """The viewer's clip as a chat message. AudioError (bad clip), AsrBusy (a flood) or AsrStale."""
        if not self.enabled:
            raise AudioError("voice messages are off on this server (asr.enabled: false)")
        arrived = time.time()
        rate = self._rates.setdefault(room, RoomRate(self.config.clips_per_minute))
        if not rate.allow(time.monotonic()):
            self.stats["voice_refused"] += 1
            raise AsrBusy(f"this room takes at most {self.config.clips_per_minute} voice messages a minute")
        raw = data if data is not None else self.clip_bytes(event)
        try:
            audio = await asyncio.to_thread(decode_clip, raw, event.format, self.limits)
        except AudioError:
            self.stats["voice_refused"] += 1
            raise
        if len(audio) < MIN_CLIP_S * RATE:
            raise AudioError(f"the clip is shorter than {MIN_CLIP_S:g} s")
        pad = np.zeros(int(PAD_S * RATE), dtype=np.float32)
        # A clip that would be answered after its deadline is not worth decoding.
        started = event.ts if event.ts is not None else arrived
        deadline = time.monotonic() + max(0.5, started + deadline_s - time.time())
        result = await self.worker.transcribe(np.concatenate([pad, audio, pad]), priority=VIEWER,
                                              hotwords=self.hotwords(room), deadline=deadline)
        self.stats["voice_messages"] += 1
        text = result.text.strip()
        if not text:
            raise AudioError("no speech heard in the clip")
        return ChatEvent(type="chat", id=event.id, user=event.user, text=text[:500], voice=True,
                         ts=event.ts if event.ts is not None else arrived, voice_seconds=round(result.seconds, 2))

    # -- continuous streams --------------------------------------------------------------------------------

    def open_stream(self, room: str, speaker: str, submit: Submit,
                    on_error: Callable[[str], None] | None = None) -> AudioStream:
        if not self.enabled:
            raise AudioError("audio is off on this server (asr.enabled: false)")
        self.stats["streams"] += 1
        # The model loads while the first words are spoken (the VAD needs no model): about a second
        # ahead of the first utterance's end, instead of after it.
        self.worker.warm()
        stream = AudioStream(self, room, speaker, submit, on_error)
        stream.start()
        return stream


class AudioStream:
    """One speaker's continuous audio on one socket."""

    def __init__(self, hearing: Hearing, room: str, speaker: str, submit: Submit,
                 on_error: Callable[[str], None] | None = None):
        self.hearing = hearing
        self.on_error = on_error
        self.room = room
        self.speaker = speaker
        self.submit = submit
        c = hearing.config
        self.segmenter = Segmenter(VadOptions(threshold=c.vad_threshold,
                                              neg_threshold=max(0.05, c.vad_threshold - 0.15),
                                              min_silence_ms=c.min_silence_ms, max_segment_s=c.max_segment_s))
        self.priority = STREAMER if speaker == "streamer" else GUEST
        self._frames: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._segments: asyncio.Queue[SpeechEnded | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=2048)   # (sample offset after a frame, wall time)
        self._received = 0          # samples received
        self._backlog = 0           # samples waiting for the VAD
        self._started_wall: float | None = None
        self._stream_t0 = 0.0       # wall time of sample 0, once known
        self.stats = {"frames": 0, "dropped_frames": 0, "segments": 0, "transcripts": 0, "stale": 0}

    def start(self) -> None:
        create_task(self._listen(), name=f"audio-{self.room}-vad", tasks=self._tasks)
        create_task(self._transcribe(), name=f"audio-{self.room}-asr", tasks=self._tasks)

    def feed(self, data: bytes) -> str | None:
        """One binary frame of PCM16. Returns an error for the sender, or None. Never waits."""
        if len(data) > MAX_FRAME_BYTES:
            return f"audio frame of {len(data)} bytes is over the {MAX_FRAME_BYTES}-byte limit; send ≤ 2 s a frame"
        try:
            samples = pcm16_to_float(data)
        except AudioError as e:
            return str(e)
        now = time.time()
        if self._started_wall is None:
            self._started_wall = now
            self._stream_t0 = now
        ahead = (self._received + len(samples)) / RATE - (now - self._started_wall)
        if ahead > self.hearing.config.max_ahead_s:
            self.stats["dropped_frames"] += 1
            return (f"audio arrives faster than real time ({ahead:.1f} s ahead); "
                    "stream it at 16 kHz as it is recorded")
        if self._backlog > MAX_BACKLOG_S * RATE:
            self.stats["dropped_frames"] += 1
            return "the server is behind on this audio stream; a frame was dropped"
        self._received += len(samples)
        self._backlog += len(samples)
        self._arrivals.append((self._received, now))
        self.stats["frames"] += 1
        self._frames.put_nowait(samples)
        return None

    async def finish(self) -> None:
        """audio_end: what was said last is still heard, then the stream closes."""
        self._frames.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """The socket went away: stop at once."""
        await cancel_and_wait(*self._tasks)
        if self.segmenter.speaking:
            self.submit(SpeechEvent(type="speech", state="end"))

    def _wall(self, seconds: float) -> float:
        """Wall time at which stream second ``seconds`` arrived."""
        sample = int(seconds * RATE)
        for offset, at in self._arrivals:
            if offset >= sample:
                return at
        return time.time()

    async def _listen(self) -> None:
        try:
            while True:
                samples = await self._frames.get()
                batch = [samples] if samples is not None else []
                ended = samples is None
                while not ended and not self._frames.empty():  # catch up in one thread hop
                    more = self._frames.get_nowait()
                    if more is None:
                        ended = True
                    else:
                        batch.append(more)
                audio = np.concatenate(batch) if batch else np.zeros(0, dtype=np.float32)
                events = await asyncio.to_thread(self._vad, audio, ended)
                self._backlog -= len(audio)
                for e in events:
                    if isinstance(e, SpeechStarted):
                        self.submit(SpeechEvent(type="speech", state="start"))
                    else:
                        self.stats["segments"] += 1
                        self._segments.put_nowait(e)
                        if not e.continues:
                            self.submit(SpeechEvent(type="speech", state="end"))
                if ended:
                    return
        finally:
            self._segments.put_nowait(None)

    def _vad(self, audio: np.ndarray, ended: bool) -> list[SpeechStarted | SpeechEnded]:
        events = self.segmenter.feed(audio) if len(audio) else []
        return events + (self.segmenter.flush() if ended else [])

    async def _transcribe(self) -> None:
        while True:
            segment = await self._segments.get()
            if segment is None:
                return
            start, end = self._wall(segment.start), self._wall(segment.end)
            try:
                result = await self.hearing.worker.transcribe(
                    segment.audio, priority=self.priority, hotwords=self.hearing.hotwords(self.room),
                    deadline=time.monotonic() + 30.0)
            except (AsrBusy, AsrStale):
                self.stats["stale"] += 1
                continue
            except CohostError as e:  # the model cannot load: the sender is told once per utterance
                self.stats["failed"] = self.stats.get("failed", 0) + 1
                if self.on_error is not None:
                    self.on_error(str(e))
                continue
            except Exception:
                log.exception("transcribing %s's audio in room %s failed", self.speaker, self.room)
                continue
            self.stats["transcripts"] += 1
            self.submit(TranscriptEvent(type="transcript", speaker=self.speaker, text=result.text[:500],
                                        start=start, end=end, compute_ms=round(result.compute_s * 1000, 1)))


__all__ = ["AudioStream", "Hearing", "RoomRate"]
