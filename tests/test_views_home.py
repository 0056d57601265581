"""Home dashboard and the paged plays list: full page and fragment."""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from tests.conftest import first_sync_plays, sign_in

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


async def test_new_listener_sees_an_empty_state(client: httpx.AsyncClient) -> None:
    await sign_in(client, account="newcomer")
    page = await client.get("/")
    assert page.status_code == 200
    assert "No plays recorded yet" in page.text
    assert "<canvas" not in page.text
    assert "Synced just now, no new plays." in page.text


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
