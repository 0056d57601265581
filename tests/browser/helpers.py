"""Assertions shared by the browser tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page


def assert_no_horizontal_scroll(page: Page) -> None:
    """Fail if the page is wider than the viewport (content would scroll sideways)."""
    widths = page.evaluate(
        "() => ({scroll: document.documentElement.scrollWidth, inner: window.innerWidth})"
    )
    assert widths["scroll"] <= widths["inner"], (
        f"{page.url} scrolls horizontally: content is {widths['scroll']} px wide, "
        f"viewport {widths['inner']} px"
    )


class ConsoleErrors:
    """Collects console errors and uncaught exceptions of one page (CSP violations included).

    Chromium also logs "Failed to load resource" for a document answered with an error status;
    `expected_status_urls` names the URLs whose own error status is the point of the test.
    """

    def __init__(self, page: Page, expected_status_urls: tuple[str, ...] = ()) -> None:
        self.messages: list[str] = []
        self.expected_status_urls = expected_status_urls
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if url in self.expected_status_urls and message.text.startswith("Failed to load resource"):
            return
        self.messages.append(f"console.error at {url}: {message.text}")

    def assert_none(self) -> None:
        assert not self.messages, "errors in the browser console:\n" + "\n".join(self.messages)


def demo_plays(data_dir: Path | None) -> int | None:
    """Plays (streams of 30 s or more) the live server holds for the demo account."""
    if data_dir is None:
        return None
    conn = sqlite3.connect(data_dir / "mtm.sqlite3")
    try:
        return conn.execute("SELECT coalesce(sum(p.counted), 0) FROM plays p JOIN users u "
                            "ON u.id = p.user_id WHERE u.spotify_id = 'demo'").fetchone()[0]
    finally:
        conn.close()
