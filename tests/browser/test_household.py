"""The household page and the admin page in the browser, with and without JavaScript.

These run their own server: the demo account is its admin, and two housemates share its
instance, one who joined the household page and one who never did.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from mtm import db, household, users

from .conftest import (
    DEMO_DATA_TIMEOUT,
    _free_port,
    _server_env,
    _stop,
    _wait_until_healthy,
    sign_in,
)
from .helpers import ConsoleErrors, assert_no_horizontal_scroll

JOINED = "Robin Housemate"
PRIVATE = "Sam Private"


def _add_housemates(database: Path) -> None:
    """Two housemates with part of the demo history each; only Robin joins the page."""
    conn = db.connect(database)
    try:
        demo = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
        for spotify_id, name, every in (("robin", JOINED, 3), ("sam", PRIVATE, 2)):
            user_id = users.upsert_user(conn, spotify_id, name)
            # Every third (or second) of the demo account's plays, so their dates are as
            # recent as the demo history, whenever the test runs.
            conn.execute(
                """INSERT INTO plays (user_id, played_at, record_key, track_id, artist_id,
                                      ms_played, source)
                   SELECT ?, played_at, record_key, track_id, artist_id, ms_played, source
                   FROM plays WHERE user_id = ? AND played_at % ? = 0""",
                (user_id, demo, every))
            if spotify_id == "robin":
                newest = conn.execute("SELECT max(played_at) FROM plays").fetchone()[0]
                household.join(conn, user_id, newest)
        # Their rollups are built by the server at start-up, as after an upgrade.
    finally:
        conn.close()


@pytest.fixture(scope="module")
def house_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Base URL and database of a server whose admin is the demo account."""
    root = tmp_path_factory.mktemp("household")
    data_dir = root / "data"
    data_dir.mkdir()
    env = {**_server_env(data_dir), "MTM_ADMINS": "demo", "MTM_SYNC_INTERVAL": "0"}
    seeded = subprocess.run(
        [sys.executable, "-m", "mtm", "demo-data", "--plays", "3000", "--years", "1",
         "--seed", "5"],
        cwd=root, env=env, capture_output=True, text=True, timeout=DEMO_DATA_TIMEOUT,
        check=False)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    _add_housemates(data_dir / "mtm.sqlite3")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = root / "server.log"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mtm", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(proc, base, log)
        yield base, data_dir / "mtm.sqlite3"
    finally:
        _stop(proc)


@pytest.fixture
def base(house_server: tuple[str, Path]) -> Iterator[str]:
    """The server's URL, with the demo account out of the household page to begin with."""
    url, database = house_server
    conn = sqlite3.connect(database)
    try:
        conn.execute("DELETE FROM household_members WHERE user_id = "
                     "(SELECT id FROM users WHERE spotify_id = 'demo')")
        conn.commit()
    finally:
        conn.close()
    yield url


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def java_script(request: pytest.FixtureRequest) -> bool:
    """Each test runs with JavaScript on, then off."""
    return request.param


@pytest.fixture
def member_page(java_script: bool, new_context: Callable[..., Any], base: str) -> Page:
    """A page signed in as the demo account."""
    context = new_context(java_script_enabled=java_script,
                          viewport={"width": 1280, "height": 900})
    return sign_in(context.new_page(), base)


def _choose(page: Page, button: str, java_script: bool) -> None:
    """Press join or leave: HTMX swaps the answer in (200), a plain form is redirected (303)."""
    with page.expect_response(lambda r: r.url.endswith("/household/membership")) as answer:
        page.get_by_role("button", name=button).click()
    assert answer.value.status == (200 if java_script else 303)


