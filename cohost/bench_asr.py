"""`cohost bench asr`: how fast and how well the room hears, on real Mandarin clips.

- **clips**: every clip in the directory (default ../shared/data/speech-zh, references from its SOURCE.txt
  or a ``NAME.txt`` beside each clip), each padded or cut to 5 s and transcribed ``repeats`` times:
  ``clip5s_p50_ms`` / ``clip5s_p95_ms``, the real-time factor (compute / audio), and the character error
  rate of the first pass against the reference (punctuation and spaces set aside, traditional
  characters folded to simplified): ``cer`` over all characters, and per clip.
- **stream**: the clips joined with silence, with the packaged voice lines (a product switch by voice,
  filler, an answer to a question on the overlay) between them, sent in real time over the ingest
  websocket of a live server, as a microphone would: ``end_of_speech_p50_ms`` / ``_p95_ms`` are the
  times from the end of an utterance to the room acting on its text (VAD silence, decoding, reading).
- **peak_rss_mb**: the process's peak resident memory with every model loaded (the answer engine's
  encoder, the intent classifier, Whisper, the VAD).
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np

from .engine import AnswerEngine
from .errors import CohostError

RATE = 16_000
_NOT_CHARS = re.compile(r"[\W_]+", re.UNICODE)
DEFAULT_CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-zh"
CLIP_S = 5.0
GAP_S = 1.5


def _normalise(text: str) -> str:
    import opencc

    return _NOT_CHARS.sub("", opencc.OpenCC("t2s").convert(text).lower())


def char_error_rate(hypothesis: str, reference: str) -> float:
    """Edit distance over reference characters, punctuation and spaces set aside, in simplified script."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = _normalise(reference), _normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(hyp, ref) / len(ref)


def references(folder: Path) -> list[tuple[Path, str]]:
    """(clip, reference text) for the clips in folder: NAME.txt beside a clip, or SOURCE.txt's
    "NAME ..." line followed by "reference: TEXT"."""
    refs: dict[str, str] = {}
    source = folder / "SOURCE.txt"
    if source.is_file():
        current = None
        for line in source.read_text(encoding="utf-8").splitlines():
            head = line.split()[0] if line.strip() else ""
            if head and (folder / head).is_file():
                current = head
            elif current and line.strip().startswith("reference:"):
                refs[current] = line.split(":", 1)[1].strip()
    out = []
    for clip in sorted(folder.iterdir()):
        if clip.suffix.lower() not in (".wav", ".flac", ".mp3", ".ogg", ".m4a"):
            continue
        side = clip.with_suffix(".txt")
        text = side.read_text(encoding="utf-8").strip() if side.is_file() else refs.get(clip.name)
        if text:
            out.append((clip, text))
    if not out:
        raise CohostError(f"{folder}: no audio clips with reference transcripts (NAME.txt or SOURCE.txt)")
    return out


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 1)


def _fit(audio: np.ndarray, seconds: float) -> np.ndarray:
    n = int(seconds * RATE)
    return audio[:n] if len(audio) >= n else np.concatenate([audio, np.zeros(n - len(audio), dtype=np.float32)])


