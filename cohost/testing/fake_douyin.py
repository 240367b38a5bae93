"""FakeDouyin: a Douyin live site and push server on 127.0.0.1, speaking the real framing.

One port serves both: plain HTTP ``GET /`` (sets the ``ttwid`` cookie) and ``GET /<web_rid>`` (a page with
``roomId\\":\\"<room_id>``), and the push websocket at ``/webcast/im/push/v2/``, which it checks like the
real one would (the ttwid cookie, the room id, the signature made by ``fake_signer`` from the signed
parameters) before sending gzip'd PushFrames whose Responses carry the messages pushed with ``push``.

Like a live room, messages happen whether or not anyone is connected: ``push`` appends them to the room's
log. A fresh connection (no cursor of ours) starts at the live head and misses what came before; a
connection resuming with the cursor of its last Response continues from there, re-sending the last message
it delivered once (so clients must drop duplicates by msgId). The server also:

- asks for acks (``need_ack``) and checks them (log id and internal_ext),
- expects heartbeats: a connection silent for ``idle_timeout_s`` is dropped; each heartbeat is answered,
- can drop connections abruptly (``drop()``, or ``drop_every`` frames, ``max_drops`` times), stall one
  (``stall()``: nothing more is sent on it, not even heartbeat answers) or close it with payloadType "close".

    async with FakeDouyin() as fake:
        client = DouyinClient(fake.web_rid, signer=fake_signer, live_base=fake.live_base, hosts=fake.hosts)
        fake.push(messages.chat(1, messages.user(7, "小王"), "包邮吗"))
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http
import re
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ..sources.douyin import messages as m
from ..sources.douyin.client import PUSH_PATH, SIGNATURE_KEYS, x_ms_stub
from ..sources.douyin.proto import WireError

_CURSOR = re.compile(r"^fake-(\d+)-")


def fake_signer(params: Mapping[str, str]) -> str:
    """A stand-in for the web client's signing script: deterministic over the signed parameters."""
    return hashlib.sha256(("fake:" + x_ms_stub(params)).encode()).hexdigest()[:40]


@dataclass(eq=False)  # hashed by identity: kept in a set
class _Conn:
    ws: ServerConnection
    pos: int                       # the next log index to send
    did: str
    stalled: bool = False
    frames: int = 0
    pending_acks: dict[int, str] = field(default_factory=dict)  # log id → the internal_ext it must echo


