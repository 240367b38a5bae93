"""The answer engine: what one danmaku means and what the catalog says about it.

    normalise → intent → resolve product → retrieve (one encoder pass + one faiss search) → decide → compose

The engine answers only when the catalog clearly holds the answer and stays silent otherwise: a wrong
public answer about price or size costs more than silence. Every decision carries its reason, so
operators can see why the bot kept quiet.

The engine is synchronous and thread-safe; on an event loop call it through asyncio.to_thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .config import FEATURE_NAMES, Config
from .dialog.compose import answer_body, compose_message
from .knowledge.catalog import Catalog
from .knowledge.entries import Entry, catalog_entries, same_answer_groups
from .retrieval.cache import CachedEmbedder
from .retrieval.decider import Decider, load_decider
from .retrieval.embedders import Embedder, make_embedder
from .retrieval.index import ALL, EntryIndex, Hit, Progress
from .retrieval.lexical import grams
from .retrieval.match import EvidenceView, Scores, TextView, covered, key_coverage, pair_features
from .understand.intent import IntentClassifier, IntentResult, TextFeatures, shape_features, train_from_seed
from .understand.normalize import Normalizer, encoder_form
from .understand.products import ProductResolver, Resolution

# Confidence gap below which two different answers count as a tie.
# A decision is cached by (normalized text, product on stage, the raw text's shape features).
CacheKey = tuple[str, str | None, bytes]
TIE = 0.02
# Candidates (by dense + lexical rank) the answer model scores.
RERANK = 8
# Keys of one entry compared with the question, and the weight of their topic coverage in choosing one.
KEYS_PER_ENTRY = 4
KEY_COVERAGE_BONUS = 0.03
# Below this probability of "question", a message the classifier labels otherwise is not answered.
QUESTION_FLOOR = 0.05


@dataclass(frozen=True)
class Message:
    text: str
    user: str | None = None
    on_stage: str | None = None
    urgent: bool = False  # a paying viewer: encoded first when the encoder is busy


@dataclass(frozen=True, eq=False)
class Pending:
    """A distinct message text (and its repeats in the same batch) that needs an encoder pass."""

    engine: AnswerEngine
    key: CacheKey
    indices: tuple[int, ...]          # positions in the batch given to triage
    messages: tuple[Message, ...]
    resolution: Resolution
    features: TextFeatures
    p_question: float                 # from the text alone: encode the likeliest questions first
    urgent: bool


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    dense: float
    lexical: float
    score: float                        # the answer model's confidence that this entry answers the message
    features: tuple[float, ...] = ()    # in FEATURE_NAMES order
    key: str = ""                       # the entry's key that matched best
    key_row: int = -1                   # its row in the index (EntryIndex.key_texts)

    def feature(self, name: str) -> float:
        return self.features[FEATURE_NAMES.index(name)]


@dataclass(frozen=True)
class Decision:
    """What the engine concluded about one message."""

    text: str
    normalized: str
    intent: IntentResult
    product_id: str | None
    product_how: str
    answered: bool
    reason: str
    entry: Entry | None = None
    score: float = 0.0
    answer: str | None = None   # what to say: the entry's answer, naming the product when asked by link
    reply: str | None = None    # a preview of the chat message to this one viewer (the room composes the real one)
    candidates: tuple[Candidate, ...] = field(default=(), repr=False)  # best first
    cached: bool = False

    @property
    def faq_id(self) -> str | None:
        return self.entry.id if self.answered and self.entry else None


class AnswerEngine:
    def __init__(self, catalog: Catalog, config: Config, *, embedder: Embedder | CachedEmbedder | None = None,
                 intent: IntentClassifier | None = None, progress: Progress | None = None,
                 decider: Decider | None = None):
        """Build the engine for one catalog. A new catalog version builds a new engine that shares the
        old one's embedder and intent classifier (``engine.rebuilt(catalog)``); ``progress(done, total)``
        is called while the catalog keys are embedded."""
        self.config = config
        self.catalog = catalog
        if isinstance(embedder, CachedEmbedder):
            self.embedder = embedder
        else:
            cache_dir = config.resolve(config.cache_dir) if config.cache_dir else None
            self.embedder = CachedEmbedder(embedder or make_embedder(config.embedder), cache_dir, form=encoder_form)
        words: list[str] = []
        for p in catalog.products:
            words += [p.name, *p.aliases, *p.specs.keys()]
        self.normalizer = Normalizer(words)
        self.resolver = ProductResolver(catalog)
        self.entries = catalog_entries(catalog)
        self.index = EntryIndex(self.entries, self.embedder, self.normalizer, progress=progress)
        self._by_id = {e.id: e for e in self.entries}
        self._evidence = {e.id: EvidenceView.of(self.normalizer(e.evidence)) for e in self.entries}
        self._catalog_text = " ".join(v.text for v in self._evidence.values())
        self._catalog_grams = frozenset(grams(self._catalog_text))
        self._key_views = [TextView.of(k) for k in self.index.key_texts]
        self._same_answer = same_answer_groups(self.entries)
        cfg = config.retrieval
        self.decider = decider or load_decider(config.resolve(cfg.decider) if cfg.decider else None, FEATURE_NAMES)
        self._products = {p.id: p for p in catalog.products}
        self.intent = intent or train_from_seed(config.resolve(config.intent.seed) if config.intent.seed else None,
                                                self.normalizer,
                                                self.embedder.embed_queries)
        self.embedder.save()
        self._cache: OrderedDict[CacheKey, Decision] = OrderedDict()
        self._cache_lock = threading.Lock()
        # The first call pays for lazy initialisation in jieba, sklearn and the encoder; pay it now,
        # not on the first viewer's question.
        self.answer(Message("这个多少钱", None, None))
        self.clear_cache()

    def rebuilt(self, catalog: Catalog, progress: Progress | None = None) -> AnswerEngine:
        """An engine for another catalog version, sharing this one's models (only new keys are embedded)."""
        return AnswerEngine(catalog, self.config, embedder=self.embedder, intent=self.intent, progress=progress,
                            decider=self.decider)

    @classmethod
    def from_config(cls, config: Config, catalog: Catalog | None = None) -> AnswerEngine:
        from .knowledge.catalog import load_catalog

        return cls(catalog or load_catalog(config.resolve(config.catalog)), config)

    # -- public API -------------------------------------------------------------------------------------

    def answer(self, message: Message) -> Decision:
        return self.answer_many([message])[0]

    def answer_many(self, messages: Sequence[Message]) -> list[Decision]:
        """Decide every message of a batch."""
        results, pending = self.triage(messages)
        for p, decisions in zip(pending, self.finish(pending), strict=True):
            for i, d in zip(p.indices, decisions, strict=True):
                results[i] = d
        return [d for d in results if d is not None]

    def triage(self, messages: Sequence[Message]) -> tuple[list[Decision | None], list[Pending]]:
        """Decide what needs no encoder pass: cached texts, plain non-questions, and texts embedded before
        (catalog keys, intent seeds, recent messages). The rest come back as Pending, one per distinct
        text, with the text's probability of being a question, to be passed to ``finish``; their slots
        in the first list are None.

        Under load the encoder is the scarce resource: the caller encodes the likeliest questions first.
        """
        results: list[Decision | None] = [None] * len(messages)
        fresh: dict[CacheKey, list[int]] = {}
        for i, m in enumerate(messages):
            # The raw text's shape is part of the key: normalisation folds 哈×3 and 哈×30 (a flood) into one
            # text, and the intent differs.
            key = (self.normalizer(m.text), m.on_stage, shape_features(m.text).tobytes())
            hit = self._cache_get(key)
            if hit is not None:
                results[i] = self._personalise(replace(hit, text=m.text, cached=True), m)
            else:
                fresh.setdefault(key, []).append(i)
        keys = list(fresh)
        if not keys:
            return results, []
        firsts = [messages[fresh[k][0]] for k in keys]
        features = self.intent.text_features([k[0] for k in keys], [m.text for m in firsts])
        screened, p_question = self.intent.screen(features)
        pending: list[Pending] = []
        for n, (key, m, intent) in enumerate(zip(keys, firsts, screened, strict=True)):
            group = [messages[i] for i in fresh[key]]
            if intent is not None:
                decision = Decision(m.text, key[0], intent, m.on_stage, "screened", False, f"intent is {intent.label}")
                decided = self._settle(key, decision, group)
            else:
                res = self.resolver.resolve(key[0], m.on_stage)
                p = Pending(self, key, tuple(fresh[key]), tuple(group), res, features.take([n]),
                            float(p_question[n]), any(g.urgent for g in group))
                vec = self.embedder.known(res.rest)
                if vec is None:
                    pending.append(p)
                    continue
                decided = self._finish_one(p, vec)
            for i, d in zip(fresh[key], decided, strict=True):
                results[i] = d
        return results, pending

    def finish(self, pending: Sequence[Pending]) -> list[list[Decision]]:
        """Decide triaged messages with one encoder call for the texts not yet embedded. Each item's
        decisions are in the order of its messages."""
        if any(p.engine is not self for p in pending):
            raise ValueError("a message triaged by another engine must be triaged again")
        # Texts embedded meanwhile (by another call) are reused, not encoded again.
        vectors = self.embedder.embed_live([p.resolution.rest for p in pending])
        return [self._finish_one(p, v) for p, v in zip(pending, vectors, strict=True)]

    def _finish_one(self, p: Pending, vec: np.ndarray) -> list[Decision]:
        hit = self._cache_get(p.key)  # decided meanwhile by another call
        if hit is not None:
            return [self._personalise(replace(hit, text=m.text, cached=True), m) for m in p.messages]
        intent = self.intent.classify_features(p.features, vec[None, :])[0]
        decision = self._decide(p.messages[0].text, p.key[0], p.resolution, vec, intent)
        return self._settle(p.key, decision, list(p.messages))

    def _settle(self, key: CacheKey, decision: Decision, messages: list[Message]) -> list[Decision]:
        """Cache a decision and personalise it for every message that asked it."""
        self._cache_put(key, decision)
        return [self._personalise(decision if n == 0 else replace(decision, text=m.text, cached=True), m)
                for n, m in enumerate(messages)]

    def classify_intent(self, text: str) -> IntentResult:
        """Intent alone, on the same text and embedding the full path would use."""
        norm = self.normalizer(text)
        vec = self.embedder.embed_live([self.resolver.resolve(norm, None).rest])[0]
        return self.intent.classify(norm, text, vec)

    def bare_search(self, text: str) -> None:
        """One encoder pass plus one faiss search: the floor that the full path is measured against."""
        vec = self.embedder.inner.embed_queries([text])
        self.index.search(vec[0], ALL, self.config.retrieval.top_k)

    def clear_cache(self) -> None:
        """Forget what live traffic taught: cached decisions and the vectors of recent messages."""
        with self._cache_lock:
            self._cache.clear()
        self.embedder.forget_live()

    # -- decision -----------------------------------------------------------------------------------------

    def _decide(self, raw: str, norm: str, res: Resolution, vec: np.ndarray, intent: IntentResult) -> Decision:
        base = Decision(raw, norm, intent, res.product_id, res.how, False, "")
        # Spam (ads, abuse, attempts to instruct the bot) is never answered, however well it matches.
        # Other non-questions ("拍了", "主播好美") are answered only when the classifier also sees a
        # real chance of a question in them ("收到坏的怎么办" is a complaint that an FAQ answers).
        p_question = intent.probs.get("question", 0.0)
        if intent.label == "spam" or (intent.label != "question" and p_question < QUESTION_FLOOR):
            return replace(base, reason=f"intent is {intent.label}")
        if res.how == "ambiguous":
            return replace(base, reason="names more than one product")
        cfg = self.config.retrieval
        if res.product_id is not None and res.product_id not in self._products:
            # A product the catalog does not hold is on stage: the shop's own answers (shipping, invoices,
            # returns) still hold; no product's answer may be said for it.
            base = replace(base, product_id=None)
            scope: str | None = None
        else:
            scope = res.product_id if res.product_id is not None else ALL
        hits = self.index.search(vec, scope, cfg.top_k)
        if not hits:
            return replace(base, reason="nothing in the catalog to match")
        query = TextView.of(res.rest)
        # Slot values count too: "有最大码吗" is all slot, and an entry that says 大码 states it.
        qgrams = grams("".join(t for t, _ in query.terms) + "".join(s.value for s in query.slots))
        ranked = []
        for h in hits:
            lexical = len(qgrams & self._evidence[h.entry.id].grams) / len(qgrams) if qgrams else 0.0
            ranked.append(((1 - cfg.lexical_weight) * h.dense + cfg.lexical_weight * lexical, lexical, h))
        ranked.sort(key=lambda r: -r[0])
        denses = np.array([h.dense for h in hits])
        mean, spread = float(denses.mean()), float(denses.std()) + 0.01
        ranked = ranked[:RERANK]
        top_dense = max(h.dense for _, _, h in ranked)
        passages = {h.entry.id: self.index.passage_score(vec, h.entry) for _, _, h in ranked}
        top_passage = max(passages.values())
        scored: list[Candidate] = []
        found: list[dict[str, float]] = []
        for _, lexical, h in ranked:
            same = self._same_answer[h.entry.id]
            rival_dense = max((o.dense for _, _, o in ranked if o.entry.id not in same), default=None)
            row = self._best_key(query, h)
            key = self._key_views[row]
            measured = Scores(h.dense, top_dense, (h.dense - mean) / spread, passages[h.entry.id], top_passage,
                              h.support, lexical, h.dense - rival_dense if rival_dense is not None else 0.1)
            f = pair_features(query, key, self._evidence[h.entry.id], measured, no_product=scope == ALL,
                              p_question=p_question, catalog_grams=self._catalog_grams,
                              lists_values=h.entry.kind == "spec")
            scored.append(Candidate(h.entry.id, h.dense, lexical, 0.0, (), key.text, row))
            found.append(f)
        # How each candidate compares with the best one that would say something else.
        for c, f in zip(scored, found, strict=True):
            rivals = [g for o, g in zip(scored, found, strict=True) if o.entry_id not in self._same_answer[c.entry_id]]
            for name in ("k_cov", "q_cov", "passage", "slot_match"):
                f[f"{name}_margin"] = f[name] - max((g[name] for g in rivals), default=0.0)
        scored = [replace(c, features=tuple(f[n] for n in FEATURE_NAMES)) for c, f in zip(scored, found, strict=True)]
        probs = self.decider.predict(np.array([c.features for c in scored]))
        scored = [replace(c, score=float(p)) for c, p in zip(scored, probs, strict=True)]
        scored.sort(key=lambda c: (-c.score, -c.dense))
        top = scored[0]
        # Entries that state the same fact are one answer; the FAQ is the one said (its owner wrote it).
        group = [c for c in scored if c.entry_id in self._same_answer[top.entry_id]]
        chosen = next((c for c in group if self._by_id[c.entry_id].kind == "faq"), top)
        entry = self._by_id[chosen.entry_id]
        rival = next((c for c in scored if c.entry_id not in self._same_answer[top.entry_id]), None)
        decided = replace(base, entry=entry, score=top.score, candidates=tuple(scored))
        # A tie between answers that differ is never broken by chance: "多少钱" with nothing on stage.
        if rival is not None and top.score - rival.score < TIE and top.score >= cfg.min_confidence:
            return replace(decided, reason=f"ambiguous: {top.entry_id} and {rival.entry_id} match equally well")
        if top.score < cfg.min_confidence:
            why = f"not confident ({top.score:.2f} < {cfg.min_confidence}) in {top.entry_id}"
            detail = self._why_not(query, top)
            return replace(decided, reason=why + (f"; {detail}" if detail else ""))
        return replace(decided, answered=True, reason=f"matched ({top.score:.2f})",
                       product_id=entry.product_id or res.product_id)

    def _best_key(self, query: TextView, h: Hit) -> int:
        """The entry's key that best states the question: the closest one, with a small bonus for the
        share of its topic the question asks about, so that "有大码吗" is compared with its FAQ's own
        "有大码吗" rather than the longer "有大码吗？胖一点能穿吗？"."""
        best, best_score = h.key, -1.0
        for row, cos in h.keys[:KEYS_PER_ENTRY]:
            score = cos + KEY_COVERAGE_BONUS * key_coverage(self._key_views[row], query)
            if score > best_score:
                best, best_score = row, score
        return best

    def _why_not(self, query: TextView, c: Candidate) -> str:
        """What kept a candidate from being said, in words that are true of the catalog."""
        ev = self._evidence[c.entry_id]
        key = self._key_views[c.key_row]
        missing = [t for t, _ in query.terms if covered(t, ev.text) < 1.0]
        unknown = [t for t in missing if not any(ch in self._catalog_text for ch in t)]
        if unknown:
            return f"asks about {'/'.join(unknown)}, which the catalog does not state"
        if c.feature("slot_conflict"):
            mine = "/".join(s.value for s in query.slots)
            theirs = "/".join(s.value for s in key.slots)
            return f"asks about {mine}; the matched question is about {theirs}"
        if c.feature("key_extra_slot"):
            return f"the matched question \"{c.key}\" adds {'/'.join(s.value for s in key.slots)}"
        if c.feature("neg_conflict"):
            return f"one of the question and \"{c.key}\" is negated"
        if c.feature("num_conflict"):
            return f"its number differs from \"{c.key}\""
        if missing:
            return f"the answer does not mention {'/'.join(missing)}"
        if c.feature("margin") < 0.02:
            return "another entry that says something else matches about as well"
        return ""

    def _personalise(self, decision: Decision, m: Message) -> Decision:
        if not decision.answered or decision.entry is None:
            return decision
        label = None
        if decision.product_how == "link" and decision.product_id in self._products:
            link = self._products[decision.product_id].link
            label = f"{link}号" if link is not None else None
        answer = answer_body(decision.entry, product_label=label)
        reply, _ = compose_message(answer, [m.user] if m.user else [], max_chars=self.config.reply.max_chars,
                                   mention=self.config.reply.mention)
        return replace(decision, answer=answer, reply=reply)

    # -- cache ------------------------------------------------------------------------------------------

    def _cache_get(self, key: CacheKey) -> Decision | None:
        with self._cache_lock:
            d = self._cache.get(key)
            if d is not None:
                self._cache.move_to_end(key)
            return d

    def _cache_put(self, key: CacheKey, d: Decision) -> None:
        size = self.config.retrieval.cache_size
        if size <= 0:
            return
        with self._cache_lock:
            self._cache[key] = d
            self._cache.move_to_end(key)
            while len(self._cache) > size:
                self._cache.popitem(last=False)

