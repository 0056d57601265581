"""The year in review in the browser: reached from Analytics, stepping years, the image."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll


def _a_year_with_plays(page: Page) -> str:
    page.goto("/analytics")
    years = page.get_by_role("navigation", name="Year").get_by_role("link").all_text_contents()
    return years[-2]


def test_review_from_analytics_with_javascript(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    year = _a_year_with_plays(page)
    page.goto(f"/analytics?year={year}")
    page.get_by_role("link", name=f"{year} in review").click()
    expect(page.locator("h1")).to_have_text(f"{year} in review")
    expect(page).to_have_title(f"{year} in review · Music Time Machine")
    image = page.locator(".share-image img")
    expect(image).to_have_attribute("src", re.compile("share=minutes&share=artists$"))
    page.wait_for_function("() => document.querySelector('.share-image img').naturalWidth > 0")
    # Ticking a part swaps the review in place with the new image.
    page.evaluate("() => { window.__marker = 1 }")
    page.get_by_role("checkbox", name="Top tracks").check()
    expect(page.locator(".share-image img")).to_have_attribute(
        "src", re.compile("share=minutes&share=artists&share=tracks$"))
    expect(page).to_have_url(re.compile("share=tracks"))
    page.get_by_role("navigation", name="Other reviews").locator('a[rel="prev"]').click()
    expect(page.locator("h1")).to_have_text(f"{int(year) - 1} in review")
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    # A top artist leads to its page.
    artist = page.locator("#review-artists ~ ol a.name-link").first
    name = artist.inner_text()
    artist.click()
    expect(page.locator("h1")).to_have_text(name)
    errors.assert_none()


def test_review_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    year = _a_year_with_plays(page)
    page.goto(f"/review?year={year}")
    expect(page.locator("#review-artists ~ ol li").first).to_be_visible()
    page.get_by_role("checkbox", name="Minutes listened").uncheck()
    page.get_by_role("checkbox", name="Top genres").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Update the image").click()
    expect(page.locator(".share-image img")).to_have_attribute(
        "src", re.compile(rf"year={year}&share=artists&share=genres$"))
    expect(page.get_by_role("checkbox", name="Minutes listened")).not_to_be_checked()
    svg = page.request.get(page.locator(".share-image img").get_attribute("src"))
    assert svg.ok and "Top genres" in svg.text() and "Minutes listened" not in svg.text()


@pytest.mark.parametrize("width", [375, 1280])
def test_review_fits_the_screen_and_prints(new_context, base_url: str, width: int,
                                           tmp_path: Path) -> None:
    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    year = _a_year_with_plays(page)
    page.goto(f"/review?year={year}")
    page.screenshot(path=str(tmp_path / f"review-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    page.emulate_media(media="print")
    expect(page.locator(".site-header")).to_be_hidden()
    expect(page.locator("#review-share")).to_be_hidden()
    expect(page.locator("#review-artists")).to_be_visible()
