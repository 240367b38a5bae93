"""Fit the answer/abstain model across several catalogs, and report it on catalogs and cases it never saw.

    .venv/bin/python benchmarks/qmatch.py          # once: public-corpus catalogs under out/qmatch
    .venv/bin/python benchmarks/calibrate.py --rebuild all --write cohost/retrieval/decider.json [--json FILE]

Cases are run through the real engine once; every candidate it scores keeps its match features
(cohost/retrieval/match.py), so fitting and every report below reuse them without re-encoding.

- **fit** sets: each sample shop's `*_tune.jsonl` and the `fit_*` public-corpus catalogs;
- **report** sets: each shop's `*_test.jsonl` and the `report_*` public-corpus catalogs, never used for a
  choice;
- **leave-one-catalog-out**: for each shop, a model fitted and thresholded (out of fold, as above) without
  any of that shop's cases, reported on both of its files;
- **baseline**: the bare embedding cosine (the best-matching key of any entry in scope), with the
  threshold that gives it the most recall at the engine's precision on that very set, a generous baseline.

The threshold (min_confidence) is chosen on out-of-fold decisions: each shop's tune cases decided by a model
fitted without that shop, the corpus's fit catalogs in four folds; the lowest threshold at which both reach
--precision (0.96) is taken. The trees are held monotone in each feature that can only speak for or against
a candidate (MONOTONE), so that more agreement never lowers the confidence on a catalog unlike those seen.

Writes the fitted trees (--write), prints the min_confidence for cohost/config.py and config.yaml, and a table
per set. Another embedder (config.yaml) gets its own model this way: the features carry its similarity scale.
"""

from __future__ import annotations

import argparse
import glob
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from cohost.config import FEATURE_NAMES, Config, load_config
from cohost.engine import TIE, AnswerEngine, Message
from cohost.evaluation import read_cases
from cohost.knowledge.catalog import load_catalog
from cohost.knowledge.entries import same_answer_groups
from cohost.retrieval.decider import Decider

ROOT = Path(__file__).resolve().parent.parent
SHOPS = {  # name: (catalog, tune cases, test cases)
    "sample": ("knowledge/shop.yaml", "knowledge/eval/faq_tune.jsonl", "knowledge/eval/faq_test.jsonl"),
    **{s: (f"knowledge/shops/{s}.yaml", f"knowledge/eval/{s}_tune.jsonl", f"knowledge/eval/{s}_test.jsonl")
       for s in ("beauty", "food", "electronics", "service")},
}
# A shop's case weighs this many corpus cases when fitting.
SHOP_WEIGHT = 3.0
# The corpus's fit catalogs are split this many ways for out-of-fold decisions.
CORPUS_FOLDS = 4
DENSE = FEATURE_NAMES.index("dense")
# Evidence that can only speak for (+1) or against (-1) a candidate: the trees are held to it, so that a
# catalog unlike the ones fitted on never meets a region where more agreement lowers the confidence.
FOR = {"dense", "dense_z", "passage", "support", "lexical", "q_cov", "k_cov", "key_jaccard", "slot_match", "fuzz",
       "margin", "k_cov_margin", "q_cov_margin", "passage_margin", "slot_match_margin", "p_question", "order"}
AGAINST = {"dense_gap", "passage_gap", "unknown", "slot_conflict", "key_extra_slot", "num_conflict", "neg_conflict"}
MONOTONE = [1 if f in FOR else -1 if f in AGAINST else 0 for f in FEATURE_NAMES]


@dataclass
class Case:
    expect: str | None
    screened: bool                   # silent before any candidate was scored (intent, product)
    ids: list[str]
    x: np.ndarray                    # (candidates, features)
    good: np.ndarray                 # candidate states the expected answer
    distinct: list[frozenset[str]]   # each candidate's same-answer group
    cosine_top: bool                 # bare cosine: the top-dense candidate is right
    cosine: float


