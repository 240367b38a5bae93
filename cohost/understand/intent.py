"""Intent of one danmaku, with exactly seven labels.

The classifier is trained at start-up from the labelled seeds packaged beside this module (a second or so;
seed embeddings are cached on disk). It combines three kinds of evidence:
- character n-grams of the normalised text (robust to word segmentation of chat slang),
- the sentence embedding that retrieval computes anyway (so intent costs no extra encoder pass),
- a few shape features of the raw text that normalisation erases on purpose: floods of one character,
  contact details and links however disguised, insults and attacks on groups (``abuse.py``), which mark spam.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from ..errors import CohostError
from .abuse import signals as abuse_signals

Intent = Literal["question", "purchase", "request", "greeting", "chitchat", "complaint", "spam"]
INTENTS: tuple[Intent, ...] = ("question", "purchase", "request", "greeting", "chitchat", "complaint", "spam")
# The Chinese seeds shipped with the package (intent.seed: null).
PACKAGED_SEED = "intent_seed.jsonl"

_RUN = re.compile(r"(.)\1{4,}")


def shape_features(raw: str) -> np.ndarray:
    """Features of the raw text that normalisation removes: floods, contact details, length, and the abuse
    signals of ``abuse.py`` (disguised contacts and links, insults, attacks on groups)."""
    n = max(len(raw), 1)
    longest_run = max((len(m.group()) for m in _RUN.finditer(raw)), default=1)
    distinct = len(set(raw)) / n
    contact, insult, group_attack = abuse_signals(raw)
    return np.array([
        min(longest_run / 10.0, 2.0),
        contact,
        min(n / 40.0, 2.0),
        1.0 - distinct if n >= 6 else 0.0,
        insult,
        group_attack,
    ], dtype=np.float32)


N_SHAPES = len(shape_features(""))


# A message is screened out (no encoder pass) only when the text-only model is this sure it is not a question.
SCREEN_CONFIDENCE = 0.8
SCREEN_MAX_QUESTION = 0.03


@dataclass(frozen=True)
class IntentResult:
    label: Intent
    confidence: float
    probs: dict[str, float]


def load_labelled(path: Path) -> list[tuple[str, Intent]]:
    """Read {"text", "intent"} lines; bad lines are an error naming the line."""
    rows: list[tuple[str, Intent]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            text, label = obj["text"], obj["intent"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CohostError(f"{path}: line {n}: expected {{\"text\", \"intent\"}}: {e}") from None
        if label not in INTENTS:
            raise CohostError(f"{path}: line {n}: unknown intent {label!r}; expected one of {INTENTS}")
        rows.append((text, label))
    return rows


@dataclass(frozen=True)
class TextFeatures:
    """What the classifier reads from the text itself, computed once per message and shared by the
    screen and the full classifier: each text's tf-idf n-grams as (vocabulary index, weight) arrays,
    and its shape features."""

    grams: tuple[tuple[np.ndarray, np.ndarray], ...]
    shapes: np.ndarray

    def take(self, rows: Sequence[int]) -> TextFeatures:
        return TextFeatures(tuple(self.grams[r] for r in rows), self.shapes[list(rows)])

    def __len__(self) -> int:
        return len(self.grams)

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """The n-gram part of a linear model: (texts, outputs)."""
        out = np.zeros((len(self.grams), weights.shape[1]), dtype=np.float64)
        for r, (idx, val) in enumerate(self.grams):
            if len(idx):
                out[r] = val @ weights[idx]
        return out


class GramVectorizer:
    """The fitted TfidfVectorizer's transform, without its per-call input checks.

    sklearn's transform spends about a millisecond per call validating its input, more than the rest of
    the answer path's Python work; live messages come one or a few at a time. The result is the same
    (tests/test_intent.py compares them).
    """

    def __init__(self, vectorizer: TfidfVectorizer):
        self._analyze = vectorizer.build_analyzer()
        self._vocab: dict[str, int] = dict(vectorizer.vocabulary_)
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._norm = vectorizer.norm

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, int] = {}
        for gram in self._analyze(text):
            j = self._vocab.get(gram)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        idx = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        tf = np.array([counts[j] for j in idx.tolist()], dtype=np.float64)
        if self._sublinear:
            tf = np.log(tf) + 1.0 if len(tf) else tf
        val = tf * self._idf[idx]
        if self._norm == "l2" and len(val):
            n = np.sqrt(val @ val)
            if n > 0:
                val = val / n
        return idx, val


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class IntentClassifier:
    """Logistic regression over n-grams + sentence embedding + shape features.

    Prediction multiplies by the fitted coefficients directly: sklearn's predict_proba costs about a
    millisecond per call in input checks, which is a tenth of the whole answer path.
    """

    def __init__(self, vectorizer: TfidfVectorizer, model: LogisticRegression, embed_weight: float,
                 screen: LogisticRegression):
        self._vec = vectorizer
        self._grams = GramVectorizer(vectorizer)
        self._embed_weight = embed_weight
        self._labels: list[Intent] = [str(c) for c in model.classes_]  # type: ignore[misc]
        n_grams = len(vectorizer.vocabulary_)
        coef = model.coef_
        self._w_grams = coef[:, :n_grams].T.copy()
        self._w_embed = coef[:, n_grams:-N_SHAPES].T * embed_weight
        self._w_shape = coef[:, -N_SHAPES:].T.copy()
        self._b = model.intercept_.copy()
        self._s_grams = screen.coef_[:, :n_grams].T.copy()
        self._s_shape = screen.coef_[:, -N_SHAPES:].T.copy()
        self._s_b = screen.intercept_.copy()
        self._q = self._labels.index("question")

    @classmethod
    def train(cls, texts: Sequence[str], raw: Sequence[str], labels: Sequence[Intent], embeddings: np.ndarray,
              *, embed_weight: float = 1.0, c: float = 8.0) -> IntentClassifier:
        # One BLAS thread: on a small machine busy with the encoder and a live room, a BLAS thread per
        # core made training five times slower (about 16 s instead of 3 s per engine build).
        with threadpool_limits(limits=1, user_api="blas"):
            return cls._train(texts, raw, labels, embeddings, embed_weight=embed_weight, c=c)

    @classmethod
    def _train(cls, texts: Sequence[str], raw: Sequence[str], labels: Sequence[Intent], embeddings: np.ndarray,
               *, embed_weight: float, c: float) -> IntentClassifier:
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=1)
        grams = vec.fit_transform(texts)
        shapes = np.vstack([shape_features(r) for r in raw])
        x = sparse.hstack([grams, sparse.csr_matrix(embeddings * embed_weight), sparse.csr_matrix(shapes)]).tocsr()
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, list(labels))
        # The screen sees no embedding: it can rule out obvious non-questions before the encoder runs.
        xs = sparse.hstack([grams, sparse.csr_matrix(shapes)]).tocsr()
        screen = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(xs, list(labels))
        return cls(vec, model, embed_weight, screen)

    def text_features(self, texts: Sequence[str], raw: Sequence[str]) -> TextFeatures:
        shapes = np.vstack([shape_features(r) for r in raw]) if len(raw) else np.zeros((0, N_SHAPES), np.float32)
        return TextFeatures(tuple(self._grams(t) for t in texts), shapes)

    def _result(self, row: np.ndarray) -> IntentResult:
        best = int(np.argmax(row))
        return IntentResult(self._labels[best], float(row[best]),
                            {lab: float(p) for lab, p in zip(self._labels, row, strict=True)})

    def screen(self, f: TextFeatures) -> tuple[list[IntentResult | None], np.ndarray]:
        """Intent from the text alone, for messages that are plainly not questions (None otherwise),
        and each message's probability of being a question from the text alone.

        Under load most danmaku are greetings, reactions, purchases and spam; deciding those without an
        encoder pass leaves the encoder to the questions, and the probability says which to encode first.
        """
        if len(f) == 0:
            return [], np.zeros(0, np.float32)
        probs = _softmax(f.dot(self._s_grams) + f.shapes @ self._s_shape + self._s_b)
        out: list[IntentResult | None] = []
        for row in probs:
            best = int(np.argmax(row))
            plain = best != self._q and row[best] >= SCREEN_CONFIDENCE and row[self._q] < SCREEN_MAX_QUESTION
            out.append(self._result(row) if plain else None)
        return out, np.asarray(probs[:, self._q])

    def classify_features(self, f: TextFeatures, embeddings: np.ndarray) -> list[IntentResult]:
        if len(f) == 0:
            return []
        z = f.dot(self._w_grams) + embeddings @ self._w_embed + f.shapes @ self._w_shape + self._b
        return [self._result(row) for row in _softmax(np.asarray(z))]

    def classify_many(self, texts: Sequence[str], raw: Sequence[str], embeddings: np.ndarray) -> list[IntentResult]:
        return self.classify_features(self.text_features(texts, raw), embeddings)

    def classify(self, text: str, raw: str, embedding: np.ndarray) -> IntentResult:
        return self.classify_many([text], [raw], embedding.reshape(1, -1))[0]


def train_from_seed(seed: Path | None, normalize: Callable[[str], str],
                    embed: Callable[[Sequence[str]], np.ndarray]) -> IntentClassifier:
    """Train from a seed file of {"text", "intent"} lines; None: the seeds packaged with cohost."""
    if seed is None:
        with resources.as_file(resources.files(__package__).joinpath(PACKAGED_SEED)) as path:
            rows = load_labelled(path)
    else:
        rows = load_labelled(seed)
    if not rows:
        raise CohostError(f"{seed or PACKAGED_SEED}: no labelled examples")
    raw = [t for t, _ in rows]
    texts = [normalize(t) for t in raw]
    return IntentClassifier.train(texts, raw, [lab for _, lab in rows], embed(texts))
