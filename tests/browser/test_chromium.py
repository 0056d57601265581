"""Chromium and Playwright work on this machine, without the app under test."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from .helpers import assert_no_horizontal_scroll

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>self-check</title></head>
<body><p id="out">waiting</p>
<script>document.getElementById("out").textContent = String(6 * 7);</script>
</body></html>"""

WIDE = """<!doctype html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><div style="width:3000px;height:10px"></div></body></html>"""


@pytest.fixture(scope="session")
def base_url() -> None:
    """This module needs no server, so it must not start the live one."""
    return None


# Contexts come from browser.new_context(), not the page/context fixtures: those cache
# browser_context_args for the session, and with it this module's empty base_url.
def test_chromium_runs_page_scripts(browser: Browser) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(PAGE)
        assert page.text_content("#out") == "42"
        assert page.evaluate("() => [1, 2, 3].map((n) => n * 2).join(',')") == "2,4,6"
        assert "Chrome" in page.evaluate("() => navigator.userAgent")
    finally:
        context.close()


def test_scripts_stay_off_without_javascript(browser: Browser) -> None:
    context = browser.new_context(java_script_enabled=False, viewport={"width": 800, "height": 600})
    try:
        page = context.new_page()
        page.set_content(PAGE)
        assert page.text_content("#out") == "waiting"
        # The helper must still work on no-JS pages: Playwright evaluates outside page scripts.
        page.set_content(WIDE)
        with pytest.raises(AssertionError, match="scrolls horizontally"):
            assert_no_horizontal_scroll(page)
        page.set_content(PAGE)
        assert_no_horizontal_scroll(page)
    finally:
        context.close()
