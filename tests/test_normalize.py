"""Danmaku normalisation: script, width, case, noise, repeats and pinyin typo correction."""

from __future__ import annotations

import pytest

from cohost.understand.normalize import Normalizer, encoder_form, load_lexicon, pinyin_key


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer()


@pytest.mark.parametrize(("raw", "expected"), [("多少錢", "多少钱"), ("發貨", "发货"), ("發貨到廣東嗎", "发货到广东吗")])
def test_traditional_becomes_simplified(norm, raw, expected):
    """Traditional characters are converted to simplified."""
    assert raw != expected
    assert norm(raw) == expected


def test_full_width_becomes_half_width_lower_case(norm):
    """Full-width letters become half-width ASCII and everything is lower-cased."""
    assert norm("ＸＬ") == "xl"
    assert norm("有没有XL码") == "有xl码吗"  # and the A-not-A frame becomes 吗
    assert norm("ＸＬ") == norm("XL") == norm("xl")


def test_emoji_are_removed(norm):
    """Emoji, including joined sequences and variation selectors, are dropped."""
    assert norm("好看😍😍吗") == "好看吗"
    assert norm("👍🏻包邮吗❤️") == "包邮吗"
    assert norm("👨‍👩‍👧多少钱") == "多少钱"


def test_repeated_punctuation_collapses(norm):
    """A run of punctuation collapses to its first mark, full-width ？ becoming ?."""
    assert norm("？？？") == "?"
    assert norm("多少钱？？？") == "多少钱?"
    assert norm("包邮吗!!!!") == "包邮吗!"
    assert norm("有货吗?!?!") == "有货吗?"


def test_repeated_phrases_collapse(norm):
    """A phrase typed twice or more in a row is kept once."""
    assert norm("多少钱多少钱") == "多少钱"
    assert norm("多少钱多少钱多少钱") == "多少钱"
    assert norm("多少钱 多少钱") == "多少钱"


def test_character_floods_collapse_to_two(norm):
    """Three or more of the same non-digit character collapse to two."""
    assert norm("哈哈哈哈哈") == "哈哈"
    assert norm("哈哈哈哈哈哈哈哈哈哈") == "哈哈"
    assert norm("好好好好") == "好好"
    assert norm("哈哈") == "哈哈"


@pytest.mark.parametrize("text", ["1000mah", "1010", "8888", "10000mah", "111"])
def test_digits_are_never_collapsed(norm, text):
    """Repeated digits and digit phrases survive (capacities, prices, link numbers)."""
    assert norm(text) == text


def test_spaces_between_chinese_characters_are_removed(norm):
    """Spaces between Chinese characters are dropped; spaces next to Latin text stay single."""
    assert norm("有 大码 吗") == "有大码吗"
    assert norm("好   看 吗") == "好看吗"
    assert norm("  xl   有货吗  ") == "xl 有货吗"


@pytest.mark.parametrize(("typo", "word"), [("包油", "包邮"), ("广冬", "广东"), ("敏感鸡", "敏感肌"), ("新僵", "新疆")])
def test_homophone_typos_are_corrected(norm, typo, word):
    """A near-homophone of a shopping word is replaced by that word, alone and inside a sentence."""
    assert pinyin_key(typo) == pinyin_key(word)
    assert norm(typo) == word
    assert norm(f"{typo}吗") == f"{word}吗"


def test_typo_correction_inside_longer_message(norm):
    """Several typos and noise in one message are all fixed."""
    assert norm("新僵包油吗😂？？") == "新疆包邮吗?"


@pytest.mark.parametrize("word", ["谢谢", "谢谢主播", "有货吗"])
def test_real_words_are_left_alone(norm, word):
    """Ordinary words and vocabulary words are not rewritten."""
    assert norm(word) == word


def test_common_word_that_sounds_like_vocabulary_stays(norm):
    """诱惑 sounds exactly like the vocabulary word 有货 but is a real word, so it is kept."""
    assert "有货" in norm.vocabulary
    assert pinyin_key("诱惑") == pinyin_key("有货")
    assert norm("诱惑") == "诱惑"
    assert norm("这个颜色好诱惑") == "这个颜色好诱惑"


def test_extra_words_become_correction_targets():
    """A catalog word passed as extra_words is in the vocabulary and its homophones snap onto it."""
    alias = "绒绒宝"  # made-up product alias, not in the lexicon
    assert alias not in load_lexicon()
    plain = Normalizer()
    custom = Normalizer(extra_words=[alias])
    assert alias not in plain.vocabulary
    assert alias in custom.vocabulary
    assert plain("容容宝多少钱") == "容容宝多少钱"
    assert custom("容容宝多少钱") == "绒绒宝多少钱"
    assert custom(alias) == alias


def test_extra_words_outside_limits_are_ignored():
    """Extra words that are one character, longer than six, or not Chinese are not added."""
    custom = Normalizer(extra_words=["宝", "超级无敌大容量保温杯", "xl", "ab测试"])
    assert {"宝", "超级无敌大容量保温杯", "xl", "ab测试"}.isdisjoint(custom.vocabulary)


@pytest.mark.parametrize("text", ["多少錢多少錢？？？", "ＸＬ 有貨嗎😍", "哈哈哈哈 新僵包油吗", "有 大码 吗!!!", "1000mah充電寶"])
def test_normalize_is_idempotent(norm, text):
    """Normalising an already-normalised text changes nothing."""
    once = norm(text)
    assert norm(once) == once


@pytest.mark.parametrize("text", ["有赠品吗", "保真吗", "敏感肌可以用吗"])
def test_correct_words_are_not_rewritten_across_a_word_boundary(norm, text):
    """有赠 sounds like 邮政 and 真吗 like 正码, but they straddle the words 赠品 and 保真: left alone."""
    assert norm(text) == text


@pytest.mark.parametrize(("typo", "fixed"), [("能包油不", "能包邮吗"), ("敏感鸡能用吗", "敏感肌能用吗"),
                                             ("发货到广冬要几天", "发货到广东要几天")])
def test_typos_on_word_boundaries_are_still_fixed(norm, typo, fixed):
    assert norm(typo) == fixed


@pytest.mark.parametrize(("typed", "form"), [
    ("多少钱?", "多少钱"), ("多少钱呀", "多少钱"), ("多少钱啊~", "多少钱"), ("@主播多少钱", "多少钱"),
    ("@主播 @小王 请问多少钱呀~", "多少钱"), ("@小王 有大码吗?", "有大码吗"), ("请问 150斤能穿吗", "150斤能穿吗"),
    ("蓝色m还有吗?", "蓝色m还有吗"), ("有没有xl码呢!", "有没有xl码"),
])
def test_encoder_form_sets_aside_how_a_question_was_typed(typed, form):
    """Punctuation, an @mention or 请问 in front and particles at the end do not change what is asked."""
    assert encoder_form(typed) == form


@pytest.mark.parametrize("kept", ["1.5米长吗", "2,000元", "165 120斤穿多大", "主播多高", "@小王有大码吗", "吗",
                                  "哈哈哈", "??", "有大码吗"])
def test_encoder_form_keeps_what_carries_meaning(kept):
    """Decimals, numbers apart, 主播 as a word, a mention whose end is unknown, and texts that would be
    left empty stay as they are (吗 is part of the question)."""
    assert encoder_form(kept) == kept
