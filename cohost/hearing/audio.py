"""Audio in: viewers' voice clips decoded to 16 kHz mono, with the limits that keep a hostile clip cheap.

A clip is refused, with a message for the sender, when its format is not one we take, when it is not
audio at all (or is cut off), when it is longer than ``max_seconds`` or larger than ``max_bytes``.
Decoding uses PyAV (FFmpeg, installed with faster-whisper) and stops as soon as the decoded audio
passes the length limit, so a small file that claims hours of audio costs no more than the limit.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from ..errors import CohostError

RATE = 16_000
FORMATS = ("wav", "mp3", "ogg", "flac", "m4a", "webm", "opus")
# FFmpeg's demuxer names; m4a is the mp4 family, opus clips come in an ogg container.
_CONTAINERS = {"wav": "wav", "mp3": "mp3", "ogg": "ogg", "flac": "flac", "m4a": "mp4", "webm": "webm", "opus": "ogg"}


class AudioError(CohostError):
    """An audio input is refused; the message says why, for the sender."""


@dataclass(frozen=True)
class AudioLimits:
    max_seconds: float = 30.0
    max_bytes: int = 2 * 1024 * 1024


def pcm16_to_float(data: bytes) -> np.ndarray:
    """Little-endian 16-bit PCM to float32 in [-1, 1]. An odd byte count is a framing error."""
    if len(data) % 2:
        raise AudioError(f"a PCM16 frame has an even number of bytes, not {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def encode_wav(audio: np.ndarray, rate: int = RATE) -> bytes:
    """float32 mono audio as a 16-bit PCM WAV file."""
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(float_to_pcm16(audio))
    return buf.getvalue()


def decode_clip(data: bytes, fmt: str, limits: AudioLimits = AudioLimits()) -> np.ndarray:
    """A whole clip as 16 kHz mono float32. Raises AudioError for every bad input, never anything else."""
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in _CONTAINERS:
        raise AudioError(f"unknown audio format {fmt[:20]!r}; send one of {', '.join(FORMATS)}")
    if not data:
        raise AudioError("the clip is empty")
    if len(data) > limits.max_bytes:
        raise AudioError(f"the clip is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    try:
        import av
    except ImportError as e:  # pragma: no cover - av comes with faster-whisper
        raise AudioError("audio decoding needs PyAV: pip install av") from e
    max_samples = int(limits.max_seconds * RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format=_CONTAINERS[fmt]) as container:
            if not container.streams.audio:
                raise AudioError(f"the {fmt} file holds no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if total > max_samples:
                    raise AudioError(f"the clip is longer than {limits.max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
                total += len(chunks[-1])
    except AudioError:
        raise
    except Exception as e:  # av.error.*: not this format, truncated, corrupt
        raise AudioError(f"cannot decode the clip: not {fmt} audio, or corrupt or cut off ({_reason(e)})") from None
    if total > max_samples:
        raise AudioError(f"the clip is longer than {limits.max_seconds:g} s")
    if total == 0:
        raise AudioError(f"cannot decode the clip: no {fmt} audio in it")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _reason(e: Exception) -> str:
    return (getattr(e, "strerror", None) or type(e).__name__)[:80]


__all__ = ["FORMATS", "RATE", "AudioError", "AudioLimits", "decode_clip", "encode_wav", "float_to_pcm16",
           "pcm16_to_float"]
