"""The teleprompter overlay (cohost/server/static/overlay.html) in real headless Chromium.

The page talks to tests/overlay_harness.py, a stand-in server with the live server's /ws/overlay protocol.
Assertions are about what the streamer sees: visible text, banners, hidden sections.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="overlay harness needs starlette")
pytest.importorskip("uvicorn", reason="overlay harness needs uvicorn")

from chromium import launched_browser  # noqa: E402 (skips without Chromium)
from overlay_harness import OverlayHarness  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

XSS = "<img src=x onerror=alert(1)>"

BASE_STATE: dict[str, Any] = {
    "type": "state",
    "room": "r1",
    "paused": False,
    "pause_reason": None,
    "product": {
        "id": "dress",
        "name": "法式碎花连衣裙",
        "link": 1,
        "price": 159,
        "facts": [["面料", "雪纺"], ["尺码", "S/M/L/XL"]],
        "selling_points": ["收腰显瘦", "带内衬不透"],
    },
    "questions": [
        {
            "key": "q1",
            "text": "有大码吗",
            "count": 12,
            "users": ["小王", "桃子"],
            "answer": "尺码到XL，适合145斤以内",
            "faq_id": "dress_plus",
            "product_id": "dress",
        },
        {
            "key": "q2",
            "text": "有口袋吗",
            "count": 3,
            "users": ["momo"],
            "answer": None,
            "faq_id": None,
            "product_id": "dress",
        },
    ],
    "talking_points": ["雪纺面料带内衬，不透", "收腰设计显瘦，梨形身材也能穿"],
    "talking_points_state": "ready",
    "ts": 1732250000.1,
}

SHOE_PRODUCT = {
    "id": "shoes",
    "name": "厚底老爹鞋",
    "link": 3,
    "price": 219.5,
    "facts": [["鞋码", "35-40"]],
    "selling_points": [],
}


def make_state(room: str, **changes: Any) -> dict[str, Any]:
    state = copy.deepcopy(BASE_STATE)
    state["room"] = room
    state.update(copy.deepcopy(changes))
    return state


@pytest.fixture(scope="module")
def harness() -> Iterator[OverlayHarness]:
    with OverlayHarness() as h:
        yield h


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as b:
        yield b


@pytest.fixture(autouse=True)
def _harness_accepts(harness: OverlayHarness) -> Iterator[None]:
    """A test that fails mid-way must not leave the harness refusing connections for the next one."""
    yield
    harness.accept_connections()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room per test, so one test's last state never leaks into another's page."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids. It also means the
    # escaping test checks the page's own DOM handling, not the CSP safety net.
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN", bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    dialogs: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))

    def on_console(msg: Any) -> None:
        # A refused websocket (the reconnect test) logs a console error by design; anything else is a bug.
        if msg.type == "error" and "WebSocket" not in msg.text:
            errors.append(msg.text)

    pg.on("console", on_console)

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    try:
        yield pg
    finally:
        context.close()
    assert not errors, f"page errors: {errors}"
    assert not dialogs, f"page opened dialogs: {dialogs}"


def open_overlay(page: Page, harness: OverlayHarness, room: str, **params: str) -> None:
    page.goto(harness.url(room=room, **params))
    page.evaluate("window.__loadMarker = 'first-load'")
    harness.wait_for_connections(room)


def test_product_and_questions_visible(page: Page, harness: OverlayHarness, room: str) -> None:
    """Product link/name/price, facts, '12 人在问' and the answer are shown in large text."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)

    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    expect(page.locator("#product-name")).to_be_visible()
    expect(page.locator("#product-link")).to_have_text("1号")
    expect(page.locator("#product-price")).to_have_text("¥159")
    expect(page.locator("#product-price")).to_be_visible()
    expect(page.locator("#product-title")).to_have_text(re.compile(r"1号\s*法式碎花连衣裙\s*¥159"))
    expect(page.locator(".fact")).to_have_text([re.compile("面料\\s*雪纺"), re.compile("尺码\\s*S/M/L/XL")])

    q1 = page.locator('.question[data-key="q1"]')
    expect(q1.locator(".count")).to_have_text("12 人在问")
    expect(q1.locator(".count")).to_be_visible()
    expect(q1.get_by_text("有大码吗")).to_be_visible()
    expect(q1.locator(".answer")).to_contain_text("尺码到XL，适合145斤以内")
    expect(q1.locator(".answer")).to_be_visible()
    expect(q1.locator(".users")).to_contain_text("小王")

    sizes = page.evaluate(
        """() => ({
            name: parseFloat(getComputedStyle(document.querySelector('#product-name')).fontSize),
            text: parseFloat(getComputedStyle(document.querySelector('.question .text')).fontSize),
            answer: parseFloat(getComputedStyle(document.querySelector('.question .answer')).fontSize),
            count: parseFloat(getComputedStyle(document.querySelector('.question .count')).fontSize),
        })"""
    )
    assert sizes["name"] >= 40, sizes
    assert min(sizes["text"], sizes["answer"], sizes["count"]) >= 32, sizes


