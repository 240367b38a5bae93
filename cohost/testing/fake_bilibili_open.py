"""A fake Bilibili live open platform on 127.0.0.1: the signed HTTP API and the danmaku websocket.

    with FakeOpenPlatform(code="ABCD1234") as fake:
        client = OpenPlatformClient("ABCD1234", credentials=fake.credentials, api_base=fake.api_base)
        fake.push(dm("包邮吗", open_id="o1", msg_id="m1"))
        fake.drop()                          # the link breaks; the client reconnects with the same game
        fake.end_interaction()               # LIVE_OPEN_PLATFORM_INTERACTION_END: the client starts a new game

HTTP (Starlette on uvicorn): ``POST /v2/app/start``, ``/v2/app/heartbeat``, ``/v2/app/end``. Every request
is checked as the real server does: the access key id, ``x-bili-content-md5`` against the body, the
timestamp (within ``max_skew_s``), a fresh nonce, and ``Authorization`` = hex HMAC-SHA256(secret, the
sorted ``x-bili-*`` headers as ``name:value`` lines). The fake computes the signature itself (not with
the module under test), so a bug cannot cancel out. Refusals answer HTTP 200 with a non-zero code:
4002 a bad signature or md5, 4003 a stale timestamp, 4004 a reused nonce, 4001 an unknown app_id,
7007 a wrong 身份码, 7003 an unknown game_id. ``start_codes`` queues codes app/start answers first.

Websocket (``/sub`` on one or more ports; ``dead_links`` unreachable ones come first in wss_link): the
first packet must be op 7 whose body is the current game's ``auth_body``, answered op 8 ``{"code":0}``
(or ``{"code":-101}``); heartbeats (op 2) get op 3; pushed commands go out as zlib bundles (protover 2).
As in the web fake, pushed messages form one log and each connection continues where the last stopped;
``replay_overlap`` re-sends that many on every new connection (duplicates the client must drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection

from ..sources.bilibili.open_platform import OpenPlatformCredentials

_HEADER = struct.Struct(">IHHII")
OP_HEARTBEAT, OP_HEARTBEAT_REPLY, OP_MESSAGE, OP_AUTH, OP_AUTH_REPLY = 2, 3, 5, 7, 8


def packet(op: int, body: bytes, ver: int = 0, seq: int = 0) -> bytes:
    return _HEADER.pack(16 + len(body), 16, ver, op, seq) + body


def frame(cmds: list[dict[str, Any]], ver: int = 2) -> bytes:
    """One websocket message: the commands as ver 0 packets, in one zlib bundle unless ver is 0."""
    inner = b"".join(packet(OP_MESSAGE, json.dumps(c, ensure_ascii=False).encode("utf-8")) for c in cmds)
    return inner if ver == 0 else packet(OP_MESSAGE, zlib.compress(inner), ver=2)


# -- commands, shaped like the platform's ----------------------------------------------------------------

_serial = iter(range(1, 1 << 62))


def _msg_id() -> str:
    return f"fake-{next(_serial):08d}-{uuid.uuid4().hex[:8]}"


def _cmd(cmd: str, **data: Any) -> dict[str, Any]:
    return {"cmd": f"LIVE_OPEN_PLATFORM_{cmd}", "data": data}


def dm(text: str, *, open_id: str = "open-1", uname: str = "观众", msg_id: str | None = None, room_id: int = 10001,
       fans_medal_level: int = 0, fans_medal_name: str = "", guard_level: int = 0, dm_type: int = 0,
       timestamp: int | None = None, **more: Any) -> dict[str, Any]:
    return _cmd("DM", uname=uname, uid=0, open_id=open_id, uface="", timestamp=timestamp or int(time.time()),
                room_id=room_id, msg=text, msg_id=msg_id or _msg_id(), guard_level=guard_level,
                fans_medal_wearing_status=bool(fans_medal_level), fans_medal_name=fans_medal_name,
                fans_medal_level=fans_medal_level, emoji_img_url="", dm_type=dm_type, **more)


def send_gift(gift_name: str, *, gift_num: int = 1, price: int = 100, paid: bool = True, open_id: str = "open-1",
              uname: str = "观众", msg_id: str | None = None, gift_id: int = 31036, **more: Any) -> dict[str, Any]:
    return _cmd("SEND_GIFT", room_id=10001, uid=0, open_id=open_id, uname=uname, uface="", gift_id=gift_id,
                gift_name=gift_name, gift_num=gift_num, price=price, r_price=price, paid=paid, fans_medal_level=0,
                fans_medal_name="", fans_medal_wearing_status=False, guard_level=0, timestamp=int(time.time()),
                msg_id=msg_id or _msg_id(), gift_icon="", combo_gift=False, **more)


def super_chat(message: str, *, rmb: float = 30, open_id: str = "open-1", uname: str = "观众",
               message_id: int = 1, msg_id: str | None = None, **more: Any) -> dict[str, Any]:
    now = int(time.time())
    return _cmd("SUPER_CHAT", room_id=10001, uid=0, open_id=open_id, uname=uname, uface="", message_id=message_id,
                message=message, rmb=rmb, timestamp=now, start_time=now, end_time=now + 60, guard_level=0,
                fans_medal_level=0, fans_medal_name="", fans_medal_wearing_status=False, msg_id=msg_id or _msg_id(),
                **more)


def guard(*, guard_level: int = 3, guard_num: int = 1, price: int = 198_000, open_id: str = "open-1",
          uname: str = "观众", msg_id: str | None = None) -> dict[str, Any]:
    return _cmd("GUARD", user_info={"uid": 0, "open_id": open_id, "uname": uname, "uface": ""},
                guard_level=guard_level, guard_num=guard_num, guard_unit="月", price=price, fans_medal_level=0,
                fans_medal_name="", fans_medal_wearing_status=False, room_id=10001, msg_id=msg_id or _msg_id(),
                timestamp=int(time.time()))


def like(*, like_count: int = 5, open_id: str = "open-1", uname: str = "观众",
         msg_id: str | None = None) -> dict[str, Any]:
    return _cmd("LIKE", uname=uname, uid=0, open_id=open_id, uface="", timestamp=int(time.time()), room_id=10001,
                like_text="为主播点赞了", like_count=like_count, fans_medal_level=0, fans_medal_name="",
                fans_medal_wearing_status=False, msg_id=msg_id or _msg_id())


def enter(*, open_id: str = "open-1", uname: str = "观众") -> dict[str, Any]:
    return _cmd("LIVE_ROOM_ENTER", room_id=10001, uface="", uname=uname, open_id=open_id, timestamp=int(time.time()))


def live_start(*, room_id: int = 10001) -> dict[str, Any]:
    return _cmd("LIVE_START", room_id=room_id, open_id="anchor", timestamp=int(time.time()), area_name="购物",
                title="假直播间")


def live_end(*, room_id: int = 10001) -> dict[str, Any]:
    return _cmd("LIVE_END", room_id=room_id, open_id="anchor", timestamp=int(time.time()), area_name="购物",
                title="假直播间")


def interaction_end(game_id: str) -> dict[str, Any]:
    return _cmd("INTERACTION_END", game_id=game_id, timestamp=int(time.time()))


# -- the server ------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One API request as the fake received it, and its answer's code."""

    path: str
    body: dict[str, Any]
    code: int
    at: float = field(default_factory=time.time)


