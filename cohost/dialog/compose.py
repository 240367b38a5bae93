"""Compose a short public chat reply from a catalog entry, without any LLM.

The reply says only what the catalog says. It is cut to the platform's length limit at a clause
boundary where one exists, so a cut never ends mid-number ("15" of "159元").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

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


# The most a first @mention may cut from an answer too long for the limit: a longer name is left out
# rather than shorten what the viewer asked for.
MENTION_SHARE = 0.4


def mention_name(name: str) -> str:
    """A viewer's name as it can stand after "@" in chat: control and format characters (newlines, NUL,
    right-to-left overrides, zero-width) removed, runs of spaces made one, edges trimmed, and no "@" of
    its own. Empty when nothing printable is left (the viewer is then not mentioned)."""
    kept = "".join(" " if ch.isspace() else ch for ch in name if unicodedata.category(ch)[0] != "C" or ch.isspace())
    return " ".join(kept.split()).lstrip("@＠").strip()


def answer_body(entry: Entry, *, product_label: str | None = None) -> str:
    """What the entry says, naming the product by its link number when the viewer pointed at a link."""
    body = entry.answer.strip()
    if product_label and entry.kind == "faq" and entry.product_id is not None and product_label not in body:
        body = f"{product_label}：{body}"
    return body


def compose_message(body: str, names: Sequence[str], *, max_chars: int, mention: bool = True
                    ) -> tuple[str, list[int]]:
    """"@甲 @乙 answer" within max_chars, and the indexes of the names it mentions.

    Names are taken in the order given (most urgent first), each name once, as given (spaces inside
    kept; see mention_name for what is taken out). The answer is cut only to fit max_chars, and for a
    first mention at most MENTION_SHARE of it; names that do not fit are left out, never the answer."""
    if len(body) <= max_chars:
        text = body
    else:
        reserve = 0
        if mention:
            short = next((n for n in map(mention_name, names) if n and len(n) + 2 <= max_chars * MENTION_SHARE), None)
            reserve = len(short) + 2 if short is not None else 0
        text = _fit(body, max_chars - reserve)
    if not mention:
        return text, []
    prefix, chosen, seen = "", [], set()
    for i, raw in enumerate(names):
        name = mention_name(raw)
        if name in seen or not name:
            continue
        candidate = f"{prefix}@{name} "
        if len(candidate) + len(text) <= max_chars:
            prefix = candidate
            chosen.append(i)
            seen.add(name)
    return prefix + text, chosen


def compose_reply(entry: Entry, *, user: str | None, max_chars: int, mention: bool = True,
                  product_label: str | None = None) -> str:
    """"@小王 1号法式碎花连衣裙：直播间价159元" within max_chars: a preview of what the room would send to
    one viewer (the room composes the real message for everyone who asked)."""
    body = answer_body(entry, product_label=product_label)
    return compose_message(body, [user] if user else [], max_chars=max_chars, mention=mention)[0]
