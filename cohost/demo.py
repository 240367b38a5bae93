"""`cohost demo`: the answer engine on sample danmaku from the sample catalog, in the terminal.

The events use the ingest format of the live room (a "product" event puts a product on stage, "chat"
events are danmaku), so the same file can later be replayed into a real room.
"""

from __future__ import annotations

import json
import secrets
import time

from .config import packaged
from .engine import AnswerEngine, Message

# Shipped inside the package (cohost/samples/demo), so `cohost demo` works from a plain `pip install`.
DEMO_EVENTS = packaged("samples", "demo", "terminal.jsonl")
DEMO_SESSION = packaged("samples", "demo", "session.jsonl")


async def run_live_demo(engine: AnswerEngine, *, speed: float, port: int | None, room: str,
                        exit_after_replay: bool = False) -> int:
    """Start the server, replay the demo recording into a room, print each chat reply as it happens.

    After the replay the server stays up until Ctrl-C, so the overlay and /admin can still be opened;
    ``exit_after_replay`` stops it at once instead (tests, CI)."""
    from .live import live_server, until_interrupted
    from .sources.replay import ingest_url, load_recording, replay

    events = load_recording(DEMO_SESSION)
    token = secrets.token_urlsafe(12)
    # The demo's catalog store is a throwaway one: edits made on /admin during the demo are not kept.
    async with live_server(engine, port=port, admin_token=token) as (app, bound):
        host = engine.config.server.host
        overlay = f"http://{host}:{bound}/overlay?room={room}"
        admin = f"http://{host}:{bound}/admin#token={token}"
        print(f"cohost demo — {engine.catalog.shop.name}; replaying {len(events)} events at {speed}x")
        print(f"overlay (open it in a browser or add it to OBS): {overlay}")
        print(f"catalog admin (try a question, upload FAQs, see unanswered ones): {admin}\n")

        def show(msg: dict[str, object]) -> None:
            if msg.get("type") == "reply":
                print(f"💬 {msg['text']}    ({msg.get('faq_id')}, {msg.get('latency_ms')} ms)", flush=True)
            elif msg.get("type") == "heard":
                print(f"🎙 主播：{msg['text'] or '（没听清）'}", flush=True)

        rooms = app.state.hub.rooms

        def settled() -> bool:  # every message decided and every reply sent (or past its deadline)
            return room in rooms and rooms[room].runner.idle

        result = await replay(ingest_url(host, bound, room), events, speed=speed, on_message=show,
                              linger_s=engine.config.dialog.deadline_s + 2, settled=settled)
        stats = dict(rooms[room].runner.room.stats)
        print(f"\nsent {result.sent} events; {len(result.replies)} chat replies; outcomes: "
              + ", ".join(f"{k} {v}" for k, v in sorted(stats.items())), flush=True)
        if exit_after_replay:
            return 0
        print("\nreplay finished; the server stays up until you press Ctrl-C:")
        print(f"  overlay: {overlay}")
        print(f"  admin:   {admin}", flush=True)
        await until_interrupted()
    print("stopped")
    return 0


def run_terminal_demo(engine: AnswerEngine) -> int:
    shop = engine.catalog.shop.name
    print(f"cohost demo — {shop}: {len(engine.catalog.products)} products, {engine.catalog.faq_count()} FAQs "
          f"({engine.embedder.name})\n")
    on_stage: str | None = None
    for line in DEMO_EVENTS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        if event["type"] == "product":
            on_stage = event["product_id"]
            product = engine.catalog.product(on_stage)
            name = product.name if product else on_stage
            print(f"── 上架: {name} ({on_stage}) ──")
            continue
        if event["type"] != "chat":
            continue
        user = event["user"]["name"]
        t0 = time.perf_counter()
        d = engine.answer(Message(event["text"], user=user, on_stage=on_stage))
        ms = (time.perf_counter() - t0) * 1000
        print(f"[{user}] {event['text']}")
        if d.reply:
            print(f"   💬 {d.reply}    ({d.entry.id if d.entry else ''}, {ms:.1f} ms)")
        else:
            print(f"   ·  silent — {d.intent.label}: {d.reason}    ({ms:.1f} ms)")
    print("\nTry your own: cohost ask --on-stage dress '有大码吗'")
    return 0
