"""Flatten a catalog into answerable entries.

An entry is anything the bot may say in public: an FAQ, or a fact stated in a product's fields
(price, one spec). Product fields become entries with generated question keys, so "3号多少钱" and
"多少瓦" are answered from the catalog itself without an FAQ written for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .catalog import FAQ, Catalog, Product

EntryKind = Literal["faq", "price", "spec"]

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
_PRICE_KEYS = ("多少钱", "价格多少", "什么价格", "几块钱", "怎么卖", "现在什么价")


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


def _faq_entry(faq: FAQ, product: Product | None) -> Entry:
    keys = (faq.question, *faq.variants)
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
    answer = f"{p.name}的{key}：{value}"
    return Entry(f"{p.id}.spec.{key}", "spec", p.id, f"{p.name}的{key}", answer, tuple(keys),
                 " ".join((*keys, key, value, p.name)))


def catalog_entries(catalog: Catalog) -> list[Entry]:
    entries = [_faq_entry(f, None) for f in catalog.shop.faqs]
    for p in catalog.products:
        entries.extend(_faq_entry(f, p) for f in p.faqs)
        if p.price is not None:
            entries.append(_price_entry(p))
        entries.extend(_spec_entry(p, k, v) for k, v in p.specs.items())
    return entries
