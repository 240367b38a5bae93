"""Fuzz the Douyin codec with many inputs and print what became of them.

    .venv/bin/python benchmarks/fuzz_douyin.py [--inputs 100000] [--seed 1]

Inputs, in a fixed mix from one seed (so a failure reruns): random bytes; valid frames truncated, with
bytes flipped or spliced; structured garbage protobuf (random fields, nested) as a PushFrame, as a
Response and as each method's payload; random payloadTypes and headers; gzip bombs and truncated gzip;
text frames. The codec must never raise and never count an internal error; exit status 1 if it did.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import zlib
from collections import Counter

from cohost.sources.douyin import messages as m
from cohost.sources.douyin import proto
from cohost.sources.douyin.codec import DecodeError, DouyinCodec, Signal, sample_frames

METHODS = [*m.METHODS, "WebcastEmojiChatMessage", ""]


def garbage_pb(rng: random.Random, depth: int = 0) -> bytes:
    out = bytearray()
    for _ in range(rng.randint(0, 8)):
        number = rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 15, 24, 1028, rng.randint(1, 2**29 - 1)])
        wire = rng.choice([0, 0, 1, 2, 2, 2, 5])
        if wire == 0:
            out += proto.field_varint(number, rng.choice([0, 1, 3, 2**63, 2**64 - 1, rng.getrandbits(64)]))
        elif wire == 1:
            out += proto.field_fixed64(number, rng.getrandbits(64))
        elif wire == 5:
            out += proto.field_fixed32(number, rng.getrandbits(32))
        elif depth < 4 and rng.random() < 0.4:
            out += proto.field_bytes(number, garbage_pb(rng, depth + 1))
        else:
            out += proto.field_bytes(number, rng.randbytes(rng.randint(0, 40)))
    return bytes(out)


def bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    return b"".join(z.compress(chunk) for _ in range(size >> 20)) + z.flush()


def inputs(n: int, seed: int):
    rng = random.Random(seed)
    valid = sample_frames(40)
    big_bomb = m.push_frame(bomb(64 << 20), compress=False, headers={"compress_type": "gzip"})
    for i in range(n):
        r = rng.random()
        if r < 0.15:
            yield "random", rng.randbytes(rng.randint(0, 400))
        elif r < 0.30:
            data = rng.choice(valid)
            yield "truncated", data[:rng.randrange(len(data))]
        elif r < 0.45:
            data = bytearray(rng.choice(valid))
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield "flipped", bytes(data)
        elif r < 0.50:
            a, b = rng.choice(valid), rng.choice(valid)
            yield "spliced", a[:rng.randrange(len(a))] + b[rng.randrange(len(b)):]
        elif r < 0.65:
            msgs = [m.message(rng.choice(METHODS), garbage_pb(rng), rng.getrandbits(63))
                    for _ in range(rng.randint(1, 4))]
            yield "garbage-message", m.push_frame(m.response(msgs), compress=rng.random() < 0.7)
        elif r < 0.75:
            yield "garbage-response", m.push_frame(garbage_pb(rng), compress=rng.random() < 0.5)
        elif r < 0.85:
            yield "garbage-frame", garbage_pb(rng)
        elif r < 0.92:
            kind = rng.choice(["msg", "hb", "ack", "close", "", "MSG", "msg\x00", rng.randbytes(4).hex()])
            headers = rng.choice([{}, {"compress_type": "gzip"}, {"compress_type": "br"}])
            yield "payload-type", m.push_frame(rng.randbytes(rng.randint(0, 60)), payload_type=kind, compress=False,
                                               headers=headers)
        elif r < 0.95:
            body = m.gzip_bytes(m.response([m.chat(i, m.user(1, "x"), "y")]))
            yield "gzip-truncated", m.push_frame(body[:rng.randrange(len(body))], compress=False,
                                                 headers={"compress_type": "gzip"})
        elif r < 0.96:
            yield "gzip-bomb", big_bomb
        elif r < 0.98:
            yield "text", rng.randbytes(rng.randint(0, 50)).hex()
        else:
            yield "valid", rng.choice(valid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    codec = DouyinCodec()  # one codec throughout, as a client keeps it: state must survive garbage
    kinds: Counter[str] = Counter()
    results: Counter[str] = Counter()
    exceptions = 0
    start = time.perf_counter()
    for kind, data in inputs(args.inputs, args.seed):
        kinds[kind] += 1
        try:
            items = codec.feed(data)
            codec.data_to_send()
        except Exception as e:  # must never happen
            exceptions += 1
            print(f"EXCEPTION on {kind} input: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        for item in items:
            results["errors" if isinstance(item, DecodeError) else "signals" if isinstance(item, Signal)
                    else "events"] += 1
    elapsed = time.perf_counter() - start
    total = sum(kinds.values())
    print(f"douyin codec fuzz: {total} inputs in {elapsed:.1f} s ({total / elapsed:,.0f}/s), seed {args.seed}")
    print("inputs:    " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
    print("results:   " + ", ".join(f"{k} {v}" for k, v in results.most_common()))
    errs = {k: v for k, v in codec.counts.items() if k.startswith("errors:")}
    print("errors by stage: " + ", ".join(f"{k[7:]} {v}" for k, v in sorted(errs.items())))
    print(f"messages {codec.counts['messages']}, duplicates dropped {codec.counts['duplicates']}, "
          f"ignored methods {codec.counts['ignored']}")
    print(f"exceptions: {exceptions}, internal errors: {codec.counts['internal_errors']}")
    return 1 if exceptions or codec.counts["internal_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
