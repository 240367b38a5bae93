"""A plain (not editable) install works anywhere: build the wheel, install it into a fresh venv, and run
`cohost run` from an empty directory with no config file.

What it shows: the wheel carries every file cohost reads at run time (package-data in pyproject.toml:
the overlay and admin pages, the lexicon, the prompts, the sample shop, the demo recordings), and nothing
is looked up in the checkout: the installed cohost serves /overlay and /admin, answers from the packaged
sample shop, and keeps its state in the working directory.

No network: the wheel is built with --no-build-isolation (the dev venv's setuptools) and installed with
--no-deps --no-index. The dependencies cannot be downloaded here, so the fresh venv (made --without-pip
and without system site-packages) gets them from the dev venv through a .pth line, which is written only
after the wheel is installed: a path line in a .pth adds that directory to sys.path after the venv's own
site-packages and runs none of its .pth files, so the dev venv's editable hook for the checkout is never
installed, and the test asserts that `cohost` is imported from the fresh venv.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

# Files cohost reads at run time, as the wheel must carry them.
PACKAGE_DATA = [
    "cohost/server/static/overlay.html",
    "cohost/server/static/admin.html",
    "cohost/understand/lexicon.txt",
    "cohost/understand/intent_seed.jsonl",
    "cohost/retrieval/decider.json",
    "cohost/prompts/talking_points.txt",
    "cohost/prompts/rephrase.txt",
    "cohost/samples/shop.yaml",
    "cohost/samples/demo/session.jsonl",
    "cohost/samples/demo/terminal.jsonl",
    "cohost/samples/voice/fryer.wav",
    "cohost/samples/voice/guangdong.wav",
    "cohost/samples/voice/filler.wav",
    "cohost/samples/voice/price.wav",
    "cohost/sources/mappings/douyin_barrage_grab.yaml",
    "cohost/sources/mappings/example.yaml",
    "cohost/sources/mappings/oba_live_tool.yaml",
]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of what an sdist holds, so build/ and *.egg-info stay out of the checkout, and
    the build cannot lean on anything outside the package."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "cohost", src / "cohost", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "-q", "-w", str(dist), str(src)])
    (wheel,) = dist.glob("cohost-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--disable-pip-version-check", "-q", str(wheel)])
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_cohost_test_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)), encoding="utf-8")
    return venv


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", PYTHONWARNINGS="ignore",
               PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", COHOST_ADMIN_TOKEN="install-test-token")
    for name in ("COHOST_INGEST_TOKEN", "COHOST_OVERLAY_TOKEN"):
        env.pop(name, None)
    return env


def wait_for_port(proc: subprocess.Popen, timeout: float) -> tuple[int | None, str, threading.Thread]:
    """Read the server's output until it reports its port; the reader goes on draining it in a thread."""
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
        if m := re.search(r"live on [\d.]+:(\d+)", line):
            return int(m.group(1)), "".join(out), reader
    return None, "".join(out), reader


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode("utf-8")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_runtime_files(wheel):
    """Every file cohost reads at run time is in the wheel, and no data from outside the package."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert [f for f in PACKAGE_DATA if f not in names] == []
    assert all(n.startswith(("cohost/", "cohost-")) for n in names), sorted(names)


def test_installed_wheel_runs_from_another_directory(tmp_path, wheel):
    """`pip install` of the wheel into a fresh venv, then `cohost run` from an empty directory with no
    config: /healthz, /overlay and /admin answer, the sample shop answers a question sent over the ingest
    websocket, and the store is made in the working directory, not in the checkout. `cohost demo --terminal`
    then runs on the packaged demo danmaku."""
    venv = fresh_venv(tmp_path, wheel)
    workdir = tmp_path / "anywhere"
    workdir.mkdir()
    env = clean_env(venv)

    where = run([str(venv / "bin" / "python"), "-c", "import cohost; print(cohost.__file__)"],
                cwd=workdir, env=env).stdout.strip()
    assert Path(where).is_relative_to(venv), where
    assert not Path(where).is_relative_to(ROOT)

    server = subprocess.Popen([str(venv / "bin" / "cohost"), "run", "--port", "0"], cwd=workdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    reader = None
    try:
        port, out, reader = wait_for_port(server, timeout=180)
        assert port, f"the installed server did not start:\n{out}"
        base = f"http://127.0.0.1:{port}"
        status, body = get(f"{base}/healthz")
        health = json.loads(body)
        assert status == 200 and health["ok"] is True and health["shop"] == "default", health
        status, body = get(f"{base}/overlay?room=install")
        assert status == 200 and "<html" in body.lower() and "/ws/overlay" in body
        status, body = get(f"{base}/admin")
        assert status == 200 and "<html" in body.lower()

        rec = tmp_path / "rec.jsonl"
        rec.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in [
            {"type": "product", "product_id": "fryer", "ts": 1.0},
            {"type": "chat", "id": "a", "user": {"id": "u", "name": "甲"}, "text": "多少瓦", "ts": 1.5}]) + "\n",
            encoding="utf-8")
        r = run([str(venv / "bin" / "cohost"), "replay", str(rec), "--port", str(port), "--room", "install",
                 "--speed", "10"], cwd=workdir, env=env)
        assert "1500W" in r.stdout and "sent 2 events, 1 replies, 0 errors" in r.stdout, r.stdout
        assert (workdir / ".cohost" / "catalog.sqlite3").is_file()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(10)
            if reader is not None:
                reader.join(10)
            server.stdout.close()
    assert server.returncode == 0

    r = run([str(venv / "bin" / "cohost"), "demo", "--terminal"], cwd=workdir, env=env)
    assert "@桃子" in r.stdout and "159元" in r.stdout
