"""Hold-for-review on the teleprompter overlay (cohost/server/static/overlay.html) in real headless Chromium.

The page talks to tests/overlay_harness.py, which records the control frames the page sends back. What is checked:
the 待审核 panel with its countdown, one key or one tap per reply (Enter/A sends, X/Backspace/Delete drops, 1-9 and the
arrows pick), the 审核模式 switch, the review log, the ignored counter, warnings on talking points, and that the OBS
layout (on air) shows none of the review controls. Screenshots go to $COHOST_SCREENSHOTS, else /tmp/shots.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="overlay harness needs starlette")
pytest.importorskip("uvicorn", reason="overlay harness needs uvicorn")

from overlay_harness import OverlayHarness  # noqa: E402
from page_fixtures import *  # noqa: E402,F403 (browser, harness, new_page, room, shots)
from playwright.sync_api import Page, expect  # noqa: E402

WARNING = "含广告法禁用词“最”，别照念"


def held(rid: str, text: str, in_s: float, users: list[str], questions: list[str]) -> dict[str, Any]:
    deadline = time.time() + in_s
    return {"id": rid, "text": text, "users": users, "questions": questions, "count": len(users),
            "deadline": deadline, "remaining_s": round(in_s, 1)}


def review_state(room: str, *, mode: str = "hold", items: list[dict[str, Any]] | None = None,
                 log: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    """A current server's state in hold-for-review mode: two replies wait, one talking point carries a warning."""
    if items is None:
        items = [
            held("ship_free", "@小王 @桃子 全场包邮，新疆、西藏、青海需补10元运费。", 9, ["小王", "桃子"], ["包邮吗", "包油吗"]),
            held("dress_plus", "@阿花 尺码到XL，适合145斤以内，腰围有弹力，微胖也能穿。", 25, ["阿花"], ["有大码吗"]),
        ]
    state: dict[str, Any] = {
        "type": "state", "room": room, "paused": False, "pause_reason": None, "speaking": False, "transcript": [],
        "product": {"id": "dress", "name": "法式碎花连衣裙", "link": 1, "price": 159, "unknown": False,
                    "facts": [["面料", "雪纺"], ["尺码", "S/M/L/XL"], ["颜色", "碎花蓝/碎花粉"]]},
        "questions": [
            {"key": "q1", "text": "有大码吗", "count": 6, "users": ["阿花", "momo"], "answer": "尺码到XL，适合145斤以内",
             "faq_id": "dress_plus", "product_id": "dress", "replied": False, "spoken": False},
            {"key": "q2", "text": "包邮吗", "count": 4, "users": ["小王", "桃子"], "answer": "全场包邮，新疆、西藏、青海需补10元运费",
             "faq_id": "ship_free", "product_id": None, "replied": False, "spoken": False},
            {"key": "q3", "text": "有口袋吗", "count": 2, "users": ["豆豆"], "answer": None, "faq_id": None,
             "product_id": "dress", "replied": False, "spoken": False},
        ],
        "talking_points": ["雪纺面料带内衬，不透", "这是全网最显瘦的一条裙子", "收腰设计，梨形身材也能穿"],
        "talking_point_warnings": [None, WARNING, None],
        "talking_points_state": "ready",
        "review": {"mode": mode, "held": items, "log": log or []},
        "ignored": {"spam": 3, "blocked_viewer": 2, "flood": 4, "blocked_by_gate": 1},
        "ts": time.time(),
    }
    state.update(copy.deepcopy(changes))
    return state


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    """The review panel is checked at a laptop's size, where space for it is tight."""
    return new_page(1280, 720)


def open_overlay(page: Page, harness: OverlayHarness, room: str, **params: str) -> None:
    page.goto(harness.url(room=room, **params))
    harness.wait_for_connections(room)
    expect(page.locator("body")).to_have_attribute("data-connection", "connected")


def controls(harness: OverlayHarness, room: str) -> list[dict[str, Any]]:
    return [f for f in harness.frames(room) if isinstance(f, dict)]


def sent(harness: OverlayHarness, room: str, n: int) -> list[dict[str, Any]]:
    """The control frames the page sent, once there are `n` of them."""
    return [f for f in harness.wait_for_frames(room, n) if isinstance(f, dict)]


