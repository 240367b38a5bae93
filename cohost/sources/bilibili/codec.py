"""The Bilibili live danmaku protocol (web), sans-I/O: bytes in, events out; encoders for what we send.

Framing (every packet, both ways): a 16-byte big-endian header ``pack_len u32 | header_len u16 (16) |
ver u16 | op u32 | seq u32`` and a body of ``pack_len - 16`` bytes. One websocket message holds one or
more packets back to back. ``ver`` says what the body is: 0 JSON, 1 a raw control body (auth, heartbeat),
2 zlib and 3 brotli — a compressed body is itself a run of packets, each with its own header, opened
recursively. ``op`` says what the packet is: 2 heartbeat, 3 heartbeat reply (u32 popularity), 5 a
business command (JSON with "cmd"), 7 auth, 8 auth reply ({"code": 0}).

``BilibiliCodec.feed(message)`` takes one websocket message and returns what it held: events of the one
model (cohost.events), the control items the client needs (AuthReply, HeartbeatReply, StreamStatus),
Notices for commands that are no event (WATCHED_CHANGE...), and a DecodeError for everything it could not
read. feed never raises and never buffers across calls: websocket messages keep their boundaries, so a
bad message costs only itself and the next one is read afresh. What one message can make is bounded —
its size, the bytes all its bundles inflate to (zlib ``max_length``, brotli's ``output_buffer_limit``),
how deep bundles nest and how many packets it yields — so a decompression bomb is an error, not a
memory spike.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import brotli

from . import builders, commands
from .items import AuthReply, DecodeError, HeartbeatReply, Item, Notice, StreamStatus, item_cmd

HEADER = struct.Struct(">IHHII")
HEADER_LEN = HEADER.size  # 16


class Op(IntEnum):
    HEARTBEAT = 2
    HEARTBEAT_REPLY = 3
    SEND_MSG_REPLY = 5
    AUTH = 7
    AUTH_REPLY = 8


class Ver(IntEnum):
    JSON = 0
    RAW = 1      # auth and heartbeat bodies
    ZLIB = 2     # the open platform still uses it
    BROTLI = 3   # what the web client asks for (protover 3 in the auth packet)


# What the web client sends as its heartbeat body: JavaScript's String({}). The server ignores it.
HEARTBEAT_BODY = b"[object Object]"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one websocket message may cost to decode."""

    max_message_bytes: int = 2 * 1024 * 1024
    max_inflated_bytes: int = 4 * 1024 * 1024   # all bundles of one message together
    max_depth: int = 3                          # bundles inside bundles (the server nests one level)
    max_packets: int = 10_000


@dataclass(frozen=True)
class Packet:
    """One leaf packet: bundles already opened."""

    ver: int
    op: int
    seq: int
    body: bytes


# -- encoders -------------------------------------------------------------------------------------------


def encode_packet(op: int, body: bytes = b"", *, ver: int = Ver.RAW, seq: int = 1) -> bytes:
    """One packet. Clients send ver 1 and seq 1, as the web client does."""
    return HEADER.pack(HEADER_LEN + len(body), HEADER_LEN, ver, op, seq) + body


def auth_body(room_id: int, token: str, *, uid: int = 0, buvid: str = "", protover: int = Ver.BROTLI,
              platform: str = "web") -> bytes:
    """The auth JSON in the web client's key order; compact, as the server receives it from browsers."""
    body = {"uid": uid, "roomid": room_id, "protover": protover, "platform": platform, "type": 2,
            "buvid": buvid, "key": token}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_auth(room_id: int, token: str, *, uid: int = 0, buvid: str = "", protover: int = Ver.BROTLI,
                platform: str = "web") -> bytes:
    """The auth packet (op 7); it must reach the server within 5 s of connecting."""
    return encode_packet(Op.AUTH, auth_body(room_id, token, uid=uid, buvid=buvid, protover=protover,
                                            platform=platform))


def encode_heartbeat() -> bytes:
    """The heartbeat packet (op 2), every 30 s; the server drops a connection silent for about 60 s."""
    return encode_packet(Op.HEARTBEAT, HEARTBEAT_BODY)


# -- framing --------------------------------------------------------------------------------------------


