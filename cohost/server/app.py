"""The cohost server: websocket ingest, the teleprompter overlay, health and stats.

    ws://HOST:PORT/ws/ingest?room=R[&token=T]   events in (one JSON object per text frame), replies out
    ws://HOST:PORT/ws/overlay?room=R[&token=T]  overlay state snapshots out
    http://HOST:PORT/overlay?room=R             the overlay page (an OBS browser source)
    http://HOST:PORT/rooms/R/stats              what happened to every message (ingest or admin token)
    http://HOST:PORT/rooms/R/transcript         what the streamer said lately (ingest or admin token)
    POST http://HOST:PORT/rooms/R/voice         a viewer's voice message too large for a frame (ingest token)
    http://HOST:PORT/admin                      catalog owners' page (admin token)
    http://HOST:PORT/api/...                    catalog owners' API, documented at /docs (admin token)

A room answers from the store's default shop unless its URLs add &shop=S.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import swagger_ui_bundle
from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from .. import messages
from ..aio import cancel_and_wait, create_task
from ..config import Config
from ..errors import CohostError
from ..events import (
    MAX_FRAME_BYTES,
    AudioEndEvent,
    AudioStartEvent,
    ChatEvent,
    ControlEvent,
    Event,
    EventError,
    TranscriptEvent,
    User,
    VoiceEvent,
    parse_event,
)
from ..hearing.audio import FORMATS, AudioError
from ..hearing.ears import AudioStream
from ..hearing.worker import AsrBusy, AsrStale
from ..knowledge.service import CatalogService
from ..knowledge.store import StoreError
from .admin import install_error_handlers, make_router
from .hub import Hub, RoomCrowded, RoomEntry, RoomShopMismatch, SocketKind, Source, TalkingPoints, TooManyRooms
from .writer import SocketWriter

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
ROOM_NAME_MAX = 64


def _given_token(request: Request) -> str | None:
    """The token a request carries: a Bearer header, else ?token=."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.query_params.get("token")


def _token_ok(expected_env: str, given: str | None) -> bool:
    expected = os.environ.get(expected_env)
    # Bytes: compare_digest raises TypeError on a non-ASCII str.
    return not expected or (given is not None and secrets.compare_digest(expected.encode(), given.encode()))


def _room_ok(room: str) -> bool:
    return 0 < len(room) <= ROOM_NAME_MAX and room.replace("-", "").replace("_", "").isalnum()


ADMIN_TOKEN_FILE = "admin_token"


def admin_token_path(config: Config) -> Path:
    """Where `cohost run` keeps the token it generated: beside the store, which is the shop's state."""
    return config.resolve(config.store.path).parent / ADMIN_TOKEN_FILE


def saved_admin_token(path: Path, *, rotate: bool = False) -> str:
    """The token saved in ``path``, made (or with ``rotate`` replaced) when there is none. The file is
    the owner's only (0600): anyone who reads it can change the catalog."""
    if not rotate:
        try:
            token = path.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            token = ""
        if re.fullmatch(r"[\x21-\x7e]{16,512}", token):  # sendable in a header, and not trivially short
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)  # e.g. restored from a backup with looser permissions
            return token
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover could have looser permissions, which os.open would keep
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    try:
        os.write(fd, (token + "\n").encode("ascii"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token


SERVER_FILE = "server.json"  # where the running `cohost run` listens, for `cohost admin-token`


def server_file_path(config: Config) -> Path:
    return config.resolve(config.store.path).parent / SERVER_FILE


@contextlib.contextmanager
def announced(config: Config, host: str, port: int) -> Iterator[Path]:
    """Where this process listens, written beside the store while it serves, and removed after (unless
    another server has written its own since)."""
    path = server_file_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}), encoding="utf-8")
    os.replace(tmp, path)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()


def running_address(config: Config) -> tuple[str, int] | None:
    """(host, port) of the `cohost run` serving this store, when one is alive."""
    try:
        doc = json.loads(server_file_path(config).read_text(encoding="utf-8"))
        host, port, pid = str(doc["host"]), int(doc["port"]), int(doc["pid"])
        os.kill(pid, 0)  # raises when no such process (a server killed with -9 leaves its file)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return host, port


def admin_token(config: Config, *, persist: bool = False) -> tuple[str, bool]:
    """The admin token from the environment, else (``persist``) the one saved in the store's directory,
    else a fresh random one; (token, generated: not from the environment). Saving it keeps the admin
    links an owner bookmarked working across restarts; `cohost admin-token --rotate` replaces it."""
    token = os.environ.get(config.server.admin_token_env)
    if token:
        return token, False
    if persist:
        return saved_admin_token(admin_token_path(config)), True
    return secrets.token_urlsafe(18), True