def settle(page: Page) -> None:
    """Before checking that nothing was sent: let key and click handlers run and any frame arrive."""
    page.wait_for_timeout(300)


def test_held_replies_show_with_a_countdown_and_enter_sends_the_first(page: Page, harness: OverlayHarness,
                                                                       room: str) -> None:
    harness.push(room, review_state(room))
    open_overlay(page, harness, room)

    panel = page.locator("#review")
    expect(panel).to_be_visible()
    expect(panel.locator(".section-title")).to_have_text("待审核")
    items = page.locator("#held > li.held")
    expect(items).to_have_count(2)
    first, second = items.nth(0), items.nth(1)
    expect(first).to_have_attribute("data-id", "ship_free")  # the nearer deadline first
    expect(first).to_have_attribute("data-selected", "true")
    expect(second).to_have_attribute("data-selected", "false")
    expect(first.locator(".held-text")).to_have_text("@小王 @桃子 全场包邮，新疆、西藏、青海需补10元运费。")
    expect(first.locator(".held-meta")).to_contain_text("小王、桃子")
    expect(first.locator(".held-meta")).to_contain_text("2 人问")
    expect(first.locator(".held-meta")).to_contain_text("问：包油吗")
    expect(first.get_by_role("button", name=re.compile("^发送"))).to_be_visible()
    expect(first.get_by_role("button", name=re.compile("^不发"))).to_be_visible()

    # The countdown runs on the page's clock between states: 9 s, then fewer a second later.
    countdown = first.locator(".held-countdown")
    expect(countdown).to_have_text(re.compile(r"^[89] 秒$"))
    before = int(countdown.get_attribute("data-remaining") or 0)
    page.wait_for_timeout(1600)
    after = int(countdown.get_attribute("data-remaining") or 0)
    assert 1 <= before - after <= 2, (before, after)
    expect(second.locator(".held-countdown")).to_have_text(re.compile(r"^2[2-5] 秒$"))

    page.keyboard.press("Enter")
    assert sent(harness, room, 1) == [{"type": "control", "action": "approve", "id": "ship_free", "by": "主播"}]
    # One key per reply: the sent one leaves at once and the next is selected, so Enter again would not resend it.
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-id", "dress_plus")
    expect(items.first).to_have_attribute("data-selected", "true")

    page.keyboard.press("x")
    assert sent(harness, room, 2)[1:] == [{"type": "control", "action": "reject", "id": "dress_plus", "by": "主播"}]
    expect(panel).to_be_hidden()
    page.keyboard.press("Enter")  # nothing left to decide: nothing sent
    settle(page)
    assert len(controls(harness, room)) == 2


def test_tapping_the_buttons_sends_with_the_name_from_the_url(page: Page, harness: OverlayHarness, room: str) -> None:
    harness.push(room, review_state(room))
    open_overlay(page, harness, room, by="小美")
    items = page.locator("#held > li.held")
    expect(items).to_have_count(2)

    items.nth(1).get_by_role("button", name=re.compile("^不发")).click()
    assert sent(harness, room, 1) == [{"type": "control", "action": "reject", "id": "dress_plus", "by": "小美"}]
    expect(items).to_have_count(1)
    items.first.get_by_role("button", name=re.compile("^发送")).click()
    assert sent(harness, room, 2)[1:] == [{"type": "control", "action": "approve", "id": "ship_free", "by": "小美"}]
    expect(page.locator("#review")).to_be_hidden()


def test_number_keys_and_arrows_pick_and_every_reject_key_drops(new_page: Callable[..., Page],
                                                               harness: OverlayHarness, room: str) -> None:
    page = new_page(1920, 1300)  # tall enough for all five
    items = [held(f"r{i}", f"第{i}条回复", 20 + i, [f"观众{i}"], ["问题"]) for i in range(1, 6)]
    harness.push(room, review_state(room, items=items))
    open_overlay(page, harness, room)
    rows = page.locator("#held > li.held")
    expect(rows).to_have_count(5)
    expect(page.locator("#held > li.held:visible")).to_have_count(5)
    selected = page.locator('#held > li.held[data-selected="true"]')

    page.keyboard.press("3")
    expect(selected).to_have_attribute("data-id", "r3")
    page.keyboard.press("ArrowDown")
    expect(selected).to_have_attribute("data-id", "r4")
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(selected).to_have_attribute("data-id", "r2")
    page.keyboard.press("a")
    settle(page)
    page.keyboard.press("Delete")  # the selection went back to the first (r1)
    settle(page)
    page.keyboard.press("Backspace")  # then r3
    settle(page)
    page.keyboard.press("5")  # two left (r4, r5): no fifth item, the selection stays
    page.keyboard.press("2")
    page.keyboard.press("A")
    assert [(f["action"], f["id"]) for f in sent(harness, room, 4)] == [
        ("approve", "r2"), ("reject", "r1"), ("reject", "r3"), ("approve", "r5")]
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "r4")
    # The numbers shown follow the list as it is now.
    expect(rows.first.locator(".held-index")).to_have_text("1")