class PacketDecoder:
    """One websocket message to its leaf packets, bundles opened; problems become DecodeErrors."""

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Packet | DecodeError]:
        out: list[Packet | DecodeError] = []
        if len(data) > self.limits.max_message_bytes:
            out.append(DecodeError("message-too-large", f"{len(data)} bytes"))
            return out
        self._budget = self.limits.max_inflated_bytes
        self._packets = 0
        self._walk(memoryview(data), 0, out)
        return out

    def _walk(self, buf: memoryview, depth: int, out: list[Packet | DecodeError]) -> None:
        pos, end = 0, len(buf)
        while pos < end:
            if self._packets >= self.limits.max_packets:
                out.append(DecodeError("too-many-packets", f"over {self.limits.max_packets}"))
                return
            rest = end - pos
            if rest < HEADER_LEN:
                out.append(DecodeError("truncated-header", f"{rest} bytes left"))
                return
            pack_len, header_len, ver, op, seq = HEADER.unpack_from(buf, pos)
            # A bad length leaves no way to find the next packet: the rest of this buffer is lost.
            if header_len != HEADER_LEN:
                out.append(DecodeError("bad-header", f"header length {header_len}"))
                return
            if pack_len < HEADER_LEN:
                out.append(DecodeError("bad-header", f"packet length {pack_len}"))
                return
            if pack_len > rest:
                out.append(DecodeError("truncated-packet", f"length {pack_len}, {rest} bytes left"))
                return
            body = buf[pos + HEADER_LEN:pos + pack_len]
            pos += pack_len
            self._packets += 1
            if op == Op.SEND_MSG_REPLY and ver in (Ver.ZLIB, Ver.BROTLI):
                if depth >= self.limits.max_depth:
                    out.append(DecodeError("nested-too-deep", f"bundle at depth {depth + 1}"))
                    continue
                inflated = self._inflate(ver, body)
                if isinstance(inflated, DecodeError):
                    out.append(inflated)
                elif not inflated:
                    out.append(DecodeError("empty-bundle", f"protover {ver}"))
                else:
                    self._walk(memoryview(inflated), depth + 1, out)
                continue
            out.append(Packet(ver, op, seq, bytes(body)))
            # The server echoes our heartbeat body after its reply, outside pack_len: not a packet.
            if op == Op.HEARTBEAT_REPLY and pos < end and not _plausible_header(buf, pos):
                return

    def _inflate(self, ver: int, body: memoryview) -> bytes | DecodeError:
        cap = self._budget
        if ver == Ver.ZLIB:
            d = zlib.decompressobj()
            try:
                out = d.decompress(body, cap + 1)
            except zlib.error as e:
                return DecodeError("bad-zlib", str(e))
            if len(out) > cap or d.unconsumed_tail:
                return DecodeError("inflate-limit", f"zlib bundle inflates past {cap} bytes")
            if not d.eof:
                return DecodeError("bad-zlib", "truncated stream")
            if d.unused_data:
                return DecodeError("bad-zlib", f"{len(d.unused_data)} bytes after the stream")
        else:
            b = brotli.Decompressor()
            try:
                out = b.process(body, output_buffer_limit=cap + 1)
            except brotli.error as e:
                return DecodeError("bad-brotli", str(e) or "corrupt stream")
            if len(out) > cap or not b.can_accept_more_data():
                return DecodeError("inflate-limit", f"brotli bundle inflates past {cap} bytes")
            if not b.is_finished():
                return DecodeError("bad-brotli", "truncated stream")
        self._budget -= len(out)
        return out


def _plausible_header(buf: memoryview, pos: int) -> bool:
    if len(buf) - pos < HEADER_LEN:
        return False
    pack_len, header_len, ver, op, _seq = HEADER.unpack_from(buf, pos)
    return header_len == HEADER_LEN and HEADER_LEN <= pack_len <= len(buf) - pos and ver <= 3 and op <= 17


# -- the codec ------------------------------------------------------------------------------------------


@dataclass
class CodecStats:
    messages: int = 0
    packets: int = 0
    events: int = 0
    errors: Counter[str] = field(default_factory=Counter)    # DecodeError reasons
    commands: Counter[str] = field(default_factory=Counter)  # every cmd seen
    unhandled: Counter[str] = field(default_factory=Counter)  # cmds we do not turn into anything

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


