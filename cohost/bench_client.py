"""The load generator of `cohost bench loop`, run as its own process.

    python -m cohost.bench_client URL PRODUCT RATE TOTAL TEXTS.json

Puts PRODUCT on stage, then sends TOTAL chat messages (cycling the texts, each from its own viewer)
at RATE per second over one ingest websocket and prints a line `{"sent": N, "send_s": S}`. It keeps
reading replies until a line arrives on stdin (the bench sends it once the room has drained), then
prints one JSON object: for every message that got a chat reply, the time from sending it to
receiving that reply (`reply_ms`), and for every reply the time the server says it spent from the
arrival of the first message it answers to sending it (`server_ms`, the reply frame's latency_ms).

It runs apart from the server so that its sending and parsing neither share the server's event loop
nor its interpreter lock: the figures are the server's, as a platform adapter in another process sees
them. Only the standard library and websockets are imported, so it starts in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any

import websockets


async def drive(url: str, product_id: str, rate: float, total: int, texts: list[str]
                ) -> dict[str, Any]:
    sent_at: dict[str, float] = {}
    reply_ms: dict[str, float] = {}
    server_ms: list[float] = []
    async with websockets.connect(url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "product", "product_id": product_id}))

        async def reader() -> None:
            with contextlib.suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    msg = json.loads(raw)
                    if msg.get("type") != "reply":
                        continue
                    now = time.perf_counter()
                    ids = msg["in_reply_to"] if isinstance(msg["in_reply_to"], list) else [msg["in_reply_to"]]
                    server_ms.append(msg["latency_ms"])
                    for i in ids:
                        if i in sent_at:
                            reply_ms[i] = (now - sent_at[i]) * 1000

        read_task = asyncio.create_task(reader())
        start = time.perf_counter()
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            eid = f"b{n}"
            frame = json.dumps({"type": "chat", "id": eid, "user": {"id": f"u{n}", "name": f"观众{n}"},
                                "text": texts[n % len(texts)], "ts": time.time()}, ensure_ascii=False)
            sent_at[eid] = time.perf_counter()
            await ws.send(frame)
        print(json.dumps({"sent": total, "send_s": time.perf_counter() - start}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        read_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await read_task
    return {"reply_ms": reply_ms, "server_ms": server_ms}


def main(argv: list[str]) -> int:
    url, product_id, rate, total, texts_path = argv[0], argv[1], float(argv[2]), int(argv[3]), argv[4]
    with open(texts_path, encoding="utf-8") as f:
        texts = json.load(f)
    print(json.dumps(asyncio.run(drive(url, product_id, rate, total, texts))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
