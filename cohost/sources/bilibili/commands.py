"""Bilibili business commands (op 5 JSON) to the one event model.

Every event carries what the platform knows beyond the model as extra fields: ``platform`` ("bilibili"),
``cmd``, ``uid`` (the platform's user id, an int; 0 for logged-out viewers), ``msg_id`` (what duplicates
are recognised by), ``medal`` (the fan medal: level, name, anchor, room, guard level, lit), ``guard_level``
(0 none, 1 总督, 2 提督, 3 舰长) and ``dmscore`` (the platform's own importance score) where it sends
them. Values are in CNY: gold coins / 1000; silver-coin gifts are worth 0.

Mapping: DANMU_MSG(_MIRROR) → chat; SUPER_CHAT_MESSAGE(_JPN) → chat with ``paid``; SEND_GIFT,
SEND_GIFT_V2 (protobuf), GUARD_BUY → gift; INTERACT_WORD(_V2) → enter / follow / like (a share is a
Notice: the model has no share); LIKE_INFO_V3_CLICK → like; SHOPPING_EXPLAIN_CARD → product; LIVE /
PREPARING / CUT_OFF → StreamStatus; WATCHED_CHANGE, LIKE_INFO_V3_UPDATE, ONLINE_RANK_COUNT... → Notice.
COMBO_SEND and USER_TOAST_MSG repeat a SEND_GIFT or GUARD_BUY already counted, so they are Notices too.
A payload that is not what its cmd promises is a DecodeError, never an exception.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError

from ...events import MAX_TEXT_CHARS, ChatEvent, ProductEvent, RoomEvent
from . import protobuf as pb
from .items import DecodeError, Item, Notice, StreamStatus

MAX_NAME = 64   # User.name in the event model
MAX_ID = 128


class Context(Protocol):
    room_id: int | None
    products: dict[str, str]


class BadPayload(ValueError):
    pass


# -- tolerant readers: the platform changes field types (ids as strings, prices as floats) --------------


def _int(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e18:
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 30:
        return int(value)
    return default


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool):
        return default
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and len(value) < 40:
        try:
            number = float(value)
        except ValueError:
            return default
    else:
        return default
    return number if number == number and abs(number) < 1e15 else default


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _at(seq: list[Any], i: int, default: Any = None) -> Any:
    return seq[i] if len(seq) > i else default


def _json_obj(value: Any) -> dict[str, Any]:
    """A JSON object sent as a string inside the JSON (DANMU_MSG's extra, DM_INTERACTION's data)."""
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _user(uid: int, name: str, fallback: str = "") -> dict[str, Any]:
    """A user of the model. Logged-out viewers all arrive as uid 0 with masked names: keep them apart by
    the platform's uid hash when it sends one, else by name."""
    if uid:
        user_id = str(uid)
    elif fallback:
        user_id = f"hash:{fallback}"
    else:
        user_id = f"anon:{name}" if name else "anon"
    return {"id": user_id[:MAX_ID], "name": name[:MAX_NAME]}


def _medal(level: Any, name: Any, *, anchor: Any = "", anchor_uid: Any = 0, room_id: Any = 0,
           guard_level: Any = 0, lit: Any = None) -> dict[str, Any] | None:
    name_s = _str(name)
    if not name_s and not _int(level):
        return None
    medal = {"level": _int(level), "name": name_s[:MAX_NAME], "anchor": _str(anchor)[:MAX_NAME],
             "anchor_uid": _int(anchor_uid), "room_id": _int(room_id), "guard_level": _int(guard_level)}
    if lit is not None:
        medal["lit"] = bool(_int(lit))
    return medal


def _fans_medal(m: Any) -> dict[str, Any] | None:
    m = _dict(m)
    return _medal(m.get("medal_level"), m.get("medal_name"), anchor=m.get("anchor_uname", ""),
                  anchor_uid=m.get("target_id"), room_id=m.get("anchor_roomid"),
                  guard_level=m.get("guard_level"), lit=m.get("is_lighted"))