class BilibiliCodec:
    """Websocket messages to items, and the packets the client sends.

    ``products`` maps Bilibili goods ids to catalog product ids for SHOPPING_EXPLAIN_CARD (an unmapped
    goods id is passed on as it is)."""

    def __init__(self, *, room_id: int | None = None, products: dict[str, str] | None = None,
                 limits: Limits | None = None):
        self.room_id = room_id
        self.products = dict(products or {})
        self.packets = PacketDecoder(limits)
        self.stats = CodecStats()

    # encoders, for symmetry with feed
    def encode_auth(self, room_id: int, token: str, **kw: Any) -> bytes:
        return encode_auth(room_id, token, **kw)

    def encode_heartbeat(self) -> bytes:
        return encode_heartbeat()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Item]:
        """Everything one websocket message held. Never raises."""
        self.stats.messages += 1
        out: list[Item] = []
        try:
            for packet in self.packets.feed(data):
                if isinstance(packet, DecodeError):
                    out.append(packet)
                else:
                    self.stats.packets += 1
                    out.extend(self._items(packet))
        except Exception as e:  # a bug of ours must not take the connection down; counted, and found by the fuzz
            out.append(DecodeError("internal", f"{type(e).__name__}: {e}"))
        for item in out:
            if isinstance(item, DecodeError):
                self.stats.errors[item.reason] += 1
            elif not isinstance(item, AuthReply | HeartbeatReply | Notice | StreamStatus):
                self.stats.events += 1
        return out

    def _items(self, p: Packet) -> list[Item]:
        if p.op == Op.SEND_MSG_REPLY:
            if p.ver != Ver.JSON:
                return [DecodeError("bad-protover", f"op 5 with protover {p.ver}")]
            payload = _json(p.body)
            if isinstance(payload, DecodeError):
                return [payload]
            if not isinstance(payload, dict) or not isinstance(payload.get("cmd"), str):
                return [DecodeError("bad-command", "no cmd")]
            cmd = payload["cmd"].split(":", 1)[0]
            self.stats.commands[cmd] += 1
            items = commands.translate(cmd, payload, self)
            for item in items:
                if isinstance(item, Notice) and not item.handled:
                    self.stats.unhandled[cmd] += 1
            return items
        if p.op == Op.HEARTBEAT_REPLY:
            if len(p.body) < 4:
                return [DecodeError("bad-heartbeat-reply", f"{len(p.body)}-byte body")]
            return [HeartbeatReply(int.from_bytes(p.body[:4], "big"))]
        if p.op == Op.AUTH_REPLY:
            if p.ver not in (Ver.JSON, Ver.RAW):
                return [DecodeError("bad-protover", f"op 8 with protover {p.ver}")]
            payload = _json(p.body)
            if isinstance(payload, DecodeError):
                return [payload]
            code = payload.get("code") if isinstance(payload, dict) else None
            if not isinstance(code, int) or isinstance(code, bool):
                return [DecodeError("bad-auth-reply", "no integer code")]
            return [AuthReply(code)]
        if p.op in (Op.HEARTBEAT, Op.AUTH):
            return [DecodeError("unexpected-op", f"op {p.op} is sent by clients")]
        return [DecodeError("unknown-op", f"op {p.op}")]


def _json(body: bytes) -> Any:
    if not body:
        return DecodeError("bad-json", "empty body")
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return DecodeError("bad-json", str(e)[:200])


# -- tools: `cohost decode` and `cohost bench decode` ---------------------------------------------------


def item_dict(item: Item) -> dict[str, Any]:
    """One decoded item as JSON-ready data."""
    if isinstance(item, DecodeError):
        return {"kind": "error", "reason": item.reason, "detail": item.detail}
    if isinstance(item, AuthReply):
        return {"kind": "auth_reply", "code": item.code}
    if isinstance(item, HeartbeatReply):
        return {"kind": "heartbeat_reply", "popularity": item.popularity}
    if isinstance(item, StreamStatus):
        return {"kind": "stream", "live": item.live, "cmd": item.cmd}
    if isinstance(item, Notice):
        return {"kind": "notice", "cmd": item.cmd, "handled": item.handled, "data": item.data}
    return {"kind": "event", "cmd": item_cmd(item), "event": item.model_dump(mode="json")}


def decode_file(path: str | Path) -> list[dict[str, Any]]:
    """Decode one captured websocket message (the raw bytes of one binary frame) to JSON-ready dicts."""
    return [item_dict(item) for item in BilibiliCodec().feed(Path(path).read_bytes())]


def sample_messages() -> list[bytes]:
    """Websocket messages shaped like a busy room's: brotli bundles of danmaku, gifts and entries,
    a zlib bundle, raw commands and a heartbeat reply."""
    cmds = [builders.danmu_msg(f"第{i}条弹幕，包邮吗", uid=1000 + i, uname=f"观众{i}", id_str=f"id{i:08d}")
            for i in range(12)]
    cmds += [builders.interact_word(2000 + i, f"路人{i}", msg_type=1) for i in range(6)]
    cmds += [builders.send_gift(3000, "老板", "小花花", num=3, price=100)]
    leaf = [encode_packet(Op.SEND_MSG_REPLY, json.dumps(c, ensure_ascii=False).encode(), ver=Ver.JSON)
            for c in cmds]
    bundle = b"".join(leaf)
    return [
        encode_packet(Op.SEND_MSG_REPLY, brotli.compress(bundle), ver=Ver.BROTLI),
        encode_packet(Op.SEND_MSG_REPLY, zlib.compress(bundle), ver=Ver.ZLIB),
        *leaf[:3],
        encode_packet(Op.HEARTBEAT_REPLY, (12345).to_bytes(4, "big")),
    ]


def bench_decode(seconds: float = 1.0) -> float:
    """Leaf packets decoded per second (events, notices and control items), on sample_messages."""
    messages = sample_messages()
    codec = BilibiliCodec()
    packets, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for message in messages:
            before = codec.stats.packets
            codec.feed(message)
            packets += codec.stats.packets - before
        now = time.perf_counter()
        if now >= deadline:
            return packets / (now - start)


__all__ = ["HEADER", "HEADER_LEN", "HEARTBEAT_BODY", "BilibiliCodec", "CodecStats", "Limits", "Op",
           "Packet", "PacketDecoder", "Ver", "auth_body", "bench_decode", "decode_file", "encode_auth",
           "encode_heartbeat", "encode_packet", "item_dict", "sample_messages"]
