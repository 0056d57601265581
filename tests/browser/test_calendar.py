"""The calendar in the browser: days link to their plays, years step, no sideways scroll."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll


@pytest.mark.parametrize("width", [375, 1280])
def test_calendar_with_javascript(new_context: Any, live_server: str, width: int) -> None:
    page = sign_in(new_context(viewport={"width": width, "height": 800}).new_page(), live_server)
    errors = ConsoleErrors(page)
    page.goto("/calendar")
    expect(page.locator("table.calendar-month")).to_have_count(12)
    assert_no_horizontal_scroll(page)
    year = page.locator("#calendar-year").inner_text()
    previous = page.locator('#calendar a[rel="prev"]')
    if previous.count():
        page.evaluate("() => { window.__marker = 1 }")
        previous.click()
        expect(page.locator("#calendar-year")).to_have_text(str(int(year) - 1))
        expect(page).to_have_url(re.compile(rf"/calendar\?year={int(year) - 1}$"))
        assert page.evaluate("() => window.__marker") == 1
    day = page.locator("table.calendar-month td a").first
    day.click()
    expect(page).to_have_url(re.compile(r"/plays\?day=\d{4}-\d{2}-\d{2}$"))
    expect(page.locator("#plays-matched")).to_be_visible()
    errors.assert_none()


def test_calendar_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/calendar")
    cell = page.locator("table.calendar-month td a").first
    expect(cell.locator(".visually-hidden")).to_contain_text(re.compile(r"\d+ plays?, \d+ min"))
    cell.click()
    expect(page).to_have_url(re.compile(r"/plays\?day="))
    expect(page.locator("#plays-matched")).to_contain_text("match")
    assert_no_horizontal_scroll(page)