def _common(cmd: str, uid: int, msg_id: str | None, *, medal: dict[str, Any] | None = None,
            guard_level: int = 0, dmscore: Any = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"platform": "bilibili", "cmd": cmd, "uid": uid, "msg_id": msg_id,
                             "medal": medal, "medal_level": medal["level"] if medal else 0,
                             "guard_level": guard_level or (medal or {}).get("guard_level", 0)}
    if dmscore is not None and _int(dmscore, -1) >= 0:
        extra["dmscore"] = _int(dmscore)
    return extra


def _ts(value: Any, scale: float = 1.0) -> float | None:
    number = _num(value)
    return number / scale if number > 0 else None


def _coins_to_cny(coins: int, coin_type: str) -> float:
    return coins / 1000 if coin_type == "gold" else 0.0


# -- commands -------------------------------------------------------------------------------------------


def _danmu(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    info = payload.get("info")
    if not isinstance(info, list) or len(info) < 3 or not isinstance(info[0], list) \
            or not isinstance(info[2], list) or len(info[2]) < 2:
        raise BadPayload("info is not [meta, text, user, ...]")
    meta, user = info[0], info[2]
    text = _str(info[1]).strip()
    if not text:
        return [DecodeError("empty-text", cmd)]
    uid, uname = _int(user[0], -1), _str(user[1])
    if uid < 0:
        raise BadPayload(f"uid {user[0]!r:.40} is not a number")
    ts_ms = _int(_at(meta, 4))
    mode_info = _dict(_at(meta, 15))
    extra = _json_obj(mode_info.get("extra"))
    id_str = _str(extra.get("id_str"))
    crc = _str(_at(meta, 7))
    # Older servers send no id_str: sender, send time (ms) and the client's rnd pin a danmaku down.
    msg_id = id_str or f"dm:{uid or crc}:{ts_ms}:{_str(_at(meta, 5))}"
    m = _list(_at(info, 3))
    medal = _medal(_at(m, 0), _at(m, 1), anchor=_at(m, 2, ""), room_id=_at(m, 3), guard_level=_at(m, 10),
                   lit=_at(m, 11), anchor_uid=_at(m, 12)) if m else None
    if medal is None:  # newer servers also put the medal in mode_info.user
        um = _dict(_dict(mode_info.get("user")).get("medal"))
        medal = _medal(um.get("level"), um.get("name"), anchor_uid=um.get("ruid"),
                       guard_level=um.get("guard_level"), lit=um.get("is_light")) if um else None
    event = {"type": "chat", "id": msg_id[:MAX_ID], "user": _user(uid, uname, crc), "text": text[:MAX_TEXT_CHARS],
             "ts": _ts(ts_ms, 1000) or _ts(_dict(_at(info, 9)).get("ts")),
             **_common(cmd, uid, msg_id, medal=medal, guard_level=_int(_at(info, 7)),
                       dmscore=payload.get("dmscore")),
             "user_level": _int(_at(_list(_at(info, 4)), 0)),
             "wealth_level": _int(_at(_list(_at(info, 16)), 0)),
             "dm_type": _int(_at(meta, 12)),  # 0 text, 1 emoticon, 2 voice
             "recommend_score": _int(extra.get("recommend_score")),
             "mirror": cmd == "DANMU_MSG_MIRROR",   # sent in a linked room
             "lottery": _int(_at(meta, 9)) != 0}    # sent for the viewer by a lottery or storm
    if event["dm_type"] == 1:  # an emoticon sent as a danmaku: the text is its name
        event["emoticon"] = _str(_dict(_at(meta, 13)).get("emoticon_unique")) or None
    reply_mid = _int(extra.get("reply_mid"))
    if reply_mid:
        event["reply_to"] = {"uid": reply_mid, "name": _str(extra.get("reply_uname"))[:MAX_NAME]}
    return [ChatEvent.model_validate(event)]


def _super_chat(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    data = _dict(payload.get("data"))
    sc_id = _str(data.get("id"))
    text = _str(data.get("message")).strip()
    if not sc_id or not text:
        raise BadPayload("no id or message")
    info = _dict(data.get("user_info"))
    uid = _int(data.get("uid"))
    guard = _int(info.get("guard_level"))
    msg_id = f"sc:{sc_id}"  # _JPN repeats the same super chat with a translation: one id for both
    event = {"type": "chat", "id": msg_id[:MAX_ID], "user": _user(uid, _str(info.get("uname"))),
             "text": text[:MAX_TEXT_CHARS], "paid": _num(data.get("price")), "ts": _ts(data.get("start_time")),
             **_common("SUPER_CHAT_MESSAGE", uid, msg_id, medal=_fans_medal(data.get("medal_info")),
                       guard_level=guard, dmscore=data.get("dmscore", payload.get("dmscore"))),
             "user_level": _int(info.get("user_level")), "sc_seconds": _int(data.get("time"))}
    return [ChatEvent.model_validate(event)]


def _gift_event(cmd: str, uid: int, uname: str, *, gift: str, num: int, coins: int, coin_type: str, tid: str,
                ts: float | None, medal: dict[str, Any] | None, guard_level: int, dmscore: Any,
                **more: Any) -> RoomEvent:
    # One transaction id for SEND_GIFT and SEND_GIFT_V2 of the same gift: while Bilibili rolls V2 out a
    # room may get both, and the client drops the second by msg_id.
    msg_id = f"gift:{tid}" if tid else None
    return RoomEvent.model_validate({
        "type": "gift", "user": _user(uid, uname), "gift": gift[:MAX_NAME] or None, "count": max(num, 1),
        "value": _coins_to_cny(coins, coin_type), "ts": ts,
        **_common(cmd, uid, msg_id, medal=medal, guard_level=guard_level, dmscore=dmscore),
        "coin_type": coin_type, "coins": coins, **more})


def _send_gift(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    data = _dict(payload.get("data"))
    if "giftName" not in data or "uid" not in data:
        raise BadPayload("no giftName or uid")
    num = _int(data.get("num"), 1)
    coins = _int(data.get("total_coin")) or _int(data.get("price")) * num
    blind = _dict(data.get("blind_gift"))
    return [_gift_event(cmd, _int(data.get("uid")), _str(data.get("uname")), gift=_str(data.get("giftName")),
                        num=num, coins=coins, coin_type=_str(data.get("coin_type")),
                        tid=_str(data.get("tid")) or _str(data.get("rnd")), ts=_ts(data.get("timestamp")),
                        medal=_fans_medal(data.get("medal_info")), guard_level=_int(data.get("guard_level")),
                        dmscore=data.get("dmscore", payload.get("dmscore")), gift_id=_int(data.get("giftId")),
                        blind_box=_str(blind.get("original_gift_name")) or None)]


def _pb_data(payload: dict[str, Any]) -> pb.Fields:
    raw = _dict(payload.get("data")).get("pb")
    if not isinstance(raw, str):
        raise BadPayload("no data.pb")
    try:
        return pb.parse(base64.b64decode(raw, validate=True))
    except binascii.Error as e:
        raise BadPayload(f"data.pb is not base64: {e}") from None


def _send_gift_v2(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    # SendGiftBroadcast: 1 uid, 2 uname, 5 guard_level, 8 medal {1 anchor uid, 4 room, 5 level, 6 name,
    # 11 guard level}, 9 blind box {3 box name, 6 box price}, 10 gifts (repeated; a batch of blind boxes
    # gives several) {1 id, 2 name, 3 num, 5 price, 6 discount price, 7 total, 8 coin type, 9 tid, 10 ts}.
    f = _pb_data(payload)
    uid, uname = pb.get_int(f, 1), pb.get_str(f, 2)
    guard = pb.get_int(f, 5)
    m = pb.get_message(f, 8)
    medal = _medal(pb.get_int(m, 5), pb.get_str(m, 6), anchor_uid=pb.get_int(m, 1), room_id=pb.get_int(m, 4),
                   guard_level=pb.get_int(m, 11)) if m else None
    blind = pb.get_message(f, 9)
    box, box_price = pb.get_str(blind, 3), pb.get_int(blind, 6)
    dmscore = _dict(payload.get("data")).get("dmscore")
    events: list[Item] = []
    for g in pb.get_messages(f, 10):
        num = max(pb.get_int(g, 3), 1)
        # What the viewer paid: a blind box's price, not the worth of what came out of it.
        coins = (pb.get_int(g, 6) or box_price * num) if box else pb.get_int(g, 5) * num
        events.append(_gift_event(cmd, uid, uname, gift=pb.get_str(g, 2), num=num, coins=coins,
                                  coin_type=pb.get_str(g, 8), tid=pb.get_str(g, 9), ts=_ts(pb.get_int(g, 10)),
                                  medal=medal, guard_level=guard, dmscore=dmscore, gift_id=pb.get_int(g, 1),
                                  blind_box=box or None))
    if not events:
        raise BadPayload("no gifts in data.pb")
    return events


def _guard_buy(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    data = _dict(payload.get("data"))
    if "uid" not in data:
        raise BadPayload("no uid")
    uid, level, num = _int(data.get("uid")), _int(data.get("guard_level")), _int(data.get("num"), 1)
    start = _int(data.get("start_time"))
    return [_gift_event(cmd, uid, _str(data.get("username")), gift=_str(data.get("gift_name")), num=num,
                        coins=_int(data.get("price")) * max(num, 1), coin_type="gold",
                        tid=f"guard:{uid}:{start}:{level}", ts=_ts(start), medal=None, guard_level=level,
                        dmscore=payload.get("dmscore"), guard_buy=level)]


# INTERACT_WORD msg_type → event type; 3 (share) has no event in the model.
_INTERACT = {1: "enter", 2: "follow", 4: "follow", 5: "follow", 6: "like"}


def _interact(cmd: str, msg_type: int, uid: int, uname: str, *, ts: float | None, key: Any,
              medal: dict[str, Any] | None, guard_level: int, dmscore: Any, data: Any) -> list[Item]:
    kind = _INTERACT.get(msg_type)
    if kind is None:
        return [Notice(cmd, data, handled=msg_type == 3)]
    msg_id = f"iw:{uid}:{key}:{msg_type}" if key else None
    return [RoomEvent.model_validate({"type": kind, "user": _user(uid, uname), "ts": ts, "msg_type": msg_type,
                                      **_common(cmd, uid, msg_id, medal=medal, guard_level=guard_level,
                                                dmscore=dmscore)})]


def _interact_word(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    data = _dict(payload.get("data"))
    if "uid" not in data or "msg_type" not in data:
        raise BadPayload("no uid or msg_type")
    uid = _int(data.get("uid"))
    return _interact(cmd, _int(data.get("msg_type")), uid, _str(data.get("uname")), ts=_ts(data.get("timestamp")),
                     key=data.get("trigger_time") or data.get("timestamp"), medal=_fans_medal(data.get("fans_medal")),
                     guard_level=_int(data.get("privilege_type")), dmscore=data.get("dmscore"), data=data)


def _interact_word_v2(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    # InteractWord: 1 uid, 2 uname, 5 msg_type, 6 room, 7 timestamp, 9 fans medal {1 anchor uid, 2 level,
    # 3 name}, 22 uinfo.
    f = _pb_data(payload)
    uid, ts = pb.get_int(f, 1), pb.get_int(f, 7)
    m = pb.get_message(f, 9)
    medal = _medal(pb.get_int(m, 2), pb.get_str(m, 3), anchor_uid=pb.get_int(m, 1)) if m else None
    return _interact(cmd, pb.get_int(f, 5), uid, pb.get_str(f, 2), ts=_ts(ts), key=ts, medal=medal, guard_level=0,
                     dmscore=_dict(payload.get("data")).get("dmscore"), data={"uid": uid, "msg_type": pb.get_int(f, 5)})


def _like_click(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    data = _dict(payload.get("data"))
    if "uid" not in data:
        raise BadPayload("no uid")
    uid = _int(data.get("uid"))
    return [RoomEvent.model_validate({"type": "like", "user": _user(uid, _str(data.get("uname"))),
                                      **_common(cmd, uid, None, medal=_fans_medal(data.get("fans_medal")),
                                                dmscore=data.get("dmscore"))})]


def _explain_card(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    # The streamer put a product of the shopping cart on stage. Its shape is not documented and changes;
    # what is read here is goods_id and goods_name.
    data = _dict(payload.get("data"))
    goods = _str(data.get("goods_id"))
    if not goods:
        raise BadPayload("no goods_id")
    product = ctx.products.get(goods, goods)[:64]
    return [ProductEvent.model_validate({"type": "product", "product_id": product, "platform": "bilibili",
                                         "cmd": cmd, "goods_id": goods,
                                         "goods_name": _str(data.get("goods_name"))[:MAX_NAME],
                                         "goods_price": _str(data.get("goods_price")),
                                         "status": _int(data.get("status"))})]


def _stream(live: bool) -> Callable[[str, dict[str, Any], Context], list[Item]]:
    def handle(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
        room = _int(payload.get("roomid")) or None
        return [StreamStatus(live, cmd, room)]
    return handle


def _notice(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    return [Notice(cmd, payload.get("data"))]


Handler = Callable[[str, dict[str, Any], Context], list[Item]]
HANDLERS: dict[str, Handler] = {
    "DANMU_MSG": _danmu,
    "DANMU_MSG_MIRROR": _danmu,
    "SUPER_CHAT_MESSAGE": _super_chat,
    "SUPER_CHAT_MESSAGE_JPN": _super_chat,
    "SEND_GIFT": _send_gift,
    "SEND_GIFT_V2": _send_gift_v2,
    "GUARD_BUY": _guard_buy,
    "INTERACT_WORD": _interact_word,
    "INTERACT_WORD_V2": _interact_word_v2,
    "LIKE_INFO_V3_CLICK": _like_click,
    "SHOPPING_EXPLAIN_CARD": _explain_card,
    "LIVE": _stream(True),
    "PREPARING": _stream(False),
    "CUT_OFF": _stream(False),  # the stream was cut off by the platform
    **{cmd: _notice for cmd in ("WATCHED_CHANGE", "LIKE_INFO_V3_UPDATE", "ONLINE_RANK_COUNT", "ONLINE_RANK_V2",
                                "COMBO_SEND", "USER_TOAST_MSG", "USER_TOAST_MSG_V2", "SUPER_CHAT_MESSAGE_DELETE",
                                "DM_INTERACTION", "ROOM_REAL_TIME_MESSAGE_UPDATE", "STOP_LIVE_ROOM_LIST",
                                "LOG_IN_NOTICE", "ROOM_CHANGE", "WARNING", "SHOPPING_CART_SHOW", "GOTO_BUY_FLOW")},
}

_ERRORS = (BadPayload, pb.ProtobufError, ValidationError, KeyError, IndexError, TypeError, ValueError,
           AttributeError, RecursionError)


def translate(cmd: str, payload: dict[str, Any], ctx: Context) -> list[Item]:
    """The items one command makes (``cmd`` without its ``:`` suffixes)."""
    handler = HANDLERS.get(cmd)
    if handler is None:
        return [Notice(cmd, None, handled=False)]
    try:
        return handler(cmd, payload, ctx)
    except _ERRORS as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        return [DecodeError("bad-payload", f"{cmd}: {type(e).__name__}: {detail}"[:300])]


__all__ = ["HANDLERS", "translate"]
