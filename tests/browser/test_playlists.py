"""Playlists in the browser: create, preview, rename and delete with JavaScript on and off,
checked against what the server's Spotify emulator holds."""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from playwright.sync_api import Page, Route, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll


def emulator_playlist(data_dir: Path | None, name: str) -> list[dict]:
    """Every playlist called `name` in the emulator's state, with its items in order."""
    # A server given with --base-url keeps its state elsewhere; the page checks still ran.
    if data_dir is None:
        return []
    db = sqlite3.connect(data_dir / "emulator.sqlite3", timeout=10)
    try:
        found = []
        for playlist_id, followed in db.execute(
                "SELECT id, followed FROM playlists WHERE name = ? ORDER BY seq", (name,)):
            items = [uri for (uri,) in db.execute(
                "SELECT uri FROM playlist_items WHERE playlist_id = ? ORDER BY position",
                (playlist_id,))]
            found.append({"id": playlist_id, "followed": bool(followed), "items": items})
        return found
    finally:
        db.close()


def previewed(page: Page) -> list[str]:
    """The URIs the preview lists, in order."""
    return [f"spotify:track:{sid}" for sid in
            page.locator("#playlist-preview li[data-track]").evaluate_all(
                "items => items.map(li => li.dataset.track)")]


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def set_count(page: Page, count: int) -> None:
    """Type a size and leave the field, which (with JavaScript) refreshes the preview."""
    page.fill("#playlist-count", str(count))
    page.locator("#playlist-count").press("Tab")


def test_preview_and_create_with_javascript(signed_in_page: Page, live_data_dir: Path | None,
                                            tmp_path: Path) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/playlists")
    page.evaluate("() => { window.__marker = 1 }")
    year_field = page.locator("#playlist-year")
    # The demo listener may prefer another source: start from current rotation.
    page.locator('input[name="source"][value="current_rotation"]').check()
    expect(year_field).to_be_hidden()

    # Choosing a source previews it in place; the year appears only for Year in Review.
    page.locator('input[name="source"][value="year_in_review"]').check()
    expect(page.locator("#playlist-preview h2")).to_contain_text("Preview: Year in Review 20")
    expect(year_field).to_be_visible()
    page.locator('input[name="source"][value="current_rotation"]').check()
    expect(page.locator("#playlist-preview h2")).to_contain_text("Preview: Current Rotation")
    expect(year_field).to_be_hidden()
    set_count(page, 7)
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(7)
    expected = previewed(page)

    name = unique("<b>JS mix</b>")
    page.fill("#playlist-name", name)
    page.get_by_role("button", name="Create on Spotify").click()
    result = page.locator("#playlist-result .result-ok")
    expect(result).to_contain_text(f"“{name}” is on Spotify")
    expect(result.get_by_role("link", name="Open in Spotify")).to_have_attribute(
        # Demo mode: the emulator's own page (open.spotify.com has never heard of the id).
        "href", re.compile(r"^/emulator/open/playlist/\w+$"))
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    assert page.url.endswith("/playlists")
    # The list gained the playlist, its name shown as text.
    item = page.locator("#playlist-history .playlist-item").first
    expect(item.locator(".playlist-name")).to_have_text(name)
    expect(item).to_contain_text("7 tracks")
    page.screenshot(path=str(tmp_path / "playlists-created.png"), full_page=True)

    made = emulator_playlist(live_data_dir, name)
    if live_data_dir is not None:
        assert len(made) == 1 and made[0]["items"] == expected
    errors.assert_none()


