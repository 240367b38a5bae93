"""Coverage-gap clustering on the real embedder: paraphrases meet, different questions and products stay apart."""

from __future__ import annotations

import itertools
import json
import random
import re
import time

import numpy as np
import pytest

from cohost.knowledge.gaps import DEFAULT_THRESHOLD, Gap, GapCluster, cluster_gaps, draft_faq

pytestmark = pytest.mark.slow

# Paraphrase groups whose members the clustering must put together; every group is a different question.
PARAPHRASES = {
    "insurance": ["送运费险吗", "有运费险吗", "退货有运费险吗", "运费险送不送"],
    "pregnant": ["孕妇能穿吗", "孕妇可以穿吗", "怀孕了能穿吗", "孕期可以穿吗"],
    "plane": ["能带上飞机吗", "可以带上飞机吗", "能上飞机吗", "坐飞机能带吗"],
    "shrink": ["会缩水吗", "洗了缩水吗", "缩不缩水", "缩水吗"],
    "invoice": ["能开发票吗", "可以开发票吗", "有发票吗", "开票吗"],
    "return": ["支持七天无理由吗", "可以七天无理由退货吗", "七天无理由吗", "支持7天无理由退换吗"],
}
# Same shape, different question: "会X吗" about pilling, shrinking and fading need three FAQs.
DISTINCT = ["会起球吗", "会缩水吗", "会掉色吗", "能机洗吗", "送运费险吗", "孕妇能穿吗", "发顺丰吗", "几天到新疆"]


@pytest.fixture
def make(engine):
    """Builds gaps the way the engine records them: normalised by the engine's own normaliser."""
    ids = itertools.count(1)

    def build(text: str, product_id: str | None = "dress", room: str = "room-1", ts: float | None = None) -> Gap:
        i = next(ids)
        return Gap(i, room, text, engine.normalizer(text), product_id, "no confident answer",
                   1_700_000_000.0 + i if ts is None else ts)

    return build


@pytest.fixture
def embed(engine):
    return engine.embedder.embed_queries


def partition(clusters: list[GapCluster]) -> set[frozenset[int]]:
    return {frozenset(c.gap_ids) for c in clusters}


@pytest.mark.parametrize("order", ["asked", "reversed", "shuffled"])
def test_paraphrases_cluster_together(make, embed, order):
    gaps = [make(q) for qs in PARAPHRASES.values() for q in qs]
    by_text = {g.text: g.id for g in gaps}
    if order == "reversed":
        gaps.reverse()
    elif order == "shuffled":
        random.Random(7).shuffle(gaps)
    clusters = cluster_gaps(gaps, embed)
    assert partition(clusters) == {frozenset(by_text[q] for q in qs) for qs in PARAPHRASES.values()}
    for c in clusters:
        assert set(c.examples) == {g.text for g in gaps if g.id in c.gap_ids}


def test_different_questions_stay_apart(make, embed):
    gaps = [make(q) for q in DISTINCT]
    clusters = cluster_gaps(gaps, embed)
    assert sorted(c.label for c in clusters) == sorted(g.normalized for g in gaps)


def test_threshold_decides_what_merges(make, embed):
    gaps = [make(q) for q in PARAPHRASES["insurance"] + PARAPHRASES["plane"] + ["有運費險嗎"]]
    # Above any cosine only identical normalised texts meet (the traditional spelling joins its simplified twin).
    strict = cluster_gaps(gaps, embed, threshold=1.01)
    assert len(strict) == len({g.normalized for g in gaps}) == len(gaps) - 1
    # Below any cosine everything about one product is one question.
    loose = cluster_gaps(gaps, embed, threshold=-1.0)
    assert partition(loose) == {frozenset(g.id for g in gaps)}


def test_same_question_about_different_products_stays_apart(make, embed):
    gaps = [make("多少钱", "dress") for _ in range(3)] + [make("多少钱", "fryer") for _ in range(2)]
    gaps += [make("这个多少钱", None), make("有运费险吗", "dress"), make("送运费险吗", "fryer")]
    clusters = cluster_gaps(gaps, embed)
    for c in clusters:
        assert {g.product_id for g in gaps if g.id in c.gap_ids} == {c.product_id}
    price = {c.product_id: c for c in clusters if c.label in ("多少钱", "这个多少钱")}
    assert set(price) == {"dress", "fryer", None}
    assert (price["dress"].count, price["fryer"].count, price[None].count) == (3, 2, 1)
    assert price["dress"].label == price["fryer"].label == "多少钱"
    assert price["dress"].id != price["fryer"].id
    insurance = [c for c in clusters if "运费险" in c.label]
    assert sorted(c.product_id for c in insurance) == ["dress", "fryer"]


