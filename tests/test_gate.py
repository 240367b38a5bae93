"""The one gate every outgoing text passes (cohost/gate), and the places that call it: the room's send and
talking points, hold-for-review, viewer limits and the blocklist, catalog commits, check-reply."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import pytest
from test_room import T0, chat, decision, entry, feed, sends

from cohost.config import DialogConfig
from cohost.dialog.llm import parse_points
from cohost.dialog.room import Audit, Room, SendChat, StartTalkingPoints
from cohost.errors import CatalogError
from cohost.events import ControlEvent, ProductEvent
from cohost.gate import Cleared, Gate, claims
from cohost.knowledge.catalog import FAQ, Product, validate_catalog
from cohost.knowledge.store import CatalogStore
from cohost.sinks.base import SENT, OutgoingReply

DRESS = ("法式碎花连衣裙 1号链接 直播间价159元 面料：雪纺（聚酯纤维），带内衬 尺码：S/M/L/XL 颜色：蓝色/白色")

# Issue 14's 25 invented claims about the dress (price 159): none may go out.
INVENTED = ["今天所有商品免费", "买一送一", "下单送一台iPhone", "直播间价九块九", "今天只要九十九元", "满三百减五十", "半价",
            "零元购", "比别家便宜一半", "七天无理由退换", "裙子半价", "这件裙子只要九块九", "第二件半价", "全场五折", "拍两件打八折",
            "加微信领红包", "今天下单明天到", "保修三年", "假一赔十", "送运费险", "限时秒杀", "领券立减20", "mian fei song",
            "这款是全网最低价", "精华拍一发三"]


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


# -- numbers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("满三百减五十，到手九块九", ["300", "50", "9.9"]),
    ("全场五折，再打8.8折", ["50%", "88%"]),
    ("第二件半价", ["2", "50%"]),
    ("一百五十九元，一百五，两万五", ["159", "150", "25000"]),
    ("九块九毛九", ["9.99"]),
    ("百分之五十", ["50%"]),
    ("1️⃣9️⃣9️⃣元", ["199"]),                # keycap digits
    ("１５９元", ["159"]),                 # full width
    ("4\u200b8小时发货", ["48"]),          # a zero-width space inside a number
    ("十分好用，给大家看一下，这是一个好产品，一起来", []),  # numerals only by spelling
])
def test_numbers_are_read_in_every_spelling(text, expected):
    assert [str(c) for c in claims(text)] == expected


def test_claim_values_are_exact():
    assert claims("19.999元")[0].value == Decimal("19.999")
    assert claims("八点八折")[0].value == Decimal("88")


# -- the gate itself --------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", INVENTED)
def test_every_invented_claim_is_stopped(gate, text):
    facts = DRESS if text != "七天无理由退换" else DRESS  # the dress's facts say nothing about returns
    v = gate.check(text, facts)
    assert v.action == "block", (text, v)
    assert v.text == "" and v.problems


def test_what_the_facts_state_passes_as_it_is(gate):
    for text in ["法式碎花连衣裙直播间价159元", "面料是雪纺的，带内衬", "有S/M/L/XL", "1号链接就是这条裙子"]:
        v = gate.check(text, DRESS)
        assert v.action == "pass" and v.text == text and isinstance(v.text, Cleared), v


def test_a_chinese_numeral_matches_the_same_number_in_the_facts(gate):
    assert gate.check("一百五十九元到手", DRESS).action == "pass"
    assert gate.check("七天无理由退换", "支持7天无理由退换").action == "pass"
    assert gate.check("5折", "今天全场五折").action == "pass"


def test_a_count_the_facts_do_not_state_is_an_invention(gate):
    assert gate.check("有四个码", DRESS).action == "block"  # the facts list four sizes but never say 4


def test_an_unsupported_clause_is_dropped_and_the_rest_said(gate):
    v = gate.check("面料是雪纺的，今天只要九块九，有蓝色和白色", DRESS)
    assert v.action == "rewrite"
    assert v.text == "面料是雪纺的，有蓝色和白色"
    assert [str(p) for p in v.problems] == ["unsupported_number:九块九"]


def test_a_claim_word_must_be_about_the_same_thing_in_the_facts(gate):
    # 送 in 送人很合适 does not support a gift; 免费 of the shipping insurance does not make the goods free.
    assert gate.check("今天下单送一台iPhone", "口红 送人很合适").action == "block"
    assert gate.check("今天所有商品免费", "运费险免费").action == "block"
    assert gate.check("买就送收纳袋", "下单送收纳袋一个").action == "pass"
    assert gate.check("配送很快", "顺丰配送").action == "pass"  # 配送 is delivery, not a gift


def test_advertising_law_words_unless_an_allowed_phrase(gate):
    assert gate.check("这是最好的裙子", DRESS).action == "block"
    assert gate.check("质量第一，面料是雪纺", DRESS).text == "面料是雪纺"
    assert gate.check("最大码是XL", "尺码：S/M/L/XL，最大码是XL").action == "pass"
    assert gate.check("能治痘痘", "祛痘精华").action == "block"
    assert gate.check("ＮＯ．１的品质", "").action == "block"  # full-width No.1


def test_talking_points_keep_an_advertising_law_word_with_a_warning(gate):
    v = gate.check("今天最好看的裙子", DRESS, kind="point")
    assert v.action == "pass" and v.warnings and "最" in v.explain()
    assert gate.check("今天只要九块九", DRESS, kind="point").action == "block"


def test_the_shop_extends_and_relaxes_the_word_list(gate):
    own = gate.with_words(["爆款"], ["最好是"])
    assert own.check("爆款连衣裙", DRESS).action == "block"
    assert gate.check("爆款连衣裙", DRESS).action == "pass"


def test_mentions_are_checked_as_names_not_as_claims(gate):
    assert gate.check("@小王123 直播间价159元", DRESS, names=["小王123"]).action == "pass"
    assert gate.name_problems("【官方】全场免费")
    assert gate.name_problems("半价小姐姐")
    assert not gate.name_problems("小王123")
    assert gate.check("@半价 直播间价159元", DRESS, names=["半价"]).action == "block"


def test_only_the_gate_makes_cleared_text_and_only_cleared_text_is_sent():
    with pytest.raises(TypeError):
        Cleared("今天免费")
    with pytest.raises(TypeError):
        OutgoingReply("r", "今天免费", ("e1",), "faq", 1.0, 1)  # a send path that skipped the gate
    with pytest.raises(TypeError):
        SendChat("今天免费", ("e1",), "faq", 1.0, None)  # type: ignore[arg-type]


def test_llm_talking_points_that_invent_are_dropped():
    text = "1. 裙子半价\n2. 这件裙子只要九块九\n3. 面料是雪纺的\n4. 今天下单送一台iPhone\n5. 全网最低价"
    assert parse_points(text, facts=DRESS, n=5) == ["面料是雪纺的"]


# -- the room ---------------------------------------------------------------------------------------------


def make_room(catalog, **dialog) -> Room:
    cfg = DialogConfig(deadline_s=6, min_interval_s=2, user_cooldown_s=30, aggregate_window_s=20, **dialog)
    r = Room("r", catalog, cfg, max_chars=50)
    r.on_event(ProductEvent(type="product", product_id="dress"), T0)
    return r


def audits(actions: list) -> list[Audit]:
    return [a for a in actions if isinstance(a, Audit)]


def test_a_catalog_answer_with_a_banned_word_is_rewritten_at_the_send(catalog):
    room = make_room(catalog)
    feed(room, 1, "面料怎么样", entry("dress_fabric", "面料是雪纺，全网最好的面料"), T0 + 1)
    actions = room.tick(T0 + 1)
    [s] = sends(actions)
    assert s.text == "@u1 面料是雪纺" and isinstance(s.text, Cleared)
    [a] = audits(actions)
    assert a.outcome == "rewritten" and a.rule == "ad_law:最" and a.original == "@u1 面料是雪纺，全网最好的面料"
    done = room.on_sent(s.handle, SENT, T0 + 1.1)
    [sent] = audits(done)
    assert sent.outcome == "sent" and sent.viewer_texts == ("面料怎么样",) and sent.entry_id == "dress_fabric"


def test_an_answer_the_gate_blocks_is_never_sent_and_is_counted(catalog):
    room = make_room(catalog)
    feed(room, 1, "质量好吗", entry("dress_q", "全网第一"), T0 + 1)
    actions = room.tick(T0 + 1)
    assert sends(actions) == []
    assert audits(actions)[0].outcome == "blocked"
    assert room.stats["blocked_by_gate"] == 1
    assert room.outcome_total() == room.stats["received"]


def test_an_injected_name_is_not_mentioned_but_its_viewer_is_answered(catalog):
    room = make_room(catalog)
    ev = chat(1, "多少钱", user="【官方】全场免费")
    item = room.admit(ev, T0 + 1)
    room.on_decision(item, decision("多少钱", entry("dress.price"), ev.user.id), T0 + 1)
    [s] = sends(room.tick(T0 + 1))
    assert s.text == "直播间价159元"
    assert room.stats["mention_refused"] == 1


def test_talking_points_are_gated_and_warned(catalog):
    room = make_room(catalog)
    start = room.on_event(ProductEvent(type="product", product_id="fryer"), T0 + 1)
    gen = next(a for a in start if isinstance(a, StartTalkingPoints))
    actions = room.on_talking_points(gen.handle, ["功率1500W", "今天只要九块九", "最受欢迎的炸锅"], T0 + 2)
    snap = room.snapshot(T0 + 2)
    assert snap["talking_points"] == ["功率1500W", "最受欢迎的炸锅"]
    assert snap["talking_point_warnings"][0] is None and "最" in snap["talking_point_warnings"][1]
    [a] = audits(actions)
    assert a.kind == "talking_point" and a.outcome == "blocked" and a.original == "今天只要九块九"


def test_hold_for_review_waits_for_an_approval_then_sends(catalog):
    room = make_room(catalog, review="hold")
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 1)
    actions = room.tick(T0 + 1)
    assert sends(actions) == [] and [a.outcome for a in audits(actions)] == ["held"]
    held = room.snapshot(T0 + 1)["review"]["held"]
    assert [h["id"] for h in held] == ["dress.price"] and held[0]["text"] == "@u1 直播间价159元"
    assert sends(room.tick(T0 + 3)) == []  # nothing goes out unapproved, even with the limiter free
    approved = room.on_event(ControlEvent(type="control", action="approve", id="dress.price", by="主播"), T0 + 3)
    assert audits(approved)[0].actor == "主播"
    [s] = sends(room.tick(T0 + 3))
    assert s.text == "@u1 直播间价159元"
    [sent] = audits(room.on_sent(s.handle, SENT, T0 + 3.1))
    assert sent.outcome == "sent" and sent.actor == "主播"
    assert room.snapshot(T0 + 4)["review"]["log"][0]["by"] == "主播"


def test_a_rejected_or_unreviewed_reply_is_never_sent(catalog):
    room = make_room(catalog, review="hold")
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 1)
    feed(room, 2, "什么面料", entry("dress_fabric", "雪纺面料"), T0 + 1)
    room.tick(T0 + 1)
    rejected = room.on_event(ControlEvent(type="control", action="reject", id="dress.price", by="场控"), T0 + 2)
    assert audits(rejected)[0].outcome == "rejected"
    expired = room.tick(T0 + 7.5)  # the other one passes its deadline unreviewed
    assert [a.outcome for a in audits(expired)] == ["expired"]
    assert room.snapshot(T0 + 8)["review"]["held"] == []
    assert room.stats["rejected_by_moderator"] == 1 and room.stats["dropped_deadline"] == 1
    assert room.outcome_total() == room.stats["received"]


def test_switching_review_off_releases_what_was_held(catalog):
    room = make_room(catalog, review="hold")
    feed(room, 1, "多少钱", entry("dress.price"), T0 + 1)
    room.tick(T0 + 1)
    room.on_event(ControlEvent(type="control", action="review_auto", by="主播"), T0 + 2)
    assert [s.text for s in sends(room.tick(T0 + 2))] == ["@u1 直播间价159元"]


def test_blocked_viewers_and_floods_are_never_answered(catalog):
    room = make_room(catalog, viewer_max_per_min=3)
    room.set_blocklist({"troll"}, {"广告哥"})
    assert room.admit(chat(1, "多少钱", user="troll"), T0 + 1) is None
    assert room.admit(chat(2, "多少钱", user="广告哥"), T0 + 1) is None
    items = [room.admit(chat(10 + i, "多少钱", user="fast"), T0 + 1 + i) for i in range(5)]
    assert [i is not None for i in items] == [True, True, True, False, False]
    assert room.admit(chat(20, "多少钱", user="fast"), T0 + 70) is not None  # a minute later it counts again
    assert room.stats["blocked_viewer"] == 2 and room.stats["dropped_flood"] == 2
    assert room.snapshot(T0 + 70)["ignored"]["blocked_viewer"] == 2


# -- catalogs ----------------------------------------------------------------------------------------------


def test_prices_are_exact_or_refused():
    assert Product(id="a", name="x", price=19.99).price_text == "19.99"
    assert Product(id="a", name="x", price="12元").price_text == "12"
    for bad in (19.999, float("inf"), float("nan"), 1e300, -1):
        with pytest.raises(ValueError):
            Product(id="a", name="x", price=bad)


def test_a_commit_with_a_banned_word_is_refused_with_the_entry_and_the_word(tmp_path, catalog):
    store = CatalogStore(tmp_path / "s.sqlite3")
    bad = catalog.with_faqs([("dress", FAQ(id="dress_best", question="质量好吗", answer="全网第一的品质"))])
    with pytest.raises(CatalogError) as e:
        store.commit("default", lambda _old: bad)
    [p] = e.value.problems
    assert "dress_best" in p.where and p.field == "answer" and "第一" in p.message
    assert store.head("default") is None  # nothing written


def test_an_owner_allowed_phrase_passes_the_commit(tmp_path, catalog):
    from cohost.knowledge.moderation import Moderation

    path = tmp_path / "s.sqlite3"
    store = CatalogStore(path)
    Moderation(path).set_words("default", [], ["全网第一"])
    bad = catalog.with_faqs([("dress", FAQ(id="dress_best", question="质量好吗", answer="全网第一的品质"))])
    info, _ = store.commit("default", lambda _old: bad)
    assert info.version == 1


def test_the_sample_catalogs_pass_the_gate(catalog):
    from cohost.knowledge.catalog import gate_problems

    assert gate_problems(catalog, Gate(), "shop.yaml") == []
    assert validate_catalog(catalog.model_dump(), "x") == catalog


def test_check_reply_prints_pass_rewrite_or_block(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cohost", "check-reply", "--product", "dress", "直播间价159元",
                          "面料是雪纺的，今天只要九块九", "全场免费"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    lines = out.stdout.splitlines()
    assert out.returncode == 1, out.stderr
    assert lines[1].strip() == "→ pass"
    assert lines[3].strip().startswith("→ rewrite: 面料是雪纺的") and "unsupported_number:九块九" in lines[3]
    assert lines[5].strip().startswith("→ block") and "免费" in lines[5]
