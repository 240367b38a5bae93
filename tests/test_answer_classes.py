"""The classes of question the engine used to get wrong (issue 10), each on the real engine and embedder.

1. a spec and an FAQ stating one fact are one answer;  2. Chinese question forms;  3. slot values are
not topic words;  4. the answer text is evidence;  5. extra conditions and swapped entities are other
questions;  6. the explanation is true;  7. a cut reply ends where a fact ends.
"""

from __future__ import annotations

import re

import pytest

from cohost.dialog.compose import compose_reply
from cohost.engine import AnswerEngine, Message
from cohost.knowledge.catalog import validate_catalog
from cohost.knowledge.entries import Entry, catalog_entries, same_answer_groups
from cohost.retrieval.match import EvidenceView, Scores, TextView, pair_features
from cohost.understand.forms import canonical_question
from cohost.understand.slots import find_slots

pytestmark = pytest.mark.slow

SMALL = {
    "shop": {"name": "测试店", "faqs": [
        {"id": "ship_days", "question": "发货后几天能到？", "answer": "发货后一般3到5天到，江浙沪约2天。"},
        {"id": "free_two", "question": "买两件包邮吗？", "answer": "两件及以上包邮，一件收8元运费。"},
    ]},
    "products": [
        {"id": "kettle", "link": 2, "name": "电热水壶", "aliases": ["水壶"], "price": 129,
         "specs": {"功率": "1500瓦", "容量": "1.7升", "颜色": "白色/灰色"},
         "faqs": [
             {"id": "kettle_power", "question": "多少瓦？", "answer": "功率1500瓦，5分钟烧开一壶水。"},
             {"id": "kettle_white", "question": "白色的有货吗？", "answer": "白色现货，下单48小时内发。"},
             {"id": "kettle_dry", "question": "干烧会自动断电吗？", "answer": "会，干烧和烧开都会自动断电。"},
         ]},
    ],
}


@pytest.fixture(scope="module")
def small(engine) -> AnswerEngine:
    return engine.rebuilt(validate_catalog(SMALL, "small"))


def ask(engine: AnswerEngine, text: str, on_stage: str | None = None):
    return engine.answer(Message(text, user="小王", on_stage=on_stage))


# -- 1. a spec and an FAQ that state one fact -----------------------------------------------------------

def test_spec_and_faq_stating_one_fact_are_one_answer(small):
    groups = same_answer_groups(small.entries)
    assert "kettle_power" in groups["kettle.spec.功率"]
    assert "kettle_white" not in groups["kettle.spec.颜色"], "an FAQ about one colour does not state the list"
    d = ask(small, "功率多大", "kettle")
    assert d.answered, d.reason
    assert d.faq_id == "kettle_power", "the FAQ the owner wrote is the one said"


# -- 2. Chinese question forms --------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "canonical"), [
    ("包不包邮", "包邮吗"), ("包邮不", "包邮吗"), ("有运费险没", "有运费险吗"), ("有大码么", "有大码吗"),
    ("漏不漏水", "漏水吗"), ("好不好洗", "好洗吗"), ("是不是纯棉的", "是纯棉的吗"), ("暖不暖和", "暖和吗"),
    ("可不可以退", "可以退吗"), ("是否包邮", "包邮吗"), ("多钱", "多少钱"), ("到手价多少", "多少钱"),
    ("怎么样", "怎么样"), ("什么颜色", "什么颜色"), ("我还没", "我还没"),
])
def test_question_forms_have_one_canonical_form(text, canonical):
    assert canonical_question(text) == canonical


@pytest.mark.parametrize(("text", "on_stage", "entry_id"), [
    ("包不包邮", None, "ship_free"),
    ("有运费险没", None, "ship_insurance"),
    ("多钱", "dress", "dress.price"),
    ("到手价多少", "fryer", "fryer.price"),
    ("几号链接", "dress", "dress.link"),
    ("是这个链接吗", "fryer", "fryer.link"),
])
def test_question_forms_are_answered(engine, text, on_stage, entry_id):
    d = ask(engine, text, on_stage)
    assert d.answered, d.reason
    assert d.faq_id == entry_id


