"""`cohost bench retrieval`: the bare model cost against the full answer path, in one run.

bare  = one encoder pass + one faiss search (the floor any answer costs)
full  = normalise → intent → resolve → retrieve → decide → compose, cache cold
Both are timed on the same texts, interleaved, so machine noise hits both alike.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from .config import packaged, project_root
from .engine import AnswerEngine, Message


def sample_messages(limit: int) -> list[Message]:
    """Distinct danmaku from the labelled sets in a checkout's knowledge/; a pip-installed cohost, which has
    no knowledge/ folder, takes them from the packaged demo recording instead."""
    root = project_root() / "knowledge"
    seen: dict[str, Message] = {}
    for path in [root / "eval" / "faq_test.jsonl", root / "eval" / "faq_tune.jsonl", root / "intent" / "dev.jsonl"]:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                obj = json.loads(line)
                seen.setdefault(obj["text"], Message(obj["text"], "观众", obj.get("on_stage")))
    if not seen:
        on_stage = None
        for line in packaged("samples", "demo", "session.jsonl").read_text(encoding="utf-8").splitlines():
            event = json.loads(line) if line.strip() else {}
            if event.get("type") == "product":
                on_stage = event.get("product_id")
            elif event.get("type") == "chat":
                seen.setdefault(event["text"], Message(event["text"], "观众", on_stage))
    return list(seen.values())[:limit]


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def bench_retrieval(engine: AnswerEngine, *, n: int = 300, batch: int = 32) -> dict[str, Any]:
    messages = sample_messages(n)
    for m in messages[:10]:  # warm-up: first calls pay for lazy initialisation
        engine.bare_search(m.text)
        engine.answer(m)
    engine.clear_cache()
    bare, full, cached = [], [], []
    for m in messages:
        t0 = time.perf_counter()
        engine.bare_search(engine.normalizer(m.text))
        t1 = time.perf_counter()
        engine.answer(m)
        t2 = time.perf_counter()
        bare.append((t1 - t0) * 1000)
        full.append((t2 - t1) * 1000)
    for m in messages:
        t0 = time.perf_counter()
        engine.answer(m)
        cached.append((time.perf_counter() - t0) * 1000)
    engine.clear_cache()
    t0 = time.perf_counter()
    for i in range(0, len(messages), batch):
        engine.answer_many(messages[i:i + batch])
    batch_s = time.perf_counter() - t0
    engine.clear_cache()
    return {
        "messages": len(messages),
        "embedder": engine.embedder.name,
        "catalog_keys": engine.index.key_count,
        "bare_p50_ms": round(statistics.median(bare), 3),
        "bare_p95_ms": round(_pct(bare, 0.95), 3),
        "full_p50_ms": round(statistics.median(full), 3),
        "full_p95_ms": round(_pct(full, 0.95), 3),
        "full_over_bare_p95": round(_pct(full, 0.95) / _pct(bare, 0.95), 3),
        "cached_p50_ms": round(statistics.median(cached), 4),
        "cached_p95_ms": round(_pct(cached, 0.95), 4),
        "batch_size": batch,
        "batch_msgs_per_s": round(len(messages) / batch_s, 1),
    }

