"""Browser test infrastructure: system Chromium, a live demo server, signed-in pages."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET_KEY = "browser-tests-not-a-secret-0123456789abcdef"
STARTUP_TIMEOUT = 30.0
# Where the live server keeps its data (its database and the emulator's state).
LIVE_DATA_DIR = pytest.StashKey[Path]()
DEMO_DATA_TIMEOUT = 600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test in this directory as a browser test."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's Chromium rather than a Playwright-downloaded browser."""
    args = {
        **browser_type_launch_args,
        "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS],
    }
    # Without the system browser, fall back to Playwright's own so a laptop still works.
    if CHROMIUM.exists():
        args["executable_path"] = str(CHROMIUM)
    return args


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(data_dir: Path) -> dict[str, str]:
    """The environment minus anything that would point the app at real Spotify or real data."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPOTIFY_", "MTM_"))
    }
    env["MTM_DATA_DIR"] = str(data_dir)
    env["MTM_SECRET_KEY"] = SECRET_KEY
    # The suite signs in a hundred times from one address, far past the sign-in limit.
    env["MTM_RATE_LIMITS"] = "off"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _wait_until_healthy(proc: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(
                    f"mtm serve exited with {proc.returncode} before answering /healthz:\n"
                    f"{log.read_text(errors='replace')}",
                    pytrace=False,
                )
            try:
                if client.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    _stop(proc)
    pytest.fail(
        f"mtm serve did not answer /healthz within {STARTUP_TIMEOUT:.0f} s:\n"
        f"{log.read_text(errors='replace')}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def live_server(pytestconfig: pytest.Config) -> Iterator[str]:
    """Base URL of `mtm serve` running in demo mode on three years of generated plays."""
    external = pytestconfig.getoption("base_url", default=None)
    if external:
        # --base-url points the browser tests at a server someone already runs.
        yield str(external).rstrip("/")
        return

    with tempfile.TemporaryDirectory(prefix="mtm-browser-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        data_dir.mkdir()
        pytestconfig.stash[LIVE_DATA_DIR] = data_dir
        env = _server_env(data_dir)
        # cwd is the temp dir so a developer's .env in the repo cannot leak in.
        seeded = subprocess.run(
            [sys.executable, "-m", "mtm", "demo-data",
             "--plays", "20000", "--years", "3", "--seed", "7"],
            cwd=root, env=env, capture_output=True, text=True,
            timeout=DEMO_DATA_TIMEOUT, check=False,
        )
        if seeded.returncode != 0:
            pytest.fail(
                f"mtm demo-data failed ({seeded.returncode}):\n{seeded.stdout}\n{seeded.stderr}",
                pytrace=False,
            )

        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = root / "server.log"
        # A file, not a pipe: a chatty server would block once a pipe buffer filled up.
        with log.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mtm", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=root, env=env, stdin=subprocess.DEVNULL,
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_healthy(proc, base, log)
            yield base
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def live_data_dir(live_server: str, pytestconfig: pytest.Config) -> Path | None:
    """The live server's data directory; None for a server given with --base-url."""
    return pytestconfig.stash.get(LIVE_DATA_DIR, None)


@pytest.fixture(scope="session")
def base_url(live_server: str) -> str:
    """Relative URLs in page.goto() resolve against the live server."""
    return live_server


def sign_in(page: Page, live_server: str) -> Page:
    """Sign in as the emulator's default account through plain links and forms."""
    page.goto(f"{live_server}/login")
    expect(page.get_by_role("heading", name=re.compile("authorize", re.IGNORECASE))).to_be_visible()
    page.get_by_role("button", name="Agree").click()
    page.wait_for_url(f"{live_server}/")
    return page


@pytest.fixture
def signed_in_page(page: Page, live_server: str) -> Page:
    """A page signed in as the demo account."""
    return sign_in(page, live_server)


@pytest.fixture
def nojs_page(new_context: Any, live_server: str) -> Page:
    """A page with JavaScript off, signed in as the demo account; its context closes after."""
    # pytest-playwright's new_context closes the context and keeps its failure artifacts.
    context: BrowserContext = new_context(java_script_enabled=False)
    return sign_in(context.new_page(), live_server)
