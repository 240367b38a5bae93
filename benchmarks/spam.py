"""Spam and abuse: how much of it the live room never answers, and how much ordinary chat it wrongly drops.

    .venv/bin/python benchmarks/spam.py [--config config.yaml] [--cold ../shared/data/cold]
        [--set knowledge/spam/danmaku.jsonl] [--sets cold_test,cold_dev,own_tune,own_report] [--limit N] [--json]

"Flagged" is what the live room does with a message: the engine (built from the config, as `cohost run`
builds it) decides it through ``AnswerEngine.triage`` and ``finish`` (``answer_many``), in batches of
``dialog.max_batch``, with no product on stage, and the message is flagged when the decision's intent is
``spam``: the room counts it as spam on the overlay and never answers it, however well it matches the
catalog. "Silent" (any decision that is not an answer: spam, complaint, chitchat, an unmatched question)
is printed beside it.

Sets:
- ``cold_test``, ``cold_dev``: COLD (Chinese offensive-language detection, Apache-2.0), read by path from
  ../shared/data/cold, never copied: label 1 (offensive) should be flagged, label 0 (safe) should not.
  The dev split may be used to choose things; the test split only to report them.
- ``own_tune``, ``own_report``: knowledge/spam/danmaku.jsonl (label spam | ok, and a kind), split by a stable
  hash of the text: a line belongs to the tune half when the first byte of sha256(text as UTF-8) is even,
  to the report half when it is odd. Nothing is chosen on the report half.

``--limit N`` keeps the first N rows of each set (a quick check; the figures of a full run need none).
``--alone`` decides each text with the engine's cache cleared first, instead of in live batches: the engine
shares a decision among texts with one normalised form ("哈哈哈" and a flood of 哈), so live figures depend
on the order of the rows; ``--alone`` shows what each message gets by itself.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_COLD = ROOT.parent / "shared" / "data" / "cold"
DEFAULT_SET = ROOT / "knowledge" / "spam" / "danmaku.jsonl"
SETS = ("cold_test", "cold_dev", "own_tune", "own_report")


@dataclass(frozen=True)
class Row:
    text: str
    spam: bool          # the gold label: offensive (COLD 1) or spam (own set)
    group: str          # COLD: topic; own set: kind
    detail: str = ""    # COLD test: fine-grained label


def half(text: str) -> str:
    """The own set's split: tune when the first byte of sha256(text) is even, else report."""
    return "tune" if hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0 else "report"


def read_cold(path: Path) -> list[Row]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [Row(r["TEXT"], r["label"] == "1", r["topic"], r.get("fine-grained-label") or "")
                for r in csv.DictReader(f) if r.get("TEXT", "").strip()]


def read_own(path: Path) -> list[tuple[str, Row]]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        obj = json.loads(line)
        if obj.get("label") not in ("spam", "ok"):
            raise SystemExit(f"{path}: line {n}: label must be spam or ok")
        out.append((half(obj["text"]), Row(obj["text"], obj["label"] == "spam", obj["kind"])))
    return out


def load_sets(names: Iterable[str], cold: Path, own: Path) -> dict[str, list[Row]]:
    sets: dict[str, list[Row]] = {}
    own_rows = read_own(own) if any(n.startswith("own_") for n in names) else []
    for name in names:
        if name in ("cold_test", "cold_dev"):
            sets[name] = read_cold(cold / f"{name.removeprefix('cold_')}.csv")
        elif name in ("own_tune", "own_report"):
            sets[name] = [r for h, r in own_rows if h == name.removeprefix("own_")]
        else:
            raise SystemExit(f"unknown set {name!r}; expected some of {', '.join(SETS)}")
    return sets


def decide(engine: Any, texts: list[str], batch: int, *, alone: bool = False) -> list[Any]:
    """Decisions for the texts, the way the live room's runner gets them (triage, then finish).

    The engine shares one decision among texts with the same normalised form, in a batch and through its
    cache, as it does live ("哈哈哈" and "哈哈哈哈哈哈哈哈哈哈" normalise alike). ``alone``: each text is decided
    on its own, with the cache cleared before it, which shows what the classifier says of each message."""
    from cohost.engine import Message

    if alone:
        out = []
        for t in texts:
            engine.clear_cache()
            out += engine.answer_many([Message(t)])
        return out
    engine.clear_cache()
    out = []
    for i in range(0, len(texts), batch):
        out += engine.answer_many([Message(t) for t in texts[i:i + batch]])
    return out


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def score(rows: list[Row], decisions: list[Any]) -> dict[str, Any]:
    flagged = [d.intent.label == "spam" for d in decisions]
    silent = [not d.answered for d in decisions]
    tp = sum(f and r.spam for f, r in zip(flagged, rows, strict=True))
    fp = sum(f and not r.spam for f, r in zip(flagged, rows, strict=True))
    pos = sum(r.spam for r in rows)
    neg = len(rows) - pos
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, pos)
    f1 = round(2 * precision * recall / (precision + recall), 4) if precision and recall else 0.0
    labels: dict[str, Counter[str]] = {"spam": Counter(), "ok": Counter()}
    for r, d in zip(rows, decisions, strict=True):
        labels["spam" if r.spam else "ok"][d.intent.label] += 1
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for f, r in zip(flagged, rows, strict=True):
        for key in [(r.group, "spam" if r.spam else "ok")] + ([(f"fine-{r.detail}", "spam" if r.spam else "ok")]
                                                               if r.detail else []):
            groups[key][0] += 1
            groups[key][1] += f
    return {
        "n": len(rows), "spam": pos, "ok": neg, "tp": tp, "fp": fp, "fn": pos - tp, "tn": neg - fp,
        "precision": precision, "recall": recall, "f1": f1, "false_alarm_rate": _ratio(fp, neg),
        "silent_on_spam": _ratio(sum(s and r.spam for s, r in zip(silent, rows, strict=True)), pos),
        "answered_ok": sum(not s and not r.spam for s, r in zip(silent, rows, strict=True)),
        "labels": {k: dict(sorted(v.items())) for k, v in labels.items()},
        "groups": [{"group": g, "gold": gold, "n": n, "flagged": k, "flagged_rate": _ratio(k, n)}
                   for (g, gold), (n, k) in sorted(groups.items())],
    }


