"""Reply composition (length limit, clause cuts, @mention, product label) and catalog entries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cohost.dialog.compose import compose_reply
from cohost.knowledge.catalog import Catalog, load_catalog
from cohost.knowledge.entries import Entry, catalog_entries

CLAUSE_MARKS = "，。；！？,;!?"
LONG = "现货下单后48小时内发货，发货后一般3到5天到，江浙沪约2天，偏远地区需要7到10天，具体以物流信息为准。"


def entry(answer: str, *, kind: str = "faq", product_id: str | None = None) -> Entry:
    return Entry(id="e1", kind=kind, product_id=product_id, question="问题", answer=answer, keys=("问题",),
                 evidence=answer)


def body_of(reply: str, user: str | None) -> str:
    prefix = f"@{user} "
    return reply[len(prefix):] if user and reply.startswith(prefix) else reply


def kept_part(body: str) -> str:
    return body[:-1] if body.endswith("…") else body


def splits_a_number(full: str, kept: str) -> bool:
    """True when `kept` (a prefix of `full`) ends between two digits of one number."""
    return 0 < len(kept) < len(full) and kept[-1].isdigit() and full[len(kept)].isdigit()


# -- @mention ---------------------------------------------------------------------------------------------


def test_reply_mentions_the_user():
    """A short answer is sent whole, after '@user '."""
    assert compose_reply(entry("全场包邮。"), user="小王", max_chars=50) == "@小王 全场包邮。"


def test_no_mention_without_user_or_when_disabled():
    """No @ prefix when the user is unknown or mention=False."""
    assert compose_reply(entry("全场包邮。"), user=None, max_chars=50) == "全场包邮。"
    assert compose_reply(entry("全场包邮。"), user="", max_chars=50) == "全场包邮。"
    assert compose_reply(entry("全场包邮。"), user="小王", max_chars=50, mention=False) == "全场包邮。"


def test_answer_whitespace_is_stripped():
    """Leading and trailing whitespace in the answer is not sent."""
    assert compose_reply(entry("  全场包邮。\n"), user="小王", max_chars=50) == "@小王 全场包邮。"


def test_very_long_user_name_drops_the_mention():
    """When the name leaves too little room, the mention is dropped and the answer kept."""
    answer = "全场包邮，新疆西藏补10元运费。"
    for user in ("x" * 43, "y" * 60, "长" * 45):
        assert 50 - len(f"@{user} ") < 8
        reply = compose_reply(entry(answer), user=user, max_chars=50)
        assert "@" not in reply
        assert reply == answer


def test_mention_kept_when_there_is_room():
    """A name that leaves enough room keeps its mention even if the answer must be cut."""
    reply = compose_reply(entry(LONG), user="小王", max_chars=30)
    assert reply.startswith("@小王 ")
    assert len(reply) <= 30


# -- length and cuts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_chars", range(10, 61))
@pytest.mark.parametrize("user", [None, "小王", "一位很长名字的观众"])
def test_reply_never_exceeds_max_chars(max_chars, user):
    """For any limit from 10 to 60, the reply (mention included) fits in max_chars."""
    reply = compose_reply(entry(LONG), user=user, max_chars=max_chars)
    assert len(reply) <= max_chars
    assert kept_part(body_of(reply, user)), "something of the answer is always sent"


@pytest.mark.parametrize("max_chars", [20, 30, 40, 50])
def test_long_answer_is_cut_at_a_clause_boundary(max_chars):
    """A cut reply ends at a clause boundary of the answer, marked with … unless it ends a sentence."""
    reply = compose_reply(entry(LONG), user="小王", max_chars=max_chars)
    assert len(reply) < len("@小王 " + LONG)
    body = body_of(reply, "小王")
    kept = kept_part(body)
    assert LONG.startswith(kept)
    assert LONG[len(kept)] in CLAUSE_MARKS, f"cut inside a clause: {reply!r}"
    assert kept[-1] not in "，,;；", "a trailing comma is dropped at the cut"
    assert body.endswith("…")


def test_cut_at_full_stop_has_no_ellipsis():
    """A cut that falls right after a full stop ends there, without …."""
    answer = "整机保修1年，非人为损坏免费维修。人为损坏收取配件费用寄修来回运费我们承担"
    reply = compose_reply(entry(answer), user=None, max_chars=20)
    assert reply == "整机保修1年，非人为损坏免费维修。"


def test_number_not_cut_when_a_late_clause_boundary_exists():
    """A limit that would split 12999 cuts at the clause before it instead."""
    answer = "这款是旗舰款，超长续航版本，直播间价格是12999元，包邮到家。"
    for max_chars in range(18, len(answer)):
        reply = compose_reply(entry(answer), user=None, max_chars=max_chars)
        kept = kept_part(reply)
        assert answer.startswith(kept)
        assert not splits_a_number(answer, kept), f"max_chars={max_chars}: {reply!r}"


def test_number_not_cut_when_only_an_early_clause_boundary_exists():
    """Even when the only clause boundary is early in the text, the cut does not end inside a number."""
    answer = "好的，这款儿童运动鞋直播间价格是12999元包邮到家还送小样"
    assert any(c in CLAUSE_MARKS for c in answer)
    for max_chars in range(10, len(answer)):
        reply = compose_reply(entry(answer), user=None, max_chars=max_chars)
        kept = kept_part(reply)
        assert len(reply) <= max_chars
        assert answer.startswith(kept)
        assert not splits_a_number(answer, kept), f"max_chars={max_chars}: {reply!r}"


# -- product label ----------------------------------------------------------------------------------------


def test_product_label_prefixes_product_faq():
    """A product FAQ answered by link gets '<label>：' before the answer."""
    reply = compose_reply(entry("正常尺码。", product_id="kids_shoes"), user="小王", max_chars=50,
                          product_label="3号")
    assert reply == "@小王 3号：正常尺码。"


def test_product_label_not_added_to_shop_faq_or_fact_entries():
    """Shop-wide FAQs and price/spec entries never get the product label."""
    shop_faq = compose_reply(entry("全场包邮。"), user=None, max_chars=50, product_label="3号")
    price = compose_reply(entry("童鞋直播间价129元", kind="price", product_id="kids_shoes"), user=None,
                          max_chars=50, product_label="3号")
    assert shop_faq == "全场包邮。"
    assert price == "童鞋直播间价129元"


def test_product_label_not_repeated_when_answer_has_it():
    """A label that already appears in the answer is not added again."""
    reply = compose_reply(entry("3号是正常尺码。", product_id="kids_shoes"), user=None, max_chars=50,
                          product_label="3号")
    assert reply == "3号是正常尺码。"


def test_product_label_counts_toward_max_chars():
    """The label is part of the reply, so the limit still holds with it."""
    for max_chars in range(10, 50):
        reply = compose_reply(entry(LONG, product_id="kids_shoes"), user="小王", max_chars=max_chars,
                              product_label="3号")
        assert len(reply) <= max_chars


# -- catalog entries --------------------------------------------------------------------------------------


def tiny_catalog(**product) -> Catalog:
    p = {"id": "fryer", "link": 6, "name": "家用空气炸锅", "price": 299,
         "specs": {"功率": "1500W", "容量": "5L", "颜色": "奶白色"},
         "faqs": [{"id": "fryer_clean", "question": "好清洗吗？", "answer": "炸篮可拆。", "variants": ["好洗吗"]}]}
    p.update(product)
    return Catalog.model_validate({
        "shop": {"name": "店", "faqs": [{"id": "ship_free", "question": "包邮吗？", "answer": "全场包邮。"}]},
        "products": [p],
    })


def by_id(cat: Catalog) -> dict[str, Entry]:
    return {e.id: e for e in catalog_entries(cat)}


def test_price_entry_answers_with_the_price():
    """A priced product gets an entry '<pid>.price' whose answer states the product and its price."""
    e = by_id(tiny_catalog())["fryer.price"]
    assert (e.kind, e.product_id) == ("price", "fryer")
    assert "家用空气炸锅" in e.answer and "299" in e.answer
    assert "多少钱" in e.keys
    assert "299" in e.evidence


@pytest.mark.parametrize("price", [19.9, 0.5, 129, 1299.5, 12999.99, 123456, 2500000])
def test_price_entry_states_the_exact_price(price):
    """The price in the answer is the catalog's price to the cent, never rounded or in e-notation."""
    answer = by_id(tiny_catalog(price=price))["fryer.price"].answer
    digits = re.findall(r"\d+(?:\.\d+)?", answer)
    assert digits and float(digits[-1]) == price, answer
    assert "e+" not in answer


