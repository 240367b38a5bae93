"""Chinese question forms onto one canonical form: "包不包邮", "包邮不", "包邮么" and "是否包邮" all ask 包邮吗.

The rewrite runs inside the Normalizer, on catalog keys and viewers' messages alike, so the encoder,
the lexical evidence and the intent classifier all see one form for one question. It only touches the
frame of a question (A-not-A, tail negations and particles, price slang), never the thing asked about.
"""

from __future__ import annotations

import re

# A-not-A: 包不包邮, 能不能, 是不是, 有没有, 好不好洗, 漏不漏水; two-character verbs too: 合适不合适.
_A_NOT_A_2 = re.compile(r"([^\W\d_不没]{2})[不没]\1")
_A_NOT_A_1 = re.compile(r"([^\W\d_a-z不没])[不没]\1")
# "是否包邮", "能否机洗", "可否开票": the literary yes/no frame.
_SHI_FOU = re.compile(r"(是否|能否|可否)")
# A question ending in 不/没/没有/么 asks yes or no: 包邮不, 有运费险没, 有现货没有, 有大码么. Not after a
# word that makes 不 a plain negation (还不, 都不) or 么 part of a question word (怎么, 什么, 那么).
_TAIL_NOT = re.compile(r"(?<=[^还都也就并可要了])(?:不|没有|没)[?？!！~。.\s]*$")
_TAIL_ME = re.compile(r"(?<=[^怎什这那多要])[么嘛麽][?？!！~。.\s]*$")
_ENDS_ASKING = re.compile(r"(吗|呢|吧)$")
_TAIL_PARTICLE = re.compile(r"[啊呀哦啦嘛吖哈噢喔~!！?？。.\s]+$")
# Price slang: 多钱, 多少q, 几块, 啥价, 到手价 are 多少钱. "多少米" is price slang only in a short message
# ("这个多少米"), not in "绳子多少米长".
_PRICE = [
    (re.compile(r"多钱|多少q(?![a-z])|多少大洋|多少rmb|几块钱?|几元"), "多少钱"),
    (re.compile(r"^(这个|这款|那个)?多少米[吗呀啊?？]*$"), "多少钱"),
    (re.compile(r"(啥|什么)价(格|钱)?|咋卖|怎么卖|到手(?:价(?:是?多少钱?)?|多少钱?)"), "多少钱"),
]

# Skin types are written many ways (油皮, 油性皮肤, 油性肌, a listed 油性): one form, so "油皮能用吗" meets a
# spec that lists 油性.
_SKIN = [(re.compile(r"(油|干|中|混油|混干)性?(?:皮肤|肌肤|皮|肌)|(油|干|中)性(?=[/、,，\s]|$)"), r"\1\2性皮肤"),
         (re.compile(r"混合性?(?:皮肤|肌肤|皮|肌)|混合性(?=[/、,，\s]|$)"), "混合性皮肤"),
         (re.compile(r"敏感性?(?:皮肤|肌肤|皮|肌)"), "敏感肌")]


def canonical_question(text: str) -> str:
    """The canonical frame of a (normalised, simplified) question; other text comes back unchanged."""
    asked = False
    for pattern in (_A_NOT_A_2, _A_NOT_A_1):
        text, n = pattern.subn(r"\1", text)
        asked = asked or n > 0
    text, n = _SHI_FOU.subn(lambda m: "可以" if m.group(1) == "可否" else ("能" if m.group(1) == "能否" else ""),
                            text)
    asked = asked or n > 0
    if len(text) >= 3:
        tail = _TAIL_NOT.search(text) if "有" in text or not text.endswith("没") else None
        if tail is not None and not text[:tail.start()].endswith(("不", "没")):
            text, asked = text[:tail.start()], True
        else:
            tail = _TAIL_ME.search(text)
            if tail is not None:
                text, asked = text[:tail.start()], True
    for pattern, repl in (*_PRICE, *_SKIN):
        text = pattern.sub(repl, text)
    if asked and text:
        # One form however the question ends: "会不会缩水呀", "会不会缩水?" and "会缩水吗" are one text.
        text = _TAIL_PARTICLE.sub("", text) or text
        if not _ENDS_ASKING.search(text):
            text += "吗"
    return text
