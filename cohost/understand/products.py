"""Which product a message is about: a link number, a name or alias, or else the product on stage."""

from __future__ import annotations

import re
from dataclasses import dataclass

import jieba

from ..knowledge.catalog import Catalog
from .normalize import ADDRESS_LEAD

_CN_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUM = r"\d{1,4}|[零一二两三四五六七八九十百]{1,4}"
# "3号", "3号链接", "三号", "链接3", "#3"; a number followed by 码 or 米 is a size, not a link.
_LINK_PATTERNS = [
    re.compile(rf"(?<![\d.])({_NUM})\s*号(?!码)\s*(?:链接|宝贝|商品)?"),
    # The lookahead must see the whole number: "链接37码" is size 37, not link 3 followed by "7码".
    re.compile(rf"(?:链接|宝贝)\s*({_NUM})(?![\d零一二两三四五六七八九十百])(?!\s*[码米])"),
    re.compile(r"#\s*(\d{1,4})"),
]


# "这件衣服", "这个锅", "这款", "那条裙子": a pointer at the product the message is about, not a word of the
# question. The noun after it is taken only when it names a kind of thing, never a property ("这个颜色").
_POINTER = re.compile(r"(?:这|那)(?:一)?(?:件|个|款|条|双|套|瓶|支|台|只|把|盒|包|罐|袋|种|顶|张|本)")
_THING_NOUNS = ("衣服", "裙子", "裤子", "鞋子", "鞋", "东西", "宝贝", "产品", "商品", "货", "款式")


def _pointer_nouns(own_words: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The nouns a pointer may take, longest first ("鞋子" before "鞋")."""
    return tuple(sorted({*_THING_NOUNS, *own_words}, key=len, reverse=True))


def _without_pointer(text: str, nouns: tuple[str, ...]) -> str:
    """The text without a leading pointer at the product ("这件衣服" in "@主播 这件衣服有大码吗"); an address
    in front ("@主播", "请问") stays. ``nouns``: from _pointer_nouns."""
    lead = ADDRESS_LEAD.match(text)
    start = lead.end() if lead else 0
    m = _POINTER.match(text, start)
    if not m:
        return text
    end, tail = m.end(), text[m.end():]
    for noun in nouns:
        if tail.startswith(noun):
            end += len(noun)
            break
    return (text[:start] + text[end:]).strip() or text


_D = "[一二两三四五六七八九]"
_CN_NUMERAL = re.compile(rf"^(?:({_D})百)?零?(?:({_D})?(十))?({_D})?$")


def chinese_number(text: str) -> int | None:
    """Parse 3, 三, 十二, 二十, 一百零五. Returns None for anything else, including "一二" or "十十"."""
    if text.isdigit():
        return int(text)
    if text in ("零", "〇"):
        return 0
    m = _CN_NUMERAL.match(text)
    if not text or not m or not any(m.groups()):
        return None
    total, current = 0, 0
    for c in text:
        if c in _CN_DIGITS:
            current = _CN_DIGITS[c]
        elif c == "十":
            total += (current or 1) * 10
            current = 0
        elif c == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


@dataclass(frozen=True)
class Resolution:
    """The product a message is about and how that was decided."""

    product_id: str | None
    how: str                    # "link", "name", "on_stage", "ambiguous", "none"
    rest: str                   # the text with the product mention removed, for matching the question

    @property
    def explicit(self) -> bool:
        return self.how in ("link", "name")


class ProductResolver:
    def __init__(self, catalog: Catalog):
        self._by_link = {p.link: p.id for p in catalog.products if p.link is not None}
        # Everything a product's own entry says, to tell "有礼盒吗" about the lipstick on stage (whose FAQ
        # talks of a gift box) from a mention of the nut gift box (坚果礼盒).
        self._own_text = {p.id: " ".join([p.name, *p.aliases, *p.specs, *p.specs.values(),
                                          *(f"{f.question} {' '.join(f.variants)} {f.answer}" for f in p.faqs)]).lower()
                          for p in catalog.products}
        surfaces: dict[str, set[str]] = {}
        for p in catalog.products:
            names = [p.name.lower(), *(a.lower() for a in p.aliases)]
            for n in names:
                surfaces.setdefault(n, set()).add(p.id)
            # Viewers shorten names to the head noun, which ends a Chinese noun phrase: "法式碎花连衣裙" is
            # also "连衣裙", "家用空气炸锅" is "炸锅", when no other product ends the same way.
            for n in names:
                tokens = jieba.lcut(n)
                if len(tokens) > 1 and len(tokens[-1]) >= 2:
                    surfaces.setdefault(tokens[-1], set()).add(p.id)
        # The words a product's names end with ("裙" of 连衣裙, "炸锅", "锅"): "这条裙" and "这个锅" point at it.
        self._pointer_nouns = {p.id: _pointer_nouns(frozenset(w for n in (p.name, *p.aliases)
                                                              for w in (n[-1:], n[-2:]) if w))
                               for p in catalog.products}
        self._thing_nouns = _pointer_nouns()
        self._surfaces = sorted(((s, next(iter(ids))) for s, ids in surfaces.items() if len(ids) == 1),
                                key=lambda x: -len(x[0]))

    @property
    def surfaces(self) -> list[tuple[str, str]]:
        """(lower-case name, alias or head noun, product id), longest first; each names one product only."""
        return list(self._surfaces)

    def resolve(self, text: str, on_stage: str | None) -> Resolution:
        """Resolve the product in already-normalised text."""
        found: dict[str, None] = {}
        spans: list[tuple[int, int]] = []
        for pattern in _LINK_PATTERNS:
            for m in pattern.finditer(text):
                n = chinese_number(m.group(1))
                if n is not None and n in self._by_link:
                    found[self._by_link[n]] = None
                    spans.append(m.span())
        how = "link" if found else "none"
        taken = [False] * len(text)
        for a, b in spans:
            taken[a:b] = [True] * (b - a)
        for surface, pid in self._surfaces:
            start = text.find(surface)
            while start != -1:
                end = start + len(surface)
                stage_says_it = on_stage is not None and pid != on_stage and surface in self._own_text.get(on_stage, "")
                if not any(taken[start:end]) and not stage_says_it:
                    found[pid] = None
                    spans.append((start, end))
                    taken[start:end] = [True] * (end - start)
                    how = "link" if how == "link" else "name"
                start = text.find(surface, end)
        rest = "".join(ch for i, ch in enumerate(text) if not taken[i]).strip() or text
        if len(found) > 1:
            return Resolution(None, "ambiguous", rest)
        if found:
            pid = next(iter(found))
            return Resolution(pid, how, _without_pointer(rest, self._pointer_nouns.get(pid, self._thing_nouns)))
        if on_stage is not None:
            return Resolution(on_stage, "on_stage",
                              _without_pointer(text, self._pointer_nouns.get(on_stage, self._thing_nouns)))
        return Resolution(None, "none", text)
