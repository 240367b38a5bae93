"""Flatten a catalog into answerable entries.

An entry is anything the bot may say in public: an FAQ, or a fact stated in a product's fields
(price, one spec). Product fields become entries with generated question keys, so "3号多少钱" and
"多少瓦" are answered from the catalog itself without an FAQ written for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..understand.forms import canonical_question
from ..understand.slots import slot_types
from .catalog import FAQ, Catalog, Product

EntryKind = Literal["faq", "price", "spec", "link"]

# How viewers ask for a number in a unit: a spec value "1500W" is also the answer to "多少瓦".
_UNIT_QUESTIONS = {
    r"\d\s*(w|瓦)(?![a-z])": ["多少瓦", "功率多大"],
    r"\d\s*(mah|毫安)": ["多少毫安", "容量多大"],
    r"\d\s*(ml|毫升)": ["多少毫升", "能装多少"],
    r"\d\s*(l|升)(?![a-z])": ["几升", "多大容量"],
    r"\d\s*(kg|公斤|斤)": ["多重", "几斤"],
    r"\d\s*(g|克)(?![a-z])": ["多少克", "多重"],
    r"\d\s*(cm|厘米|mm|毫米)": ["多大尺寸", "多长"],
    r"\d\s*(个月|天|年)": ["多久", "能放多久"],
}
_SLOT_KEYS = {"size": "有{}吗", "colour": "有{}吗", "material": "是{}的吗", "skin": "{}能用吗"}
_PRICE_KEYS = ("多少钱", "价格多少", "什么价格", "现在什么价", "价格是多少", "卖多少钱")
# "几号链接", "是这个链接吗": answered from the product's link number.
_LINK_KEYS = ("几号链接", "是几号链接", "链接是几号", "在几号链接", "哪个链接", "是这个链接吗", "链接在哪", "拍几号")


@dataclass(frozen=True)
class Entry:
    """One answer the bot may give, with the texts a viewer's question is matched against."""

    id: str
    kind: EntryKind
    product_id: str | None
    question: str
    answer: str
    keys: tuple[str, ...]   # question phrasings, embedded for dense search
    evidence: str           # all text that states this entry's facts, for lexical evidence


_SUB_QUESTION = re.compile(r"[^?？;；。!！]+[?？]?")


def _faq_entry(faq: FAQ, product: Product | None) -> Entry:
    # Owners often write two questions as one ("有大码吗？胖一点能穿吗？"): each is also a key of its own.
    parts = [m.group().strip() for m in _SUB_QUESTION.finditer(faq.question) if len(m.group().strip()) >= 2]
    keys = tuple(dict.fromkeys((faq.question, *(parts if len(parts) > 1 else ()), *faq.variants)))
    context = f"{product.name} {' '.join(product.aliases)}" if product else ""
    return Entry(faq.id, "faq", product.id if product else None, faq.question, faq.answer, keys,
                 " ".join((*keys, faq.answer, context)))


def _price_entry(p: Product) -> Entry:
    answer = f"{p.name}直播间价{p.price_text}元"
    keys = tuple(_PRICE_KEYS) + (f"{p.name}多少钱",)
    return Entry(f"{p.id}.price", "price", p.id, f"{p.name}多少钱", answer, keys,
                 " ".join((*keys, answer, "价格 价钱 钱 元 块")))


def _spec_entry(p: Product, key: str, value: str) -> Entry:
    keys = [f"{key}是什么", f"{key}多少", f"什么{key}", f"{key}怎么样"]
    for pattern, questions in _UNIT_QUESTIONS.items():
        if re.search(pattern, value.lower()):
            keys.extend(questions)
    # A spec that lists values answers a question about one of them, or about one it does not list, with
    # the list: "有XL吗", "有黑色吗", "是纯棉的吗", "油皮能用吗".
    listed = slot_types(canonical_question(value.lower()))
    for kind, frame in _SLOT_KEYS.items():
        for v in sorted(listed.get(kind, ()))[:8]:
            keys.append(frame.format(v))
    answer = f"{p.name}的{key}：{value}"
    return Entry(f"{p.id}.spec.{key}", "spec", p.id, f"{p.name}的{key}", answer, tuple(keys),
                 " ".join((*keys, key, value, p.name)))


def _link_entry(p: Product) -> Entry:
    answer = f"{p.name}是{p.link}号链接"
    return Entry(f"{p.id}.link", "link", p.id, f"{p.name}是几号链接", answer, _LINK_KEYS,
                 " ".join((*_LINK_KEYS, answer, "链接 号")))


def catalog_entries(catalog: Catalog) -> list[Entry]:
    entries = [_faq_entry(f, None) for f in catalog.shop.faqs]
    for p in catalog.products:
        entries.extend(_faq_entry(f, p) for f in p.faqs)
        if p.price is not None:
            entries.append(_price_entry(p))
        entries.extend(_spec_entry(p, k, v) for k, v in p.specs.items())
        if p.link is not None:
            entries.append(_link_entry(p))
    return entries


_VALUE_PARTS = re.compile(r"[0-9a-z.]+|[\u4e00-\u9fff]+")


def agree(spec: Entry, faq: Entry) -> bool:
    """Whether an FAQ states the same fact as a spec of its product (功率: 1500W beside "功率1500瓦…"):
    the two are one answer, not rivals, and the FAQ is the one said."""
    if spec.kind != "spec" or faq.kind != "faq" or spec.product_id is None or spec.product_id != faq.product_id:
        return False
    value = spec.answer.split("：", 1)[-1].lower()
    answer = faq.answer.lower()
    if value in answer:
        return True
    parts = _VALUE_PARTS.findall(value)
    numbers = [x for x in parts if any(c.isdigit() for c in x)]
    # A number the spec states, or every word of a short spec value, said again by the FAQ.
    if numbers:
        return all(n in answer for n in numbers)
    return bool(parts) and all(x in answer for x in parts)


def same_answer_groups(entries: list[Entry]) -> dict[str, frozenset[str]]:
    """For each entry, the entries that give the same answer: the same text, or a spec and an FAQ of one
    product that state the same fact. Such entries never compete as rivals."""
    by_answer: dict[str, set[str]] = {}
    for e in entries:
        by_answer.setdefault(e.answer, set()).add(e.id)
    groups = {e.id: set(by_answer[e.answer]) for e in entries}
    by_product: dict[str, list[Entry]] = {}
    for e in entries:
        if e.product_id is not None:
            by_product.setdefault(e.product_id, []).append(e)
    for items in by_product.values():
        for spec in (e for e in items if e.kind == "spec"):
            for faq in (e for e in items if e.kind == "faq"):
                if agree(spec, faq):
                    groups[spec.id].add(faq.id)
                    groups[faq.id].add(spec.id)
    return {k: frozenset(v) for k, v in groups.items()}
