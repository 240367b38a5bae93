"""Chat output limits: what a platform lets a bot post, and how often one viewer is answered.

Platforms throttle bots hard (Bilibili answers 10031 "频率过快" at about one message a second) and
suppress identical consecutive messages, so the limiter is checked before anything is sent, never
after. Pure state on an injected clock value: no sleeping, no I/O.
"""

from __future__ import annotations

from collections import OrderedDict

# A platform that answers "too fast" gets messages this much less often each time, up to MAX_SLOWDOWN times
# the configured interval; every SPEED_UP_AFTER sends that go through win back one step.
SLOWDOWN_STEP = 1.5
MAX_SLOWDOWN = 8.0
SPEED_UP_AFTER = 20


class ChatLimiter:
    """Minimum interval between messages, maximum length, no identical consecutive messages."""

    def __init__(self, min_interval_s: float, max_chars: int):
        self.base_interval_s = min_interval_s
        self.min_interval_s = min_interval_s
        self.max_chars = max_chars
        self.last_sent_at: float | None = None
        self.last_text: str | None = None
        self.hold_until: float | None = None   # a platform's "retry after"
        self._ok_streak = 0

    def next_allowed(self) -> float:
        t = float("-inf") if self.last_sent_at is None else self.last_sent_at + self.min_interval_s
        return t if self.hold_until is None else max(t, self.hold_until)

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

    def unrecord(self, text: str, previous: str | None) -> None:
        """A send failed: the platform never showed text, so sending it again is not a repeat."""
        if self.last_text == text:
            self.last_text = previous

    def slow_down(self, now: float, retry_after_s: float | None = None) -> None:
        """The platform said "too fast": send less often from now on, and not before retry_after_s."""
        self._ok_streak = 0
        self.min_interval_s = min(self.min_interval_s * SLOWDOWN_STEP, self.base_interval_s * MAX_SLOWDOWN)
        if retry_after_s is not None:
            self.hold(now, retry_after_s)

    def hold(self, now: float, seconds: float) -> None:
        self.hold_until = max(self.hold_until or now, now + max(0.0, seconds))

    def sent_ok(self) -> None:
        self._ok_streak += 1
        if self._ok_streak >= SPEED_UP_AFTER and self.min_interval_s > self.base_interval_s:
            self._ok_streak = 0
            self.min_interval_s = max(self.base_interval_s, self.min_interval_s / SLOWDOWN_STEP)


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
