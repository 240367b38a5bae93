"""The ASR worker: one thread that runs every transcription, off the event loop, streamer first.

- **One thread, one model.** Whisper on CTranslate2 already uses every core it is given for one clip;
  two clips at once would only slow both. The thread runs at a lower CPU priority (nice +10, set before
  the model is loaded so CTranslate2's own threads inherit it): when chat replies need the encoder they
  get the CPU first, and speech waits a few milliseconds instead.
- **The streamer is never queued behind viewers.** Jobs are taken by priority (streamer, guest, viewer
  clip), then in arrival order.
- **Bounded.** At most ``max_clips`` viewer clips wait (a flood is refused with AsrBusy, which the
  sender hears about); a job whose deadline passed while it waited is dropped (AsrStale), not decoded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CohostError
from .whisper import Transcriber, Transcript

log = logging.getLogger(__name__)
STREAMER, GUEST, VIEWER = 0, 1, 2
NICE = 10


class AsrBusy(CohostError):
    """Too many voice clips are waiting; this one is refused."""


class AsrStale(CohostError):
    """The job waited past its deadline and was dropped."""


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    audio: np.ndarray | None = field(compare=False)
    hotwords: str | None = field(compare=False)
    deadline: float | None = field(compare=False)
    future: concurrent.futures.Future[Any] = field(compare=False)


class AsrWorker:
    def __init__(self, transcriber: Transcriber, *, max_clips: int = 8, max_streamer: int = 32, nice: bool = True):
        self.transcriber = transcriber
        self.max_clips = max_clips
        self.max_streamer = max_streamer
        self.nice = nice
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._waiting = [0, 0, 0]
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats: dict[str, float] = {"transcribed": 0, "busy_refused": 0, "stale": 0, "failed": 0,
                                        "audio_s": 0.0, "compute_s": 0.0}

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cohost-asr", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_Job(-1, -1, None, None, None, concurrent.futures.Future()))
            thread.join(timeout=10)

    def waiting(self) -> dict[str, int]:
        return {"streamer": self._waiting[STREAMER], "guest": self._waiting[GUEST], "viewer": self._waiting[VIEWER]}

    async def preload(self) -> None:
        """Load the model on the worker thread (it takes about a second), so the first speech is not late."""
        await asyncio.wrap_future(self.warm())

    def warm(self) -> concurrent.futures.Future[Any]:
        """Start loading the model now, unless it is loaded; never waits."""
        if self.transcriber.loaded:
            done: concurrent.futures.Future[Any] = concurrent.futures.Future()
            done.set_result(None)
            return done
        return self._submit(None, STREAMER, None, None)

    async def transcribe(self, audio: np.ndarray, *, priority: int, hotwords: str | None = None,
                         deadline: float | None = None) -> Transcript:
        """Queue audio and wait for its text. ``deadline`` is time.monotonic() seconds."""
        future = self._submit(audio, priority, hotwords, deadline)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()  # not yet started: never decoded
            raise

    def _submit(self, audio: np.ndarray | None, priority: int, hotwords: str | None, deadline: float | None
                ) -> concurrent.futures.Future[Any]:
        self.start()
        with self._lock:
            cap = self.max_clips if priority == VIEWER else self.max_streamer
            if self._waiting[priority] >= cap:
                self.stats["busy_refused"] += 1
                raise AsrBusy(f"{self._waiting[priority]} clips are already waiting to be transcribed; "
                              "try again in a few seconds")
            self._waiting[priority] += 1
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Job(priority, next(self._seq), audio, hotwords, deadline, future))
        return future

    def _run(self) -> None:
        if self.nice:
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        while True:
            job = self._queue.get()
            if job.priority < 0:
                return
            with self._lock:
                self._waiting[job.priority] -= 1
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                if job.audio is None:
                    self.transcriber.load()
                    job.future.set_result(None)
                    continue
                if job.deadline is not None and time.monotonic() > job.deadline:
                    self.stats["stale"] += 1
                    job.future.set_exception(AsrStale("waited past its deadline"))
                    continue
                result = self.transcriber.transcribe(job.audio, hotwords=job.hotwords)
                self.stats["transcribed"] += 1
                self.stats["audio_s"] += result.seconds
                self.stats["compute_s"] += result.compute_s
                job.future.set_result(result)
            except Exception as e:
                self.stats["failed"] += 1
                log.exception("transcription failed")
                job.future.set_exception(e)


__all__ = ["GUEST", "STREAMER", "VIEWER", "AsrBusy", "AsrStale", "AsrWorker"]
