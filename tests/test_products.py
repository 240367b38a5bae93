"""Which product a message is about: link numbers, names and aliases, the product on stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohost.knowledge.catalog import load_catalog
from cohost.understand.products import ProductResolver, chinese_number

SHOP = Path(__file__).resolve().parent.parent / "knowledge" / "shop.yaml"
ON_STAGE = "dress"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(SHOP)


@pytest.fixture(scope="module")
def resolver(catalog):
    return ProductResolver(catalog)


@pytest.fixture(scope="module")
def by_link(catalog):
    links = {p.link: p.id for p in catalog.products if p.link is not None}
    # The tests below rely on the sample shop's links being 1..10.
    assert sorted(links) == list(range(1, 11))
    return links


# -- chinese_number -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("3", 3), ("12", 12), ("三", 3), ("两", 2), ("十", 10), ("十二", 12), ("二十", 20), ("二十五", 25),
    ("一百", 100), ("一百零五", 105), ("二百五十", 250),
])
def test_chinese_number_parses_digits_and_numerals(text, value):
    """Arabic digits and Chinese numerals up to the hundreds are parsed to ints."""
    assert chinese_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "三号", "一千", "3.5", "-1"])
def test_chinese_number_rejects_other_text(text):
    """Anything that is not a number returns None."""
    assert chinese_number(text) is None


@pytest.mark.parametrize("text", ["一二", "十十", "三三"])
def test_chinese_number_rejects_malformed_numerals(text):
    """Digit characters in an order no number is written in are not a number (docstring: None otherwise)."""
    assert chinese_number(text) is None


# -- links ----------------------------------------------------------------------------------------------


def test_arabic_link_number_resolves(resolver, by_link):
    """'3号多少钱' is about link 3, decided by link, and the rest is the question alone."""
    r = resolver.resolve("3号多少钱", ON_STAGE)
    assert r.product_id == by_link[3] == "kids_shoes"
    assert r.how == "link"
    assert r.explicit
    assert r.rest == "多少钱"


@pytest.mark.parametrize(("text", "link"), [
    ("三号链接", 3), ("三号链接多少钱", 3), ("3号链接多少钱", 3), ("十号", 10), ("10号有货吗", 10),
    ("链接5", 5), ("链接5多少钱", 5), ("链接 5", 5), ("链接三", 3), ("宝贝3", 3), ("3号宝贝", 3),
    ("#7", 7), ("# 7", 7), ("#7多少钱", 7),
])
def test_link_mentions_resolve(resolver, by_link, text, link):
    """号, 号链接, 链接N, 宝贝N and #N forms, in digits or Chinese numerals, pick that link's product."""
    r = resolver.resolve(text, ON_STAGE)
    assert (r.product_id, r.how) == (by_link[link], "link")


@pytest.mark.parametrize(("text", "rest"), [
    ("3号多少钱", "多少钱"), ("三号链接多少钱", "多少钱"), ("链接5多少钱", "多少钱"), ("#7多少钱", "多少钱"),
    ("问下3号有货吗", "问下有货吗"),
])
def test_rest_has_the_mention_removed(resolver, text, rest):
    """The rest text is the message without the product mention."""
    assert resolver.resolve(text, ON_STAGE).rest == rest


@pytest.mark.parametrize(("text", "on_stage", "rest"), [
    ("这件衣服有最大码吗", "dress", "有最大码吗"),    # a pointer at the product on stage
    ("这个多少钱", "dress", "多少钱"),
    ("这个锅好洗吗", "fryer", "好洗吗"),              # 锅 ends the product's own name
    ("这条裙子有大码吗", None, "有大码吗"),            # named by alias, the pointer goes too
    ("这个颜色有吗", "dress", "颜色有吗"),            # 颜色 is what is asked about, not a pointer
    ("这是什么面料", "dress", "这是什么面料"),
    ("@主播这条裙子洗了会缩水吗", "dress", "@主播洗了会缩水吗"),     # after an address
])
def test_a_pointer_at_the_product_is_not_part_of_the_question(resolver, text, on_stage, rest):
    assert resolver.resolve(text, on_stage).rest == rest


def test_rest_is_whole_text_when_only_a_mention(resolver):
    """A message that is nothing but a mention keeps its text as rest rather than an empty string."""
    r = resolver.resolve("链接5", ON_STAGE)
    assert r.how == "link"
    assert r.rest == "链接5"


