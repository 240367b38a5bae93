"""How long a new catalog version takes to build, and what live lookups see meanwhile.

    .venv/bin/python benchmarks/reindex.py

Prints: the build time of a version that changes one FAQ (embedding cache warm: only the new keys are
embedded), of the whole sample catalog with an empty cache, and lookup latency p50/p95 from a thread that
keeps answering questions on the serving engine while the version is built.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time

from cohost.config import load_config
from cohost.engine import AnswerEngine, Message
from cohost.knowledge.catalog import FAQ


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1)))], 2) if s else 0.0


def main() -> None:
    cfg = load_config()
    engine = AnswerEngine.from_config(cfg)
    changed = engine.catalog.with_faqs([("dress", FAQ(id="dress_iron", question="能熨烫吗？",
                                                      answer="可以低温熨烫，隔一层布更好。",
                                                      variants=("可以熨吗", "能用挂烫机吗")))])
    lookups: list[float] = []
    stop = threading.Event()

    def ask() -> None:
        texts = ["有大码吗", "能机洗吗", "多少钱", "发什么快递", "胖子能穿吗"]
        n = 0
        while not stop.is_set():
            engine.clear_cache()
            t0 = time.perf_counter()
            engine.answer(Message(texts[n % len(texts)], None, "dress"))
            lookups.append((time.perf_counter() - t0) * 1000)
            n += 1

    asker = threading.Thread(target=ask)
    asker.start()
    t0 = time.perf_counter()
    engine.rebuilt(changed)
    warm_s = time.perf_counter() - t0
    stop.set()
    asker.join()
    with tempfile.TemporaryDirectory() as empty:
        cold_cfg = cfg.model_copy(update={"cache_dir": empty})
        t0 = time.perf_counter()
        AnswerEngine(changed, cold_cfg, intent=engine.intent)
        cold_s = time.perf_counter() - t0
    print(json.dumps({"catalog_keys": engine.index.key_count, "one_faq_changed_build_s": round(warm_s, 3),
                      "full_build_empty_cache_s": round(cold_s, 2), "lookups_during_build": len(lookups),
                      "lookup_p50_ms": pct(lookups, 0.5), "lookup_p95_ms": pct(lookups, 0.95)}))


if __name__ == "__main__":
    main()
