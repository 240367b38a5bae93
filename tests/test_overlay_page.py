"""The teleprompter overlay (cohost/server/static/overlay.html) in real headless Chromium.

The page talks to tests/overlay_harness.py, a stand-in server with the live server's /ws/overlay protocol.
Assertions are about what the streamer sees: visible text, indicators, hidden sections, and for the OBS layout the
pixels OBS composites over the camera. Screenshots go to $COHOST_SCREENSHOTS (else a pytest temp dir): the
teleprompter idle and while the streamer talks, on a phone, and the OBS panels over a bright camera-like image.
"""

from __future__ import annotations

import base64
import copy
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="overlay harness needs starlette")
pytest.importorskip("uvicorn", reason="overlay harness needs uvicorn")

from overlay_harness import OverlayHarness  # noqa: E402
from page_fixtures import *  # noqa: E402,F403 (browser, harness, new_page, page, room, shots)
from playwright.sync_api import Page, expect  # noqa: E402

W, H = 1920, 1080
XSS = "<img src=x onerror=alert(1)>"
SPEECH = "主播正在讲解"

# What an older server sends: no questions[].replied, product.unknown or speaking. The page treats them as false.
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

# A busy moment on a current server: five questions, two already answered in chat.
BUSY_PRODUCT = dict(BASE_STATE["product"], unknown=False,
                    facts=[["面料", "雪纺"], ["尺码", "S/M/L/XL"], ["颜色", "碎花蓝/碎花粉"], ["发货", "48小时内"]])
BUSY_QUESTIONS: list[dict[str, Any]] = [
    {"key": "q1", "text": "有大码吗", "count": 12, "users": ["小王", "桃子", "阿花", "momo"],
     "answer": "尺码到XL，适合145斤以内", "replied": True},
    {"key": "q2", "text": "有口袋吗", "count": 3, "users": ["momo"], "answer": None, "replied": False},
    {"key": "q3", "text": "会不会透", "count": 8, "users": ["小李"], "answer": "雪纺面料带内衬，浅色也不透",
     "replied": True},
    {"key": "q4", "text": "能机洗吗", "count": 2, "users": ["豆豆"], "answer": "建议手洗或洗衣袋轻柔模式",
     "replied": False},
    {"key": "q5", "text": "什么时候发货", "count": 6, "users": ["阿杰"], "answer": "付款后48小时内发货，默认中通",
     "replied": False},
]
BUSY_POINTS = ["雪纺面料带内衬，不透", "收腰设计显瘦，梨形身材也能穿", "今天下单送同色系腰带"]


def make_state(room: str, **changes: Any) -> dict[str, Any]:
    state = copy.deepcopy(BASE_STATE)
    state["room"] = room
    state.update(copy.deepcopy(changes))
    return state


def busy_state(room: str, **changes: Any) -> dict[str, Any]:
    busy = {"product": BUSY_PRODUCT, "questions": BUSY_QUESTIONS, "talking_points": BUSY_POINTS, "speaking": False}
    return make_state(room, **{**busy, **changes})


def speaking_state(room: str, **changes: Any) -> dict[str, Any]:
    """The streamer talks: a current server sends speaking and pauses replies for it."""
    return busy_state(room, **{"speaking": True, "paused": True, "pause_reason": SPEECH, **changes})


def open_overlay(page: Page, harness: OverlayHarness, room: str, **params: str) -> None:
    page.goto(harness.url(room=room, **params))
    page.evaluate("window.__loadMarker = 'first-load'")
    harness.wait_for_connections(room)


