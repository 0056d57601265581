"""Artwork in the browser: the emulator's pictures load on artist pages and in top lists."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll

HEIGHT = 800
EMULATOR_IMAGE = re.compile(r"^/emulator/image/[0-9a-f]{16}[0-9A-Za-z]{22}$")


def _natural_width(page: Page, selector: str) -> int:
    """The natural width of the first image matching `selector`, once it has loaded."""
    image = page.locator(selector).first
    # Thumbnails load lazily: bring it into view first.
    image.scroll_into_view_if_needed()
    expect(image).to_be_visible()
    expect(image).to_have_attribute("src", EMULATOR_IMAGE)
    image.evaluate("img => img.decode()")
    return image.evaluate("img => img.naturalWidth")


@pytest.mark.parametrize("width", [375, 1280])
def test_the_artist_picture_and_thumbnails_load(new_context: Any, live_server: str,
                                               width: int) -> None:
    page = sign_in(new_context(viewport={"width": width, "height": HEIGHT}).new_page(),
                   live_server)
    errors = ConsoleErrors(page)
    # All time, so the test does not depend on today's date.
    page.goto("/analytics?range=all")
    assert _natural_width(page, "#tracks-title ~ table img.thumb") > 0
    assert_no_horizontal_scroll(page)
    artist = page.locator("#tracks-title ~ table th .muted a.name-link").first
    name = artist.inner_text()
    artist.click()
    expect(page.locator("h1")).to_have_text(name)
    assert _natural_width(page, "img.entity-image") > 0
    box = page.locator("img.entity-image").bounding_box()
    assert box is not None and box["width"] == box["height"] == 96
    assert_no_horizontal_scroll(page)
    errors.assert_none()
