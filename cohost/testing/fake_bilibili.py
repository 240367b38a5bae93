"""A fake Bilibili live room on 127.0.0.1 that speaks the real protocol, for tests and offline demos.

    with FakeBilibili(room_id=10001, short_id=1) as fake:      # or: async with FakeBilibili() as fake:
        client = BilibiliClient(1, api_base=fake.api_base, nav_base=fake.api_base, ws_scheme="ws",
                                credentials=fake.credentials)
        fake.push_danmaku("包邮吗", uid=5, uname="小王", id_str="a1")
        fake.drop()                                            # the link breaks; the client reconnects
        assert fake.wait_for(lambda f: f.sent_texts)

HTTP (one port, Starlette on uvicorn): ``GET /room/v1/Room/get_info`` and ``room_init`` (short → real
room id), ``GET /xlive/web-room/v1/index/getDanmuInfo`` (token + host_list; -352 without Wbi's w_rid
when ``require_wbi``), ``GET /x/web-interface/nav`` (the account's uid for its SESSDATA) and
``POST /msg/send`` (checks the form fields, the cookies and csrf = csrf_token = bili_jct, the length and
the pace: 10031 when posts come faster than ``min_send_interval_s``; records every post).

Danmaku: one or more websocket servers (``hosts``; ``dead_hosts`` unreachable entries are listed first,
to exercise host rotation) on ``/sub``: the first packet must be a valid auth (op 7, the real room id,
the current token) within ``auth_timeout_s``, answered with op 8 ``{"code":0}`` or ``{"code":-101}``;
heartbeats (op 2) are answered with op 3 and the popularity; pushed commands go out in ver 0 packets or
zlib (2) and brotli (3) bundles.

Delivery model: pushed messages form one log; each connection sends from where the last one stopped,
so nothing is lost while the client reconnects, and ``replay_overlap`` re-sends that many of the last
messages on every new connection (the duplicates a client must drop by message id). Real Bilibili keeps
nothing for an absent client; the fake does, so a test can count deliveries exactly.

Faults: ``drop()`` aborts every live connection (TCP reset, no close frame), ``drop_after(i, ...)`` does
so right after log entry i goes out, ``stall()`` silences the live connections (no data, no heartbeat
replies) while new ones work, ``expire_token()`` makes the token stale (auth then answers -101 until the
client bootstraps again), ``hold_auth`` never answers auth, ``send_mode`` "fail" (HTTP 500) or "hang".

The servers run on their own event loop in a background thread, so sync and async tests alike can use
it and it keeps serving while a test's loop is busy. Control methods are thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import brotli
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection

from ..sources.bilibili import builders
from ..sources.bilibili.credentials import BilibiliCredentials

# The fake frames packets itself rather than with the codec under test, so a bug cannot cancel out.
_HEADER = struct.Struct(">IHHII")
OP_HEARTBEAT, OP_HEARTBEAT_REPLY, OP_MESSAGE, OP_AUTH, OP_AUTH_REPLY = 2, 3, 5, 7, 8
TOO_LONG_CODE = 1003212  # the fake's answer for a danmaku over max_msg_chars


def packet(op: int, body: bytes, ver: int = 0, seq: int = 0) -> bytes:
    return _HEADER.pack(16 + len(body), 16, ver, op, seq) + body


def command_packet(cmd: dict[str, Any]) -> bytes:
    return packet(OP_MESSAGE, json.dumps(cmd, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def frame(cmds: list[dict[str, Any]], ver: int = 0) -> bytes:
    """One websocket message carrying cmds: ver 0 packets back to back, or one zlib / brotli bundle."""
    inner = b"".join(command_packet(c) for c in cmds)
    if ver == 0:
        return inner
    if ver == 2:
        return packet(OP_MESSAGE, zlib.compress(inner), ver=2)
    if ver == 3:
        return packet(OP_MESSAGE, brotli.compress(inner), ver=3)
    raise ValueError("ver must be 0, 2 or 3")


@dataclass
class Post:
    """One POST /msg/send as the fake received it, and its answer's code."""

    form: dict[str, str]
    cookies: dict[str, str]
    code: int
    at: float

    @property
    def text(self) -> str:
        return self.form.get("msg", "")


