"""What the benchmarks that run `cohost run` in its own process share: a free port, the server's memory, the
demo's danmaku and percentiles."""

from __future__ import annotations

import json
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (0.0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def texts() -> list[str]:
    """The demo recording's chat lines: what the load generators send."""
    path = ROOT / "cohost" / "samples" / "demo" / "session.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows if r.get("type") == "chat"] or ["有大码吗"]