@pytest.mark.parametrize("text", ["11号多少钱", "链接12", "#11", "十二号", "二十五号能到吗"])
def test_number_that_is_not_a_link_falls_back(resolver, text):
    """A link number no product has (or a prefix of it) is not taken as a link."""
    r = resolver.resolve(text, ON_STAGE)
    assert (r.product_id, r.how) == (ON_STAGE, "on_stage")
    assert r.rest == text


@pytest.mark.parametrize("text", ["37码有吗", "35号鞋有吗", "穿35号的", "3号码有吗", "3.5号", "1.5号"])
def test_sizes_are_not_links(resolver, text):
    """Shoe and clothing sizes (N码, a non-link N号, N号码, decimals) do not select a link."""
    r = resolver.resolve(text, ON_STAGE)
    assert r.how == "on_stage"
    assert r.product_id == ON_STAGE


@pytest.mark.parametrize("text", ["宝贝37码能穿吗", "宝贝35码", "链接37码", "宝贝10码"])
def test_size_after_link_word_is_not_a_shorter_link(resolver, text):
    """'宝贝37码' is a size: the number must not be shortened to '3' to make it a link."""
    r = resolver.resolve(text, ON_STAGE)
    assert r.how != "link", f"{text!r} resolved as link -> {r}"
    assert r.product_id == ON_STAGE


# -- names and aliases ----------------------------------------------------------------------------------


def test_alias_resolves_by_name(resolver):
    """'空气炸锅多少瓦' is about the fryer, by name, and the rest is the question."""
    r = resolver.resolve("空气炸锅多少瓦", ON_STAGE)
    assert (r.product_id, r.how, r.rest) == ("fryer", "name", "多少瓦")
    assert r.explicit


@pytest.mark.parametrize("pid", ["dress", "fryer", "power_bank", "nuts", "thermos", "bedding"])
def test_every_name_and_alias_resolves_to_its_product(resolver, catalog, pid):
    """Each product's full name and each alias resolves to that product by name."""
    product = catalog.product(pid)
    for surface in (product.name, *product.aliases):
        r = resolver.resolve(f"{surface.lower()}怎么样", "kids_shoes")
        assert (r.product_id, r.how) == (pid, "name"), surface


def test_longest_name_wins(resolver):
    """'碎花连衣裙' is taken whole, leaving no fragment of it in the rest."""
    r = resolver.resolve("碎花连衣裙有xl吗", "fryer")
    assert (r.product_id, r.how, r.rest) == ("dress", "name", "有xl吗")


def test_link_and_name_of_same_product_stay_link(resolver, by_link):
    """A link and the same product's name together resolve to that product, decided by link."""
    assert by_link[6] == "fryer"
    r = resolver.resolve("6号空气炸锅多少钱", ON_STAGE)
    assert (r.product_id, r.how, r.rest) == ("fryer", "link", "多少钱")


# -- on stage, none, ambiguous --------------------------------------------------------------------------


def test_on_stage_fallback_when_nothing_is_mentioned(resolver):
    """With no product mentioned, the product on stage is used and the text is unchanged."""
    r = resolver.resolve("多少钱", "lipstick")
    assert (r.product_id, r.how, r.rest) == ("lipstick", "on_stage", "多少钱")
    assert not r.explicit


def test_none_when_nothing_mentioned_and_nothing_on_stage(resolver):
    """With no product mentioned and none on stage, the product is None."""
    r = resolver.resolve("多少钱", None)
    assert (r.product_id, r.how, r.rest) == (None, "none", "多少钱")


@pytest.mark.parametrize("text", ["口红和充电宝哪个好", "1号和2号哪个好", "2号3号", "炸锅和保温杯"])
def test_two_products_are_ambiguous(resolver, text):
    """Two different products in one message give how == 'ambiguous' and no product, even with one on stage."""
    r = resolver.resolve(text, ON_STAGE)
    assert r.how == "ambiguous"
    assert r.product_id is None
    assert not r.explicit


def test_surface_shared_by_two_products_is_not_a_name():
    """A word that is an alias of two products names neither of them."""
    from cohost.knowledge.catalog import Catalog

    cat = Catalog.model_validate({"shop": {"name": "店"}, "products": [
        {"id": "a", "link": 1, "name": "红色口红", "aliases": ["口红"]},
        {"id": "b", "link": 2, "name": "豆沙口红", "aliases": ["口红"]},
    ]})
    r = ProductResolver(cat).resolve("口红多少钱", "a")
    assert (r.product_id, r.how) == ("a", "on_stage")
    assert ProductResolver(cat).resolve("豆沙口红多少钱", "a").product_id == "b"
