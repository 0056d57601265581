"""Signing in and out through the emulator, with JavaScript on and off."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from .conftest import sign_in

WELCOME = "Signed in. Welcome!"
SIGNED_OUT = "You are signed out."


def _path(page: Page) -> str:
    return urlsplit(page.url).path


def _assert_on_signin(page: Page, live_server: str, next_url: str | None = None) -> None:
    """The anonymous landing page, optionally remembering where the visitor was going."""
    expect(page).to_have_url(re.compile(re.escape(f"{live_server}/signin") + r"(\?.*)?$"))
    expect(page.get_by_role("link", name="Sign in with Spotify")).to_be_visible()
    # Anonymous visitors get no navigation and no sign-out form.
    expect(page.locator("nav.site-nav")).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    if next_url is not None:
        query = parse_qs(urlsplit(page.url).query)
        assert query.get("next") == [next_url], page.url


def _new_page(new_context: Any, *, javascript: bool) -> Page:
    return new_context(java_script_enabled=javascript).new_page()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_anonymous_home_redirects_to_signin(new_context: Any, live_server: str,
                                            javascript: bool) -> None:
    page = _new_page(new_context, javascript=javascript)
    response = page.goto("/")
    assert response is not None and response.status == 200
    # The redirect happened on the server (303), not in page script.
    redirect = response.request.redirected_from
    assert redirect is not None and urlsplit(redirect.url).path == "/"
    assert redirect.response() is not None and redirect.response().status == 303
    _assert_on_signin(page, live_server, next_url="/")
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Your listening history, kept for years")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_sign_in_lands_on_home_with_flash(new_context: Any, live_server: str,
                                          javascript: bool) -> None:
    page = _new_page(new_context, javascript=javascript)
    page.goto("/")
    _assert_on_signin(page, live_server, next_url="/")
    page.get_by_role("link", name="Sign in with Spotify").click()

    page.wait_for_url(re.compile(r"/emulator/accounts/authorize\?"))
    expect(page.get_by_role("heading", name=re.compile("authorize", re.I))).to_be_visible()
    demo = page.get_by_role("radio", name=re.compile("Demo Listener"))
    expect(demo).to_be_checked()
    expect(page.get_by_role("radio", name=re.compile("New Listener"))).not_to_be_checked()
    page.get_by_role("button", name="Agree").click()

    page.wait_for_url(f"{live_server}/")
    expect(page.locator("#flashes")).to_contain_text(WELCOME)
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("nav.site-nav a[aria-current='page']")).to_have_text("Home")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # A flash is shown once only.
    page.reload()
    expect(page.locator("#dashboard")).to_be_visible()
    expect(page.locator("#flashes")).not_to_contain_text(WELCOME)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_cancel_on_emulator_shows_error(new_context: Any, live_server: str,
                                        javascript: bool) -> None:
    page = _new_page(new_context, javascript=javascript)
    page.goto("/login")
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()
    with page.expect_response(lambda r: urlsplit(r.url).path == "/callback") as answer:
        page.get_by_role("button", name="Cancel").click()
    assert answer.value.status == 403
    page.wait_for_load_state()

    assert _path(page) == "/callback"
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("cancelled")
    expect(page.get_by_role("link", name="Sign in with Spotify")).to_be_visible()
    expect(page.locator("#flashes")).not_to_contain_text(WELCOME)
    # Nothing was connected: the dashboard still sends this browser to sign in.
    page.goto("/")
    _assert_on_signin(page, live_server, next_url="/")


def test_new_listener_sees_empty_state(page: Page, live_server: str) -> None:
    page.goto("/login")
    page.get_by_role("radio", name=re.compile("New Listener")).check()
    page.get_by_role("button", name="Agree").click()
    page.wait_for_url(f"{live_server}/")

    expect(page.locator("#flashes")).to_contain_text(WELCOME)
    # The first sync ran at sign-in and found no music: the page says so, not "not synced".
    expect(page.get_by_role("heading", name="No plays yet")).to_be_visible()
    expect(page.locator("#sync-status")).to_contain_text("Synced just now, no new plays.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, New Listener")
    expect(page.locator("canvas")).to_have_count(0)
    expect(page.locator("dl.figures")).to_have_count(0)
    expect(page.locator("li.play")).to_have_count(0)
    expect(page.get_by_text("Your recent plays will be listed here.")).to_be_visible()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_sign_out_returns_to_signin(new_context: Any, live_server: str,
                                    javascript: bool) -> None:
    page = sign_in(_new_page(new_context, javascript=javascript), live_server)
    expect(page.locator("#dashboard")).to_be_visible()
    token = page.locator("form.signout input[name='csrf_token']")
    expect(token).to_have_count(1)
    assert token.get_attribute("value"), "the sign-out form carries no CSRF token"

    with page.expect_response(lambda r: urlsplit(r.url).path == "/logout") as answer:
        page.get_by_role("button", name="Sign out").click()
    assert answer.value.status == 303
    assert answer.value.request.method == "POST"
    page.wait_for_url(f"{live_server}/signin")
    _assert_on_signin(page, live_server)
    expect(page.locator("#flashes")).to_contain_text(SIGNED_OUT)

    # The session is really gone: every signed-in page redirects to sign-in again.
    for target in ("/", "/analytics"):
        response = page.goto(target)
        assert response is not None and response.status == 200
        _assert_on_signin(page, live_server, next_url=target)
        expect(page.locator("#flashes")).not_to_contain_text(SIGNED_OUT)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_signing_out_ends_a_copied_cookie_too(new_context: Any, live_server: str,
                                              javascript: bool) -> None:
    page = sign_in(_new_page(new_context, javascript=javascript), live_server)
    copy_context = new_context(java_script_enabled=javascript)
    copy_context.add_cookies(page.context.cookies())
    copy = copy_context.new_page()
    copy.goto("/")
    expect(copy.locator("#dashboard")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server}/signin")
    # The other browser's copy of the cookie was signed out on the server with it.
    copy.goto("/settings")
    _assert_on_signin(copy, live_server, next_url="/settings")
