"""Hiding plays in the browser: from an artist page and back, with and without JavaScript."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll


def _open_a_small_artist(page: Page) -> str:
    """The artist page of the tenth artist of all time (the browser tests share one history,
    so a small one keeps hiding quick and leaves the top of every list alone); its name."""
    page.goto("/analytics?range=all")
    link = page.locator("#artists-title ~ figure table a.name-link").nth(9)
    if not link.is_visible():
        page.get_by_text("Top artists as a table").click()
    name = link.inner_text()
    with page.expect_navigation():
        link.click()
    expect(page.locator("h1")).to_have_text(name)
    return name


def _hide_it(page: Page, name: str) -> None:
    page.get_by_text("Hide this artist's plays without deleting them").click()
    with page.expect_navigation():
        page.get_by_role("button", name=f"Hide {name}").click()
    expect(page.locator("h1")).to_have_text("Hidden plays")
    expect(page.locator(".flash")).to_contain_text(f"of “{name}”")
    expect(page.locator("#hidden-rules-title ~ .rule-list .rule")).to_have_count(1)


def _show_everything_again(page: Page) -> None:
    """Leave the shared history as it was, whatever a test did."""
    page.goto("/hidden")
    while page.get_by_role("button", name=re.compile("^Show again")).count():
        with page.expect_response(lambda r: "/delete" in r.url):
            page.get_by_role("button", name=re.compile("^Show again")).first.click()
        page.goto("/hidden")


def test_hide_an_artist_and_show_it_again(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    try:
        name = _open_a_small_artist(page)
        url = page.url
        # Its page answers 404 while it is hidden, a refused form 422: honest statuses.
        errors.expected_status_urls = (url, url.split("/artists/")[0] + "/hidden")
        _hide_it(page, name)
        page.goto("/analytics?range=all")
        page.get_by_text("Top artists as a table").click()
        expect(page.locator("#artists-title ~ figure table")).not_to_contain_text(name)
        page.goto(url)
        expect(page.locator(".error-card")).to_contain_text("are hidden")
        page.get_by_role("link", name="Go to Hidden plays").click()
        expect(page.locator("h1")).to_have_text("Hidden plays")
        # Show again swaps the list in place: no reload.
        page.evaluate("() => { window.__marker = 1 }")
        page.get_by_role("button", name=re.compile("^Show again")).click()
        expect(page.locator(".flash")).to_contain_text(f"of “{name}” again")
        expect(page.get_by_text("Nothing is hidden")).to_be_visible()
        assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
        expect(page).to_have_title("Hidden plays · Music Time Machine")
        page.goto(url)
        expect(page.locator("h1")).to_have_text(name)
        # A bad link is refused beside its field.
        page.goto("/hidden")
        page.get_by_label("Spotify link or URI").fill("not a link")
        page.get_by_role("button", name="Hide its plays").click()
        expect(page.locator("#hide-context-error")).to_contain_text("Paste the Spotify link")
        expect(page.get_by_label("Spotify link or URI")).to_have_value("not a link")
        errors.assert_none()
    finally:
        _show_everything_again(page)


def test_hiding_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    try:
        name = _open_a_small_artist(page)
        _hide_it(page, name)
        with page.expect_navigation():
            page.get_by_role("button", name=re.compile("^Show again")).click()
        expect(page.locator(".flash")).to_contain_text(f"of “{name}” again")
        expect(page.get_by_text("Nothing is hidden")).to_be_visible()
        page.get_by_label("Spotify link or URI").fill("https://example.com/x")
        with page.expect_navigation():
            page.get_by_role("button", name="Hide its plays").click()
        expect(page.locator("#hide-context-error")).to_contain_text("Paste the Spotify link")
        # The contexts played most this year, each with its own Hide button.
        expect(page.locator(".context-list li").first).to_be_visible()
    finally:
        _show_everything_again(page)


@pytest.mark.parametrize("width", [375, 1280])
def test_the_hidden_page_fits_the_screen(new_context, base_url: str, width: int,
                                         tmp_path: Path) -> None:
    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    try:
        name = _open_a_small_artist(page)
        _hide_it(page, name)
        page.screenshot(path=str(tmp_path / f"hidden-{width}.png"), full_page=True)
        assert_no_horizontal_scroll(page)
    finally:
        _show_everything_again(page)
