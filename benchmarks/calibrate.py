"""Fit the answer/abstain model (DecisionFeatures weights) on labelled FAQ cases.

    .venv/bin/python benchmarks/calibrate.py knowledge/eval/faq_tune.jsonl [--precision 0.95]

Prints the weights, bias and min_confidence to put in cohost/config.py (DEFAULT_WEIGHTS), and the
precision/recall they give on the file. Fit on the tune file only; report on the test file.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from cohost.config import FEATURE_NAMES, load_config
from cohost.engine import AnswerEngine, Message

EXPECTED_SIGN = {"dense": 1, "lexical": 1, "margin": 1, "term_coverage": 1, "unknown_terms": -1,
                 "p_question": 1, "no_product": -1}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cases")
    ap.add_argument("--precision", type=float, default=0.95, help="target precision when picking the threshold")
    ap.add_argument("--c", type=float, default=100.0)
    args = ap.parse_args()
    engine = AnswerEngine.from_config(load_config())
    cases = [json.loads(line) for line in open(args.cases, encoding="utf-8") if line.strip()]
    x, y, answerable = [], [], 0
    for c in cases:
        answerable += c["expect_faq"] is not None
        d = engine.answer(Message(c["text"], "u", c.get("on_stage")))
        if d.features is None or d.entry is None:
            continue
        x.append(d.features.vector())
        y.append(int(d.entry.id == c["expect_faq"]))
    xa, ya = np.asarray(x), np.asarray(y)
    # Each feature's direction is known in advance; a fitted weight with the wrong sign is noise from a
    # small sample, so that feature is dropped and the model refitted.
    keep = list(range(len(FEATURE_NAMES)))
    while True:
        model = LogisticRegression(C=args.c, max_iter=5000).fit(xa[:, keep], ya)
        wrong = [k for k, w in zip(keep, model.coef_[0], strict=True) if np.sign(w) != EXPECTED_SIGN[FEATURE_NAMES[k]]]
        if not wrong:
            break
        keep.remove(wrong[0])
    p = model.predict_proba(xa[:, keep])[:, 1]
    best = None
    for t in np.arange(0.30, 0.96, 0.01):
        sel = p >= t
        if not sel.any():
            continue
        prec = ya[sel].mean()
        rec = ya[sel].sum() / answerable
        if prec >= args.precision and (best is None or rec > best[2]):
            best = (round(float(t), 2), prec, rec)
    weights = {FEATURE_NAMES[k]: round(float(w), 3) for k, w in zip(keep, model.coef_[0], strict=True)}
    print("DEFAULT_WEIGHTS =", json.dumps(weights, ensure_ascii=False))
    print("DEFAULT_BIAS =", round(float(model.intercept_[0]), 3))
    if best:
        print(f"min_confidence = {best[0]}  (precision {best[1]:.3f}, recall {best[2]:.3f} on {args.cases})")
    else:
        print("no threshold reaches the target precision", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
