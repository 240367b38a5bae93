"""The platforms `cohost run --platform NAME` connects to: each builds its source and its reply sink.

One small factory per platform, in one table (simonw/llm's plugin registry is the model): the CLI parses
the flags, the factory turns them into objects. Credentials come from the environment only (see each
adapter's module), never from config.yaml or the command line, where they would end up in shell history.

    bilibili       --room ROOM_ID             the web danmaku protocol; replies via /msg/send with the
                                              account's cookies (COHOST_BILIBILI_SESSDATA, _BILI_JCT, _BUVID3)
    bilibili-open  --code 身份码               the official open platform (COHOST_BILIBILI_APP_ID, _ACCESS_KEY,
                                              _ACCESS_SECRET); it has no send route: replies go to the console relay
    douyin         --room WEB_RID             Douyin webcast; the signature comes from COHOST_DOUYIN_SIGNER
                                              ("package.module:function"); replies go to the console relay
    relay          --url WS_URL --mapping M   any tool that re-broadcasts a room's JSON on a websocket
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CohostError
from ..sinks.base import ReplySink
from .base import Source

ENV_DOUYIN_SIGNER = "COHOST_DOUYIN_SIGNER"


@dataclass
class PlatformOptions:
    """What the command line says about the room to connect to."""

    room: str | None = None          # the platform's room id (Bilibili room id, Douyin web_rid)
    code: str | None = None          # Bilibili open platform: the streamer's 身份码
    url: str | None = None           # relay: the tool's websocket
    mapping: str | None = None       # relay: a packaged mapping name or a file
    console_port: int = 8766         # where console tools fetch replies on platforms with no send route
    console_token: str | None = None
    max_chars: int | None = None     # the platform's chat length limit for this account
    products: dict[str, str] = field(default_factory=dict)  # platform product ids -> catalog product ids
    links: dict[int, str] = field(default_factory=dict)     # link numbers (1号链接) -> catalog product ids


@dataclass
class Connection:
    source: Source
    sink: ReplySink | None
    max_chars: int | None  # what the room composes to (the platform's limit), None = the config's
    notes: list[str] = field(default_factory=list)  # what to tell the user when it starts


Factory = Callable[[PlatformOptions], Connection]


def _need(value: Any, flag: str, platform: str) -> Any:
    if value in (None, ""):
        raise CohostError(f"--platform {platform} needs {flag}")
    return value


def _console(opts: PlatformOptions, why: str) -> tuple[ReplySink, str]:
    from ..sinks.console import ConsoleRelaySink

    sink = ConsoleRelaySink(port=opts.console_port, token=opts.console_token)
    where = f"ws://127.0.0.1:{opts.console_port}/" + (" (token from --console-token)" if opts.console_token else "")
    return sink, f"{why}: replies go to the overlay and to console tools connected to {where}"


def _bilibili(opts: PlatformOptions) -> Connection:
    from ..sinks.bilibili import BilibiliSink
    from .bilibili.client import BilibiliClient
    from .bilibili.credentials import BilibiliCredentials

    room = _need(opts.room, "--room ROOM_ID (the number in live.bilibili.com/ROOM_ID)", "bilibili")
    try:
        room_id = int(room)
    except ValueError:
        raise CohostError(f"--room must be a Bilibili room number, not {room!r}") from None
    credentials = BilibiliCredentials.from_env()
    source = BilibiliClient(room_id, credentials=credentials, products=opts.products or None)
    notes = []
    sink: ReplySink | None = None
    max_chars = opts.max_chars or 20
    if credentials.can_send:
        sink = BilibiliSink(room_id, credentials=credentials, max_chars=max_chars, source=source)
    else:
        sink, note = _console(opts, "no Bilibili login in the environment (COHOST_BILIBILI_SESSDATA and "
                                    "COHOST_BILIBILI_BILI_JCT)")
        notes.append(note)
    if not credentials.logged_in:
        notes.append("not logged in: Bilibili masks viewers' names and ids for guests")
    return Connection(source, sink, max_chars, notes)


def _bilibili_open(opts: PlatformOptions) -> Connection:
    from .bilibili.open_platform import OpenPlatformClient, OpenPlatformCredentials

    code = _need(opts.code, "--code 身份码 (the streamer's code from the live centre)", "bilibili-open")
    source = OpenPlatformClient(code, credentials=OpenPlatformCredentials.from_env(), products=opts.products or None)
    sink, note = _console(opts, "the Bilibili open platform has no send route")
    return Connection(source, sink, opts.max_chars or 20, [note])


def load_signer(spec: str | None) -> Callable[..., Any] | None:
    """A signature hook named "package.module:function" (importable from where cohost runs)."""
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise CohostError(f"{ENV_DOUYIN_SIGNER} must look like package.module:function, not {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise CohostError(f"{ENV_DOUYIN_SIGNER}={spec}: {e}") from None
    if not callable(fn):
        raise CohostError(f"{ENV_DOUYIN_SIGNER}={spec} is not a function")
    return fn


def _douyin(opts: PlatformOptions) -> Connection:
    from .douyin.client import DouyinClient

    web_rid = _need(opts.room, "--room WEB_RID (the number in live.douyin.com/WEB_RID)", "douyin")
    source = DouyinClient(str(web_rid), signer=load_signer(os.environ.get(ENV_DOUYIN_SIGNER)),
                          product_ids=opts.products or None, links=opts.links or None)
    sink, note = _console(opts, "Douyin has no public send route for an account's chat")
    return Connection(source, sink, opts.max_chars, [note])


def _relay(opts: PlatformOptions) -> Connection:
    from .relay import RelaySource, load_mapping

    mapping = load_mapping(_need(opts.mapping, "--mapping NAME_OR_FILE", "relay"))
    source = RelaySource(opts.url, mapping)
    sink, note = _console(opts, "a relay only listens")
    return Connection(source, sink, opts.max_chars, [note])


PLATFORMS: dict[str, Factory] = {
    "bilibili": _bilibili,
    "bilibili-open": _bilibili_open,
    "douyin": _douyin,
    "relay": _relay,
}


def connect(platform: str, opts: PlatformOptions) -> Connection:
    factory = PLATFORMS.get(platform)
    if factory is None:
        raise CohostError(f"unknown platform {platform!r}; one of: {', '.join(PLATFORMS)}")
    return factory(opts)


__all__ = ["PLATFORMS", "Connection", "PlatformOptions", "connect", "load_signer"]
