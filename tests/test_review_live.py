"""Hold-for-review end to end: the real server (dialog.review: hold), an ingest websocket that owns the room's replies,
the real /overlay and /admin pages in headless Chromium, and the audit log afterwards.

A viewer asks; the reply waits on the overlay; Enter sends it and the ingest socket gets it; X drops one, which never
comes; one left alone expires at its deadline and leaves the page. On /admin a moderator approves one with a click and
drops one with X, and switches the room's mode, which the overlay shows. The audit log has every outcome and who
decided. Screenshots go to $COHOST_SCREENSHOTS, else /tmp/shots.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from chromium import live_server_thread, sync_api  # noqa: E402 (skips without Chromium)
from page_fixtures import *  # noqa: E402,F403 (browser, new_page, shots)
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.slow
TOKEN = "review-live-test-token"
ROOM = "r1"
DEADLINE_S = 5.0  # short, so that a reply left alone expires within the test; long enough to click in time
WAIT_MS = 15_000
expect = sync_api.expect


class Ingest:
    """The room's ingest websocket (the reply owner), read on a thread: every frame the server sent it."""

    def __init__(self, port: int, room: str) -> None:
        # entered like `with connect(...)`: the bare form warns, and warnings are errors in this suite
        self.ws = connect(f"ws://127.0.0.1:{port}/ws/ingest?room={room}").__enter__()
        self.frames: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for text in self.ws:
                self.frames.append(json.loads(text))
        except Exception as e:  # reported by wait_reply; a normal close ends the loop without one
            self.error = e

    def send(self, event: dict[str, Any]) -> None:
        self.ws.send(json.dumps({**event, "ts": time.time()}, ensure_ascii=False))

    def chat(self, eid: str, uid: str, name: str, text: str) -> None:
        self.send({"type": "chat", "id": eid, "user": {"id": uid, "name": name}, "text": text})

    def replies(self, eid: str) -> list[dict[str, Any]]:
        def answers(f: dict[str, Any]) -> bool:
            to = f.get("in_reply_to")
            return to == eid or (isinstance(to, list) and eid in to)
        return [f for f in list(self.frames) if f.get("type") == "reply" and answers(f)]

    def wait_reply(self, eid: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not (got := self.replies(eid)):
            assert self.error is None, f"the ingest reader failed: {self.error!r}"
            assert time.monotonic() < deadline, f"no reply to {eid} within {timeout} s; frames: {self.frames}"
            time.sleep(0.05)
        return got[0]

    def close(self) -> None:
        self.ws.__exit__(None, None, None)
        self._thread.join(5)


def api(port: int, path: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


@pytest.fixture(scope="module")
def server(engine) -> Iterator[int]:
    dialog = engine.config.dialog.model_copy(update={"review": "hold", "deadline_s": DEADLINE_S, "min_interval_s": 0})
    cfg = engine.config.model_copy(update={"dialog": dialog})
    with live_server_thread(engine, config=cfg, admin_token=TOKEN) as (_app, port):
        yield port


@pytest.fixture
def pages(new_page: Any) -> Any:
    """Pages on the real server, under its CSP."""
    return lambda width=1280, height=720: new_page(width, height, bypass_csp=False)


def audit_rows(port: int) -> list[dict[str, Any]]:
    return api(port, f"/api/shops/default/audit?room={ROOM}&limit=500")["rows"]


def wait_audit(port: int, pred, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The audit log is written by a thread: poll until `pred(rows)`."""
    deadline = time.monotonic() + timeout
    while not pred(rows := audit_rows(port)):
        assert time.monotonic() < deadline, f"audit log never matched; rows: {rows}"
        time.sleep(0.2)
    return rows


def test_hold_for_review_on_the_overlay_and_admin_end_to_end(server, pages, shots):
    port = server
    ingest = Ingest(port, ROOM)
    try:
        ingest.send({"type": "product", "product_id": "dress"})
        overlay = pages()
        overlay.goto(f"http://127.0.0.1:{port}/overlay?room={ROOM}&by=小美")
        expect(overlay.locator("#product-name")).to_have_text("法式碎花连衣裙", timeout=WAIT_MS)
        switch = overlay.locator("#review-switch")
        expect(switch.get_by_role("button", name="先审后发")).to_have_attribute("aria-pressed", "true")
        held = overlay.locator("#held > li.held")
        panel = overlay.locator("#review")

        # 1. A question the catalog answers: the reply waits on the overlay; Enter sends it to the reply owner.
        ingest.chat("e1", "u1", "小王", "包邮吗")
        expect(held).to_have_count(1, timeout=WAIT_MS)
        expect(held.first.locator(".held-text")).to_contain_text("全场包邮")
        expect(held.first.locator(".held-meta")).to_contain_text("小王")
        expect(held.first.locator(".held-countdown")).to_have_text(re.compile(r"^[1-5] 秒$"))
        assert ingest.replies("e1") == []  # held: nothing went out yet
        overlay.screenshot(path=str(shots / "review-live-overlay-1280.png"))
        overlay.keyboard.press("Enter")
        reply = ingest.wait_reply("e1")
        assert "全场包邮" in reply["text"] and reply["text"].startswith("@小王")
        expect(panel).to_be_hidden()

        # 2. Dropped with X: never sent, not even after its deadline.
        ingest.chat("e2", "u2", "桃子", "发什么快递")
        expect(held).to_have_count(1, timeout=WAIT_MS)
        expect(held.first.locator(".held-text")).to_contain_text("中通")
        overlay.keyboard.press("x")
        expect(panel).to_be_hidden()

        # 3. Left alone: it counts down and leaves the page at its deadline, unsent.
        ingest.chat("e3", "u3", "阿花", "有运费险吗")
        expect(held).to_have_count(1, timeout=WAIT_MS)
        shown_at = time.monotonic()
        expect(held.first.locator(".held-text")).to_contain_text("运费险")
        expect(held).to_have_count(0, timeout=int((DEADLINE_S + 5) * 1000))
        waited = time.monotonic() - shown_at
        assert waited >= DEADLINE_S - 2.5, f"left the page after {waited:.1f} s, before its deadline"
        assert ingest.replies("e2") == [] and ingest.replies("e3") == []

        # 4. /admin: a moderator approves one with a click (the reply owner gets it) and drops one with X.
        admin = pages()
        admin.goto(f"http://127.0.0.1:{port}/admin#token={TOKEN}")
        card = admin.get_by_test_id("review-card")
        room_box = card.locator(f'[data-testid="review-room"][data-room="{ROOM}"]')
        expect(room_box).to_be_visible(timeout=WAIT_MS)
        expect(room_box.get_by_test_id("review-mode-hold")).to_have_attribute("aria-pressed", "true")
        admin.get_by_test_id("review-by").fill("运营小李")
        rows = card.get_by_test_id("held-row")

        ingest.chat("e4", "u4", "momo", "有大码吗")
        expect(rows).to_have_count(1, timeout=WAIT_MS)
        expect(rows.first.get_by_test_id("held-text")).to_contain_text("XL")
        expect(rows.first.get_by_test_id("held-asked")).to_contain_text("momo")
        expect(rows.first.get_by_test_id("held-left")).to_have_text(re.compile(r"^\d 秒后放弃$"))
        rows.first.get_by_test_id("held-approve").click()
        reply = ingest.wait_reply("e4")
        assert "XL" in reply["text"]
        expect(rows).to_have_count(0, timeout=WAIT_MS)

        ingest.chat("e5", "u5", "豆豆", "会不会透")
        expect(rows).to_have_count(1, timeout=WAIT_MS)
        expect(held).to_have_count(1, timeout=WAIT_MS)  # the overlay lists it too
        admin.locator("body").click(position={"x": 5, "y": 300})  # the reviewer field keeps its keys; the page takes them
        admin.keyboard.press("x")
        expect(rows).to_have_count(0, timeout=WAIT_MS)
        expect(held).to_have_count(0, timeout=WAIT_MS)  # gone from the overlay as well
        expect(room_box.get_by_test_id("review-log")).to_contain_text("运营小李（管理页面） 拒绝了", timeout=WAIT_MS)
        expect(overlay.locator("#review-log li").first).to_contain_text("运营小李（后台） 拒绝了", timeout=WAIT_MS)

        # 5. The mode switch: /admin turns review off (the overlay shows it, replies go straight out), the overlay
        # turns it back on (/admin shows it).
        room_box.get_by_test_id("review-mode-auto").click()
        expect(switch.get_by_role("button", name="自动发送")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        ingest.chat("e6", "u6", "阿杰", "有几个颜色")  # (包邮吗 was answered within 20 s: it would not be again)
        assert "两个颜色" in ingest.wait_reply("e6")["text"]
        switch.get_by_role("button", name="先审后发").click()
        expect(room_box.get_by_test_id("review-mode-hold")).to_have_attribute("aria-pressed", "true", timeout=WAIT_MS)
        assert ingest.replies("e2") == [] and ingest.replies("e3") == [] and ingest.replies("e5") == []
    finally:
        ingest.close()

    # 6. The audit log: every outcome, and who decided.
    def complete(rows: list[dict[str, Any]]) -> bool:
        outcomes = {r["outcome"] for r in rows}
        return {"held", "approved", "sent", "rejected", "expired"} <= outcomes and sum(
            r["outcome"] == "sent" for r in rows) >= 3

    rows = wait_audit(port, complete)
    by_text: dict[str, list[tuple[str, str | None]]] = {}
    for r in rows:
        for t in r.get("viewer_texts") or []:
            by_text.setdefault(t, []).append((r["outcome"], r.get("actor")))
    assert ("approved", "overlay:小美") in by_text["包邮吗"] and ("sent", None) in [(o, None) for o, _ in by_text["包邮吗"]]
    assert ("held", None) in by_text["包邮吗"]
    assert ("rejected", "overlay:小美") in by_text["发什么快递"]
    assert "sent" not in {o for o, _ in by_text["发什么快递"]}
    assert {o for o, _ in by_text["有运费险吗"]} == {"held", "expired"}
    assert ("approved", "admin:运营小李") in by_text["有大码吗"] and "sent" in {o for o, _ in by_text["有大码吗"]}
    assert ("rejected", "admin:运营小李") in by_text["会不会透"]
    assert "sent" not in {o for o, _ in by_text["会不会透"]}


def test_screenshots_of_the_admin_section_with_held_replies(server, pages, shots):
    """Two held replies in a room on /admin, at 1280 and 390 px wide: nothing overflows the card."""
    port = server
    ingest = Ingest(port, "r2")
    try:
        ingest.send({"type": "product", "product_id": "dress"})
        views = [(1280, 900), (390, 844)]
        admins = []
        for w, hgt in views:
            page = pages(w, hgt)
            page.goto(f"http://127.0.0.1:{port}/admin#token={TOKEN}")
            expect(page.get_by_test_id("review-card")).to_be_visible(timeout=WAIT_MS)
            admins.append(page)
        ingest.chat("s1", "v1", "小王", "包邮吗")
        ingest.chat("s2", "v2", "阿花", "有大码吗")
        for (w, _), page in zip(views, admins, strict=True):
            room_box = page.locator('[data-testid="review-room"][data-room="r2"]')
            expect(room_box.get_by_test_id("held-row")).to_have_count(2, timeout=WAIT_MS)
            card = page.get_by_test_id("review-card")
            card.screenshot(path=str(shots / f"review-admin-{w}.png"))
            card_box = card.bounding_box()
            assert card_box is not None
            for i in range(2):
                row = room_box.get_by_test_id("held-row").nth(i)
                for part in ("held-approve", "held-reject", "held-text", "held-left"):
                    b = row.get_by_test_id(part).bounding_box()
                    assert b is not None, part
                    assert b["x"] >= card_box["x"] and b["x"] + b["width"] <= card_box["x"] + card_box["width"] + 0.5, (
                        w, part, b, card_box)
            overflow = page.evaluate("""() => [...document.querySelectorAll('#review-card, #review-card *')]
                .filter((e) => e.getClientRects().length && e.scrollWidth > e.clientWidth + 1
                        && getComputedStyle(e).overflowX !== 'visible' && getComputedStyle(e).textOverflow !== 'ellipsis')
                .map((e) => e.className || e.tagName)""")
            assert overflow == [], overflow
            assert page.evaluate("document.documentElement.scrollWidth") <= w
            page.screenshot(path=str(shots / f"review-admin-page-{w}.png"))
    finally:
        ingest.close()
