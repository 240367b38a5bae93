"""Turn a public question-matching corpus into shop catalogs and FAQ cases, the way a shop would face them.

    .venv/bin/python benchmarks/qmatch.py [--corpus ../shared/data/qmatch/lcqmc_dev.txt] [--out out/qmatch]

LCQMC pairs (s1, s2, same question or not) become catalogs of 100 shop-wide FAQs: each s1 is an FAQ
(its answer restates it, since the corpus has no answers), each s2 a viewer's question that expects
that FAQ when the pair is labelled the same question and silence when it is not. The corpus was
written by nobody here, so these catalogs check whether the decider carries over to questions and
wording it was never fitted on.

The pairs are split in two halves with no text in common (texts linked through any pair stay on one
side): `fit_*` catalogs may be used to fit the decider, `report_*` catalogs only to report it. The
corpus's licence forbids copying it into the project: the files go under out/ (ignored by git) and
are rebuilt from the corpus by path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "qmatch" / "lcqmc_dev.txt"
FAQS_PER_CATALOG = 100


def read_pairs(path: Path) -> list[tuple[str, str, int]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[2] in ("0", "1") and parts[0].strip() and parts[1].strip():
            pairs.append((parts[0].strip(), parts[1].strip(), int(parts[2])))
    return pairs


def linked(edges: Iterable[tuple[str, str]]) -> tuple[dict[str, str], Callable[[str], str]]:
    """Union-find over text pairs: (the texts seen, find) where find(text) names its connected group."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    return parent, find


def split_pairs(pairs: list[tuple[str, str, int]]) -> dict[str, list[tuple[str, str, int]]]:
    """Two halves with no text in common: connected texts go to the half their component hashes to."""
    parent, find = linked((s1, s2) for s1, s2, _ in pairs)
    members: dict[str, list[str]] = {}
    for t in list(parent):
        members.setdefault(find(t), []).append(t)
    side = {}
    for texts in members.values():
        h = hashlib.sha256(min(texts).encode()).digest()[0]
        for t in texts:
            side[t] = "fit" if h % 2 == 0 else "report"
    out: dict[str, list[tuple[str, str, int]]] = {"fit": [], "report": []}
    for p in pairs:
        out[side[p[0]]].append(p)
    return out


def same_question(pairs: list[tuple[str, str, int]]) -> Callable[[str], str]:
    """The corpus's own "same question" labels, closed under transitivity: text -> its group."""
    return linked((s1, s2) for s1, s2, label in pairs if label)[1]


def chunks(questions: list[str], group: Callable[[str], str]) -> list[list[str]]:
    """Catalogs of FAQS_PER_CATALOG questions, never two the corpus labels the same question (a shop has
    one FAQ per question; two would make either answer count as wrong)."""
    out, pending = [], list(questions)
    while len(pending) >= FAQS_PER_CATALOG:
        chunk, seen, rest = [], set(), []
        for q in pending:
            if len(chunk) < FAQS_PER_CATALOG and group(q) not in seen:
                chunk.append(q)
                seen.add(group(q))
            else:
                rest.append(q)
        if len(chunk) < FAQS_PER_CATALOG:
            break
        out.append(chunk)
        pending = rest
    return out


def build(pairs: list[tuple[str, str, int]], name: str, out: Path) -> list[Path]:
    """Write {name}_{k}.yaml and .jsonl for each chunk of FAQS_PER_CATALOG distinct s1 questions."""
    by_s1: dict[str, list[tuple[str, int]]] = {}
    for s1, s2, label in pairs:
        by_s1.setdefault(s1, []).append((s2, label))
    group = same_question(pairs)
    questions = sorted(by_s1)
    random.Random(name).shuffle(questions)
    written = []
    for n, chunk in enumerate(chunks(questions, group)):
        tag = f"{name}_{n:02d}"
        in_chunk = {group(q): f"q{i:03d}" for i, q in enumerate(chunk)}
        faqs = [{"id": f"q{i:03d}", "question": q, "answer": q} for i, q in enumerate(chunk)]
        catalog = {"shop": {"name": tag, "faqs": faqs}, "products": []}
        cat_path = out / f"{tag}.yaml"
        cat_path.write_text(yaml.safe_dump(catalog, allow_unicode=True, sort_keys=False), encoding="utf-8")
        seen: set[str] = set(chunk)
        with (out / f"{tag}.jsonl").open("w", encoding="utf-8") as f:
            for i, q in enumerate(chunk):
                for s2, label in by_s1[q]:
                    if s2 in seen:  # a case identical to an FAQ question tests nothing
                        continue
                    seen.add(s2)
                    # A pair labelled "not the same" may still be the same as another FAQ of the catalog.
                    expect = f"q{i:03d}" if label else in_chunk.get(group(s2))
                    case = {"id": f"{tag}_{len(seen)}", "text": s2, "on_stage": None,
                            "expect_faq": expect, "expect_product": None}
                    f.write(json.dumps(case, ensure_ascii=False) + "\n")
        written.append(cat_path)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "qmatch")
    args = ap.parse_args()
    if not args.corpus.exists():
        print(f"corpus not found: {args.corpus}")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    halves = split_pairs(read_pairs(args.corpus))
    for name, pairs in halves.items():
        paths = build(pairs, name, args.out)
        print(f"{name}: {len(pairs)} pairs -> {len(paths)} catalogs in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
