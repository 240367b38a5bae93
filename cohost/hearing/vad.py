"""Streaming voice activity detection: a continuous 16 kHz stream in, speech segments out.

Sans-I/O: ``Segmenter.feed(samples) -> list[SpeechStarted | SpeechEnded]``, times in seconds of audio
since the stream began. The speech probability of each 32 ms window comes from the Silero v6 ONNX model
that ships inside faster-whisper (no torch), run one window at a time with its recurrent state carried
over, so a stream is judged as it arrives rather than after the fact.

Speech starts after ``min_speech_ms`` of windows above ``threshold`` (a cough or a click does not take
the turn), and ends after ``min_silence_ms`` below ``neg_threshold``. A segment carries ``pad_ms`` of
audio either side (Whisper misses the first syllable of a clip cut tight), and one that runs past
``max_segment_s`` is cut and handed on while the speech goes on, so a streamer who never pauses is
still heard within seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

RATE = 16_000
WINDOW = 512           # samples per Silero window at 16 kHz (32 ms)
CONTEXT = 64           # samples of the previous window Silero v6 sees with each one


class SpeechProbability(Protocol):
    def __call__(self, window: np.ndarray) -> float: ...
    def reset(self) -> None: ...


class SileroStream:
    """Silero v6 (ONNX, from faster-whisper's assets) one window at a time."""

    def __init__(self) -> None:
        from faster_whisper.vad import get_vad_model

        self._session = get_vad_model().session
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, window: np.ndarray) -> float:
        x = np.concatenate([self._context, window]).reshape(1, CONTEXT + WINDOW).astype(np.float32, copy=False)
        out, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = window[-CONTEXT:].copy()
        return float(out.reshape(-1)[0])


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_speech_ms: int = 96
    min_silence_ms: int = 400
    pad_ms: int = 200
    max_segment_s: float = 12.0


@dataclass(frozen=True)
class SpeechStarted:
    at: float                    # stream seconds where the speech began


@dataclass(frozen=True)
class SpeechEnded:
    start: float
    end: float                   # stream seconds where the speech stopped (before the silence that ended it)
    audio: np.ndarray            # the segment with its padding, float32
    continues: bool = False      # cut at max_segment_s: the speaker is still talking


class Segmenter:
    def __init__(self, options: VadOptions | None = None, probability: SpeechProbability | None = None):
        self.options = options or VadOptions()
        self.probability = probability or SileroStream()
        o = self.options
        self._pad = int(o.pad_ms * RATE / 1000 / WINDOW) + 1
        self._min_speech = max(1, round(o.min_speech_ms * RATE / 1000 / WINDOW))
        self._min_silence = max(1, round(o.min_silence_ms * RATE / 1000 / WINDOW))
        self._max_windows = int(o.max_segment_s * RATE / WINDOW)
        self._rest = np.zeros(0, dtype=np.float32)
        self._windows = 0                                      # windows judged so far
        self._recent: deque[np.ndarray] = deque(maxlen=self._pad + self._min_speech)
        self._speech_run = 0
        self._silence_run = 0
        self._segment: list[np.ndarray] | None = None         # windows of the segment under way
        self._segment_start = 0.0
        self._last_speech = 0                                  # index of the last window above threshold
        self.speaking = False

    @property
    def position(self) -> float:
        """Seconds of audio judged so far."""
        return self._windows * WINDOW / RATE

    def feed(self, samples: np.ndarray) -> list[SpeechStarted | SpeechEnded]:
        data = np.concatenate([self._rest, samples.astype(np.float32, copy=False)]) if len(self._rest) else samples
        n = len(data) // WINDOW
        self._rest = data[n * WINDOW:].copy()
        events: list[SpeechStarted | SpeechEnded] = []
        for i in range(n):
            events += self._window(data[i * WINDOW:(i + 1) * WINDOW])
        return events

    def flush(self) -> list[SpeechStarted | SpeechEnded]:
        """The stream ended: a segment under way ends where its speech last was."""
        events: list[SpeechStarted | SpeechEnded] = []
        if self._segment is not None:
            events.append(self._end())
        self._rest = np.zeros(0, dtype=np.float32)
        self._speech_run = self._silence_run = 0
        self._recent.clear()
        self.probability.reset()
        return events

    def _window(self, window: np.ndarray) -> list[SpeechStarted | SpeechEnded]:
        o = self.options
        p = self.probability(window)
        index = self._windows
        self._windows += 1
        if self._segment is None:
            self._recent.append(window)
            self._speech_run = self._speech_run + 1 if p >= o.threshold else 0
            if self._speech_run < self._min_speech:
                return []
            # Speech: the segment begins pad windows before its first speech window.
            first = index - self._speech_run + 1
            self._segment = list(self._recent)
            start_window = index - len(self._segment) + 1
            self._segment_start = start_window * WINDOW / RATE
            self._last_speech = index
            self._silence_run = 0
            self.speaking = True
            return [SpeechStarted(first * WINDOW / RATE)]
        self._segment.append(window)
        if p >= o.threshold or (p >= o.neg_threshold and self._silence_run == 0):
            self._last_speech = index
            self._silence_run = 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._min_silence:
            return [self._end()]
        if len(self._segment) >= self._max_windows:
            return [self._cut()]
        return []

    def _end(self) -> SpeechEnded:
        assert self._segment is not None
        start_window = round(self._segment_start * RATE / WINDOW)
        keep = min(len(self._segment), self._last_speech - start_window + 1 + self._pad)
        audio = np.concatenate(self._segment[:keep])
        ended = SpeechEnded(self._segment_start, (self._last_speech + 1) * WINDOW / RATE, audio)
        self._segment = None
        self._speech_run = self._silence_run = 0
        self._recent.clear()
        self.speaking = False
        return ended

    def _cut(self) -> SpeechEnded:
        assert self._segment is not None
        audio = np.concatenate(self._segment)
        end = self._segment_start + len(audio) / RATE
        cut = SpeechEnded(self._segment_start, end, audio, continues=True)
        self._segment = []
        self._segment_start = end
        return cut


__all__ = ["RATE", "WINDOW", "Segmenter", "SileroStream", "SpeechEnded", "SpeechStarted", "VadOptions"]