class FakeDouyin:
    def __init__(self, *, web_rid: str = "646454278948", room_id: int = 7388523424571869991, batch: int = 2,
                 need_ack: bool = True, idle_timeout_s: float = 30.0, drop_every: int | None = None,
                 max_drops: int = 0, check_signature: bool = True, heartbeat_ms: int = 0):
        self.web_rid, self.room_id, self.batch = web_rid, room_id, batch
        self.need_ack, self.idle_timeout_s, self.check_signature = need_ack, idle_timeout_s, check_signature
        self.drop_every, self.max_drops, self.heartbeat_ms = drop_every, max_drops, heartbeat_ms
        self.log: list[bytes] = []            # the room's messages, in order (Message bytes)
        self.stats: Counter[str] = Counter()  # connections, fresh, resumes, acks, bad_acks, heartbeats, drops...
        self.connects: list[dict[str, str]] = []   # each push connection's query, for tests to look at
        self.refusals: list[str] = []
        self.conns: set[_Conn] = set()
        self._ttwids: set[str] = set()
        self._dids: set[str] = set()
        self._log_id = 0
        self._changed = asyncio.Event()
        self._server: Server | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    @property
    def live_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hosts(self) -> list[str]:
        return [f"ws://127.0.0.1:{self.port}"]

    async def start(self) -> None:
        self._server = await serve(self._serve, "127.0.0.1", 0, process_request=self._http, max_size=1 << 20,
                                   compression=None)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FakeDouyin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what the test does --------------------------------------------------------------------------------

    def push(self, *messages: bytes) -> None:
        """Messages (from sources.douyin.messages builders) happen in the room now."""
        self.log.extend(messages)
        self._wake()

    def drop(self) -> None:
        """Every connection is cut, as by a network failure (no close frame)."""
        for conn in list(self.conns):
            self._abort(conn, "drops")

    def stall(self) -> None:
        """The current connections stay open but nothing more is sent on them."""
        for conn in self.conns:
            conn.stalled = True

    async def close_frames(self) -> None:
        """Tell every connection to go away with a PushFrame of payloadType "close"."""
        for conn in list(self.conns):
            with contextlib.suppress(websockets.ConnectionClosed):
                await conn.ws.send(m.push_frame(payload_type="close", compress=False))

    @property
    def unacked(self) -> int:
        return sum(len(c.pending_acks) for c in self.conns)

    # -- HTTP: the live site, and the push handshake's checks ----------------------------------------------

    def _http(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if url.path == "/":
                ttwid = "1%7C" + secrets.token_urlsafe(16)
                self._ttwids.add(ttwid)
                response = connection.respond(http.HTTPStatus.OK, "<html>douyin</html>\n")
                response.headers["Set-Cookie"] = f"ttwid={ttwid}; Path=/; HttpOnly"
                return response
            if url.path == f"/{self.web_rid}":
                # As the real page has it: JSON escaped inside a script string.
                state = f'{{\\"state\\":{{\\"roomId\\":\\"{self.room_id}\\"}}}}'
                page = f'<script>self.__pace_f.push([1,"{state}"])</script>'
                return connection.respond(http.HTTPStatus.OK, page)
            return connection.respond(http.HTTPStatus.NOT_FOUND, "<html>no such room</html>\n")
        query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        cookies = dict(p.strip().split("=", 1) for p in request.headers.get("cookie", "").split(";") if "=" in p)
        why = None
        if url.path != PUSH_PATH:
            why = f"unknown path {url.path}"
        elif cookies.get("ttwid") not in self._ttwids:
            why = "no ttwid cookie from this site"
        elif query.get("room_id") != str(self.room_id):
            why = f"wrong room_id {query.get('room_id')!r}"
        elif not query.get("signature"):
            why = "no signature"
        elif self.check_signature and not hmac.compare_digest(
                query["signature"], fake_signer({k: query.get(k, "") for k in SIGNATURE_KEYS})):
            why = "bad signature"
        elif query.get("compress") != "gzip" or not query.get("user_unique_id"):
            why = "missing compress=gzip or user_unique_id"
        if why is None:
            return None
        self.refusals.append(why)
        self.stats["refused"] += 1
        return connection.respond(http.HTTPStatus.FORBIDDEN, why + "\n")

    # -- the push websocket --------------------------------------------------------------------------------

    def _start_position(self, query: Mapping[str, str]) -> int:
        did = query.get("user_unique_id", "")
        found = _CURSOR.match(query.get("cursor", ""))
        if found and 0 < int(found.group(1)) <= len(self.log):
            self.stats["resumes"] += 1
            if not query.get("internal_ext", "").startswith("internal_src:dim|fake_seq:"):
                self.stats["resume_without_internal_ext"] += 1
            return int(found.group(1)) - 1  # the last message it had, once more
        if did in self._dids:
            self.stats["reconnect_without_cursor"] += 1  # a client that lost its place
        self.stats["fresh"] += 1
        return len(self.log)

    async def _serve(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = {k: v[0] for k, v in parse_qs(urlsplit(ws.request.path).query, keep_blank_values=True).items()}
        self.connects.append(query)
        self.stats["connections"] += 1
        conn = _Conn(ws, self._start_position(query), query.get("user_unique_id", ""))
        self._dids.add(conn.did)
        self.conns.add(conn)
        sender = asyncio.create_task(self._send_loop(conn))
        try:
            while True:
                try:
                    data = await asyncio.wait_for(ws.recv(), self.idle_timeout_s)
                except TimeoutError:
                    self._abort(conn, "idle_drops")  # no heartbeat: a real server forgets the client
                    return
                await self._on_client_frame(conn, data)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.conns.discard(conn)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await sender

    async def _on_client_frame(self, conn: _Conn, data: str | bytes) -> None:
        if isinstance(data, str):
            self.stats["bad_client_frames"] += 1
            return
        try:
            frame = m.decode("PushFrame", data)
        except WireError:
            self.stats["bad_client_frames"] += 1
            return
        kind = frame.get("payloadType")
        if kind == "hb":
            self.stats["heartbeats"] += 1
            if not conn.stalled:
                await self._send(conn, m.push_frame(payload_type="hb", compress=False))
        elif kind == "ack":
            expected = conn.pending_acks.pop(frame.get("logId", 0), None)
            ok = expected is not None and frame.get("payload", b"").decode("utf-8", "replace") == expected
            self.stats["acks" if ok else "bad_acks"] += 1
        else:
            self.stats["bad_client_frames"] += 1

    async def _send(self, conn: _Conn, frame: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await conn.ws.send(frame)

    async def _send_loop(self, conn: _Conn) -> None:
        while True:
            while conn.stalled or conn.pos >= len(self.log):
                self._changed.clear()
                await self._changed.wait()
            batch = self.log[conn.pos:conn.pos + self.batch]
            end = conn.pos + len(batch)
            self._log_id += 1
            internal_ext = f"internal_src:dim|fake_seq:{end}|wss_push_room_id:{self.room_id}|wss_push_did:{conn.did}"
            payload = m.response(batch, cursor=f"fake-{end}-t-{int(time.time() * 1000)}", internal_ext=internal_ext,
                                 need_ack=self.need_ack, heartbeat_ms=self.heartbeat_ms,
                                 now_ms=int(time.time() * 1000))
            if self.need_ack:
                conn.pending_acks[self._log_id] = internal_ext
            await conn.ws.send(m.push_frame(payload, log_id=self._log_id, seq_id=self._log_id))
            conn.pos = end
            conn.frames += 1
            self.stats["frames"] += 1
            if self.drop_every and conn.frames % self.drop_every == 0 and self.stats["drops"] < self.max_drops:
                self._abort(conn, "drops")
                return

    def _abort(self, conn: _Conn, why: str) -> None:
        self.stats[why] += 1
        self.conns.discard(conn)
        transport = conn.ws.transport
        if transport is not None:
            transport.abort()

    def _wake(self) -> None:
        self._changed.set()


def room_message_ids(log: list[bytes]) -> list[str]:
    """The msgIds of a log's messages, as the codec's events carry them."""
    return [str(m.decode("Message", raw).get("msgId", 0)) for raw in log]


__all__ = ["FakeDouyin", "fake_signer", "room_message_ids"]

