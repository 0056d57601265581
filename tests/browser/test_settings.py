"""Settings in the browser: sync now, clear (both steps) and restore, with JavaScript on and off."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from .helpers import ConsoleErrors, assert_no_horizontal_scroll

MARK = "() => { window.__marker = 1 }"
MARKED = "() => window.__marker"


def _plays_to_clear(page: Page) -> int:
    text = page.locator(".counts li").first.inner_text()
    match = re.match(r"([\d,]+) play", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def _restore_newest_clear_backup(page: Page):
    backup = page.locator("#backups li.backup").filter(
        has_text="Automatic, before clearing all data").first
    expect(backup).to_be_visible()
    return backup.get_by_role("link", name="Restore…")


# JavaScript on


def test_sync_now_updates_the_status_in_place(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page)
    page.goto("/settings")
    page.evaluate(MARK)
    status = page.locator("#sync-now")
    with page.expect_response(lambda r: r.url.endswith("/settings/sync")
                              and r.request.method == "POST") as answer:
        status.get_by_role("button", name="Sync now").click()
    assert answer.value.status == 202
    # The status polls while the sync runs, then settles on the outcome and stops polling.
    expect(status).to_contain_text("Last sync just now", timeout=20_000)
    expect(status.get_by_role("button", name="Sync now")).to_be_enabled()
    expect(status).not_to_have_attribute("hx-trigger", re.compile("every"))
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert page.url == base_url + "/settings"
    errors.assert_none()


def test_clear_both_steps_then_restore_with_javascript(signed_in_page: Page,
                                                       base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page, expected_status_urls=(base_url + "/settings/clear",))
    page.goto("/settings")
    page.evaluate(MARK)
    danger = page.locator("#danger-zone")

    # Step one is swapped in place: counts, a checkbox and the word to type.
    danger.get_by_role("link", name="Clear all data…").click()
    expect(danger).to_contain_text("Step 1 of 2")
    plays = _plays_to_clear(page)
    # Streams of 30 s or more, counted as every page counts plays.
    assert plays > 15_000

    # Neither confirmation: refused next to each field, nothing deleted.
    danger.get_by_role("button", name="Delete all my listening data").click()
    expect(danger.locator(".field-error")).to_have_count(2)
    expect(danger).to_contain_text("Nothing was deleted.")
    # Only the box ticked: still refused.
    danger.get_by_label("I understand").check()
    danger.get_by_role("button", name="Delete all my listening data").click()
    expect(danger.locator(".field-error")).to_have_count(1)
    expect(danger.locator("#clear-confirm-error")).to_be_visible()

    danger.get_by_label("Type DELETE to confirm").fill("DELETE")
    danger.get_by_role("button", name="Delete all my listening data").click()
    message = page.locator("#settings > .flash")
    expect(message).to_contain_text(f"Deleted all your listening data: {plays:,} plays")
    expect(message).to_contain_text("choose Restore next to it under Backups")
    assert page.evaluate(MARKED) == 1

    # Restore: confirmation in place, then the data comes back.
    _restore_newest_clear_backup(page).click()
    backups = page.locator("#backups")
    expect(backups.get_by_role("heading", name="Restore a backup")).to_be_visible()
    backups.get_by_role("button", name="Restore this backup").click()
    expect(page.locator("#settings > .flash")).to_contain_text(f": {plays:,} plays.")
    assert page.evaluate(MARKED) == 1, "the page was reloaded"
    assert page.url == base_url + "/settings"

    page.goto("/")
    figures = page.locator(".figures")
    expect(figures).to_be_visible()
    assert int(figures.locator("dd").first.inner_text().replace(",", "")) >= plays
    errors.assert_none()


def test_cancel_puts_the_section_back(signed_in_page: Page) -> None:
    page = signed_in_page
    page.goto("/settings")
    danger = page.locator("#danger-zone")
    danger.get_by_role("link", name="Disconnect Spotify…").click()
    expect(danger.get_by_role("radio", name=re.compile("^Keep it"))).to_be_checked()
    danger.get_by_role("link", name="Cancel").click()
    expect(danger.get_by_role("link", name="Clear all data…")).to_be_visible()
    expect(page.locator("#danger-zone")).to_have_count(1)


def test_preferences_error_and_save_in_place(signed_in_page: Page, base_url: str) -> None:
    page = signed_in_page
    errors = ConsoleErrors(page, expected_status_urls=(base_url + "/settings/preferences",))
    page.goto("/settings")
    prefs = page.locator("#preferences")
    zone = prefs.get_by_label("Time zone")
    zone.fill("Mars/Olympus_Mons")
    prefs.get_by_role("button", name="Save preferences").click()
    expect(prefs.locator("#pref-timezone-error")).to_contain_text("not a time zone")
    expect(prefs.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")
    prefs.get_by_label("Time zone").fill("UTC")
    prefs.get_by_role("radio", name="Sunday").check()
    prefs.get_by_role("button", name="Save preferences").click()
    expect(prefs).to_contain_text("Preferences saved.")
    expect(prefs.get_by_role("radio", name="Sunday")).to_be_checked()
    # Back to the defaults the other tests expect.
    prefs.get_by_role("radio", name="Monday").check()
    prefs.get_by_role("button", name="Save preferences").click()
    expect(prefs.get_by_role("radio", name="Monday")).to_be_checked()
    expect(prefs.locator(".field-error")).to_have_count(0)
    errors.assert_none()


# JavaScript off


def test_sync_now_without_javascript(nojs_page: Page, base_url: str) -> None:
    page = nojs_page
    page.goto("/settings")
    with page.expect_navigation():
        page.locator("#sync-now").get_by_role("button", name="Sync now").click()
    assert page.url == base_url + "/settings"
    expect(page.locator("#flashes")).to_contain_text(re.compile(r"Sync finished: "))
    expect(page.locator("#sync-now")).to_contain_text("Last sync just now")


def test_clear_both_steps_then_restore_without_javascript(nojs_page: Page,
                                                          base_url: str) -> None:
    page = nojs_page
    page.goto("/settings")
    page.get_by_role("link", name="Clear all data…").click()
    expect(page).to_have_url(base_url + "/settings/clear")
    expect(page.get_by_role("heading", level=1)).to_have_text("Clear all data")
    plays = _plays_to_clear(page)

    # Step two without the confirmations is refused with 422 and deletes nothing.
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Delete all my listening data").click()
    assert refused.value.status == 422
    expect(page.locator(".field-error")).to_have_count(2)
    assert _plays_to_clear(page) == plays

    page.get_by_label("I understand").check()
    page.get_by_label("Type DELETE to confirm").fill("DELETE")
    page.get_by_role("button", name="Delete all my listening data").click()
    expect(page).to_have_url(base_url + "/settings")
    expect(page.locator("#flashes")).to_contain_text(
        f"Deleted all your listening data: {plays:,} plays")

    _restore_newest_clear_backup(page).click()
    expect(page).to_have_url(re.compile(r"/settings/backups/\d+/restore$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Restore a backup")
    page.get_by_role("button", name="Restore this backup").click()
    expect(page).to_have_url(base_url + "/settings")
    expect(page.locator("#flashes")).to_contain_text(f": {plays:,} plays.")
    page.goto("/settings/clear")
    assert _plays_to_clear(page) >= plays


def _posts(page: Page) -> list[tuple[str, int]]:
    """(path, status) of every POST the page's frame navigates with, as they come."""
    seen: list[tuple[str, int]] = []
    page.on("response", lambda r: seen.append((urlsplit(r.url).path, r.status))
            if r.request.method == "POST" else None)
    return seen


