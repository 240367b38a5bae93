"""The Douyin webcast client: a thin asyncio loop around DouyinCodec.

    client = DouyinClient("123456789", signer=my_signer, product_ids={"3691984502923623681": "dress"})
    await hub.run_source("room", None, client, ConsoleRelaySink(port=8765))

1. bootstrap over HTTP: ``GET {live_base}/`` for the ``ttwid`` cookie, then ``GET {live_base}/{web_rid}`` and
   the page's ``roomId`` (the numeric room id differs from the web_rid in the room's URL);
2. connect to ``{host}/webcast/im/push/v2/?...`` with the documented query (room id, device id, the last
   ``cursor`` and ``internal_ext`` when resuming) and its ``signature``;
3. heartbeat (a PushFrame of payloadType "hb") every ``heartbeat_s``, or as often as the server asks, but
   never more often; ack what the server asks to be acked; a receive timeout means the link is dead;
4. on any failure, reconnect with capped exponential backoff and jitter, on the next host, resuming from the
   last cursor: the server re-sends from there and the codec drops what was already delivered (by msgId);
5. a WebcastControlMessage with status 3 ends the stream: ``run`` returns.

The signature is computed by obfuscated JavaScript in the browser (webmssdk), which cohost does not ship:
pass ``signer``, a callable (sync or async) from the signed parameters to the signature string.
``x_ms_stub(params)`` gives the md5 those scripts sign. There is no public route for posting in a Douyin
room's chat as an account: replies go to the overlay and, with ConsoleRelaySink, to a console tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

import httpx
import websockets
from websockets.asyncio.client import ClientConnection, connect

from ...aio import cancel_and_wait
from ...errors import CohostError
from ...events import StreamEvent
from ..base import Backoff, SourceHealth, Submit
from .codec import MAX_FRAME_BYTES, DecodeError, DouyinCodec, Signal

log = logging.getLogger(__name__)

Signer = Callable[[Mapping[str, str]], str | Awaitable[str]]

DEFAULT_LIVE_BASE = "https://live.douyin.com"
DEFAULT_HOSTS = ("wss://webcast5-ws-web-lq.douyin.com", "wss://webcast5-ws-web-lf.douyin.com")
PUSH_PATH = "/webcast/im/push/v2/"
DEFAULT_USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/126.0.0.0 Safari/537.36")
VERSION_CODE = "180800"
SDK_VERSION = "1.0.14-beta.0"
# The parameters the signature covers, in the order the web client joins them (liveMan.py generateSignature).
SIGNATURE_KEYS = ("live_id", "aid", "version_code", "webcast_sdk_version", "room_id", "sub_room_id",
                  "sub_channel_id", "did_rule", "user_unique_id", "device_platform", "device_type", "ac",
                  "identity")
# The page escapes its JSON inside a script: roomId\":\"7388...\"; a plain "roomId":"7388..." matches too.
ROOM_ID_RE = re.compile(r'roomId\\*"\s*:\s*\\*"(\d+)')


def x_ms_stub(params: Mapping[str, str]) -> str:
    """The md5 the web client's signing script takes (X-MS-STUB): of ``k=v`` for SIGNATURE_KEYS, comma-joined."""
    joined = ",".join(f"{k}={params.get(k, '')}" for k in SIGNATURE_KEYS)
    return hashlib.md5(joined.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Bootstrap:
    """What connecting needs, from the live page: the numeric room id, the ttwid cookie, our device id."""

    room_id: str
    ttwid: str
    did: str


class BootstrapError(Exception):
    """The live page did not give a room id or a ttwid cookie (a wrong web_rid, risk control, an outage)."""


def push_params(boot: Bootstrap, *, cursor: str = "", internal_ext: str = "", now_ms: int | None = None
                ) -> dict[str, str]:
    """The push URL's query without the signature (which covers some of it), as the web client sends it.
    A first connection gets a cursor and internal_ext of the web client's form; a resume, the server's last."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not cursor:
        cursor = f"d-1_u-1_fh-{ms}_t-{ms}_r-1"
    if not internal_ext:
        internal_ext = (f"internal_src:dim|wss_push_room_id:{boot.room_id}|wss_push_did:{boot.did}"
                        f"|first_req_ms:{ms}|fetch_time:{ms}|seq:1|wss_info:0-{ms}-0-0")
    return {"app_name": "douyin_web", "version_code": VERSION_CODE, "webcast_sdk_version": SDK_VERSION,
            "update_version_code": SDK_VERSION, "compress": "gzip", "device_platform": "web",
            "cookie_enabled": "true", "browser_language": "zh-CN", "browser_platform": "Win32",
            "browser_name": "Mozilla", "browser_online": "true", "tz_name": "Asia/Shanghai",
            "cursor": cursor, "internal_ext": internal_ext, "host": "https://live.douyin.com", "aid": "6383",
            "live_id": "1", "did_rule": "3", "endpoint": "live_pc", "support_wrds": "1",
            "user_unique_id": boot.did, "im_path": "/webcast/im/fetch/", "identity": "audience",
            "need_persist_msg_count": "15", "insert_task_id": "", "live_reason": "", "room_id": boot.room_id,
            "heartbeatDuration": "0", "sub_room_id": "", "sub_channel_id": "", "device_type": "", "ac": ""}


def signature_params(params: Mapping[str, str]) -> dict[str, str]:
    """The part of the query the signature covers: what a signer is handed."""
    return {k: params.get(k, "") for k in SIGNATURE_KEYS}


def push_url(host: str, params: Mapping[str, str], signature: str) -> str:
    return f"{host.rstrip('/')}{PUSH_PATH}?{urlencode({**params, 'signature': signature}, quote_via=quote)}"


class DouyinClient:
    """A Douyin live room as a Source (cohost/sources/base.py). See the module docstring.

    ``web_rid``: the number in the room's URL (live.douyin.com/<web_rid>); ``room_id`` skips reading it from
    the page. ``signer`` is required. ``product_ids`` / ``links`` / ``shopping_types``: see DouyinCodec.
    ``live_base`` and ``hosts`` point elsewhere (a fake server in tests); ``proxy`` is passed to websockets
    (True: the environment's proxy settings; None: none) and decides whether httpx reads the environment."""

    def __init__(self, web_rid: str, *, signer: Signer | None, room_id: str | None = None,
                 product_ids: Mapping[str, str] | None = None, links: Mapping[int, str] | None = None,
                 shopping_types: Collection[int] | None = None, live_base: str = DEFAULT_LIVE_BASE,
                 hosts: Sequence[str] = DEFAULT_HOSTS, heartbeat_s: float = 10.0, recv_timeout_s: float = 45.0,
                 open_timeout_s: float = 10.0, http_timeout_s: float = 10.0, backoff: Backoff | None = None,
                 max_attempts: int | None = None, user_agent: str = DEFAULT_USER_AGENT, cookie: str = "",
                 proxy: str | Literal[True] | None = True, name: str | None = None):
        if signer is None:
            raise CohostError(
                "Douyin needs a signature for its push websocket, computed by the web client's JavaScript "
                "(webmssdk), which cohost does not include: pass DouyinClient(..., signer=f) with f(params) -> "
                "signature string (params: the query values in SIGNATURE_KEYS; x_ms_stub(params) is the md5 "
                "the script signs).")
        if not hosts:
            raise CohostError("DouyinClient needs at least one push host")
        self.web_rid = str(web_rid)
        self.name = name or f"douyin:{self.web_rid}"
        self.health = SourceHealth(self.name, message="正在连接抖音直播间…")
        self.signer = signer
        self.room_id = room_id
        self.codec = DouyinCodec(product_ids=product_ids, links=links, shopping_types=shopping_types)
        self.live_base = live_base.rstrip("/")
        self.hosts = list(hosts)
        self.heartbeat_s, self.recv_timeout_s = heartbeat_s, recv_timeout_s
        self.open_timeout_s, self.http_timeout_s = open_timeout_s, http_timeout_s
        self.backoff = backoff or Backoff()
        self.max_attempts = max_attempts
        self.user_agent, self.cookie, self.proxy = user_agent, cookie, proxy
        self.boot: Bootstrap | None = None
        self.stats: dict[str, Any] = {}          # the room's counts (online, total_user...), latest first
        self.connections = 0                     # connections opened
        self.attempt = 0                         # failures since the last connection that delivered
        self._host = 0
        self._did = str(random.randint(10**18, 10**19 - 1))  # our user_unique_id, kept across reconnects

    # -- Source --------------------------------------------------------------------------------------------

    async def run(self, submit: Submit) -> None:
        """Deliver the room's events until the stream ends (returns), max_attempts failures in a row
        (returns, health "failed") or cancellation."""
        try:
            while True:
                try:
                    if self.boot is None:
                        self.boot = await self.bootstrap()
                    if await self._session(submit):
                        return
                    reason = "the server closed the connection"
                except BootstrapError as e:
                    reason = f"bootstrap: {e}"
                except websockets.InvalidStatus as e:
                    # Refused at the handshake: the cookie or signature may be stale; bootstrap afresh.
                    self.boot = None
                    reason = f"handshake refused: HTTP {e.response.status_code}"
                except (OSError, TimeoutError, websockets.WebSocketException, httpx.HTTPError, _Dropped) as e:
                    reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                except CohostError as e:  # the signer returned no signature
                    reason = str(e)
                except Exception as e:  # the signer failed, or a bug: retried like a network failure, but logged
                    log.exception("douyin %s: unexpected failure", self.web_rid)
                    reason = f"{type(e).__name__}: {e}"
                self.attempt += 1
                self._host += 1  # the next attempt goes to the next host
                if self.max_attempts is not None and self.attempt >= self.max_attempts:
                    self.health.set("failed", f"抖音连接失败（已重试{self.attempt}次）", reason, attempt=self.attempt)
                    return
                what = "抖音连接中断，正在重连" if self.connections else "抖音连接失败，正在重试"
                self.health.set("reconnecting", f"{what}（第{self.attempt}次）", reason, attempt=self.attempt)
                await asyncio.sleep(self.backoff.next_delay())
        except asyncio.CancelledError:
            self.health.set("stopped", "抖音连接已停止")
            raise

    # -- steps ---------------------------------------------------------------------------------------------

    async def bootstrap(self) -> Bootstrap:
        """The ttwid cookie and the numeric room id, from the live site."""
        async with httpx.AsyncClient(timeout=self.http_timeout_s, follow_redirects=True,
                                     headers={"user-agent": self.user_agent}, trust_env=self.proxy is True,
                                     proxy=self.proxy if isinstance(self.proxy, str) else None) as http:
            home = await http.get(f"{self.live_base}/")
            ttwid = home.cookies.get("ttwid") or http.cookies.get("ttwid")
            if not ttwid:
                raise BootstrapError(f"no ttwid cookie from {self.live_base}/ (HTTP {home.status_code})")
            room_id = self.room_id
            if not room_id:
                nonce = f"{random.getrandbits(84):021x}"  # the page wants an __ac_nonce cookie, any value
                page = await http.get(f"{self.live_base}/{quote(self.web_rid)}",
                                      headers={"cookie": f"ttwid={ttwid}; __ac_nonce={nonce}"})
                found = ROOM_ID_RE.search(page.text)
                if not found:
                    raise BootstrapError(f"no room id on the page of {self.web_rid} (HTTP {page.status_code}); "
                                         "is the web_rid right?")
                room_id = found.group(1)
        return Bootstrap(room_id, ttwid, self._did)

    async def _sign(self, params: Mapping[str, str]) -> str:
        signature = self.signer(signature_params(params))
        if inspect.isawaitable(signature):
            signature = await signature
        if not isinstance(signature, str) or not signature:
            raise CohostError(f"the Douyin signer returned {type(signature).__name__}, not a signature string")
        return signature

    def _headers(self, boot: Bootstrap) -> dict[str, str]:
        cookie = f"ttwid={boot.ttwid}" + (f"; {self.cookie}" if self.cookie else "")
        headers = {"cookie": cookie, "user-agent": self.user_agent, "origin": "https://live.douyin.com"}
        if self.codec.cursor:  # the web client also says where it resumes in headers
            headers["im-cursor"] = self.codec.cursor
            headers["im-internal_ext"] = self.codec.internal_ext
        return headers

    async def _session(self, submit: Submit) -> bool:
        """One connection, until it fails (raises) or the server closes it (False) or the stream ends (True)."""
        assert self.boot is not None
        boot = self.boot
        host = self.hosts[self._host % len(self.hosts)]
        params = push_params(boot, cursor=self.codec.cursor, internal_ext=self.codec.internal_ext)
        url = push_url(host, params, await self._sign(params))
        async with connect(url, additional_headers=self._headers(boot), user_agent_header=None,
                           max_size=MAX_FRAME_BYTES, open_timeout=self.open_timeout_s, close_timeout=1.0,
                           proxy=self.proxy) as ws:
            self.connections += 1
            self.health.set("live", "抖音已连接", host)
            beat = asyncio.create_task(self._heartbeat(ws), name=f"douyin-heartbeat-{self.web_rid}")
            try:
                return await self._receive(ws, submit)
            finally:
                await cancel_and_wait(beat)

    async def _receive(self, ws: ClientConnection, submit: Submit) -> bool:
        responses_before, first = self.codec.counts["responses"], True
        while True:
            try:
                data = await asyncio.wait_for(ws.recv(), self.recv_timeout_s)
            except TimeoutError:
                raise _Dropped(f"nothing received for {self.recv_timeout_s:g} s") from None
            except websockets.ConnectionClosedOK:
                return False
            items = self.codec.feed(data)
            ended = False
            for item in items:
                if isinstance(item, DecodeError):
                    self.health.errors += 1
                elif isinstance(item, Signal):
                    if item.kind == "stream_end":
                        ended = True
                    elif item.kind == "server_close":
                        raise _Dropped("the server sent close")
                    elif item.kind == "stats":
                        self.stats.update({k: v for k, v in item.data.items() if k != "msg_id"})
                elif submit(item):
                    self.health.events += 1
            # Acks go out after the frame's events are delivered: the codec's cursor already counts them,
            # so a send failing here must not lose them.
            for frame in self.codec.data_to_send():
                await ws.send(frame)
            if ended:  # after delivering what came with it
                submit(StreamEvent(type="stream", state="end"))
                self.health.set("ended", "抖音直播已结束", attempt=0)
                return True
            if first and self.codec.counts["responses"] > responses_before:
                first = False
                self.backoff.reset()  # a connection that delivers is a good one
                self.attempt = 0
                self.health.set("live", "抖音已连接", self.health.detail, attempt=0)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):  # the receive loop hears of it too
            while True:
                # As often as asked, never more often than heartbeat_s (dycast: max(10 s, heartbeatDuration)).
                await asyncio.sleep(max(self.heartbeat_s, self.codec.heartbeat_ms / 1000))
                await ws.send(self.codec.encode_heartbeat())


class _Dropped(Exception):
    """The connection is dead though the socket may not know it yet (silence, a server "close")."""


__all__ = ["DEFAULT_HOSTS", "DEFAULT_LIVE_BASE", "PUSH_PATH", "SIGNATURE_KEYS", "Bootstrap", "BootstrapError",
           "DouyinClient", "Signer", "push_params", "push_url", "signature_params", "x_ms_stub"]