async def bench_asr(engine: AnswerEngine, *, clips_dir: Path | None = None, repeats: int = 5,
                    stream_rounds: int = 2) -> dict[str, Any]:
    from .hearing.audio import AudioLimits, decode_clip
    from .live import live_server
    from .sources.audio_stream import load_audio, send_audio
    from .sources.replay import ingest_url

    folder = clips_dir or DEFAULT_CLIPS
    if not folder.is_dir():
        raise CohostError(f"{folder}: no such directory (pass --clips DIR with audio clips and their transcripts)")
    clips = [(p, text, load_audio(p)) for p, text in references(folder)]
    voice = {name: decode_clip(_voice_sample(name), "wav", AudioLimits()) for name in ("fryer", "filler", "guangdong")}
    async with live_server(engine, port=0) as (app, port):
        hearing = app.state.hub.hearing
        transcriber = hearing.transcriber
        load_started = time.perf_counter()
        await asyncio.to_thread(transcriber.load)
        load_s = time.perf_counter() - load_started
        pad = np.zeros(int(0.3 * RATE), dtype=np.float32)
        per_clip, times, audio_s, compute_s, edits, chars = [], [], 0.0, 0.0, 0.0, 0
        for path, text, audio in clips:
            first = await asyncio.to_thread(transcriber.transcribe, np.concatenate([pad, audio, pad]))
            rate = char_error_rate(first.text, text)
            edits += rate * len(_normalise(text))
            chars += len(_normalise(text))
            per_clip.append({"clip": path.name, "reference": text, "heard": first.text, "cer": round(rate, 3)})
            five = _fit(audio, CLIP_S)
            for _ in range(repeats):
                r = await asyncio.to_thread(transcriber.transcribe, five)
                times.append(r.compute_s * 1000)
                audio_s += r.seconds
                compute_s += r.compute_s
        stream = await _stream(app, ingest_url("127.0.0.1", port, "bench-asr"), [a for _, _, a in clips], voice,
                               stream_rounds, send_audio)
    return {
        "clips": len(clips),
        "model": transcriber.model_name,
        "load_s": round(load_s, 2),
        "rtf": round(compute_s / audio_s, 3) if audio_s else 0.0,
        "clip5s_p50_ms": _pct(times, 0.5),
        "clip5s_p95_ms": _pct(times, 0.95),
        "cer": round(edits / chars, 3) if chars else 0.0,
        **stream,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "per_clip": per_clip,
    }


def _voice_sample(name: str) -> bytes:
    import importlib.resources

    return (importlib.resources.files("cohost") / "samples" / "voice" / f"{name}.wav").read_bytes()


async def _stream(app: Any, url: str, clips: list[np.ndarray], voice: dict[str, np.ndarray], rounds: int,
                  send_audio: Any) -> dict[str, Any]:
    """Rounds of: dress on stage, a question asked, then the streamer: real clips, 广东两天就到 (an answer),
    filler, 下面这款空气炸锅 (a switch), each followed by silence, in real time."""
    import websockets

    silence = np.zeros(int(GAP_S * RATE), dtype=np.float32)
    script = [*clips, voice["guangdong"], voice["filler"], voice["fryer"]]
    async with websockets.connect(url, max_size=2**20) as ws:
        reader = asyncio.create_task(_drain(ws))
        for i in range(rounds):
            await ws.send(json.dumps({"type": "product", "product_id": "dress"}))
            for n in range(2):
                user = {"id": f"v{n}", "name": f"观众{n}"}
                await ws.send(json.dumps({"type": "chat", "id": f"r{i}q{n}", "user": user, "text": "发货到广东要几天",
                                          "ts": time.time()}, ensure_ascii=False))
            await asyncio.sleep(0.5)
            audio = np.concatenate([x for clip in script for x in (clip, silence)])
            await send_audio(ws, audio, "streamer", end=False)
        await ws.send(json.dumps({"type": "audio_end"}))
        await asyncio.sleep(3.0)  # the last utterance is heard
        reader.cancel()
    room = app.state.hub.rooms["bench-asr"].runner.room
    latencies = list(room.voice_latencies_ms)
    return {
        "utterances": len(latencies),
        "end_of_speech_p50_ms": _pct(latencies, 0.5),
        "end_of_speech_p95_ms": _pct(latencies, 0.95),
        "end_of_speech_max_ms": round(max(latencies), 1) if latencies else 0.0,
        "voice_product_switches": room.stats.get("voice_product_switch", 0),
        "voice_answered": room.stats.get("voice_answered", 0),
        "fillers": room.stats.get("speech_filler", 0),
        "heard": [f"{line.kind}: {line.text}" for line in room.transcript],
    }


async def _drain(ws: Any) -> None:
    import contextlib

    import websockets

    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            pass


__all__ = ["bench_asr", "char_error_rate", "references"]
