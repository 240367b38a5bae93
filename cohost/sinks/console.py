"""ConsoleRelaySink: replies go to console tools connected to a local websocket.

Some platforms (Douyin) have no public route for posting in a room's chat as an account. The reply still
shows on the overlay; this sink also serves a websocket on 127.0.0.1 where a console tool (a browser
extension on the shop console, a script, a person at a terminal) connects and posts each reply itself.

    sink = ConsoleRelaySink(port=8765, token="secret")
    await sink.start()                  # or: async with ConsoleRelaySink(...) as sink
    await hub.run_source("room", None, client, sink)

A tool connects to ``ws://127.0.0.1:8765/?token=secret`` (or sends ``Authorization: Bearer secret``) and
gets ``{"type": "hello", "sink": name}``, then one text frame per reply:

    {"type": "reply", "reply_id": 7, "room": "r1", "text": "@小王 包邮的", "in_reply_to": "e1",
     "faq_id": "shipping", "latency_ms": 812.4}

(``in_reply_to`` is one id, or a list when the reply answers several viewers, as on the ingest socket.)
A tool may answer ``{"type": "ack", "reply_id": 7, "ok": false, "error": "..."}``: optional, recorded in
``acks`` and counted, never waited for. A reply counts as sent when at least one tool received it; with
none connected the send fails with ``retry_after_s`` so the room tries again while the viewer waits.
"""

from __future__ import annotations

import asyncio
import hmac
import http
import json
import logging
from collections import Counter, OrderedDict
from typing import Any
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .base import SENT, OutgoingReply, SendResult

log = logging.getLogger(__name__)
NO_TOOL_RETRY_S = 1.0
MAX_TOOL_FRAME = 64 * 1024
MAX_ACKS = 1000


class ConsoleRelaySink:
    """A ReplySink serving console tools on a local websocket. ``port=0`` takes a free port (see ``port``
    after start). ``token``: when set, tools must present it."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None, name: str = "console",
                 send_timeout_s: float = 2.0):
        self.host, self.port, self.token, self.name = host, port, token, name
        self.send_timeout_s = send_timeout_s
        self.tools: set[ServerConnection] = set()
        self.acks: OrderedDict[int, dict[str, Any]] = OrderedDict()  # reply_id → the tool's last ack
        self.counts: Counter[str] = Counter()
        self._server: Server | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._started = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    async def start(self) -> None:
        """Listen. ``send`` starts a sink nobody started, so ``run_source(..., ConsoleRelaySink())`` works,
        but tools can only connect once it listens: start it first."""
        if self._server is not None:
            return
        self._server = await serve(self._serve, self.host, self.port, process_request=self._check_token,
                                   max_size=MAX_TOOL_FRAME)
        self.port = self._server.sockets[0].getsockname()[1]
        self._started = True
        log.info("console relay %s listening on %s", self.name, self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ConsoleRelaySink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- ReplySink -----------------------------------------------------------------------------------------

    async def send(self, reply: OutgoingReply) -> SendResult:
        if not self._started:
            await self.start()
        if not self.tools:
            self.counts["no_tool"] += 1
            return SendResult(False, "no console tool connected", retry_after_s=NO_TOOL_RETRY_S)
        ids = reply.in_reply_to
        frame = json.dumps({"type": "reply", "reply_id": reply.reply_id, "room": reply.room, "text": reply.text,
                            "in_reply_to": ids[0] if len(ids) == 1 else list(ids), "faq_id": reply.faq_id,
                            "latency_ms": round(reply.latency_ms, 1)}, ensure_ascii=False)
        received = await asyncio.gather(*(self._send_to(ws, frame) for ws in list(self.tools)))
        if any(received):
            self.counts["sent"] += 1
            return SENT
        self.counts["failed"] += 1
        return SendResult(False, "no console tool received the reply", retry_after_s=NO_TOOL_RETRY_S)

    async def _send_to(self, ws: ServerConnection, frame: str) -> bool:
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await ws.send(frame)
            return True
        except TimeoutError:  # a tool that does not read holds no reply hostage: it is let go
            self.tools.discard(ws)
            self.counts["too_slow"] += 1
            task = asyncio.create_task(ws.close(1013, "not reading replies"))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return False
        except websockets.ConnectionClosed:
            self.tools.discard(ws)
            return False

    # -- tools ---------------------------------------------------------------------------------------------

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if not self.token:
            return None
        given = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = given or auth[7:]
        if hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        self.counts["refused"] += 1
        return connection.respond(http.HTTPStatus.UNAUTHORIZED, "a console tool needs the sink's token\n")

    async def _serve(self, ws: ServerConnection) -> None:
        self.tools.add(ws)
        self.counts["connected"] += 1
        try:
            await ws.send(json.dumps({"type": "hello", "sink": self.name}))
            async for raw in ws:
                self._on_frame(raw)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.tools.discard(ws)

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            self.counts["bad_frames"] += 1
            return
        if not isinstance(msg, dict) or msg.get("type") != "ack" or not isinstance(msg.get("reply_id"), int):
            self.counts["bad_frames"] += 1
            return
        ok = msg.get("ok", True) is not False
        self.counts["acks" if ok else "nacks"] += 1
        if not ok:
            log.warning("console tool could not post reply %s: %s", msg["reply_id"], str(msg.get("error", ""))[:200])
        self.acks[msg["reply_id"]] = {"ok": ok, "error": str(msg.get("error", ""))[:500]}
        self.acks.move_to_end(msg["reply_id"])
        while len(self.acks) > MAX_ACKS:
            self.acks.popitem(last=False)


__all__ = ["ConsoleRelaySink"]
