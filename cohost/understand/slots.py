"""Slot values in a question: places, sizes, body measures, colours and quantities.

"发货到广东要几天" asks the shipping-time question with a place filled in; 广东 is a value, not the topic.
Slot values are set aside before the question's topic words are checked against an answer, and
compared on their own: a value the answer lists is stated, a value of a type the answer lists other
values of is answered by the range it states (3XL when the sizes stop at XL), and a question whose
value differs from the one a matched question names (黑色 vs 白色, 两件 vs 一件) is a different question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SlotType = Literal["place", "size", "body", "colour", "quantity", "material", "skin"]

_PROVINCES = """北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东
海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 江浙沪 珠三角 东北 西北 华南 华北
华东 港澳台 海外 国外 偏远地区""".split()
_CITIES = """广州 深圳 杭州 南京 苏州 成都 武汉 西安 长沙 郑州 青岛 厦门 宁波 无锡 合肥 福州 济南 大连 沈阳 长春
哈尔滨 石家庄 太原 南昌 昆明 贵阳 南宁 海口 三亚 兰州 银川 西宁 乌鲁木齐 拉萨 呼和浩特 东莞 佛山 温州 珠海
汕头 泉州 烟台 徐州 常州 南通 嘉兴 金华 绍兴 台州 洛阳 桂林 拉萨 喀什 那曲""".split()
_PLACE = re.compile("|".join(sorted({*_PROVINCES, *_CITIES}, key=len, reverse=True)))
_SIZE = re.compile(r"(?<![a-z0-9])(\d?x{0,4}[sl]|xxs|m|均码|加大码|大码|小码)(?![a-z])|(\d{2})\s*码|最(大|小)的?[码号]")
_BODY = re.compile(r"(\d{2,3})\s*(斤|kg|公斤)"
                   r"|(1[.]\d{1,2}|一米[五六七八九][一二三四五六七八九十]?|1米\d{1,2}|1[4-9]\d(?:cm)?)(?=\D|$)")
_COLOUR_WORDS = """黑 白 红 蓝 绿 黄 紫 粉 灰 棕 咖 米 卡其 杏 藏青 酒红 奶白 米白 银 金 橙 橘 青 墨绿 军绿
驼 裸 豆沙 玫红 天蓝 浅蓝 深蓝 浅灰 深灰"""
_COLOUR = re.compile("(" + "|".join(sorted(_COLOUR_WORDS.split(), key=len, reverse=True)) + ")色")
# What a product is made of, and the skin types cosmetics are for (forms.py writes them one way).
_MATERIALS = """纯棉 全棉 棉麻 亚麻 真丝 桑蚕丝 雪纺 涤纶 聚酯纤维 锦纶 尼龙 氨纶 莫代尔 天丝 羊毛 羊绒
驼绒 鸭绒 鹅绒 羽绒 真皮 牛皮 羊皮 头层皮 pu 皮革 帆布 牛仔 灯芯绒 针织 蕾丝
不锈钢 304不锈钢 316不锈钢 铝合金 铸铁 陶瓷 玻璃
高硼硅 塑料 硅胶 橡胶 木质 实木 竹 钛 纯银 黄金 合金""".split()
_MATERIAL = re.compile("|".join(sorted(_MATERIALS, key=len, reverse=True)))
_SKIN = re.compile(r"(?:干性|油性|中性|混合性|混油|混干)皮肤|敏感肌|痘痘肌|痘肌")
_QUANTITY = re.compile(r"(\d+|[一二两三四五六七八九十]+)\s*(件|个|支|瓶|条|双|套|袋|盒|包|只|罐|份|箱|张|台|人|位)")
_CN = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}


@dataclass(frozen=True)
class Slot:
    type: SlotType
    value: str          # canonical value: "广东", "3xl", "37码", "120斤", "黑色", "2件"
    span: tuple[int, int]


def _cn_int(text: str) -> str:
    if text.isdigit():
        return text
    if len(text) == 1:
        return str(_CN.get(text, text))
    if text.startswith("十"):
        return str(10 + _CN.get(text[1:], 0))
    if len(text) == 2 and text[1] == "十":
        return str(_CN.get(text[0], 0) * 10)
    if len(text) == 3 and text[1] == "十":
        return str(_CN.get(text[0], 0) * 10 + _CN.get(text[2], 0))
    return text


def _size_value(s: str) -> str:
    # "xxl" and "2xl" are one size; "xxxl" is 3xl.
    m = re.fullmatch(r"(\d?)(x*)([sl])", s)
    if m and (m.group(1) or len(m.group(2)) > 1):
        n = int(m.group(1) or 0) or len(m.group(2))
        return f"{n}x{m.group(3)}"
    return s


def find_slots(text: str) -> list[Slot]:
    """Slot values in normalised (lower-case, simplified) text, left to right, spans not overlapping."""
    found: list[Slot] = []
    taken = [False] * len(text)

    def add(kind: SlotType, value: str, span: tuple[int, int]) -> None:
        if any(taken[span[0]:span[1]]):
            return
        taken[span[0]:span[1]] = [True] * (span[1] - span[0])
        found.append(Slot(kind, value, span))

    for m in _PLACE.finditer(text):
        add("place", m.group(), m.span())
    for m in _BODY.finditer(text):
        add("body", f"{m.group(1)}斤" if m.group(1) else m.group(3), m.span())
    for m in _SIZE.finditer(text):
        value = f"{m.group(2)}码" if m.group(2) else (f"{m.group(3)}码" if m.group(3) else _size_value(m.group(1)))
        add("size", value, m.span())
    for m in _COLOUR.finditer(text):
        add("colour", m.group(), m.span())
    for m in _SKIN.finditer(text):
        add("skin", m.group(), m.span())
    for m in _MATERIAL.finditer(text):
        add("material", m.group(), m.span())
    for m in _QUANTITY.finditer(text):
        add("quantity", f"{_cn_int(m.group(1))}{m.group(2)}", m.span())
    return sorted(found, key=lambda s: s.span)


def without_slots(text: str, slots: list[Slot]) -> str:
    """The text with slot values cut out (their words are not topic words)."""
    out, last = [], 0
    for s in slots:
        out.append(text[last:s.span[0]])
        out.append(" ")
        last = s.span[1]
    out.append(text[last:])
    return "".join(out)


def slot_types(text: str) -> dict[SlotType, set[str]]:
    """Every slot value a text (an answer, a spec value) names, by type."""
    by_type: dict[SlotType, set[str]] = {}
    for s in find_slots(text):
        by_type.setdefault(s.type, set()).add(s.value)
    # A list of sizes ("S/M/L/XL", "35-40码") names each one.
    for m in re.finditer(r"(?<![a-z0-9])(\d?x{0,4}[sl]|m)(?=[/、,，\s-]|$)", text):
        by_type.setdefault("size", set()).add(_size_value(m.group(1)))
    return by_type
