"""Artist, album and track pages in the browser: reached from any name, with and without JS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in
from .helpers import ConsoleErrors, assert_no_horizontal_scroll


def _open_top_artist(page: Page) -> str:
    """From Analytics (all time), open the most played artist's page; its name."""
    page.goto("/analytics?range=all")
    link = page.locator("#artists-title ~ figure table a.name-link").first
    if not link.is_visible():
        # With JavaScript the chart is shown and its table folded away.
        page.get_by_text("Top artists as a table").click()
    name = link.inner_text()
    link.click()
    expect(page.locator("h1")).to_have_text(name)
    return name


def test_follow_an_artist_to_its_tracks_and_albums(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    name = _open_top_artist(page)
    expect(page).to_have_title(f"{name} · Artist · Music Time Machine")
    for chart in ("chart-entity-plays", "chart-entity-rank"):
        expect(page.locator(f'canvas[data-chart="{chart}"]')).to_have_attribute(
            "data-drawn", "true")
    expect(page.locator("#entity-figures + .figures dd").first).not_to_have_text("0")
    # Show more appends older plays in place, every one of this artist.
    rows = page.locator("#recent-plays li.play")
    expect(rows).to_have_count(20)
    page.evaluate("() => { window.__marker = 1 }")
    page.get_by_role("link", name="Show more").click()
    expect(rows).to_have_count(40)
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    artists = set(page.locator("#recent-plays li.play .artist > a").all_inner_texts())
    assert artists == {name}, artists
    # Its top track, then that track's album, then back to the artist.
    track = page.locator("#entity-top-tracks ~ table a.name-link").first
    track_name = track.inner_text()
    track.click()
    expect(page.locator("h1")).to_have_text(track_name)
    expect(page.locator(".entity-kind")).to_have_text("Track")
    album = page.locator(".entity-head .name-link").nth(1)
    album_name = album.inner_text()
    album.click()
    expect(page.locator("h1")).to_have_text(album_name)
    page.locator(".entity-head .name-link").first.click()
    expect(page.locator("h1")).to_have_text(name)
    errors.assert_none()


def test_an_artist_page_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto("/")
    link = page.locator("#dashboard .name a.name-link").first
    name = link.inner_text()
    with page.expect_navigation():
        link.click()
    expect(page.locator("h1")).to_have_text(name)
    # The tables are the content: plays and rank per month, the hours.
    expect(page.locator("#entity-time-title ~ figure details table tbody tr").first).to_be_visible()
    expect(page.locator("table.heatmap tbody td")).to_have_count(24)
    more = page.get_by_role("link", name="Show more")
    if more.count():
        with page.expect_navigation():
            more.click()
        expect(page.locator("h1")).to_have_text("Older plays")
        back = page.get_by_role("link", name=re.compile("Back to the artist"))
        with page.expect_navigation():
            back.click()
        expect(page.locator("h1")).to_have_text(name)
    # A month in its table opens that month's analytics.
    month = page.locator("#entity-time-title ~ figure table tbody th a").first
    label = month.inner_text()
    with page.expect_navigation():
        month.click()
    expect(page.locator("h1")).to_contain_text(label.split()[1])


@pytest.mark.parametrize("width", [375, 1280])
def test_entity_pages_fit_the_screen(new_context, base_url: str, width: int,
                                     tmp_path: Path) -> None:
    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    _open_top_artist(page)
    page.screenshot(path=str(tmp_path / f"artist-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    page.locator("#entity-top-tracks ~ table a.name-link").first.click()
    expect(page.locator(".entity-kind")).to_have_text("Track")
    page.screenshot(path=str(tmp_path / f"track-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)


def test_a_bar_of_the_top_artists_chart_opens_its_page(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/analytics?range=all")
    canvas = page.locator('canvas[data-chart="chart-artists"]')
    expect(canvas).to_have_attribute("data-drawn", "true")
    first = page.locator("#artists-title ~ figure table a.name-link").first.text_content()
    # Where Chart.js drew the first (top) bar, in the canvas's own pixels.
    bar = canvas.evaluate("c => { const b = Chart.getChart(c).getDatasetMeta(0).data[0];"
                          " return {x: (b.x + b.base) / 2, y: b.y}; }")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    with page.expect_navigation():
        page.mouse.click(box["x"] + bar["x"], box["y"] + bar["y"])
    expect(page.locator("h1")).to_have_text(first)
    expect(page.locator(".entity-kind")).to_have_text("Artist")
    errors.assert_none()