def _reload_is_a_get(page: Page):
    """Reload; the browser must not resend a form (no "confirm resubmission")."""
    reloaded = page.reload()
    assert reloaded is not None and reloaded.request.method == "GET", reloaded
    return reloaded


def test_refused_preferences_leave_no_post_to_resubmit_without_javascript(
        nojs_page: Page, base_url: str) -> None:
    page = nojs_page
    posts = _posts(page)
    page.goto("/settings")
    prefs = page.locator("#preferences")
    prefs.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    prefs.get_by_role("radio", name="Sunday").check()
    with page.expect_navigation() as refused:
        prefs.get_by_role("button", name="Save preferences").click()
    # Post/redirect/get: the POST is answered 303, the page after it is a GET, still 422.
    assert posts == [("/settings/preferences", 303)], posts
    assert refused.value.request.method == "GET" and refused.value.status == 422
    assert page.url == base_url + "/settings#preferences"
    expect(prefs.locator("#pref-timezone-error")).to_contain_text("not a time zone")
    expect(prefs.get_by_label("Time zone")).to_have_value("Mars/Olympus_Mons")
    expect(prefs.get_by_role("radio", name="Sunday")).to_be_checked()

    # A reload asks for the page again, without a form: a clean form with what is saved.
    assert _reload_is_a_get(page).status == 200
    expect(prefs.locator(".field-error")).to_have_count(0)
    expect(prefs.get_by_label("Time zone")).to_have_value("UTC")
    expect(prefs.get_by_role("radio", name="Monday")).to_be_checked()
    assert len(posts) == 1, f"a form was sent again: {posts}"
    # Back leads to the page before, not to the POST either.
    back = page.go_back()
    assert back is None or back.request.method == "GET"
    assert len(posts) == 1, f"a form was sent again: {posts}"


def test_refused_clear_keeps_what_was_typed_once_without_javascript(nojs_page: Page,
                                                                    base_url: str) -> None:
    page = nojs_page
    posts = _posts(page)
    page.goto("/settings/clear")
    plays = _plays_to_clear(page)
    page.get_by_label("Type DELETE to confirm").fill("delete")
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Delete all my listening data").click()
    assert [status for _, status in posts] == [303]
    assert refused.value.request.method == "GET" and refused.value.status == 422
    assert page.url == base_url + "/settings/clear"
    expect(page.locator(".field-error")).to_have_count(2)
    expect(page.get_by_label("Type DELETE to confirm")).to_have_value("delete")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was deleted.")
    assert _reload_is_a_get(page).status == 200
    expect(page.locator(".field-error")).to_have_count(0)
    expect(page.get_by_label("Type DELETE to confirm")).to_have_value("")
    assert _plays_to_clear(page) == plays and len(posts) == 1


@pytest.mark.parametrize("width", [375, 1280])
def test_settings_fit_the_screen(new_context, base_url: str, width: int, tmp_path) -> None:
    from .conftest import sign_in

    context = new_context(viewport={"width": width, "height": 900})
    page = sign_in(context.new_page(), base_url)
    for path in ("/settings", "/settings/clear", "/settings/disconnect"):
        page.goto(path)
        assert_no_horizontal_scroll(page)
        name = path.strip("/").replace("/", "-")
        page.screenshot(path=str(tmp_path / f"{name}-{width}.png"), full_page=True)
    page.goto("/settings")
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator("#backups li.backup").first).to_be_visible()
    assert_no_horizontal_scroll(page)
    page.screenshot(path=str(tmp_path / f"backups-{width}.png"), full_page=True)