def collect(engine: AnswerEngine, cases_path: Path) -> list[Case]:
    cases = read_cases(cases_path, ("id", "text"))
    groups = same_answer_groups(engine.entries)
    out = []
    for c in cases:
        d = engine.answer(Message(c["text"], "观众", c.get("on_stage")))
        expect = c.get("expect_faq")
        if not d.candidates:
            out.append(Case(expect, True, [], np.zeros((0, len(FEATURE_NAMES))), np.zeros(0, bool), [], False, 0.0))
            continue
        ids = [k.entry_id for k in d.candidates]
        good = np.array([expect is not None and expect in groups[i] for i in ids])
        best = max(d.candidates, key=lambda k: k.dense)
        out.append(Case(expect, False, ids, np.array([k.features for k in d.candidates]), good,
                        [groups[i] for i in ids], expect is not None and expect in groups[best.entry_id],
                        best.dense))
    return out


def collect_all(cache: Path, rebuild: str | None) -> dict[str, list[Case]]:
    """The features of every case, from the cache unless asked to run them again ("shops": the sample
    shops only, keeping the corpus's; "all")."""
    cached: dict[str, list[Case]] = pickle.loads(cache.read_bytes()) if cache.exists() else {}
    if cached and rebuild is None:
        return cached
    config = load_config()
    # Public-corpus text never goes into the on-disk embedding cache.
    base = AnswerEngine.from_config(Config.model_validate({**config.model_dump(), "cache_dir": ""}))
    sets: dict[str, list[Case]] = {}
    for name, (cat, tune, test) in SHOPS.items():
        if not all((ROOT / p).exists() for p in (cat, tune, test)):
            continue
        engine = base.rebuilt(load_catalog(ROOT / cat))
        for split, path in (("tune", tune), ("test", test)):
            sets[f"{name}:{split}"] = collect(engine, ROOT / path)
        print(f"collected {name}", file=sys.stderr)
    for path in sorted(glob.glob(str(ROOT / "out" / "qmatch" / "*.yaml"))):
        name = f"qmatch:{Path(path).stem}"
        if rebuild == "shops" and name in cached:
            sets[name] = cached[name]
            continue
        engine = base.rebuilt(load_catalog(path))
        sets[name] = collect(engine, Path(path).with_suffix(".jsonl"))
    print(f"collected {len(sets)} sets", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(sets))
    return sets


def fit(sets: dict[str, list[Case]], names: list[str]) -> Decider:
    """Gradient-boosted trees on every scored candidate of the named sets (label: it states the expected
    answer). A shop's cases weigh SHOP_WEIGHT times a corpus case: the corpus is large, and its
    questions are not a live room's."""
    x, y, w = [], [], []
    for n in names:
        weight = 1.0 if n.startswith("qmatch") else SHOP_WEIGHT
        for k in sets[n]:
            if len(k.ids):
                x.append(k.x)
                y.append(k.good)
                w.append(np.full(len(k.ids), weight))
    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_depth=4, min_samples_leaf=40,
                                           l2_regularization=1.0, monotonic_cst=MONOTONE, random_state=0)
    model.fit(np.vstack(x), np.concatenate(y).astype(int), sample_weight=np.concatenate(w))
    return Decider.from_sklearn(model, FEATURE_NAMES)


def decide(cases: list[Case], decider: Decider) -> list[tuple[float, bool, bool]]:
    """(confidence, not a tie, correct) per case, as the engine decides."""
    out = []
    for k in cases:
        if k.screened:
            out.append((0.0, False, False))
            continue
        p = decider.predict(k.x)
        order = np.lexsort((-k.x[:, DENSE], -p))  # as the engine sorts: confidence, then cosine
        top = int(order[0])
        rival = next((int(i) for i in order[1:] if k.ids[int(i)] not in k.distinct[top]), None)
        tie = rival is not None and p[top] - p[rival] < TIE
        out.append((float(p[top]), not tie, bool(k.good[top])))
    return out


@dataclass
class Score:
    answerable: int
    unanswerable: int
    answered: int
    correct: int
    abstained: int

    @property
    def precision(self) -> float:
        return self.correct / self.answered if self.answered else float("nan")

    @property
    def recall(self) -> float:
        return self.correct / self.answerable if self.answerable else float("nan")

    @property
    def abstention(self) -> float:
        return self.abstained / self.unanswerable if self.unanswerable else float("nan")