@dataclass(eq=False)
class _Conn:
    ws: ServerConnection
    game_id: str = ""
    authed: bool = False


@dataclass
class _Settings:
    replay_overlap: int = 0
    max_skew_s: float = 600.0
    auth_timeout_s: float = 5.0
    popularity: int = 1
    start_codes: list[int] = field(default_factory=list)  # app/start answers these codes first, in order


class FakeOpenPlatform:
    def __init__(self, *, code: str = "FAKECODE1234", app_id: int = 1650000000000, access_key: str = "fake-key",
                 access_secret: str = "fake-secret", room_id: int = 10001, links: int = 1, dead_links: int = 0,
                 **settings: Any):
        self.code, self.app_id, self.room_id = code, app_id, room_id
        self.access_key, self.access_secret = access_key, access_secret
        self.credentials = OpenPlatformCredentials(app_id, access_key, access_secret)
        self._links, self._dead_links = links, dead_links
        self.settings = _Settings()
        self.configure(**settings)
        self._lock = threading.Lock()
        self._log: list[bytes] = []
        self._sent_upto = 0
        self._drop_after: set[int] = set()
        self._calls: list[Call] = []
        self._nonces: set[str] = set()
        self._games: dict[str, str] = {}   # active game_id -> auth_body
        self._game_serial = 0
        self._conns: set[_Conn] = set()
        self.auths: list[bytes] = []
        self.heartbeats = 0
        self.connections = 0
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

    def configure(self, **settings: Any) -> FakeOpenPlatform:
        for key, value in settings.items():
            if not hasattr(self.settings, key):
                raise TypeError(f"unknown setting {key!r}")
            setattr(self.settings, key, value)
        return self

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *cmds: dict[str, Any], ver: int = 2) -> int:
        """Queue one websocket message with cmds (a zlib bundle); returns its log index."""
        return self.push_raw(frame(list(cmds), ver))

    def push_raw(self, data: bytes) -> int:
        with self._lock:
            self._log.append(data)
            index = len(self._log) - 1
        self._poke()
        return index

    def drop_after(self, *indexes: int) -> None:
        with self._lock:
            self._drop_after.update(indexes)

    def drop(self) -> int:
        """Abort every live connection (TCP reset)."""
        conns = list(self._conns)
        for c in conns:
            self._call(c.ws.transport.abort)
        return len(conns)

    def end_interaction(self) -> int:
        """The server ends every active game: INTERACTION_END on its connections, which then close; the
        game's heartbeats answer 7003 from now on. Returns how many connections heard it."""
        with self._lock:
            games = dict(self._games)
            self._games.clear()
        conns = [c for c in self._conns if c.authed and c.game_id in games]
        for c in conns:
            self._call(lambda c=c: asyncio.ensure_future(self._end_conn(c)))
        return len(conns)

    def expire_games(self) -> None:
        """The server forgets every game silently (as after missed heartbeats): app/heartbeat answers 7003."""
        with self._lock:
            self._games.clear()

    async def _end_conn(self, conn: _Conn) -> None:
        with contextlib.suppress(Exception):
            await conn.ws.send(frame([interaction_end(conn.game_id)]))
            await conn.ws.close(1000, "interaction end")

    # -- what happened ---------------------------------------------------------------------------------

    def calls(self, path: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if path is None or c.path.endswith(path)]

    @property
    def starts(self) -> list[Call]:
        return [c for c in self.calls("/app/start") if c.code == 0]

    @property
    def game_heartbeats(self) -> list[Call]:
        return [c for c in self.calls("/app/heartbeat") if c.code == 0]

    @property
    def ends(self) -> list[Call]:
        return self.calls("/app/end")

    @property
    def active_games(self) -> list[str]:
        with self._lock:
            return list(self._games)

    @property
    def live_connections(self) -> int:
        return sum(1 for c in self._conns if c.authed)

    def wait_for(self, pred: Callable[[FakeOpenPlatform], Any], within_s: float = 10.0) -> bool:
        deadline = time.monotonic() + within_s
        while not pred(self):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def await_for(self, pred: Callable[[FakeOpenPlatform], Any], within_s: float = 10.0) -> bool:
        deadline = time.monotonic() + within_s
        while not pred(self):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # -- life cycle ------------------------------------------------------------------------------------

    def start(self) -> FakeOpenPlatform:
        self._thread = threading.Thread(target=self._thread_main, name="fake-bilibili-open", daemon=True)
        self._thread.start()
        if not self._ready.wait(15) or self._error is not None:
            raise RuntimeError(f"fake open platform did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._thread is None or self._stop is None:
            return
        self._call(self._stop.set)
        self._thread.join(timeout=15)
        if self._thread.is_alive():
            raise RuntimeError("fake open platform did not stop")
        self._thread = None

    def __enter__(self) -> FakeOpenPlatform:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeOpenPlatform:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
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
        for _ in range(self._dead_links):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.dead_ports.append(s.getsockname()[1])
            s.close()
        servers = []
        for _ in range(self._links):
            server = await websockets.serve(self._handle_ws, "127.0.0.1", 0, ping_interval=None, compression=None,
                                            max_size=64 * 1024, close_timeout=1)
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

    # -- HTTP ------------------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(routes=[Route("/v2/app/start", self._start, methods=["POST"]),
                                 Route("/v2/app/heartbeat", self._heartbeat, methods=["POST"]),
                                 Route("/v2/app/end", self._end, methods=["POST"])])

    def check_signature(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        """0 when the request is signed as the platform wants, else the code and message it answers."""
        h = {k.lower(): v for k, v in headers.items()}
        if h.get("x-bili-accesskeyid") != self.access_key:
            return 4002, "签名异常: unknown access key"
        if h.get("x-bili-signature-method") != "HMAC-SHA256" or h.get("x-bili-signature-version") != "1.0":
            return 4002, "签名异常: method or version"
        if h.get("x-bili-content-md5") != hashlib.md5(body).hexdigest():
            return 4002, "签名异常: content md5"
        lines = "\n".join(f"{k}:{h[k]}" for k in sorted(k for k in h if k.startswith("x-bili-")))
        expected = hmac.new(self.access_secret.encode(), lines.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(h.get("authorization", ""), expected):
            return 4002, "签名异常: signature"
        try:
            skew = abs(time.time() - int(h.get("x-bili-timestamp", "")))
        except ValueError:
            return 4003, "请求过期: no timestamp"
        if skew > self.settings.max_skew_s:
            return 4003, "请求过期"
        nonce = h.get("x-bili-signature-nonce", "")
        with self._lock:
            if not nonce or nonce in self._nonces:
                return 4004, "重复请求"
            self._nonces.add(nonce)
        return 0, ""

    async def _read(self, request: Request) -> tuple[dict[str, Any], JSONResponse | None]:
        raw = await request.body()
        code, message = self.check_signature(dict(request.headers), raw)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body, code, message = {}, code or 4000, message or "参数错误"
        if not isinstance(body, dict):
            body, code, message = {}, code or 4000, message or "参数错误"
        if code:
            self._record(request.url.path, body, code)
            return body, JSONResponse({"code": code, "message": message, "request_id": uuid.uuid4().hex, "data": {}})
        return body, None

    def _answer(self, path: str, body: dict[str, Any], code: int, message: str = "",
                data: dict[str, Any] | None = None) -> JSONResponse:
        self._record(path, body, code)
        return JSONResponse({"code": code, "message": message or ("0" if code == 0 else "error"),
                             "request_id": uuid.uuid4().hex, "data": data or {}})

    async def _start(self, request: Request) -> Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        path = request.url.path
        with self._lock:
            forced = self.settings.start_codes.pop(0) if self.settings.start_codes else 0
        if forced:
            return self._answer(path, body, forced, "forced")
        if body.get("app_id") != self.app_id:
            return self._answer(path, body, 4001, "应用无效")
        if body.get("code") != self.code:
            return self._answer(path, body, 7007, "身份码错误")
        with self._lock:
            self._game_serial += 1
            game_id = f"game-{self._game_serial}-{uuid.uuid4().hex[:8]}"
            auth_body = json.dumps({"roomid": self.room_id, "protoover": 2, "uid": 0, "key": uuid.uuid4().hex,
                                    "group": "open"}, separators=(",", ":"))
            self._games[game_id] = auth_body
        links = [f"ws://127.0.0.1:{p}/sub" for p in [*self.dead_ports, *self.ws_ports]]
        return self._answer(path, body, 0, data={
            "game_info": {"game_id": game_id},
            "websocket_info": {"auth_body": auth_body, "wss_link": links},
            "anchor_info": {"room_id": self.room_id, "uname": "假主播", "uface": "", "uid": 0, "open_id": "anchor"}})

    async def _heartbeat(self, request: Request) -> Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        with self._lock:
            known = body.get("game_id") in self._games
        return self._answer(request.url.path, body, 0 if known else 7003, "" if known else "心跳过期或GameId错误")

    async def _end(self, request: Request) -> Response:
        body, refused = await self._read(request)
        if refused is not None:
            return refused
        game_id = body.get("game_id")
        with self._lock:
            known = game_id in self._games and body.get("app_id") == self.app_id
            if known:
                del self._games[game_id]
        if known:
            for c in list(self._conns):
                if c.game_id == game_id:
                    c.ws.transport.abort()
        return self._answer(request.url.path, body, 0 if known else 7003, "" if known else "GameId错误")

    def _record(self, path: str, body: dict[str, Any], code: int) -> None:
        with self._lock:
            self._calls.append(Call(path, body, code))

    # -- websocket -------------------------------------------------------------------------------------

    async def _handle_ws(self, ws: ServerConnection) -> None:
        if ws.request is None or ws.request.path.split("?")[0] != "/sub":
            await ws.close(1008, "unknown path")
            return
        conn = _Conn(ws)
        self._conns.add(conn)
        with self._lock:
            self.connections += 1
        try:
            if not await self._auth(conn):
                return
            conn.authed = True
            with self._lock:
                start = max(0, self._sent_upto - max(0, self.settings.replay_overlap))
            tasks = [asyncio.create_task(self._reader(conn)), asyncio.create_task(self._writer(conn, start))]
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
        if not isinstance(first, bytes) or len(first) < 16:
            await conn.ws.close(1008, "bad auth packet")
            return False
        pack_len, header_len, _ver, op, _seq = _HEADER.unpack_from(first)
        body = first[16:]
        with self._lock:
            self.auths.append(body)
            game_id = next((g for g, a in self._games.items() if a.encode() == body), "")
        if op != OP_AUTH or header_len != 16 or pack_len != len(first):
            await conn.ws.close(1008, "bad auth packet")
            return False
        await conn.ws.send(packet(OP_AUTH_REPLY, json.dumps({"code": 0 if game_id else -101}).encode(), ver=1, seq=1))
        if not game_id:
            await conn.ws.close(1000, "auth failed")
            return False
        conn.game_id = game_id
        return True

    async def _reader(self, conn: _Conn) -> None:
        async for message in conn.ws:
            if not isinstance(message, bytes) or len(message) < 16:
                continue
            op = _HEADER.unpack_from(message)[3]
            if op == OP_HEARTBEAT:
                with self._lock:
                    self.heartbeats += 1
                await conn.ws.send(packet(OP_HEARTBEAT_REPLY, self.settings.popularity.to_bytes(4, "big"), ver=1))

    async def _writer(self, conn: _Conn, pos: int) -> None:
        assert self._wake is not None
        while True:
            with self._lock:
                pending = self._log[pos] if pos < len(self._log) else None
            if pending is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 0.05)
                continue
            await conn.ws.send(pending)
            with self._lock:
                self._sent_upto = max(self._sent_upto, pos + 1)
                drop = pos in self._drop_after
                self._drop_after.discard(pos)
            pos += 1
            if drop:
                conn.ws.transport.abort()
                return


__all__ = ["Call", "FakeOpenPlatform", "dm", "enter", "frame", "guard", "interaction_end", "like", "live_end",
           "live_start", "packet", "send_gift", "super_chat"]
