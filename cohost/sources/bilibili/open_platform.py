"""The Bilibili live open platform (直播开放平台, the sanctioned route) as a Source.

    client = OpenPlatformClient("身份码", credentials=OpenPlatformCredentials.from_env())
    await hub.run_source("room", None, client, sink)

The streamer copies a 身份码 (anchor code) from the live centre; the developer's app has an ``app_id`` and
an access key pair (COHOST_BILIBILI_APP_ID, COHOST_BILIBILI_ACCESS_KEY, COHOST_BILIBILI_ACCESS_SECRET).

One *game* (an interactive session): ``POST {api_base}/v2/app/start`` with ``{"code", "app_id"}`` gives
``game_info.game_id`` and ``websocket_info`` (``auth_body``, a string sent verbatim as the op 7 auth body,
and ``wss_link[]``, tried in turn); ``POST /v2/app/heartbeat {"game_id"}`` every 20 s keeps the game
(without it the server ends it with LIVE_OPEN_PLATFORM_INTERACTION_END); ``POST /v2/app/end
{"game_id", "app_id"}`` when stopping. Every request is signed (``sign_headers``): the ``x-bili-*``
headers (content md5 of the body, timestamp, method HMAC-SHA256, nonce, access key id, version 1.0),
sorted by name, each ``name:value``, joined by newlines, HMAC-SHA256 with the access secret, hex, in
``Authorization``.

The websocket speaks the web protocol's framing (codec.PacketDecoder: 16-byte header, zlib bundles of
protover 2) with a heartbeat (op 2) every 30 s. A dropped link reconnects to the next ``wss_link`` with
the same game; INTERACTION_END, a refused auth or a heartbeat answered "game gone" starts a new game.
Commands become events of the one model (``translate``): DM → chat (user id = open_id), SUPER_CHAT →
chat with ``paid`` (CNY), SEND_GIFT / GUARD → gift (value in CNY; a free gift is worth 0), LIKE → like,
LIVE_ROOM_ENTER → enter, LIVE_START / LIVE_END → stream start / end. Duplicates are dropped by msg_id.

Health: connecting, live ("B站已连接"), reconnecting ("B站连接中断，正在重连（第3次）"), ended, failed
(an invalid 身份码, an unknown app, a bad signature, or ``max_attempts`` ran out) and stopped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from pydantic import ValidationError

from ...aio import cancel_and_wait
from ...errors import CohostError
from ...events import MAX_TEXT_CHARS, ChatEvent, Event, RoomEvent, StreamEvent
from ..base import Backoff, SeenIds, SourceHealth, Submit
from .client import http_proxy
from .codec import BilibiliCodec, Limits, Op, Packet, Ver, encode_heartbeat, encode_packet
from .items import AuthReply, DecodeError, HeartbeatReply, Item, Notice, StreamStatus

log = logging.getLogger(__name__)

API_BASE = "https://live-open.biliapi.com"
ENV_APP_ID = "COHOST_BILIBILI_APP_ID"
ENV_ACCESS_KEY = "COHOST_BILIBILI_ACCESS_KEY"
ENV_ACCESS_SECRET = "COHOST_BILIBILI_ACCESS_SECRET"
PLATFORM = "bilibili-open"
MAX_NAME, MAX_ID = 64, 128

# API codes (the open platform's documented error table). Fatal ones stop the client: retrying will not help.
CODE_INVALID_CODE = 7007
CODE_GAME_GONE = 7003  # "heartbeat expired or wrong game_id": start a new game
FATAL_CODES: dict[int, str] = {
    CODE_INVALID_CODE: "身份码无效，请在B站直播中心复制主播身份码",
    4001: "B站开放平台应用无效，请检查 COHOST_BILIBILI_APP_ID",
    4002: "B站开放平台签名错误，请检查 COHOST_BILIBILI_ACCESS_KEY / ACCESS_SECRET",
}
RESTART_CODES = {CODE_GAME_GONE}


# -- credentials ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenPlatformCredentials:
    """The developer's app on open-live.bilibili.com, from the environment only."""

    app_id: int
    access_key: str
    access_secret: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OpenPlatformCredentials:
        env = os.environ if environ is None else environ
        values = {name: env.get(name, "").strip() for name in (ENV_APP_ID, ENV_ACCESS_KEY, ENV_ACCESS_SECRET)}
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise CohostError("the Bilibili open platform needs the app's credentials in the environment: "
                              f"{', '.join(missing)} (from open-live.bilibili.com, 开发者中心)")
        try:
            app_id = int(values[ENV_APP_ID])
        except ValueError:
            raise CohostError(f"{ENV_APP_ID} must be the app's number, not {values[ENV_APP_ID]!r}") from None
        return cls(app_id, values[ENV_ACCESS_KEY], values[ENV_ACCESS_SECRET])

    def __repr__(self) -> str:  # the secret never goes into a log
        return (f"OpenPlatformCredentials(app_id={self.app_id}, access_key={self.access_key!r}, "
                f"access_secret={'set' if self.access_secret else 'unset'})")

    __str__ = __repr__


