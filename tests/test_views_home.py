"""Home dashboard and the paged plays list: full page and fragment."""

from __future__ import annotations

import re
import time
from html import unescape

import httpx
import pytest

from tests.conftest import csrf_from, first_sync_plays, sign_in

HX = {"HX-Request": "true"}


async def test_anonymous_visitors_are_redirected(client: httpx.AsyncClient) -> None:
    for path in ("/", "/plays", "/analytics", "/playlists", "/settings"):
        page = await client.get(path)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/signin?next=")
        fragment = await client.get(path, headers=HX)
        assert fragment.status_code == 401
        assert fragment.headers["HX-Redirect"].startswith("/signin?next=")


async def test_dashboard_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/")
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Home' in page.text
    assert 'id="dashboard"' in page.text
    assert 'data-chart="chart-last-30"' in page.text
    assert page.text.count('class="play"') == 20
    fragment = await client.get("/", headers=HX)
    assert fragment.status_code == 200
    assert fragment.text.startswith('<div id="dashboard"')
    assert "<html" not in fragment.text and "<nav" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]


@pytest.mark.parametrize("headers", [
    {"HX-Request": "true", "HX-Request-Type": "full"},
    {"HX-Request": "true", "HX-History-Restore-Request": "true"},
])
async def test_full_requests_and_history_restores_get_the_page(client: httpx.AsyncClient,
                                                               headers: dict) -> None:
    await sign_in(client)
    response = await client.get("/", headers=headers)
    assert response.text.startswith("<!doctype html>")


async def test_dashboard_figures(client: httpx.AsyncClient, emulator) -> None:
    await sign_in(client)
    page = (await client.get("/")).text
    figures = dict(re.findall(r"<dt>([^<]+)</dt><dd>([\d,]+)", page))
    stored = first_sync_plays(emulator)
    assert figures["Plays"] == str(stored)
    assert int(figures["Tracks"]) >= 1 and int(figures["Artists"]) >= 1
    assert "Top artists in" in page and f"Synced just now, {stored} new plays." in page
    # The last of the 30 days is today, which is not over: its row says so, and only it.
    rows = re.findall(r"<tr><th scope=\"row\">(.*?)</th>", page)
    assert len(rows) == 30 and rows[-1].endswith("(today so far)</span>")
    assert page.count("(today so far)") == 1


async def _user_id(app, account: str) -> int:
    return await app.state.services.db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = ?", (account,)).fetchone()[0])


async def _write(app, sql: str, *params) -> None:
    await app.state.services.db.run(lambda c: c.execute(sql, params))


async def _home(client: httpx.AsyncClient) -> tuple[str, str]:
    """The Home page and its fragment, both answered 200."""
    page, fragment = await client.get("/"), await client.get("/", headers=HX)
    assert page.status_code == fragment.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert fragment.text.startswith('<div id="dashboard"')
    return unescape(page.text), unescape(fragment.text)


async def test_new_listener_synced_with_no_plays(client: httpx.AsyncClient) -> None:
    await sign_in(client, account="newcomer")
    for html in await _home(client):
        assert "No plays yet" in html and "<canvas" not in html
        assert "Synced with Spotify just now: Spotify listed no music" in html
        assert "Synced just now, no new plays." in html
        assert "not synced" not in html.lower() and "No plays recorded yet" not in html


async def test_connected_before_the_first_sync(client: httpx.AsyncClient, app) -> None:
    await sign_in(client, account="newcomer")
    # As for an account made by `mtm demo-data`, or whose first fetch found a sync under way.
    await _write(app, "DELETE FROM sync_runs")
    for html in await _home(client):
        assert "No plays recorded yet" in html and "You are connected to Spotify." in html
        assert "Connected to Spotify; the first sync has not run yet." in html
        # The test app runs no background syncs (MTM_SYNC_INTERVAL=0), and says so.
        assert "Automatic syncs are off: use Sync now in Settings" in html
        assert "Not synced with Spotify yet" not in html


