"""Every signed-in page: heading, current nav item, a clean console, no sideways scroll."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from playwright.sync_api import Page, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll

NAV = ["Home", "Analytics", "Calendar", "Playlists", "Household", "Settings"]


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


# --- no inline style, ever: CSP-clean page loads and swaps -------------------------------

# Every violation the page meets, whether or not the browser also logs it.
REPORT_CSP = """document.addEventListener("securitypolicyviolation", (e) =>
  console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} ${e.sample}`));"""
# Scripts may style elements through the CSSOM, which the CSP allows (Chart.js sizes its
# canvases so). Swapping such an element must not turn that into an inline style attribute:
# htmx's settle step used to copy it onto the swapped-in element, which the CSP refuses.
STYLE_IDS = """() => { for (const el of document.querySelectorAll("main [id]"))
  el.style.setProperty("--mtm-styled-by-a-script", "1"); }"""


def _htmx_needs_no_inline_style(page: Page) -> None:
    config = page.evaluate("""() => ({css: htmx.config.includeIndicatorCSS,
      settle: htmx.config.defaultSettleDelay, sheets: document.adoptedStyleSheets.length,
      styles: document.querySelectorAll("style").length})""")
    assert config == {"css": False, "settle": 0, "sheets": 0, "styles": 0}, config


def _swap(page: Page, path: str, action) -> None:
    """Style the page's elements as a script may, then run one htmx swap to its end."""
    page.evaluate(STYLE_IDS)
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"
                              and path in r.url):
        action()
    page.wait_for_load_state("networkidle")


def test_pages_and_swaps_need_no_inline_style(signed_in_page: Page, base_url: str,
                                              tmp_path) -> None:
    page = signed_in_page
    page.add_init_script(REPORT_CSP)
    errors = ConsoleErrors(page, expected_status_urls=(
        base_url + "/settings/preferences", base_url + "/settings/clear"))

    page.goto("/")
    _htmx_needs_no_inline_style(page)
    _swap(page, "/plays", lambda: page.get_by_role("link", name="Show more").click())
    _swap(page, "/?", lambda: page.locator("#sync-status").get_by_role(
        "link", name="Refresh").click())

    page.goto("/analytics")
    _htmx_needs_no_inline_style(page)
    for label in ("7 days", "All time"):
        _swap(page, "/analytics?", lambda label=label: page.locator(".switches").get_by_role(
            "link", name=label).click())
    _swap(page, "/analytics?", lambda: page.get_by_role("link", name="By minutes").click())
    page.go_back()
    page.wait_for_load_state("networkidle")

    page.goto("/playlists")
    _htmx_needs_no_inline_style(page)
    page.locator('input[name="source"][value="current_rotation"]').check()
    _swap(page, "/playlists/preview", lambda: page.locator(
        'input[name="source"][value="year_in_review"]').check())

    page.goto("/settings")
    _htmx_needs_no_inline_style(page)
    _swap(page, "/settings/clear", lambda: page.get_by_role("link", name="Clear all data…").click())
    _swap(page, "/settings/clear", lambda: page.get_by_role(
        "button", name="Delete all my listening data").click())
    _swap(page, "/settings", lambda: page.locator("#danger-zone").get_by_role(
        "link", name="Cancel").click())
    page.fill("#pref-timezone", "Mars/Olympus_Mons")
    _swap(page, "/settings/preferences", lambda: page.get_by_role(
        "button", name="Save preferences").click())
    expect(page.locator("#pref-timezone-error")).to_be_visible()

    # Import: a preview of the demo's sample export, its job card polling in place.
    with page.expect_download() as download:
        page.locator("#import").get_by_role("link", name="a sample export").click()
    sample = tmp_path / download.value.suggested_filename
    download.value.save_as(sample)
    page.set_input_files("#import-files", sample)
    _swap(page, "/settings/imports", lambda: page.locator("#import").get_by_role(
        "button", name="Upload and preview").click())
    expect(page.locator("#import-job table.report-counts")).to_be_visible(timeout=60_000)
    job = page.locator("#import-job .job").first.get_attribute("id") or ""
    page.goto(f"/jobs/{job.removeprefix('job-')}")
    _htmx_needs_no_inline_style(page)
    page.wait_for_load_state("networkidle")
    errors.assert_none()


# --- loading indicators ------------------------------------------------------------------

IDLE_INDICATORS = """() => [...document.querySelectorAll(".htmx-indicator")].map((el) => {
  const box = el.getBoundingClientRect();
  return {text: el.textContent.trim(), display: getComputedStyle(el).display,
          width: box.width, height: box.height, ariaHidden: el.getAttribute("aria-hidden")};
})"""


@pytest.mark.parametrize("path", ["/", "/analytics", "/playlists", "/settings",
                                  "/settings/clear"])
def test_idle_indicators_take_no_space_and_are_not_read_out(signed_in_page: Page,
                                                             path: str) -> None:
    page = signed_in_page
    page.goto(path)
    page.wait_for_load_state("networkidle")
    indicators = page.evaluate(IDLE_INDICATORS)
    assert indicators, f"{path} has no loading indicator to check"
    for found in indicators:
        # display: none keeps it out of the layout and out of the accessibility tree.
        assert found["display"] == "none" and found["width"] == found["height"] == 0, found
        # Not read out while a request runs either: the region's aria-busy says that.
        assert found["ariaHidden"] == "true", found
    tree = page.locator("main").aria_snapshot()
    assert "Loading…" not in tree and "Uploading…" not in tree, tree


def test_a_region_is_busy_while_it_loads(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/")
    held: list = []
    page.route("**/plays?*", lambda route: held.append(route))
    more = page.locator("#recent-plays > li.more")
    more.get_by_role("link", name="Show more").click()
    page.wait_for_function("() => document.querySelector('#recent-plays > li.more')"
                           ".getAttribute('aria-busy') === 'true'")
    indicator = more.locator(".htmx-indicator")
    # Shown while the request runs, but still hidden from assistive technology: the region's
    # aria-busy says it is loading.
    expect(indicator).to_be_visible()
    expect(indicator).to_have_attribute("aria-hidden", "true")
    assert held, "the request was not held"
    held[0].continue_()
    expect(page.locator("#recent-plays > li.play")).to_have_count(40)
    expect(page.locator("[aria-busy]")).to_have_count(0)
