"""Analytics in the browser: range switches swap in place with JS, navigate without it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll

RANGES = [("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days"), ("6m", "6 months"),
          ("12m", "12 months"), ("all", "All time")]


def _chart_source(page: Page) -> str:
    return page.locator("#chart-over-time").text_content() or ""


def test_each_range_swaps_the_charts_in_place(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/analytics")
    page.evaluate("() => { window.__marker = 1 }")
    expect(page.locator('canvas[data-chart="chart-over-time"]')).to_have_attribute(
        "data-drawn", "true")
    seen = {_chart_source(page)}
    for key, label in RANGES:
        page.get_by_role("navigation", name="Date range").get_by_role("link", name=label).click()
        expect(page).to_have_url(re.compile(rf"/analytics\?range={key}&metric=plays$"))
        expect(page.locator("h1")).to_have_text(f"Analytics · {label}")
        active = page.get_by_role("navigation", name="Date range").locator("[aria-current]")
        expect(active).to_have_text(label)
        canvas = page.locator('canvas[data-chart="chart-over-time"]')
        expect(canvas).to_have_attribute("data-drawn", "true")
        seen.add(_chart_source(page))
        assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    # Every range drew different data.
    assert len(seen) == len(RANGES)
    errors.assert_none()


def test_back_and_forward_restore_the_range(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=30d")
    nav = page.get_by_role("navigation", name="Date range")
    nav.get_by_role("link", name="7 days").click()
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")
    nav = page.get_by_role("navigation", name="Date range")
    nav.get_by_role("link", name="All time").click()
    expect(page.locator("h1")).to_have_text("Analytics · All time")
    page.go_back()
    expect(page).to_have_url(re.compile(r"range=7d"))
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")
    expect(page.locator('canvas[data-chart="chart-over-time"]')).to_have_attribute(
        "data-drawn", "true")
    page.go_back()
    expect(page.locator("h1")).to_have_text("Analytics · 30 days")
    page.go_forward()
    expect(page.locator("h1")).to_have_text("Analytics · 7 days")


def test_metric_switch(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics?range=all")
    page.get_by_role("link", name="By minutes").click()
    expect(page).to_have_url(re.compile(r"range=all&metric=minutes"))
    expect(page.locator("#artists-title")).to_contain_text("by minutes")
    minutes = [int(v.replace(",", "")) for v in
               page.locator(".tracks-table tbody td:nth-child(4)").all_text_contents()]
    assert minutes == sorted(minutes, reverse=True) and len(minutes) == 10


def test_ranges_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/analytics")
    for key, label in RANGES:
        with page.expect_navigation():
            page.get_by_role("navigation", name="Date range").get_by_role(
                "link", name=label).click()
        expect(page).to_have_url(re.compile(rf"range={key}"))
        expect(page.locator("h1")).to_have_text(f"Analytics · {label}")
        # Without JavaScript every chart still has its table, and the heatmap is HTML.
        expect(page.locator("table.heatmap tbody tr")).to_have_count(7)
        expect(page.locator("details summary").first).to_be_visible()
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("width", [375, 768, 1280])
def test_analytics_fits_the_screen(new_context, base_url: str, width: int, tmp_path) -> None:
    from .conftest import sign_in

    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    page.goto("/analytics")
    expect(page.locator('canvas[data-chart="chart-artists"]')).to_have_attribute(
        "data-drawn", "true")
    page.screenshot(path=str(tmp_path / f"analytics-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    heat = page.locator("table.heatmap")
    box = heat.bounding_box()
    assert box is not None and box["x"] + box["width"] <= width


def test_loading_indicator_shows_while_a_range_loads(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/analytics")

    def slow(route) -> None:
        page.wait_for_timeout(700)
        route.continue_()

    page.route(re.compile(r".*/analytics\?range=90d.*"), slow)
    opacity = "() => getComputedStyle(document.querySelector('#analytics .loading')).opacity"
    assert page.evaluate(opacity) == "0"
    page.get_by_role("link", name="90 days").click()
    # The indicator is faded in (after a short delay) while the request runs.
    expect(page.locator("#analytics.htmx-request")).to_have_count(1)
    page.wait_for_function(f"() => ({opacity})() === '1'")
    expect(page.locator("h1")).to_have_text("Analytics · 90 days")
    expect(page.locator("#analytics.htmx-request")).to_have_count(0)
    assert page.evaluate(opacity) == "0"
