"""What the streamer's words mean for the room: filler, a product switch, or an answer to a question.

Three pure readings of one transcript line (no model, microseconds each, so the room can apply them in
the same step the transcript arrives):

- ``is_filler``: 嗯, 对对对, 好的好的 — backchannel, not a turn. The streamer did not start explaining,
  so suggestions come back after a short false-interruption timeout instead of the full resume delay.
- ``product_switch``: "来看6号链接", "上3号", "下面这款空气炸锅" — a cue word (来看, 上, 下面, 接下来...) with
  a link number or a product's name. A name or number said without a cue ("这个和空气炸锅一起买更划算")
  switches nothing: the streamer compares products all the time.
- ``answered``: which of the questions on the overlay the line answers ("XXL也有的" answers 有XXL吗,
  "广东两天就到" answers 发货到广东要几天). It asks for shared evidence, not similarity: a slot value the
  question names (a size, a place, a colour, a material, a quantity), or two of its content words, or
  one content word and a value from the question's catalog answer. A line that is itself a question
  ("有人问XXL有没有") answers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import jieba
from rapidfuzz import fuzz

from ..knowledge.catalog import Catalog
from .products import ProductResolver, chinese_number
from .slots import find_slots, without_slots

_PUNCT = re.compile(r"[\s,.!?;:，。！？；：、…~～\-—\"'“”‘’()（）]+")
_FILLER_UNIT = ("嗯哼", "好的", "是的", "对的", "没错", "可以", "行吧", "好吧", "那个", "这个", "然后", "就是",
                "okay", "ok", "嗯", "啊", "呃", "额", "哦", "噢", "喔", "哈", "呀", "诶", "欸", "哎", "唉", "嘿",
                "对", "是", "好", "行", "嗷", "昂", "嘛", "呢", "吧", "了", "的")
_FILLER = re.compile("^(?:" + "|".join(_FILLER_UNIT) + ")+$")
_FILLER_AFTER_ONSET = re.compile("^(.{0,2}?)((?:" + "|".join(_FILLER_UNIT) + ")+)$")
MAX_FILLER_CHARS = 10
SAID_SHARE = 0.6  # of a talking point's character pairs in one line of the streamer's: already said

# A switch cue comes before the product: "来看", "上", "下面(这款)", "接下来", "换到", "给大家介绍".
_CUE = re.compile(r"(来看看?|看看|看一下|来看一下|上|切到|切换到|换到|换成|下面|接下来|下一个|下一款|现在|我们来|来"
                  r"|给大家介绍|介绍一下|讲一下|讲讲)"
                  r"(?:一下|是|的是|给大家)?(?:我们的?)?(?:这款|这个|这件|这条|这一款|一款)?\s*$")
_CUE_ANYWHERE = re.compile(_CUE.pattern.removesuffix(r"\s*$"))
MAX_NAME_CHARS = 16
_FILLER_LEAD = re.compile(r"^(?:好|好的|那|那么|ok|okay|嗯|啊|来|我们|咱们|家人们|宝宝们|姐妹们)*")
_ANNOUNCE = re.compile(r"^(?:来了|走起|上车|开了|开始|开抢|上架了|准备|给大家|它)")
_NUM = r"\d{1,4}|[零一二两三四五六七八九十百]{1,4}"
_LINK = re.compile(rf"(?<![\d.])({_NUM})\s*号(?!码|发|到|之前|以前|前|后|下午|上午|晚上|中午)\s*(链接|宝贝|商品)?")
_QUESTION_END = re.compile(r"(吗|么|呢|没有|没|不|几天|多少|哪里|什么|怎么样?)[啊呀呢吧]?$")
_ASKED = re.compile(r"(有人问|有宝宝问|有朋友问|问一下|在问|问的)")
_STOP = frozenset("的 了 也 是 有 都 就 还 很 非常 特别 我们 咱们 大家 这个 那个 这款 这件 给 在 和 跟 呢 吗 啊 呀 吧 "
                  "哦 嗯 可以 一下 宝宝 家人们 姐妹们 朋友们 亲 亲们 直接 然后 就是 "
                  "对 好 要 会 能 没 没有 不 上 下".split())


def _plain(text: str) -> str:
    return _PUNCT.sub("", text.lower())


def is_filler(text: str) -> bool:
    """Backchannel only (or nothing at all): it does not take the turn.

    Whisper often mishears the 嗯 that opens "嗯对对对" ("暗门 对对对"), so one or two other characters
    before a longer run of filler count as that onset; anywhere else they are words ("对的有货").
    """
    plain = _plain(text)
    if not plain:
        return True
    if len(plain) > MAX_FILLER_CHARS:
        return False
    m = _FILLER_AFTER_ONSET.match(plain)
    return m is not None and len(m.group(2)) > len(m.group(1)) and not re.search(r"[0-9a-z]", m.group(1))


@dataclass(frozen=True)
class Switch:
    product_id: str
    how: str          # "link" or "name"
    said: str         # the words that switched it


class StreamerReader:
    """Readings of the streamer's lines against one catalog."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._by_link = {p.link: p.id for p in catalog.products if p.link is not None}
        self._surfaces = ProductResolver(catalog).surfaces

    def product_switch(self, text: str) -> Switch | None:
        plain = _plain(text)
        for m in _LINK.finditer(plain):
            n = chinese_number(m.group(1))
            if n is None or n not in self._by_link:
                continue
            before, after = plain[:m.start()], plain[m.end():]
            announced = not _FILLER_LEAD.sub("", before) and (not after or _ANNOUNCE.match(after))
            if _CUE.search(before[-8:]) or (m.group(2) and announced):  # "上3号"; "6号链接来了"
                return Switch(self._by_link[n], "link", m.group())
        # A name right after a cue ("下面这款空气炸锅", "接下来给大家介绍保温杯").
        for m in _CUE_ANYWHERE.finditer(plain):
            tail = plain[m.end():m.end() + 4 + MAX_NAME_CHARS]
            hits = [(tail.find(s), -len(s), pid, s) for s, pid in self._surfaces if 0 <= tail.find(s) <= 4]
            if hits:
                at, length, pid, _ = min(hits)
                return Switch(pid, "name", plain[m.start():m.end() + at - length])
        return None

    def answered(self, text: str, questions: list[tuple[str, str, str | None]]) -> list[str]:
        """Keys of the (key, question text, catalog answer or None) the line answers."""
        plain = _plain(text)
        if not plain or is_filler(text) or _ASKED.search(plain) or _QUESTION_END.search(plain):
            return []
        said_slots = {(s.type, s.value) for s in find_slots(plain)}
        said_words = _content_words(without_slots(plain, find_slots(plain)))
        said_numbers = _numbers(plain)
        out = []
        for key, question, answer in questions:
            q = _plain(question)
            q_slots = {(s.type, s.value) for s in find_slots(q)}
            if q_slots & said_slots:
                out.append(key)
                continue
            q_words = _content_words(without_slots(q, find_slots(q)))
            shared = q_words & said_words
            # Two of its words, or all of a short question's ("会不会掉色" → "不掉色的").
            if len(shared) >= 2 or (shared and shared == q_words and max(map(len, shared)) >= 2):
                out.append(key)
                continue
            if shared and answer:
                a = _plain(answer)
                a_slots = {(s.type, s.value) for s in find_slots(a)}
                if a_slots & said_slots or _numbers(a) & said_numbers:
                    out.append(key)
        return out