def box_of(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def boxes(page: Page, selector: str) -> list[dict[str, float] | None]:
    return [page.locator(selector).nth(i).bounding_box() for i in range(page.locator(selector).count())]


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


# For each matching element: its effective opacity (itself and every ancestor), any CSS filters on the way up, and
# the WCAG contrast ratio of its text colour against the backgrounds behind it, composited from the page up.
READABILITY_JS = """(sel) => {
  const parse = (c) => { const p = c.match(/[\\d.]+/g).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, under) => [0, 1, 2].map((i) => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  return [...document.querySelectorAll(sel)].filter((e) => e.getClientRects().length).map((e) => {
    let opacity = 1;
    const filters = [], backgrounds = [];
    for (let n = e; n && n.nodeType === 1; n = n.parentElement) {
      const s = getComputedStyle(n);
      opacity *= parseFloat(s.opacity);
      if (s.filter !== "none") filters.push(s.filter);
      backgrounds.push(parse(s.backgroundColor));
    }
    let bg = [0, 0, 0, 1];
    for (const b of backgrounds.reverse()) if (b[3] > 0) bg = over(b, bg);
    const fg = parse(getComputedStyle(e).color);
    const a = lum(over(fg, bg)), b = lum(bg);
    return {text: e.textContent, opacity, filters, contrast: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)};
  });
}"""

# Where a PNG (an omit_background screenshot) is not fully transparent: count and bounding box.
ALPHA_JS = """async (src) => {
  const img = new Image(); img.src = src; await img.decode();
  const c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
  const ctx = c.getContext("2d"); ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let visible = 0, opaque = 0, x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const a = d[(y * c.width + x) * 4 + 3];
    if (a === 0) continue;
    visible++; if (a >= 230) opaque++;
    if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
  }
  return {width: c.width, height: c.height, visible, opaque,
          box: visible ? {x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1} : null};
}"""

# OBS's job: the transparent overlay PNG over a bright, camera-like picture (daylight, a white window, skin and pale
# clothes). Returns the composite PNG and the luminance distribution inside `box` (the panel) and outside it.
COMPOSITE_JS = """async ({src, box}) => {
  const img = new Image(); img.src = src; await img.decode();
  const W = img.width, H = img.height;
  const c = document.createElement("canvas"); c.width = W; c.height = H;
  const ctx = c.getContext("2d");
  const g = ctx.createLinearGradient(0, 0, W, H);
  g.addColorStop(0, "#fffaf0"); g.addColorStop(0.55, "#ffe7bd"); g.addColorStop(1, "#fdfdfd");
  ctx.fillStyle = g; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#ffffff"; ctx.fillRect(W * 0.6, 0, W * 0.4, H * 0.6);             // a window in daylight
  ctx.fillStyle = "#e9f4ff"; ctx.fillRect(W * 0.64, H * 0.05, W * 0.14, H * 0.5);
  ctx.fillStyle = "#ffd9e4";                                                          // a pale dress, held up
  ctx.beginPath(); ctx.moveTo(W * 0.33, H * 0.55); ctx.lineTo(W * 0.57, H * 0.55);
  ctx.lineTo(W * 0.63, H); ctx.lineTo(W * 0.27, H); ctx.closePath(); ctx.fill();
  ctx.fillStyle = "#f6cfb8";                                                          // a face
  ctx.beginPath(); ctx.ellipse(W * 0.45, H * 0.35, W * 0.065, H * 0.15, 0, 0, Math.PI * 2); ctx.fill();
  ctx.fillStyle = "#fff4a8"; ctx.fillRect(0, H * 0.82, W, H * 0.18);                 // a bright table top
  ctx.drawImage(img, 0, 0);
  const lum = (r, g, b) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const d = ctx.getImageData(0, 0, W, H).data;
  const inL = [], outL = [];
  for (let y = 0; y < H; y += 1) for (let x = 0; x < W; x += 1) {
    const i = (y * W + x) * 4, L = lum(d[i], d[i + 1], d[i + 2]);
    const isIn = x >= box.x + 4 && x < box.x + box.width - 4 && y >= box.y + 4 && y < box.y + box.height - 4;
    const isOut = x < box.x - 2 || x >= box.x + box.width + 2 || y < box.y - 2 || y >= box.y + box.height + 2;
    if (isIn) inL.push(L); else if (isOut && (x % 4 === 0) && (y % 4 === 0)) outL.push(L);
  }
  const q = (a, p) => { const s = Float64Array.from(a).sort(); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
  return {png: c.toDataURL("image/png"), inside: {p50: q(inL, 0.5), p90: q(inL, 0.9), p99: q(inL, 0.99)},
          outside: {p10: q(outL, 0.1), p50: q(outL, 0.5)}};
}"""


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def alpha_map(new_page: Callable[..., Page], png: bytes) -> dict[str, Any]:
    return new_page().evaluate(ALPHA_JS, data_url(png))


def composite_over_bright(new_page: Callable[..., Page], png: bytes, box: dict[str, float], path: Path) -> dict:
    """Composite `png` over the bright picture, save it to `path`, and return the luminance stats."""
    result = new_page().evaluate(COMPOSITE_JS, {"src": data_url(png), "box": box})
    path.write_bytes(base64.b64decode(result.pop("png").split(",", 1)[1]))
    return result


def contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


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


def test_unknown_product_says_it_is_not_in_the_catalog(
    new_page: Callable[..., Page], harness: OverlayHarness, room: str
) -> None:
    """A product id the catalog lacks shows 商品不在商品库 with the id, and nothing invented (no link, price, facts)."""
    harness.push(room, make_state(room, product={"id": "sku_123456", "unknown": True}))
    for params in ({}, {"layout": "obs"}):
        page = new_page()
        open_overlay(page, harness, room, **params)
        expect(page.locator("#product-name")).to_have_text("商品不在商品库")
        expect(page.locator("#product-name")).to_be_visible()
        expect(page.locator("#product-id")).to_have_text("sku_123456")
        expect(page.locator("#product-id")).to_be_visible()
        expect(page.locator("#product")).to_have_attribute("data-unknown", "true")
        expect(page.locator("#product-link")).to_be_hidden()
        expect(page.locator("#product-price")).to_be_hidden()
        expect(page.locator(".fact")).to_have_count(0)
        text = page.locator("#product").inner_text()
        assert not re.search(r"未命名|undefined|null|¥", text), text
        name_color = page.evaluate("getComputedStyle(document.querySelector('#product-name')).color")
        assert name_color != "rgb(255, 255, 255)", "the warning should not look like a normal product name"

    # A known product says so explicitly on a current server and renders as before; the id chip goes away.
    harness.push(room, make_state(room, product=dict(BASE_STATE["product"], unknown=False)))
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    expect(page.locator("#product-id")).to_be_hidden()
    expect(page.locator("#product")).to_have_attribute("data-unknown", "false")
    expect(page.locator("#product-price")).to_have_text("¥159")


def test_questions_answered_in_chat_are_marked(new_page: Callable[..., Page], harness: OverlayHarness, room: str) -> None:
    """'✓ 已回复' shows on questions whose chat reply was sent (replied: true) and on no others; a missing field
    (an older server) counts as not replied."""
    questions = [
        dict(BASE_STATE["questions"][0], replied=True),
        dict(BASE_STATE["questions"][1], replied=False),
        {"key": "q3", "text": "会不会透", "count": 2, "users": [], "answer": "不透"},
    ]
    harness.push(room, make_state(room, questions=questions))
    for params in ({}, {"layout": "obs"}, {"layout": "obs", "position": "bottom"}):
        page = new_page()
        open_overlay(page, harness, room, **params)
        expect(page.locator(".question")).to_have_count(3)
        chips = page.locator(".question .replied")
        expect(chips).to_have_count(1)
        chip = page.locator('.question[data-key="q1"] .replied')
        expect(chip).to_be_visible()
        expect(chip).to_have_text("✓ 已回复")
        assert [page.locator(".question").nth(i).get_attribute("data-replied") for i in range(3)] == [
            "true", "false", "false"]
        # The chip sits on the card, next to the question, and is readable.
        assert inside(box_of(page, '.question[data-key="q1"] .replied'), box_of(page, '.question[data-key="q1"]'))
        (chip_look,) = page.evaluate(READABILITY_JS, '.question[data-key="q1"] .replied')
        assert chip_look["opacity"] == 1 and chip_look["contrast"] >= 7, chip_look

    # A reply going out later marks the row in place.
    harness.push(room, make_state(room, questions=[dict(q, replied=True) for q in questions]))
    expect(page.locator(".question .replied")).to_have_count(3)


def test_speaking_shows_a_small_indicator_and_keeps_cards_readable_and_still(
    page: Page, harness: OverlayHarness, room: str
) -> None:
    """While the streamer talks the teleprompter stays fully readable: no dimming or greying, a small
    '主播正在讲解' pill in the questions head, and nothing on the page moves when it comes and goes."""
    harness.push(room, busy_state(room))
    open_overlay(page, harness, room)
    expect(page.locator(".question")).to_have_count(5)
    pill = page.locator("#paused-banner")
    expect(pill).to_be_hidden()
    watched = ["#product", "#questions", "#suggestions", ".question", ".talking-point", "#talking-points-section"]
    before = {sel: boxes(page, sel) for sel in watched}
    looks_before = page.evaluate(READABILITY_JS, ".question .text, .question .answer, .question .count, .talking-point")
    card_before = page.locator('.question[data-key="q2"]').screenshot(animations="disabled")

    harness.push(room, speaking_state(room))
    expect(pill).to_be_visible()
    expect(pill).to_have_text(SPEECH)
    expect(pill).to_have_attribute("data-kind", "speaking")
    expect(page.locator("body")).to_have_attribute("data-speaking", "true")
    # Small: one line in the questions head, well under a card's height.
    pill_box, head_box = box_of(page, "#paused-banner"), box_of(page, "#questions-section .section-head")
    assert inside(pill_box, head_box), (pill_box, head_box)
    assert pill_box["height"] <= 48 and pill_box["width"] <= 400, pill_box
    # Nothing moved.
    assert {sel: boxes(page, sel) for sel in watched} == before
    # Nothing dimmed or greyed: every text keeps full opacity, no filter, and strong contrast.
    looks = page.evaluate(READABILITY_JS, ".question .text, .question .answer, .question .count, .talking-point")
    assert looks == looks_before
    for look in looks:
        assert look["opacity"] == 1 and not look["filters"], look
        assert look["contrast"] >= 7, look
    assert page.locator('.question[data-key="q2"]').screenshot(animations="disabled") == card_before

    # The operator pausing too, and then the streamer stopping: still nothing moves.
    harness.push(room, speaking_state(room, pause_reason="已手动暂停"))
    expect(pill).to_contain_text("已手动暂停")
    expect(pill).to_contain_text(SPEECH)
    assert {sel: boxes(page, sel) for sel in watched} == before
    harness.push(room, busy_state(room))
    expect(pill).to_be_hidden()
    assert {sel: boxes(page, sel) for sel in watched} == before


@pytest.mark.parametrize(
    ("changes", "text", "kind"),
    [
        ({"speaking": True, "paused": True, "pause_reason": SPEECH}, SPEECH, "speaking"),
        ({"paused": True, "pause_reason": SPEECH}, SPEECH, "speaking"),  # an older server: no speaking field
        ({"speaking": True, "paused": False}, SPEECH, "speaking"),
        ({"paused": True, "pause_reason": "已手动暂停"}, "已手动暂停", "paused"),
        ({"speaking": False, "paused": True, "pause_reason": "已手动暂停"}, "已手动暂停", "paused"),
        ({"speaking": True, "paused": True, "pause_reason": "已手动暂停"}, f"{SPEECH}· 已手动暂停", "speaking"),
        ({"paused": True, "pause_reason": None}, "提示已暂停", "paused"),
        ({"speaking": False, "paused": False}, None, None),
    ],
    ids=["speaking", "old-server-speech", "speaking-unpaused", "operator", "operator-new", "both", "no-reason",
         "idle"],
)
def test_status_pill_says_what_is_going_on(
    page: Page, harness: OverlayHarness, room: str, changes: dict[str, Any], text: str | None, kind: str | None
) -> None:
    harness.push(room, make_state(room, **changes))
    open_overlay(page, harness, room)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    pill = page.locator("#paused-banner")
    if text is None:
        expect(pill).to_be_hidden()
        return
    expect(pill).to_be_visible()
    expect(pill).to_have_text(text)
    expect(pill).to_have_attribute("data-kind", kind)


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


def test_transparent_background_and_layouts(new_page: Callable[..., Page], harness: OverlayHarness, room: str) -> None:
    """The default teleprompter is full screen on a dark page; layout=obs (and the older transparent=1) is one panel
    on a transparent page; layout=teleprompter&transparent=1 keeps the full panel on a clear page."""
    background = ("() => [getComputedStyle(document.documentElement).backgroundColor, "
                  "getComputedStyle(document.body).backgroundColor]")
    clear = ["rgba(0, 0, 0, 0)", "rgba(0, 0, 0, 0)"]
    harness.push(room, make_state(room))

    page = new_page()
    open_overlay(page, harness, room)
    for color in page.evaluate(background):
        assert color != "rgba(0, 0, 0, 0)", color
    assert page.evaluate("window.cohostOverlay.layout") == "teleprompter"
    panel = box_of(page, "#panel")
    assert panel["width"] * panel["height"] > 0.8 * W * H

    for params in ({"layout": "obs"}, {"transparent": "1"}):
        page = new_page()
        open_overlay(page, harness, room, **params)
        assert page.evaluate(background) == clear
        assert page.evaluate("window.cohostOverlay.layout") == "obs"
        expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
        color = page.evaluate("getComputedStyle(document.querySelector('#panel')).backgroundColor")
        assert color != "rgba(0, 0, 0, 0)", "the panel itself stays dark and readable"
        panel = box_of(page, "#panel")
        assert panel["width"] * panel["height"] <= 0.35 * W * H, panel

    page = new_page()
    open_overlay(page, harness, room, layout="teleprompter", transparent="1")
    assert page.evaluate(background) == clear
    assert page.evaluate("window.cohostOverlay.layout") == "teleprompter"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"right": W - 24, "width": 0.31 * W, "y": 24, "height": H - 48}),
        ({"position": "left", "width": "500"}, {"x": 24, "width": 500, "y": 24, "height": H - 48}),
        ({"position": "bottom", "height": "300px"}, {"x": 24, "width": W - 48, "bottom": H - 24, "height": 300}),
        ({"position": "top", "width": "60%", "height": "25%"}, {"x": 0.2 * W, "width": 0.6 * W, "y": 24,
                                                                "height": 0.25 * H}),
        ({"position": "right", "width": "480px", "height": "70%", "margin": "0"},
         {"right": W, "width": 480, "y": 0.15 * H, "height": 0.7 * H}),
    ],
    ids=["right-default", "left-500", "bottom-300", "top-60x25pct", "right-short-no-margin"],
)
def test_obs_panel_size_and_position_from_the_url(
    page: Page, harness: OverlayHarness, room: str, params: dict[str, str], expected: dict[str, float]
) -> None:
    """position/width/height/margin place the panel; everything shown stays inside it."""
    harness.push(room, busy_state(room))
    open_overlay(page, harness, room, layout="obs", **params)
    expect(page.locator(".question").first).to_be_visible()
    panel = box_of(page, "#panel")
    actual = dict(panel, right=panel["x"] + panel["width"], bottom=panel["y"] + panel["height"])
    for key, value in expected.items():
        assert abs(actual[key] - value) <= 1, (key, actual, expected)
    assert panel["width"] * panel["height"] <= 0.35 * W * H
    for sel in ("#product-name", "#product-price", ".question:visible", ".talking-point:visible", ".fact:visible"):
        for box in boxes(page, sel):
            assert box is not None and inside(box, panel), (sel, box, panel)
    expect(page.locator('.question[data-key="q1"] .answer')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    # Text sizes readable in the OBS preview.
    sizes = page.evaluate(
        """() => ['.question .text', '.question .answer', '#product-name']
            .map(s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize))"""
    )
    assert min(sizes) >= 24, sizes


@pytest.mark.parametrize("position", ["right", "bottom"])
def test_obs_page_is_fully_transparent_outside_the_panel(
    new_page: Callable[..., Page], harness: OverlayHarness, room: str, position: str
) -> None:
    """What OBS composites: pixels outside the panel have alpha 0 (the camera shows through untouched), the panel is
    opaque enough to read, and it covers at most 35% of the 1920x1080 picture."""
    page = new_page()
    harness.push(room, speaking_state(room))
    open_overlay(page, harness, room, layout="obs", position=position)
    expect(page.locator("#paused-banner")).to_be_visible()
    page.wait_for_timeout(100)
    panel = box_of(page, "#panel")
    png = page.screenshot(omit_background=True, animations="disabled")
    alpha = alpha_map(new_page, png)
    assert (alpha["width"], alpha["height"]) == (W, H)
    drawn = alpha["box"]
    assert drawn is not None
    assert inside(drawn, panel, slack=1), (drawn, panel)
    assert alpha["visible"] <= 0.35 * W * H, alpha
    # Inside the panel (all but its rounded corners) nearly every pixel is close to opaque.
    assert alpha["opaque"] >= 0.97 * panel["width"] * panel["height"], alpha


@pytest.mark.parametrize("position", ["right", "bottom"])
def test_obs_panel_is_readable_over_bright_video(
    new_page: Callable[..., Page], harness: OverlayHarness, room: str, shots: Path, position: str
) -> None:
    """Composited over a bright, camera-like picture the panel is dark and its text bright (contrast >= 7:1), and
    the picture around it is untouched. Saves obs_<position>_bright.png for a person to look at."""
    page = new_page()
    harness.push(room, speaking_state(room))
    open_overlay(page, harness, room, layout="obs", position=position)
    expect(page.locator(".question").first).to_be_visible()
    expect(page.locator('.question[data-key="q1"] .replied')).to_be_visible()
    page.wait_for_timeout(100)
    panel = box_of(page, "#panel")
    png = page.screenshot(omit_background=True, animations="disabled")
    (shots / f"obs_{position}_transparent.png").write_bytes(png)
    stats = composite_over_bright(new_page, png, panel, shots / f"obs_{position}_bright.png")
    assert stats["outside"]["p10"] >= 0.6, stats  # the test picture really is bright, and shows through
    assert stats["inside"]["p50"] <= 0.03, stats  # the panel is dark over it
    assert contrast(stats["inside"]["p99"], stats["inside"]["p50"]) >= 7, stats  # and its text bright on that
    for look in page.evaluate(READABILITY_JS, ".question .text, .question .answer, .question .count, #product-name"):
        assert look["opacity"] == 1 and look["contrast"] >= 7, look


def test_bad_url_params_fall_back_to_defaults(page: Page, harness: OverlayHarness, room: str) -> None:
    """Nonsense in position/width/height/margin/scale/max is ignored or clamped; the page still works."""
    harness.push(room, busy_state(room))
    open_overlay(page, harness, room, layout="obs", position="diagonal", width="abc", height="-5", margin="x",
                 scale="99", max="0")
    assert page.evaluate("window.cohostOverlay.position") == "right"
    expect(page.locator(".question")).to_have_count(1)  # max clamps to 1
    panel = box_of(page, "#panel")
    assert abs(panel["width"] - 0.31 * W) <= 1 and inside(panel, {"x": 0, "y": 0, "width": W, "height": H})
    expect(page.locator(".question .text")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_max_and_points_params(page: Page, harness: OverlayHarness, room: str) -> None:
    """max= caps the questions shown (server order kept); points=0 hides the talking points."""
    harness.push(room, busy_state(room))
    open_overlay(page, harness, room, layout="obs", max="3", points="0")
    expect(page.locator(".question")).to_have_count(3)
    keys = page.locator(".question").evaluate_all("els => els.map(e => e.dataset.key)")
    assert keys == ["q1", "q2", "q3"]
    expect(page.locator("#talking-points-section")).to_be_hidden()


def test_scale_makes_text_bigger(new_page: Callable[..., Page], harness: OverlayHarness, room: str) -> None:
    harness.push(room, busy_state(room))
    sizes = []
    for scale in ("1", "1.25"):
        page = new_page()
        open_overlay(page, harness, room, layout="obs", scale=scale)
        expect(page.locator(".question").first).to_be_visible()
        sizes.append(page.evaluate("parseFloat(getComputedStyle(document.querySelector('.question .text')).fontSize)"))
    assert abs(sizes[1] / sizes[0] - 1.25) < 0.01, sizes


@pytest.mark.parametrize("params", [{}, {"layout": "obs"}, {"layout": "obs", "position": "bottom"}],
                         ids=["teleprompter", "obs-right", "obs-bottom"])
def test_refused_socket_says_why(page: Page, harness: OverlayHarness, room: str, params: dict[str, str]) -> None:
    """A refusal with a reason code (bad token) is spelled out instead of 连接中…, inside the panel."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room, token="wrong", **params)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    status = page.locator("#connection-status")
    expect(status).to_be_hidden()
    harness.drop_connections(reject_new=True, code=4401)
    expect(status).to_have_text("令牌无效，请检查 OBS 中的地址")
    expect(status).to_be_visible()
    expect(status).to_have_attribute("data-state", "refused")
    assert inside(box_of(page, "#connection-status"), box_of(page, "#panel"))
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")  # the last state stays on screen


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


def test_socket_gets_room_token_and_shop_but_not_layout_params(page: Page, harness: OverlayHarness, room: str) -> None:
    """The websocket carries room, token and shop (a room answering from another shop); layout params stay local."""
    harness.push(room, make_state(room))
    open_overlay(page, harness, room, token="t0k", shop="shop2", layout="obs", position="bottom", width="50%")
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    assert {"room": room, "token": "t0k", "shop": "shop2"} in harness.queries


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


@pytest.mark.parametrize("params", [{}, {"layout": "obs"}, {"layout": "obs", "position": "bottom"}],
                         ids=["teleprompter", "obs-right", "obs-bottom"])
def test_long_text_never_spills_off_screen(
    page: Page, harness: OverlayHarness, room: str, shots: Path, params: dict[str, str]
) -> None:
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
            "replied": i % 2 == 0,
        }
        for i in range(5)
    ]
    product = dict(BASE_STATE["product"], name="法式复古碎花雪纺连衣裙夏季新款收腰显瘦中长款带内衬" * 2)
    harness.push(room, make_state(room, product=product, questions=questions, talking_points=[long_a] * 4))
    open_overlay(page, harness, room, **params)
    expect(page.locator(".question")).to_have_count(5)
    page.screenshot(path=str(shots / f"long_text_{page.evaluate('window.cohostOverlay.position') or 'full'}.png"))

    panel = box_of(page, "#panel")
    assert panel["x"] >= 0 and panel["y"] >= 0 and panel["x"] + panel["width"] <= W
    assert panel["y"] + panel["height"] <= H
    visible = page.locator(".question:visible")
    assert 1 <= visible.count() <= 5
    expect(visible.first).to_have_attribute("data-key", "L0")
    for sel in (".question:visible", ".talking-point:visible", "#product-name"):
        for i, box in enumerate(boxes(page, sel)):
            assert box is not None and inside(box, panel), (sel, i, box, panel)
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    clipped = page.locator('.question[data-clipped="true"]')
    assert visible.count() + clipped.count() == 5
    expect(page.locator(".question .count").first).to_have_text("30 人在问")


def test_phone_teleprompter(new_page: Callable[..., Page], harness: OverlayHarness, room: str, shots: Path) -> None:
    """On a phone held upright the teleprompter is one column, fits the screen, and reads at phone size."""
    page = new_page(390, 844, scale=2)
    harness.push(room, speaking_state(room))
    open_overlay(page, harness, room)
    expect(page.locator("#product-name")).to_have_text("法式碎花连衣裙")
    expect(page.locator(".question").first).to_be_visible()
    expect(page.locator("#paused-banner")).to_be_visible()
    page.wait_for_timeout(100)
    page.screenshot(path=str(shots / "teleprompter_phone.png"), animations="disabled")
    viewport = {"x": 0, "y": 0, "width": 390, "height": 844}
    panel = box_of(page, "#panel")
    assert inside(panel, viewport), panel
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    for sel in ("#paused-banner", "#product-name", ".question:visible", ".talking-point:visible"):
        for box in boxes(page, sel):
            assert box is not None and inside(box, panel), (sel, box)
    text = box_of(page, '.question[data-key="q1"] .text')
    assert text["width"] >= 0.6 * panel["width"], "the question gets a line of its own"
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.question .text')).fontSize)")
    assert size >= 20, size


def has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(listed.stdout.strip())


def test_screenshots(new_page: Callable[..., Page], harness: OverlayHarness, room: str, shots: Path) -> None:
    """Saves the teleprompter idle and while the streamer talks, and an unknown product, for a human look."""
    if not has_cjk_font():
        pytest.skip("no CJK font: Chinese would render as boxes (make chromium installs fonts-noto-cjk)")
    page = new_page()
    harness.push(room, busy_state(room))
    open_overlay(page, harness, room)
    expect(page.locator(".question")).to_have_count(5)
    expect(page.locator("#paused-banner")).to_be_hidden()
    page.screenshot(path=str(shots / "teleprompter_idle.png"), animations="disabled")

    harness.push(room, speaking_state(room))
    expect(page.locator("#paused-banner")).to_be_visible()
    page.screenshot(path=str(shots / "teleprompter_speaking.png"), animations="disabled")

    unknown = [dict(q, product_id="sku_123456", answer=None, replied=False) for q in BUSY_QUESTIONS[:2]]
    harness.push(room, make_state(room, product={"id": "sku_123456", "unknown": True}, questions=unknown,
                                  talking_points=[], talking_points_state="idle"))
    expect(page.locator("#product-name")).to_have_text("商品不在商品库")
    page.screenshot(path=str(shots / "teleprompter_unknown_product.png"), animations="disabled")

    page = new_page()
    open_overlay(page, harness, room, layout="obs", position="left", width="520")
    expect(page.locator("#product-name")).to_have_text("商品不在商品库")
    png = page.screenshot(omit_background=True, animations="disabled")
    composite_over_bright(new_page, png, box_of(page, "#panel"), shots / "obs_left_unknown_product_bright.png")
    for name in ("teleprompter_idle", "teleprompter_speaking", "teleprompter_unknown_product",
                 "obs_left_unknown_product_bright"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name


def test_a_platform_connection_that_is_down_says_so(page: Page, harness: OverlayHarness, room: str) -> None:
    """cohost is reachable but its Bilibili adapter is reconnecting: the pill says so, and goes once it is live."""
    page.goto(harness.url(room=room))
    harness.wait_for_connections(room)
    status = page.locator("#connection-status")
    down = {"name": "bilibili:1", "state": "reconnecting", "attempt": 3, "message": "B站连接中断，正在重连（第3次）"}
    harness.push(room, {**make_state(room), "sources": [down]})
    expect(status).to_have_text("B站连接中断，正在重连（第3次）")
    expect(status).to_be_visible()
    harness.push(room, {**make_state(room), "sources": [{**down, "state": "live", "message": "B站已连接"}]})
    expect(status).to_be_hidden()


def test_what_the_streamer_said_and_questions_answered_aloud(
        new_page: Callable[..., Page], harness: OverlayHarness, room: str, shots: Path) -> None:
    """The last lines the streamer said show under the product (fillers left out), a question they answered out
    loud carries "✓ 主播已回答"; over the camera (OBS) the lines show only with &transcript=1."""
    transcript = [{"text": "嗯嗯", "kind": "filler", "ts": 1.0},
                  {"text": "下面这款连衣裙", "kind": "switch", "ts": 2.0},
                  {"text": "广东的话两天就到", "kind": "answer", "ts": 3.0},
                  {"text": "对对对", "kind": "filler", "ts": 4.0}]
    questions = [dict(BASE_STATE["questions"][0]),
                 {"key": "q9", "text": "发货到广东要几天", "count": 4, "users": ["阿花"], "answer": "江浙沪约2天",
                  "faq_id": "ship_time", "product_id": "dress", "spoken": True}]
    harness.push(room, make_state(room, questions=questions, transcript=transcript, speaking=True, paused=True,
                                  pause_reason=SPEECH))
    page = new_page()
    open_overlay(page, harness, room)
    lines = page.locator("#transcript li")
    expect(lines).to_have_count(2)
    assert lines.all_inner_texts() == ["下面这款连衣裙", "广东的话两天就到"]
    assert [lines.nth(i).get_attribute("data-kind") for i in range(2)] == ["switch", "answer"]
    expect(page.locator(".question .spoken")).to_have_count(1)
    expect(page.locator('.question[data-key="q9"] .spoken')).to_have_text("✓ 主播已回答")
    assert page.locator('.question[data-key="q1"]').get_attribute("data-spoken") == "false"
    (look,) = page.evaluate(READABILITY_JS, '.question[data-key="q9"] .spoken')
    assert look["opacity"] == 1 and look["contrast"] >= 7, look
    if has_cjk_font():
        page.screenshot(path=str(shots / "teleprompter_voice.png"), animations="disabled")
    for params, shown in (({"layout": "obs"}, False), ({"layout": "obs", "transcript": "1"}, True),
                          ({"transcript": "0"}, False)):
        page = new_page()
        open_overlay(page, harness, room, **params)
        expect(page.locator('.question[data-key="q9"] .spoken')).to_be_visible()
        if shown:
            expect(page.locator("#transcript")).to_be_visible()
        else:
            expect(page.locator("#transcript")).to_be_hidden()