# -- signing --------------------------------------------------------------------------------------------


def string_to_sign(headers: Mapping[str, str]) -> str:
    """The ``x-bili-*`` headers sorted by name, each ``name:value``, joined by newlines."""
    signed = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-bili-"))
    return "\n".join(f"{k}:{v}" for k, v in signed)


def signature(secret: str, headers: Mapping[str, str]) -> str:
    return hmac.new(secret.encode("utf-8"), string_to_sign(headers).encode("utf-8"), hashlib.sha256).hexdigest()


def sign_headers(body: bytes, access_key: str, access_secret: str, *, timestamp: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:
    """Every header an open platform request carries, ``Authorization`` included."""
    headers = {
        "x-bili-accesskeyid": access_key,
        "x-bili-content-md5": hashlib.md5(body).hexdigest(),
        "x-bili-signature-method": "HMAC-SHA256",
        "x-bili-signature-nonce": nonce if nonce is not None else uuid.uuid4().hex,
        "x-bili-signature-version": "1.0",
        "x-bili-timestamp": str(int(time.time()) if timestamp is None else timestamp),
    }
    return {"Accept": "application/json", "Content-Type": "application/json", **headers,
            "Authorization": signature(access_secret, headers)}


def encode_body(data: dict[str, Any]) -> bytes:
    """A request body, exactly the bytes whose md5 is signed."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- commands to events ---------------------------------------------------------------------------------


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


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if number == number and abs(number) < 1e15 else 0.0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _user(data: dict[str, Any]) -> dict[str, Any]:
    open_id, name = _str(data.get("open_id")), _str(data.get("uname"))
    uid = _int(data.get("uid"))  # 0 since 2024: the platform gives open_id only
    user_id = open_id or (str(uid) if uid else f"anon:{name}" if name else "anon")
    return {"id": user_id[:MAX_ID], "name": name[:MAX_NAME]}


def _ts(value: Any) -> float | None:
    number = _num(value)
    return number if number > 0 else None


def _common(cmd: str, data: dict[str, Any], msg_id: str | None) -> dict[str, Any]:
    level, name = _int(data.get("fans_medal_level")), _str(data.get("fans_medal_name"))
    medal = {"level": level, "name": name[:MAX_NAME],
             "wearing": bool(data.get("fans_medal_wearing_status"))} if level or name else None
    return {"platform": PLATFORM, "cmd": cmd, "open_id": _str(data.get("open_id")), "msg_id": msg_id,
            "medal": medal, "medal_level": level, "guard_level": _int(data.get("guard_level")),
            "room_id": _int(data.get("room_id")) or None}


class BadPayload(ValueError):
    pass


def _dm(cmd: str, data: dict[str, Any]) -> list[Item]:
    text = _str(data.get("msg")).strip()
    if not text:
        return [DecodeError("empty-text", cmd)]
    msg_id = _str(data.get("msg_id")) or f"dm:{data.get('open_id')}:{data.get('timestamp')}:{text[:20]}"
    event: dict[str, Any] = {"type": "chat", "id": msg_id[:MAX_ID], "user": _user(data), "text": text[:MAX_TEXT_CHARS],
                             "ts": _ts(data.get("timestamp")), **_common(cmd, data, msg_id),
                             "dm_type": _int(data.get("dm_type"))}  # 0 text, 1 emoticon
    if event["dm_type"] == 1:
        event["emoticon"] = _str(data.get("emoji_img_url")) or None
    reply = _str(data.get("reply_open_id"))
    if reply:
        event["reply_to"] = {"open_id": reply, "name": _str(data.get("reply_uname"))[:MAX_NAME]}
    return [ChatEvent.model_validate(event)]


def _super_chat(cmd: str, data: dict[str, Any]) -> list[Item]:
    text = _str(data.get("message")).strip()
    sc_id = _str(data.get("message_id"))
    if not text or not sc_id:
        raise BadPayload("no message or message_id")
    msg_id = _str(data.get("msg_id")) or f"sc:{sc_id}"
    return [ChatEvent.model_validate({
        "type": "chat", "id": f"sc:{sc_id}"[:MAX_ID], "user": _user(data), "text": text[:MAX_TEXT_CHARS],
        "paid": _num(data.get("rmb")), "ts": _ts(data.get("timestamp") or data.get("start_time")),
        **_common(cmd, data, msg_id), "sc_id": sc_id,
        "sc_seconds": max(0, _int(data.get("end_time")) - _int(data.get("start_time")))})]


def _gift(cmd: str, data: dict[str, Any]) -> list[Item]:
    if "gift_name" not in data:
        raise BadPayload("no gift_name")
    num = max(_int(data.get("gift_num"), 1), 1)
    paid = bool(data.get("paid"))
    # price is per gift, in 1/1000 CNY (1000 = 1元 = 10电池); a free (silver) gift is worth nothing.
    value = _int(data.get("price")) * num / 1000 if paid else 0.0
    blind = _dict(data.get("blind_gift"))
    return [RoomEvent.model_validate({
        "type": "gift", "user": _user(data), "gift": _str(data.get("gift_name"))[:MAX_NAME] or None, "count": num,
        "value": value, "ts": _ts(data.get("timestamp")), **_common(cmd, data, _str(data.get("msg_id")) or None),
        "gift_id": _int(data.get("gift_id")), "paid_gift": paid,
        "blind_box": _str(blind.get("blind_gift_name") or blind.get("original_gift_name")) or None})]


GUARD_NAMES = {1: "总督", 2: "提督", 3: "舰长"}


def _guard(cmd: str, data: dict[str, Any]) -> list[Item]:
    info = _dict(data.get("user_info"))
    if not info:
        raise BadPayload("no user_info")
    level, num = _int(data.get("guard_level")), max(_int(data.get("guard_num"), 1), 1)
    user = _user({**info, "uid": info.get("uid")})
    common = _common(cmd, {**data, "open_id": info.get("open_id")}, _str(data.get("msg_id")) or None)
    return [RoomEvent.model_validate({
        "type": "gift", "user": user, "gift": GUARD_NAMES.get(level, "大航海"), "count": num,
        "value": _int(data.get("price")) * num / 1000, "ts": _ts(data.get("timestamp")), **common,
        "guard_buy": level, "guard_unit": _str(data.get("guard_unit")) or None})]


def _like(cmd: str, data: dict[str, Any]) -> list[Item]:
    count = max(_int(data.get("like_count"), 1), 1)
    return [RoomEvent.model_validate({"type": "like", "user": _user(data), "count": count,
                                      "ts": _ts(data.get("timestamp")),
                                      **_common(cmd, data, _str(data.get("msg_id")) or None)})]


def _enter(cmd: str, data: dict[str, Any]) -> list[Item]:
    return [RoomEvent.model_validate({"type": "enter", "user": _user(data), "ts": _ts(data.get("timestamp")),
                                      **_common(cmd, data, _str(data.get("msg_id")) or None)})]


def _stream(live: bool) -> Callable[[str, dict[str, Any]], list[Item]]:
    def handle(cmd: str, data: dict[str, Any]) -> list[Item]:
        return [StreamStatus(live, cmd, _int(data.get("room_id")) or None)]
    return handle


def _notice(cmd: str, data: dict[str, Any]) -> list[Item]:
    return [Notice(cmd, data)]


INTERACTION_END = "LIVE_OPEN_PLATFORM_INTERACTION_END"
HANDLERS: dict[str, Callable[[str, dict[str, Any]], list[Item]]] = {
    "LIVE_OPEN_PLATFORM_DM": _dm,
    "LIVE_OPEN_PLATFORM_SUPER_CHAT": _super_chat,
    "LIVE_OPEN_PLATFORM_SEND_GIFT": _gift,
    "LIVE_OPEN_PLATFORM_GUARD": _guard,
    "LIVE_OPEN_PLATFORM_LIKE": _like,
    "LIVE_OPEN_PLATFORM_LIVE_ROOM_ENTER": _enter,
    "LIVE_OPEN_PLATFORM_LIVE_START": _stream(True),
    "LIVE_OPEN_PLATFORM_LIVE_END": _stream(False),
    "LIVE_OPEN_PLATFORM_SUPER_CHAT_DEL": _notice,
    INTERACTION_END: _notice,
}

_ERRORS = (BadPayload, ValidationError, KeyError, IndexError, TypeError, ValueError, AttributeError)


def translate(payload: dict[str, Any]) -> list[Item]:
    """The items one command (``{"cmd": ..., "data": {...}}``) makes. Never raises."""
    cmd = _str(payload.get("cmd")).split(":", 1)[0]
    handler = HANDLERS.get(cmd)
    if handler is None:
        return [Notice(cmd, None, handled=False)]
    try:
        return handler(cmd, _dict(payload.get("data")))
    except _ERRORS as e:
        detail = e.errors()[0]["msg"] if isinstance(e, ValidationError) else str(e)
        return [DecodeError("bad-payload", f"{cmd}: {type(e).__name__}: {detail}"[:300])]


class OpenPlatformCodec(BilibiliCodec):
    """The web codec's framing, bundles and control packets, with the open platform's commands."""

    def _items(self, p: Packet) -> list[Item]:
        if p.op != Op.SEND_MSG_REPLY or p.ver != Ver.JSON:
            return super()._items(p)
        try:
            payload = json.loads(p.body.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            return [DecodeError("bad-json", str(e)[:200])]
        if not isinstance(payload, dict) or not isinstance(payload.get("cmd"), str):
            return [DecodeError("bad-command", "no cmd")]
        self.stats.commands[payload["cmd"]] += 1
        items = translate(payload)
        for item in items:
            if isinstance(item, Notice) and not item.handled:
                self.stats.unhandled[item.cmd] += 1
        return items


def encode_auth(auth_body: str) -> bytes:
    """The auth packet (op 7): the body app/start gave, verbatim."""
    return encode_packet(Op.AUTH, auth_body.encode("utf-8"))


# -- the client -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Game:
    """What app/start gave."""

    game_id: str
    auth_body: str
    links: tuple[str, ...]
    anchor: dict[str, Any]


class ApiError(Exception):
    """The API answered a non-zero code (or not at all: code None)."""

    def __init__(self, what: str, code: int | None, message: str):
        super().__init__(f"{what}: code {code} ({message})" if code is not None else f"{what}: {message}")
        self.what, self.code, self.message = what, code, message

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


class InteractionEnded(Exception):
    pass


class AuthRejected(Exception):
    pass


class Stalled(Exception):
    pass


class StreamEnded(Exception):
    pass


class OpenPlatformClient:
    """A room's events through the open platform, delivered once each, reconnecting by itself.

    ``api_base`` and the links app/start returns are all it talks to, so tests point it at
    cohost.testing.fake_bilibili_open. ``products`` is kept for parity with the web client (the open
    platform sends no product commands)."""

    def __init__(self, code: str, *, credentials: OpenPlatformCredentials | None = None, api_base: str = API_BASE,
                 heartbeat_s: float = 30.0, game_heartbeat_s: float = 20.0, receive_timeout_s: float = 70.0,
                 auth_timeout_s: float = 5.0, connect_timeout_s: float = 10.0, http_timeout_s: float = 10.0,
                 backoff: Backoff | None = None, stable_s: float = 10.0, max_attempts: int | None = None,
                 stop_on_end: bool = False, products: dict[str, str] | None = None, limits: Limits | None = None,
                 seen_ids: int = 10_000, proxy: str | bool | None = True,
                 on_item: Callable[[Item], None] | None = None, name: str | None = None):
        code = (code or "").strip()
        if not code:
            raise CohostError("the Bilibili open platform needs the streamer's 身份码 (--code)")
        self.code = code
        self.name = name or f"bilibili-open:{code[:4]}…"
        self.credentials = credentials if credentials is not None else OpenPlatformCredentials.from_env()
        self.api_base = api_base.rstrip("/")
        self.heartbeat_s, self.game_heartbeat_s, self.receive_timeout_s = heartbeat_s, game_heartbeat_s, \
            receive_timeout_s
        self.auth_timeout_s, self.connect_timeout_s, self.http_timeout_s = auth_timeout_s, connect_timeout_s, \
            http_timeout_s
        self.backoff = backoff or Backoff()
        self.stable_s, self.max_attempts, self.stop_on_end = stable_s, max_attempts, stop_on_end
        self.proxy = proxy
        self.on_item = on_item
        self.limits = limits or Limits()
        self.codec = OpenPlatformCodec(products=products, limits=self.limits)
        self.seen = SeenIds(seen_ids)
        self.health = SourceHealth(self.name, message="正在连接B站开放平台…")
        self.game: Game | None = None
        self.popularity = 0
        self.stats = {"connections": 0, "starts": 0, "game_heartbeats": 0, "game_heartbeat_failures": 0,
                      "ends": 0, "interaction_ends": 0, "duplicates": 0, "dropped": 0, "reconnects": 0}
        self._link_index = 0
        self._ended = False
        self._game_beat: asyncio.Task[None] | None = None
        self._game_lost: str | None = None   # set by the game heartbeat when the server forgot the game
        self._ws: Any = None

    def __repr__(self) -> str:
        return f"OpenPlatformClient({self.name!r}, state={self.health.state!r})"

    # -- the loop -------------------------------------------------------------------------------------

    async def run(self, submit: Submit) -> None:
        async with httpx.AsyncClient(timeout=self.http_timeout_s, **http_proxy(self.proxy)) as http:
            try:
                await self._run(http, submit)
            except asyncio.CancelledError:
                self.health.set("stopped", "B站连接已停止")
                raise
            finally:
                await self._drop_game(http, end=True)

    async def _run(self, http: httpx.AsyncClient, submit: Submit) -> None:
        attempt = 0
        ever_live = False
        while True:
            live_at: list[float] = []
            if self._game_lost is not None:  # the game heartbeat was refused while we were away
                await self._drop_game(http, end=False)
            try:
                if self.game is None:
                    await self._start_game(http)
                assert self.game is not None
                await self._session(self.game, submit, live_at)
                reason = "connection closed"
            except StreamEnded:
                return
            except ApiError as e:
                if e.fatal:
                    self.health.set("failed", FATAL_CODES[e.code or 0], str(e))
                    log.warning("bilibili open platform: %s", e)
                    return
                reason = str(e)
                if e.code in RESTART_CODES:
                    await self._drop_game(http, end=False)
            except (InteractionEnded, AuthRejected) as e:
                reason = str(e)
                await self._drop_game(http, end=False)
            except Stalled:
                reason = f"nothing received for {self.receive_timeout_s:g} s"
                self._link_index += 1
            except (OSError, TimeoutError, websockets.WebSocketException) as e:
                reason = f"{type(e).__name__}: {e}"
                if not live_at:
                    self._link_index += 1  # this link did not take us: the next one
            if self._game_lost is not None:
                reason = self._game_lost
                await self._drop_game(http, end=False)
            if live_at:
                ever_live = True
                attempt = 0
                if time.monotonic() - live_at[0] >= self.stable_s:
                    self.backoff.reset()
            attempt += 1
            self.stats["reconnects"] += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                self.health.set("failed", f"B站连接失败，已重试{self.max_attempts}次", reason, attempt=attempt)
                return
            message = (f"B站连接中断，正在重连（第{attempt}次）" if ever_live
                       else f"B站连接失败，正在重试（第{attempt}次）")
            self.health.set("reconnecting", message, reason, attempt=attempt)
            log.info("bilibili open %s: %s; reconnecting (attempt %d)", self.name, reason, attempt)
            await asyncio.sleep(self.backoff.next_delay())

    async def _session(self, game: Game, submit: Submit, live_at: list[float]) -> None:
        if not game.links:
            raise ApiError("app/start", None, "no wss_link")
        url = game.links[self._link_index % len(game.links)]
        async with websockets.connect(url, open_timeout=self.connect_timeout_s, ping_interval=None,
                                      max_size=self.limits.max_message_bytes, proxy=self.proxy,
                                      close_timeout=1.0) as ws:
            self.stats["connections"] += 1
            self._ws = ws
            try:
                await ws.send(encode_auth(game.auth_body))
                async with asyncio.timeout(self.auth_timeout_s):
                    reply = await self._until_auth(ws, submit)
                if not reply.ok:
                    raise AuthRejected(f"auth reply code {reply.code}")
                live_at.append(time.monotonic())
                if self._ended:
                    self.health.set("ended", "B站直播已结束", url, attempt=0)
                else:
                    self.health.set("live", "B站已连接", url, attempt=0)
                beat = asyncio.create_task(self._heartbeat(ws), name=f"{self.name}-heartbeat")
                try:
                    while True:
                        try:
                            message = await asyncio.wait_for(ws.recv(), self.receive_timeout_s)
                        except TimeoutError:
                            raise Stalled from None
                        self._handle(message, submit)
                        if beat.done():
                            beat.result()
                finally:
                    # Not suppress(CancelledError): that would swallow our own cancellation too.
                    await cancel_and_wait(beat)
            finally:
                self._ws = None

    async def _until_auth(self, ws: Any, submit: Submit) -> AuthReply:
        while True:
            for item in self._handle(await ws.recv(), submit):
                if isinstance(item, AuthReply):
                    return item

    async def _heartbeat(self, ws: Any) -> None:
        while True:
            await ws.send(encode_heartbeat())
            await asyncio.sleep(self.heartbeat_s)

    def _handle(self, message: str | bytes, submit: Submit) -> list[Item]:
        if isinstance(message, str):
            items: list[Item] = [DecodeError("text-frame", "the server sends binary frames only")]
        else:
            items = self.codec.feed(message)
        interaction_end = False
        for item in items:
            if self.on_item is not None:
                self.on_item(item)
            if isinstance(item, DecodeError):
                self.health.errors += 1
                log.debug("bilibili open %s: %s %s", self.name, item.reason, item.detail)
            elif isinstance(item, HeartbeatReply):
                self.popularity = item.popularity
            elif isinstance(item, StreamStatus):
                submit(StreamEvent(type="stream", state="start" if item.live else "end"))
                self._stream_status(item)
            elif isinstance(item, Notice):
                interaction_end = interaction_end or item.cmd == INTERACTION_END
            elif isinstance(item, AuthReply):
                pass
            else:
                self._deliver(item, submit)
        if interaction_end:  # after what came with it in the same bundle
            self.stats["interaction_ends"] += 1
            raise InteractionEnded("the server ended the game (LIVE_OPEN_PLATFORM_INTERACTION_END)")
        return items

    def _deliver(self, event: Event, submit: Submit) -> None:
        if not self.seen.first_time(getattr(event, "msg_id", None)):
            self.stats["duplicates"] += 1
            return
        if submit(event):
            self.health.events += 1
        else:
            self.stats["dropped"] += 1

    def _stream_status(self, status: StreamStatus) -> None:
        if status.live:
            self._ended = False
            if self.health.state == "ended":
                self.health.set("live", "B站已连接", "the stream started")
            return
        self._ended = True
        self.health.set("ended", "B站直播已结束", status.cmd)
        if self.stop_on_end:
            raise StreamEnded

    # -- the game (HTTP) ------------------------------------------------------------------------------

    async def _start_game(self, http: httpx.AsyncClient) -> None:
        self.stats["starts"] += 1
        data = await self._post(http, "/v2/app/start", {"code": self.code, "app_id": self.credentials.app_id})
        game_id = _str(_dict(data.get("game_info")).get("game_id"))
        ws_info = _dict(data.get("websocket_info"))
        auth_body = ws_info.get("auth_body")
        links = tuple(str(x) for x in ws_info.get("wss_link") or [] if isinstance(x, str) and x)
        if not isinstance(auth_body, str) or not auth_body or not links:
            raise ApiError("app/start", None, f"no auth_body or wss_link in {data!r:.200}")
        self.game = Game(game_id, auth_body, links, _dict(data.get("anchor_info")))
        self._link_index = 0
        self._game_lost = None
        self._game_beat = asyncio.create_task(self._game_heartbeat(http, self.game), name=f"{self.name}-game")

    async def _drop_game(self, http: httpx.AsyncClient, *, end: bool) -> None:
        """Forget the game (its heartbeat too); ``end`` tells the server (app/end), best effort."""
        game, beat = self.game, self._game_beat
        self.game, self._game_beat = None, None
        if beat is not None:
            beat.cancel()
            # Wait without suppress(CancelledError), which would swallow a cancellation of our own; this
            # runs while stopping too, and app/end must still go out then.
            await asyncio.wait([beat], timeout=3.0)
        if game is None or not end:
            return
        try:
            async with asyncio.timeout(self.http_timeout_s):
                await self._post(http, "/v2/app/end", {"game_id": game.game_id, "app_id": self.credentials.app_id})
            self.stats["ends"] += 1
        except (ApiError, TimeoutError) as e:
            log.info("bilibili open %s: app/end failed: %s", self.name, e)

    async def _game_heartbeat(self, http: httpx.AsyncClient, game: Game) -> None:
        """The project heartbeat. A refused one (the game is gone) closes the link so a new game starts;
        one that did not get through is retried at the next beat."""
        while True:
            await asyncio.sleep(self.game_heartbeat_s)
            try:
                await self._post(http, "/v2/app/heartbeat", {"game_id": game.game_id})
                self.stats["game_heartbeats"] += 1
            except ApiError as e:
                self.stats["game_heartbeat_failures"] += 1
                log.info("bilibili open %s: %s", self.name, e)
                if e.code is not None:
                    self._game_lost = f"the project heartbeat was refused: {e}"
                    ws = self._ws
                    if ws is not None:
                        ws.transport.abort()
                    return

    async def _post(self, http: httpx.AsyncClient, path: str, data: dict[str, Any]) -> dict[str, Any]:
        what = path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]
        body = encode_body(data)
        headers = sign_headers(body, self.credentials.access_key, self.credentials.access_secret)
        try:
            r = await http.post(self.api_base + path, content=body, headers=headers)
            answer = r.json()
        except httpx.HTTPError as e:
            raise ApiError(what, None, f"{type(e).__name__}: {e}") from None
        except ValueError:
            raise ApiError(what, None, f"HTTP {r.status_code}, not JSON") from None
        if not isinstance(answer, dict):
            raise ApiError(what, None, "not a JSON object")
        code = answer.get("code")
        if code != 0:
            code_i = _int(code, -1) if code is not None else -1
            raise ApiError(what, code_i, _str(answer.get("message") or answer.get("msg")))
        return _dict(answer.get("data"))


__all__ = ["API_BASE", "ENV_ACCESS_KEY", "ENV_ACCESS_SECRET", "ENV_APP_ID", "FATAL_CODES", "HANDLERS", "ApiError",
           "Game", "OpenPlatformClient", "OpenPlatformCodec", "OpenPlatformCredentials", "encode_auth", "encode_body",
           "sign_headers", "signature", "string_to_sign", "translate"]