def test_null_answer_shows_fallback(page: Page, harness: OverlayHarness, room: str) -> None:
    """A question without an answer tells the streamer to answer it out loud, styled apart from answers."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)

    q2 = page.locator('.question[data-key="q2"]')
    expect(q2.locator(".count")).to_have_text("3 人在问")
    expect(q2.locator(".answer")).to_have_text("暂无答案 — 请主播口头回答")
    expect(q2.locator(".answer")).to_be_visible()
    expect(q2.locator(".answer")).to_have_class(re.compile(r"\bno-answer\b"))
    expect(q2).to_have_attribute("data-answered", "false")
    colors = page.evaluate(
        """() => [...document.querySelectorAll('.question .answer')].map(e => getComputedStyle(e).color)"""
    )
    assert colors[0] != colors[1], "answered and unanswered rows should look different"


def test_null_product_shows_placeholder(page: Page, harness: OverlayHarness, room: str) -> None:
    """With no product on stage the page says 未上架商品 and shows no link or price."""
    harness.push(room, make_state(room, product=None))
    open_overlay(page, harness, room)

    expect(page.locator("#product-name")).to_have_text("未上架商品")
    expect(page.locator("#product-name")).to_be_visible()
    expect(page.locator("#product-link")).to_be_hidden()
    expect(page.locator("#product-price")).to_be_hidden()
    expect(page.locator(".fact")).to_have_count(0)


def test_new_state_replaces_old_without_reload(page: Page, harness: OverlayHarness, room: str) -> None:
    """A new snapshot (product change) re-renders in place: old questions go, the page is not reloaded."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")

    new_questions = [{"key": "s1", "text": "37码偏大吗", "count": 5, "users": ["阿花"], "answer": "正码，按平时穿"}]
    harness.push(room, make_state(room, product=SHOE_PRODUCT, questions=new_questions))

    expect(page.locator("#product-name")).to_have_text("厚底老爹鞋")
    expect(page.locator("#product-link")).to_have_text("3号")
    expect(page.locator("#product-price")).to_have_text("¥219.5")
    expect(page.locator(".question")).to_have_count(1)
    expect(page.locator('.question[data-key="s1"] .count')).to_have_text("5 人在问")
    expect(page.locator('.question[data-key="q1"]')).to_have_count(0)
    expect(page.get_by_text("有大码吗")).to_have_count(0)
    expect(page.locator(".fact")).to_have_text([re.compile("鞋码\\s*35-40")])
    assert page.evaluate("window.__loadMarker") == "first-load"

    # The same snapshot again renders the same page (idempotent).
    before = page.locator("#panel").inner_text()
    harness.push(room, make_state(room, product=SHOE_PRODUCT, questions=new_questions))
    page.wait_for_function("window.cohostOverlay.renders >= 3")
    assert page.locator("#panel").inner_text() == before


def test_at_most_five_questions_in_server_order(page: Page, harness: OverlayHarness, room: str) -> None:
    """Only the server's top five questions are shown, in the order it sent them."""
    questions = [
        {"key": f"k{i}", "text": f"问题{i}", "count": 20 - i, "users": [], "answer": f"回答{i}"} for i in range(7)
    ]
    harness.push(room, make_state(room, questions=questions))
    open_overlay(page, harness, room)

    expect(page.locator(".question")).to_have_count(5)
    keys = page.locator(".question").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys == ["k0", "k1", "k2", "k3", "k4"]
    # All five fit on a 1080p canvas.
    bottom = page.locator(".question").nth(4).bounding_box()
    assert bottom is not None and bottom["y"] + bottom["height"] <= 1080