# frame-ancestors cannot be set from a <meta> tag, so the pages' own policies are sent as headers with it.
# No page is meant to be framed: /admin changes the catalog, the overlay approves held replies (clickjacking),
# and OBS loads a browser source as a top-level page (CEF), not in a frame, so it is not affected.
_META_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy"\s+content="([^"]*)"', re.IGNORECASE)


def page_headers(html: str | None = None) -> dict[str, str]:
    policy = " ".join(m.group(1).split()) if html and (m := _META_CSP.search(html)) else ""
    policy = f"{policy.rstrip('; ')}; frame-ancestors 'none'" if policy else "frame-ancestors 'none'"
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def _page(name: str) -> HTMLResponse:
    html = (STATIC / name).read_text(encoding="utf-8")
    return HTMLResponse(html, headers=page_headers(html))


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["approve", "reject", "hold", "auto"]
    id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    by: Annotated[str, Field(min_length=1, max_length=24)] | None = None


def create_app(catalogs: CatalogService, config: Config, talking_points: TalkingPoints, *,
               admin_token: str) -> FastAPI:
    hub = Hub(catalogs, config, talking_points)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        yield
        await hub.close()

    app = FastAPI(title="cohost", summary="Catalog owners' API: versions, uploads, FAQs, gaps. "
                  "Authorize with the admin token.", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.hub = hub
    app.state.catalogs = catalogs
    app.state.admin_token = admin_token
    # The audit log and the moderation settings live in the catalog store's file; the hub's instances, so
    # that a change made on /admin reaches the rooms (Moderation.listen).
    app.state.audit = hub.audit_log
    app.state.moderation = hub.moderation
    app.include_router(make_router(catalogs, admin_token, config.store.max_upload_bytes, audit=app.state.audit,
                                   moderation=app.state.moderation))
    install_error_handlers(app)
    # Swagger UI from the installed package: /docs works offline and behind firewalls.
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/openapi.json", title="cohost API",
                                   swagger_js_url="/static/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger/favicon-32x32.png")
        page.headers.update(page_headers())  # framing only: Swagger UI's own scripts are left as they are
        return page

    def may_see_rooms(request: Request) -> bool:
        """Room names and their traffic are for the operator: once an ingest or overlay token is set, the
        ingest or the admin token is needed (as ?token= or a Bearer header)."""
        given = _given_token(request)
        ingest = os.environ.get(config.server.ingest_token_env)
        if not (ingest or os.environ.get(config.server.overlay_token_env)):
            return True
        if not given:
            return False
        return any(secrets.compare_digest(t.encode(), given.encode()) for t in (ingest, admin_token) if t)

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, object]:
        shop = catalogs.default_shop
        body: dict[str, object] = {"ok": True, "shop": shop, "catalog": hub.engine.catalog.shop.name,
                                   "version": catalogs.serving_version(shop)}
        if may_see_rooms(request):
            body["rooms"] = sorted(hub.rooms)
            # Platform adapters' connection states, e.g. {"r1": [{"name": "bilibili:1", "state": "reconnecting", ...}]}
            body["sources"] = {name: [s.health.as_dict() for s in e.ingest if s.health is not None]
                               for name, e in sorted(hub.rooms.items()) if any(s.health for s in e.ingest)}
        return body

    @app.get("/overlay", response_class=HTMLResponse)
    async def overlay() -> HTMLResponse:
        return _page("overlay.html")

    @app.get("/admin", response_class=HTMLResponse)
    async def admin() -> HTMLResponse:
        return _page("admin.html")

    @app.get("/rooms/{room}/stats")
    async def stats(room: str, request: Request) -> JSONResponse:
        if not may_see_rooms(request):
            raise HTTPException(401, "this server needs a token for room stats")
        body = hub.stats(room)
        if body is None:
            raise HTTPException(404, f"no room {room!r}")
        return JSONResponse(body)

    def require_admin(request: Request) -> None:
        lang = messages.pick_lang(request.headers.get("accept-language"))
        if "token" in request.query_params:  # as on the rest of /api: headers only
            raise HTTPException(401, messages.text("token_in_query", lang), headers={"WWW-Authenticate": "Bearer"})
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-cohost-token")
        if not given or not secrets.compare_digest(given.encode(), admin_token.encode()):
            raise HTTPException(401, messages.text("token_wrong", lang), headers={"WWW-Authenticate": "Bearer"})

    @app.get("/api/rooms", dependencies=[Depends(require_admin)])
    async def review_rooms() -> list[dict[str, Any]]:
        """Every live room with its review mode and the replies it holds for review (for /admin)."""
        now = time.time()
        return [{"room": name, "shop": e.shop, **e.runner.room.snapshot(now)["review"]}
                for name, e in sorted(hub.rooms.items())]

    @app.post("/api/rooms/{room}/review", dependencies=[Depends(require_admin)])
    async def review(room: str, body: ReviewIn) -> JSONResponse:
        """Approve or reject a held reply, or switch hold-for-review on or off (a moderator on /admin)."""
        entry = hub.rooms.get(room)
        if entry is None:
            raise HTTPException(404, f"没有直播间 {room}")
        action = {"approve": "approve", "reject": "reject", "hold": "review_hold", "auto": "review_auto"}[body.action]
        if action in ("approve", "reject") and not body.id:
            raise HTTPException(422, "批准或拒绝需要回复的 id")
        if action in ("approve", "reject") and not entry.runner.room.is_held(body.id or ""):
            raise HTTPException(409, "这条回复已过期或已被处理")
        event = ControlEvent(type="control", action=action, id=body.id, by=f"admin:{body.by or '管理员'}"[:32])
        if not entry.runner.submit(event):
            raise HTTPException(503, "直播间忙，请重试")
        return JSONResponse({"ok": True}, status_code=202)

    @app.get("/rooms/{room}/transcript")
    async def transcript(room: str, request: Request) -> JSONResponse:
        if not may_see_rooms(request):
            raise HTTPException(401, "this server needs a token for room transcripts")
        entry = hub.rooms.get(room)
        if entry is None:
            raise HTTPException(404, f"no room {room!r}")
        return JSONResponse({"room": room, "lines": [line.as_dict() for line in entry.runner.room.transcript]})

    @app.post("/rooms/{room}/voice")
    async def voice(room: str, request: Request, user_id: str = Query(..., min_length=1, max_length=128),
                    user_name: str = Query("", max_length=64), id: str | None = Query(None, max_length=128),
                    format: str = Query(..., max_length=16)) -> JSONResponse:
        """A viewer's voice message as the raw file in the body; it joins the room's chat as a voice message."""
        if not _token_ok(config.server.ingest_token_env, _given_token(request)):
            raise HTTPException(401, "bad or missing ingest token")
        entry = hub.rooms.get(room)
        if entry is None or not entry.ingest:
            raise HTTPException(404, f"no room {room!r} with a source connected to post the reply")
        if format.lower() not in FORMATS:
            raise HTTPException(415, f"unknown audio format {format[:16]!r}; send one of {', '.join(FORMATS)}")
        limit = config.asr.max_clip_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"the clip is over the {limit}-byte limit")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"the clip is over the {limit}-byte limit")
        event = VoiceEvent(type="voice", id=id or f"voice-{secrets.token_hex(6)}",
                           user=User(id=user_id, name=user_name), format=format, data="-")
        try:
            chat: ChatEvent = await hub.hearing.voice_message(room, event, bytes(body),
                                                             deadline_s=config.dialog.deadline_s)
        except AudioError as e:
            raise HTTPException(422, str(e)) from None
        except (AsrBusy, AsrStale) as e:
            raise HTTPException(429, str(e)) from None
        except CohostError as e:
            raise HTTPException(503, str(e)) from None
        if not entry.runner.submit(chat):
            raise HTTPException(503, "room overloaded; voice message dropped")
        return JSONResponse({"id": chat.id, "text": chat.text, "voice": True})

    async def admitted(ws: WebSocket, kind: SocketKind, token: str | None, room: str, shop: str | None
                       ) -> tuple[RoomEntry, Source | SocketWriter] | None:
        """Accept the socket and join it to its room; None after closing it with a code and reason.

        A refused socket is accepted before it is closed so the client (and the overlay page) can say
        why: a close before accept reaches a browser only as an anonymous HTTP 403."""
        await ws.accept()
        token_env = config.server.ingest_token_env if kind == "ingest" else config.server.overlay_token_env
        refusal: tuple[int, str] | None = None
        joined = None
        if not _token_ok(token_env, token):
            refusal = (4401, "bad or missing token")
        elif not _room_ok(room):
            refusal = (4400, "room must be 1-64 letters, digits, - or _")
        else:
            try:
                joined = await hub.join(room, shop, kind, ws)
            except StoreError as e:
                refusal = (4404, str(e)[:120])
            except RoomShopMismatch as e:
                refusal = (4409, str(e)[:120])
            except RoomCrowded as e:
                refusal = (4429, str(e)[:120])
            except TooManyRooms as e:
                refusal = (4503, str(e)[:120])
        if refusal is not None:
            await ws.close(code=refusal[0], reason=refusal[1])
        return joined

    @app.websocket("/ws/ingest")
    async def ingest(ws: WebSocket, room: str = Query("default"), token: str | None = Query(None),
                     shop: str | None = Query(None)) -> None:
        joined = await admitted(ws, "ingest", token, room, shop)
        if joined is None:
            return
        entry, source = joined
        assert isinstance(source, Source) and source.writer is not None
        writer = source.writer
        stream: AudioStream | None = None
        clips: set[asyncio.Task[None]] = set()

        def error(message: str, **extra: object) -> None:
            # Through the writer, never awaited: a client that floods bad frames and reads nothing fills
            # its own queue and is closed, the room is not held up.
            writer.send(json.dumps({"type": "error", "error": message, **extra}, ensure_ascii=False))

        def heard(event: Event) -> bool:
            # What the stream's sender hears back: each utterance as transcribed (an integrator checks
            # their audio arrives as speech), then the event goes into the room like any other.
            if isinstance(event, TranscriptEvent):
                writer.send(json.dumps({"type": "heard", "speaker": event.speaker, "text": event.text,
                                        "start": event.start, "end": event.end}, ensure_ascii=False))
            return entry.runner.submit(event)

        async def finish(old: AudioStream) -> None:
            await old.finish()
            writer.send(json.dumps({"type": "audio_end", "speaker": old.speaker, **old.stats}))

        async def hear_clip(event: VoiceEvent) -> None:
            try:
                chat = await hub.hearing.voice_message(room, event, deadline_s=config.dialog.deadline_s)
            except (AudioError, AsrBusy, AsrStale) as e:
                error(str(e), id=event.id)
                return
            if not entry.runner.submit(chat):
                error("room overloaded; event dropped", id=event.id)

        try:
            while not writer.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                frame = message.get("text")
                if frame is None:
                    data = message.get("bytes") or b""
                    if stream is None:
                        error('binary frames are audio: send {"type": "audio_start"} first',
                              frame=f"<{len(data)} bytes>")
                    elif (why := stream.feed(data)) is not None:
                        error(why, frame=f"<{len(data)} bytes>")
                    continue
                try:
                    event = parse_event(frame)
                except EventError as e:
                    error(str(e), frame=frame[:200])
                    continue
                if isinstance(event, AudioStartEvent):
                    if stream is not None:  # a new stream replaces the old one; what it heard last still counts
                        create_task(finish(stream), name=f"audio-{room}-finish", tasks=clips)
                        stream = None
                    try:
                        stream = hub.hearing.open_stream(room, event.speaker, heard, error)
                    except AudioError as e:
                        error(str(e))
                    continue
                if isinstance(event, AudioEndEvent):
                    if stream is None:
                        error("audio_end without audio_start")
                    else:
                        # The last words are still transcribed, but chat on this socket does not wait for them.
                        create_task(finish(stream), name=f"audio-{room}-finish", tasks=clips)
                        stream = None
                    continue
                if isinstance(event, VoiceEvent):
                    if sum(1 for t in clips if t.get_name().startswith("voice-")) >= config.asr.max_queued_clips:
                        error("too many voice messages in progress on this connection; wait for their replies",
                              id=event.id)
                    else:
                        create_task(hear_clip(event), name=f"voice-{room}-{event.id}", tasks=clips)
                    continue
                if not entry.runner.submit(event):
                    error("room overloaded; event dropped", id=getattr(event, "id", None))
        except (WebSocketDisconnect, RuntimeError):  # RuntimeError: receive after our close
            pass
        finally:
            if stream is not None:
                await stream.close()
            await cancel_and_wait(*clips)
            entry.leave(source)
            await writer.stop()

    @app.websocket("/ws/overlay")
    async def overlay_ws(ws: WebSocket, room: str = Query("default"), token: str | None = Query(None),
                         shop: str | None = Query(None)) -> None:
        joined = await admitted(ws, "overlay", token, room, shop)
        if joined is None:
            return
        entry, writer = joined
        assert isinstance(writer, SocketWriter)
        try:
            writer.send(json.dumps(entry.overlay_state(), ensure_ascii=False))
            while not writer.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                # The page may send control events: pause/resume, and in hold-for-review mode approve or
                # reject a held reply (one key or tap) or switch review on and off. Nothing else.
                frame = message.get("text")
                if frame is None:
                    continue
                try:
                    event = parse_event(frame)
                except EventError as e:
                    writer.send(json.dumps({"type": "error", "error": str(e)}, ensure_ascii=False))
                    continue
                if not isinstance(event, ControlEvent):
                    writer.send(json.dumps({"type": "error", "error": "an overlay sends only control events"}))
                    continue
                # Who decided is recorded as the page's claim under an overlay: prefix, so that a page cannot pass
                # itself off as an /admin moderator in the audit log.
                entry.runner.submit(event.model_copy(update={"by": f"overlay:{event.by or '主播'}"[:32]}))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            entry.leave(writer)
            await writer.stop()

    return app


__all__ = ["MAX_FRAME_BYTES", "create_app"]