def score(cases: list[Case], decided: list[tuple[float, bool, bool]], t: float) -> Score:
    answerable = sum(k.expect is not None for k in cases)
    answered = correct = abstained = 0
    for k, (p, ok, right) in zip(cases, decided, strict=True):
        said = ok and p >= t
        answered += said
        correct += said and right
        abstained += k.expect is None and not said
    return Score(answerable, len(cases) - answerable, answered, correct, abstained)


def cosine_baseline(cases: list[Case], precision: float) -> tuple[float, float]:
    """Bare cosine: the most recall any threshold gives at (at least) the given precision."""
    answerable = sum(k.expect is not None for k in cases) or 1
    items = sorted(((k.cosine, k.cosine_top) for k in cases if not k.screened), reverse=True)
    best = (0.0, 1.0)
    correct = 0
    for n, (cos, right) in enumerate(items, start=1):
        correct += right
        if correct / n >= precision and correct / answerable > best[0]:
            best = (correct / answerable, cos)
    return best


def out_of_fold(sets: dict[str, list[Case]], shop_sets: list[str], corpus: list[str]):
    """Decisions on the fit cases by models that never saw them: each shop's cases by a model fitted without
    that shop, the corpus's catalogs in CORPUS_FOLDS folds. A threshold chosen on these holds on a catalog
    the model never saw; one chosen on the cases a model was fitted on is optimistic."""
    shop_d, corpus_d = [], []
    shops = sorted({n.split(":")[0] for n in shop_sets})
    for held in shops:
        d = fit(sets, [n for n in shop_sets if not n.startswith(held + ":")] + corpus)
        shop_d += decide(pooled(sets, [n for n in shop_sets if n.startswith(held + ":")]), d)
    for k in range(CORPUS_FOLDS):
        fold = corpus[k::CORPUS_FOLDS]
        d = fit(sets, shop_sets + [n for n in corpus if n not in fold])
        corpus_d += decide(pooled(sets, fold), d)
    return (pooled(sets, shop_sets), shop_d), (pooled(sets, corpus), corpus_d)


def pick_threshold(shop, corpus, precision: float) -> float:
    """The lowest threshold at which out-of-fold decisions on both the shops' and the corpus's fit cases
    reach the precision target."""
    for t in np.arange(0.30, 0.995, 0.01):
        a, b = score(*shop, float(t)), score(*corpus, float(t))
        if a.answered and a.precision >= precision and (not corpus[0] or (b.answered and b.precision >= precision)):
            return round(float(t), 2)
    return 0.99


def row(name: str, s: Score, base: tuple[float, float] | None = None) -> str:
    cells = [name, str(s.answerable + s.unanswerable), str(s.answerable), str(s.answered),
             f"{s.precision:.3f} ({s.correct}/{s.answered})", f"{s.recall:.3f} ({s.correct}/{s.answerable})",
             f"{s.abstention:.3f} ({s.abstained}/{s.unanswerable})" if s.unanswerable else "–"]
    if base is not None:
        cells.append(f"{base[0]:.3f}")
    return "| " + " | ".join(cells) + " |"


