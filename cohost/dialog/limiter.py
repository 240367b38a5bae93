"""Chat output limits: what a platform lets a bot post, and how often one viewer is answered.

Platforms throttle bots hard (Bilibili answers 10031 "频率过快" at about one message a second) and
suppress identical consecutive messages, so the limiter is checked before anything is sent, never
after. Pure state on an injected clock value: no sleeping, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict


class ChatLimiter:
    """Minimum interval between messages, maximum length, no identical consecutive messages."""

    def __init__(self, min_interval_s: float, max_chars: int):
        self.min_interval_s = min_interval_s
        self.max_chars = max_chars
        self.last_sent_at: float | None = None
        self.last_text: str | None = None

    def next_allowed(self) -> float:
        return float("-inf") if self.last_sent_at is None else self.last_sent_at + self.min_interval_s

    def ready(self, now: float) -> bool:
        return now >= self.next_allowed()

    def check(self, text: str, now: float) -> str | None:
        """Why text may not be sent now, or None when it may."""
        if not self.ready(now):
            return "rate limit"
        if len(text) > self.max_chars:
            return f"longer than {self.max_chars} characters"
        if text == self.last_text:
            return "identical to the previous message"
        return None

    def record(self, text: str, now: float) -> None:
        self.last_sent_at = now
        self.last_text = text


class UserCooldown:
    """At most one reply per viewer per cooldown, so one chatty viewer cannot take over the chat."""

    def __init__(self, cooldown_s: float, max_users: int = 50_000):
        self.cooldown_s = cooldown_s
        self._last: OrderedDict[str, float] = OrderedDict()
        self._max_users = max_users

    def allowed(self, user_id: str, now: float) -> bool:
        last = self._last.get(user_id)
        return last is None or now - last >= self.cooldown_s

    def record(self, user_id: str, now: float) -> None:
        self._last[user_id] = now
        self._last.move_to_end(user_id)
        while len(self._last) > self._max_users:  # bounded memory in a room with a million viewers
            self._last.popitem(last=False)