def test_no_price_entry_without_price():
    """A product without a price has no price entry."""
    assert "fryer.price" not in by_id(tiny_catalog(price=None))


def test_spec_entries_one_per_key():
    """Each spec becomes an entry '<pid>.spec.<key>' answering with its value."""
    entries = by_id(tiny_catalog())
    for key, value in {"功率": "1500W", "容量": "5L", "颜色": "奶白色"}.items():
        e = entries[f"fryer.spec.{key}"]
        assert (e.kind, e.product_id) == ("spec", "fryer")
        assert key in e.answer and value in e.answer
        assert f"{key}是什么" in e.keys
        assert value in e.evidence


@pytest.mark.parametrize(("value", "question"), [
    ("1500W", "多少瓦"), ("1500w", "多少瓦"), ("1500瓦", "多少瓦"), ("22.5W", "多少瓦"), ("10000mAh", "多少毫安"),
    ("500ml", "多少毫升"), ("5L", "几升"), ("200g", "多少克"), ("2kg", "几斤"), ("180天", "多久"),
    ("200×230cm", "多大尺寸"),
])
def test_unit_values_get_unit_question_keys(value, question):
    """A spec value with a unit also answers the unit question ('1500W' -> '多少瓦')."""
    e = by_id(tiny_catalog(specs={"参数": value}))["fryer.spec.参数"]
    assert question in e.keys