@pytest.mark.parametrize("how", ["job", "run"])
async def test_first_sync_running(client: httpx.AsyncClient, app, how: str) -> None:
    from mtm import connection, jobs, sync

    await sign_in(client, account="newcomer")
    await _write(app, "DELETE FROM sync_runs")
    user = await _user_id(app, "newcomer")
    if how == "job":
        # "Sync now" queued it; no run has started yet.
        await app.state.services.db.run(jobs.create, user, connection.SYNC)
    else:
        await app.state.services.db.run(sync.start_run, user, int(time.time()))
    status = "Syncing with Spotify now." if how == "job" else "Syncing now (started just now)."
    for html in await _home(client):
        assert "<h2 id=\"empty-title\">Syncing with Spotify</h2>" in html and status in html
        assert "A sync is fetching your last 50 plays from Spotify now" in html


async def test_not_connected(client: httpx.AsyncClient, app) -> None:
    await sign_in(client, account="newcomer")
    await _write(app, "DELETE FROM sync_runs")
    await _write(app, "DELETE FROM tokens")
    for html in await _home(client):
        assert "<h2 id=\"empty-title\">Not connected to Spotify</h2>" in html
        assert "Not connected to Spotify: new plays are not being recorded." in html
        assert '/login">connect Spotify</a>' in html and "next sync" not in html


async def test_home_and_analytics_after_clearing_all_data(client: httpx.AsyncClient,
                                                          app) -> None:
    from mtm.rendering import _day_label

    await sign_in(client)
    token = csrf_from((await client.get("/settings")).text)
    cleared = await client.post("/settings/clear", data={"csrf_token": token,
                                                         "understand": "yes", "confirm": "DELETE"})
    assert cleared.status_code == 303
    taken = await app.state.services.db.run(
        lambda c: c.execute("SELECT created_at FROM backups").fetchone()[0])
    day = _day_label(taken, "UTC")
    pages = [*await _home(client)]
    for headers in ({}, HX):
        analytics = await client.get("/analytics", headers=headers)
        assert analytics.status_code == 200
        pages.append(unescape(analytics.text))
    for html in pages:
        assert "Your listening data was cleared" in html
        assert f"You cleared all your listening data on {day}." in html
        assert '/settings#backups">Settings › Backups</a>' in html
        # Not the words for an account that never had any plays.
        assert "No plays recorded yet" not in html and "No listening recorded yet" not in html
        assert "from the moment you connect" not in html
    for html in pages[:2]:
        assert "Connected to Spotify; not synced since you cleared your data." in html