def run(config_path: Path | None, names: list[str], cold: Path, own: Path, limit: int | None,
        errors: int = 0, alone: bool = False) -> dict[str, Any]:
    from cohost.config import load_config
    from cohost.engine import AnswerEngine

    sets = load_sets(names, cold, own)
    cfg = load_config(config_path)
    t0 = time.perf_counter()
    engine = AnswerEngine.from_config(cfg)
    report: dict[str, Any] = {"config": str(config_path) if config_path else None,
                              "engine_build_s": round(time.perf_counter() - t0, 1), "alone": alone, "sets": {}}
    for name, rows in sets.items():
        rows = rows[:limit] if limit else rows
        t0 = time.perf_counter()
        decisions = decide(engine, [r.text for r in rows], cfg.dialog.max_batch, alone=alone)
        s = score(rows, decisions)
        s["seconds"] = round(time.perf_counter() - t0, 1)
        if errors and name in ("cold_dev", "own_tune"):  # never looked at on a report set
            wrong = [(r, d) for r, d in zip(rows, decisions, strict=True) if (d.intent.label == "spam") != r.spam]
            s["errors"] = [{"text": r.text, "gold": "spam" if r.spam else "ok", "group": r.group,
                            "label": d.intent.label, "confidence": round(d.intent.confidence, 3)}
                           for r, d in wrong[:errors]]
        report["sets"][name] = s
    return report


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_report(report: dict[str, Any]) -> None:
    how = "each text alone, cache cleared" if report.get("alone") else "live batches of dialog.max_batch"
    print(f"engine built in {report['engine_build_s']} s; {how}; flagged = decision's intent is spam (never answered)")
    print()
    print("| set | n | spam / ok | flagged spam (tp) | flagged ok (fp) | precision | recall | F1 | false alarms "
          "on ok | silent on spam |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, s in report["sets"].items():
        print(f"| {name} | {s['n']} | {s['spam']} / {s['ok']} | {s['tp']} | {s['fp']} | {_fmt(s['precision'])} | "
              f"{_fmt(s['recall'])} | {_fmt(s['f1'])} | {_fmt(s['false_alarm_rate'])} | {_fmt(s['silent_on_spam'])} |")
    for name, s in report["sets"].items():
        print()
        print(f"{name}: per group (COLD: topic and fine-grained label; own set: kind)")
        print("| group | gold | n | flagged | flagged rate |")
        print("|---|---|---|---|---|")
        for g in s["groups"]:
            print(f"| {g['group']} | {g['gold']} | {g['n']} | {g['flagged']} | {_fmt(g['flagged_rate'])} |")
        print(f"labels given: spam rows {s['labels']['spam']}; ok rows {s['labels']['ok']}")
        for e in s.get("errors", []):
            print(f"  {e['gold']:>4} -> {e['label']:<9} {e['confidence']:.2f} [{e['group']}] {e['text'][:80]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config.yaml",
                    help="the config the live room runs with (default: the checkout's config.yaml)")
    ap.add_argument("--cold", type=Path, default=DEFAULT_COLD, help="folder with COLD's dev.csv and test.csv")
    ap.add_argument("--set", type=Path, default=DEFAULT_SET, help="the own danmaku set (jsonl)")
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, some of {', '.join(SETS)}")
    ap.add_argument("--limit", type=int, default=None, help="only the first N rows of each set")
    ap.add_argument("--errors", type=int, default=0, help="list up to N misjudged rows of cold_dev and own_tune")
    ap.add_argument("--alone", action="store_true",
                    help="decide each text on its own (cache cleared before each), not in live batches")
    ap.add_argument("--json", action="store_true", help="print the report as one JSON object")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.sets.split(",") if n.strip()]
    report = run(args.config, names, args.cold, args.set, args.limit, args.errors, args.alone)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
