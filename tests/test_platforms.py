"""`cohost run --platform`, `cohost decode` and `cohost bench decode`: the platform adapters from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import websockets

from cohost.errors import CohostError
from cohost.sources.platforms import PlatformOptions, connect, load_signer

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CAPTURE = SHARED / "bilibili" / "05_ver0_op5_DANMU_MSG.bin"


def cohost(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cohost", *args], capture_output=True, text=True, timeout=120, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_platform_says_what_it_needs(monkeypatch):
    """Missing flags and missing hooks are named, not a traceback."""
    monkeypatch.delenv("COHOST_DOUYIN_SIGNER", raising=False)
    for platform, opts, needle in [("bilibili", PlatformOptions(), "--room"),
                                   ("bilibili", PlatformOptions(room="abc"), "room number"),
                                   ("douyin", PlatformOptions(), "--room"),
                                   ("douyin", PlatformOptions(room="123"), "signature"),
                                   ("relay", PlatformOptions(), "--mapping"),
                                   ("kuaishou", PlatformOptions(), "unknown platform")]:
        with pytest.raises(CohostError, match=needle):
            connect(platform, opts)


def test_a_signer_hook_is_named_module_colon_function():
    assert load_signer("os.path:join") is os.path.join
    for bad in ("nocolon", "no_such_module_xyz:f", "os:no_such_function"):
        with pytest.raises(CohostError):
            load_signer(bad)


def test_bilibili_without_a_login_posts_replies_to_the_console_relay(monkeypatch):
    """No cookies in the environment: the room is still heard, replies go to console tools, and it says so."""
    for var in ("COHOST_BILIBILI_SESSDATA", "COHOST_BILIBILI_BILI_JCT", "COHOST_BILIBILI_BUVID3"):
        monkeypatch.delenv(var, raising=False)
    conn = connect("bilibili", PlatformOptions(room="21452505"))
    assert conn.source.name == "bilibili:21452505" and conn.max_chars == 20
    assert type(conn.sink).__name__ == "ConsoleRelaySink"
    assert any("no Bilibili login" in n for n in conn.notes)
    monkeypatch.setenv("COHOST_BILIBILI_SESSDATA", "s")
    monkeypatch.setenv("COHOST_BILIBILI_BILI_JCT", "j")
    assert type(connect("bilibili", PlatformOptions(room="21452505")).sink).__name__ == "BilibiliSink"


@pytest.mark.skipif(not CAPTURE.is_file(), reason="needs ../shared/data/bilibili")
def test_decode_prints_the_events_of_a_capture():
    """`cohost decode --platform bilibili FILE` prints one JSON line per decoded item."""
    out = cohost("decode", "--platform", "bilibili", str(CAPTURE))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    chats = [r["event"] for r in rows if r.get("kind") == "event" and r["event"]["type"] == "chat"]
    assert [(c["text"], c["user"]["name"]) for c in chats] == [("what", "ProgramRipper")]
    missing = cohost("decode", "--platform", "douyin", "/no/such/file")
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_bench_decode_prints_packets_per_second():
    out = cohost("bench", "decode", "--seconds", "0.2", "--json")
    assert out.returncode == 0, out.stderr
    figures = json.loads(out.stdout)
    assert figures["bilibili_packets_per_s"] > 0 and figures["douyin_frames_per_s"] > 0


@pytest.mark.slow
def test_run_with_a_relay_answers_the_tools_chat_on_the_console(tmp_path):
    """`cohost run --platform relay`: a chat re-broadcast by a DouyinBarrageGrab-style tool on a local
    websocket is answered, and the reply reaches a console tool on --console-port."""
    console_port = free_port()

    async def main():
        frames: asyncio.Queue[str] = asyncio.Queue()

        async def tool(ws):  # the grabber: pushes what the test queues, until the connection closes
            async def pump():
                while True:
                    await ws.send(await frames.get())

            pumping = asyncio.create_task(pump())
            await ws.wait_closed()
            pumping.cancel()

        async with websockets.serve(tool, "127.0.0.1", 0) as grabber:
            tool_port = grabber.sockets[0].getsockname()[1]
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cohost", "run", "--port", "0", "--platform", "relay",
                "--mapping", "douyin_barrage_grab", "--url", f"ws://127.0.0.1:{tool_port}", "--into", "dy",
                "--console-port", str(console_port), cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            try:
                assert proc.stdout is not None
                lines = []
                async with asyncio.timeout(90):
                    while not any("console tools" in line for line in lines):
                        line = (await proc.stdout.readline()).decode()
                        assert line, "".join(lines)
                        lines.append(line)
                assert any("→ room 'dy'" in line for line in lines), lines
                port = int(re.search(r"live on [\d.]+:(\d+)", "".join(lines)).group(1))
                async with asyncio.timeout(30):
                    while True:  # the console relay starts with the platform
                        try:
                            console = await websockets.connect(f"ws://127.0.0.1:{console_port}/")
                            break
                        except OSError:
                            await asyncio.sleep(0.1)
                async with console:
                    user = {"Id": 42, "Nickname": "小王"}
                    data = {"MsgId": 7301, "User": user, "Content": "包邮吗"}
                    await frames.put(json.dumps({"Type": 1, "Data": json.dumps(data, ensure_ascii=False)},
                                                ensure_ascii=False))
                    async with asyncio.timeout(30):
                        while True:
                            msg = json.loads(await console.recv())
                            if msg.get("type") == "reply":
                                break
                assert msg["text"].startswith("@小王 ") and msg["in_reply_to"] == "7301"
                stats = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/rooms/dy/stats")
                assert stats["stats"]["answered"] == 1 and stats["reply_owner"] == "relay:douyin_barrage_grab"
            finally:
                proc.send_signal(signal.SIGINT)
                try:
                    await asyncio.wait_for(proc.wait(), 15)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == 0

    asyncio.run(main())


def _get_json(url: str) -> dict:
    import urllib.request

    deadline = time.monotonic() + 10
    while True:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        if body["stats"].get("answered") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_douyin_products_on_stage_map_through_the_config_table_and_the_catalog_links(monkeypatch):
    """`platform.products` (promotion id → catalog id) first, then the catalog's link numbers (1号链接)."""
    from cohost.events import ProductEvent
    from cohost.sources.douyin import messages as m

    monkeypatch.setenv("COHOST_DOUYIN_SIGNER", "os.path:join")  # any callable: nothing is signed here
    conn = connect("douyin", PlatformOptions(room="123", products={"900": "fryer"}, links={2: "dress"}))
    frame = m.push_frame(m.response([m.product_change(1, [(900, 5, 1)]), m.product_change(2, [(901, 2, 1)])]))
    products = [e.product_id for e in conn.source.codec.feed(frame) if isinstance(e, ProductEvent)]
    assert products == ["fryer", "dress"]
