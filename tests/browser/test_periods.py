"""Any period in the browser: years, previous/next, jump to a date, a from–to range, refusals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def _years(page: Page) -> list[str]:
    return page.get_by_role("navigation", name="Year").get_by_role("link").all_text_contents()


def test_years_steps_jumps_and_ranges_swap_in_place(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    page.goto("/analytics")
    years = _years(page)
    assert len(years) >= 2, years
    # The 422 of the refused range below is the point of that step.
    errors = ConsoleErrors(page, expected_status_urls=(
        f"{base_url}/analytics?metric=plays&from=2025-05-02&to=2025-04-01",))
    page.evaluate("() => { window.__marker = 1 }")
    year = years[-2]
    page.get_by_role("navigation", name="Year").get_by_role("link", name=year).click()
    expect(page).to_have_url(re.compile(rf"/analytics\?year={year}&metric=plays$"))
    expect(page.locator("h1")).to_have_text(f"Analytics · {year}")
    expect(page).to_have_title(f"Analytics · {year} · Music Time Machine")
    expect(page.get_by_role("navigation", name="Year").locator("[aria-current]")).to_have_text(year)

    # Previous and next step by a whole year.
    steps = page.get_by_role("navigation", name="Step through time")
    steps.locator('a[rel="prev"]').click()
    expect(page.locator("h1")).to_have_text(f"Analytics · {int(year) - 1}")
    page.get_by_role("navigation", name="Step through time").locator('a[rel="next"]').click()
    expect(page.locator("h1")).to_have_text(f"Analytics · {year}")

    # Jump to the month holding a date.
    page.get_by_label("Whole").select_option("month")
    page.fill("#period-at", f"{year}-03-17")
    page.get_by_role("button", name="Go").click()
    expect(page.locator("h1")).to_have_text(f"Analytics · March {year}")
    expect(page).to_have_title(f"Analytics · March {year} · Music Time Machine")
    page.get_by_role("navigation", name="Step through time").locator('a[rel="next"]').click()
    expect(page.locator("h1")).to_have_text(f"Analytics · April {year}")

    # A refused range comes back with its reason, and the corrected one shows.
    page.fill("#period-from", "2025-05-02")
    page.fill("#period-to", "2025-04-01")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#period-error")).to_have_text(
        "The start date (2 May 2025) is after the end date (1 Apr 2025): swap them.")
    expect(page.locator("#period-from")).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_title("Analytics · choose a period · Music Time Machine")
    page.fill("#period-from", "2025-04-01")
    page.fill("#period-to", "2025-05-02")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("h1")).to_have_text("Analytics · 1 Apr 2025 – 2 May 2025")
    expect(page.locator("#period-error")).to_have_count(0)
    expect(page.locator('canvas[data-chart="chart-over-time"]')).to_have_attribute(
        "data-drawn", "true")
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"

    # Back goes through the refused range (its URL says what was asked) to the month.
    page.go_back()
    expect(page.locator("#period-error")).to_be_visible()
    page.go_back()
    expect(page.locator("h1")).to_have_text(f"Analytics · April {year}")
    errors.assert_none()


def test_periods_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/analytics")
    year = _years(page)[-2]
    with page.expect_navigation():
        page.get_by_role("navigation", name="Year").get_by_role("link", name=year).click()
    expect(page.locator("h1")).to_have_text(f"Analytics · {year}")
    # The tables are the content without JavaScript.
    expect(page.locator("#over-time-title")).to_contain_text("by week")
    with page.expect_navigation():
        page.get_by_role("navigation", name="Step through time").locator('a[rel="prev"]').click()
    expect(page.locator("h1")).to_have_text(f"Analytics · {int(year) - 1}")
    page.get_by_label("Whole").select_option("week")
    page.fill("#period-at", f"{year}-06-10")
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    expect(page).to_have_url(re.compile(rf"unit=week&at={year}-06-10"))
    expect(page.locator("h1")).to_have_text(re.compile(r"Analytics · Week of \d+ Jun " + year))
    # (The date field itself refuses 30 February; the server's check is tested over HTTP.)
    page.fill("#period-from", f"{year}-03-05")
    page.fill("#period-to", f"{year}-03-01")
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Show").click()
    assert refused.value.status == 422
    expect(page.locator("#period-error")).to_have_text(
        f"The start date (5 Mar {year}) is after the end date (1 Mar {year}): swap them.")
    page.fill("#period-from", f"{year}-02-01")
    with page.expect_navigation() as shown:
        page.get_by_role("button", name="Show").click()
    assert shown.value.status == 200
    expect(page.locator("h1")).to_have_text(f"Analytics · 1 Feb {year} – 1 Mar {year}")
    expect(page.locator("table.heatmap tbody tr")).to_have_count(7)
    expect(page.locator("#albums-title")).to_be_visible()


@pytest.mark.parametrize("width", [375, 1280])
def test_period_controls_fit_the_screen(new_context, base_url: str, width: int,
                                        tmp_path: Path) -> None:
    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    page.goto("/analytics")
    year = _years(page)[-2]
    page.goto(f"/analytics?month={year}-07")
    expect(page.locator("h1")).to_have_text(f"Analytics · July {year}")
    page.screenshot(path=str(tmp_path / f"analytics-month-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    for control in ("#period-at", "#period-from", "#period-to"):
        box = page.locator(control).bounding_box()
        assert box is not None and box["x"] + box["width"] <= width, control