def test_refused_input_comes_back_next_to_its_field(signed_in_page: Page, base_url: str,
                                                    live_data_dir: Path | None) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page, expected_status_urls=(f"{base_url}/playlists",))
    page.goto("/playlists")
    page.locator('input[name="source"][value="current_rotation"]').check()
    page.evaluate("() => { window.__marker = 1 }")
    # The browser would refuse 0 itself; without that check the server's 422 answers.
    page.evaluate("() => document.querySelector('#playlist-count').removeAttribute('min')")
    name = unique("Refused")
    # Leaving each field asks for a preview of count 0, which is refused as well.
    preview = (f"{base_url}/playlists/preview?source=current_rotation&"
               f"year={page.locator('#playlist-year').input_value()}&count=0&name=")
    errors.expected_status_urls += (preview, preview + quote_plus(name))
    page.fill("#playlist-count", "0")
    page.fill("#playlist-name", name)
    page.get_by_role("button", name="Create on Spotify").click()
    expect(page.locator("#playlist-count-error")).to_have_text(
        "Enter a whole number from 1 to 200.")
    expect(page.locator("#playlist-count")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#playlist-result .result-card")).to_have_count(0)
    # The swapped-in form still previews and creates.
    set_count(page, 4)
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(4)
    page.get_by_role("button", name="Create on Spotify").click()
    expect(page.locator("#playlist-result .result-ok")).to_contain_text(name)
    expect(page.locator("#playlist-count-error")).to_have_count(0)
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    if live_data_dir is not None:
        assert len(emulator_playlist(live_data_dir, name)) == 1
    errors.assert_none()


def test_create_disables_the_button_and_a_second_click_changes_nothing(
        signed_in_page: Page, live_data_dir: Path | None) -> None:
    page = signed_in_page
    page.goto("/playlists")
    set_count(page, 3)
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(3)
    name = unique("Double click")
    page.fill("#playlist-name", name)

    def slow(route: Route) -> None:
        if route.request.method == "POST":
            page.wait_for_timeout(800)
        route.continue_()

    page.route(re.compile(r".*/playlists$"), slow)
    button = page.get_by_role("button", name="Create on Spotify")
    indicator = page.locator("#playlist-creating")
    expect(indicator).to_be_hidden()
    button.click()
    expect(button).to_be_disabled()
    expect(indicator).to_be_visible()
    button.click(force=True)
    expect(page.locator("#playlist-result .result-ok")).to_contain_text(name)
    expect(button).to_be_enabled()
    # A fresh key came with the result: the next press makes a new playlist.
    second = unique("Second")
    page.fill("#playlist-name", second)
    button.click()
    expect(page.locator("#playlist-result .result-ok")).to_contain_text(second)
    if live_data_dir is not None:
        assert len(emulator_playlist(live_data_dir, name)) == 1
        assert len(emulator_playlist(live_data_dir, second)) == 1


def _press_repeatedly(page: Page, times: int) -> None:
    """Press Create `times` times, 150 ms apart, wherever the button is (a real double click
    does not wait for the button to be enabled again)."""
    button = page.locator("#playlist-create")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for press in range(times):
        if press:
            page.wait_for_timeout(150)
        page.mouse.click(x, y)


@pytest.mark.parametrize("presses", [2, 3])
def test_double_and_triple_clicks_make_one_playlist(signed_in_page: Page,
                                                    live_data_dir: Path | None,
                                                    presses: int) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/playlists")
    set_count(page, 3)
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(3)
    name = unique(f"Pressed {presses}x")
    page.fill("#playlist-name", name)
    answers = []
    page.on("response", lambda r: answers.append(r) if r.request.method == "POST"
            and r.url.endswith("/playlists") else None)
    _press_repeatedly(page, presses)
    result = page.locator("#playlist-result .result-card")
    expect(result).to_contain_text(f"“{name}” is on Spotify")
    page.wait_for_load_state("networkidle")
    # A press while a request is in flight hits a disabled button; one after it is answered
    # with the playlist already made.
    assert 1 <= len(answers) <= presses
    assert answers[0].status == 201
    for repeat in answers[1:]:
        assert repeat.status == 200 and "Already created" in repeat.text()
    if len(answers) > 1:
        expect(result).to_contain_text(f"Already created: “{name}” is on Spotify")
        expect(result).to_contain_text("no second playlist was made")
    expect(page.locator("#playlist-history .playlist-name").filter(has_text=name)).to_have_count(1)
    if live_data_dir is not None:
        assert len(emulator_playlist(live_data_dir, name)) == 1
    # The link leads to the one playlist.
    with page.expect_navigation():
        result.get_by_role("link", name="See its tracks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator("#playlist-tracks li[data-track]")).to_have_count(3)
    errors.assert_none()


def create_without_javascript(page: Page, label: str, count: int) -> str:
    """Create a playlist of `count` current-rotation tracks with the plain form; its name."""
    page.goto("/playlists")
    page.locator('input[name="source"][value="current_rotation"]').check()
    page.fill("#playlist-count", str(count))
    name = unique(label)
    page.fill("#playlist-name", name)
    with page.expect_navigation():
        page.get_by_role("button", name="Create on Spotify").click()
    return name


def test_create_back_create_without_javascript(nojs_page: Page,
                                               live_data_dir: Path | None) -> None:
    page = nojs_page
    name = create_without_javascript(page, "Back and again", 2)
    expect(page.locator(".flash-success")).to_have_text(
        f"Created “{name}” on Spotify with 2 tracks.")
    created_url = page.url
    page.go_back()
    expect(page).to_have_url(re.compile(r"/playlists$"))
    # Whether the browser kept the old form or fetched a new one, the choices are the same.
    page.locator('input[name="source"][value="current_rotation"]').check()
    page.fill("#playlist-count", "2")
    page.fill("#playlist-name", name)
    with page.expect_navigation():
        page.get_by_role("button", name="Create on Spotify").click()
    assert page.url == created_url
    expect(page.locator(".flash-info")).to_have_text(
        f"Already created: that request made “{name}” before, so no second playlist was made.")
    result = page.locator("#playlist-result .result-ok")
    expect(result).to_contain_text(f"“{name}” is on Spotify")
    expect(page.locator("#playlist-history .playlist-name").filter(has_text=name)).to_have_count(1)
    if live_data_dir is not None:
        assert len(emulator_playlist(live_data_dir, name)) == 1
    with page.expect_navigation():
        result.get_by_role("link", name="See its tracks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def create_with_javascript(page: Page, label: str) -> str:
    """Create a two-track playlist from the previewed source with HTMX; its name."""
    page.goto("/playlists")
    set_count(page, 2)
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(2)
    name = unique(label)
    page.fill("#playlist-name", name)
    page.get_by_role("button", name="Create on Spotify").click()
    return name


def test_rename_and_delete_on_its_page_update_title_and_heading(signed_in_page: Page) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    name = create_with_javascript(page, "Own page")
    result = page.locator("#playlist-result .result-ok")
    expect(result).to_contain_text(f"“{name}” is on Spotify")

    # On the list, renaming updates the result card's heading too.
    page.locator("#playlist-history .playlist-item").first.get_by_role(
        "link", name="Rename", exact=True).click()
    listed = unique("Listed")
    page.get_by_label(f"New name for “{name}”").fill(listed)
    page.locator(".playlist-editing").get_by_role("button", name="Rename", exact=True).click()
    expect(result.get_by_role("heading")).to_have_text(f"“{listed}” is on Spotify")
    assert page.title() == "Playlists · Music Time Machine"

    with page.expect_navigation():
        result.get_by_role("link", name="See its tracks").click()
    expect(page).to_have_title(f"{listed} · Playlists · Music Time Machine")
    page.evaluate("() => { window.__marker = 1 }")
    page.locator(".playlist-item").get_by_role("link", name="Rename", exact=True).click()
    renamed = unique("On its page <i>")
    page.get_by_label(f"New name for “{listed}”").fill(renamed)
    page.locator(".playlist-editing").get_by_role("button", name="Rename", exact=True).click()
    expect(page.locator(".playlist-item .playlist-name")).to_have_text(renamed)
    expect(page.get_by_role("heading", level=1)).to_have_text(renamed)
    expect(page).to_have_title(f"{renamed} · Playlists · Music Time Machine")

    page.locator(".playlist-item").get_by_role("link", name="Delete", exact=True).click()
    page.locator(".playlist-confirm").get_by_role("button", name="Delete playlist").click()
    expect(page.locator(".playlist-gone")).to_have_text(f"Deleted “{renamed}”.")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Deleted “{renamed}”")
    expect(page).to_have_title(f"Deleted “{renamed}” · Playlists · Music Time Machine")
    expect(page.locator("#playlist-tracks")).to_have_count(0)
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    errors.assert_none()


def test_rename_and_delete_with_javascript(signed_in_page: Page,
                                           live_data_dir: Path | None) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    name = create_with_javascript(page, "Rename me")
    expect(page.locator("#playlist-result .result-ok")).to_contain_text(name)
    page.evaluate("() => { window.__marker = 1 }")
    item = page.locator("#playlist-history .playlist-item").first

    # Rename: the form replaces the row; Cancel brings the row back.
    item.get_by_role("link", name="Rename", exact=True).click()
    field = page.get_by_label(f"New name for “{name}”")
    expect(field).to_have_value(name)
    page.locator(".playlist-editing").get_by_role("link", name="Cancel").click()
    expect(page.locator(".playlist-editing")).to_have_count(0)
    item = page.locator("#playlist-history .playlist-item").first
    item.get_by_role("link", name="Rename", exact=True).click()
    renamed = unique("Renamed <i>")
    page.get_by_label(f"New name for “{name}”").fill(renamed)
    page.locator(".playlist-editing").get_by_role("button", name="Rename", exact=True).click()
    item = page.locator("#playlist-history .playlist-item").first
    expect(item.locator(".playlist-name")).to_have_text(renamed)
    expect(item).to_contain_text(f"Renamed to “{renamed}”.")

    # Delete: a confirmation in place, then the row says it is gone.
    item.get_by_role("link", name="Delete", exact=True).click()
    confirm = page.locator(".playlist-confirm")
    expect(confirm).to_contain_text(f"Delete “{renamed}”?")
    confirm.get_by_role("button", name="Delete playlist").click()
    expect(page.locator(".playlist-gone")).to_have_text(f"Deleted “{renamed}”.")
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    if live_data_dir is not None:
        assert emulator_playlist(live_data_dir, name) == []
        made = emulator_playlist(live_data_dir, renamed)
        assert len(made) == 1 and made[0]["followed"] is False
    errors.assert_none()


def test_everything_without_javascript(nojs_page: Page, live_data_dir: Path | None) -> None:
    page = nojs_page
    page.goto("/playlists")
    # The Preview button takes the choices to the preview's own page.
    page.locator('input[name="source"][value="current_rotation"]').check()
    page.fill("#playlist-count", "5")
    with page.expect_navigation():
        page.get_by_role("button", name="Preview").click()
    expect(page).to_have_url(re.compile(r"/playlists/preview\?source=current_rotation&"
                                        r"year=\d*&count=5&name=$"))
    expect(page.locator("#playlist-preview li[data-track]")).to_have_count(5)
    expected = previewed(page)

    name = unique("No-JS <mix>")
    page.fill("#playlist-name", name)
    with page.expect_navigation():
        page.get_by_role("button", name="Create on Spotify").click()
    expect(page).to_have_url(re.compile(r"/playlists\?created=\d+$"))
    expect(page.locator(".flash-success")).to_have_text(
        f"Created “{name}” on Spotify with 5 tracks.")
    expect(page.locator("#playlist-result .result-ok")).to_contain_text(f"“{name}” is on Spotify")
    made = emulator_playlist(live_data_dir, name)
    if live_data_dir is not None:
        assert len(made) == 1 and made[0]["items"] == expected

    # Rename on its own page.
    item = page.locator("#playlist-history .playlist-item").first
    with page.expect_navigation():
        item.get_by_role("link", name="Rename", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Rename playlist")
    renamed = unique("Plain rename")
    page.get_by_label(f"New name for “{name}”").fill(renamed)
    with page.expect_navigation():
        page.get_by_role("button", name="Rename", exact=True).click()
    expect(page).to_have_url(re.compile(r"/playlists$"))
    expect(page.locator(".flash-success")).to_have_text(f"Renamed to “{renamed}”.")

    # Delete through the confirmation page.
    item = page.locator("#playlist-history .playlist-item").first
    expect(item.locator(".playlist-name")).to_have_text(renamed)
    with page.expect_navigation():
        item.get_by_role("link", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete playlist")
    with page.expect_navigation():
        page.get_by_role("button", name="Delete playlist").click()
    expect(page.locator(".flash-success")).to_have_text(f"Deleted “{renamed}”.")
    expect(page.locator("#playlist-history")).not_to_contain_text(renamed)
    if live_data_dir is not None:
        assert emulator_playlist(live_data_dir, renamed)[0]["followed"] is False
    assert_no_horizontal_scroll(page)


def test_a_refused_rename_leaves_no_post_to_resubmit_without_javascript(
        nojs_page: Page) -> None:
    page = nojs_page
    name = create_without_javascript(page, "Keeps its name", 3)
    item = page.locator("#playlist-history .playlist-item").first
    with page.expect_navigation():
        item.get_by_role("link", name="Rename", exact=True).click()
    rename_url = page.url
    posts: list[int] = []
    page.on("response", lambda r: posts.append(r.status) if r.request.method == "POST"
            else None)
    # Spaces pass the browser's own check; the server refuses them.
    page.get_by_label(f"New name for “{name}”").fill("   ")
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Rename", exact=True).click()
    assert posts == [303], posts
    assert refused.value.request.method == "GET" and refused.value.status == 422
    assert page.url == rename_url
    expect(page.get_by_text("Enter a name.")).to_be_visible()
    # A reload is a GET of a clean form: nothing asks to send the form again.
    reloaded = page.reload()
    assert reloaded is not None and reloaded.request.method == "GET" and reloaded.status == 200
    expect(page.get_by_text("Enter a name.")).to_have_count(0)
    expect(page.get_by_label(f"New name for “{name}”")).to_have_value(name)
    assert posts == [303], posts


@pytest.mark.parametrize("width", [375, 1280])
def test_playlists_fit_the_screen(new_context, base_url: str, width: int,
                                  tmp_path: Path) -> None:
    from .conftest import sign_in

    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    page.goto("/playlists")
    page.locator('input[name="source"][value="year_in_review"]').check()
    expect(page.locator("#playlist-year")).to_be_visible()
    page.fill("#playlist-name", unique("A rather long playlist name that has to wrap somewhere"))
    page.get_by_role("button", name="Create on Spotify").click()
    expect(page.locator("#playlist-result .result-ok")).to_be_visible()
    page.screenshot(path=str(tmp_path / f"playlists-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
    page.locator("#playlist-history .playlist-item").first.get_by_role(
        "link", name="Delete", exact=True).click()
    expect(page.locator(".playlist-confirm")).to_be_visible()
    page.screenshot(path=str(tmp_path / f"playlists-confirm-{width}.png"), full_page=True)
    assert_no_horizontal_scroll(page)
