"""The gap report at 10,000 unanswered texts: what opening /admin costs, and what a live room sees meanwhile.

    .venv/bin/python benchmarks/gaps.py [--gaps 10000] [--rate 10] [--phase-s 40]

Runs the server in this process on a fresh store (the packaged sample shop) with one room, "live", fed the
demo recording's danmaku and product changes at --rate messages a second (each from its own viewer; the
room may reply as often as it can: min_interval_s, user_cooldown_s and aggregate_window_s are 0), timing
every chat reply from send to receipt. Three phases of --phase-s seconds:

1. baseline: no gaps; GET /gaps once a second;
2. warm-up: --gaps distinct unanswered texts (from templates, spread over the products, asked in the last
   day, so every cluster is also checked against the serving version) are written to the store at once, as
   after a restart with a full report; GET /gaps once a second while the report embeds and clusters them;
3. after the report has caught up (it prints how long that took): GET /gaps ten times a second.

Prints one JSON line per phase: reply count, p50/p95 (ms), GET /gaps p50/p95/max (ms), the report's status.

    .venv/bin/python benchmarks/gaps.py --singletons 10000

The report's own costs in the worst shape, no two texts alike (random unit vectors, one product, so every text
founds a cluster): placing the texts, rendering the served snapshot, the status, queueing a version's checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from cohost.config import load_config
from cohost.demo import DEMO_SESSION
from cohost.engine import AnswerEngine
from cohost.knowledge.gaps import Gap
from cohost.knowledge.store import CatalogStore
from cohost.live import live_server
from cohost.sources.replay import ingest_url

TOKEN = "bench-gaps"
API = "/api/shops/default"


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * (len(s) - 1)))], 1) if s else 0.0


def unanswered_texts(n: int, rng: random.Random) -> list[str]:
    """Distinct questions of the kinds a catalog leaves open (sizes by body, places, uses, compatibility)."""
    cities = ("新疆 西藏 青海 海南 香港 澳门 台湾 内蒙古 黑龙江 吉林 辽宁 甘肃 宁夏 云南 "
              "贵州 广西 四川 重庆 湖南 湖北 江西 福建 山西 陕西 河北 河南 山东 安徽 "
              "江苏 浙江 广东 北京 天津 上海 日本 美国 新加坡 马来西亚").split()
    uses = ["孕妇", "哺乳期", "老人", "小孩", "学生", "敏感肌", "痘痘肌", "糖尿病人", "高血压的人", "宠物", "过敏体质",
            "上班族", "运动员", "户外", "出差", "军训", "爬山", "跑步", "游泳", "坐月子"]
    things = ["冰箱", "微波炉", "洗碗机", "烘干机", "飞机", "高铁", "地铁", "车里", "办公室", "宿舍", "帐篷", "阳台"]
    colors = "黑色 白色 红色 蓝色 绿色 粉色 紫色 灰色 卡其色 杏色".split()
    sizes = "S M L XL 2XL 3XL 4XL 均码".split()
    forms: list[Any] = [
        lambda: f"{rng.randint(145, 190)} {rng.randint(80, 200)}斤穿什么码",
        lambda: f"发{rng.choice(cities)}几天能到",
        lambda: f"{rng.choice(uses)}能用吗",
        lambda: f"能放{rng.choice(things)}吗",
        lambda: f"{rng.randint(1, 40)}号链接{rng.choice(['还有货吗', '是什么颜色', '有赠品吗', '什么时候补货'])}",
        lambda: f"{rng.choice(uses)}{rng.choice(['去' + c for c in cities])}穿会冷吗",
        lambda: f"{rng.choice(['苹果', '华为', '小米', 'OPPO', 'vivo', '三星'])}{rng.randint(8, 16)}能用吗",
        lambda: f"{rng.randint(1, 40)}号{rng.choice(colors)}{rng.choice(sizes)}还有吗",
        lambda: f"{rng.choice(uses)}{rng.randint(145, 190)}穿{rng.choice(sizes)}合适吗",
    ]
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(rng.choice(forms)(), None)
    return list(seen)


async def room_traffic(port: int, rate: float, stop: asyncio.Event, latencies: list[float]) -> None:
    events = [json.loads(line) for line in DEMO_SESSION.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [e for e in events if e["type"] in ("chat", "product")]
    sent: dict[str, float] = {}
    async with websockets.connect(ingest_url("127.0.0.1", port, "live")) as ws:
        async def receive() -> None:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("type") == "reply":
                    ids = msg["in_reply_to"] if isinstance(msg["in_reply_to"], list) else [msg["in_reply_to"]]
                    first = min((sent.pop(i) for i in ids if i in sent), default=None)
                    if first is not None:
                        latencies.append((time.perf_counter() - first) * 1000)

        receiver = asyncio.create_task(receive())
        n = itertools.count()
        for e in itertools.cycle(events):
            if stop.is_set():
                break
            if e["type"] == "product":
                await ws.send(json.dumps(e))
                continue
            i = next(n)
            msg = {**e, "id": f"m{i}", "ts": time.time(), "user": {"id": f"v{i}", "name": f"观众{i}"}}
            sent[msg["id"]] = time.perf_counter()
            await ws.send(json.dumps(msg, ensure_ascii=False))
            await asyncio.sleep(1 / rate)
        await asyncio.sleep(7)  # replies still on their way (deadline 6 s)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receiver


async def phase(name: str, port: int, client: httpx.AsyncClient, *, rate: float, seconds: float,
                get_every_s: float) -> dict[str, Any]:
    latencies: list[float] = []
    gets: list[float] = []
    stop = asyncio.Event()
    traffic = asyncio.create_task(room_traffic(port, rate, stop, latencies))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        r = await client.get(f"{API}/gaps")
        gets.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200, r.text
        await asyncio.sleep(get_every_s)
    stop.set()
    await traffic
    status = (await client.get(f"{API}/gaps/status")).json()
    return {"phase": name, "replies": len(latencies), "reply_p50_ms": pct(latencies, 0.5),
            "reply_p95_ms": pct(latencies, 0.95), "gets": len(gets), "get_p50_ms": pct(gets, 0.5),
            "get_p95_ms": pct(gets, 0.95), "get_max_ms": round(max(gets), 1), "report": status}


def singletons(n: int) -> None:
    import numpy as np

    from cohost.knowledge.gap_report import _ShopReport

    st = _ShopReport("bench")
    st.take([Gap(i + 1, "r", f"问题{i}", f"问题{i}", "p", "x", 1e9 + i) for i in range(n)], first=True)
    vectors = np.random.default_rng(0).normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    forms, st.pending = st.pending, []
    t0 = time.perf_counter()
    for start in range(0, n, 16):
        st.place(forms[start:start + 16], vectors[start:start + 16], [True] * len(forms[start:start + 16]), 0.91)
    place_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    body = json.dumps(st.view(None, 200), ensure_ascii=False).encode()
    render_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    st.status()
    status_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    st.new_version(2, 2e9)
    queue_ms = (time.perf_counter() - t0) * 1000
    print(json.dumps({"clusters": len(st.clusters), "place_all_s": round(place_s, 2),
                      "place_per_text_ms": round(place_s * 1000 / n, 2), "render_ms": round(render_ms, 1),
                      "snapshot_bytes": len(body),
                      "status_ms": round(status_ms, 2), "queue_checks_ms": round(queue_ms, 2)}))


async def main(args: argparse.Namespace) -> None:
    cfg = load_config()
    cfg = cfg.model_copy(update={"dialog": cfg.dialog.model_copy(update={
        "min_interval_s": 0.0, "user_cooldown_s": 0.0, "aggregate_window_s": 0.0})})
    engine = AnswerEngine.from_config(cfg)
    rng = random.Random(15)
    products = [p.id for p in engine.catalog.products]
    now = time.time()
    gaps = [Gap(0, "other-room", t, engine.normalizer(t), rng.choice(products), "no confident answer",
                now - rng.uniform(60, 86_400)) for t in unanswered_texts(args.gaps, rng)]
    with tempfile.TemporaryDirectory() as tmp:
        store = CatalogStore(Path(tmp) / "catalog.sqlite3")
        async with live_server(engine, port=0, store=store, admin_token=TOKEN, config=cfg) as (_app, port):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120,
                                         headers={"Authorization": f"Bearer {TOKEN}"}) as client:
                print(json.dumps(await phase("baseline", port, client, rate=args.rate, seconds=args.phase_s,
                                             get_every_s=1.0), ensure_ascii=False), flush=True)
                t0 = time.monotonic()
                await asyncio.to_thread(store.record_gaps, "default", gaps)
                print(json.dumps(await phase("warm-up", port, client, rate=args.rate, seconds=args.phase_s,
                                             get_every_s=1.0), ensure_ascii=False), flush=True)
                while True:
                    s = (await client.get(f"{API}/gaps/status")).json()
                    if not s["pending"] and not s["checking"]:
                        break
                    await asyncio.sleep(1)
                print(json.dumps({"caught_up_s": round(time.monotonic() - t0, 1), "report": s}), flush=True)
                print(json.dumps(await phase("caught-up", port, client, rate=args.rate, seconds=args.phase_s,
                                             get_every_s=0.1), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaps", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--phase-s", type=float, default=40.0)
    parser.add_argument("--singletons", type=int, default=0, help="only the report's costs at this many clusters")
    parsed = parser.parse_args()
    if parsed.singletons:
        singletons(parsed.singletons)
    else:
        asyncio.run(main(parsed))