def test_link_question_is_answered_with_the_link_number(engine):
    d = ask(engine, "几号链接", "dress")
    assert "1号链接" in d.reply


# -- 3. slot values are not topic words -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "slots"), [
    ("发货到广东要几天", [("place", "广东")]),
    ("蓝色l还有吗", [("colour", "蓝色"), ("size", "l")]),
    ("xxl有吗", [("size", "2xl")]),
    ("165 120斤穿啥码", [("body", "165"), ("body", "120斤")]),
    ("两件包邮吗", [("quantity", "2件")]),
    ("面料是什么", []),
])
def test_slot_values_are_found(text, slots):
    assert [(s.type, s.value) for s in find_slots(text)] == slots


OPEN = pytest.mark.xfail(reason="issue 10 open: with no product on stage every entry of the shop is a rival, and "
                                "the answer model is not yet confident enough to say it", strict=True)


@pytest.mark.parametrize(("text", "on_stage", "entry_ids"), [
    ("发货到广东要几天", "dress", {"ship_time"}),                     # a region the general answer covers
    pytest.param("浙江几天到", None, {"ship_time"}, marks=OPEN),
    pytest.param("發貨到廣東幾天", None, {"ship_time"}, marks=OPEN),
    ("这件衣服有最大码吗", "dress", {"dress_plus", "dress.spec.尺码"}),  # a pointer at the product, then a size
    ("2号有3xl吗", None, {"down_jacket.spec.尺码", "jacket_size"}),   # beyond the listed sizes: say the range
    ("是雪纺的吗", "dress", {"dress.spec.面料"}),                   # a value the spec lists
])
def test_slot_values_are_answered_by_the_general_entry(engine, text, on_stage, entry_ids):
    d = ask(engine, text, on_stage)
    assert d.answered, d.reason
    assert d.faq_id in entry_ids


@pytest.mark.parametrize(("text", "on_stage", "entry_id"), [
    ("发货到广东要几天", "dress", "ship_time"), ("浙江几天到", None, "ship_time"),
    ("这件衣服有最大码吗", "dress", "dress_plus"),
])
def test_slot_questions_rank_the_general_entry_first(engine, text, on_stage, entry_id):
    """Slot values are not topic words: the general entry is the best candidate, never a rival's."""
    d = ask(engine, text, on_stage)
    assert d.candidates and d.candidates[0].entry_id == entry_id
    assert not (d.answered and d.faq_id != entry_id)


SCORES = Scores(dense=0.9, top_dense=0.9, dense_z=2.0, passage=0.85, top_passage=0.85, support=1, lexical=0.5,
                margin=0.05)


# -- 4. the answer text is evidence ---------------------------------------------------------------------

def test_a_spec_value_answers_in_other_words(engine):
    d = ask(engine, "油皮能用吗", "serum")
    assert d.answered, d.reason
    assert "油性" in d.reply


def test_answer_text_counts_as_evidence(small):
    key = TextView.of("发货后几天能到")
    with_place = EvidenceView.of("发货后一般3到5天到，江浙沪约2天。")
    q = TextView.of("江浙沪几天到")
    f = pair_features(q, key, with_place, SCORES, no_product=True, p_question=0.9, catalog_grams=with_place.grams)
    assert f["q_cov"] == 1.0 and f["slot_ranged"] == 0.0, "a region the answer names is stated"


# -- 5. extra conditions and swapped entities -----------------------------------------------------------

def features(q: str, key: str, evidence: str) -> dict[str, float]:
    ev = EvidenceView.of(evidence)
    return pair_features(TextView.of(q), TextView.of(key), ev, SCORES, no_product=False, p_question=0.9,
                         catalog_grams=ev.grams)


