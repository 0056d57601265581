"""Every signed-in page: heading, current nav item, a clean console, no sideways scroll."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from playwright.sync_api import Page, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll

NAV = ["Home", "Analytics", "Playlists", "Settings"]


class Case(NamedTuple):
    path: str
    status: int
    heading: str
    title: str  # before " · Music Time Machine"
    current: str | None  # the nav item marked aria-current="page"


CASES = [
    Case("/", 200, "Hello, Demo Listener", "Home", "Home"),
    Case("/analytics", 200, "Analytics · 12 months", "Analytics · 12 months", "Analytics"),
    Case("/playlists", 200, "Playlists", "Playlists", "Playlists"),
    Case("/settings", 200, "Settings", "Settings", "Settings"),
    Case("/plays", 200, "Your plays", "Your plays", "Home"),
    Case("/no-such-page/here", 404, "Not Found (404)", "Not Found", None),
]
IDS = [c.path.strip("/").replace("/", "-") or "home" for c in CASES]


def _check_page(page: Page, case: Case, base_url: str) -> None:
    response = page.goto(case.path)
    assert response is not None
    assert response.status == case.status, f"{case.path} answered {response.status}"
    assert page.url == base_url + case.path, "the page redirected"

    expect(page.get_by_role("heading", level=1)).to_have_count(1)
    expect(page.get_by_role("heading", level=1)).to_have_text(case.heading)
    expect(page).to_have_title(f"{case.title} · Music Time Machine")
    current = page.locator("[aria-current='page']")
    if case.current is None:
        expect(current).to_have_count(0)
    else:
        nav = page.get_by_role("navigation", name="Main")
        expect(nav).to_be_visible()
        expect(nav.get_by_role("link")).to_have_text(NAV)
        expect(current).to_have_count(1)
        expect(nav.get_by_role("link", name=case.current)).to_have_attribute(
            "aria-current", "page")

    if case.path == "/analytics":
        expect(page.locator("#analytics canvas[data-chart]")).to_have_count(4)
        expect(page.locator("table.heatmap tbody tr")).to_have_count(7)
    if case.path == "/playlists":
        expect(page.locator("#playlist-form")).to_be_visible()
        expect(page.locator("#playlist-history")).to_be_visible()
    if case.path == "/settings":
        for section in ("#connection", "#preferences", "#export", "#backups", "#danger-zone"):
            expect(page.locator(section)).to_be_visible()
    if case.path == "/plays":
        expect(page.locator("#recent-plays > li.play")).to_have_count(20)
    if case.status == 404:
        expect(page.get_by_role("alert")).to_contain_text("There is nothing at this address.")
        expect(page.get_by_role("link", name="Go to Home")).to_be_visible()
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_page_with_javascript(signed_in_page: Page, base_url: str, case: Case) -> None:
    page = signed_in_page
    # Chromium reports an error status of the document itself as a console error.
    errors = ConsoleErrors(page, expected_status_urls=(base_url + case.path,)
                           if case.status >= 400 else ())
    requests_failed: list[str] = []
    bad_responses: list[str] = []
    # A load the browser abandons because the test navigated on is not a failure of the app.
    page.on("requestfailed", lambda r: requests_failed.append(f"{r.url}: {r.failure}")
            if "ERR_ABORTED" not in (r.failure or "") else None)
    page.on("response", lambda r: bad_responses.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.url != base_url + case.path else None)

    _check_page(page, case, base_url)
    # htmx is loaded and running (no CSP or load problem kept it out).
    page.wait_for_function("() => typeof window.htmx === 'object'")
    # Give late script errors (e.g. in deferred scripts) a moment to surface.
    page.wait_for_load_state("networkidle")
    errors.assert_none()
    assert not requests_failed, requests_failed
    assert not bad_responses, bad_responses


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_page_without_javascript(nojs_page: Page, base_url: str, case: Case) -> None:
    page = nojs_page
    _check_page(page, case, base_url)
    # Without JavaScript nothing may hide content behind a script.
    assert page.evaluate("() => typeof window.htmx") == "undefined"
    expect(page.locator("main")).to_be_visible()


def test_csp_violation_would_be_reported(signed_in_page: Page) -> None:
    """The console check above would catch an inline script the CSP blocks."""
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/analytics")
    # Playwright's own evaluate() is exempt from the CSP; a page-inserted inline script is not.
    page.evaluate("""() => {
      const s = document.createElement("script");
      s.textContent = "window.__inline = 1";
      document.body.append(s);
    }""")
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.__inline") is None, "the CSP allowed an inline script"
    with pytest.raises(AssertionError, match="Content Security Policy"):
        errors.assert_none()
