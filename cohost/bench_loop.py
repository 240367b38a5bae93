"""`cohost bench loop`: drive the live server over loopback websockets with recorded traffic.

Measures, in one run: the bare model cost (one encoder pass + one faiss search), the time from a
message's arrival to its decision, the time from sending a message to receiving its chat reply (and
the server's own arrival → reply sent), what happened to every message (answered, aggregated, dropped
at the deadline...), whether any reply came after its deadline, and peak memory. The platform send
limit is lifted (min_interval_s=0) so that the figures are the pipeline's own, not the limiter's.

The traffic comes from a load generator in its own process (cohost/bench_client.py), as a platform
adapter or a recorder would send it: in the server's process it would share the event loop it measures.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets
from fastapi import FastAPI

from .aio import cancel_and_wait
from .config import packaged
from .dialog.runner import RoomRunner
from .engine import AnswerEngine
from .errors import CohostError
from .live import live_server
from .sources.replay import ingest_url


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 3)


def recorded_texts() -> list[str]:
    path = packaged("samples", "demo", "session.jsonl")
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            e = json.loads(line)
            if e.get("type") == "chat":
                texts.append(e["text"])
    return texts


async def bench_cancel(engine: AnswerEngine, *, trials: int = 40, spacing_s: float = 0.3) -> dict[str, Any]:
    """Product changes while the LLM is streaming talking points: how fast is generation withdrawn?

    The LLM is a real OpenAI-compatible server on loopback that streams slowly, so every product change
    finds a generation in flight. Cancel latency = interrupt → the generating task has stopped.
    """
    from .testing.fake_openai import FakeOpenAI

    async with FakeOpenAI(mode="slow", first_delay=0.05, token_delay=0.05,
                          text="1. 雪纺面料带内衬\n2. 收腰显瘦\n3. 夏天清爽透气\n") as fake:
        cfg = engine.config
        llm = cfg.llm.model_copy(update={"enabled": True, "base_url": fake.base_url, "timeout_s": 30.0,
                                         "first_token_timeout_s": 10.0})
        products = [p.id for p in engine.catalog.products]
        async with live_server(engine, port=0, config=cfg.model_copy(update={"llm": llm})) as (app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, "cancel")) as ws:
                for n in range(trials + 1):
                    await ws.send(json.dumps({"type": "product", "product_id": products[n % len(products)]}))
                    await asyncio.sleep(spacing_s)
                room = app.state.hub.rooms["cancel"].runner.room
                await asyncio.sleep(0.5)
                latencies = list(room.cancel_latencies_ms)
        await fake.await_disconnects(len(latencies), within_s=5.0)
        return {"cancel_trials": len(latencies), "cancel_p50_ms": _pct(latencies, 0.5),
                "cancel_p95_ms": _pct(latencies, 0.95), "cancel_max_ms": _pct(latencies, 1.0),
                "llm_streams_opened": len(fake.requests), "llm_streams_closed_by_client": fake.disconnects}


async def _run_client(app: FastAPI, url: str, room: str, product_id: str, rate: float, total: int, texts_path: str,
                      *, settle_s: float) -> tuple[dict[str, Any], dict[str, Any], RoomRunner]:
    """Run the load generator in its own process until the room has drained.

    Returns its send report, the reply times it measured (bench_client), and the room's runner."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cohost.bench_client", url, product_id, str(rate), str(total), texts_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = await proc.stdout.readline()
        if not line:
            raise CohostError(f"the bench client exited with code {await proc.wait()} before sending")
        sent = json.loads(line)
        runner = app.state.hub.rooms[room].runner
        settle = time.perf_counter() + settle_s
        # polling is fine here: the bench waits for the room to drain, nothing signals it
        while not runner.idle and time.perf_counter() < settle:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # the last replies are on the wire
        out, _ = await asyncio.wait_for(proc.communicate(b"done\n"), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise CohostError(f"the bench client failed with code {proc.returncode}")
    return sent, json.loads(out), runner


def _speech(seconds: float) -> Any:
    """The streamer talking for ``seconds``: the packaged voice lines and the real clips
    (../shared/data/speech-zh, when there), each followed by 1.5 s of quiet, over and over."""
    import importlib.resources

    import numpy as np

    from .bench_asr import DEFAULT_CLIPS
    from .sources.audio_stream import load_audio

    voice = importlib.resources.files("cohost") / "samples" / "voice"
    paths = [Path(str(voice / f"{n}.wav")) for n in ("fryer", "guangdong", "filler")]
    if DEFAULT_CLIPS.is_dir():
        paths += sorted(p for p in DEFAULT_CLIPS.iterdir() if p.suffix in (".wav", ".flac"))
    gap = np.zeros(int(1.5 * 16000), dtype=np.float32)
    script = np.concatenate([x for p in paths for x in (load_audio(p), gap)])
    return np.tile(script, int(seconds * 16000 / len(script)) + 1)[: int(seconds * 16000)]


async def _stream_audio(app: FastAPI, room: str, audio: Any) -> None:
    """The streamer's mic into the room, paced in real time as frames from a socket are, once the load
    generator holds the room (it owns the replies); runs until cancelled."""
    from .sources.audio_stream import paced, pcm_frames

    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:  # noqa: ASYNC110 (the hub signals nothing when a room opens)
        entry = app.state.hub.rooms.get(room)
        if entry is not None and entry.ingest:
            break
        await asyncio.sleep(0.01)
    stream = app.state.hub.hearing.open_stream(room, "streamer", entry.runner.submit)
    try:
        async for frame in paced(pcm_frames(audio)):
            stream.feed(frame)
    finally:
        await stream.close()


async def bench_loop(engine: AnswerEngine, *, rate: float, duration_s: float, cancel_trials: int = 40,
                     audio: bool = False) -> dict[str, Any]:
    cfg = engine.config
    engine.config = cfg.model_copy(update={"dialog": cfg.dialog.model_copy(update={"min_interval_s": 0.0,
                                                                                  "user_cooldown_s": 0.0})})
    texts = recorded_texts()
    bare = []
    for t in texts[:200]:
        t0 = time.perf_counter()
        engine.bare_search(engine.normalizer(t))
        bare.append((time.perf_counter() - t0) * 1000)
    engine.clear_cache()
    room = f"bench{int(rate)}"
    total = int(rate * duration_s)
    deadline_ms = engine.config.dialog.deadline_s * 1000
    voice: dict[str, Any] = {}
    try:
        async with live_server(engine, port=0) as (app, port):
            with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
                json.dump(texts, f, ensure_ascii=False)
                f.flush()
                speaker = None
                if audio:  # the streamer's mic runs through the whole measurement, model loaded first
                    speech = _speech(duration_s + engine.config.dialog.deadline_s + 5)
                    await asyncio.to_thread(app.state.hub.hearing.transcriber.load)
                    speaker = asyncio.create_task(_stream_audio(app, room, speech))
                try:
                    sent, replies, runner = await _run_client(
                        app, ingest_url("127.0.0.1", port, room), room, engine.catalog.products[0].id, rate, total,
                        f.name, settle_s=engine.config.dialog.deadline_s + 5)
                finally:
                    if speaker is not None:
                        await cancel_and_wait(speaker)
            stats = dict(runner.room.stats)
            if audio:
                heard = list(runner.room.voice_latencies_ms)
                voice = {"audio_stream": True, "utterances_heard": len(heard),
                         "end_of_speech_p95_ms": _pct(heard, 0.95),
                         "asr_compute_s": round(app.state.hub.hearing.worker.stats["compute_s"], 2)}
            decide = list(runner.room.decide_latencies_ms)
            accounted = runner.room.outcome_total()
            reply_ms = list(replies["reply_ms"].values())
            server_ms = replies["server_ms"]
    finally:
        engine.config = cfg
    cancel = await bench_cancel(engine, trials=cancel_trials)
    return {
        "rate_msgs_per_s": rate,
        "sent": total,
        "achieved_send_rate": round(total / sent["send_s"], 1),
        "bare_p50_ms": _pct(bare, 0.5),
        "bare_p95_ms": _pct(bare, 0.95),
        "decide_p50_ms": _pct(decide, 0.5),
        "decide_p95_ms": _pct(decide, 0.95),
        "decide_p99_ms": _pct(decide, 0.99),
        "reply_p50_ms": _pct(reply_ms, 0.5),
        "reply_p95_ms": _pct(reply_ms, 0.95),
        "reply_p99_ms": _pct(reply_ms, 0.99),
        "server_reply_p50_ms": _pct(server_ms, 0.5),
        "server_reply_p95_ms": _pct(server_ms, 0.95),
        "reply_over_bare_p95": round(_pct(reply_ms, 0.95) / _pct(bare, 0.95), 3) if bare and reply_ms else 0.0,
        "replied_messages": len(reply_ms),
        "replies_after_deadline": sum(ms > deadline_ms for ms in reply_ms),
        "dropped_deadline": stats.get("dropped_deadline", 0) + stats.get("dropped_stale", 0),
        "outcomes": {k: v for k, v in sorted(stats.items()) if not k.startswith("event_")},
        "unaccounted": stats.get("received", 0) - accounted,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "decide_mean_ms": round(statistics.fmean(decide), 3) if decide else 0.0,
        **voice,
        **cancel,
    }
