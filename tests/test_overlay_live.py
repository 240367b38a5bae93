"""The overlay page against the real server, in real headless Chromium: what the streamer sees while
viewers chat and the product changes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from chromium import launched_browser, live_server_thread, sync_api  # noqa: E402 (skips without Chromium)
from websockets.sync.client import connect  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(engine) -> Iterator[int]:
    with live_server_thread(engine) as (_app, port):
        yield port


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with launched_browser() as b:
        yield b


def send(ws, event: dict) -> None:
    ws.send(json.dumps({**event, "ts": time.time()}, ensure_ascii=False))


def test_streamer_sees_product_questions_counts_and_pause(server, browser):
    """Product on stage, '3 人在问' with the catalog answer, the unanswered question, then the pause banner."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"http://127.0.0.1:{server}/overlay?room=live1")
    expect = sync_api.expect
    with connect(f"ws://127.0.0.1:{server}/ws/ingest?room=live1") as ws:
        send(ws, {"type": "product", "product_id": "dress"})
        expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙", timeout=10_000)
        expect(page.locator("#product-price")).to_contain_text("159")
        for i, name in enumerate(["小王", "桃子", "momo"]):
            send(ws, {"type": "chat", "id": f"e{i}", "user": {"id": f"u{i}", "name": name}, "text": "有大码吗"})
        send(ws, {"type": "chat", "id": "e9", "user": {"id": "u9", "name": "阿杰"}, "text": "有口袋吗"})
        top = page.locator(".question").first
        expect(top.locator(".count")).to_have_text("3 人在问", timeout=10_000)
        expect(top.locator(".answer")).to_contain_text("XL")
        expect(page.locator(".question .no-answer")).to_have_count(1)
        expect(page.locator(".talking-point").first).to_be_visible(timeout=10_000)

        send(ws, {"type": "speech", "state": "start"})
        expect(page.locator("#paused-banner")).to_be_visible(timeout=10_000)
        expect(page.locator("#paused-banner")).to_contain_text("主播正在讲解")

        send(ws, {"type": "product", "product_id": "fryer"})
        expect(page.locator("#product-name")).to_have_text("家用空气炸锅", timeout=10_000)
        expect(page.locator(".question")).to_have_count(0)  # the dress questions are withdrawn
        page.screenshot(path="/tmp/overlay_live.png")
    page.close()


def test_a_refused_overlay_says_why_instead_of_connecting(server, browser, monkeypatch):
    """With an overlay token configured, a page opened with a wrong one shows that the token is wrong."""
    monkeypatch.setenv("COHOST_OVERLAY_TOKEN", "right")
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{server}/overlay?room=refused&token=wrong")
        status = page.locator("#connection-status")
        sync_api.expect(status).to_have_text("令牌无效，请检查 OBS 中的地址", timeout=10_000)
        monkeypatch.setenv("COHOST_OVERLAY_TOKEN", "wrong")  # the operator fixes it on the server side
        sync_api.expect(status).to_have_text("已连接", timeout=20_000)
    finally:
        page.close()


def test_an_overlay_refused_for_a_full_server_says_so_and_joins_when_a_room_frees(engine, browser, monkeypatch):
    """With every room in use the page says the server is full; once a room is vacant it connects. (An
    overlay takes a room's place only when the overlay token is set: without it, overlay-only rooms have
    their own cap, so pages cannot squat the rooms relays need.)"""
    monkeypatch.setenv("COHOST_OVERLAY_TOKEN", "ov")
    cfg = engine.config.model_copy(update={"server": engine.config.server.model_copy(update={"max_rooms": 1})})
    with live_server_thread(engine, config=cfg) as (_app, port):
        page = browser.new_page()
        try:
            with connect(f"ws://127.0.0.1:{port}/ws/ingest?room=busy") as ws:
                send(ws, {"type": "product", "product_id": "dress"})
                page.goto(f"http://127.0.0.1:{port}/overlay?room=mine&token=ov")
                status = page.locator("#connection-status")
                sync_api.expect(status).to_have_text("服务器直播间已满，请关闭不用的直播间", timeout=10_000)
            sync_api.expect(status).to_have_text("已连接", timeout=20_000)
        finally:
            page.close()