async def test_show_more_pages_through_history(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    home = (await client.get("/")).text
    link = re.search(r'href="http://127\.0\.0\.1:8000(/plays\?before=(\d+)&amp;key=(-?\d+))"',
                     home)
    assert link, "no show-more link"
    first_page_times = re.findall(r'<time datetime="([^"]+)"', home)

    fragment = await client.get(unescape(link.group(1)), headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    items = re.findall(r'<time datetime="([^"]+)"', fragment.text)
    assert len(items) == 20
    assert max(items) < min(first_page_times), "older plays follow, none repeated"
    assert '<li class="more">' in fragment.text

    page = await client.get(unescape(link.group(1)))
    assert page.text.startswith("<!doctype html>")
    assert re.findall(r'<time datetime="([^"]+)"', page.text) == items
    assert "Newest plays" in page.text


async def test_last_page_says_so(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    fragment = await client.get("/plays?before=1", headers=HX)
    assert "beginning of your history" in fragment.text
    assert '<li class="more">' not in fragment.text


@pytest.mark.parametrize("cursor", ["abc", "-5", "1.5", str(2**60)])
async def test_bad_cursor_is_422(client: httpx.AsyncClient, cursor: str) -> None:
    await sign_in(client)
    page = await client.get("/plays", params={"before": cursor})
    assert page.status_code == 422
    assert "<html" in page.text and "cursor" in page.text
    fragment = await client.get("/plays", params={"before": cursor}, headers=HX)
    assert fragment.status_code == 422
    assert "<html" not in fragment.text and 'role="alert"' in fragment.text


async def test_not_found_page_and_fragment(client: httpx.AsyncClient) -> None:
    page = await client.get("/no/such/page")
    assert page.status_code == 404 and "<html" in page.text and "Not Found" in page.text
    assert "<nav" not in page.text
    await sign_in(client)
    signed_in = await client.get("/no/such/page")
    assert signed_in.status_code == 404 and '<nav class="site-nav"' in signed_in.text
    fragment = await client.get("/no/such/page", headers=HX)
    assert fragment.status_code == 404
    assert fragment.text.startswith('<section class="card error-card" role="alert"')


async def test_server_error_page(app, client: httpx.AsyncClient, monkeypatch) -> None:
    from mtm import dashboard

    await sign_in(client)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard, "load", broken)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://127.0.0.1:8000",
                                 cookies=client.cookies) as quiet:
        response = await quiet.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "boom" not in response.text


async def test_database_unavailable_is_503(client: httpx.AsyncClient, monkeypatch) -> None:
    from mtm import dashboard
    from mtm.db import DatabaseUnavailable

    await sign_in(client)

    def locked(*args, **kwargs):
        raise DatabaseUnavailable("database is locked")

    monkeypatch.setattr(dashboard, "load", locked)
    response = await client.get("/", headers=HX)
    assert response.status_code == 503
    assert "Nothing was lost" in response.text


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["demo"] is True


async def test_responses_are_compressed(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/css/app.css", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"


async def test_dashboard_polls_for_new_syncs(client: httpx.AsyncClient, app) -> None:
    from mtm import sync

    await sign_in(client)
    fragment = (await client.get("/", headers=HX)).text
    poll = re.search(r'hx-get="http://127\.0\.0\.1:8000(/\?since=[^"]+)"', fragment).group(1)
    assert 'hx-trigger="every 60s"' in fragment
    quiet = await client.get(poll.replace("&amp;", "&"), headers=HX)
    assert quiet.status_code == 204 and quiet.text == ""
    # A background sync finishes: the next poll brings the refreshed dashboard.
    services = app.state.services
    user_id = (await services.db.run(lambda c: c.execute("SELECT id FROM users WHERE "
                                                         "spotify_id = 'demo'").fetchone()[0]))
    await sync.sync_user(services.db, services.spotify, user_id, holder="bg",
                         pacer=sync.Pacer(interval=0))
    fresh = await client.get(poll.replace("&amp;", "&"), headers=HX)
    assert fresh.status_code == 200 and fresh.text.startswith('<div id="dashboard"')
    # Without JavaScript the same URL is simply the page.
    assert (await client.get(poll.replace("&amp;", "&"))).text.startswith("<!doctype html>")


async def test_deferred_sync_shows_when_it_retries(client: httpx.AsyncClient, app,
                                                   emulator) -> None:
    from mtm import sync

    await sign_in(client)
    services = app.state.services
    user_id = (await services.db.run(lambda c: c.execute("SELECT id FROM users WHERE "
                                                         "spotify_id = 'demo'").fetchone()[0]))
    emulator.fail("/v1/me/player/recently-played", 429, times=1, retry_after=600)
    run = await sync.sync_user(services.db, services.spotify, user_id, holder="bg")
    assert run.outcome == "deferred"
    page = (await client.get("/")).text
    assert "Last sync paused: Spotify is limiting requests" in page
    assert re.search(r"Retrying at (\d\d [A-Z][a-z]{2} )?\d\d:\d\d\.", page)


def _row_ids(html: str) -> list[str]:
    return re.findall(r'<li class="play[^"]*" id="(play-\d+--?\d+)"', html)


def _shown_to(html: str) -> str:
    return re.search(r'id="recent-shown-to" name="shown_to" value="([^"]+)"', html).group(1)


async def test_refresh_keeps_every_row_shown_and_puts_new_plays_on_top(
        client: httpx.AsyncClient, app) -> None:
    from mtm import history, sync
    from tests.conftest import make_play

    await sign_in(client, account="newcomer")
    user = await _user_id(app, "newcomer")
    db = app.state.services.db
    # 60 plays a day apart, long ago; the clock of the test does not matter.
    await db.run(history.add_plays, user, [make_play(1_600_000_000 + i * 86_400, i)
                                           for i in range(60)])
    home = (await client.get("/", headers=HX)).text
    poll = unescape(re.search(r'id="sync-status"[^>]*hx-get="http://127\.0\.0\.1:8000([^"]+)"',
                              home).group(1))
    assert 'hx-include="#recent-shown-to"' in home and 'hx-swap="outerMorph"' in home
    # "Show more" once: 40 rows listed, the hidden field names the 40th.
    more = unescape(re.search(r'hx-get="http://127\.0\.0\.1:8000(/plays\?[^"]+)"', home).group(1))
    page_two = (await client.get(more, headers=HX)).text
    shown = _row_ids(home) + _row_ids(page_two)
    assert len(shown) == 40 and len(set(shown)) == 40
    shown_to = _shown_to(page_two)
    assert shown_to == shown[-1].removeprefix("play-").replace("-", ":", 1)

    # Nothing new: the poll costs nothing, whatever it keeps.
    poll += f"&shown_to={shown_to}"
    assert (await client.get(poll, headers=HX)).status_code == 204
    # A sync lands with two new plays.
    run = await db.run(sync.start_run, user, int(time.time()))
    await db.run(sync.save_plays, user, run, [make_play(1_700_000_000, 1),
                                              make_play(1_700_000_100, 2)])
    await db.run(sync.finish_run, run, "ok")
    fresh = await client.get(poll, headers=HX)
    assert fresh.status_code == 200 and fresh.text.startswith('<div id="dashboard"')
    rows = _row_ids(fresh.text)
    assert rows[2:] == shown, "every row shown stays, in its place"
    assert rows[0].startswith("play-1700000100-") and rows[1].startswith("play-1700000000-")
    assert _shown_to(fresh.text) == shown_to
    assert "Synced just now, 2 new plays." in fresh.text
    # Without the field (an old page), a refresh lists the first page only.
    assert len(_row_ids((await client.get("/", headers=HX)).text)) == 20


async def test_refresh_after_the_last_page_keeps_the_whole_history(
        client: httpx.AsyncClient, app) -> None:
    from mtm import history
    from tests.conftest import make_play

    await sign_in(client, account="newcomer")
    user = await _user_id(app, "newcomer")
    await app.state.services.db.run(history.add_plays, user, [
        make_play(1_600_000_000 + i * 86_400, i) for i in range(25)])
    home = (await client.get("/", headers=HX)).text
    more = unescape(re.search(r'hx-get="http://127\.0\.0\.1:8000(/plays\?[^"]+)"', home).group(1))
    last = (await client.get(more, headers=HX)).text
    assert len(_row_ids(last)) == 5 and "beginning of your history" in last
    # The end item still names the oldest row, so a refresh keeps all 25.
    refreshed = await client.get("/", params={"shown_to": _shown_to(last)}, headers=HX)
    assert len(_row_ids(refreshed.text)) == 25 and "Show more" not in refreshed.text


@pytest.mark.parametrize("value", ["abc", "12", "1:2:3", f"{2**60}:1", "1:99999999999999999999"])
async def test_bad_shown_to_is_422(client: httpx.AsyncClient, value: str) -> None:
    await sign_in(client)
    page = await client.get("/", params={"shown_to": value})
    assert page.status_code == 422 and "<html" in page.text and "shown_to" in page.text
    fragment = await client.get("/", params={"shown_to": value}, headers=HX)
    assert fragment.status_code == 422 and "<html" not in fragment.text


async def test_show_more_rows_take_the_focus_only_when_appended(client: httpx.AsyncClient
                                                                ) -> None:
    await sign_in(client)
    home = (await client.get("/")).text
    assert "autofocus" not in home
    more = unescape(re.search(r'href="http://127\.0\.0\.1:8000(/plays\?[^"]+)"', home).group(1))
    fragment = (await client.get(more, headers=HX)).text
    assert fragment.count("autofocus") == 1
    assert re.search(r'<li class="play[^"]*" id="play-[^"]+" tabindex="-1" autofocus>', fragment)
    # Without JavaScript the older plays are a page of their own: focus starts at its top.
    assert "autofocus" not in (await client.get(more)).text
    end = (await client.get("/plays?before=1", headers=HX)).text
    assert '<li class="end muted" tabindex="-1" autofocus>' in end


@pytest.mark.parametrize("interval,words", [
    (0, "Automatic syncs are off: use Sync now in Settings to fetch your plays."),
    (60, "The next sync runs within 1 minute, or use Sync now in Settings."),
    (1800, "The next sync runs within 30 minutes, or use Sync now in Settings."),
])
def test_when_the_next_sync_runs(conn, user_id: int, interval: int, words: str) -> None:
    from mtm import dashboard, users

    users.save_tokens(conn, user_id, access_token="a", refresh_token="r", expires_at=0,
                      scope="", new_consent=True)
    assert dashboard.recording(conn, user_id, interval).next_sync == words
    users.forget_tokens(conn, user_id)
    assert dashboard.recording(conn, user_id, interval).next_sync == ""
