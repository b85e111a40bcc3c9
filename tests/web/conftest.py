"""Browser tests of the verifier page: the app on a real loopback HTTP server, Debian's Chromium driven by
Playwright (its own browser download does not work offline; `make test` installs the chromium package).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

ROOT = Path(__file__).parents[2]
DIST = ROOT / "web" / "verifier" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "verifier"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


def require_page_and_browser() -> None:
    """Fail (never skip) with the command that fixes a missing prerequisite."""
    if not (DIST / "app.js").is_file():
        pytest.fail("the verifier page is not built: run `make` (cd web/verifier && npm ci && npm run build)")
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install -y chromium)")


class LiveServer:
    """The application served over HTTP on 127.0.0.1 by werkzeug, in a thread."""

    def __init__(self, app: Flask) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        """Stop answering: the port is closed, as if the network were gone."""
        if self.running:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self.running = False


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    require_page_and_browser()
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


def launch(driver: Any, extra_args: tuple[str, ...] = ()) -> Any:
    """Debian's Chromium, headless, with no background traffic to the (closed) internet."""
    return driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])


@pytest.fixture(scope="session")
def browser(playwright_driver: Any) -> Iterator[Any]:
    require_page_and_browser()
    instance = launch(playwright_driver)
    yield instance
    instance.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
