"""Compose a short public chat reply from a catalog entry, without any LLM.

The reply says only what the catalog says. It is cut to the platform's length limit at a clause
boundary where one exists, so a cut never ends mid-number ("15" of "159元").
"""

from __future__ import annotations

import re

from ..knowledge.entries import Entry

_CLAUSE_END = re.compile(r"[，。；！？,;!?]")


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    ends = [m.end() for m in _CLAUSE_END.finditer(cut)]
    if ends and ends[-1] >= limit // 2:
        return cut[: ends[-1]].rstrip("，,;；") + ("" if cut[ends[-1] - 1] in "。！？!?" else "…")
    # A hard cut must not leave half a number ("12999元" read as "1…"): back off out of the digits.
    if cut and text[len(cut)].isdigit() and cut[-1].isdigit():
        stripped = cut.rstrip("0123456789.")
        if ends and len(stripped) < ends[-1]:
            return cut[: ends[-1]].rstrip("，,;；") + "…"
        cut = stripped
    return cut + "…"


def compose_reply(entry: Entry, *, user: str | None, max_chars: int, mention: bool = True,
                  product_label: str | None = None) -> str:
    """"@小王 1号法式碎花连衣裙：直播间价159元" trimmed to max_chars (the @ prefix included)."""
    prefix = f"@{user} " if mention and user else ""
    body = entry.answer.strip()
    if product_label and entry.kind == "faq" and entry.product_id is not None and product_label not in body:
        body = f"{product_label}：{body}"
    room = max_chars - len(prefix)
    if room < 8:  # a very long user name: drop the mention rather than the answer
        prefix, room = "", max_chars
    return prefix + _fit(body, room)
