"""`cohost eval`: run labelled cases through the engine and write one result line per case.

Catalog owners run this before going live to see which questions their catalog answers. Case files are
JSON lines; keys other than the ones read here are ignored, so labelled files (with expected answers)
can be fed as they are, and `summarise_*` scores them when the labels are present.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .engine import AnswerEngine, Message
from .errors import CohostError
from .jsonl import read_objects
from .understand.intent import INTENTS


def read_cases(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    cases = []
    for n, obj in read_objects(path, "cases file"):
        for key in required:
            if key not in obj:
                raise CohostError(f"{path}: line {n}: missing key '{key}'")
        if not isinstance(obj["text"], str):
            raise CohostError(f"{path}: line {n}: 'text' must be a string")
        cases.append(obj)
    return cases


def run_faq_cases(engine: AnswerEngine, cases: list[dict[str, Any]], *,
                  explain: bool = False) -> Iterator[dict[str, Any]]:
    for case in cases:
        on_stage = case.get("on_stage")
        t0 = time.perf_counter()
        d = engine.answer(Message(case["text"], user=case.get("user") or "观众", on_stage=on_stage))
        latency = (time.perf_counter() - t0) * 1000
        row = {"id": case["id"], "answered": d.answered, "faq_id": d.faq_id,
               "product_id": d.product_id, "reply": d.reply, "latency_ms": round(latency, 3)}
        if explain:
            row["reason"] = d.reason
            row["intent"] = d.intent.label
        yield row


def run_intent_cases(engine: AnswerEngine, cases: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for case in cases:
        t0 = time.perf_counter()
        result = engine.classify_intent(case["text"])
        latency = (time.perf_counter() - t0) * 1000
        yield {"id": case["id"], "intent": result.label, "latency_ms": round(latency, 3)}


@dataclass
class FaqScore:
    cases: int
    answerable: int
    answered: int
    correct: int
    unanswerable: int
    abstained_on_unanswerable: int

    @property
    def precision(self) -> float:
        return self.correct / self.answered if self.answered else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.answerable if self.answerable else 0.0

    @property
    def abstention(self) -> float:
        return self.abstained_on_unanswerable / self.unanswerable if self.unanswerable else 1.0

    def summary(self) -> str:
        """The labelled figures as `cohost eval faq` prints them; a ratio with nothing to divide is n/a, not
        a made-up 1.000 or 0.000."""
        return (f"precision {ratio(self.correct, self.answered)}, recall {ratio(self.correct, self.answerable)}, "
                f"abstention on unanswerable {ratio(self.abstained_on_unanswerable, self.unanswerable)}")


def ratio(n: int, d: int) -> str:
    """'0.950 (19/20)', or 'n/a (0/0)' when there is nothing to divide by."""
    return f"{n / d:.3f} ({n}/{d})" if d else f"n/a ({n}/{d})"


def score_faq(cases: list[dict[str, Any]], results: list[dict[str, Any]]) -> FaqScore | None:
    """Score against `expect_faq` labels when the cases carry them."""
    if not cases or "expect_faq" not in cases[0]:
        return None
    answerable = answered = correct = unanswerable = abstained = 0
    for c, r in zip(cases, results, strict=True):
        expected = c.get("expect_faq")
        if r["answered"]:
            answered += 1
        if expected is None:
            unanswerable += 1
            abstained += not r["answered"]
        else:
            answerable += 1
            correct += r["answered"] and r["faq_id"] == expected
    return FaqScore(len(cases), answerable, answered, correct, unanswerable, abstained)


def score_intent(cases: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Macro-F1, per-label F1 and the confusion matrix, when the cases carry `intent` labels."""
    if not cases or "intent" not in cases[0]:
        return None
    gold = [c["intent"] for c in cases]
    pred = [r["intent"] for r in results]
    confusion = {g: Counter() for g in INTENTS}
    for g, p in zip(gold, pred, strict=True):
        confusion.setdefault(g, Counter())[p] += 1
    f1 = {}
    for label in INTENTS:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if p == label and g != label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        f1[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    present = [lab for lab in INTENTS if any(g == lab for g in gold)]
    macro = sum(f1[lab] for lab in present) / len(present) if present else 0.0
    accuracy = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    return {"macro_f1": macro, "accuracy": accuracy, "f1": f1,
            "confusion": {g: dict(confusion[g]) for g in INTENTS}}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