def test_replies_that_do_not_fit_wait_below_and_cannot_be_picked(page: Page, harness: OverlayHarness,
                                                                room: str) -> None:
    items = [held(f"r{i}", f"第{i}条回复：全场包邮，新疆、西藏、青海需补10元运费", 20 + i, [f"观众{i}"], ["包邮吗"])
             for i in range(1, 8)]
    harness.push(room, review_state(room, items=items))
    open_overlay(page, harness, room)
    expect(page.locator("#held > li.held")).to_have_count(7)
    shown = page.locator("#held > li.held:visible").count()
    assert 1 <= shown < 7, shown
    expect(page.locator("#review-count")).to_have_text(f"7 条等你决定 · 后面还有 {7 - shown} 条")
    page.keyboard.press(str(shown + 1))  # not on screen: not picked
    page.keyboard.press("End")  # not a review key
    expect(page.locator('#held > li.held[data-selected="true"]')).to_have_attribute("data-id", "r1")
    page.keyboard.press(str(shown))
    expect(page.locator('#held > li.held[data-selected="true"]')).to_have_attribute("data-id", f"r{shown}")
    for _ in range(3):
        page.keyboard.press("ArrowDown")  # stops at the last one on screen
    expect(page.locator('#held > li.held[data-selected="true"]')).to_have_attribute("data-id", f"r{shown}")


def test_a_reply_leaves_when_the_server_stops_listing_it_and_a_lost_decision_shows_again(
        page: Page, harness: OverlayHarness, room: str) -> None:
    state = review_state(room)
    harness.push(room, state)
    open_overlay(page, harness, room)
    rows = page.locator("#held > li.held")
    expect(rows).to_have_count(2)

    gone = copy.deepcopy(state)
    gone["review"]["held"] = state["review"]["held"][1:]  # the first expired on the server
    harness.push(room, gone)
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "dress_plus")
    expect(rows.first).to_have_attribute("data-selected", "true")

    # Sent, but the server never acted on it (the frame was lost): it comes back so it can be decided again.
    page.keyboard.press("Enter")
    expect(page.locator("#review")).to_be_hidden()
    harness.push(room, gone)
    expect(rows).to_have_count(1, timeout=8000)
    expect(rows.first).to_have_attribute("data-id", "dress_plus")


def test_without_a_connection_a_decision_is_not_lost(page: Page, harness: OverlayHarness, room: str) -> None:
    harness.push(room, review_state(room))
    open_overlay(page, harness, room)
    expect(page.locator("#held > li.held")).to_have_count(2)
    harness.drop_connections(reject_new=True)
    expect(page.locator("body")).to_have_attribute("data-connection", "connecting")
    page.keyboard.press("Enter")
    expect(page.locator("#review-note")).to_be_visible()
    expect(page.locator("#review-note")).to_contain_text("未连接")
    expect(page.locator("#held > li.held")).to_have_count(2)  # still there, to be sent once connected
    assert controls(harness, room) == []


