"""The Bilibili live room as a Source: a thin asyncio loop around BilibiliCodec.

    client = BilibiliClient(21452505)                   # credentials from COHOST_BILIBILI_* (optional)
    await hub.run_source("room", None, client, BilibiliSink(21452505))

One run: bootstrap over HTTP (the account's uid from ``/x/web-interface/nav`` when logged in; the real
room id from ``room/v1/Room/get_info``; a token and the danmaku hosts from ``getDanmuInfo``), connect
``wss://host:port/sub``, send the auth packet at once (the server wants it within 5 s), heartbeat every
30 s, and read with a receive timeout (~70 s: a heartbeat reply is due every 30 s, so silence that long
means a dead link). Anything going wrong — refused or dropped connection, silence, a bad bootstrap —
reconnects after a capped exponential backoff with full jitter, on the next host of the list; an auth
reply of -101 (stale token) bootstraps again first. Bilibili has no resume: what the room says while we
are away is gone, and what is sent twice (both a SEND_GIFT and its SEND_GIFT_V2, a super chat and its
_JPN twin, a relay's repeat) is dropped by message id.

``health`` is what the overlay and /healthz show: connecting, live, reconnecting (with the attempt
count), ended (the stream ended: PREPARING), failed (the room does not exist, Wbi signing is required
and no signer was given, or ``max_attempts`` ran out) and stopped (cancelled).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import websockets

from ...aio import cancel_and_wait
from ...events import ChatEvent, Event, StreamEvent
from ..base import Backoff, SeenIds, SourceHealth, Submit
from .codec import BilibiliCodec, Limits, encode_auth, encode_heartbeat
from .credentials import BilibiliCredentials
from .items import AuthReply, DecodeError, HeartbeatReply, Item, Notice, StreamStatus

log = logging.getLogger(__name__)

API_BASE = "https://api.live.bilibili.com"
NAV_BASE = "https://api.bilibili.com"
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
ORIGIN = "https://live.bilibili.com"

# A signer adds Wbi's ``wts`` and ``w_rid`` to getDanmuInfo's query (mandatory on the real server since
# 2025-05); it may be sync or async. cohost ships none: the keys rotate and come from the nav API.
WbiSigner = Callable[[dict[str, str]], dict[str, str] | Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Host:
    host: str
    wss_port: int = 443
    ws_port: int = 2244

    def url(self, scheme: str) -> str:
        return f"{scheme}://{self.host}:{self.wss_port if scheme == 'wss' else self.ws_port}/sub"


FALLBACK_HOST = Host("broadcastlv.chat.bilibili.com", 443, 2244)


@dataclass(frozen=True)
class Bootstrap:
    """What a connection needs, from the HTTP API."""

    room_id: int          # the real room id (a short id such as 6 maps to a long one)
    short_id: int
    owner_uid: int
    live: bool
    token: str
    hosts: tuple[Host, ...]
    uid: int              # the account's uid, 0 for a guest


class BootstrapFailed(Exception):
    """The HTTP API did not give what a connection needs. ``fatal``: retrying will not help."""

    def __init__(self, message: str, detail: str, *, fatal: bool = False):
        super().__init__(detail)
        self.message, self.detail, self.fatal = message, detail, fatal


class AuthRejected(Exception):
    def __init__(self, code: int):
        super().__init__(f"auth reply code {code}")
        self.code = code


class Stalled(Exception):
    pass


class StreamEnded(Exception):
    pass


class BilibiliClient:
    """A Bilibili live room's events, delivered once each, reconnecting by itself.

    ``room_id`` may be the short id. Base URLs and the websocket scheme are parameters so tests point it
    at cohost.testing.fake_bilibili. ``products`` maps Bilibili goods ids to catalog product ids.
    ``on_item`` sees every decoded item (notices, heartbeats, errors included), for recording and tools.
    ``proxy``: True uses the environment's proxy settings (HTTP and websocket), None connects directly,
    a URL goes through that proxy."""

    def __init__(self, room_id: int, *, credentials: BilibiliCredentials | None = None, uid: int | None = None,
                 api_base: str = API_BASE, nav_base: str = NAV_BASE, ws_scheme: str = "wss",
                 wbi_signer: WbiSigner | None = None, heartbeat_s: float = 30.0, receive_timeout_s: float = 70.0,
                 auth_timeout_s: float = 5.0, connect_timeout_s: float = 10.0, http_timeout_s: float = 10.0,
                 backoff: Backoff | None = None, stable_s: float = 10.0, max_attempts: int | None = None,
                 stop_on_end: bool = False, products: dict[str, str] | None = None,
                 fallback_hosts: tuple[Host, ...] = (FALLBACK_HOST,), user_agent: str = USER_AGENT,
                 limits: Limits | None = None, seen_ids: int = 10_000, proxy: str | bool | None = True,
                 on_item: Callable[[Item], None] | None = None, name: str | None = None):
        if ws_scheme not in ("ws", "wss"):
            raise ValueError("ws_scheme must be 'ws' or 'wss'")
        self.requested_room = room_id
        self.name = name or f"bilibili:{room_id}"
        self.credentials = credentials if credentials is not None else BilibiliCredentials.from_env()
        self.uid = uid
        self.api_base, self.nav_base = api_base.rstrip("/"), nav_base.rstrip("/")
        self.ws_scheme = ws_scheme
        self.wbi_signer = wbi_signer
        self.heartbeat_s, self.receive_timeout_s = heartbeat_s, receive_timeout_s
        self.auth_timeout_s, self.connect_timeout_s, self.http_timeout_s = auth_timeout_s, connect_timeout_s, \
            http_timeout_s
        self.backoff = backoff or Backoff()
        self.stable_s = stable_s
        self.max_attempts = max_attempts
        self.stop_on_end = stop_on_end
        self.fallback_hosts = fallback_hosts
        self.user_agent = user_agent
        self.proxy = proxy
        self.on_item = on_item
        self.limits = limits or Limits()
        self.codec = BilibiliCodec(products=products, limits=self.limits)
        self.seen = SeenIds(seen_ids)
        self.health = SourceHealth(self.name, message="正在连接B站…")
        self.bootstrap: Bootstrap | None = None
        self.popularity = 0
        self.stats = {"connections": 0, "bootstraps": 0, "auth_rejected": 0, "duplicates": 0, "dropped": 0,
                      "reconnects": 0, "own": 0}
        self._room: tuple[int, int, int, bool] | None = None  # real id, short id, owner, live: fetched once
        self._host_index = 0
        self._ended = False   # PREPARING seen and no LIVE since

    # -- the loop -------------------------------------------------------------------------------------

    async def run(self, submit: Submit) -> None:
        headers = {"User-Agent": self.user_agent, "Referer": ORIGIN + "/", "Origin": ORIGIN}
        async with httpx.AsyncClient(headers=headers, cookies=self.credentials.cookies(), timeout=self.http_timeout_s,
                                     follow_redirects=True, **http_proxy(self.proxy)) as http:
            try:
                await self._run(http, submit)
            except asyncio.CancelledError:
                self.health.set("stopped", "B站连接已停止")
                raise

    async def _run(self, http: httpx.AsyncClient, submit: Submit) -> None:
        attempt = 0
        ever_live = False
        while True:
            live_at: list[float] = []
            try:
                if self.bootstrap is None:
                    self.bootstrap = await self._bootstrap(http)
                await self._session(self.bootstrap, submit, live_at)
                reason = "connection closed"
            except StreamEnded:
                return
            except BootstrapFailed as e:
                if e.fatal:
                    self.health.set("failed", e.message, e.detail)
                    log.warning("bilibili %s: %s", self.requested_room, e.detail)
                    return
                reason = e.detail
            except AuthRejected as e:
                self.stats["auth_rejected"] += 1
                self.bootstrap = None  # -101: the token is stale; anything else: a fresh one will not hurt
                reason = str(e)
            except Stalled:
                reason = f"nothing received for {self.receive_timeout_s:g} s"
                self._host_index += 1
            except (OSError, TimeoutError, websockets.WebSocketException) as e:
                reason = f"{type(e).__name__}: {e}"
                if not live_at:
                    self._host_index += 1  # this host did not take us: try the next one
            if live_at:
                ever_live = True
                attempt = 0
                if time.monotonic() - live_at[0] >= self.stable_s:
                    self.backoff.reset()  # a connection that held: reconnect at once, not at the last delay
            attempt += 1
            self.stats["reconnects"] += 1
            if self.max_attempts is not None and attempt > self.max_attempts:
                self.health.set("failed", f"B站连接失败，已重试{self.max_attempts}次", reason, attempt=attempt)
                return
            message = (f"B站连接中断，正在重连（第{attempt}次）" if ever_live
                       else f"B站连接失败，正在重试（第{attempt}次）")
            self.health.set("reconnecting", message, reason, attempt=attempt)
            log.info("bilibili %s: %s; reconnecting (attempt %d)", self.requested_room, reason, attempt)
            await asyncio.sleep(self.backoff.next_delay())

    async def _session(self, boot: Bootstrap, submit: Submit, live_at: list[float]) -> None:
        hosts = boot.hosts or self.fallback_hosts
        host = hosts[self._host_index % len(hosts)]
        url = host.url(self.ws_scheme)
        async with websockets.connect(url, open_timeout=self.connect_timeout_s, ping_interval=None,
                                      max_size=self.limits.max_message_bytes, proxy=self.proxy,
                                      additional_headers={"Origin": ORIGIN}, user_agent_header=self.user_agent,
                                      close_timeout=1.0) as ws:
            self.stats["connections"] += 1
            await ws.send(encode_auth(boot.room_id, boot.token, uid=boot.uid, buvid=self.credentials.buvid3))
            async with asyncio.timeout(self.auth_timeout_s):
                reply = await self._until_auth(ws, submit)
            if not reply.ok:
                raise AuthRejected(reply.code)
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
                        beat.result()  # the heartbeat could not be sent: the connection is gone
            finally:
                # Not suppress(CancelledError): that would swallow our own cancellation too.
                await cancel_and_wait(beat)

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
        for item in items:
            if self.on_item is not None:
                self.on_item(item)
            if isinstance(item, DecodeError):
                self.health.errors += 1
                log.debug("bilibili %s: %s %s", self.requested_room, item.reason, item.detail)
            elif isinstance(item, HeartbeatReply):
                self.popularity = item.popularity
            elif isinstance(item, StreamStatus):
                submit(StreamEvent(type="stream", state="start" if item.live else "end"))
                self._stream_status(item)
            elif isinstance(item, AuthReply | Notice):
                pass
            else:
                self._deliver(item, submit)
        return items

    def _deliver(self, event: Event, submit: Submit) -> None:
        own = self.bootstrap.uid if self.bootstrap is not None else 0
        if own and isinstance(event, ChatEvent) and getattr(event, "uid", 0) == own:
            self.stats["own"] += 1  # our own reply, shown back in the room: not a viewer's question
            return
        if not self.seen.first_time(getattr(event, "msg_id", None)):
            self.stats["duplicates"] += 1
            return
        if submit(event):
            self.health.events += 1
        else:
            self.stats["dropped"] += 1  # the room's inbox is full; it counts the drop as well

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

    # -- bootstrap ------------------------------------------------------------------------------------

    async def _bootstrap(self, http: httpx.AsyncClient) -> Bootstrap:
        self.stats["bootstraps"] += 1
        uid = self.uid if self.uid is not None else await self._account_uid(http)
        if self._room is None:
            data = await self._get(http, f"{self.api_base}/room/v1/Room/get_info",
                                   {"room_id": str(self.requested_room)}, what="room info", room_lookup=True)
            room_id = _as_int(data.get("room_id"))
            if not room_id:
                raise BootstrapFailed("B站直播间信息有误", f"get_info gave no room_id: {data!r:.200}")
            self._room = (room_id, _as_int(data.get("short_id")), _as_int(data.get("uid")),
                          _as_int(data.get("live_status")) == 1)
        room_id, short_id, owner, live = self._room
        self.codec.room_id = room_id
        params = {"id": str(room_id), "type": "0"}
        if self.wbi_signer is not None:
            signed = self.wbi_signer(dict(params))
            params = await signed if inspect.isawaitable(signed) else signed
        data = await self._get(http, f"{self.api_base}/xlive/web-room/v1/index/getDanmuInfo", params,
                               what="danmaku token", wbi=True)
        token = data.get("token")
        if not isinstance(token, str):
            raise BootstrapFailed("B站弹幕服务器信息有误", f"getDanmuInfo gave no token: {data!r:.200}")
        hosts = tuple(Host(str(h["host"]), _as_int(h.get("wss_port"), 443), _as_int(h.get("ws_port"), 2244))
                      for h in data.get("host_list") or [] if isinstance(h, dict) and h.get("host"))
        return Bootstrap(room_id, short_id, owner, live, token, hosts, uid)

    async def _account_uid(self, http: httpx.AsyncClient) -> int:
        """The logged-in account's uid (the auth packet carries it: without it names arrive masked)."""
        if not self.credentials.logged_in:
            return 0
        try:
            r = await http.get(f"{self.nav_base}/x/web-interface/nav")
            body = r.json()
        except (httpx.HTTPError, ValueError) as e:
            log.info("bilibili nav failed (%s); connecting as a guest", e)
            return 0
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(data, dict) and data.get("isLogin"):
            return _as_int(data.get("mid"))
        log.warning("bilibili: the SESSDATA cookie is not logged in (expired?); connecting as a guest")
        self.health.detail = "SESSDATA not logged in"
        return 0

    async def _get(self, http: httpx.AsyncClient, url: str, params: dict[str, str], *, what: str,
                   room_lookup: bool = False, wbi: bool = False) -> dict[str, Any]:
        try:
            r = await http.get(url, params=params)
            body = r.json()
        except httpx.HTTPError as e:
            raise BootstrapFailed("B站接口请求失败", f"{what}: {type(e).__name__}: {e}") from None
        except ValueError:
            raise BootstrapFailed("B站接口请求失败", f"{what}: HTTP {r.status_code}, not JSON") from None
        if not isinstance(body, dict):
            raise BootstrapFailed("B站接口请求失败", f"{what}: not a JSON object")
        code = body.get("code")
        msg = str(body.get("message") or body.get("msg") or "")
        if code == 0 and isinstance(body.get("data"), dict):
            return body["data"]
        if code == -352 and wbi and self.wbi_signer is None:
            raise BootstrapFailed("B站要求Wbi签名，请配置签名器", f"{what}: code -352 ({msg}): the server wants a "
                                  "Wbi-signed request; pass wbi_signer=", fatal=True)
        if code == -352:  # risk control: a missing buvid3 cookie, a stale signature, too many requests
            raise BootstrapFailed("B站风控拦截（-352），稍后重试", f"{what}: code -352 ({msg})")
        if room_lookup and code in (1, 60004, 19002000):
            raise BootstrapFailed("B站直播间不存在", f"{what}: code {code} ({msg})", fatal=True)
        raise BootstrapFailed("B站接口请求失败", f"{what}: code {code} ({msg})")


def http_proxy(proxy: str | bool | None) -> dict[str, Any]:
    """httpx arguments for a proxy setting: True the environment's, None (or False) none, or a URL."""
    if proxy is True:
        return {"trust_env": True}
    if not proxy:
        return {"trust_env": False}
    return {"proxy": proxy, "trust_env": False}


def _as_int(value: Any, default: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default


__all__ = ["API_BASE", "FALLBACK_HOST", "NAV_BASE", "AuthRejected", "BilibiliClient", "Bootstrap",
           "BootstrapFailed", "Host", "WbiSigner", "http_proxy"]
