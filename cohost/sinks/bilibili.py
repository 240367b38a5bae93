"""Posting a room's replies as danmaku in a Bilibili live room: ``POST /msg/send``.

The form is what the web player sends: ``msg``, ``roomid``, ``rnd`` (send time, seconds), ``color``
(16777215 white), ``fontsize`` (25), ``mode`` (1 scrolling), ``csrf`` and ``csrf_token`` (both the
bili_jct cookie), with the account's SESSDATA and bili_jct cookies (COHOST_BILIBILI_* environment
variables, see cohost.sources.bilibili.credentials).

The answer is JSON: code 0 is sent; 10031 (or a message saying 频率过快 / too fast) asks the room to slow
down; any other code is a failure with the platform's message. HTTP errors and timeouts are failures
worth retrying. Danmaku are short (20 characters for most accounts, more with a higher user level or a
guard): a longer reply is split at sentence ends into at most ``max_parts`` danmaku, or else cut to its
first part that still answers (compose._fit). The sink keeps its own minimum pace between posts too, so
a burst of retries cannot earn the account a ban even when the room's limiter is set looser.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from typing import Any

import httpx

from ..dialog.compose import _fit
from ..sources.bilibili.client import API_BASE, ORIGIN, USER_AGENT, BilibiliClient, http_proxy
from ..sources.bilibili.credentials import BilibiliCredentials
from .base import SENT, OutgoingReply, SendResult

TOO_FAST_CODES = frozenset({10031})  # 您发送弹幕的频率过快
TOO_FAST_WORDS = ("频率过快", "过于频繁", "太快", "too fast")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…])")


def split_sentences(text: str, limit: int, max_parts: int) -> list[str] | None:
    """text as at most max_parts danmaku of at most limit characters, cut only after a sentence ends;
    None when it cannot be (a sentence longer than limit, or too many parts)."""
    sentences = [s for s in _SENTENCE_END.split(text) if s.strip()]
    parts: list[str] = []
    for sentence in sentences:
        sentence = sentence.strip() if parts else sentence.rstrip()
        if len(sentence) > limit:
            return None
        if parts and len(parts[-1]) + len(sentence) <= limit:
            parts[-1] += sentence
        else:
            parts.append(sentence)
    return parts if 0 < len(parts) <= max_parts else None


class BilibiliSink:
    """Posts replies in one live room. ``room_id`` is the room's id; with ``source`` (the room's
    BilibiliClient) the real room id the client bootstrapped is used, so a short id (live.bilibili.com/6)
    posts to its real room.

    ``max_chars`` is the account's danmaku length (20 for most; 30 or 40 with a higher user level);
    ``min_interval_s`` the sink's own minimum time between two posts; ``too_fast_retry_s`` how long to
    hold off after a 'too fast' answer (Bilibili does not say); ``proxy`` as for BilibiliClient."""

    def __init__(self, room_id: int, *, credentials: BilibiliCredentials | None = None, api_base: str = API_BASE,
                 max_chars: int = 20, max_parts: int = 2, min_interval_s: float = 1.2,
                 too_fast_retry_s: float = 3.0, timeout_s: float = 4.0, max_wait_s: float = 1.5,
                 color: int = 16777215, fontsize: int = 25, mode: int = 1, user_agent: str = USER_AGENT,
                 name: str | None = None, client: httpx.AsyncClient | None = None,
                 proxy: str | bool | None = True, source: BilibiliClient | None = None):
        if max_chars < 1 or max_parts < 1:
            raise ValueError("max_chars and max_parts must be at least 1")
        self.room_id = room_id
        self.source = source
        self.name = name or f"bilibili:{room_id}"
        self.credentials = credentials if credentials is not None else BilibiliCredentials.from_env()
        self.url = api_base.rstrip("/") + "/msg/send"
        self.max_chars, self.max_parts = max_chars, max_parts
        self.min_interval_s, self.too_fast_retry_s = min_interval_s, too_fast_retry_s
        self.timeout_s, self.max_wait_s = timeout_s, max_wait_s
        self.color, self.fontsize, self.mode = color, fontsize, mode
        self.user_agent = user_agent
        self._client = client
        self._own_client = client is None
        self.proxy = proxy
        self._next_at = 0.0                 # monotonic time before which nothing is posted
        self._lock = asyncio.Lock()         # one post at a time: the pace is per account and room
        self._done: OrderedDict[int, int] = OrderedDict()  # reply id -> parts already posted (for retries)
        self.posted: list[str] = []         # what went out, in order (the last 200)
        self.stats = {"posted": 0, "too_fast": 0, "failed": 0, "split": 0, "shortened": 0}

    @property
    def real_room_id(self) -> int:
        boot = self.source.bootstrap if self.source is not None else None
        return boot.room_id if boot is not None else self.room_id

    def parts(self, text: str) -> list[str]:
        """The danmaku a reply goes out as."""
        text = text.strip()
        if len(text) <= self.max_chars:
            return [text]
        parts = split_sentences(text, self.max_chars, self.max_parts)
        if parts is not None:
            return parts
        return [_fit(text, self.max_chars)]

    async def send(self, reply: OutgoingReply) -> SendResult:
        if not self.credentials.can_send:
            return SendResult(False, "no Bilibili login: set COHOST_BILIBILI_SESSDATA and COHOST_BILIBILI_BILI_JCT")
        parts = self.parts(reply.text)
        if not parts or not parts[0]:
            return SendResult(False, "empty reply")
        if len(parts) > 1:
            self.stats["split"] += 1
        elif parts[0] != reply.text.strip():
            self.stats["shortened"] += 1
        async with self._lock:
            start = self._done.get(reply.reply_id, 0)
            for i in range(start, len(parts)):
                wait = self._next_at - time.monotonic()
                if wait > self.max_wait_s:
                    # The runner gives a send a few seconds; say when instead of sleeping through them.
                    return SendResult(False, "waiting for the sink's own pace", retry_after_s=wait)
                if wait > 0:
                    await asyncio.sleep(wait)
                result = await self._post(parts[i])
                if not result.ok:
                    return result
                self._remember(reply.reply_id, i + 1)
            self._done.pop(reply.reply_id, None)
        return SENT

    def _remember(self, reply_id: int, parts_done: int) -> None:
        self._done[reply_id] = parts_done
        self._done.move_to_end(reply_id)
        while len(self._done) > 256:
            self._done.popitem(last=False)

    async def _post(self, text: str) -> SendResult:
        c = self.credentials
        form = {"bubble": "0", "msg": text, "color": str(self.color), "mode": str(self.mode),
                "room_type": "0", "jumpfrom": "0", "reply_mid": "0", "reply_attr": "0", "replay_dmid": "",
                "statistics": '{"appId":100,"platform":5}', "fontsize": str(self.fontsize),
                "rnd": str(int(time.time())), "roomid": str(self.real_room_id), "csrf": c.bili_jct,
                "csrf_token": c.bili_jct}
        headers = {"User-Agent": self.user_agent, "Origin": ORIGIN, "Referer": f"{ORIGIN}/{self.room_id}",
                   "Cookie": "; ".join(f"{k}={v}" for k, v in c.cookies().items())}
        self._next_at = time.monotonic() + self.min_interval_s
        try:
            r = await self._http().post(self.url, data=form, headers=headers, timeout=self.timeout_s)
        except httpx.TimeoutException:
            self.stats["failed"] += 1
            return SendResult(False, "Bilibili did not answer in time", retry_after_s=self.min_interval_s)
        except httpx.HTTPError as e:
            self.stats["failed"] += 1
            return SendResult(False, f"HTTP error: {type(e).__name__}", retry_after_s=self.min_interval_s)
        return self._result(r, text)

    def _result(self, r: httpx.Response, text: str) -> SendResult:
        if r.status_code >= 500 or r.status_code == 429:
            self.stats["failed"] += 1
            return SendResult(False, f"HTTP {r.status_code}", retry_after_s=max(self.min_interval_s, 2.0),
                              slow_down=r.status_code == 429)
        try:
            body: Any = r.json()
        except ValueError:
            self.stats["failed"] += 1
            return SendResult(False, f"HTTP {r.status_code}, not JSON", retry_after_s=self.min_interval_s)
        code = body.get("code") if isinstance(body, dict) else None
        message = str((body.get("message") or body.get("msg") or "") if isinstance(body, dict) else "")
        if code == 0:
            self.stats["posted"] += 1
            self.posted.append(text)
            del self.posted[:-200]
            return SENT
        if code in TOO_FAST_CODES or any(w in message.lower() for w in TOO_FAST_WORDS):
            self.stats["too_fast"] += 1
            self._next_at = max(self._next_at, time.monotonic() + self.too_fast_retry_s)
            return SendResult(False, f"Bilibili: too fast ({code} {message})".strip(),
                              retry_after_s=self.too_fast_retry_s, slow_down=True)
        self.stats["failed"] += 1
        return SendResult(False, f"Bilibili refused ({code}): {message or 'no message'}")

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Cookies go in the header of each post, not a jar: a Set-Cookie answer must not change them.
            self._client = httpx.AsyncClient(follow_redirects=False, **http_proxy(self.proxy))
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None


__all__ = ["TOO_FAST_CODES", "BilibiliSink", "split_sentences"]