@dataclass
class _Settings:
    replay_overlap: int = 0          # messages re-sent on each new connection
    send_interval_s: float = 0.0     # between two pushed messages on a connection
    min_send_interval_s: float = 1.0  # /msg/send pace; faster posts get 10031
    max_msg_chars: int = 20
    require_wbi: bool = False
    hold_auth: bool = False          # read the auth packet, never answer
    auth_timeout_s: float = 5.0
    send_mode: str = "normal"        # normal | fail (HTTP 500) | hang
    echo_sent: bool = False          # an accepted post comes back into the room as a DANMU_MSG
    popularity: int = 1
    live_status: int = 1


@dataclass(eq=False)  # kept in a set by identity
class _Conn:
    ws: ServerConnection
    stalled: bool = False
    authed: bool = False


@dataclass
class _State:
    log: list[bytes] = field(default_factory=list)
    sent_upto: int = 0            # log entries sent at least once
    drop_after: set[int] = field(default_factory=set)
    posts: list[Post] = field(default_factory=list)
    auths: list[dict[str, Any]] = field(default_factory=list)
    bootstraps: list[dict[str, str]] = field(default_factory=list)
    connections: int = 0
    heartbeats: int = 0
    drops: int = 0
    last_accepted_post: float | None = None


class FakeBilibili:
    def __init__(self, *, room_id: int = 10001, short_id: int = 1, owner_uid: int = 42, account_uid: int = 777,
                 sessdata: str = "fake-sessdata", bili_jct: str = "fake-bili-jct", buvid3: str = "fake-buvid3",
                 hosts: int = 1, dead_hosts: int = 0, **settings: Any):
        self.room_id, self.short_id, self.owner_uid, self.account_uid = room_id, short_id, owner_uid, account_uid
        self.credentials = BilibiliCredentials(sessdata, bili_jct, buvid3)
        self._hosts, self._dead_hosts = hosts, dead_hosts
        self.settings = _Settings()
        self.configure(**settings)
        self._state = _State()
        self._lock = threading.Condition()
        self._token_serial = 1
        self.token = "fake-token-1"
        self._conns: set[_Conn] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0
        self.ws_ports: list[int] = []
        self.dead_ports: list[int] = []

    # -- control, from any thread ---------------------------------------------------------------------

    def configure(self, **settings: Any) -> FakeBilibili:
        for key, value in settings.items():
            if not hasattr(self.settings, key):
                raise TypeError(f"unknown setting {key!r}")
            setattr(self.settings, key, value)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    api_base = base_url  # the same server answers the live API and the nav API

    def push(self, *cmds: dict[str, Any], ver: int = 0) -> int:
        """Queue one websocket message with cmds (a bundle when ver is 2 or 3); returns its log index."""
        return self.push_raw(frame(list(cmds), ver))

    def push_raw(self, data: bytes) -> int:
        with self._lock:
            self._state.log.append(data)
            index = len(self._state.log) - 1
        self._poke()
        return index

    def push_danmaku(self, text: str, *, ver: int = 0, **kw: Any) -> int:
        return self.push(builders.danmu_msg(text, **kw), ver=ver)

    def end_stream(self) -> int:
        return self.push(builders.preparing(self.room_id))

    def drop_after(self, *indexes: int) -> None:
        """Abort the connection right after log entry i is sent, for each i (once each)."""
        with self._lock:
            self._state.drop_after.update(indexes)

    def drop(self) -> int:
        """Abort every live connection now; returns how many."""
        conns = list(self._conns)
        for c in conns:
            self._call(c.ws.transport.abort)
        with self._lock:
            self._state.drops += len(conns)
        return len(conns)

    def stall(self) -> int:
        """Live connections go silent (no data, no heartbeat replies); new connections work."""
        conns = [c for c in self._conns if c.authed]
        for c in conns:
            c.stalled = True
        return len(conns)

    def expire_token(self, *, drop: bool = True) -> None:
        """A new token is issued at the next getDanmuInfo; auth with the old one answers -101."""
        with self._lock:
            self._token_serial += 1
            self.token = f"fake-token-{self._token_serial}"
        if drop:
            self.drop()

    # -- what happened -----------------------------------------------------------------------------------

    @property
    def posts(self) -> list[Post]:
        with self._lock:
            return list(self._state.posts)

    @property
    def sent_texts(self) -> list[str]:
        """Danmaku the fake accepted (code 0), in order."""
        return [p.text for p in self.posts if p.code == 0]

    @property
    def auths(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._state.auths)

    @property
    def bootstraps(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._state.bootstraps)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._state.connections

    @property
    def heartbeats(self) -> int:
        with self._lock:
            return self._state.heartbeats

    @property
    def live_connections(self) -> int:
        return sum(1 for c in self._conns if c.authed)

    def wait_for(self, pred: Callable[[FakeBilibili], Any], within_s: float = 10.0) -> bool:
        """Block until pred(fake) is true; False when within_s passes first."""
        deadline = time.monotonic() + within_s
        while not pred(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def await_for(self, pred: Callable[[FakeBilibili], Any], within_s: float = 10.0) -> bool:
        deadline = time.monotonic() + within_s
        while not pred(self):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> FakeBilibili:
        self._thread = threading.Thread(target=self._thread_main, name="fake-bilibili", daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"fake Bilibili did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None or self._stop is None:
            return
        self._call(self._stop.set)
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            raise RuntimeError("fake Bilibili did not stop")
        self._thread = None

    def __enter__(self) -> FakeBilibili:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeBilibili:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(fn)

    def _poke(self) -> None:
        if self._wake is not None:
            self._call(self._wake.set)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported to start()
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop, self._wake = asyncio.Event(), asyncio.Event()
        http_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        http_sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        http_sock.bind(("127.0.0.1", 0))
        self.port = http_sock.getsockname()[1]
        for _ in range(self._dead_hosts):  # a port that was free a moment ago: connections are refused
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.dead_ports.append(s.getsockname()[1])
            s.close()
        servers = []
        for _ in range(self._hosts):
            server = await websockets.serve(self._handle_ws, "127.0.0.1", 0, ping_interval=None,
                                            compression=None, max_size=64 * 1024, close_timeout=1)
            servers.append(server)
            self.ws_ports.append(server.sockets[0].getsockname()[1])
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", ws="none", http="h11",
                                access_log=False, timeout_graceful_shutdown=1)
        http = uvicorn.Server(config)
        http_task = asyncio.create_task(http.serve(sockets=[http_sock]))
        while not http.started:
            if http_task.done():
                http_task.result()
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for c in list(self._conns):
                c.ws.transport.abort()
            for server in servers:
                server.close()
                await server.wait_closed()
            http.should_exit = True
            await http_task
            http_sock.close()

    # -- danmaku websocket ------------------------------------------------------------------------------

    async def _handle_ws(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path.split("?")[0] != "/sub":
            await ws.close(1008, "unknown path")
            return
        conn = _Conn(ws)
        self._conns.add(conn)
        with self._lock:
            self._state.connections += 1
        try:
            if not await self._auth(conn):
                return
            conn.authed = True
            with self._lock:  # pick up where the last connection stopped, less the overlap
                start = max(0, self._state.sent_upto - max(0, self.settings.replay_overlap))
            # The reader ends when the connection does; the writer when it drops it: either ends both.
            tasks = [asyncio.create_task(self._read(conn)), asyncio.create_task(self._write(conn, start))]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        except websockets.ConnectionClosed:
            pass
        finally:
            self._conns.discard(conn)

    async def _auth(self, conn: _Conn) -> bool:
        try:
            first = await asyncio.wait_for(conn.ws.recv(), self.settings.auth_timeout_s)
        except TimeoutError:
            await conn.ws.close(1008, "no auth packet in time")
            return False
        auth = _parse_auth(first)
        with self._lock:
            self._state.auths.append(auth)
            token = self.token
        if "error" in auth or auth.get("roomid") != self.room_id:
            await conn.ws.close(1008, "bad auth packet")
            return False
        if self.settings.hold_auth:
            await conn.ws.wait_closed()  # until the client gives up
        ok = auth.get("key") == token
        await conn.ws.send(packet(OP_AUTH_REPLY, json.dumps({"code": 0 if ok else -101}).encode(), ver=1, seq=1))
        if not ok:
            await conn.ws.close(1000, "token expired")
        return ok

    async def _read(self, conn: _Conn) -> None:
        async for message in conn.ws:
            if not isinstance(message, bytes) or len(message) < 16:
                continue
            _len, _hl, _ver, op, _seq = _HEADER.unpack_from(message)
            if op == OP_HEARTBEAT:
                with self._lock:
                    self._state.heartbeats += 1
                if not conn.stalled:
                    body = self.settings.popularity.to_bytes(4, "big")
                    await conn.ws.send(packet(OP_HEARTBEAT_REPLY, body, ver=1, seq=1))

    async def _write(self, conn: _Conn, pos: int) -> None:
        assert self._wake is not None
        while True:
            with self._lock:
                pending = None if conn.stalled or pos >= len(self._state.log) else self._state.log[pos]
            if pending is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.05)
                continue
            await conn.ws.send(pending)
            with self._lock:
                self._state.sent_upto = max(self._state.sent_upto, pos + 1)
                drop = pos in self._state.drop_after
                self._state.drop_after.discard(pos)
                if drop:
                    self._state.drops += 1
            pos += 1
            if drop:
                conn.ws.transport.abort()
                return
            if self.settings.send_interval_s:
                await asyncio.sleep(self.settings.send_interval_s)

    # -- HTTP -------------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(routes=[
            Route("/room/v1/Room/get_info", self._room_info, methods=["GET"]),
            Route("/room/v1/Room/room_init", self._room_info, methods=["GET"]),
            Route("/xlive/web-room/v1/index/getDanmuInfo", self._danmu_info, methods=["GET"]),
            Route("/x/web-interface/nav", self._nav, methods=["GET"]),
            Route("/msg/send", self._send, methods=["POST"]),
        ])

    async def _room_info(self, request: Request) -> Response:
        asked = request.query_params.get("room_id") or request.query_params.get("id") or ""
        if asked not in (str(self.room_id), str(self.short_id)):
            return JSONResponse({"code": 1, "msg": "未找到该房间", "message": "未找到该房间", "data": {}})
        return JSONResponse({"code": 0, "msg": "ok", "message": "ok", "data": {
            "room_id": self.room_id, "short_id": self.short_id, "uid": self.owner_uid,
            "live_status": self.settings.live_status, "title": "假直播间"}})

    async def _danmu_info(self, request: Request) -> Response:
        q = dict(request.query_params)
        with self._lock:
            self._state.bootstraps.append({**q, "cookies": json.dumps(dict(request.cookies))})
            token = self.token
        if self.settings.require_wbi and not (q.get("w_rid") and q.get("wts")):
            return JSONResponse({"code": -352, "message": "-352", "data": {"v_voucher": "voucher_fake"}})
        if q.get("id") != str(self.room_id):
            return JSONResponse({"code": -400, "message": "请求错误", "data": {}})
        hosts = [{"host": "127.0.0.1", "port": p, "wss_port": p, "ws_port": p}
                 for p in [*self.dead_ports, *self.ws_ports]]
        return JSONResponse({"code": 0, "message": "0", "ttl": 1, "data": {
            "group": "live", "business_id": 0, "refresh_row_factor": 0.125, "refresh_rate": 100,
            "max_delay": 5000, "token": token, "host_list": hosts}})

    async def _nav(self, request: Request) -> Response:
        if request.cookies.get("SESSDATA") != self.credentials.sessdata:
            return JSONResponse({"code": -101, "message": "账号未登录", "ttl": 1, "data": {"isLogin": False}})
        return JSONResponse({"code": 0, "message": "0", "ttl": 1, "data": {
            "isLogin": True, "mid": self.account_uid, "uname": "cohost机器人",
            "wbi_img": {"img_url": "https://i0.hdslb.com/bfs/wbi/fakeimg.png",
                        "sub_url": "https://i0.hdslb.com/bfs/wbi/fakesub.png"}}})

    async def _send(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", errors="replace")
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        cookies = dict(request.cookies)
        s = self.settings
        if s.send_mode == "hang":
            await asyncio.sleep(3600)
        if s.send_mode == "fail":
            self._record(form, cookies, 500)
            return Response("upstream error", status_code=500)
        code, message = self._check_post(form, cookies)
        self._record(form, cookies, code)
        if code != 0:
            return JSONResponse({"code": code, "data": {}, "message": message, "msg": message})
        if s.echo_sent:  # Bilibili shows the account's own danmaku in the room too
            self.push_danmaku(form["msg"], uid=self.account_uid, uname="cohost机器人",
                              id_str=f"echo-{len(self._state.posts)}")
        return JSONResponse({"code": 0, "data": {"mode_info": {"mode": 0, "show_player_type": 0, "extra": "{}"},
                                                 "dm_v2": ""}, "message": "", "msg": ""})

    def _check_post(self, form: dict[str, str], cookies: dict[str, str]) -> tuple[int, str]:
        c = self.credentials
        if cookies.get("SESSDATA") != c.sessdata:
            return -101, "账号未登录"
        if not (form.get("csrf") == form.get("csrf_token") == cookies.get("bili_jct") == c.bili_jct):
            return -111, "csrf 校验失败"
        missing = [k for k in ("msg", "roomid", "rnd", "color", "fontsize", "mode") if k not in form]
        if missing:
            return -400, f"请求错误：缺少{','.join(missing)}"
        if form["roomid"] not in (str(self.room_id), str(self.short_id)):
            return -400, "房间号错误"
        if not form["rnd"].isdigit() or not form["color"].isdigit() or not form["fontsize"].isdigit():
            return -400, "请求错误"
        text = form["msg"]
        if not text.strip():
            return -400, "弹幕内容不能为空"
        if len(text) > self.settings.max_msg_chars:
            return TOO_LONG_CODE, "超出限制长度"
        now = time.monotonic()
        with self._lock:
            last = self._state.last_accepted_post
            if last is not None and now - last < self.settings.min_send_interval_s:
                return 10031, "您发送弹幕的频率过快"
            self._state.last_accepted_post = now
        return 0, ""

    def _record(self, form: dict[str, str], cookies: dict[str, str], code: int) -> None:
        with self._lock:
            self._state.posts.append(Post(form, cookies, code, time.time()))


def _parse_auth(message: Any) -> dict[str, Any]:
    """The auth packet's JSON, or {"error": why}."""
    if not isinstance(message, bytes) or len(message) < 16:
        return {"error": "not a binary packet"}
    pack_len, header_len, ver, op, _seq = _HEADER.unpack_from(message)
    if op != OP_AUTH or header_len != 16 or pack_len != len(message):
        return {"error": f"op {op}, header {header_len}, length {pack_len}/{len(message)}"}
    try:
        body = json.loads(message[16:])
    except ValueError:
        return {"error": "auth body is not JSON"}
    if not isinstance(body, dict):
        return {"error": "auth body is not an object"}
    return {**body, "ver": ver}


__all__ = ["FakeBilibili", "Post", "command_packet", "frame", "packet"]
