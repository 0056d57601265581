"""Layout at phone and desktop widths, and the dark colour scheme."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import assert_no_horizontal_scroll

HEIGHT = 800
PHONE, TABLET, DESKTOP = 375, 768, 1280
CHART = 'canvas[data-chart="chart-last-30"]'


def _page(new_context: Any, width: int, **options: Any) -> Page:
    return new_context(viewport={"width": width, "height": HEIGHT}, **options).new_page()


def _screenshot(page: Page, directory: Path, name: str) -> Path:
    # tmp_path, not test-results/: pytest-playwright empties test-results/ whenever any
    # pytest session starts, and pytest keeps the last three tmp_path trees for a look.
    path = directory / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000, f"{path} is suspiciously small"
    return path


def _figure_boxes(page: Page) -> list[dict[str, float]]:
    figures = page.locator("dl.figures .figure")
    expect(figures).to_have_count(6)
    boxes = [figures.nth(i).bounding_box() for i in range(6)]
    assert all(boxes), "a figure has no layout box"
    return boxes  # type: ignore[return-value]


def _same_row(a: dict[str, float], b: dict[str, float]) -> bool:
    return abs(a["y"] - b["y"]) < 2


def _assert_inside_viewport(page: Page, selector: str, width: int) -> None:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not laid out"
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (
        f"{selector} sticks out of the {width} px viewport: {box}")


@pytest.mark.parametrize("width", [PHONE, TABLET, DESKTOP])
def test_home_layout(new_context: Any, live_server: str, tmp_path: Path, width: int) -> None:
    page = sign_in(_page(new_context, width), live_server)
    expect(page.locator(CHART)).to_have_attribute("data-drawn", "true")
    page.wait_for_timeout(600)  # let the chart's entry animation finish before the screenshot
    _screenshot(page, tmp_path, f"home-{width}")

    assert_no_horizontal_scroll(page)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_visible()
    for label in ("Home", "Analytics", "Calendar", "Playlists", "Household", "Settings"):
        link = nav.get_by_role("link", name=label)
        expect(link).to_be_visible()
        expect(link).to_be_in_viewport()
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    for selector in ("header.site-header", "main", "dl.figures", CHART, "#recent-plays"):
        _assert_inside_viewport(page, selector, width)

    first, second, third, *rest = _figure_boxes(page)
    assert _same_row(first, second) and second["x"] > first["x"] + first["width"] - 1, (
        f"the first two figures are not side by side: {first} {second}")
    if width == PHONE:
        # Two columns: the third figure starts a new row, under the first.
        assert third["y"] >= first["y"] + first["height"] - 1, (first, third)
        assert abs(third["x"] - first["x"]) < 2, (first, third)
        assert first["width"] > (width - 64) / 2 - 24, f"figures too narrow: {first}"
    else:
        assert _same_row(first, third) and third["x"] > second["x"], (
            f"more than two figure columns expected at {width} px: {first} {second} {third}")
        if width == TABLET:
            # Three columns: the fourth figure starts the second row.
            assert not _same_row(first, rest[0]) and abs(rest[0]["x"] - first["x"]) < 2, rest
        else:
            # 1280 px is wide enough for all six in one row.
            assert all(_same_row(first, box) for box in rest), [first, *rest]

    # The chart fills its card at every width.
    chart = page.locator(CHART).bounding_box()
    card = page.locator("section.card", has=page.locator(CHART)).bounding_box()
    assert chart and card and chart["width"] > card["width"] * 0.8, (chart, card)


@pytest.mark.parametrize("width", [PHONE, TABLET, DESKTOP])
def test_signin_layout(new_context: Any, tmp_path: Path, width: int) -> None:
    page = _page(new_context, width)
    page.goto("/signin")
    _screenshot(page, tmp_path, f"signin-{width}")

    assert_no_horizontal_scroll(page)
    expect(page.locator("header.site-header .brand")).to_be_visible()
    signin = page.get_by_role("link", name="Sign in with Spotify")
    expect(signin).to_be_visible()
    expect(signin).to_be_in_viewport()
    for selector in ("header.site-header", "#signin", ".banner-demo"):
        _assert_inside_viewport(page, selector, width)
    card = page.locator("#signin").bounding_box()
    assert card is not None
    if width == DESKTOP:
        # The card is a readable column, centred, not stretched across the screen.
        assert card["width"] < 700, card
        assert abs(card["x"] - (width - card["x"] - card["width"])) < 4, card


def _colours(page: Page) -> dict[str, str]:
    return page.evaluate("""() => {
      const body = getComputedStyle(document.body);
      const header = getComputedStyle(document.querySelector("header.site-header"));
      return {background: body.backgroundColor, text: body.color, header: header.backgroundColor};
    }""")


def _luminance(rgb: str) -> float:
    r, g, b = (int(v) for v in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_dark_scheme(new_context: Any, live_server: str, tmp_path: Path) -> None:
    light = sign_in(_page(new_context, DESKTOP, color_scheme="light"), live_server)
    dark = sign_in(_page(new_context, DESKTOP, color_scheme="dark"), live_server)
    expect(dark.locator(CHART)).to_have_attribute("data-drawn", "true")
    dark.wait_for_timeout(600)
    _screenshot(dark, tmp_path, "home-1280-dark")

    light_colours, dark_colours = _colours(light), _colours(dark)
    assert dark_colours["background"] != light_colours["background"], (light_colours,
                                                                      dark_colours)
    assert _luminance(dark_colours["background"]) < 60 < _luminance(light_colours["background"])
    # Text stays readable: light on dark.
    assert _luminance(dark_colours["text"]) > 180, dark_colours
    assert _luminance(dark_colours["header"]) < 80, dark_colours
    assert_no_horizontal_scroll(dark)

    # The same holds for the anonymous sign-in page.
    dark.get_by_role("button", name="Sign out").click()
    dark.wait_for_url(f"{live_server}/signin")
    assert _colours(dark)["background"] == dark_colours["background"]


@pytest.mark.parametrize("width", [320, 375])
def test_every_nav_link_is_in_view_on_a_phone(new_context: Any, live_server: str,
                                              width: int) -> None:
    context = new_context(viewport={"width": width, "height": 800})
    page = sign_in(context.new_page(), live_server)
    links = page.get_by_role("navigation", name="Main").get_by_role("link")
    expect(links).to_have_count(6)
    for link in links.all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (
            link.inner_text(), box)