def _content_words(text: str) -> set[str]:
    return {w for w in jieba.lcut(text) if w.strip() and w not in _STOP and not w.isdigit()
            and not (len(w) == 1 and w in "个件款条只么呢吧啊呀哦嘛")}


_NUMBER = re.compile(r"\d+(?:\.\d+)?|[一二两三四五六七八九十百]+")


def _numbers(text: str) -> set[int | float]:
    out: set[int | float] = set()
    for m in _NUMBER.finditer(text):
        s = m.group()
        if s[0].isdigit():
            out.add(float(s) if "." in s else int(s))
        else:
            n = chinese_number(s)
            if n is not None:
                out.add(n)
    return out


def already_said(point: str, said: Sequence[str]) -> bool:
    """A talking point the streamer just said in other words: most of its character pairs appear in one
    of their lines, in order or not ("雪纺面料，夏天穿透气" after "这款是雪纺面料的，夏天穿很透气")."""
    core = "".join(ch for ch in point.lower() if ch.isalnum())
    if len(core) < 4:
        return False
    pairs = {core[i:i + 2] for i in range(len(core) - 1)}
    for line in said:
        plain = "".join(ch for ch in line.lower() if ch.isalnum())
        if sum(p in plain for p in pairs) >= SAID_SHARE * len(pairs) or fuzz.partial_ratio(core, plain) >= 80:
            return True
    return False


__all__ = ["StreamerReader", "Switch", "already_said", "is_filler"]