def pooled(sets: dict[str, list[Case]], names: list[str]) -> list[Case]:
    return [k for n in names for k in sets[n]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", type=float, default=0.96,
                    help="precision the threshold must reach out of fold, on the shops' and the corpus's fit cases")
    ap.add_argument("--rebuild", choices=["shops", "all"], default=None,
                    help="run the cases through the engine again (shops: the sample shops only)")
    ap.add_argument("--cache", type=Path, default=ROOT / "out" / "calibration" / "features.pkl")
    ap.add_argument("--write", type=Path, default=None, help="write the fitted model here (e.g. "
                    "cohost/retrieval/decider.json)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--curve", action="store_true",
                    help="also print precision/recall per threshold: out of fold, test files, corpus report half")
    args = ap.parse_args()
    sets = collect_all(args.cache, args.rebuild)
    shops = sorted({n.split(":")[0] for n in sets if not n.startswith("qmatch")})
    corpus_fit = [n for n in sets if n.startswith("qmatch:fit")]
    corpus_report = [n for n in sets if n.startswith("qmatch:report")]

    tunes = [f"{s}:tune" for s in shops]
    decider = fit(sets, tunes + corpus_fit)
    shop_oof, corpus_oof = out_of_fold(sets, tunes, corpus_fit)
    t = pick_threshold(shop_oof, corpus_oof, args.precision)
    a, b = score(*shop_oof, t), score(*corpus_oof, t)
    print(f"min_confidence = {t}  (fitted on {', '.join(tunes)} and {len(corpus_fit)} public-corpus catalogs; "
          f"out of fold at this threshold: shops {a.precision:.3f}/{a.recall:.3f}, corpus "
          f"{b.precision:.3f}/{b.recall:.3f} precision/recall)\n")
    if args.write:
        args.write.write_text(json.dumps(decider.to_json(), separators=(",", ":")), encoding="utf-8")

    if args.curve:
        test, rep = pooled(sets, [f"{s}:test" for s in shops]), pooled(sets, corpus_report)
        dt, dr = decide(test, decider), decide(rep, decider)
        print("| threshold | shops out of fold | corpus out of fold | shops' test files | corpus report half |\n"
              "|---|---|---|---|---|")
        for th in np.arange(0.50, 0.951, 0.02):
            cells = [score(*shop_oof, th), score(*corpus_oof, th), score(test, dt, th), score(rep, dr, th)]
            print(f"| {th:.2f} | " + " | ".join(f"{c.precision:.3f} / {c.recall:.3f}" for c in cells) + " |")
        print()
    header = ("| set | cases | answerable | answered | precision | recall | abstention | cosine recall at same "
              "precision |\n|---|---|---|---|---|---|---|---|")
    report: dict = {"min_confidence": t, "sets": {}, "loco": {},
                    "out_of_fold": {"shops": {**a.__dict__, "precision": a.precision, "recall": a.recall},
                                    "corpus": {**b.__dict__, "precision": b.precision, "recall": b.recall}}}
    print(header)
    groups = [(f"{s}:{split}", [f"{s}:{split}"]) for s in shops for split in ("tune", "test")]
    groups += [("public corpus, fit half", corpus_fit), ("public corpus, report half", corpus_report)]
    for label, names in groups:
        cases = pooled(sets, names)
        s = score(cases, decide(cases, decider), t)
        base = cosine_baseline(cases, s.precision if s.answered else 1.0)
        print(row(label, s, base))
        report["sets"][label] = {**s.__dict__, "precision": s.precision, "recall": s.recall,
                                 "abstention": s.abstention, "cosine_recall": base[0]}
    print("\nEach public-corpus catalog of the report half\n")
    print(header)
    report["corpus_catalogs"] = {}
    for name in corpus_report:
        s = score(sets[name], decide(sets[name], decider), t)
        base = cosine_baseline(sets[name], s.precision if s.answered else 1.0)
        print(row(name.split(":")[1], s, base))
        report["corpus_catalogs"][name] = {**s.__dict__, "cosine_recall": base[0]}
    print("\nLeave one catalog out: fitted and thresholded without any case of the shop, reported on both its files\n")
    print(header)
    for held in shops:
        others = [s for s in shops if s != held]
        names = [f"{s}:{split}" for s in others for split in ("tune", "test")]
        d = fit(sets, names + corpus_fit)
        th = pick_threshold(*out_of_fold(sets, names, corpus_fit), args.precision)
        cases = pooled(sets, [f"{held}:tune", f"{held}:test"])
        s = score(cases, decide(cases, d), th)
        base = cosine_baseline(cases, s.precision if s.answered else 1.0)
        print(row(f"{held} (threshold {th})", s, base))
        report["loco"][held] = {**s.__dict__, "precision": s.precision, "recall": s.recall,
                                "abstention": s.abstention, "cosine_recall": base[0], "threshold": th}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
