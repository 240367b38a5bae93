"""How well decode_text tells Chinese from mojibake, and what the strict readers cost.

    .venv/bin/python benchmarks/upload_input.py [--files 600] [--seed 1]

1. Detection: "files" of 1, 2, 3, 5 and 20 lines drawn from LCQMC questions (../shared/data/qmatch, read by path)
   and the sample shops' lines, as FAQ CSVs. Each simplified file is saved as GBK, and as traditional (OpenCC
   s2twp) in Big5. Reported per length: how often decode_text gives the text back exactly (right encoding, not
   refused), how often real text is refused as mojibake (and the same files in UTF-8), and how often the
   garbled versions an owner could upload (Big5 read as GBK, GBK read as Big5, UTF-8 read as GBK, each saved
   again as UTF-8) are refused.
2. Speed: decode_text on a 100,000-row FAQ CSV in UTF-8, GBK, Big5 and UTF-16, against a plain bytes.decode;
   load_document (duplicate keys, huge numbers, depth, control characters) against json.loads and
   yaml.safe_load.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import random
import time
from pathlib import Path

import opencc
import yaml

from cohost.errors import CatalogError
from cohost.knowledge.untrusted import decode_text, load_document

ROOT = Path(__file__).resolve().parent.parent
LCQMC = ROOT.parent / "shared" / "data" / "qmatch" / "lcqmc_dev.txt"
HEADER = ["product_id", "id", "question", "answer", "variants"]


def lines() -> list[str]:
    out = []
    if LCQMC.exists():
        for line in LCQMC.read_text(encoding="utf-8").splitlines():
            out += line.split("\t")[:2]
    for path in [*glob.glob(str(ROOT / "knowledge" / "shops" / "*.yaml")), str(ROOT / "knowledge" / "shop.yaml")]:
        out += [s.strip(" -") for s in Path(path).read_text(encoding="utf-8").splitlines()
                if any("\u4e00" <= c <= "\u9fff" for c in s) and not s.lstrip().startswith("#")]
    return [s.replace(",", "，") for s in out if s]


def as_csv(questions: list[str]) -> str:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows([HEADER] + [["", f"f{i}", q, "有的", ""]
                                                                 for i, q in enumerate(questions)])
    return buf.getvalue()


def refused(data: bytes) -> bool:
    try:
        decode_text(data, "faqs.csv")
    except CatalogError:
        return True
    return False


def detection(pool: list[str], files: int, rng: random.Random) -> dict[str, dict[str, float]]:
    s2t = opencc.OpenCC("s2twp")
    report = {}
    for k in (1, 2, 3, 5, 20):
        n = files if k < 20 else files // 6
        counts: dict[str, list[int]] = {}

        def add(name: str, ok: bool, counts: dict[str, list[int]] = counts) -> None:
            counts.setdefault(name, [0, 0])
            counts[name][0] += ok
            counts[name][1] += 1

        for _ in range(n):
            simp = as_csv(rng.sample(pool, k))
            trad = s2t.convert(simp)
            for name, text, enc in (("gbk", simp, "gbk"), ("big5", trad, "cp950")):
                try:
                    data = text.encode(enc)
                except UnicodeEncodeError:
                    continue
                try:
                    add(f"{name} read back exactly", decode_text(data, "faqs.csv") == text)
                    add(f"{name} real text refused", False)
                except CatalogError:
                    add(f"{name} read back exactly", False)
                    add(f"{name} real text refused", True)
                wrong = {"gbk": "cp950", "big5": "gb18030"}[name]
                try:
                    garbled = data.decode(wrong)
                except UnicodeDecodeError:
                    garbled = None
                if garbled is not None:
                    add(f"{name} read as {wrong}, saved as UTF-8: refused", refused(garbled.encode("utf-8")))
            for name, text in (("simplified", simp), ("traditional", trad)):
                add(f"UTF-8 {name} real text refused", refused(text.encode("utf-8")))
            utf8_as_gbk = simp.encode("utf-8").decode("gbk", errors="replace")
            add("UTF-8 read as GBK, saved as UTF-8: refused", refused(utf8_as_gbk.encode("utf-8")))
        report[f"{k} line(s)"] = {name: round(ok / total, 4) for name, (ok, total) in counts.items()}
    return report


def timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return round(time.perf_counter() - t, 3)


def speed() -> dict[str, object]:
    rows = [HEADER] + [["dress", f"faq_{i}", f"这条裙子有大码吗{i}", "有的，S到XXL都有，偏小建议拍大一码",
                        "大码有没有|有没有加大"] for i in range(100_000)]
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    text = buf.getvalue()
    trad = opencc.OpenCC("s2twp").convert(text)
    out: dict[str, object] = {}
    for enc, t in (("utf-8", text), ("gbk", text), ("big5", trad), ("utf-16", text)):
        data = t.encode(enc, errors="ignore")
        out[f"decode_text {enc} {len(data) / 1e6:.1f} MB s"] = timed(decode_text, data, "faqs.csv")
        out[f"bytes.decode {enc} s"] = timed(data.decode, enc)
    doc = {"shop": {"name": "店", "faqs": [{"id": f"f{i}", "question": f"问题{i}", "answer": "答案" * 20,
                                            "variants": ["问法一", "问法二"]} for i in range(20_000)]},
           "products": [{"id": f"p{i}", "name": f"商品{i}", "price": 99.5, "link": i % 9999 + 1,
                         "specs": {"颜色": "红", "尺码": "XL"}} for i in range(2_000)]}
    js = json.dumps(doc, ensure_ascii=False)
    out[f"json.loads {len(js.encode()) / 1e6:.1f} MB s"] = timed(json.loads, js)
    out["load_document json s"] = timed(load_document, js, "json", "x.json")
    small = {"shop": doc["shop"] | {"faqs": doc["shop"]["faqs"][:2000]}, "products": doc["products"][:200]}
    ys = yaml.safe_dump(small, allow_unicode=True)
    out[f"yaml.safe_load {len(ys.encode()) / 1e6:.2f} MB s"] = timed(yaml.safe_load, ys)
    out["load_document yaml s"] = timed(load_document, ys, "yaml", "x.yaml")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=600, help="files per length (a sixth of it for 20 lines)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    pool = lines()
    found = detection(pool, args.files, random.Random(args.seed))
    print(json.dumps({"lines in the pool": len(pool), "detection": found, "speed": speed()}, ensure_ascii=False,
                     indent=1))


if __name__ == "__main__":
    main()
