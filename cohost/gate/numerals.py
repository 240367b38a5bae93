"""The numbers a text claims, in Arabic or Chinese numerals: prices, discounts, quantities, dates, durations.

    claims("满三百减五十，到手九块九") -> [Claim("num", 300), Claim("num", 50), Claim("num", 9.9)]
    claims("全场五折，半价") -> [Claim("pct", 50), Claim("pct", 50)]

A discount is a percentage of the price paid (五折, 5折, 50%, 半价, 一半 → 50); everything else is a plain
value. Chinese numerals count only where they state an amount: before a measure word (三天, 两件, 九块九),
after a word that names one (送一, 减五十, 只要九十九), or as a long run (一百五十九). Words that are
numerals only by spelling (十分, 万一, 一下, 一起, 统一) are not claims.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_DIGITS = {"零": 0, "〇": 0, "一": 1, "壹": 1, "二": 2, "贰": 2, "两": 2, "俩": 2, "三": 3, "叁": 3, "四": 4, "肆": 4,
           "五": 5, "伍": 5, "六": 6, "陆": 6, "七": 7, "柒": 7, "八": 8, "捌": 8, "九": 9, "玖": 9}
_UNITS = {"十": 10, "拾": 10, "百": 100, "佰": 100, "千": 1000, "仟": 1000, "万": 10_000, "亿": 100_000_000}
_CN = "".join(_DIGITS) + "".join(_UNITS)

# Measure words after which a Chinese numeral states an amount (longest first in the pattern).
_MEASURES = tuple("""小时 分钟 个月 星期 元 块 毛 角 折 件 台 套 瓶 盒 包 份 双 支 片 袋 箱 罐 天 日 号 月 年 周 岁 斤
                      克 码 倍 成 人 个 款 种 次 位 条 只 单 样 %""".split())
# After these, a lone 一 is the article or an adverb, not an amount: 一个, 一款, 一次, 一样.
_ONE_IS_ARTICLE = {"个", "款", "种", "次", "位", "条", "只", "样", "单", "人"}
# Words before a numeral that make it an amount even without a measure word: 送一, 减五十, 拍一发三.
_CUE = re.compile(r"(?:送|赠|减|满|买|拍|发|返|省|只要|仅需|仅|才|到手|价|第)$")
# Spellings that contain numerals but state no amount.
_IDIOMS = tuple("""十分 万一 一一 千万 万分 一下 一起 一些 一点 一定 一直 一般 一切 一致 一样 一律 一向 一旦 一再 一边
                     一面 一方面 统一 唯一 之一 不一 一模一样 独一无二 数一数二 一五一十 三三两两 七七八八 乱七八糟
                     五颜六色 一年四季 四季 一会 一阵 一路 一口气 一手 一把 一眼 一身 一体 第一时间 万物 看一看 试一试
                     一家人 两者 一两 三思 十足 百搭 千篇一律 万事 一应俱全""".split())
# Zero-width and format characters that hide a number from a plain search; keycap marks (1️⃣).
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff\ufe0f\u20e3"))

_ARABIC = re.compile(r"\d+(?:\.\d+)?")
_MONEY = re.compile(rf"([{_CN}\d]+)(?:块|元)([{_CN}\d])(?:毛|角)?(?:([{_CN}\d])分?)?")  # 九块九, 9块9毛9
_POINT = re.compile(r"([零〇一二两三四五六七八九十百千万]+)点([零〇一二两三四五六七八九]+)")  # 八点八折
_RUN = re.compile(rf"[{_CN}]+")
_DISCOUNT_WORDS = ("半价", "一半", "对折", "半折")


@dataclass(frozen=True)
class Claim:
    kind: str       # "num" or "pct"
    value: Decimal
    text: str       # as written

    def __str__(self) -> str:
        v = format(self.value.normalize(), "f")
        return f"{v}%" if self.kind == "pct" else v


def clean(text: str) -> str:
    """NFKC (full-width digits and letters, ①) with invisible characters removed."""
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE)


def chinese_value(run: str) -> Decimal | None:
    """一百五十九 → 159, 一百五 → 150, 两万五 → 25000, 八八 → 88, 十五 → 15; None if not a number."""
    if not run or any(c not in _DIGITS and c not in _UNITS for c in run):
        return None
    if not any(c in _UNITS for c in run):
        return Decimal("".join(str(_DIGITS[c]) for c in run))
    total, section, number, last_unit = 0, 0, 0, 0
    for c in run:
        if c in _DIGITS:
            number = _DIGITS[c]
        else:
            unit = _UNITS[c]
            if unit >= 10_000:
                section = (section + number) * unit
                total += section
                section, number = 0, 0
            else:
                section += (number or (1 if unit == 10 else 0)) * unit
                number = 0
            last_unit = unit
    if number and last_unit >= 100 and run[-2] in _UNITS:  # colloquial: 一百五 = 150, 三千五 = 3500
        number *= last_unit // 10
    return Decimal(total + section + number)


def _value(s: str) -> Decimal | None:
    try:
        return Decimal(s) if s[0].isdigit() else chinese_value(s)
    except (InvalidOperation, IndexError):
        return None


def _pct(value: Decimal) -> Decimal:
    """五折 / 5折 → 50, 8.8折 / 八八折 → 88, 75折 → 75."""
    return value * 10 if value < 10 else value


def claims(text: str) -> list[Claim]:
    """Every amount the text states, in order of appearance."""
    s = clean(text)
    found: list[tuple[int, Claim]] = []
    taken = [False] * len(s)

    def take(start: int, end: int, claim: Claim) -> None:
        found.append((start, claim))
        for i in range(start, end):
            taken[i] = True

    def free(start: int, end: int) -> bool:
        return not any(taken[start:end])

    for m in re.finditer(r"百分之([零〇一二两三四五六七八九十百]+)", s):
        if (v := chinese_value(m.group(1))) is not None:
            take(m.start(), m.end(), Claim("pct", v, m.group()))
    for word in _DISCOUNT_WORDS:
        for m in re.finditer(word, s):
            if free(m.start(), m.end()):
                take(m.start(), m.end(), Claim("pct", Decimal(50), word))
    for m in _MONEY.finditer(s):
        if not free(m.start(), m.end()):
            continue
        yuan, jiao, fen = _value(m.group(1)), _value(m.group(2)), _value(m.group(3)) if m.group(3) else Decimal(0)
        if yuan is not None and jiao is not None and jiao < 10 and fen is not None and fen < 10:
            take(m.start(), m.end(), Claim("num", yuan + jiao / 10 + fen / 100, m.group()))
    for m in _POINT.finditer(s):
        if free(m.start(), m.end()) and (whole := chinese_value(m.group(1))) is not None:
            frac = "".join(str(_DIGITS[c]) for c in m.group(2))
            value = whole + Decimal("0." + frac)
            is_pct = s.startswith("折", m.end())
            take(m.start(), m.end() + is_pct, Claim("pct" if is_pct else "num", _pct(value) if is_pct else value,
                                                    m.group() + ("折" if is_pct else "")))
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*(%|折)", s):
        if free(m.start(), m.end()):
            v = Decimal(m.group(1))
            take(m.start(), m.end(), Claim("pct", v if m.group(2) == "%" else _pct(v), m.group()))
    for m in _ARABIC.finditer(s):
        if free(m.start(), m.end()):
            take(m.start(), m.end(), Claim("num", Decimal(m.group()), m.group()))
    masked = _mask_idioms(s)
    for m in _RUN.finditer(masked):
        start, end = m.start(), m.end()
        if not free(start, end):
            continue
        run = m.group()
        after = masked[end:end + 2]
        measure = next((w for w in _MEASURES if after.startswith(w)), None)
        if run == "一" and (measure is None or measure in _ONE_IS_ARTICLE) and not _CUE.search(masked[:start]):
            continue
        if measure is None and len(run) < 2 and not _CUE.search(masked[:start]):
            continue
        value = chinese_value(run)
        if value is None:
            continue
        if measure == "折":
            take(start, end + 1, Claim("pct", _pct(value), run + "折"))
        else:
            take(start, end, Claim("num", value, run))
    return [c for _, c in sorted(found, key=lambda x: x[0])]


def _mask_idioms(s: str) -> str:
    for idiom in sorted(_IDIOMS, key=len, reverse=True):
        if idiom in s:
            s = s.replace(idiom, "□" * len(idiom))
    return s