def test_values_without_units_get_no_unit_keys():
    """A spec value without a number and unit gets only the generic keys."""
    e = by_id(tiny_catalog(specs={"颜色": "奶白色"}))["fryer.spec.颜色"]
    # The generic keys, and the value it lists asked about ("有奶白色吗"); no unit keys.
    assert set(e.keys) == {"颜色是什么", "颜色多少", "什么颜色", "颜色怎么样", "有奶白色吗"}


@pytest.mark.parametrize(("value", "question"), [
    ("1500W大功率", "多少瓦"), ("22.5W快充", "多少瓦"), ("5L大容量", "几升"), ("1500瓦大功率", "多少瓦"),
    ("约200克左右", "多少克"),
])
def test_unit_followed_by_chinese_text_still_gets_unit_keys(value, question):
    """A unit directly followed by Chinese words ('5L大容量') still answers the unit question."""
    e = by_id(tiny_catalog(specs={"参数": value}))["fryer.spec.参数"]
    assert question in e.keys


def test_faq_entries_carry_scope_and_keys():
    """Shop FAQs have no product; product FAQs carry their product and question + variants as keys."""
    entries = by_id(tiny_catalog())
    assert entries["ship_free"].product_id is None
    clean = entries["fryer_clean"]
    assert (clean.kind, clean.product_id, clean.answer) == ("faq", "fryer", "炸篮可拆。")
    assert clean.keys == ("好清洗吗？", "好洗吗")
    assert "家用空气炸锅" in clean.evidence


def test_sample_catalog_entry_ids_are_unique():
    """Every entry of the sample catalog has its own id, and every FAQ is an entry."""
    cat = load_catalog(Path(__file__).resolve().parent.parent / "knowledge" / "shop.yaml")
    entries = catalog_entries(cat)
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids))
    assert sum(e.kind == "faq" for e in entries) == cat.faq_count()
    assert sum(e.kind == "price" for e in entries) == sum(p.price is not None for p in cat.products)
