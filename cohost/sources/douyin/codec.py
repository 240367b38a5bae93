"""The Douyin webcast codec, sans-I/O: websocket messages in, cohost events out, acks to send back.

    codec = DouyinCodec(product_ids={"3691984502923623681": "dress"})
    for item in codec.feed(ws_message):          # never raises
        ...                                      # Event | DecodeError | Signal
    for frame in codec.data_to_send():           # acks the server asked for (Response.needAck)
        await ws.send(frame)
    await ws.send(HEARTBEAT)                     # every ~10 s

A websocket message is a PushFrame whose payload (gzip'd, header ``compress_type: gzip``) is a Response
holding Messages; each Message names its method and carries that method's protobuf payload
(messages.py has the schema). The codec keeps what a reconnect needs: the last ``cursor`` and
``internal_ext`` (the client puts them in the next URL), and the message ids already delivered, so what
the server re-sends after a resume is dropped (SeenIds). Keep one codec for a client's whole life.

What comes out:

- events of the one model (cohost/events.py): chat, gift (value in CNY: one Douyin coin 抖币 is 0.1 CNY),
  like, enter, follow, product (the product being explained, mapped to a catalog id);
  each with the platform's extras (``msg_id``, ``douyin_uid``, ``sec_uid``, ``fan_level``...);
- ``Signal``: what is not an event: ``stream_end`` (WebcastControlMessage status 3), ``stats`` (online
  counts), ``server_close`` (payloadType "close"), ``control`` (other room statuses), ``product_list``,
  ``shopping`` (a shopping update that puts nothing on stage, e.g. sold out);
- ``DecodeError``: one bad frame or message, counted in ``counts``; decoding goes on with the next.

Bounds: a frame over ``max_frame_bytes`` is refused before parsing; gunzip stops at ``max_payload_bytes``
(zlib ``max_length``: a gzip bomb costs at most that much memory); protobuf parsing is bounded in
proto.py/messages.py (nesting, fields, repeated items). ``feed`` catches everything: a failure that is not
a WireError or a validation error is a bug and counted apart (``counts["internal_errors"]``), which the
fuzz tests insist stays at zero.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import CohostError
from ...events import MAX_TEXT_CHARS, ChatEvent, Event, ProductEvent, RoomEvent, User
from ..base import SeenIds
from . import messages as m
from .messages import METHODS, decode
from .proto import WireError

log = logging.getLogger(__name__)

MAX_FRAME_BYTES = 1 << 20     # one websocket message as received (the client's max_size too)
MAX_PAYLOAD_BYTES = 4 << 20   # a gunzipped Response; real ones are a few KiB to a few hundred KiB
HEARTBEAT = b":\x02hb"        # PushFrame{payloadType: "hb"}: field 7, length 2, "hb" (3A 02 68 62)
DIAMOND_CNY = 0.1             # 1 抖币 = 0.1 元: what a viewer pays for a gift
MAX_COUNT = 1_000_000         # a count past this is garbage, not a gift
STREAM_ENDED = 3              # WebcastControlMessage.status
MASKED_UIDS = frozenset({"", "0", "111111"})  # anonymous rooms give every viewer uid 111111
_NAME_CHARS, _ID_CHARS, _PRODUCT_CHARS = 64, 128, 64


@dataclass(frozen=True)
class DecodeError:
    """A frame or message that could not be decoded; skipped and counted."""

    stage: str    # "frame", "gzip", "response", "message:<method>", "internal"
    reason: str
    size: int = 0


@dataclass(frozen=True)
class Signal:
    """Something the platform said that is not an event of the model (stream end, counts, server close)."""

    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


Item = Event | DecodeError | Signal


def ack_frame(log_id: int, internal_ext: str) -> bytes:
    """What the server expects back for a Response with needAck."""
    return m.push_frame(internal_ext.encode("utf-8"), payload_type="ack", log_id=log_id, compress=False)


class DouyinCodec:
    """Decodes push frames; see the module docstring.

    ``product_ids`` maps Douyin promotion ids to catalog product ids, ``links`` maps link numbers (the
    product's index in the live room's product list: "3号链接") to catalog product ids; the id table wins.
    A product on stage that neither maps comes out as ``douyin:<promotionId>`` (the overlay shows it as not
    in the catalog). ``shopping_types``: which WebcastLiveShoppingMessage msgTypes put their promotion on
    stage (None: any that names one and is not a sold-out update)."""

    def __init__(self, *, product_ids: Mapping[str, str] | None = None, links: Mapping[int, str] | None = None,
                 shopping_types: Collection[int] | None = None, seen: SeenIds | None = None,
                 max_frame_bytes: int = MAX_FRAME_BYTES, max_payload_bytes: int = MAX_PAYLOAD_BYTES):
        self.product_ids = {str(k): str(v) for k, v in (product_ids or {}).items()}
        self.links = {int(k): str(v) for k, v in (links or {}).items()}
        self.shopping_types = None if shopping_types is None else frozenset(shopping_types)
        self.seen = seen or SeenIds()
        self.max_frame_bytes, self.max_payload_bytes = max_frame_bytes, max_payload_bytes
        # Resume state: sent back in the next connection's URL.
        self.cursor = ""
        self.internal_ext = ""
        self.heartbeat_ms = 0
        self.push_server = ""
        self.counts: Counter[str] = Counter()
        self._outgoing: list[bytes] = []
        self._gift_seen: dict[tuple[str, int, int], int] = {}   # combo gifts: the count already delivered
        self._promotion_links: dict[str, int] = {}                # promotionId → link, from the product list
        self._on_stage: str | None = None
        self._n = 0

    # -- sans-I/O interface --------------------------------------------------------------------------------

    def feed(self, data: bytes | bytearray | memoryview | str) -> list[Item]:
        """Decode one websocket message. Never raises."""
        self.counts["frames"] += 1
        if not isinstance(data, bytes | bytearray | memoryview | str):
            return [self._error("frame", f"a {type(data).__name__}, not a websocket message")]
        try:
            return self._frame(data)
        except Exception as e:  # not bad input but a bug: counted apart, logged, and the stream goes on
            self.counts["internal_errors"] += 1
            log.exception("douyin codec failed on a %d-byte frame", len(data))
            return [self._error("internal", f"{type(e).__name__}: {e}", len(data))]

    def data_to_send(self) -> list[bytes]:
        """Frames to send now (acks), in order; each is returned once."""
        out, self._outgoing = self._outgoing, []
        return out

    # Douyin has no auth frame: the connection is authorised by its URL (room id, cookie, signature).
    @staticmethod
    def encode_heartbeat() -> bytes:
        return HEARTBEAT

    @staticmethod
    def encode_ack(log_id: int, internal_ext: str) -> bytes:
        return ack_frame(log_id, internal_ext)

    # -- frames ----------------------------------------------------------------------------------------------

    def _error(self, stage: str, reason: str, size: int = 0) -> DecodeError:
        self.counts["errors"] += 1
        self.counts[f"errors:{stage.split(':')[0]}"] += 1
        return DecodeError(stage, reason[:200], size)

    def _frame(self, data: bytes | bytearray | memoryview | str) -> list[Item]:
        if isinstance(data, str):
            return [self._error("frame", "a text message; the push server sends binary frames", len(data))]
        size = len(data)
        if size > self.max_frame_bytes:
            return [self._error("frame", f"{size} bytes is over the {self.max_frame_bytes}-byte limit", size)]
        try:
            frame = decode("PushFrame", data)
        except WireError as e:
            return [self._error("frame", f"not a PushFrame: {e}", size)]
        kind = frame.get("payloadType", "")
        if kind == "hb" or kind == "ack":
            self.counts[kind] += 1
            return []
        if kind == "close":
            self.counts["close"] += 1
            return [Signal("server_close")]
        if kind != "msg":
            return [self._error("frame", f"unknown payloadType {kind[:20]!r}", size)]
        payload: bytes = frame.get("payload", b"")
        headers = {h.get("key", ""): h.get("value", "") for h in frame.get("headersList", [])}
        if headers.get("compress_type") == "gzip" or payload[:2] == b"\x1f\x8b":
            unzipped = self._gunzip(payload)
            if isinstance(unzipped, DecodeError):
                return [unzipped]
            payload = unzipped
        try:
            resp = decode("Response", payload)
        except WireError as e:
            return [self._error("response", f"not a Response: {e}", len(payload))]
        self._resume_state(resp)
        if resp.get("needAck"):
            self._outgoing.append(ack_frame(frame.get("logId", 0), resp.get("internalExt", "")))
        items: list[Item] = []
        for msg in resp.get("messagesList", []):
            items += self._message(msg)
        return items

    def _gunzip(self, payload: bytes) -> bytes | DecodeError:
        d = zlib.decompressobj(wbits=31)  # gzip only: a zlib or raw deflate stream is an error
        try:
            out = d.decompress(payload, self.max_payload_bytes + 1)
        except zlib.error as e:
            return self._error("gzip", f"bad gzip: {e}", len(payload))
        if len(out) > self.max_payload_bytes or d.unconsumed_tail:
            return self._error("gzip", f"inflates past the {self.max_payload_bytes}-byte limit", len(payload))
        if not d.eof:
            return self._error("gzip", "truncated gzip stream", len(payload))
        return out

    def _resume_state(self, resp: Mapping[str, Any]) -> None:
        self.counts["responses"] += 1
        if resp.get("cursor"):
            self.cursor = resp["cursor"][:1024]
        if resp.get("internalExt"):
            self.internal_ext = resp["internalExt"][:4096]
        if resp.get("heartbeatDuration"):
            self.heartbeat_ms = resp["heartbeatDuration"]
        if resp.get("pushServer"):
            self.push_server = resp["pushServer"][:1024]

    # -- messages --------------------------------------------------------------------------------------------

    def _message(self, msg: Mapping[str, Any]) -> list[Item]:
        self.counts["messages"] += 1
        method: str = msg.get("method", "")
        schema = METHODS.get(method)
        if schema is None:
            self.counts["ignored"] += 1
            return []
        msg_id = msg.get("msgId", 0)
        if msg_id and not self.seen.first_time(msg_id):
            self.counts["duplicates"] += 1
            return []
        try:
            body = decode(schema, msg.get("payload", b""))
        except WireError as e:
            return [self._error(f"message:{method}", str(e), len(msg.get("payload", b"")))]
        com = body.get("common") or {}
        if not msg_id:
            msg_id = com.get("msgId", 0)
            if msg_id and not self.seen.first_time(msg_id):
                self.counts["duplicates"] += 1
                return []
        created = com.get("createTime", 0)
        ctx: dict[str, Any] = {"platform": "douyin", "msg_id": str(msg_id) if msg_id else None,
                               "ts": created / 1000 if 0 < created < 1 << 53 else None}
        try:
            items = getattr(self, f"_on_{schema}")(body, ctx)
        except ValueError as e:  # a pydantic ValidationError: a value the event model refuses
            return [self._error(f"message:{method}", f"invalid {schema}: {e}")]
        self.counts[method] += 1
        self.counts["events"] += sum(1 for i in items if not isinstance(i, Signal | DecodeError))
        return items

    def _fallback_id(self) -> str:
        self._n += 1
        return f"douyin-{self._n}"

    @staticmethod
    def _user(u: Mapping[str, Any] | None) -> tuple[User | None, dict[str, Any]]:
        if not u:
            return None, {}
        raw = u.get("idStr") or (str(u["id"]) if u.get("id") else "")
        sec = u.get("secUid", "")
        uid = raw if raw not in MASKED_UIDS else (sec or u.get("webcastUid", "") or raw)
        name = u.get("nickname") or u.get("desensitizedNickname") or ""
        extras = {"douyin_uid": raw or None, "sec_uid": sec or None, "display_id": u.get("displayId") or None,
                  "fan_level": (u.get("fansClub") or {}).get("data", {}).get("level"),
                  "pay_level": (u.get("payGrade") or {}).get("level")}
        user = User(id=(uid or "douyin:anonymous")[:_ID_CHARS], name=name[:_NAME_CHARS])
        return user, {k: v for k, v in extras.items() if v is not None}

    @staticmethod
    def _count(n: Any) -> int:
        return max(1, min(int(n or 1), MAX_COUNT))

    def _on_ChatMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        text = body.get("content", "")[:MAX_TEXT_CHARS]
        if not text.strip():
            self.counts["empty_chat"] += 1
            return []
        user, extras = self._user(body.get("user"))
        return [ChatEvent(type="chat", id=ctx["msg_id"] or self._fallback_id(),
                          user=user or User(id="douyin:anonymous"), text=text, **extras, **ctx)]

    def _on_GiftMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        g = body.get("gift") or {}
        gift_id = body.get("giftId") or g.get("id") or 0
        user, extras = self._user(body.get("user"))
        repeat = self._count(body.get("repeatCount") or body.get("comboCount"))
        ended = bool(body.get("repeatEnd"))
        if g.get("combo"):
            # A combo arrives as one message per step with the running count (and once more, ended, with
            # the final count): deliver only what is new, so the streamer never thanks a gift twice.
            key = (user.id if user else "", gift_id, body.get("groupId", 0))
            before = self._gift_seen.pop(key, 0)
            delta = repeat - before if repeat > before else 0
            if not ended:
                self._gift_seen[key] = max(repeat, before)
                if len(self._gift_seen) > 4096:
                    del self._gift_seen[next(iter(self._gift_seen))]
        else:
            delta = 0 if ended else repeat  # repeatEnd on a plain gift is the platform repeating itself
        if delta == 0:
            self.counts["gift_repeats"] += 1
            return []
        count = min(delta * self._count(body.get("groupCount")), MAX_COUNT)
        diamonds = min(int(g.get("diamondCount") or 0), MAX_COUNT)
        name = (g.get("name") or f"礼物{gift_id}")[:_NAME_CHARS]
        value = round(diamonds * count * DIAMOND_CNY, 2)
        return [RoomEvent(type="gift", user=user, gift=name, count=count, value=value, gift_id=str(gift_id),
                          diamonds=diamonds, **extras, **ctx)]

    def _on_LikeMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        user, extras = self._user(body.get("user"))
        return [RoomEvent(type="like", user=user, count=self._count(body.get("count")),
                          total_likes=body.get("total"), **extras, **ctx)]

    def _on_MemberMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        user, extras = self._user(body.get("user"))
        return [RoomEvent(type="enter", user=user, member_count=body.get("memberCount"), **extras, **ctx)]

    def _on_SocialMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        if body.get("action", 1) != 1:  # 1 is follow; shares have no event in the model
            self.counts["social_other"] += 1
            return []
        user, extras = self._user(body.get("user"))
        return [RoomEvent(type="follow", user=user, follow_count=body.get("followCount"), **extras, **ctx)]

    def _on_RoomUserSeqMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        return [Signal("stats", {"online": body.get("total", 0), "total_user": body.get("totalUser", 0),
                                 "msg_id": ctx["msg_id"]})]

    def _on_RoomStatsMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        return [Signal("stats", {"display": body.get("displayLong", ""),
                                 "display_value": body.get("displayValue", body.get("total", 0)),
                                 "msg_id": ctx["msg_id"]})]

    def _on_ControlMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        status = body.get("status", 0)
        return [Signal("stream_end" if status == STREAM_ENDED else "control", {"status": status,
                                                                            "msg_id": ctx["msg_id"]})]

    def _on_ProductChangeMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        infos = body.get("updateProductInfoList", [])
        for p in infos[:2000]:
            if p.get("promotionId") and p.get("index"):
                self._promotion_links[str(p["promotionId"])] = p["index"]
        while len(self._promotion_links) > 4000:
            del self._promotion_links[next(iter(self._promotion_links))]
        explained = next((p for p in infos if p.get("explainType") and p.get("promotionId")), None)
        if explained is None:  # the list changed, nothing is being explained
            return [Signal("product_list", {"total": body.get("total", len(infos)), "msg_id": ctx["msg_id"]})]
        return self._on_stage_event(str(explained["promotionId"]), explained.get("index"), ctx)

    def _on_LiveShoppingMessage(self, body: Mapping[str, Any], ctx: dict[str, Any]) -> list[Item]:
        promotion = body.get("promotionId", 0)
        msg_type = body.get("msgType", 0)
        wanted = self.shopping_types is None or msg_type in self.shopping_types
        if not promotion or body.get("soldOut") or not wanted:
            updated = [str(p) for p in body.get("updatedProductIdsList", [])[:100]]
            return [Signal("shopping", {"msg_type": msg_type, "sold_out": bool(body.get("soldOut")),
                                        "updated_product_ids": updated, "msg_id": ctx["msg_id"]})]
        return self._on_stage_event(str(promotion), self._promotion_links.get(str(promotion)), ctx,
                                    shopping_msg_type=msg_type)

    def _on_stage_event(self, promotion: str, link: int | None, ctx: dict[str, Any], **extra: Any) -> list[Item]:
        product = self.product_ids.get(promotion) or (self.links.get(link) if link else None)
        product_id = product or f"douyin:{promotion}"[:_PRODUCT_CHARS]
        if product_id == self._on_stage:  # every list update names the product explained: say it once
            self.counts["product_same"] += 1
            return []
        self._on_stage = product_id
        return [ProductEvent(type="product", product_id=product_id, promotion_id=promotion, link=link,
                             mapped=product is not None, **extra, **ctx)]


# -- tools: `cohost decode --platform douyin FILE`, `cohost bench decode` -----------------------------------


def item_as_dict(item: Item) -> dict[str, Any]:
    if isinstance(item, DecodeError):
        return {"type": "error", "stage": item.stage, "reason": item.reason, "size": item.size}
    if isinstance(item, Signal):
        return {"type": item.kind, **item.data}
    return item.model_dump(mode="json", exclude_none=True)


def decode_file(path: str | Path, codec: DouyinCodec | None = None) -> list[dict[str, Any]]:
    """Decode a capture into dicts (events, signals and errors, in order). Formats, told apart by content:

    - a binary file: one PushFrame, as received from the websocket;
    - a text file of frames, one per line, in hex or base64 (blank lines and ``#`` comments skipped);
    - a JSON message dict or list of them, as f2 writes them (MessageToDict style, ``common.method``
      naming the method): each is re-encoded with our schema and decoded as one pushed frame.

    Raises CohostError only for a file that cannot be read; bad content comes back as error dicts."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise CohostError(f"cannot read {p}: {e.strerror or e}") from None
    codec = codec or DouyinCodec()
    return [item_as_dict(item) for frame in _frames_in(raw) for item in codec.feed(frame)]


def _frames_in(raw: bytes) -> Iterable[bytes]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return [raw]
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(stripped)
        except ValueError:
            return [raw]
        return [frame_from_dict(d) for d in (doc if isinstance(doc, list) else [doc]) if isinstance(d, dict)]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    frames = []
    for ln in lines:
        frame = _text_frame(ln)
        if frame is None:
            return [raw]  # not a frames-per-line file after all: a binary frame that happens to be UTF-8
        frames.append(frame)
    return frames or [raw]


def _text_frame(line: str) -> bytes | None:
    compact = line.replace(" ", "")
    try:
        return bytes.fromhex(compact)
    except ValueError:
        pass
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def frame_from_dict(d: Mapping[str, Any], *, msg_id: int | None = None) -> bytes:
    """A push frame carrying one message given as an f2-style dict (its method from ``common.method``)."""
    com = d.get("common") or {}
    method = str(com.get("method", ""))
    schema = METHODS.get(method)
    payload = m.encode(schema, d) if schema else b""
    if msg_id is None:
        try:
            msg_id = int(com.get("msgId") or 0)
        except (TypeError, ValueError):
            msg_id = 0
    return m.push_frame(m.response([m.message(method, payload, msg_id)]))


def sample_frames(n: int = 200) -> list[bytes]:
    """Frames like a busy room's: mostly chat, some likes, members, gifts, stats; a few messages each."""
    frames = []
    for i in range(n):
        base = i * 10
        viewer = m.user(10_000 + i, f"观众{i}", sec_uid=f"MS4wLjABAAAA{i:08d}", fan_level=i % 20)
        batch = [m.chat(base + 1, viewer, "这件有大码吗？"), m.chat(base + 2, viewer, "包邮吗"),
                 m.like(base + 3, viewer, 3, 1000 + i), m.member(base + 4, viewer, 500 + i)]
        if i % 5 == 0:
            batch.append(m.gift(base + 5, viewer, gift_id=3242, name="入团卡", diamonds=1, combo=True, repeat=1,
                                group_id=i))
        if i % 10 == 0:
            batch.append(m.room_user_seq(base + 6, 497, 6597))
        frames.append(m.push_frame(m.response(batch, cursor=f"r-{i}", internal_ext=f"seq:{i}", need_ack=True),
                                   log_id=i))
    return frames


def bench_decode(seconds: float = 1.0, frames: list[bytes] | None = None) -> float:
    """Push frames decoded per second (gunzip, protobuf, events), on one core."""
    frames = frames or sample_frames()
    done, start = 0, time.perf_counter()
    while True:
        codec = DouyinCodec()  # fresh each round: every message is new, none dropped as a duplicate
        for frame in frames:
            codec.feed(frame)
            codec.data_to_send()
        done += len(frames)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


__all__ = ["DIAMOND_CNY", "HEARTBEAT", "MAX_FRAME_BYTES", "MAX_PAYLOAD_BYTES", "DecodeError", "DouyinCodec", "Item",
           "Signal", "ack_frame", "bench_decode", "decode_file", "frame_from_dict", "item_as_dict", "sample_frames"]
