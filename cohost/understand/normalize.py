"""Text normalisation for danmaku.

Viewers type fast and loose: traditional characters, full-width letters, emoji, "多少钱多少钱？？？", and
near-homophone typos from pinyin input methods ("包油" for 包邮, "广冬" for 广东). The Normalizer maps all of
that onto one canonical form so that retrieval and intent see the same text for the same question.

Typo correction is driven by pinyin, not by a table of typos: a substring that is not a known word but
sounds like exactly one word of the shopping vocabulary (plus the catalog's own words) is replaced by it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jieba
import opencc
from pypinyin import lazy_pinyin

from .forms import canonical_question

_LEXICON = Path(__file__).with_name("lexicon.txt")
_CJK = re.compile(r"[\u4e00-\u9fff]+")
# Repeats: a non-digit character three or more times, or a phrase of 2+ characters repeated.
# Digits are left alone so that "1000mAh" and "1010" survive.
_CHAR_RUN = re.compile(r"([^\d])\1{2,}")
_PHRASE_RUN = re.compile(r"((?:(?!\d).){2,}?)\1+")
_PUNCT_RUN = re.compile(r"([!?.,~。，！？、…~;；:：])[!?.,~。，！？、…~;；:：]*")
_SPACES = re.compile(r"\s+")
_FUZZY = [("zh", "z"), ("ch", "c"), ("sh", "s"), ("ang", "an"), ("eng", "en"), ("ing", "in")]
# jieba's dictionary frequency above which a substring is a real word in its own right and is kept as typed.
_COMMON_WORD_FREQ = 50

jieba.setLogLevel(60)

# What a danmaku says once the way it is typed is set aside: punctuation, spacing, an @mention or 请问 in
# front, modal particles at the end. "多少钱?", "多少钱呀" and "@主播 多少钱" ask one thing.
_FORM_PUNCT = re.compile(r"(?<!\d)[.,](?!\d)|[!?~。，！？、…;；:：\"'“”‘’()（）【】\[\]<>《》/|\\-]+")
# A mention's name ends at a space; "@主播" is the one name that needs none.
ADDRESS_LEAD = re.compile(r"^(?:@主播|@\S+\s|请问一下|请问|问一下|问下)\s*")
_FORM_TAIL = re.compile(r"[呀啊呢哦啦嘛吖哈噢喔]+$")
_FORM_CJK_SPACE = re.compile(r"(?<=[\u4e00-\u9fff]) +| +(?=[\u4e00-\u9fff])")


def encoder_form(normalized: str) -> str:
    """The form of a normalised danmaku whose vector stands for every way of typing it.

    Variants differ only in ways the encoder should not care about, so one encoder pass serves them
    all: in a burst, "多少钱?", "多少钱呀" and "@主播 多少钱" cost one pass, not three. Only the vector is
    shared; intent and the decision still read the text as typed. A text with nothing left (a lone
    "??") keeps its own form."""
    form = normalized
    for _ in range(3):  # "@主播 请问多少钱呀~" peels in a few rounds
        before = form
        form = ADDRESS_LEAD.sub("", _FORM_PUNCT.sub(" ", form).strip())
        form = _FORM_TAIL.sub("", form).strip()
        if form == before:
            break
    form = _FORM_CJK_SPACE.sub("", form)
    form = _SPACES.sub(" ", form).strip()
    return form or normalized


def _is_dropped_char(ch: str) -> bool:
    # Emoji and pictographs (So), modifier symbols, private use, variation selectors and zero-width joiners.
    cat = unicodedata.category(ch)
    return cat in ("So", "Sk", "Co", "Cs", "Cf") or 0xFE00 <= ord(ch) <= 0xFE0F


def _fuzzy_syllable(s: str) -> str:
    for a, b in _FUZZY:
        s = s.replace(a, b)
    if s.startswith("n"):
        s = "l" + s[1:]
    return s


@lru_cache(maxsize=65536)
def _char_pinyin(ch: str) -> str:
    return _fuzzy_syllable(lazy_pinyin(ch)[0])


def pinyin_key(text: str) -> str:
    """A fuzzy, toneless pinyin key: 广冬 and 广东 share one; so do 敏感鸡 and 敏感肌."""
    return " ".join(_fuzzy_syllable(p) for p in lazy_pinyin(text))


def load_lexicon(path: Path = _LEXICON) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [w.strip() for w in lines if w.strip() and not w.startswith("#")]


@dataclass(frozen=True)
class _Vocab:
    words: frozenset[str]
    by_key: dict[str, tuple[str, ...]]
    max_len: int


class Normalizer:
    """Canonical form of a danmaku. Thread-safe after construction; pure function of its vocabulary."""

    def __init__(self, extra_words: Iterable[str] = ()):
        self._t2s = opencc.OpenCC("t2s")
        jieba.initialize()  # loads the word frequencies used to keep real words as typed
        words = {w for w in (*load_lexicon(), *extra_words) if 2 <= len(w) <= 6 and _CJK.fullmatch(w)}
        by_key: dict[str, list[str]] = {}
        for w in sorted(words):
            by_key.setdefault(pinyin_key(w), []).append(w)
        self._vocab = _Vocab(frozenset(words), {k: tuple(v) for k, v in by_key.items()},
                             max(map(len, words), default=2))

    @property
    def vocabulary(self) -> frozenset[str]:
        return self._vocab.words

    def __call__(self, text: str) -> str:
        return self.normalize(text)

    def normalize(self, text: str) -> str:
        text = unicodedata.normalize("NFKC", text)  # full-width -> half-width
        text = "".join(ch for ch in text if not _is_dropped_char(ch))
        text = self._t2s.convert(text).lower()
        text = _SPACES.sub(" ", text).strip()
        # Spaces between Chinese characters carry no meaning ("有 大码 吗").
        text = re.sub(r"(?<=[\u4e00-\u9fff]) (?=[\u4e00-\u9fff])", "", text)
        text = _PUNCT_RUN.sub(r"\1", text)
        text = _CHAR_RUN.sub(r"\1\1", text)
        text = _PHRASE_RUN.sub(r"\1", text)
        return canonical_question(_CJK.sub(lambda m: self._correct(m.group()), text))

    def _correct(self, run: str) -> str:
        """Replace near-homophone typos inside one run of Chinese characters."""
        vocab = self._vocab
        if len(run) < 2:
            return run
        # A typo is replaced only where it starts and ends on a word boundary of the run: "有赠品吗" is
        # 有 / 赠品 / 吗, so "有赠" (which sounds like 邮政) is not a piece to correct.
        bounds = {0}
        for word in jieba.cut(run, HMM=False):
            bounds.add(max(bounds) + len(word))
        out: list[str] = []
        i = 0
        while i < len(run):
            replaced = False
            for length in range(min(vocab.max_len, len(run) - i), 1, -1):
                piece = run[i:i + length]
                if piece in vocab.words:
                    out.append(piece)
                    i += length
                    replaced = True
                    break
                if i not in bounds or i + length not in bounds:
                    continue
                key = " ".join(_char_pinyin(c) for c in piece)
                candidates = vocab.by_key.get(key)
                if candidates and len(candidates) == 1 and (jieba.dt.FREQ.get(piece) or 0) <= _COMMON_WORD_FREQ:
                    out.append(candidates[0])
                    i += length
                    replaced = True
                    break
            if not replaced:
                out.append(run[i])
                i += 1
        return "".join(out)
