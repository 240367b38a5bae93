"""`cohost bench loop`: drive the live server over loopback websockets with recorded traffic.

Measures, in one run: the bare model cost (one encoder pass + one faiss search), the time from a
message's arrival to its decision, the time from sending a message to receiving its chat reply, what
happened to every message (answered, aggregated, dropped at the deadline...), whether any reply came
after its deadline, and peak memory. The platform send limit is lifted (min_interval_s=0) so that the
figures are the pipeline's own, not the limiter's.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import time
from typing import Any

import websockets

from .config import project_root
from .engine import AnswerEngine
from .live import live_server
from .sources.replay import ingest_url


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return round(s[min(len(s) - 1, int(round(q * (len(s) - 1))))], 3)


def recorded_texts() -> list[str]:
    path = project_root() / "knowledge" / "demo" / "session.jsonl"
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


async def bench_loop(engine: AnswerEngine, *, rate: float, duration_s: float) -> dict[str, Any]:
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
    sent_at: dict[str, float] = {}
    reply_ms: list[float] = []
    late = 0
    deadline_ms = engine.config.dialog.deadline_s * 1000
    total = int(rate * duration_s)
    try:
        async with live_server(engine, port=0) as (app, port):
            async with websockets.connect(ingest_url("127.0.0.1", port, room), max_size=2**22) as ws:
                await ws.send(json.dumps({"type": "product", "product_id": engine.catalog.products[0].id}))

                async def reader() -> None:
                    nonlocal late
                    async for raw in ws:
                        msg = json.loads(raw)
                        if msg.get("type") != "reply":
                            continue
                        now = time.perf_counter()
                        ids = msg["in_reply_to"] if isinstance(msg["in_reply_to"], list) else [msg["in_reply_to"]]
                        for i in ids:
                            if i in sent_at:
                                ms = (now - sent_at[i]) * 1000
                                reply_ms.append(ms)
                                late += ms > deadline_ms

                read_task = asyncio.create_task(reader())
                start = time.perf_counter()
                for n in range(total):
                    due = start + n / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    eid = f"b{n}"
                    sent_at[eid] = time.perf_counter()
                    await ws.send(json.dumps({"type": "chat", "id": eid, "user": {"id": f"u{n}", "name": f"观众{n}"},
                                              "text": texts[n % len(texts)], "ts": time.time()}, ensure_ascii=False))
                send_s = time.perf_counter() - start
                runner = app.state.hub.rooms[room].runner
                settle = time.perf_counter() + engine.config.dialog.deadline_s + 5
                # polling is fine here: the bench waits for the room to drain, nothing signals it
                while not runner.idle and time.perf_counter() < settle:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.2)
                read_task.cancel()
                stats = dict(runner.room.stats)
                decide = list(runner.room.decide_latencies_ms)
                accounted = runner.room.outcome_total()
    finally:
        engine.config = cfg
    cancel = await bench_cancel(engine)
    return {
        "rate_msgs_per_s": rate,
        "sent": total,
        "achieved_send_rate": round(total / send_s, 1),
        "bare_p50_ms": _pct(bare, 0.5),
        "bare_p95_ms": _pct(bare, 0.95),
        "decide_p50_ms": _pct(decide, 0.5),
        "decide_p95_ms": _pct(decide, 0.95),
        "decide_p99_ms": _pct(decide, 0.99),
        "reply_p50_ms": _pct(reply_ms, 0.5),
        "reply_p95_ms": _pct(reply_ms, 0.95),
        "reply_p99_ms": _pct(reply_ms, 0.99),
        "replied_messages": len(reply_ms),
        "replies_after_deadline": late,
        "dropped_deadline": stats.get("dropped_deadline", 0) + stats.get("dropped_stale", 0),
        "outcomes": {k: v for k, v in sorted(stats.items()) if not k.startswith("event_")},
        "unaccounted": stats.get("received", 0) - accounted,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "decide_mean_ms": round(statistics.fmean(decide), 3) if decide else 0.0,
        **cancel,
    }
