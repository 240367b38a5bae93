"""A whole sale in miniature: chat into several rooms while an owner works the catalog, and one crash.

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--rate 200] [--rooms 4] [--kill-at 0.5]

Starts `cohost run` as its own process on a fresh store (the packaged sample shop), then for --minutes:

- sends --rate chat messages a second in all, spread over --rooms ingest websockets, each message from its own
  viewer (the demo recording's danmaku, cycled), and times every chat reply from send to receipt;
- every minute, as a catalog owner would: previews and uploads a CSV of FAQs, edits one FAQ, rolls back to the
  version before, and opens the gap report (GET /gaps), timing each call;
- samples the server's resident memory every 5 s;
- at --kill-at of the run, kills the server with SIGKILL right after starting an upload with wait=false (the worst
  moment: a version is building), starts it again on the same store and reconnects the rooms.

It prints one JSON line per minute (messages, replies, reply p50/p95, replies after the deadline, RSS, owner call
times) and a summary: RSS first/last minute, versions the owner was told were made against versions the store
lists at the end (lost: made but missing), replies after deadline, errors. The server's replies use the config's
deadline; min_interval_s and user_cooldown_s are 0 so that every room may reply as often as it can, as in
`cohost bench loop`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets
from served import ROOT, free_port, pct, rss_mb, texts

TOKEN = "soak-admin-token"
SHOP = "default"










class Server:
    """`cohost run` in its own process on a store that outlives it."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.config = workdir / "config.yaml"
        self.config.write_text(
            f"cache_dir: {workdir / 'cache'}\n"
            "dialog:\n  min_interval_s: 0\n  user_cooldown_s: 0\n"
            f"store:\n  path: {workdir / 'catalog.sqlite3'}\n", encoding="utf-8")
        self.log = (workdir / "server.log").open("ab")
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        env = {**os.environ, "COHOST_ADMIN_TOKEN": TOKEN}
        self.proc = subprocess.Popen([sys.executable, "-m", "cohost", "--config", str(self.config), "run",
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    async def start(self) -> float:
        """Start the server; returns the seconds until /healthz answered."""
        t0 = time.monotonic()
        self.spawn()
        assert self.proc is not None
        async with httpx.AsyncClient(timeout=2) as c:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log.name}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await c.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return time.monotonic() - t0
                await asyncio.sleep(0.25)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Minute:
    def __init__(self) -> None:
        self.sent = 0
        self.reply_ms: list[float] = []
        self.late = 0
        self.rss: list[float] = []
        self.owner: dict[str, float | str] = {}
        self.errors: list[str] = []


class Soak:
    def __init__(self, server: Server, *, minutes: float, rate: float, rooms: int, kill_at: float) -> None:
        self.server = server
        self.minutes = minutes
        self.rate = rate
        self.rooms = rooms
        self.kill_at = kill_at
        self.deadline_ms = 6000.0
        self.texts = texts()
        self.start = 0.0
        self.stats: list[Minute] = []
        self.made: set[int] = set()
        self.restarts: list[dict[str, Any]] = []
        self.up = asyncio.Event()  # clear while the server is down: senders wait
        self.n = 0

    def minute(self) -> Minute:
        i = int((time.monotonic() - self.start) // 60)
        while len(self.stats) <= i:
            self.stats.append(Minute())
        return self.stats[i]

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/api/shops/{SHOP}"

    async def room(self, r: int, end: float) -> None:
        """One room's ingest socket: sends its share of the rate, times replies; reconnects after the crash."""
        share = self.rate / self.rooms
        url = f"ws://127.0.0.1:{self.server.port}/ws/ingest?room=soak{r}"
        while time.monotonic() < end:
            await self.up.wait()
            sent_at: dict[str, float] = {}
            try:
                async with websockets.connect(url, max_size=2**22, open_timeout=10) as ws:
                    await ws.send(json.dumps({"type": "product", "product_id": "dress"}))

                    async def reader(sent_at: dict[str, float] = sent_at) -> None:
                        async for raw in ws:
                            msg = json.loads(raw)
                            if msg.get("type") != "reply":
                                continue
                            now = time.monotonic()
                            ids = msg["in_reply_to"] if isinstance(msg["in_reply_to"], list) else [msg["in_reply_to"]]
                            m = self.minute()
                            for i in ids:
                                if (t := sent_at.pop(i, None)) is not None:
                                    ms = (now - t) * 1000
                                    m.reply_ms.append(ms)
                                    m.late += ms > self.deadline_ms

                    read = asyncio.create_task(reader())
                    t0 = time.monotonic()
                    k = 0
                    try:
                        while time.monotonic() < end and self.up.is_set():
                            delay = t0 + k / share - time.monotonic()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            self.n += 1
                            eid = f"s{r}-{self.n}"
                            text = self.texts[self.n % len(self.texts)]
                            frame = {"type": "chat", "id": eid, "user": {"id": f"v{self.n}", "name": f"观众{self.n}"},
                                     "text": text, "ts": time.time()}
                            sent_at[eid] = time.monotonic()
                            await ws.send(json.dumps(frame, ensure_ascii=False))
                            self.minute().sent += 1
                            k += 1
                            if len(sent_at) > 50_000:  # unanswered ids from long ago
                                cutoff = time.monotonic() - 60
                                for i in [i for i, t in sent_at.items() if t < cutoff]:
                                    del sent_at[i]
                        await asyncio.sleep(self.deadline_ms / 1000 + 1)  # replies still in flight
                    finally:
                        read.cancel()
                        with contextlib.suppress(BaseException):
                            await read
            except (OSError, websockets.WebSocketException) as e:
                if self.up.is_set():
                    self.minute().errors.append(f"room {r}: {type(e).__name__}: {e}")
                await asyncio.sleep(0.5)

    async def sample_memory(self, end: float) -> None:
        while time.monotonic() < end:
            proc = self.server.proc
            if proc is not None and proc.poll() is None and (mb := rss_mb(proc.pid)):
                self.minute().rss.append(mb)
            await asyncio.sleep(5)

    async def owner_round(self, c: httpx.AsyncClient, i: int, *, crash: bool = False) -> None:
        """What an owner does in a minute: preview and upload FAQs, edit one, roll back, open the gap report."""
        m = self.minute()
        csv = ("product_id,id,question,answer,variants\n"
               f"dress,soak_{i % 3},第{i}批有现货吗？,第{i}批现货，48小时内发货。,现在有货吗|有现货吗\n").encode()

        async def timed(name: str, coro: Any) -> httpx.Response:
            t0 = time.monotonic()
            r = await coro
            m.owner[name] = round((time.monotonic() - t0) * 1000, 1)
            if r.status_code >= 400:
                m.errors.append(f"{name}: {r.status_code} {r.text[:200]}")
            return r

        preview = {"filename": "soak.csv", "dry_run": "true"}
        await timed("preview_ms", c.post(f"{self.api}/catalog/upload", params=preview, content=csv))
        params = {"filename": "soak.csv", "wait": "false" if crash else "true"}
        r = await timed("upload_ms", c.post(f"{self.api}/catalog/upload", params=params, content=csv))
        if r.status_code < 300:
            self.made.add(r.json()["version"]["version"])
        if crash:
            return
        r = await timed("edit_ms", c.put(f"{self.api}/faqs/dress_wash", json={
            "id": "dress_wash", "product_id": "dress", "question": "能机洗吗",
            "answer": f"可以机洗，30度以下轻柔模式（第{i}次改）。", "variants": ["可以放洗衣机吗"]}))
        if r.status_code < 300:
            self.made.add(r.json()["version"]["version"])
            before = r.json()["version"]["version"] - 1
            r = await timed("rollback_ms", c.post(f"{self.api}/rollback", json={"version": before}))
            if r.status_code < 300:
                self.made.add(r.json()["version"]["version"])
        await timed("gaps_ms", c.get(f"{self.api}/gaps"))

    async def owner(self, end: float) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        crashed = False
        i = 0
        async with httpx.AsyncClient(headers=headers, timeout=120) as c:
            while time.monotonic() < end:
                round_start = time.monotonic()
                crash = not crashed and round_start - self.start >= self.kill_at * self.minutes * 60
                try:
                    await self.owner_round(c, i, crash=crash)
                except httpx.HTTPError as e:
                    self.minute().errors.append(f"owner: {type(e).__name__}: {e}")
                if crash:
                    crashed = True
                    await asyncio.sleep(0.3)  # the build has started
                    self.up.clear()
                    self.server.kill()
                    killed_at = time.monotonic() - self.start
                    took = await self.server.start()
                    self.up.set()
                    status = (await c.get(f"{self.api}/versions")).json()
                    self.restarts.append({"killed_at_s": round(killed_at, 1), "back_after_s": round(took, 1),
                                          "versions_after": [(v["version"], v["status"]) for v in status[:3]]})
                i += 1
                await asyncio.sleep(max(0.0, round_start + 60 - time.monotonic()))

    async def run(self) -> dict[str, Any]:
        await self.server.start()
        self.up.set()
        self.start = time.monotonic()
        end = self.start + self.minutes * 60
        printer = asyncio.create_task(self.print_minutes(end))
        await asyncio.gather(self.owner(end), self.sample_memory(end),
                             *(self.room(r, end) for r in range(self.rooms)))
        printer.cancel()
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            listed = {v["version"]: v["status"] for v in (await c.get(f"{self.api}/versions")).json()}
        self.server.stop()
        full = [m for m in self.stats[: int(self.minutes)] if m.rss]
        return {
            "summary": True, "minutes": self.minutes, "rate": self.rate, "rooms": self.rooms,
            "sent": sum(m.sent for m in self.stats), "replied": sum(len(m.reply_ms) for m in self.stats),
            "reply_p95_ms_worst_minute": max((pct(m.reply_ms, 0.95) or 0) for m in self.stats),
            "replies_after_deadline": sum(m.late for m in self.stats),
            "rss_mb_first_minute": max(full[0].rss) if full else None,
            "rss_mb_last_minute": max(full[-1].rss) if full else None,
            "rss_mb_max": max((max(m.rss) for m in full), default=None),
            "versions_made": len(self.made),
            "versions_lost": sorted(v for v in self.made if v not in listed),
            "versions_failed": sorted(v for v, s in listed.items() if s == "failed"),
            "restarts": self.restarts,
            "errors": [e for m in self.stats for e in m.errors][:20],
        }

    async def print_minutes(self, end: float) -> None:
        printed = 0
        while True:
            await asyncio.sleep(1)
            done = int((time.monotonic() - self.start) // 60)
            while printed < min(done, len(self.stats)):
                m = self.stats[printed]
                print(json.dumps({"minute": printed + 1, "sent": m.sent, "replied": len(m.reply_ms),
                                  "reply_p50_ms": pct(m.reply_ms, 0.5), "reply_p95_ms": pct(m.reply_ms, 0.95),
                                  "after_deadline": m.late, "rss_mb": max(m.rss) if m.rss else None,
                                  **m.owner, "errors": len(m.errors)}, ensure_ascii=False), flush=True)
                printed += 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--rooms", type=int, default=4)
    p.add_argument("--kill-at", type=float, default=0.5, help="when to kill the server, as a fraction of the run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cohost-soak-") as tmp:
        server = Server(Path(tmp), free_port())
        try:
            result = asyncio.run(Soak(server, minutes=args.minutes, rate=args.rate, rooms=args.rooms,
                                      kill_at=args.kill_at).run())
        finally:
            server.stop()
    print(json.dumps(result, ensure_ascii=False))
    return 0 if not result["versions_lost"] and not result["replies_after_deadline"] else 1


if __name__ == "__main__":
    sys.exit(main())
