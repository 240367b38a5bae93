"""A persistent text → vector cache, one file per embedding model.

Start-up embeds the intent seed set and every FAQ key; with the cache a restart or a re-index embeds
only texts it has not seen. The file is written atomically, so a crash never leaves a torn cache, and a
cache that cannot be read is ignored (and rebuilt), never trusted.

Viewer messages go through ``embed_live``: a message that repeats a FAQ key or an intent seed, or a
recent message, costs no encoder pass. "Repeats" is judged on the text's ``form`` (the engine uses
``encoder_form``: punctuation, a leading @mention, trailing particles set aside), and a new text is
encoded in that form, so its variants share one pass. Live vectors stay in a bounded in-memory table
and never reach the disk: viewer text is not kept. The gap report clusters viewer texts through
``embed_viewer``, which keeps nothing at all.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .embedders import Embedder

log = logging.getLogger(__name__)


LIVE_SIZE = 8192
PASSAGE = "\u241fpassage:"  # a symbol the normalizer drops, so no query text starts with it


class CachedEmbedder:
    """Wraps an Embedder; query embeddings of seen texts come from memory or disk."""

    def __init__(self, inner: Embedder, cache_dir: Path | None, *, live_size: int = LIVE_SIZE,
                 form: Callable[[str], str] | None = None):
        self.inner = inner
        self._form = form or (lambda t: t)
        self._by_form: dict[str, str] = {}  # form -> a stored text with that form
        self.name = inner.name
        self.dim = inner.dim
        self.workers = getattr(inner, "workers", 1)
        self._lock = threading.Lock()
        self._vectors: dict[str, np.ndarray] = {}
        self._live: OrderedDict[str, np.ndarray] = OrderedDict()
        self._live_size = live_size
        self._path = cache_dir / f"embeddings-{re.sub(r'[^A-Za-z0-9_.-]', '_', inner.name)}.npz" if cache_dir else None
        self._dirty = False
        if self._path is not None and self._path.exists():
            try:
                with np.load(self._path, allow_pickle=False) as data:
                    texts, vectors = data["texts"], data["vectors"]
                if vectors.shape[1:] == (self.dim,) and len(texts) == len(vectors):
                    self._vectors = {str(t): v for t, v in zip(texts, vectors, strict=True)}
                    for t in self._vectors:
                        if not t.startswith(PASSAGE):
                            self._by_form.setdefault(self._form(t), t)
            except Exception as e:  # a corrupt cache is rebuilt, not trusted
                log.warning("ignoring unreadable embedding cache %s: %s", self._path, e)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            fresh = self.inner.embed_queries(missing)
            with self._lock:
                self._vectors.update(zip(missing, fresh, strict=True))
                for t in missing:
                    self._by_form.setdefault(self._form(t), t)
                self._dirty = True
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._vectors[t] for t in texts]).astype(np.float32, copy=False)

    def known(self, text: str) -> np.ndarray | None:
        """The vector of a text embedded before (a catalog key, an intent seed, a recent message) or of
        one with the same form; None when there is none."""
        return self._known(text, self._form(text))

    def _known(self, text: str, form: str) -> np.ndarray | None:
        with self._lock:
            v = self._vectors.get(text)
            if v is not None:
                return v
            v = self._live.get(form)
            if v is not None:
                self._live.move_to_end(form)
                return v
            stored = self._by_form.get(form)
            return None if stored is None else self._vectors[stored]

    def embed_live(self, texts: Sequence[str]) -> np.ndarray:
        """Embed viewer messages, reusing known vectors; new forms are encoded once and remembered in
        memory only."""
        forms = {t: self._form(t) for t in dict.fromkeys(texts)}
        found = {t: v for t, f in forms.items() if (v := self._known(t, f)) is not None}
        missing = list(dict.fromkeys(f for t, f in forms.items() if t not in found))
        if missing:
            fresh = dict(zip(missing, self.inner.embed_queries(missing), strict=True))
            found.update((t, fresh[f]) for t, f in forms.items() if t not in found)
            with self._lock:
                self._live.update(fresh)
                while len(self._live) > self._live_size:
                    self._live.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def embed_viewer(self, texts: Sequence[str]) -> np.ndarray:
        """Query embeddings of viewer texts exactly as given (not by form), for the gap report: a text that
        is a stored key or seed reuses its vector; any other is encoded and returned, and kept nowhere here.

        ``embed_queries`` would add them to the table that ``save`` writes to disk, and the live table is
        the rooms' (a backlog of thousands would push out what they just saw); the caller keeps the
        vectors in memory for as long as it needs them."""
        unique = list(dict.fromkeys(texts))
        with self._lock:
            found = {t: v for t in unique if (v := self._vectors.get(t)) is not None}
        missing = [t for t in unique if t not in found]
        if missing:
            found.update(zip(missing, self.inner.embed_queries(missing), strict=True))
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)

    def forget_live(self) -> None:
        with self._lock:
            self._live.clear()

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Passage embeddings (the text an answer states), cached like catalog keys under a prefix no
        query text can have."""
        keys = [PASSAGE + t for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._vectors))
        if missing:
            fresh = self.inner.embed_passages([k[len(PASSAGE):] for k in missing])
            with self._lock:
                self._vectors.update(zip(missing, fresh, strict=True))
                self._dirty = True
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32, copy=False)

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        with self._lock:
            texts = list(self._vectors)
            vectors = np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
            self._dirty = False
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp.npz")
        np.savez(tmp, texts=np.asarray(texts, dtype=str), vectors=vectors)
        tmp.replace(self._path)