def test_the_switch_sends_review_hold_and_review_auto(page: Page, harness: OverlayHarness, room: str) -> None:
    auto = review_state(room, mode="auto", items=[])
    harness.push(room, auto)
    open_overlay(page, harness, room, by="场控阿杰")
    switch = page.locator("#review-switch")
    expect(switch).to_be_visible()
    expect(switch).to_contain_text("审核模式")
    auto_button = switch.get_by_role("button", name="自动发送")
    hold_button = switch.get_by_role("button", name="先审后发")
    expect(auto_button).to_have_attribute("aria-pressed", "true")
    expect(hold_button).to_have_attribute("aria-pressed", "false")

    auto_button.click()  # already on: nothing to send
    hold_button.click()
    assert sent(harness, room, 1) == [{"type": "control", "action": "review_hold", "by": "场控阿杰"}]

    log = [{"id": None, "text": None, "action": "review_hold", "by": "场控阿杰", "ts": time.time()}]
    harness.push(room, review_state(room, mode="hold", log=log))
    expect(hold_button).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#held > li.held")).to_have_count(2)
    expect(page.locator("#review-log li").first).to_have_text("场控阿杰 切换为 先审后发")
    page.keyboard.press("Enter")  # a clicked switch does not keep the keys: Enter sends the first reply
    settle(page)
    auto_button.click()
    assert [(f["action"], f.get("id")) for f in sent(harness, room, 3)[1:]] == [
        ("approve", "ship_free"), ("review_auto", None)]

    # In auto mode replies go out by themselves: a reply still listed is not offered for review.
    harness.push(room, review_state(room, mode="auto"))
    expect(auto_button).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#review")).to_be_hidden()


def test_the_log_shows_who_decided_the_last_three(page: Page, harness: OverlayHarness, room: str) -> None:
    now = time.time()
    log = [
        {"id": "ship_free", "text": "@小王 全场包邮", "action": "approve", "by": "主播", "ts": now},
        {"id": "dress_plus", "text": "@阿花 尺码到XL", "action": "reject", "by": "admin:运营小李", "ts": now - 5},
        {"id": None, "text": None, "action": "review_hold", "by": "主播", "ts": now - 9},
        {"id": "x", "text": "更早的一条", "action": "approve", "by": "主播", "ts": now - 20},
    ]
    harness.push(room, review_state(room, log=log))
    open_overlay(page, harness, room)
    entries = page.locator("#review-log li")
    expect(entries).to_have_text(["主播 批准了“@小王 全场包邮”", "运营小李（后台） 拒绝了“@阿花 尺码到XL”",
                                  "主播 切换为 先审后发"])


def test_warnings_on_talking_points_and_the_ignored_counter(page: Page, harness: OverlayHarness, room: str) -> None:
    harness.push(room, review_state(room))
    open_overlay(page, harness, room)
    points = page.locator(".talking-point")
    expect(points).to_have_count(3)
    expect(points.nth(1).locator(".point-text")).to_have_text("这是全网最显瘦的一条裙子")
    tag = points.nth(1).locator(".point-warn")
    expect(tag).to_be_visible()
    expect(tag).to_have_text("⚠ " + WARNING)
    assert points.nth(0).locator(".point-warn").count() == 0
    assert points.nth(2).locator(".point-warn").count() == 0
    color = tag.evaluate("e => getComputedStyle(e).borderTopColor")
    assert color == "rgb(255, 176, 32)", color  # amber

    counter = page.locator("#ignored")
    expect(counter).to_be_visible()
    expect(counter).to_have_text("已忽略 广告/刷屏 7 · 拉黑 2")  # spam 3 + flood 4; blocked viewers 2


def test_an_older_server_without_review_shows_no_review_controls(page: Page, harness: OverlayHarness,
                                                                 room: str) -> None:
    state = review_state(room)
    for key in ("review", "ignored", "talking_point_warnings"):
        del state[key]
    harness.push(room, state)
    open_overlay(page, harness, room)
    expect(page.locator(".talking-point")).to_have_count(3)
    expect(page.locator("#review")).to_be_hidden()
    expect(page.locator("#toolbar")).to_be_hidden()
    expect(page.locator(".point-warn")).to_have_count(0)


