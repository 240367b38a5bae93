"""Evidence that a catalog entry answers a question: features of one (question, candidate) pair.

Every feature is independent of any one catalog, so a model fitted on several shops and on a public
question-matching corpus carries over to a shop it never saw (benchmarks/calibrate.py fits it). They
compare the question with the entry's best-matching key (an FAQ question or variant) and with all the
text that states the entry's facts (keys, answer, product fields):

- the dense cosine and how far it trails the best candidate;
- how much of the question's topic, weighted by how rare each word is in general Chinese (jieba's
  dictionary frequencies), the entry states, and how much of the key's topic the question asks about
  (a key that adds a condition the question lacks is another question);
- slot values (places, sizes, measures, colours, quantities) compared on their own: stated, answered by
  a range the entry lists, or swapped for another value the key names;
- a number or a negation that differs between question and key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import jieba
from rapidfuzz import fuzz

from ..understand.slots import Slot, find_slots, slot_types, without_slots
from .lexical import content_tokens, grams

_NUM = re.compile(r"\d+(?:\.\d+)?")
_RANGE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|~|～|到|至)\s*(\d+(?:\.\d+)?)")
_NEG = re.compile(r"不|没|别|未|非|无(?!理由)")
_IDF_MAX = 14.0


@lru_cache(maxsize=1)
def _freq_total() -> float:
    jieba.initialize()
    return float(jieba.dt.total)


@lru_cache(maxsize=65536)
def idf(word: str) -> float:
    """How much a word says, from its frequency in general Chinese: 的 says little, 雪纺 a lot."""
    f = jieba.dt.FREQ.get(word) or 0
    return min(_IDF_MAX, math.log(_freq_total() / (f + 1.0))) / _IDF_MAX


@dataclass(frozen=True)
class TextView:
    """A question or key analysed once: its slot values, topic words (weighted) and numbers."""

    text: str
    slots: tuple[Slot, ...]
    terms: tuple[tuple[str, float], ...]
    numbers: frozenset[str]
    negated: bool

    @classmethod
    def of(cls, text: str) -> TextView:
        slots = tuple(find_slots(text))
        rest = without_slots(text, list(slots))
        terms = tuple((t, idf(t)) for t in dict.fromkeys(content_tokens(rest)))
        numbers = frozenset(_NUM.findall(text)) | frozenset(re.sub(r"\D", "", s.value) for s in slots
                                                            if s.type == "quantity")
        return cls(text, slots, terms, numbers, len(_NEG.findall(text)) % 2 == 1)

    def slot_types(self) -> set[str]:
        return {s.type for s in self.slots}


@dataclass(frozen=True)
class EvidenceView:
    """All the text that states one entry's facts."""

    text: str
    grams: frozenset[str]
    values: dict[str, set[str]]
    numbers: frozenset[str]
    ranges: tuple[tuple[float, float], ...] = ()   # "26-37码", "3到5天": a number inside one is stated

    @classmethod
    def of(cls, text: str) -> EvidenceView:
        ranges = tuple((min(float(a), float(b)), max(float(a), float(b))) for a, b in _RANGE.findall(text))
        return cls(text, frozenset(grams(text)), slot_types(text), frozenset(_NUM.findall(text)), ranges)

    def states_number(self, number: str) -> bool:
        return number in self.numbers or any(lo <= float(number) <= hi for lo, hi in self.ranges)


def covered(term: str, evidence: str) -> float:
    """1 when the evidence states the term, a half for a word it states in part (油皮 beside 油性)."""
    if term in evidence:
        return 1.0
    if len(term) >= 2 and not term.isascii():
        hit = sum(c in evidence for c in term)
        return 0.5 * hit / len(term) if hit else 0.0
    return 0.0


def _share(terms: tuple[tuple[str, float], ...], score) -> float:
    total = sum(w for _, w in terms)
    if total <= 0:
        return 1.0
    return sum(w * score(t) for t, w in terms) / total


