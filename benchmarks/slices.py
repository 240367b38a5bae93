"""How the engine does on each class of question, before and after a change.

    .venv/bin/python benchmarks/slices.py CASES.jsonl BEFORE.jsonl AFTER.jsonl [more triples...]

BEFORE and AFTER are `cohost eval faq` outputs for the same cases (e.g. from an older checkout). Each
case is put in the classes its text shows (a case can be in several); per class it prints the answerable
cases answered correctly and the answers that were wrong, before → after.
"""

from __future__ import annotations

import json
import re
import sys

from cohost.understand.normalize import Normalizer
from cohost.understand.slots import find_slots

CLASSES = {
    "A-not-A / 吗 么 不 没 endings": re.compile(r"([^\W\d_不没])[不没]\1|[不没么]$|是否|能否"),
    "price slang": re.compile(r"多钱|到手|多少米|啥价|咋卖|多少q"),
    "link number": re.compile(r"几号|链接"),
}


def main(args: list[str]) -> int:
    if not args or len(args) % 3:
        print(__doc__)
        return 2
    norm = Normalizer()
    rows: dict[str, list[int]] = {}
    for i in range(0, len(args), 3):
        cases = [json.loads(line) for line in open(args[i], encoding="utf-8") if line.strip()]
        before = {r["id"]: r for r in map(json.loads, open(args[i + 1], encoding="utf-8"))}
        after = {r["id"]: r for r in map(json.loads, open(args[i + 2], encoding="utf-8"))}
        for c in cases:
            raw = c["text"].strip()
            names = [n for n, p in CLASSES.items() if p.search(raw)]
            if find_slots(norm(raw)):
                names.append("slot values (place, size, measure, colour, quantity, material, skin)")
            names.append("all")
            b, a = before[c["id"]], after[c["id"]]
            for n in names:
                r = rows.setdefault(n, [0, 0, 0, 0, 0, 0])
                r[0] += c["expect_faq"] is not None
                r[1] += b["answered"] and b["faq_id"] == c["expect_faq"] and c["expect_faq"] is not None
                r[2] += a["answered"] and a["faq_id"] == c["expect_faq"] and c["expect_faq"] is not None
                r[3] += b["answered"] and b["faq_id"] != c["expect_faq"]
                r[4] += a["answered"] and a["faq_id"] != c["expect_faq"]
                r[5] += 1
    print("| class | cases | answerable | correct before → after | wrong answers before → after |")
    print("|---|---|---|---|---|")
    for n, r in rows.items():
        print(f"| {n} | {r[5]} | {r[0]} | {r[1]} → {r[2]} | {r[3]} → {r[4]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
