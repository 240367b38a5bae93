"""Fixtures shared by the Chromium page tests: one browser per module, the overlay harness, a page factory that
fails the test on script errors or dialogs, a room per test, and where screenshots go.

Import the ones a module uses (`from page_fixtures import browser, new_page`); pytest picks imported fixtures up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chromium import launched_browser
from overlay_harness import OverlayHarness
from playwright.sync_api import Browser, Page

__all__ = ["_harness_accepts", "browser", "harness", "new_page", "page", "room", "shots"]


@pytest.fixture(scope="module")
def harness() -> Iterator[OverlayHarness]:
    with OverlayHarness() as h:
        yield h


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launched_browser() as b:
        yield b


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $COHOST_SCREENSHOTS, else a temp dir (never the checkout: conftest checks that)."""
    env = os.environ.get("COHOST_SCREENSHOTS")
    path = Path(env) if env else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
def _harness_accepts(harness: OverlayHarness) -> Iterator[None]:
    """A test that fails mid-way must not leave the harness refusing connections for the next one."""
    yield
    harness.accept_connections()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room per test, so one test's last state never leaks into another's page."""
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Opens pages (each in its own context) and fails the test on page errors or dialogs in any of them."""
    contexts: list[Any] = []
    errors: list[str] = []
    dialogs: list[str] = []

    def on_console(msg: Any) -> None:
        # A refused websocket (the reconnect tests) logs a console error by design; anything else is a bug.
        if msg.type == "error" and "WebSocket" not in msg.text:
            errors.append(msg.text)

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def make(width: int = 1920, height: int = 1080, scale: float = 1, bypass_csp: bool = True) -> Page:
        # bypass_csp: Playwright's wait_for_function evaluates strings, which the page's CSP forbids. It also means
        # the escaping test checks the page's own DOM handling, not the CSP safety net.
        context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale,
                                      locale="zh-CN", bypass_csp=bypass_csp)
        contexts.append(context)
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.on("console", on_console)
        pg.on("dialog", on_dialog)
        return pg

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
    assert not errors, f"page errors: {errors}"
    assert not dialogs, f"page opened dialogs: {dialogs}"


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()
