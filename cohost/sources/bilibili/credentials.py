"""The Bilibili account a room posts from, read from the environment only (never from config files,
which end up in backups and screenshots).

    COHOST_BILIBILI_SESSDATA   the SESSDATA cookie (login session)
    COHOST_BILIBILI_BILI_JCT   the bili_jct cookie (the CSRF token /msg/send wants as csrf and csrf_token)
    COHOST_BILIBILI_BUVID3     the buvid3 cookie (device id; without it the server answers -352 more often)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_SESSDATA = "COHOST_BILIBILI_SESSDATA"
ENV_BILI_JCT = "COHOST_BILIBILI_BILI_JCT"
ENV_BUVID3 = "COHOST_BILIBILI_BUVID3"


@dataclass(frozen=True)
class BilibiliCredentials:
    sessdata: str = ""
    bili_jct: str = ""
    buvid3: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BilibiliCredentials:
        env = os.environ if environ is None else environ
        return cls(env.get(ENV_SESSDATA, "").strip(), env.get(ENV_BILI_JCT, "").strip(),
                   env.get(ENV_BUVID3, "").strip())

    @property
    def logged_in(self) -> bool:
        return bool(self.sessdata)

    @property
    def can_send(self) -> bool:
        """Posting danmaku needs the session and its CSRF token."""
        return bool(self.sessdata and self.bili_jct)

    def cookies(self) -> dict[str, str]:
        jar = {"SESSDATA": self.sessdata, "bili_jct": self.bili_jct, "buvid3": self.buvid3}
        return {k: v for k, v in jar.items() if v}

    def __repr__(self) -> str:  # never print a session cookie into a log
        return (f"BilibiliCredentials(sessdata={'set' if self.sessdata else 'unset'}, "
                f"bili_jct={'set' if self.bili_jct else 'unset'}, buvid3={'set' if self.buvid3 else 'unset'})")


__all__ = ["ENV_BILI_JCT", "ENV_BUVID3", "ENV_SESSDATA", "BilibiliCredentials"]
