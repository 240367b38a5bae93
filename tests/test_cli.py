"""The `cohost` command line as catalog owners run it: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def cohost(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    cfg = cache / "config.yaml"
    if not cfg.exists():
        cfg.write_text(f"cache_dir: {cache}\n", encoding="utf-8")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "cohost", "--config", str(cfg), *args], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=600)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_eval_faq_writes_one_line_per_case(tmp_path, cache_dir):
    """Each case gets {id, answered, faq_id, product_id, reply, latency_ms}; extra case keys are ignored."""
    cases = tmp_path / "cases.jsonl"
    rows = [{"id": "a", "text": "3号多少钱", "on_stage": None, "note": "ignored"},
            {"id": "b", "text": "有口袋吗", "on_stage": "dress"},
            {"id": "c", "text": "包油吗"}]
    cases.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = cohost("eval", "faq", "--catalog", str(ROOT / "knowledge/shop.yaml"), "--cases", str(cases),
               "--output", str(out), cache=cache_dir)
    assert r.returncode == 0, r.stderr
    assert "3 cases" in r.stdout
    got = read_jsonl(out)
    assert [g["id"] for g in got] == ["a", "b", "c"]
    for g in got:
        assert set(g) == {"id", "answered", "faq_id", "product_id", "reply", "latency_ms"}
        assert isinstance(g["latency_ms"], float)
    a, b, c = got
    assert a["answered"] and a["faq_id"] == "kids_shoes.price" and a["product_id"] == "kids_shoes"
    assert "129" in a["reply"]
    assert not b["answered"] and b["faq_id"] is None and b["reply"] is None
    assert c["answered"] and c["faq_id"] == "ship_free" and c["product_id"] is None


def test_eval_faq_reports_precision_on_labelled_cases(tmp_path, cache_dir):
    """On the shipped held-out cases the engine is precise and abstains on what the catalog does not say."""
    out = tmp_path / "test.jsonl"
    r = cohost("eval", "faq", "--catalog", str(ROOT / "knowledge/shop.yaml"),
               "--cases", str(ROOT / "knowledge/eval/faq_test.jsonl"), "--output", str(out), cache=cache_dir)
    assert r.returncode == 0, r.stderr
    cases = read_jsonl(ROOT / "knowledge/eval/faq_test.jsonl")
    got = {g["id"]: g for g in read_jsonl(out)}
    answered = [c for c in cases if got[c["id"]]["answered"]]
    correct = [c for c in answered if got[c["id"]]["faq_id"] == c["expect_faq"]]
    unanswerable = [c for c in cases if c["expect_faq"] is None]
    silent = [c for c in unanswerable if not got[c["id"]]["answered"]]
    assert len(answered) >= 20
    assert len(correct) / len(answered) >= 0.9
    assert len(silent) / len(unanswerable) >= 0.9
    assert "precision" in r.stdout


def test_eval_intent_on_the_dev_set(tmp_path, cache_dir):
    """Intent labels come from the seven classes and macro-F1 on the held-out dev set stays high."""
    out = tmp_path / "intent.jsonl"
    r = cohost("eval", "intent", "--cases", str(ROOT / "knowledge/intent/dev.jsonl"), "--output", str(out),
               cache=cache_dir)
    assert r.returncode == 0, r.stderr
    from cohost.evaluation import score_intent

    got = read_jsonl(out)
    assert all(set(g) == {"id", "intent", "latency_ms"} for g in got)
    score = score_intent(read_jsonl(ROOT / "knowledge/intent/dev.jsonl"), got)
    assert score["macro_f1"] >= 0.85, score


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "a", "text": "x"}\nnot json\n', "line 2: not JSON"),
    ('{"id": "a"}\n', "missing key 'text'"),
    ('["a"]\n', "expected a JSON object"),
])
def test_eval_rejects_bad_case_files_clearly(tmp_path, cache_dir, content, message):
    """A malformed cases file is an error naming the line, with no output written."""
    cases = tmp_path / "bad.jsonl"
    cases.write_text(content, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = cohost("eval", "faq", "--catalog", str(ROOT / "knowledge/shop.yaml"), "--cases", str(cases),
               "--output", str(out), cache=cache_dir)
    assert r.returncode == 2
    assert message in r.stderr
    assert not out.exists()


def test_eval_rejects_an_invalid_catalog(tmp_path, cache_dir):
    """An invalid catalog fails with the file, path and field; nothing is evaluated."""
    bad = tmp_path / "shop.yaml"
    bad.write_text("shop: {name: x}\nproducts:\n  - {id: Bad!, name: y}\n", encoding="utf-8")
    cases = tmp_path / "c.jsonl"
    cases.write_text('{"id": "a", "text": "多少钱"}\n', encoding="utf-8")
    r = cohost("eval", "faq", "--catalog", str(bad), "--cases", str(cases), "--output", str(tmp_path / "o"),
               cache=cache_dir)
    assert r.returncode == 2
    assert "products[0].id" in r.stderr and str(bad) in r.stderr


def test_bench_retrieval_json(cache_dir):
    """`cohost bench retrieval --json` prints one JSON object with the contracted figures."""
    r = cohost("bench", "retrieval", "--json", "-n", "40", "--batch", "8", cache=cache_dir)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    for key in ("bare_p50_ms", "bare_p95_ms", "full_p50_ms", "full_p95_ms", "batch_msgs_per_s"):
        assert isinstance(report[key], float) and report[key] > 0
    assert report["bare_p50_ms"] <= report["bare_p95_ms"]
    assert report["cached_p50_ms"] < report["full_p50_ms"]


def test_bench_loop_json(cache_dir):
    """`cohost bench loop` drives a real server from a load generator in another process: every message
    has an outcome, none is answered after its deadline, and the contracted figures are printed."""
    r = cohost("bench", "loop", "--rate", "40", "--duration", "2", "--cancel-trials", "2", "--json", cache=cache_dir)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["sent"] == 80 and report["outcomes"]["received"] == 80 and report["unaccounted"] == 0
    assert report["replied_messages"] > 0 and report["replies_after_deadline"] == 0
    for key in ("bare_p95_ms", "decide_p95_ms", "reply_p50_ms", "reply_p95_ms", "reply_p99_ms",
                "server_reply_p95_ms", "peak_rss_mb"):
        assert report[key] > 0, key
    assert report["cancel_trials"] == 2 and report["llm_streams_closed_by_client"] >= 2


def test_terminal_demo_answers_sample_questions(cache_dir):
    """`cohost demo --terminal` prints replies from the sample catalog and stays silent on spam."""
    r = cohost("demo", "--terminal", cache=cache_dir)
    assert r.returncode == 0, r.stderr
    assert "@桃子" in r.stdout and "159元" in r.stdout
    assert "spam" in r.stdout


def test_live_demo_replays_the_recording_and_prints_replies(cache_dir):
    """`cohost demo` starts the server, prints the overlay URL, replays the recording (its voice lines too) and
    prints chat replies and what the streamer was heard saying."""
    r = cohost("demo", "--speed", "60", "--port", "0", "--exit-after-replay", cache=cache_dir)
    assert r.returncode == 0, r.stderr
    assert "/overlay?room=demo" in r.stdout
    replies = [line for line in r.stdout.splitlines() if line.startswith("💬 @")]
    assert len(replies) >= 10
    assert "dropped_deadline" in r.stdout or "answered" in r.stdout
    assert "Ctrl-C" not in r.stdout
    # The voice lines are streamed in real time and heard: the fryer is put on stage by voice.
    assert "🎙 主播：下面这款空气炸锅" in r.stdout
    assert "voice_product_switch 1" in r.stdout and "transcripts 3" in r.stdout


def read_until(proc: subprocess.Popen, pattern: str, timeout: float) -> tuple[str, threading.Thread]:
    """What ``proc`` printed up to the first line matching ``pattern`` (or all of it when it exits or times
    out), and the thread that goes on reading its output: join it once the process has ended."""
    import queue
    import re

    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        out.append(line)
        if re.search(pattern, line):
            break
    return "".join(out), reader


def test_live_demo_stays_up_after_the_replay_until_ctrl_c(cache_dir):
    """After the replay `cohost demo` says the server stays up until Ctrl-C and gives the overlay and admin
    links; the overlay still answers, and Ctrl-C stops it cleanly (exit 0)."""
    import re
    import signal
    import urllib.request

    cfg = cache_dir / "config.yaml"
    if not cfg.exists():
        cfg.write_text(f"cache_dir: {cache_dir}\n", encoding="utf-8")
    demo = subprocess.Popen([sys.executable, "-m", "cohost", "--config", str(cfg), "demo", "--speed", "200",
                             "--port", "0"], cwd=cache_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1"))
    reader = None
    try:
        out, reader = read_until(demo, r"^\s+admin:\s", timeout=240)
        assert "the server stays up until you press Ctrl-C" in out, out[-3000:]
        tail = out[out.index("stays up"):]
        overlay = re.search(r"overlay: (http://\S+/overlay\?room=demo)", tail)
        admin = re.search(r"admin: +(http://\S+/admin)#token=\S+", tail)
        assert overlay and admin, tail
        time.sleep(0.5)
        assert demo.poll() is None, "the demo exited after the replay"
        for url in (overlay.group(1), admin.group(1)):
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200 and "<html" in resp.read().decode("utf-8").lower(), url
        demo.send_signal(signal.SIGINT)
        assert demo.wait(15) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        if reader is not None:
            reader.join(10)
        demo.stdout.close()


def test_run_and_replay_commands_talk_over_a_real_socket(tmp_path, cache_dir):
    """`cohost run --port 0` serves; `cohost replay` plays a recording into it and prints the replies."""
    import re
    import signal
    import time

    cfg = cache_dir / "config.yaml"
    if not cfg.exists():
        cfg.write_text(f"cache_dir: {cache_dir}\n", encoding="utf-8")
    server = subprocess.Popen([sys.executable, "-m", "cohost", "--config", str(cfg), "run", "--port", "0"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, PYTHONWARNINGS="ignore", PYTHONUNBUFFERED="1"))
    try:
        port = None
        deadline = time.monotonic() + 120
        while port is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            m = re.search(r"live on [\d.]+:(\d+)", line)
            port = int(m.group(1)) if m else None
        assert port, "server did not report its port"
        rec = tmp_path / "rec.jsonl"
        rec.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in [
            {"type": "product", "product_id": "fryer", "ts": 1.0},
            {"type": "chat", "id": "a", "user": {"id": "u", "name": "甲"}, "text": "多少瓦", "ts": 1.5},
            {"type": "bogus", "ts": 2.0}]) + "\n", encoding="utf-8")
        r = cohost("replay", str(rec), "--port", str(port), "--room", "cli", "--speed", "5", cache=cache_dir)
        assert r.returncode == 0, r.stderr
        assert "1500W" in r.stdout
        assert "sent 3 events, 1 replies, 1 errors" in r.stdout
        # `cohost admin-token` links to the port this server chose, not the config's 8765.
        r = cohost("admin-token", cache=cache_dir)
        assert r.returncode == 0 and f":{port}/admin#token=" in r.stderr, r.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        server.stdout.close()
    from cohost.config import load_config
    from cohost.server.app import server_file_path

    assert not server_file_path(load_config(str(cfg))).exists()  # removed on the way out


def test_replay_reports_an_unreachable_server(tmp_path, cache_dir):
    """Replaying into a port nobody listens on is a clear error, not a traceback."""
    rec = tmp_path / "rec.jsonl"
    rec.write_text('{"type": "product", "product_id": "fryer"}\n', encoding="utf-8")
    r = cohost("replay", str(rec), "--port", "9", cache=cache_dir)
    assert r.returncode == 2
    assert "cannot reach the server" in r.stderr