def test_join_see_the_overlap_and_leave(member_page: Page, base: str, java_script: bool
                                        ) -> None:
    page = member_page
    errors = ConsoleErrors(page)
    page.goto(f"{base}/household")
    expect(page.get_by_role("heading", name="Household", exact=True)).to_be_visible()
    expect(page.get_by_text("It is off until you join")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(JOINED)
    _choose(page, "Join the household page", java_script)
    expect(page.locator(".flash")).to_contain_text("You joined the household page")
    member = page.locator(".household-member")
    expect(member).to_have_count(1)
    expect(member.get_by_role("heading", name=f"You and {JOINED}")).to_be_visible()
    # Robin listened to a third of the demo history: most of the top artists are shared.
    expect(member.locator(".compatibility").first).to_contain_text("% compatible")
    expect(member.locator(".shared-table").first.locator("tbody tr").first).to_be_visible()
    expect(page.get_by_text("Compatibility is the share of listening time")).to_be_visible()
    # Sam never joined: nothing of Sam's is anywhere on the page.
    expect(page.locator("body")).not_to_contain_text(PRIVATE)
    assert page.url == f"{base}/household"
    _choose(page, "Leave the household page", java_script)
    expect(page.locator(".flash")).to_contain_text("You left the household page")
    expect(page.get_by_role("button", name="Join the household page")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text(JOINED)
    errors.assert_none()


def test_the_toggle_in_settings(member_page: Page, base: str, java_script: bool) -> None:
    page = member_page
    errors = ConsoleErrors(page)
    page.goto(f"{base}/settings")
    section = page.locator("#household-sharing")
    expect(section).to_contain_text("You are not in it")
    _choose(page, "Join the household page", java_script)
    # The message: in the section swapped in place, or at the top of the page reloaded.
    expect(page.locator(".flash")).to_contain_text("You joined the household page")
    section = page.locator("#household-sharing")
    expect(section).to_contain_text("You are in the household page")
    expect(section.get_by_role("button", name="Leave the household page")).to_be_visible()
    assert page.url.startswith(f"{base}/settings")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Household").click()
    expect(page.get_by_role("heading", name=f"You and {JOINED}")).to_be_visible()
    errors.assert_none()


def test_the_admin_page(member_page: Page, base: str, java_script: bool) -> None:
    page = member_page
    errors = ConsoleErrors(page)
    page.get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", name="Admin", exact=True)).to_be_visible()
    users_table = page.locator(".admin-users")
    # The one page that reads across users: all three are listed, Sam too.
    for name in ("Demo Listener", JOINED, PRIVATE):
        expect(users_table).to_contain_text(name)
    expect(page.locator("#scheduler-state")).to_be_visible()
    expect(page.get_by_role("heading", name="Job queue")).to_be_visible()
    expect(page.get_by_role("link", name="Refresh")).to_be_visible()
    if java_script:
        # The figures refresh in place: the fragment alone, swapped for the old one.
        with page.expect_response(lambda r: r.url.endswith("/admin/stats")) as answer:
            page.evaluate("() => htmx.ajax('GET', '/admin/stats', "
                          "{target: '#admin-stats', swap: 'outerHTML'})")
        assert answer.value.text().startswith('<div id="admin-stats"')
        expect(page.locator("#admin-stats")).to_have_count(1)
        expect(page.locator(".admin-users")).to_contain_text(PRIVATE)
    errors.assert_none()


@pytest.mark.parametrize("width", [320, 375])
@pytest.mark.parametrize("path", ["/household", "/admin/stats"])
def test_phone_width(new_context: Callable[..., Any], base: str, path: str, width: int) -> None:
    context = new_context(viewport={"width": width, "height": 800})
    page = sign_in(context.new_page(), base)
    if path == "/household":
        page.goto(f"{base}/household")
        page.get_by_role("button", name="Join the household page").click()
        expect(page.locator(".household-member")).to_have_count(1)
    else:
        page.goto(f"{base}{path}")
        expect(page.locator(".admin-users")).to_be_visible()
    assert_no_horizontal_scroll(page)


@pytest.mark.parametrize("java_script", [True, False], ids=["js", "nojs"])
def test_everyone_but_the_admin_gets_a_404(new_context: Callable[..., Any], base: str,
                                           java_script: bool) -> None:
    page = new_context(java_script_enabled=java_script).new_page()
    errors = ConsoleErrors(page, expected_status_urls=(f"{base}/admin/stats",))
    response = page.goto(f"{base}/admin/stats")
    assert response is not None and response.status == 404
    expect(page.get_by_text("There is nothing at this address")).to_be_visible()
    # The New Listener is signed in but no admin: the same 404, and no Admin link.
    page.goto(f"{base}/login")
    page.get_by_role("radio", name=re.compile("New Listener")).check()
    page.get_by_role("button", name="Agree").click()
    page.wait_for_url(f"{base}/")
    expect(page.get_by_role("link", name="Household", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    response = page.goto(f"{base}/admin/stats")
    assert response is not None and response.status == 404
    expect(page.locator("main")).to_contain_text("There is nothing at this address")
    errors.assert_none()
