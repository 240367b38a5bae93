"""Our own minimal schema of the Douyin webcast messages, and builders for them.

Written from the documented field numbers (docs: /work/shared/notes/platforms.md §3.2, checked against the
Apache-2.0 f2 project's captures and field tables); only the fields cohost reads, plus a few that make the
f2 dict fixtures round-trip. Unknown fields are skipped on decode, so a message carrying fields we never
heard of still decodes. One table drives both directions: ``decode`` (bytes → dict with these names) for
the codec and ``encode`` (dict → bytes) for the fake server, the fixtures and the benchmarks.

Names are camelCase; repeated fields end in ``List`` (as in the notes: ``messagesList``, ``headersList``).
``encode`` also takes the snake_case keys of f2's dicts (``update_product_info`` → ``updateProductInfoList``).

Kinds: ``u`` uint64 varint, ``i`` int64 varint (two's complement), ``b`` bool, ``s`` UTF-8 string,
``y`` bytes, or the name of another message in SCHEMA.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .proto import (
    LEN,
    VARINT,
    Buffer,
    WireError,
    field_bytes,
    field_packed,
    field_varint,
    iter_fields,
    iter_packed_varints,
    signed64,
)

MAX_DEPTH = 8          # the schema nests 5 deep at most (Response is parsed apart from its messages' payloads)
MAX_REPEATED = 10_000  # items in one repeated field


@dataclass(frozen=True, slots=True)
class F:
    number: int
    name: str
    kind: str
    repeated: bool = False


def _msg(*fields: F) -> dict[int, F]:
    return {f.number: f for f in fields}


COMMON = F(1, "common", "Common")

SCHEMA: dict[str, dict[int, F]] = {
    # -- framing ------------------------------------------------------------------------------------------
    "PushFrame": _msg(F(1, "seqId", "u"), F(2, "logId", "u"), F(3, "service", "u"), F(4, "method", "u"),
                      F(5, "headersList", "Header", True), F(6, "payloadEncoding", "s"), F(7, "payloadType", "s"),
                      F(8, "payload", "y")),
    "Header": _msg(F(1, "key", "s"), F(2, "value", "s")),  # also a map<string, string> entry
    "Response": _msg(F(1, "messagesList", "Message", True), F(2, "cursor", "s"), F(3, "fetchInterval", "u"),
                     F(4, "now", "u"), F(5, "internalExt", "s"), F(6, "fetchType", "u"),
                     F(7, "routeParams", "Header", True), F(8, "heartbeatDuration", "u"), F(9, "needAck", "b"),
                     F(10, "pushServer", "s"), F(11, "liveCursor", "s"), F(12, "historyNoMore", "b")),
    "Message": _msg(F(1, "method", "s"), F(2, "payload", "y"), F(3, "msgId", "i"), F(4, "msgType", "i"),
                    F(5, "offset", "i")),
    # -- shared parts -------------------------------------------------------------------------------------
    "Common": _msg(F(1, "method", "s"), F(2, "msgId", "u"), F(3, "roomId", "u"), F(4, "createTime", "u"),
                   F(6, "isShowMsg", "b"), F(7, "describe", "s")),
    "User": _msg(F(1, "id", "u"), F(2, "shortId", "u"), F(3, "nickname", "s"), F(4, "gender", "u"),
                 F(6, "level", "u"), F(22, "followInfo", "FollowInfo"), F(23, "payGrade", "PayGrade"),
                 F(24, "fansClub", "FansClub"), F(38, "displayId", "s"), F(46, "secUid", "s"),
                 F(66, "mysteryMan", "u"), F(68, "desensitizedNickname", "s"), F(73, "webcastUid", "s"),
                 F(1028, "idStr", "s")),
    "FollowInfo": _msg(F(1, "followingCount", "u"), F(2, "followerCount", "u"), F(3, "followStatus", "u")),
    "PayGrade": _msg(F(6, "level", "u")),
    "FansClub": _msg(F(1, "data", "FansClubData")),
    "FansClubData": _msg(F(1, "clubName", "s"), F(2, "level", "u"), F(3, "userFansClubStatus", "u")),
    # -- methods ------------------------------------------------------------------------------------------
    "ChatMessage": _msg(COMMON, F(2, "user", "User"), F(3, "content", "s"), F(15, "eventTime", "u")),
    "GiftMessage": _msg(COMMON, F(2, "giftId", "u"), F(3, "fanTicketCount", "u"), F(4, "groupCount", "u"),
                        F(5, "repeatCount", "u"), F(6, "comboCount", "u"), F(7, "user", "User"),
                        F(8, "toUser", "User"), F(9, "repeatEnd", "u"), F(11, "groupId", "u"),
                        F(15, "gift", "GiftStruct"), F(16, "logId", "s"), F(35, "traceId", "s")),
    "GiftStruct": _msg(F(2, "describe", "s"), F(5, "id", "u"), F(10, "combo", "b"), F(11, "type", "u"),
                       F(12, "diamondCount", "u"), F(16, "name", "s")),
    "LikeMessage": _msg(COMMON, F(2, "count", "u"), F(3, "total", "u"), F(5, "user", "User")),
    "MemberMessage": _msg(COMMON, F(2, "user", "User"), F(3, "memberCount", "u"), F(10, "action", "u")),
    "SocialMessage": _msg(COMMON, F(2, "user", "User"), F(3, "shareType", "u"), F(4, "action", "u"),
                          F(5, "shareTarget", "s"), F(6, "followCount", "u")),
    "RoomUserSeqMessage": _msg(COMMON, F(2, "ranksList", "Contributor", True), F(3, "total", "u"),
                               F(4, "popStr", "s"), F(6, "popularity", "u"), F(7, "totalUser", "u"),
                               F(8, "totalUserStr", "s"), F(9, "totalStr", "s"), F(10, "onlineUserForAnchor", "s"),
                               F(11, "totalPvForAnchor", "s")),
    "Contributor": _msg(F(1, "score", "u"), F(2, "user", "User"), F(3, "rank", "u")),
    "RoomStatsMessage": _msg(COMMON, F(2, "displayShort", "s"), F(3, "displayMiddle", "s"), F(4, "displayLong", "s"),
                             F(5, "displayValue", "u"), F(6, "displayVersion", "u"), F(7, "incremental", "b"),
                             F(8, "isHidden", "b"), F(9, "total", "u"), F(10, "displayType", "u")),
    "ControlMessage": _msg(COMMON, F(2, "status", "u")),
    "ProductChangeMessage": _msg(COMMON, F(2, "updateTimestamp", "u"), F(3, "updateToast", "s"),
                                 F(4, "updateProductInfoList", "ProductInfo", True), F(5, "total", "u"),
                                 F(8, "updateCategoryInfoList", "CategoryInfo", True)),
    "ProductInfo": _msg(F(1, "promotionId", "u"), F(2, "index", "u"), F(3, "targetFlashUidsList", "u", True),
                        F(4, "explainType", "u")),
    "CategoryInfo": _msg(F(1, "id", "u"), F(2, "name", "s"), F(3, "promotionIdsList", "u", True), F(4, "type", "s"),
                         F(5, "uniqueIndex", "s")),
    "LiveShoppingMessage": _msg(COMMON, F(2, "msgType", "u"), F(3, "promotionId", "u"), F(4, "targetUid", "u"),
                                F(5, "bubbleType", "u"), F(9, "updatedProductIdsList", "u", True),
                                F(10, "updateType", "u"), F(11, "updatedProductInfo", "UpdatedProductInfo"),
                                F(12, "soldOut", "b"), F(15, "updateTimestamp", "u"), F(31, "updateToast", "s"),
                                F(33, "logicalClock", "u")),
    "UpdatedProductInfo": _msg(F(1, "price", "u"), F(2, "title", "s"), F(3, "cover", "s"), F(4, "status", "u")),
}

# Message.method → the schema of its payload. Methods not listed are counted and skipped.
METHODS: dict[str, str] = {
    "WebcastChatMessage": "ChatMessage",
    "WebcastGiftMessage": "GiftMessage",
    "WebcastLikeMessage": "LikeMessage",
    "WebcastMemberMessage": "MemberMessage",
    "WebcastSocialMessage": "SocialMessage",
    "WebcastRoomUserSeqMessage": "RoomUserSeqMessage",
    "WebcastRoomStatsMessage": "RoomStatsMessage",
    "WebcastControlMessage": "ControlMessage",
    "WebcastProductChangeMessage": "ProductChangeMessage",
    "WebcastLiveShoppingMessage": "LiveShoppingMessage",
}

_BY_NAME: dict[str, dict[str, F]] = {m: {f.name: f for f in fs.values()} for m, fs in SCHEMA.items()}
_SCALARS = frozenset("uib")


def decode(name: str, data: Buffer, depth: int = 0) -> dict[str, Any]:
    """Decode one message of SCHEMA[name]; unknown fields and fields of an unexpected wire type are skipped
    (as protobuf does). Raises WireError, and only WireError, for malformed bytes."""
    if depth > MAX_DEPTH:
        raise WireError(f"nested deeper than {MAX_DEPTH}")
    spec = SCHEMA[name]
    out: dict[str, Any] = {}
    for number, wire, value in iter_fields(data):
        f = spec.get(number)
        if f is None:
            continue
        kind = f.kind
        if kind in _SCALARS:
            if wire == VARINT:
                values: list[Any] = [value]
            elif wire == LEN and f.repeated:
                values = list(iter_packed_varints(value, max_items=MAX_REPEATED))  # type: ignore[arg-type]
            else:
                continue
            if kind == "i":
                values = [signed64(v) for v in values]
            elif kind == "b":
                values = [v != 0 for v in values]
        elif wire != LEN:
            continue
        elif kind == "s":
            values = [bytes(value).decode("utf-8", "replace")]  # type: ignore[arg-type]
        elif kind == "y":
            values = [bytes(value)]  # type: ignore[arg-type]
        else:
            values = [decode(kind, value, depth + 1)]  # type: ignore[arg-type]
        if f.repeated:
            items = out.setdefault(f.name, [])
            if len(items) + len(values) > MAX_REPEATED:
                raise WireError(f"{name}.{f.name}: more than {MAX_REPEATED} items")
            items.extend(values)
        else:
            out[f.name] = values[-1]  # last one wins, as in protobuf
    return out


def _camel(key: str) -> str:
    if "_" not in key:
        return key
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def encode(name: str, obj: Mapping[str, Any]) -> bytes:
    """Encode a dict as SCHEMA[name]. Keys may be camelCase or snake_case, repeated ones with or without
    the List suffix; keys the schema does not know are left out (f2's dicts carry many). Integers may be
    given as strings (as MessageToDict writes 64-bit values)."""
    fields = _BY_NAME[name]
    out = bytearray()
    for key, value in obj.items():
        f = fields.get(_camel(key)) or fields.get(_camel(key) + "List")
        if f is None or value is None:
            continue
        if f.repeated:
            if isinstance(value, Mapping):  # a map field given as a dict
                value = [{"key": k, "value": v} for k, v in value.items()]
            items = list(value)
            if f.kind in _SCALARS:
                out += field_packed(f.number, [_int(f.kind, v) for v in items])
                continue
        else:
            items = [value]
        for item in items:
            out += _encode_one(f, item)
    return bytes(out)


def _int(kind: str, value: Any) -> int:
    if kind == "b":
        return 1 if value in (True, 1, "true", "1") else 0
    return int(value)


def _encode_one(f: F, value: Any) -> bytes:
    """One field; a scalar at its default (0, false, empty) is left out, as proto3 writers do."""
    if f.kind in _SCALARS:
        n = _int(f.kind, value)
        return field_varint(f.number, n) if n or f.repeated else b""
    if f.kind == "s" or f.kind == "y":
        data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return field_bytes(f.number, data) if data or f.repeated else b""
    return field_bytes(f.number, encode(f.kind, value))


# -- builders: the frames a Douyin push server sends (for the fake server, fixtures and benchmarks) ---------


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: the same bytes every run


def push_frame(payload: bytes = b"", *, payload_type: str = "msg", log_id: int = 0, seq_id: int = 0,
               compress: bool = True, headers: Mapping[str, str] | None = None) -> bytes:
    """A PushFrame; ``compress`` gzips the payload and says so in the headers, as the server does."""
    hdrs = dict(headers or {})
    if compress:
        payload = gzip_bytes(payload)
        hdrs.setdefault("compress_type", "gzip")
    return encode("PushFrame", {"seqId": seq_id, "logId": log_id, "headersList": hdrs, "payloadEncoding": "pb",
                                "payloadType": payload_type, "payload": payload})


def response(messages: list[bytes], *, cursor: str = "", internal_ext: str = "", need_ack: bool = False,
             heartbeat_ms: int = 0, now_ms: int = 0, fetch_interval_ms: int = 0) -> bytes:
    """A Response around already-encoded Message bytes."""
    out = bytearray(b"".join(field_bytes(1, m) for m in messages))
    out += encode("Response", {"cursor": cursor, "fetchInterval": fetch_interval_ms, "now": now_ms,
                               "internalExt": internal_ext, "fetchType": 1, "heartbeatDuration": heartbeat_ms,
                               "needAck": need_ack})
    return bytes(out)


def message(method: str, payload: bytes | Mapping[str, Any], msg_id: int, msg_type: int = 0) -> bytes:
    """A Message; a dict payload is encoded with the method's schema."""
    if isinstance(payload, Mapping):
        payload = encode(METHODS[method], payload)
    return encode("Message", {"method": method, "payload": payload, "msgId": msg_id, "msgType": msg_type})


def common(method: str, msg_id: int, room_id: int = 0, create_ms: int = 0) -> dict[str, Any]:
    return {"method": method, "msgId": msg_id, "roomId": room_id, "createTime": create_ms}


def user(uid: int, nickname: str, *, sec_uid: str = "", display_id: str = "", fan_level: int | None = None,
         pay_level: int | None = None) -> dict[str, Any]:
    u: dict[str, Any] = {"id": uid, "idStr": str(uid), "nickname": nickname, "secUid": sec_uid,
                         "displayId": display_id}
    if fan_level is not None:
        u["fansClub"] = {"data": {"level": fan_level}}
    if pay_level is not None:
        u["payGrade"] = {"level": pay_level}
    return u


def chat(msg_id: int, who: Mapping[str, Any], content: str, *, room_id: int = 0, create_ms: int = 0) -> bytes:
    m = "WebcastChatMessage"
    return message(m, {"common": common(m, msg_id, room_id, create_ms), "user": who, "content": content}, msg_id)


def gift(msg_id: int, who: Mapping[str, Any], *, gift_id: int, name: str, diamonds: int, repeat: int = 1,
         group: int = 1, group_id: int = 0, combo: bool = False, repeat_end: int = 0, room_id: int = 0,
         create_ms: int = 0) -> bytes:
    m = "WebcastGiftMessage"
    return message(m, {"common": common(m, msg_id, room_id, create_ms), "giftId": gift_id, "groupCount": group,
                       "repeatCount": repeat, "comboCount": repeat, "user": who, "repeatEnd": repeat_end,
                       "groupId": group_id, "gift": {"id": gift_id, "name": name, "diamondCount": diamonds,
                                                      "combo": combo}}, msg_id)


def like(msg_id: int, who: Mapping[str, Any], count: int, total: int = 0, *, create_ms: int = 0) -> bytes:
    m = "WebcastLikeMessage"
    return message(m, {"common": common(m, msg_id, 0, create_ms), "count": count, "total": total, "user": who},
                   msg_id)


def member(msg_id: int, who: Mapping[str, Any], member_count: int = 0, *, create_ms: int = 0) -> bytes:
    m = "WebcastMemberMessage"
    return message(m, {"common": common(m, msg_id, 0, create_ms), "user": who, "memberCount": member_count,
                       "action": 1}, msg_id)


def social(msg_id: int, who: Mapping[str, Any], action: int = 1, follow_count: int = 0, *,
           create_ms: int = 0) -> bytes:
    m = "WebcastSocialMessage"
    return message(m, {"common": common(m, msg_id, 0, create_ms), "user": who, "action": action,
                       "followCount": follow_count}, msg_id)


def room_user_seq(msg_id: int, online: int, total_user: int) -> bytes:
    m = "WebcastRoomUserSeqMessage"
    return message(m, {"common": common(m, msg_id), "total": online, "totalUser": total_user}, msg_id)


def control(msg_id: int, status: int) -> bytes:
    m = "WebcastControlMessage"
    return message(m, {"common": common(m, msg_id), "status": status}, msg_id)


def product_change(msg_id: int, products: list[tuple[int, int, int]], *, total: int | None = None) -> bytes:
    """``products``: (promotionId, index — the link number, explainType — nonzero for the one explained)."""
    m = "WebcastProductChangeMessage"
    infos = [{"promotionId": p, "index": i, "explainType": e} for p, i, e in products]
    return message(m, {"common": common(m, msg_id), "updateProductInfoList": infos,
                       "total": len(products) if total is None else total}, msg_id)


def live_shopping(msg_id: int, promotion_id: int, msg_type: int = 1, *, sold_out: bool = False) -> bytes:
    m = "WebcastLiveShoppingMessage"
    return message(m, {"common": common(m, msg_id), "msgType": msg_type, "promotionId": promotion_id,
                       "soldOut": sold_out}, msg_id)


__all__ = ["METHODS", "SCHEMA", "F", "chat", "common", "control", "decode", "encode", "gift", "gzip_bytes", "like",
           "live_shopping", "member", "message", "product_change", "push_frame", "response", "room_user_seq",
           "social", "user"]
