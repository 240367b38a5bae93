"""Reading the streamer's words: filler, product switches and answers, on several shops' catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohost.config import sample_shop
from cohost.knowledge import load_catalog
from cohost.understand.streamer import StreamerReader, already_said, is_filler

SHOPS = Path(__file__).resolve().parent.parent / "knowledge" / "shops"


@pytest.fixture(scope="module")
def readers() -> dict[str, StreamerReader]:
    out = {"sample": StreamerReader(load_catalog(sample_shop()))}
    for name in ("pets", "electronics", "food", "beauty"):
        out[name] = StreamerReader(load_catalog(SHOPS / f"{name}.yaml"))
    return out


@pytest.mark.parametrize("text", ["嗯", "嗯嗯", "对对对", "好的好的", "嗯，是的是的", "啊对", "OK", "", "  ，。",
                                  "暗门 对对对"])  # 嗯 misheard: mostly filler is filler
def test_filler_does_not_take_the_turn(text):
    assert is_filler(text)


@pytest.mark.parametrize("text", ["好的我们来看6号", "对，这个是纯棉的", "嗯这款面料很舒服", "好的好的好的好的好的好的好的",
                                  "可以机洗", "XXL也有的", "对XL有的", "嗯6号", "对的有货"])
def test_words_that_say_something_are_not_filler(text):
    assert not is_filler(text)


@pytest.mark.parametrize("shop, text, product", [
    ("sample", "来看6号链接", "fryer"),
    ("sample", "上3号", "kids_shoes"),
    ("sample", "好，上三号链接", "kids_shoes"),
    ("sample", "下面这款空气炸锅", "fryer"),
    ("sample", "家人们接下来给大家介绍一下保温杯", "thermos"),
    ("sample", "6号链接来了", "fryer"),
    ("pets", "来看一下猫砂", "cat_litter"),
    ("pets", "下面这款智能宠物饮水机", "fountain"),
    ("electronics", "上2号链接", "robot_vacuum"),
    ("electronics", "接下来是吹风机", "hair_dryer"),
    ("food", "下面这款螺蛳粉", "luosifen"),
    ("food", "来看七号", "white_tea"),
])
def test_a_cue_with_a_link_number_or_a_name_switches_the_product(readers, shop, text, product):
    switch = readers[shop].product_switch(text)
    assert switch is not None and switch.product_id == product, switch


@pytest.mark.parametrize("shop, text", [
    ("sample", "这个和空气炸锅一起买更划算"),   # a comparison, not a switch
    ("sample", "3号发货"),                     # a date
    ("sample", "6号之前下单都有赠品"),
    ("sample", "这件是XXL码"),
    ("sample", "来看99号链接"),                 # no such link
    ("pets", "猫砂和猫抓板都有现货"),
    ("food", "2号前下单的今天都发了"),
])
def test_names_and_numbers_without_a_cue_switch_nothing(readers, shop, text):
    assert readers[shop].product_switch(text) is None


QUESTIONS = [("k_size", "有XXL吗", None), ("k_ship", "发货到广东要几天", "江浙沪次日达，广东2天左右"),
             ("k_wash", "可以机洗吗", "可以机洗，建议30度以下"), ("k_color", "会不会掉色", None)]


@pytest.mark.parametrize("text, keys", [
    ("XXL也有的", ["k_size"]),
    ("广东两天就到", ["k_ship"]),
    ("发广东的话一般两天", ["k_ship"]),
    ("可以机洗的，水温别太高", ["k_wash"]),
    ("不会掉色的放心", ["k_color"]),
    ("这个颜色很显白", []),
    ("有人问广东几天到", []),           # reading a question aloud answers nothing
    ("XXL有吗", []),
    ("这款面料很舒服", []),
    ("嗯嗯", []),
])
def test_a_line_answers_the_questions_it_shares_evidence_with(readers, text, keys):
    assert readers["sample"].answered(text, QUESTIONS) == keys


def test_answers_are_read_on_another_shop_too(readers):
    questions = [("k1", "猫砂结团吗", "遇水3秒结团"), ("k2", "发货到新疆要几天", None), ("k3", "狗粮多少钱一袋", None)]
    assert readers["pets"].answered("结团的，遇水三秒就结团", questions) == ["k1"]
    assert readers["pets"].answered("新疆的话大概五天", questions) == ["k2"]
    assert readers["pets"].answered("这个猫砂除臭很好", questions) == []


def test_talking_points_the_streamer_just_said_are_recognised():
    said = ["这款连衣裙是雪纺面料的，夏天穿很透气", "嗯"]
    assert already_said("雪纺面料，夏天穿透气", said)
    assert not already_said("尺码从S到XXL都有", said)
    assert not already_said("好的", said)  # too short to tell
