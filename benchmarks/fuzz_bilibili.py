"""Fuzz the Bilibili codec with many inputs (100,000 by default) and print what became of them.

    .venv/bin/python benchmarks/fuzz_bilibili.py [--inputs 100000] [--seed 1]

Inputs, in equal shares: random bytes; real frames (the shared captures when present, and frames built
like the server's in ver 0, zlib and brotli) mutated by byte flips, cuts, insertions, header rewrites and
concatenation; nested bundles up to six deep; every known cmd with junk JSON payloads; random protobuf in
SEND_GIFT_V2 / INTERACT_WORD_V2; and now and then a decompression bomb. feed() must never raise and no
DecodeError may be "internal" (an exception of ours caught in feed); the script exits 1 if either happens.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import brotli

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cohost.sources.bilibili import builders  # noqa: E402
from cohost.sources.bilibili.codec import BilibiliCodec, Limits, sample_messages  # noqa: E402
from cohost.sources.bilibili.commands import HANDLERS  # noqa: E402
from cohost.sources.bilibili.items import DecodeError  # noqa: E402
from cohost.testing.fake_bilibili import command_packet, frame, packet  # noqa: E402

CAPTURES = ROOT.parent / "shared" / "data" / "bilibili"


def seeds() -> list[bytes]:
    out = [p.read_bytes() for p in sorted(CAPTURES.glob("*.bin"))] if CAPTURES.is_dir() else []
    out += sample_messages()
    cmds = [builders.danmu_msg("包邮吗", uid=3, id_str="x", medal=(5, "团", "主播", 9)),
            builders.send_gift(3, "a", "b"),
            builders.send_gift_v2(3, "a", [("b", 1, 1), ("c", 2, 3)], blind=("盒", 100)),
            builders.interact_word(3, "c"), builders.interact_word_v2(3, "c", medal=(2, "x")),
            builders.super_chat("m", sc_id=1), builders.guard_buy(3, "g"), builders.like_click(3, "l"),
            builders.preparing(1), builders.live(1), builders.watched_change(3),
            builders.shopping_explain_card("1", "锅")]
    for ver in (0, 2, 3):
        out.append(frame(cmds, ver))
        out += [frame([c], ver) for c in cmds]
    return out


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and buf:                      # flip bytes
            for _ in range(rng.randint(1, 8)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 1 and buf:                    # cut
            del buf[rng.randrange(len(buf) + 1):]
        elif op == 2:                            # insert junk
            at = rng.randrange(len(buf) + 1)
            buf[at:at] = rng.randbytes(rng.randint(1, 32))
        elif op == 3 and len(buf) >= 16:         # rewrite a header field
            field = rng.choice([(0, 4), (4, 2), (6, 2), (8, 4), (12, 4)])
            value = rng.choice([0, 1, 2, 3, 5, 7, 8, 16, 15, 17, len(buf), len(buf) + 1, 2**16 - 1, 2**32 - 1])
            start, size = field
            buf[start:start + size] = (value % (256**size)).to_bytes(size, "big")
        elif op == 4:                            # concatenate another frame
            buf += rng.choice(pool)
        elif op == 5:                            # wrap in a bundle
            inner = bytes(buf)
            buf = bytearray(packet(5, zlib.compress(inner) if rng.random() < .5 else brotli.compress(inner, quality=1),
                                   ver=rng.choice([2, 3])))
        elif op == 6 and len(buf) > 16:          # drop a slice in the middle
            a = rng.randrange(len(buf))
            del buf[a:a + rng.randint(1, 16)]
    return bytes(buf)


def nested(rng: random.Random, pool: list[bytes]) -> bytes:
    data = b"".join(rng.choice(pool) for _ in range(rng.randint(1, 3)))
    for _ in range(rng.randint(1, 6)):
        ver = rng.choice([2, 3])
        body = zlib.compress(data) if ver == 2 else brotli.compress(data, quality=1)
        data = packet(5, body, ver=ver) + (rng.choice(pool) if rng.random() < 0.3 else b"")
    return data


def junk_json(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**63), 10**20, rng.randint(-10**6, 10**6)])
    if kind == 3:
        return rng.choice([0.5, -1e308, 1e308, float(rng.random())])
    if kind == 4:
        return rng.choice(["", "x", "12", "-3", "名字", "\u0000", "a" * 600, "1e5", "gold", "silver", "!!!"])
    if kind in (5, 6):
        return [junk_json(rng, depth + 1) for _ in range(rng.randint(0, 18))]
    keys = ["uid", "uname", "info", "data", "num", "price", "total_coin", "coin_type", "giftName", "msg_type",
            "fans_medal", "id", "message", "user_info", "medal_info", "pb", "timestamp", "goods_id", "roomid"]
    return {rng.choice(keys): junk_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def junk_command(rng: random.Random) -> bytes:
    cmd = rng.choice(sorted(HANDLERS))
    payload = {"cmd": cmd + rng.choice(["", ":4:0:2:2:2:0"])}
    for key in rng.sample(["info", "data", "roomid", "dmscore"], rng.randint(0, 3)):
        payload[key] = junk_json(rng)
    if rng.random() < 0.3:
        payload["info"] = [junk_json(rng) for _ in range(rng.randint(0, 20))]
    try:
        return command_packet(payload)
    except ValueError:  # a float json cannot write
        return command_packet({"cmd": cmd})


def junk_protobuf(rng: random.Random) -> bytes:
    raw = rng.randbytes(rng.randint(0, 120))
    if rng.random() < 0.5:  # start from a valid message and damage it
        valid = json.loads(json.dumps(rng.choice([builders.send_gift_v2(3, "a", [("b", 1, 1)]),
                                                  builders.interact_word_v2(3, "c")])))
        data = bytearray(base64.b64decode(valid["data"]["pb"]))
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        raw = bytes(data[:rng.randint(0, len(data))])
    cmd = rng.choice(["SEND_GIFT_V2", "INTERACT_WORD_V2"])
    return command_packet({"cmd": cmd, "data": {"pb": base64.b64encode(raw).decode()}})


def bomb(rng: random.Random) -> bytes:
    zeros = b"\0" * rng.choice([8, 32, 64]) * 1024 * 1024
    if rng.random() < 0.5:
        return packet(5, zlib.compress(zeros, 9), ver=2)
    return packet(5, brotli.compress(zeros, quality=4), ver=3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = seeds()
    bombs = [bomb(rng) for _ in range(4)]  # made once: compressing 64 MiB is slow, inflating it is the test
    limits = Limits(max_inflated_bytes=1024 * 1024)
    kinds = Counter()
    outcomes, reasons = Counter(), Counter()
    exceptions: list[str] = []
    start = time.perf_counter()
    for i in range(args.inputs):
        if i % 997 == 0:
            kind, data = "bomb", rng.choice(bombs)
        else:
            kind = rng.choice(["random", "mutated", "mutated", "nested", "json", "protobuf"])
            if kind == "random":
                data = rng.randbytes(rng.randint(0, 300))
            elif kind == "mutated":
                data = mutate(rng, rng.choice(pool), pool)
            elif kind == "nested":
                data = nested(rng, pool)
            elif kind == "json":
                data = junk_command(rng)
            else:
                data = junk_protobuf(rng)
        kinds[kind] += 1
        codec = BilibiliCodec(limits=limits)
        try:
            items = codec.feed(data)
        except Exception as e:  # must never happen
            exceptions.append(f"{kind}: {type(e).__name__}: {e}")
            continue
        for item in items:
            name = type(item).__name__
            outcomes[name] += 1
            if isinstance(item, DecodeError):
                reasons[item.reason] += 1
    elapsed = time.perf_counter() - start
    total = sum(kinds.values())
    print(f"inputs: {total} in {elapsed:.1f} s ({total / elapsed:,.0f}/s), seed {args.seed}")
    print("  by kind:   " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    print("  items:     " + ", ".join(f"{k} {v}" for k, v in outcomes.most_common()))
    print("  errors:    " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    print(f"  exceptions out of feed(): {len(exceptions)}; internal errors: {reasons['internal']}")
    for line in exceptions[:10]:
        print("   ", line)
    return 1 if exceptions or reasons["internal"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