def test_swapped_values_are_flagged():
    assert features("黑色的有货吗", "白色的有货吗", "白色现货")["slot_conflict"] == 1.0
    assert features("一件包邮吗", "两件包邮吗", "两件及以上包邮")["slot_conflict"] == 1.0
    assert features("不能机洗吗", "能机洗吗", "可以机洗")["neg_conflict"] == 1.0
    assert features("新疆发货吗", "能发货吗", "全国发货")["key_extra_slot"] == 0.0
    assert features("能发货吗", "新疆能发货吗", "新疆发邮政")["key_extra_slot"] == 1.0
    assert features("保修3年吗", "保修1年吗", "整机保修1年")["num_conflict"] == 1.0
    assert features("白色的有货吗", "白色的有货吗", "白色现货")["slot_conflict"] == 0.0


@pytest.mark.parametrize(("text", "on_stage"), [
    ("灰色的有货吗", "kettle"),     # the FAQ is about white
    ("一件包邮吗", None),           # the FAQ is about two
])
def test_swapped_entity_is_not_answered_with_the_faq(small, text, on_stage):
    d = ask(small, text, on_stage)
    assert not (d.answered and d.faq_id in {"kettle_white", "free_two"}), d.reason


# -- 6. the explanation is true -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "on_stage"), [
    ("油皮能用吗", "serum"), ("有口袋吗", "dress"), ("涂层是特氟龙吗", "fryer"), ("这件衣服有最大码吗", "dress"),
    ("是不是纯棉的", "dress"), ("孕妇能穿吗", "dress"),
])
def test_what_the_catalog_does_not_state_is_true(engine, text, on_stage):
    d = ask(engine, text, on_stage)
    m = re.search(r"asks about (\S+), which the catalog does not state", d.reason)
    if m:
        catalog_text = " ".join(engine.normalizer(e.evidence) for e in engine.entries)
        for term in m.group(1).split("/"):
            assert not any(ch in catalog_text for ch in term), f"{term} is in the catalog: {d.reason}"


# -- 7. a cut reply ends where a fact ends --------------------------------------------------------------

SIZES = "尺码有S/M/L/XL/2XL/3XL/4XL/5XL，160斤以内都能穿，偏大一码"


def entry(answer: str) -> Entry:
    return Entry("x", "faq", None, "q", answer, ("q",), answer)


@pytest.mark.parametrize("limit", range(10, len(SIZES)))
def test_a_cut_never_ends_inside_a_size_list(limit):
    reply = compose_reply(entry(SIZES), user=None, max_chars=limit)
    kept = reply.rstrip("…")
    assert len(reply) <= limit
    assert SIZES.startswith(kept)
    following = SIZES[len(kept):len(kept) + 1]
    assert not following or not re.match(r"[0-9A-Za-z]", following) or not re.match(r"[0-9A-Za-z]", kept[-1]), reply


def test_the_sample_catalog_has_a_link_entry_per_linked_product(catalog):
    ids = {e.id for e in catalog_entries(catalog)}
    assert all(f"{p.id}.link" in ids for p in catalog.products if p.link is not None)


def test_a_number_inside_a_stated_range_is_stated():
    """33码 is inside 26-37码: neither a swapped value nor a different number."""
    f = features("有33码吗", "有37码吗", "儿童网面运动鞋的尺码：26-37码")
    assert f["num_conflict"] == 0.0 and f["slot_conflict"] == 0.0
    assert features("有40码吗", "有37码吗", "儿童网面运动鞋的尺码：26-37码")["num_conflict"] == 1.0


def test_word_order_is_compared():
    """Same words, another question: water to ice is not ice to water."""
    assert features("把水变成冰最快的方法", "冰变成水最快的方法", "放进热水")["order"] < 1.0
    assert features("水变成冰最快的方法", "水变成冰最快的方法", "放进冰箱")["order"] == 1.0


def test_a_question_that_is_all_slot_is_stated_by_its_entry(engine):
    """"有最大码吗" has no topic word beside the size: the entry that names 大码 states it."""
    d = ask(engine, "有最大码吗", "dress")
    top = d.candidates[0]
    assert top.entry_id == "dress_plus" and top.feature("lexical") > 0.5
