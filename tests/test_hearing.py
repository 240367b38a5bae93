"""Hearing: audio decoding and its limits, the streaming VAD, the ASR worker's order and bounds, and the
real Whisper base model on real Mandarin clips (slow)."""

from __future__ import annotations

import asyncio
import base64
import importlib.resources
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cohost.config import AsrConfig
from cohost.events import EventError, VoiceEvent, parse_event
from cohost.hearing.audio import AudioError, AudioLimits, decode_clip, encode_wav, pcm16_to_float
from cohost.hearing.ears import Hearing
from cohost.hearing.vad import Segmenter, SpeechEnded, SpeechStarted, VadOptions
from cohost.hearing.whisper import Transcript
from cohost.hearing.worker import STREAMER, VIEWER, AsrBusy, AsrStale, AsrWorker

SPEECH = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "speech-zh"
RATE = 16_000


def sample(name: str) -> bytes:
    return (importlib.resources.files("cohost") / "samples" / "voice" / f"{name}.wav").read_bytes()


def encoded(audio: np.ndarray, container: str, codec: str) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray((audio * 32767).astype("<i2").reshape(1, -1), format="s16",
                                           layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


# -- decoding and limits ---------------------------------------------------------------------------------


def test_a_wav_clip_decodes_to_16k_mono():
    audio = decode_clip(sample("fryer"), "wav")
    assert audio.dtype == np.float32 and 2.5 < len(audio) / RATE < 4.5 and np.abs(audio).max() > 0.1


def test_other_rates_and_formats_are_resampled():
    tone = (0.3 * np.sin(np.arange(RATE) * 2 * np.pi * 440 / RATE)).astype(np.float32)
    audio_44k = decode_clip(encode_wav(np.repeat(tone, 3)[: 44_100], 44_100), "wav")
    assert abs(len(audio_44k) - RATE) < 400
    flac = decode_clip(encoded(tone, "flac", "flac"), "flac")
    assert abs(len(flac) - RATE) < 400 and np.abs(flac).max() > 0.2


@pytest.mark.parametrize("data, fmt, message", [
    (b"RIFF0000WAVEfmt ", "aac", "unknown audio format 'aac'"),
    (b"", "wav", "the clip is empty"),
    (b"\x00\x01" * 4000, "wav", "cannot decode the clip: not wav audio"),
    (b"ID3" + bytes(range(256)) * 20, "mp3", "cannot decode the clip"),
    (b"fLaC" + b"\xff" * 3000, "flac", "cannot decode the clip"),
])
def test_bad_clips_get_a_clear_error(data, fmt, message):
    with pytest.raises(AudioError, match=message):
        decode_clip(data, fmt)


def test_a_cut_off_clip_is_refused_or_decodes_what_is_there():
    data = sample("fryer")
    with pytest.raises(AudioError, match="cannot decode|no wav audio"):
        decode_clip(data[:40], "wav")


def test_too_long_and_too_large_clips_are_refused_cheaply():
    long = encode_wav(np.zeros(RATE * 40, dtype=np.float32))
    started = time.perf_counter()
    with pytest.raises(AudioError, match="longer than 30 s"):
        decode_clip(long, "wav", AudioLimits(max_seconds=30, max_bytes=10**7))
    assert time.perf_counter() - started < 2.0
    with pytest.raises(AudioError, match="over the 1024-byte limit"):
        decode_clip(sample("fryer"), "wav", AudioLimits(max_bytes=1024))


def test_pcm16_frames_must_hold_whole_samples():
    assert pcm16_to_float(b"\x00\x40\x00\xc0").tolist() == [0.5, -0.5]
    with pytest.raises(AudioError, match="even number of bytes"):
        pcm16_to_float(b"\x00\x01\x02")


@pytest.mark.parametrize("frame, message", [
    ('{"type":"audio_start","rate":44100}', "16000"),
    ('{"type":"audio_start","format":"opus"}', "pcm16"),
    ('{"type":"audio_start","speaker":"viewer"}', "speaker"),
    ('{"type":"voice","id":"v1","user":{"id":"u"},"format":"wav"}', "data"),
])
def test_bad_audio_frames_are_event_errors(frame, message):
    with pytest.raises(EventError, match=message):
        parse_event(frame)


# -- voice activity --------------------------------------------------------------------------------------


def stream_of(*parts: np.ndarray | float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Clips joined with silence (floats are seconds of silence); returns the stream and where speech is."""
    out, spans, t = [], [], 0.0
    for p in parts:
        a = np.zeros(int(p * RATE), dtype=np.float32) if isinstance(p, float) else p
        if not isinstance(p, float):
            spans.append((t, t + len(a) / RATE))
        out.append(a)
        t += len(a) / RATE
    return np.concatenate(out), spans


def test_the_vad_finds_each_utterance_as_the_stream_arrives():
    fryer, filler = decode_clip(sample("fryer"), "wav"), decode_clip(sample("filler"), "wav")
    audio, spans = stream_of(1.0, fryer, 1.5, filler, 1.0)
    seg = Segmenter()
    events = []
    for i in range(0, len(audio), 1600):  # 100 ms frames, as a socket delivers them
        events += seg.feed(audio[i:i + 1600])
    events += seg.flush()
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(starts) == len(ends) == 2
    for (start, end), e in zip(spans, ends, strict=True):
        assert abs(e.start - start) < 0.5 and abs(e.end - end) < 0.5, (e.start, e.end, start, end)
        assert len(e.audio) / RATE >= e.end - e.start  # the segment holds all of its speech
    assert not seg.speaking


def test_silence_and_noise_are_not_speech():
    rng = np.random.default_rng(0)
    seg = Segmenter()
    events = seg.feed(np.zeros(RATE * 3, dtype=np.float32)) + seg.feed((rng.normal(0, 0.01, RATE * 3)).astype(np.float32))
    assert events + seg.flush() == []


def test_a_streamer_who_never_pauses_is_heard_in_parts():
    fryer = decode_clip(sample("fryer"), "wav")
    seg = Segmenter(VadOptions(max_segment_s=1.5))
    events = seg.feed(fryer) + seg.flush()
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ends) >= 2 and all(len(e.audio) / RATE <= 1.5 + 0.5 for e in ends)
    assert ends[0].continues and not ends[-1].continues
    assert sum(isinstance(e, SpeechStarted) for e in events) == 1  # one turn, heard in parts


# -- the worker ------------------------------------------------------------------------------------------


class GatedTranscriber:
    """A stand-in for the model that records the order it is asked in and waits for a gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.order: list[str] = []
        self.loaded = True

    def load(self) -> None:
        pass

    def transcribe(self, audio: np.ndarray, *, hotwords: str | None = None) -> Transcript:
        self.gate.wait(10)
        self.order.append(hotwords or "")
        return Transcript(hotwords or "", len(audio) / RATE, 0.001)


def test_streamer_audio_is_never_queued_behind_viewer_clips():
    async def main():
        t = GatedTranscriber()
        worker = AsrWorker(t, max_clips=8)
        try:
            first = asyncio.ensure_future(worker.transcribe(np.zeros(10), priority=VIEWER, hotwords="v0"))
            await asyncio.sleep(0.05)  # v0 is being decoded
            rest = [asyncio.ensure_future(worker.transcribe(np.zeros(10), priority=VIEWER, hotwords=f"v{i}"))
                    for i in range(1, 4)]
            await asyncio.sleep(0.01)
            streamer = asyncio.ensure_future(worker.transcribe(np.zeros(10), priority=STREAMER, hotwords="s"))
            await asyncio.sleep(0.05)
            t.gate.set()
            await asyncio.gather(first, streamer, *rest)
            assert t.order == ["v0", "s", "v1", "v2", "v3"]
        finally:
            worker.stop()
    asyncio.run(main())


def test_a_flood_of_clips_is_refused_and_stale_clips_are_not_decoded():
    async def main():
        t = GatedTranscriber()
        worker = AsrWorker(t, max_clips=2)
        try:
            busy = asyncio.ensure_future(worker.transcribe(np.zeros(10), priority=VIEWER, hotwords="busy"))
            await asyncio.sleep(0.05)
            waiting = [asyncio.ensure_future(worker.transcribe(np.zeros(10), priority=VIEWER, hotwords=f"w{i}",
                                                               deadline=time.monotonic() + 0.1)) for i in range(2)]
            await asyncio.sleep(0.01)
            with pytest.raises(AsrBusy, match="already waiting"):
                await worker.transcribe(np.zeros(10), priority=VIEWER)
            await asyncio.sleep(0.2)  # their deadline passes while they wait
            t.gate.set()
            await busy
            for w in waiting:
                with pytest.raises(AsrStale):
                    await w
            assert t.order == ["busy"] and worker.stats["stale"] == 2 and worker.stats["busy_refused"] == 1
        finally:
            worker.stop()
    asyncio.run(main())


def test_a_room_takes_a_bounded_number_of_voice_messages_a_minute(tmp_path):
    async def main():
        t = GatedTranscriber()
        t.gate.set()
        hearing = Hearing(AsrConfig(clips_per_minute=3), tmp_path, transcriber=t)  # type: ignore[arg-type]
        hearing.listen_for("r", lambda: "法式碎花连衣裙")
        hearing.listen_for("other", lambda: "家用空气炸锅")
        clip = base64.b64encode(sample("fryer")).decode()
        try:
            for i in range(3):
                event = VoiceEvent(type="voice", id=f"v{i}", user={"id": "u"}, format="wav", data=clip)
                chat = await hearing.voice_message("r", event)
                assert chat.voice and chat.text == "法式碎花连衣裙" and chat.voice_seconds > 3
            with pytest.raises(AsrBusy, match="at most 3 voice messages a minute"):
                await hearing.voice_message("r", VoiceEvent(type="voice", id="v9", user={"id": "u"}, format="wav",
                                                            data=clip))
            # another room is not held up by this one's flood
            await hearing.voice_message("other", VoiceEvent(type="voice", id="o1", user={"id": "u"},
                                                            format="wav", data=clip))
            with pytest.raises(AudioError, match="base64"):
                await hearing.voice_message("other", VoiceEvent(type="voice", id="o2", user={"id": "u"},
                                                                format="wav", data="%%%"))
        finally:
            hearing.close()
    asyncio.run(main())


# -- the real model on real speech (slow) --------------------------------------------------------------


def cer(hyp: str, ref: str) -> float:
    from cohost.bench_asr import char_error_rate

    return char_error_rate(hyp, ref)


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory):
    from cohost.hearing.whisper import Transcriber

    t = Transcriber("base", cache_dir=tmp_path_factory.mktemp("asr-cache"))
    t.load()
    return t


@pytest.mark.slow
@pytest.mark.skipif(not SPEECH.is_dir(), reason="needs ../shared/data/speech-zh")
@pytest.mark.parametrize("name, reference", [("aishell-BAC009S0724W0121.wav", "广州市房地产中介协会分析"),
                                             ("BAC009S0764W0121.wav", "甚至出现交易几乎停滞的情况")])
def test_whisper_base_hears_real_mandarin(transcriber, name, reference):
    audio = decode_clip((SPEECH / name).read_bytes(), "wav")
    result = transcriber.transcribe(audio)
    assert cer(result.text, reference) <= 0.3, result.text
    assert result.compute_s < 5 * result.seconds


@pytest.mark.slow
def test_simplified_output_and_hotwords_from_the_room(transcriber):
    audio = decode_clip(sample("fryer"), "wav")
    pad = np.zeros(4800, dtype=np.float32)
    result = transcriber.transcribe(np.concatenate([pad, audio, pad]), hotwords="家用空气炸锅 法式碎花连衣裙")
    assert "空气炸锅" in result.text
    assert transcriber.transcribe(np.zeros(RATE * 2, dtype=np.float32)).text == ""


@pytest.mark.slow
def test_the_packaged_model_is_joined_once_and_a_broken_join_is_redone(tmp_path):
    from cohost.hearing.whisper import packaged_base_dir

    target = packaged_base_dir(tmp_path)
    model = target / "model.bin"
    size, mtime = model.stat().st_size, model.stat().st_mtime_ns
    assert packaged_base_dir(tmp_path) == target and model.stat().st_mtime_ns == mtime  # not joined again
    with model.open("r+b") as f:  # a copy cut short (disk full, kill -9 before the rename)
        f.truncate(size // 2)
    packaged_base_dir(tmp_path)
    assert model.stat().st_size == size
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporary files left
