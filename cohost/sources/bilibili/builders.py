"""Command payloads shaped like the real server's, for the fake server, tests and benchmarks.

Each returns the JSON object of one op-5 packet (``{"cmd": ..., ...}``). The shapes follow the captures
in shared/data/bilibili and the public protocol notes; values are made up.
"""

from __future__ import annotations

import base64
import json
import time
import zlib
from typing import Any

from . import protobuf as pb

GUARD_NAMES = {1: "总督", 2: "提督", 3: "舰长"}


def _crc(uid: int) -> str:
    return f"{zlib.crc32(str(uid).encode()):08x}"


def danmu_msg(text: str, *, uid: int = 1, uname: str = "观众", id_str: str | None = None,
              ts_ms: int | None = None, medal: tuple[int, str, str, int] | None = None, guard_level: int = 0,
              user_level: int = 0, wealth_level: int = 0, dm_type: int = 0, reply_mid: int = 0,
              reply_uname: str = "", recommend_score: int = 3, cmd: str = "DANMU_MSG") -> dict[str, Any]:
    """A danmaku; ``medal`` is (level, name, anchor name, anchor room id)."""
    ts_ms = int(time.time() * 1000) if ts_ms is None else ts_ms
    extra: dict[str, Any] = {"send_from_me": False, "mode": 0, "color": 16777215, "dm_type": dm_type,
                             "font_size": 25, "content": text, "user_hash": str(zlib.crc32(str(uid).encode())),
                             "recommend_score": recommend_score, "emots": None, "reply_mid": reply_mid,
                             "reply_uname": reply_uname}
    if id_str is not None:
        extra["id_str"] = id_str
    mode_info = {"mode": 0, "show_player_type": 0, "extra": json.dumps(extra, ensure_ascii=False)}
    meta = [0, 1, 25, 16777215, ts_ms, ts_ms // 1000 - 600, 0, _crc(uid), 0, 0, 0, "", dm_type, "{}", "{}",
            mode_info, {"activity_identity": "", "activity_source": 0, "not_show": 0}]
    medal_list: list[Any] = []
    if medal is not None:
        level, name, anchor, room = medal
        medal_list = [level, name, anchor, room, 13081892, "", 0, 13081892, 13081892, 13081892, guard_level, 1,
                      room * 10 + 7]
    info = [meta, text, [uid, uname, 0, 0, 0, 10000, 1, ""], medal_list, [user_level, 0, 9868950, ">50000", 0],
            ["", ""], 0, guard_level, None, {"ts": ts_ms // 1000, "ct": "5BDD7605"}, 0, 0, None, None, 0, 91,
            [wealth_level]]
    return {"cmd": cmd, "info": info, "dm_v2": ""}


def super_chat(message: str, *, sc_id: int, uid: int = 1, uname: str = "观众", price: float = 30,
               guard_level: int = 0, medal: tuple[int, str] | None = None, ts: int | None = None
               ) -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    medal_info = None
    if medal is not None:
        medal_info = {"medal_level": medal[0], "medal_name": medal[1], "anchor_uname": "主播",
                      "anchor_roomid": 1000, "target_id": 42, "guard_level": guard_level, "is_lighted": 1}
    return {"cmd": "SUPER_CHAT_MESSAGE", "data": {
        "id": sc_id, "uid": uid, "price": price, "message": message, "message_trans": "", "start_time": ts,
        "end_time": ts + 60, "time": 60, "gift": {"gift_id": 12000, "gift_name": "醒目留言", "num": 1},
        "user_info": {"uname": uname, "face": "", "guard_level": guard_level, "user_level": 10},
        "medal_info": medal_info, "dmscore": 120}, "roomid": 1000}


def send_gift(uid: int, uname: str, gift_name: str, *, num: int = 1, price: int = 100, coin_type: str = "gold",
              tid: str | None = None, guard_level: int = 0, ts: int | None = None,
              medal: tuple[int, str] | None = None) -> dict[str, Any]:
    """``price`` is per gift in coins (gold: 1000 = 1 CNY)."""
    ts = int(time.time()) if ts is None else ts
    medal_info = {"medal_level": 0, "medal_name": "", "anchor_roomid": 0, "target_id": 0, "guard_level": 0,
                  "is_lighted": 0}
    if medal is not None:
        medal_info.update(medal_level=medal[0], medal_name=medal[1], anchor_roomid=1000, target_id=42,
                          is_lighted=1)
    return {"cmd": "SEND_GIFT", "data": {
        "giftName": gift_name, "giftId": 31036, "giftType": 0, "num": num, "price": price,
        "total_coin": price * num, "coin_type": coin_type, "uid": uid, "uname": uname, "face": "",
        "guard_level": guard_level, "timestamp": ts, "action": "投喂", "tid": tid or f"{ts}{uid}",
        "rnd": str(ts), "batch_combo_id": "", "medal_info": medal_info, "blind_gift": None, "dmscore": 56}}


def send_gift_v2(uid: int, uname: str, gifts: list[tuple[str, int, int]], *, tid_prefix: str = "t",
                 coin_type: str = "gold", guard_level: int = 0, medal: tuple[int, str] | None = None,
                 blind: tuple[str, int] | None = None, ts: int | None = None) -> dict[str, Any]:
    """SEND_GIFT_V2: ``gifts`` as (name, num, price); ``blind`` as (box name, box price)."""
    ts = int(time.time()) if ts is None else ts
    parts: list[tuple[int, int | str | bytes]] = [(1, uid), (2, uname), (3, ""), (5, guard_level)]
    if medal is not None:
        parts.append((8, pb.message((1, 42), (4, 1000), (5, medal[0]), (6, medal[1]), (11, guard_level))))
    if blind is not None:
        parts.append((9, pb.message((2, 32251), (3, blind[0]), (6, blind[1]))))
    for i, (name, num, price) in enumerate(gifts):
        discount = blind[1] * num if blind is not None else price
        parts.append((10, pb.message((1, 31036 + i), (2, name), (3, num), (4, 0), (5, price), (6, discount),
                                     (7, price * num), (8, coin_type), (9, f"{tid_prefix}{i}"), (10, ts),
                                     (12, str(ts)), (18, "投喂"))))
    parts.append((11, 1))
    return {"cmd": "SEND_GIFT_V2", "data": {"pb": base64.b64encode(pb.message(*parts)).decode(), "dmscore": 80}}


def guard_buy(uid: int, username: str, *, guard_level: int = 3, num: int = 1, price: int = 198_000,
              ts: int | None = None) -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    return {"cmd": "GUARD_BUY", "data": {"uid": uid, "username": username, "guard_level": guard_level,
                                          "num": num, "price": price, "gift_id": 10000 + guard_level,
                                          "gift_name": GUARD_NAMES.get(guard_level, "舰长"),
                                          "start_time": ts, "end_time": ts}}


def interact_word(uid: int, uname: str, *, msg_type: int = 1, ts: int | None = None,
                  medal: tuple[int, str] | None = None, dmscore: int = 2) -> dict[str, Any]:
    """msg_type: 1 enter, 2 follow, 3 share, 4 special follow, 5 mutual follow."""
    ts = int(time.time()) if ts is None else ts
    level, name = medal or (0, "")
    return {"cmd": "INTERACT_WORD", "data": {
        "contribution": {"grade": 0}, "dmscore": dmscore,
        "fans_medal": {"anchor_roomid": 1000 if medal else 0, "guard_level": 0, "icon_id": 0,
                       "is_lighted": 1 if medal else 0, "medal_color": 0, "medal_level": level,
                       "medal_name": name, "score": 0, "special": "", "target_id": 42 if medal else 0},
        "identities": [1], "is_spread": 0, "msg_type": msg_type, "privilege_type": 0, "roomid": 1000,
        "score": ts * 1000, "timestamp": ts, "trigger_time": ts * 1_000_000_000 + uid % 1_000_000,
        "uid": uid, "uname": uname, "uname_color": ""}}


def interact_word_v2(uid: int, uname: str, *, msg_type: int = 1, ts: int | None = None,
                     medal: tuple[int, str] | None = None) -> dict[str, Any]:
    ts = int(time.time()) if ts is None else ts
    parts: list[tuple[int, int | str | bytes]] = [(1, uid), (2, uname), (5, msg_type), (6, 1000), (7, ts)]
    if medal is not None:
        parts.append((9, pb.message((1, 42), (2, medal[0]), (3, medal[1]))))
    parts.append((22, pb.message((1, uid), (2, pb.message((1, uname), (2, ""))))))
    return {"cmd": "INTERACT_WORD_V2", "data": {"pb": base64.b64encode(pb.message(*parts)).decode(),
                                                "dmscore": 3}}


def like_click(uid: int, uname: str, *, ts: int | None = None) -> dict[str, Any]:
    return {"cmd": "LIKE_INFO_V3_CLICK", "data": {"uid": uid, "uname": uname, "like_text": "为主播点赞了",
                                                   "fans_medal": {"medal_level": 0, "medal_name": ""},
                                                   "dmscore": 20, "show_area": 0, "msg_type": 6}}


def like_update(click_count: int) -> dict[str, Any]:
    return {"cmd": "LIKE_INFO_V3_UPDATE", "data": {"click_count": click_count}}


def watched_change(num: int) -> dict[str, Any]:
    return {"cmd": "WATCHED_CHANGE", "data": {"num": num, "text_small": str(num), "text_large": f"{num}人看过"}}


def live(room_id: int) -> dict[str, Any]:
    return {"cmd": "LIVE", "live_key": "1", "voice_background": "", "sub_session_key": "", "live_platform": "pc",
            "live_model": 0, "roomid": room_id, "live_time": int(time.time())}


def preparing(room_id: int) -> dict[str, Any]:
    return {"cmd": "PREPARING", "roomid": str(room_id)}


def shopping_explain_card(goods_id: str, goods_name: str, price: str = "99") -> dict[str, Any]:
    return {"cmd": "SHOPPING_EXPLAIN_CARD", "data": {"goods_id": goods_id, "goods_name": goods_name,
                                                      "goods_price": price, "status": 3, "sale_status": 0}}


__all__ = ["danmu_msg", "guard_buy", "interact_word", "interact_word_v2", "like_click", "like_update", "live",
           "preparing", "send_gift", "send_gift_v2", "shopping_explain_card", "super_chat", "watched_change"]