@dataclass(frozen=True)
class Scores:
    """What retrieval measured of one candidate, beside the text itself."""

    dense: float            # cosine with the entry's best key
    top_dense: float        # the best key cosine of any candidate
    dense_z: float          # how far the dense stands out from this query's other hits (query-relative)
    passage: float          # cosine with what the entry states (question and answer as an E5 passage)
    top_passage: float
    support: int            # the entry's keys among the hits
    lexical: float          # share of the question's characters the entry states
    margin: float           # dense lead over the best candidate that would say something else


def order_agreement(q: TextView, key: TextView) -> float:
    """Share of the pairs of topic words both name that they name in the same order: 把水变成冰 is not
    冰变成水. 1 when fewer than two words are shared."""
    kpos = {t: i for i, (t, _) in enumerate(key.terms)}
    shared = [kpos[t] for t, _ in q.terms if t in kpos]
    pairs = [(a, b) for i, a in enumerate(shared) for b in shared[i + 1:]]
    return sum(a < b for a, b in pairs) / len(pairs) if pairs else 1.0


def key_coverage(key: TextView, q: TextView) -> float:
    """Share of the key's topic (weighted) that the question asks about."""
    return _share(key.terms, lambda t: covered(t, q.text))


def pair_features(q: TextView, key: TextView, ev: EvidenceView, r: Scores, *, no_product: bool,
                  p_question: float, catalog_grams: frozenset[str], lists_values: bool = False) -> dict[str, float]:
    """``lists_values``: the entry is a product field that lists the values there are (尺码: S/M/L/XL), so a
    value it does not list is answered by the list, never a different question."""
    q_cov = _share(q.terms, lambda t: covered(t, ev.text))
    k_cov = key_coverage(key, q)
    # A word is known to the catalog when it, or any two-character piece of it, appears somewhere in it.
    unknown = 1.0 - _share(q.terms, lambda t: float(t in catalog_grams or any(
        t[i:i + 2] in catalog_grams for i in range(len(t) - 1))))
    ranged = conflict = 0
    key_values: dict[str, set[str]] = {}
    for s in key.slots:
        key_values.setdefault(s.type, set()).add(s.value)
    for s in q.slots:
        number = re.sub(r"[^\d.]", "", s.value)
        stated = (s.value in ev.values.get(s.type, ()) or s.value in ev.text
                  or (s.type in ("size", "body") and bool(number) and ev.states_number(number)))
        if stated:
            continue
        if key_values.get(s.type) and not lists_values:
            conflict = 1    # the key names another value of this slot: another question
        elif ev.values.get(s.type):
            ranged = 1      # the entry lists the values there are: its answer states the range
    extra = 1.0 if key.slot_types() - q.slot_types() else 0.0
    # The key names the very value asked about ("有大码吗" for "有最大码吗"): the strongest slot evidence.
    slot_match = sum(s.value in key_values.get(s.type, ()) for s in q.slots) / len(q.slots) if q.slots else 0.0
    num_conflict = 1.0 if (q.numbers and key.numbers and q.numbers.isdisjoint(key.numbers)
                           and not all(ev.states_number(n) for n in q.numbers)) else 0.0
    qg = grams("".join(t for t, _ in q.terms))
    kg = grams("".join(t for t, _ in key.terms))
    return {
        "dense": r.dense, "dense_gap": r.top_dense - r.dense, "dense_z": r.dense_z, "passage": r.passage,
        "passage_gap": r.top_passage - r.passage, "support": min(r.support, 4) / 4.0, "lexical": r.lexical,
        "q_cov": q_cov, "k_cov": k_cov, "key_jaccard": len(qg & kg) / len(qg | kg) if qg | kg else 1.0,
        "unknown": unknown, "slot_ranged": float(ranged), "slot_conflict": float(conflict),
        "key_extra_slot": extra, "slot_match": slot_match, "num_conflict": num_conflict,
        "neg_conflict": float(q.negated != key.negated), "order": order_agreement(q, key),
        "fuzz": fuzz.ratio(q.text, key.text) / 100.0, "margin": r.margin, "no_product": float(no_product),
        "p_question": p_question,
        # Long questions carry more detail that can differ from a key: the model learns a stricter bar.
        "q_len": min(len(q.text), 40) / 20.0, "k_len": min(len(key.text), 40) / 20.0,
    }
