"""The faiss index over entry keys, scoped by product.

Every key (an FAQ question, each of its variants, the generated keys of price and spec entries) is one
row of an IndexFlatIP. A search is restricted with an IDSelector to the keys in scope: the product the
message is about plus the shop-wide entries. Scores are aggregated per entry (its best key).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import faiss
import numpy as np

from ..knowledge.entries import Entry
from .embedders import Embedder

# Single queries are fastest on one OpenMP thread; more threads add a floor of several ms (faiss#2953).
faiss.omp_set_num_threads(1)

ALL = "*"
Progress = Callable[[int, int], None]
# Keys are embedded in chunks that the embedder spreads over its workers; progress is reported between
# chunks.
EMBED_CHUNK = 16


@dataclass(frozen=True)
class Hit:
    entry: Entry
    dense: float
    key: int = -1       # the row of the entry's best key (``EntryIndex.key_texts``)
    support: int = 1    # how many of the entry's keys are among the search's hits
    keys: tuple[tuple[int, float], ...] = ()  # every key of the entry among the hits: (row, cosine), best first


class EntryIndex:
    """Immutable once built: a new catalog means a new index, swapped in whole."""

    def __init__(self, entries: Sequence[Entry], embedder: Embedder, normalize: Callable[[str], str], *,
                 progress: Progress | None = None):
        self.entries = list(entries)
        self.embedder = embedder
        key_texts: list[str] = []
        owners: list[int] = []
        for i, e in enumerate(self.entries):
            for k in dict.fromkeys(normalize(k) for k in e.keys):
                key_texts.append(k)
                owners.append(i)
        self._owners = np.asarray(owners, dtype=np.int64)
        self.key_texts = key_texts
        vectors = np.zeros((len(key_texts), embedder.dim), np.float32)
        # What each entry states, as an E5 passage: a question is also matched against the answer.
        passages = [normalize(f"{e.question} {e.answer}" if e.kind == "faq" else e.answer) for e in self.entries]
        self.passages = np.zeros((len(passages), embedder.dim), np.float32)
        total = len(key_texts) + len(passages)
        for start in range(0, len(key_texts), EMBED_CHUNK):
            if progress is not None:
                progress(start, total)
            vectors[start:start + EMBED_CHUNK] = embedder.embed_queries(key_texts[start:start + EMBED_CHUNK])
        for start in range(0, len(passages), EMBED_CHUNK):
            if progress is not None:
                progress(len(key_texts) + start, total)
            self.passages[start:start + EMBED_CHUNK] = embedder.embed_passages(passages[start:start + EMBED_CHUNK])
        if progress is not None:
            progress(total, total)
        self._row = {e.id: i for i, e in enumerate(self.entries)}
        self._index = faiss.IndexFlatIP(embedder.dim)
        if len(vectors):
            self._index.add(vectors)
        self.key_count = len(key_texts)
        shop_keys = [k for k, o in enumerate(owners) if self.entries[o].product_id is None]
        by_product: dict[str, list[int]] = {}
        for k, o in enumerate(owners):
            pid = self.entries[o].product_id
            if pid is not None:
                by_product.setdefault(pid, []).append(k)
        # A selector per scope, built once: the shop's keys plus one product's keys, or everything.
        self._scopes: dict[str | None, tuple[faiss.SearchParameters, int, object]] = {}
        for pid, keys in [(None, shop_keys), *((p, shop_keys + ks) for p, ks in by_product.items())]:
            ids = np.asarray(sorted(keys), dtype=np.int64)
            sel = faiss.IDSelectorBatch(ids)
            self._scopes[pid] = (faiss.SearchParameters(sel=sel), len(ids), sel)
        self._scopes[ALL] = (faiss.SearchParameters(), len(key_texts), None)

    def search(self, vector: np.ndarray, scope: str | None, k: int) -> list[Hit]:
        """Best entries for one query vector within a scope (a product id, None for shop-only, ALL)."""
        params, size, _sel = self._scopes.get(scope, self._scopes[None])
        if size == 0:
            return []
        scores, ids = self._index.search(vector.reshape(1, -1), min(k, size), params=params)
        found: dict[int, list[tuple[int, float]]] = {}
        for s, key in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
            if key >= 0:
                found.setdefault(int(self._owners[key]), []).append((key, s))
        return [Hit(self.entries[o], keys[0][1], keys[0][0], len(keys), tuple(keys)) for o, keys in found.items()]

    def passage_score(self, vector: np.ndarray, entry: Entry) -> float:
        """Cosine of a query vector with what the entry states (its passage)."""
        return float(self.passages[self._row[entry.id]] @ vector)