def test_cluster_fields(make, embed):
    # Normalised "有运费险吗" is asked three times (one in traditional characters) and labels the cluster,
    # although the raw text "送运费险吗" is as frequent as the raw "有运费险吗" and asked earlier.
    asked = [
        ("送运费险吗", "room-b", 110.0),
        ("有运费险吗", "room-a", 130.0),
        ("送运费险吗", "room-a", 100.0),
        ("有没有运费险", "room-c", 150.0),
        ("有运费险吗", "room-b", 120.0),
        ("有運費險嗎", "room-c", 140.0),
    ]
    gaps = [make(text, "dress", room, ts) for text, room, ts in asked]
    gaps.append(make("能带上飞机吗", "dress", "room-a", 90.0))
    (cluster,) = [c for c in cluster_gaps(gaps, embed) if c.count > 1]
    members = sorted(gaps[:6], key=lambda g: g.ts)
    assert cluster.product_id == "dress"
    assert cluster.label == "有运费险吗"
    assert cluster.count == 6
    assert cluster.gap_ids == tuple(g.id for g in members)
    assert cluster.rooms == ("room-a", "room-b", "room-c")
    assert (cluster.first_seen, cluster.last_seen) == (100.0, 150.0)
    # Twice each, the earlier first; then once each, the earlier first.
    assert cluster.examples == ("送运费险吗", "有运费险吗", "有運費險嗎", "有没有运费险")
    (short,) = [c for c in cluster_gaps(gaps, embed, max_examples=2) if c.count > 1]
    assert short.examples == ("送运费险吗", "有运费险吗")


def test_label_ties_go_to_the_earliest(make, embed):
    gaps = [make("有运费险吗", ts=20.0), make("有运费险吗", ts=21.0), make("送运费险吗", ts=30.0),
            make("送运费险吗", ts=10.0)]
    for ordering in (gaps, gaps[::-1]):
        (cluster,) = cluster_gaps(ordering, embed)
        assert cluster.label == "送运费险吗"
    later = [make("有运费险吗", ts=20.0), make("有运费险吗", ts=21.0), make("送运费险吗", ts=30.0)]
    assert [c.label for c in cluster_gaps(later, embed)] == ["有运费险吗"]


def test_ids_are_stable_and_distinct(make, embed):
    gaps = [make(q, room=f"room-{i % 3}") for i, q in enumerate(q for qs in PARAPHRASES.values() for q in qs)]
    gaps += [make("多少钱", "dress"), make("多少钱", "fryer"), make("多少钱", None)]
    first = cluster_gaps(gaps, embed)
    again = cluster_gaps(list(reversed(gaps)), embed)
    assert [(c.id, c.gap_ids) for c in first] == [(c.id, c.gap_ids) for c in again]
    assert len({c.id for c in first}) == len(first) == len(PARAPHRASES) + 3
    assert all(re.fullmatch(r"[0-9a-f]{12}", c.id) for c in first)
    # New gaps that join a cluster without outnumbering its label leave its id alone.
    grown = cluster_gaps([*gaps, make("送运费险吗"), make("退货有运费险吗")], embed)
    assert {c.id for c in grown} == {c.id for c in first}
    assert sorted(c.count for c in grown) == sorted([c.count for c in first if c.label != "送运费险吗"] + [6])
    # The id follows the label: once another wording is asked most, the cluster is a different FAQ-to-be.
    relabelled = cluster_gaps([*gaps, make("退货有运费险吗"), make("退货有运费险吗")], embed)
    assert len({c.id for c in relabelled} - {c.id for c in first}) == 1


def test_order_is_count_then_most_recent(make, embed):
    gaps = [make("能带上飞机吗", ts=500.0)]  # once, most recent of all
    gaps += [make("会缩水吗", ts=t) for t in (100.0, 110.0, 120.0)]  # three times
    gaps += [make("能开发票吗", ts=t) for t in (200.0, 210.0)]  # twice, last at 210
    gaps += [make("孕妇能穿吗", ts=t) for t in (50.0, 300.0)]  # twice, last at 300
    clusters = cluster_gaps(gaps, embed)
    assert [(c.label, c.count) for c in clusters] == [
        ("会缩水吗", 3), ("孕妇能穿吗", 2), ("能开发票吗", 2), ("能带上飞机吗", 1)]


