"""The intent classifier's hand-rolled n-gram features match sklearn's, and the screen ranks questions."""

from __future__ import annotations

import numpy as np

TEXTS = ["有大码吗", "3号多少钱", "发货到广东几天", "拍了", "主播好美 666", "", "   ", "XL 和 XXL 有什么区别？",
         "加V看更多 wx123456", "哈哈哈哈哈哈哈哈", "😀😀", "Is it waterproof?", "这个 颜色 好看 吗"]


def test_gram_features_equal_sklearn_transform(engine):
    intent = engine.intent
    expected = intent._vec.transform([engine.normalizer(t) for t in TEXTS]).toarray()
    for row, text in zip(expected, TEXTS, strict=True):
        idx, val = intent._grams(engine.normalizer(text))
        got = np.zeros_like(row)
        got[idx] = val
        np.testing.assert_allclose(got, row, rtol=1e-12, atol=1e-12)


def test_screen_rules_out_plain_chatter_and_ranks_questions_first(engine):
    texts = ["主播晚上好", "有大码吗", "3号多少钱"]
    norm = [engine.normalizer(t) for t in texts]
    screened, p_question = engine.intent.screen(engine.intent.text_features(norm, texts))
    assert screened[0] is not None and screened[0].label == "greeting"
    assert screened[1] is None and screened[2] is None  # questions always go on to the encoder
    assert p_question[1] > p_question[0] and p_question[2] > p_question[0]
