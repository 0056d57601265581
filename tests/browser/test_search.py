"""Search in the browser: results follow typing with JavaScript, a plain form without it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll


def _a_track(page: Page) -> str:
    """A track the demo history holds, read from the plays list."""
    page.goto("/plays")
    return page.locator("#recent-plays .track").first.inner_text()


@pytest.mark.parametrize("width", [375, 1280])
def test_results_follow_typing(new_context: Any, live_server: str, width: int) -> None:
    page = sign_in(new_context(viewport={"width": width, "height": 800}).new_page(), live_server)
    errors = ConsoleErrors(page)
    name = _a_track(page)
    page.goto("/search")
    page.evaluate("() => { window.__marker = 1 }")
    page.fill("#search-q", name.upper())
    expect(page.locator("#search-results [data-kind=track]").first).to_be_visible()
    expect(page).to_have_url(re.compile(r"/search\?q="))
    # Swapped in place: the page was not reloaded.
    assert page.evaluate("() => window.__marker") == 1
    expect(page.locator("#search-results")).to_contain_text(name)
    assert_no_horizontal_scroll(page)
    page.fill("#search-q", "x" * 100 + "y")
    expect(page.locator("#search-q")).to_have_value("x" * 100)
    errors.assert_none()


def test_header_box_and_no_javascript(nojs_page: Page) -> None:
    page = nojs_page
    name = _a_track(page)
    page.goto("/")
    page.get_by_role("search").get_by_label("Search your history").fill(name)
    page.get_by_role("search").get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/search\?q="))
    expect(page.locator("h1")).to_have_text("Search your history")
    track = page.locator("#search-results [data-kind=track] .name a").first
    expect(track).to_contain_text(name)
    # Every play matching the words is one link away; the track itself opens its page.
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("Every play matching")).click()
    expect(page).to_have_url(re.compile(r"/plays\?q="))
    expect(page.locator("#plays-matched")).to_be_visible()
    page.go_back()
    with page.expect_navigation():
        page.locator("#search-results [data-kind=track] .name a").first.click()
    expect(page).to_have_url(re.compile(r"/tracks/\d+$"))
    expect(page.locator(".entity-kind")).to_have_text("Track")
    assert_no_horizontal_scroll(page)