def test_empty_input_needs_no_embedding():
    def embed(texts):
        raise AssertionError("nothing to embed")

    assert cluster_gaps([], embed) == []


def test_each_distinct_text_is_embedded_once(make, embed):
    calls: list[list[str]] = []

    def counting(texts):
        calls.append(list(texts))
        return embed(texts)

    gaps = [make("多少钱", "dress"), make("多少钱", "fryer"), make("多少钱", None), make("有运费险吗"),
            make("有運費險嗎"), make("有运费险吗", "fryer"), make("能上飞机吗")]
    cluster_gaps(gaps, counting)
    embedded = [t for call in calls for t in call]
    assert sorted(embedded) == sorted({g.normalized for g in gaps})
    assert len(embedded) == 3


def test_draft_faq(make, embed):
    gaps = [make(q) for q in ["有运费险吗", "有运费险吗", "送运费险吗", "有没有运费险", "运费险送不送"]]
    (cluster,) = cluster_gaps(gaps, embed)
    draft = draft_faq(cluster)
    assert draft == {"product_id": "dress", "question": "有运费险吗",
                     "variants": ["送运费险吗", "有没有运费险", "运费险送不送"]}

    many = GapCluster("abc", None, "有xxl吗", 9, ("有XXL吗", "有xxl码吗", "xxl有吗", "有没有xxl", "加大码有吗",
                                                  "xxl有货吗", "大码有吗"), tuple(range(9)), ("r",), 1.0, 2.0)
    # The question is the most asked wording as typed; it is not repeated among the variants.
    assert draft_faq(many) == {"product_id": None, "question": "有XXL吗",
                               "variants": ["有xxl码吗", "xxl有吗", "有没有xxl", "加大码有吗", "xxl有货吗"]}


def test_to_json_round_trips(make, embed):
    gaps = [make("有运费险吗", room="room-a", ts=1.5), make("送运费险吗", room="room-b", ts=2.5)]
    (cluster,) = cluster_gaps(gaps, embed)
    data = json.loads(json.dumps(cluster.to_json(), ensure_ascii=False))
    assert data == {"id": cluster.id, "product_id": "dress", "label": "有运费险吗", "count": 2,
                    "examples": ["有运费险吗", "送运费险吗"], "gap_ids": [gaps[0].id, gaps[1].id],
                    "rooms": ["room-a", "room-b"], "first_seen": 1.5, "last_seen": 2.5}


def test_thousands_of_gaps_quickly():
    """5000 gaps, 1500 distinct texts spread around 300 questions about 3 products: the clusters recovered
    are exactly the questions, in well under the time one embedding batch of that size takes."""
    rng = np.random.default_rng(0)
    dim, questions, texts_per_question = 384, 300, 5
    centres = rng.standard_normal((questions, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((questions * texts_per_question, dim))
    noise *= 0.2 / np.linalg.norm(noise, axis=1, keepdims=True)
    vectors = np.repeat(centres, texts_per_question, axis=0) + noise
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    row = {f"q{i}": i for i in range(len(vectors))}

    def embed(texts):
        return vectors[[row[t] for t in texts]]

    products = ["dress", "fryer", "serum"]
    picks = rng.integers(0, len(vectors), 5000)
    picks[:len(vectors)] = np.arange(len(vectors))  # every text at least once
    gaps = [Gap(n, f"room-{n % 7}", f"q{i}", f"q{i}", products[(i // texts_per_question) % 3], "x", float(n))
            for n, i in enumerate(picks)]
    start = time.perf_counter()
    clusters = cluster_gaps(gaps, embed, threshold=DEFAULT_THRESHOLD)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0
    assert sum(c.count for c in clusters) == len(gaps)
    expected = {}
    for g in gaps:
        expected.setdefault(int(g.text[1:]) // texts_per_question, set()).add(g.id)
    assert partition(clusters) == {frozenset(ids) for ids in expected.values()}
    assert [c.count for c in clusters] == sorted((c.count for c in clusters), reverse=True)