def test_paused_banner_shows_and_clears(page: Page, harness: OverlayHarness, room: str) -> None:
    """Paused shows a visible banner with the reason and dims suggestions; resuming removes both."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    expect(page.locator("#paused-banner")).to_be_hidden()

    harness.push(room, make_state(room, paused=True, pause_reason="主播正在讲解"))
    banner = page.locator("#paused-banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("暂停")
    expect(banner).to_contain_text("主播正在讲解")
    page.wait_for_function("parseFloat(getComputedStyle(document.querySelector('#suggestions')).opacity) < 0.6")

    harness.push(room, make_state(room, paused=False))
    expect(banner).to_be_hidden()
    page.wait_for_function("parseFloat(getComputedStyle(document.querySelector('#suggestions')).opacity) === 1")


def test_talking_points_render_and_withdraw(page: Page, harness: OverlayHarness, room: str) -> None:
    """Ready talking points are listed; generating shows a spinner; withdrawn hides them."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)

    points = page.locator(".talking-point")
    expect(points).to_have_text(["雪纺面料带内衬，不透", "收腰设计显瘦，梨形身材也能穿"])
    expect(points.first).to_be_visible()
    expect(page.locator("#points-spinner")).to_be_hidden()

    harness.push(room, make_state(room, talking_points=[], talking_points_state="generating"))
    expect(page.locator("#points-spinner")).to_be_visible()

    harness.push(room, make_state(room, talking_points_state="withdrawn"))
    expect(page.locator("#talking-points-section")).to_be_hidden()
    expect(points).to_have_count(0)
    expect(page.get_by_text("雪纺面料带内衬，不透")).to_have_count(0)


def test_viewer_text_is_escaped(page: Page, harness: OverlayHarness, room: str) -> None:
    """Markup in viewer text, names and answers shows literally and creates no elements."""
    product = dict(BASE_STATE["product"], name=f"裙子{XSS}", facts=[[XSS, XSS]])
    questions = [{"key": XSS, "text": f"有大码吗{XSS}", "count": 2, "users": [XSS], "answer": f"有{XSS}"}]
    harness.push(room, make_state(room, product=product, questions=questions, talking_points=[XSS]))
    open_overlay(page, harness, room)

    expect(page.locator(".question .text")).to_have_text(f"有大码吗{XSS}")
    expect(page.get_by_text(f"有大码吗{XSS}")).to_be_visible()
    expect(page.locator(".question .answer")).to_contain_text(f"有{XSS}")
    expect(page.locator("#product-name")).to_have_text(f"裙子{XSS}")
    expect(page.locator(".talking-point")).to_have_text([XSS])
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('img, [onerror]').length") == 0