@pytest.mark.parametrize("position", ["right", "bottom"])
def test_the_obs_layout_never_shows_review_controls(new_page: Callable[..., Page], harness: OverlayHarness,
                                                    room: str, position: str, shots: Path) -> None:
    """On air viewers may see the OBS panel: no held replies, no switch, no counter, no keys, no point with a warning."""
    page = new_page(1920, 1080)
    log = [{"id": "ship_free", "text": "@小王 全场包邮", "action": "approve", "by": "主播", "ts": time.time()}]
    harness.push(room, review_state(room, log=log))
    open_overlay(page, harness, room, layout="obs", position=position)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    for sel in ("#review", "#toolbar", "#review-switch", "#ignored", "#review-log"):
        expect(page.locator(sel)).to_be_hidden()
    expect(page.locator("#held > li")).to_have_count(0)
    body = page.locator("body").inner_text()
    for words in ("待审核", "审核模式", "先审后发", "已忽略", "@小王 @桃子", "@阿花", "批准了", "人问"):
        assert words not in body, words
    page.keyboard.press("Enter")
    page.keyboard.press("x")
    page.mouse.click(960, 540)
    settle(page)
    assert controls(harness, room) == []
    # Viewers see this panel: the point with a banned word is not shown at all (on screen it would be the ad).
    expect(page.locator(".talking-point").nth(1)).to_be_hidden()
    assert "最显瘦" not in page.locator("body").inner_text()
    expect(page.locator(".talking-point").nth(0)).to_be_visible()
    page.screenshot(path=str(shots / f"review-obs-{position}.png"), omit_background=True)


OVERFLOW_JS = """(sel) => [...document.querySelectorAll(sel)].filter((e) => e.getClientRects().length)
  .filter((e) => e.scrollWidth > e.clientWidth + 1).map((e) => e.className || e.id)"""


@pytest.mark.parametrize("size", [(1280, 720), (390, 844)], ids=["1280", "390"])
def test_screenshots_fit_without_overlap(new_page: Callable[..., Page], harness: OverlayHarness, room: str,
                                         shots: Path, size: tuple[int, int]) -> None:
    """Two held replies, a warned talking point, the log and the counter: everything inside the panel, buttons
    big enough to tap, nothing cut sideways."""
    width, height = size
    page = new_page(width, height, scale=2 if width < 500 else 1)
    log = [{"id": "x1", "text": "@豆豆 建议手洗或洗衣袋轻柔模式", "action": "approve", "by": "主播", "ts": time.time()},
           {"id": "x2", "text": "@momo 付款后48小时内发货", "action": "reject", "by": "admin:运营小李", "ts": time.time()}]
    harness.push(room, review_state(room, log=log))
    open_overlay(page, harness, room)
    expect(page.locator("#held > li.held")).to_have_count(2)
    page.wait_for_timeout(200)  # fonts and the fit after them
    page.screenshot(path=str(shots / f"review-teleprompter-{width}.png"))
    expect(page.locator(".point-warn")).to_be_visible()
    panel = page.locator("#panel").bounding_box()
    assert panel is not None
    for sel in ("#review", "#toolbar", "#held > li.held >> nth=0", "#held > li.held >> nth=1", ".point-warn",
                "#review-switch", "#ignored"):
        box = page.locator(sel).first.bounding_box()
        assert box is not None, sel
        assert box["x"] >= panel["x"] - 0.5 and box["x"] + box["width"] <= panel["x"] + panel["width"] + 0.5, sel
        assert box["y"] >= panel["y"] - 0.5 and box["y"] + box["height"] <= panel["y"] + panel["height"] + 0.5, sel
    for i in range(2):
        row = page.locator("#held > li.held").nth(i)
        row_box = row.bounding_box()
        for name in ("^发送", "^不发"):
            b = row.get_by_role("button", name=re.compile(name)).bounding_box()
            assert b is not None and b["height"] >= 36 and b["width"] >= 60, (name, b)
            assert row_box is not None and b["x"] + b["width"] <= row_box["x"] + row_box["width"] + 0.5
    review_box = page.locator("#review").bounding_box()
    toolbar_box = page.locator("#toolbar").bounding_box()
    questions_box = page.locator("#suggestions").bounding_box()
    assert review_box and toolbar_box and questions_box
    assert review_box["y"] + review_box["height"] <= questions_box["y"] + 0.5  # the panel does not cover questions
    assert questions_box["y"] + questions_box["height"] <= toolbar_box["y"] + 0.5
    assert page.evaluate(OVERFLOW_JS, "#review, .held, .held-actions, #toolbar, #review-switch") == []
    # the text is readable (not clamped away) and Chinese renders in a CJK font, not as boxes
    first_text = page.locator("#held .held-text").first
    assert first_text.evaluate("e => e.getBoundingClientRect().height") > 16
