"""The one gate every outgoing text passes: a chat reply, a talking point, anything posted to a platform.

    verdict = Gate().check("今天只要九块九，面料是雪纺的", facts="连衣裙 直播间价159元 面料：雪纺")
    verdict.action   -> "rewrite"
    verdict.text     -> "面料是雪纺的"                   (a Cleared string: the only kind a sink accepts)
    verdict.problems -> (Problem("unsupported_number", "九块九", "今天只要九块九"),)

Rules, per clause (a clause ends at ，。；！？ or a line break):
- ``ad_law``: a word the advertising law forbids (ad_law.txt, plus the shop's own words), unless it is
  part of an allowed phrase (最大码 is a size, not a superlative).
- ``unsupported_number``: a price, discount, percentage, quantity, date or duration, in Arabic or Chinese
  numerals (九块九, 三百, 两件, 半价, 五折), that the facts do not state.
- ``unsupported_claim``: an offer, gift, guarantee, delivery promise or contact detail (claims.txt: 免费,
  送, 包退, 保证, 明天, 微信…), also spelled in pinyin (mianfei), that the facts do not state.

The facts are the catalog entry the reply answers from and the product's own fields; what a viewer
wrote is never a fact. A text whose every clause passes is sent as it is. Otherwise the clauses that
break a rule are dropped (``rewrite``) when what is left still says something, else nothing is sent
(``block``). Talking points are read aloud by the streamer, not posted: a point whose only problem is an
advertising-law word is shown with a warning instead (``check(kind="point")``).

Pure: no I/O, no clock; a Gate's rules are immutable (it keeps the facts it read lately, so share one per
event loop or thread).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pypinyin import lazy_pinyin

from ..config import packaged
from .numerals import claims, clean

Action = Literal["pass", "rewrite", "block"]
Kind = Literal["chat", "point"]

_CLAUSES = re.compile(r"([，。；！？,;!?\n]+)")
_CONTENT = re.compile(r"[\u4e00-\u9fff]|[0-9A-Za-z]+")
_LETTERS = re.compile(r"[^a-z]")
_VIEWS = 64       # facts texts kept read per gate (products and entries checked lately)
_MIN_PINYIN = 6  # shorter spellings (song, zeng) are ordinary syllables in pinyin chat

RULE_NAMES = {
    "ad_law": "广告法禁用词",
    "unsupported_number": "资料里没有的数字",
    "unsupported_claim": "资料里没有的承诺",
    "name": "观众昵称不能出现在回复里",
}


class Cleared(str):
    """Text that passed the gate. Only :meth:`Gate.check` makes one; OutgoingReply accepts nothing else,
    so a new send path that skips the gate fails the first time it runs."""

    __slots__ = ()

    def __new__(cls, text: str, *, _key: object = None) -> Cleared:
        if _key is not _KEY:
            raise TypeError("only cohost.gate.Gate.check makes Cleared text")
        return super().__new__(cls, text)


_KEY = object()


@dataclass(frozen=True)
class Problem:
    rule: str     # ad_law | unsupported_number | unsupported_claim | name
    word: str     # the offending word or number, as written
    clause: str   # where it stands

    def __str__(self) -> str:
        return f"{self.rule}:{self.word}"

    def explain(self) -> str:
        return f"{RULE_NAMES.get(self.rule, self.rule)}“{self.word}”"


@dataclass(frozen=True)
class Verdict:
    action: Action
    text: str                       # a Cleared string unless blocked ("" then)
    original: str
    problems: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()   # shown with a talking point, not a reason to drop it

    @property
    def ok(self) -> bool:
        return self.action != "block"

    @property
    def rule(self) -> str | None:
        """The first rule broken, as "rule:word" (what the audit log and the CLI print)."""
        return str(self.problems[0]) if self.problems else None

    def explain(self) -> str:
        return "；".join(p.explain() for p in self.problems or self.warnings)


def _word_file(name: str) -> tuple[list[str], list[str]]:
    words, allowed = [], []
    for line in packaged("gate", name).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        (allowed if line.startswith("!") else words).append(line.lstrip("!").strip())
    return words, allowed


@dataclass(frozen=True)
class WordLists:
    banned: tuple[str, ...]
    allowed: tuple[str, ...]
    claims: tuple[tuple[str, ...], ...]     # groups of words that state one claim
    claim_exceptions: tuple[str, ...]

    @classmethod
    def packaged(cls) -> WordLists:
        banned, allowed = _word_file("ad_law.txt")
        lines, exceptions = _word_file("claims.txt")
        groups = tuple(tuple(w.lower() for w in line.split()) for line in lines)
        return cls(tuple(w.lower() for w in banned), tuple(w.lower() for w in allowed), groups,
                   tuple(w.lower() for w in exceptions))


_PACKAGED: WordLists | None = None


def packaged_words() -> WordLists:
    global _PACKAGED
    if _PACKAGED is None:
        _PACKAGED = WordLists.packaged()
    return _PACKAGED


def _mask(text: str, phrases: Iterable[str]) -> str:
    for p in sorted(phrases, key=len, reverse=True):
        if p and p in text:
            text = text.replace(p, "□" * len(p))
    return text


@dataclass(frozen=True)
class Gate:
    """The rules with one shop's word lists: the packaged ones plus what the owner added on /admin."""

    banned_extra: tuple[str, ...] = ()
    allowed_extra: tuple[str, ...] = ()
    words: WordLists = field(default_factory=packaged_words)

    @cached_property
    def _banned(self) -> tuple[str, ...]:
        extra = tuple(clean(w).lower() for w in self.banned_extra if w.strip())
        return tuple(dict.fromkeys(self.words.banned + extra))

    @cached_property
    def _allowed(self) -> tuple[str, ...]:
        return self.words.allowed + tuple(clean(w).lower() for w in self.allowed_extra if w.strip())

    @cached_property
    def _pinyin(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for group in self.words.claims:
            for w in group:
                if re.fullmatch(r"[\u4e00-\u9fff]{2,}", w):
                    p = "".join(lazy_pinyin(w))
                    if len(p) >= _MIN_PINYIN:
                        out[p] = group
        return out

    def with_words(self, banned: Sequence[str], allowed: Sequence[str]) -> Gate:
        return Gate(tuple(banned), tuple(allowed), self.words)

    # -- checks -------------------------------------------------------------------------------------------

    def check(self, text: str, facts: str = "", *, names: Sequence[str] = (), kind: Kind = "chat") -> Verdict:
        """Pass, rewrite or block ``text``. ``names`` are the viewers' names of its leading "@name "
        mentions (the room composes them): they are checked as names, not as claims."""
        prefix, body = _split_mentions(text, names)
        name_problems = [p for n in names for p in self.name_problems(n)]
        if name_problems:
            return Verdict("block", "", text, tuple(name_problems))
        facts_view = self._facts_view(facts)
        pieces = _CLAUSES.split(body)
        kept: list[str] = []
        problems: list[Problem] = []
        warnings: list[Problem] = []
        dropped = False
        for i in range(0, len(pieces), 2):
            clause, sep = pieces[i], pieces[i + 1] if i + 1 < len(pieces) else ""
            found = self._clause_problems(clause, facts_view)
            if kind == "point":
                warnings += [p for p in found if p.rule == "ad_law"]
                found = [p for p in found if p.rule != "ad_law"]
            if found:
                problems += found
                dropped = True
                continue
            kept.append(clause + sep)
        if not dropped:
            return Verdict("pass", Cleared(text, _key=_KEY), text, (), tuple(warnings))
        rest = "".join(kept).strip().lstrip("，。；！？,;!? ").rstrip("，；,; ")
        if len(_CONTENT.findall(rest)) < 2:
            return Verdict("block", "", text, tuple(problems), tuple(warnings))
        return Verdict("rewrite", Cleared(prefix + rest, _key=_KEY), text, tuple(problems), tuple(warnings))

    @cached_property
    def _views(self) -> OrderedDict[str, _FactsView]:
        return OrderedDict()

    def _facts_view(self, facts: str) -> _FactsView:
        """The facts read once: a room checks many texts against the same product (its fields may be
        hundreds of KB), and the gate runs on the event loop."""
        view = self._views.get(facts)
        if view is None:
            view = self._views[facts] = _FactsView(clean(facts).lower(), self)
            if len(self._views) > _VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(facts)
        return view

    def name_problems(self, name: str) -> list[Problem]:
        """Why a viewer's name must not be @mentioned: it would put words in the shop's mouth."""
        s = clean(name).lower()
        found = [Problem("name", w, name) for w in self._ad_law_words(s)]
        masked = _mask(s, self.words.claim_exceptions)
        found += [Problem("name", w, name) for group in self.words.claims for w in group if w in masked][:1]
        found += [Problem("name", c.text, name) for c in claims(s) if c.kind == "pct"]
        letters = _LETTERS.sub("", s)
        found += [Problem("name", p, name) for p in self._pinyin if p in letters][:1]
        return found

    def lint(self, text: str) -> list[Problem]:
        """What a catalog text itself breaks when it is committed: advertising-law words (a number or
        promise in an FAQ answer rests on that answer, so only the word list applies)."""
        s = clean(text).lower()
        return [Problem("ad_law", w, text) for w in self._ad_law_words(s)]

    def _ad_law_words(self, s: str) -> list[str]:
        masked = _mask(s, self._allowed)
        found = [w for w in self._banned if w in masked]
        # 全网第一 is one problem, not also 第一.
        return [w for w in found if not any(w != o and w in o for o in found)]

    def _clause_problems(self, clause: str, facts: _FactsView) -> list[Problem]:
        s = clean(clause).lower()
        if not s.strip():
            return []
        found = [Problem("ad_law", w, clause) for w in self._ad_law_words(s)]
        for c in claims(s):
            if (c.kind, c.value) not in facts.numbers:
                found.append(Problem("unsupported_number", c.text, clause))
        masked = _mask(s, self.words.claim_exceptions)
        for group in self.words.claims:
            word = next((w for w in group if w in masked), None)
            if word is not None and not facts.states(group, masked, masked.index(word), len(word)):
                found.append(Problem("unsupported_claim", word, clause))
        letters = _LETTERS.sub("", s)
        for spelled, group in self._pinyin.items():
            if spelled in letters and not facts.states(group):
                found.append(Problem("unsupported_claim", spelled, clause))
                break
        return found


# Characters that say nothing about what a claim is about (particles, pronouns, filler).
_STOP = set("的了吗呢哦呀啊吧嘛是有就都也还很可以这那个款件我们你您大家给和与或及在到□ ")
_WINDOW = 4
_NUMERALS = set("0123456789.零〇一二两三四五六七八九十百千万")


def _context(text: str, start: int, end: int) -> set[str]:
    """The content characters around a claim word within its clause: what the claim is about."""
    left = _CLAUSES.split(text[max(0, start - _WINDOW):start])[-1]
    right = _CLAUSES.split(text[end:end + _WINDOW])[0]
    # Numbers are the number rule's business (5折 and 五折 are one claim).
    return {c for c in left + right if c not in _STOP and c not in _NUMERALS and _CONTENT.match(c)}


class _FactsView:
    def __init__(self, facts: str, gate: Gate):
        self.text = _mask(facts, gate.words.claim_exceptions)
        self.numbers = {(c.kind, c.value) for c in claims(facts)}

    def states(self, group: tuple[str, ...], text: str = "", start: int = 0, length: int = 0) -> bool:
        """Whether the facts make this claim: a word of its group, about the same thing. 送一台iPhone is
        not supported by 送人很合适, nor 今天全场免费 by 运费险免费: the words around the claim must share
        something with the words around it in the facts (a bare claim, 包邮, needs only the word)."""
        around = _context(text, start, start + length) if text else set()
        for w in group:
            at = self.text.find(w)
            while at >= 0:
                if not around or around & _context(self.text, at, at + len(w)):
                    return True
                at = self.text.find(w, at + 1)
        return False


def _split_mentions(text: str, names: Sequence[str]) -> tuple[str, str]:
    """"@甲 @乙 answer" → ("@甲 @乙 ", "answer") for the names given; the rest is the body."""
    prefix, rest = "", text
    for name in names:
        token = f"@{name} "
        if name and rest.startswith(token):
            prefix += token
            rest = rest[len(token):]
    return prefix, rest