def test_transparent_background_for_obs(page: Page, harness: OverlayHarness, room: str) -> None:
    """?transparent=1 makes the page background fully transparent; the default is dark."""
    background = "() => [getComputedStyle(document.documentElement).backgroundColor, getComputedStyle(document.body).backgroundColor]"
    harness.push(room, make_state(room))
    open_overlay(page, harness, room)
    for color in page.evaluate(background):
        assert color != "rgba(0, 0, 0, 0)", color

    open_overlay(page, harness, room, transparent="1")
    assert page.evaluate(background) == ["rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    panel = page.evaluate("getComputedStyle(document.querySelector('#panel')).backgroundColor")
    assert panel != "rgba(0, 0, 0, 0)", "the panel itself stays dark and readable"


def test_reconnects_after_drop(page: Page, harness: OverlayHarness, room: str) -> None:
    """When the socket drops the page shows 连接中…, retries, and renders the next state without reloading."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room, token="s3cret")
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    status = page.locator("#connection-status")
    expect(status).to_be_hidden()
    assert {"room": room, "token": "s3cret", "accepted": True} in harness.connections

    harness.drop_connections(reject_new=True)
    expect(status).to_be_visible()
    expect(status).to_have_text("连接中…")
    # The last state stays on screen while reconnecting.
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    page.wait_for_function("window.cohostOverlay.reconnects >= 1")
    # The page counts a retry when it starts one; wait until the server has actually refused one.
    deadline = time.monotonic() + 10
    while not any(c["room"] == room and not c["accepted"] for c in harness.connections):
        assert time.monotonic() < deadline, "no refused reconnect reached the server"
        time.sleep(0.02)

    harness.push(room, make_state(room, product=SHOE_PRODUCT, questions=[]))
    harness.accept_connections()
    harness.wait_for_connections(room)
    expect(page.locator("#product-name")).to_have_text("厚底老爹鞋")
    expect(status).to_be_hidden()
    expect(page.locator(".question")).to_have_count(0)
    expect(page.get_by_text("暂无观众提问")).to_be_visible()
    assert page.evaluate("window.__loadMarker") == "first-load"
    reconnects = [c for c in harness.connections if c["room"] == room]
    assert all(c["token"] == "s3cret" for c in reconnects) and len(reconnects) >= 3


def test_default_room_and_unknown_messages(page: Page, harness: OverlayHarness) -> None:
    """Without ?room the page joins 'default'; unknown message types and bad JSON are ignored."""
    page.goto(f"{harness.base_url}/overlay")
    page.evaluate("window.__loadMarker = 'first-load'")
    harness.wait_for_connections("default")
    expect(page.locator("#connection-status")).to_be_hidden()

    harness.send_raw("default", '{"type": "hello", "product": null}')
    harness.send_raw("default", "not json")
    harness.send_raw("default", "[1, 2]")
    harness.push("default", make_state("default"))
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    assert page.evaluate("window.cohostOverlay.renders") == 1


def test_long_text_never_spills_off_screen(page: Page, harness: OverlayHarness, room: str) -> None:
    """Long questions and answers wrap and clamp; rows that do not fit are hidden whole, never cut in half."""
    long_q = "这个裙子我身高165体重120斤平时穿M码的话应该拍哪个码比较合适呀会不会显胖" * 2
    long_a = "建议拍M码，版型偏宽松，腰部有松紧，120斤穿M刚好，喜欢宽松一点可以拍L码，肩宽的姐妹建议拍大一码" * 2
    questions = [
        {
            "key": f"L{i}",
            "text": long_q,
            "count": 30 - i,
            "users": ["一位名字特别特别长的观众朋友"] * 5,
            "answer": long_a,
        }
        for i in range(5)
    ]
    harness.push(room, make_state(room, questions=questions))
    open_overlay(page, harness, room)
    expect(page.locator(".question")).to_have_count(5)
    page.screenshot(path="/tmp/overlay_long.png")

    panel = page.locator("#panel").bounding_box()
    assert panel is not None and panel["y"] + panel["height"] <= 1080
    visible = page.locator(".question:visible")
    assert 1 <= visible.count() <= 5
    expect(visible.first).to_have_attribute("data-key", "L0")
    for i in range(visible.count()):
        box = visible.nth(i).bounding_box()
        assert box is not None and box["y"] + box["height"] <= panel["y"] + panel["height"], (i, box)
        assert box["x"] + box["width"] <= 1920
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    clipped = page.locator('.question[data-clipped="true"]')
    assert visible.count() + clipped.count() == 5
    expect(page.locator(".question .count").first).to_have_text("30 人在问")


def test_screenshot(page: Page, harness: OverlayHarness, room: str) -> None:
    """Saves /tmp/overlay.png of a full 1080p state for a human look."""
    questions = [
        {
            "key": "q1",
            "text": "有大码吗",
            "count": 12,
            "users": ["小王", "桃子", "阿花", "momo"],
            "answer": "尺码到XL，适合145斤以内",
        },
        {"key": "q2", "text": "有口袋吗", "count": 3, "users": ["momo"], "answer": None},
        {"key": "q3", "text": "会不会透", "count": 8, "users": ["小李"], "answer": "雪纺面料带内衬，浅色也不透"},
        {"key": "q4", "text": "能机洗吗", "count": 2, "users": ["豆豆"], "answer": "建议手洗或洗衣袋轻柔模式"},
        {"key": "q5", "text": "什么时候发货", "count": 6, "users": ["阿杰"], "answer": "付款后48小时内发货，默认中通"},
    ]
    harness.push(room, make_state(room, questions=questions, paused=True, pause_reason="主播正在讲解"))
    open_overlay(page, harness, room)
    expect(page.locator(".question")).to_have_count(5)
    expect(page.locator("#paused-banner")).to_be_visible()
    page.wait_for_function("parseFloat(getComputedStyle(document.querySelector('#suggestions')).opacity) < 0.35")
    page.screenshot(path="/tmp/overlay_paused.png")
    harness.push(room, make_state(room, questions=questions))
    expect(page.locator("#paused-banner")).to_be_hidden()
    page.wait_for_timeout(300)  # let the dimming transition finish
    page.screenshot(path="/tmp/overlay.png")
    assert Path("/tmp/overlay.png").stat().st_size > 10_000
