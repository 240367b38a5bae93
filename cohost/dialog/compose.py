"""Compose a short public chat reply from a catalog entry, without any LLM.

The reply says only what the catalog says. It is cut to the platform's length limit at a clause
boundary where one exists, so a cut never ends mid-number ("15" of "159元").
"""

from __future__ import annotations

import re

from ..knowledge.entries import Entry

_CLAUSE_END = re.compile(r"[，。；！？,;!?]")
_LIST_SEP = re.compile(r"[、/]")
# Characters of one token: a number with its decimals, a size such as 2XL, a model name.
_TOKEN = re.compile(r"[0-9A-Za-z.%+]")


def _fit(text: str, limit: int) -> str:
    """The longest part of text that fits in limit and ends where a fact ends: after a clause, else
    after a whole item of a list ("S/M/L"), else before a token it would split ("2XL", "159.9")."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    ends = [m.end() for m in _CLAUSE_END.finditer(cut)]
    # A first clause too short to say anything ("好的，") is not worth sending alone.
    if ends and ends[-1] >= limit // 3:
        end = ends[-1]
        return cut[:end].rstrip("，,;；") + ("" if cut[end - 1] in "。！？!?" else "…")
    seps = [m.start() for m in _LIST_SEP.finditer(cut)]
    if seps and seps[-1] >= limit // 3:
        return cut[: seps[-1]] + "…"
    if _TOKEN.match(text[len(cut)]) and cut and _TOKEN.match(cut[-1]):
        stripped = cut.rstrip("0123456789.%+ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
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
