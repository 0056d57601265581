"""Sign-in through the emulator: PKCE flow, state checks, denial, and expired consent."""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

import httpx

from mtm import sync, users
from tests.conftest import authorize, csrf_from, first_sync_plays, sign_in


def _db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.state.services.settings.database_path)


async def test_login_redirects_to_authorize_with_pkce(client: httpx.AsyncClient) -> None:
    response = await client.get("/login")
    assert response.status_code == 303
    url = urlsplit(response.headers["location"])
    query = parse_qs(url.query)
    assert url.path == "/emulator/accounts/authorize"
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["redirect_uri"] == ["http://127.0.0.1:8000/callback"]
    assert query["response_type"] == ["code"]
    # The verifier stays on the server: it is not in the cookie or the URL.
    assert "verifier" not in response.headers["location"]
    assert all(len(c.value) < 400 for c in client.cookies.jar)


async def test_localhost_is_moved_to_the_loopback_literal(app) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://localhost:8000") as local:
        response = await local.get("/login?next=/plays")
    assert response.status_code == 307
    assert response.headers["location"] == "http://127.0.0.1:8000/login?next=/plays"


async def test_full_sign_in_stores_tokens_server_side_and_fetches_plays(
        client: httpx.AsyncClient, app, emulator) -> None:
    response = await sign_in(client)
    assert response.headers["location"] == "/"
    home = await client.get("/")
    assert home.status_code == 200
    assert "Signed in. Welcome!" in home.text
    assert "Demo Listener" in home.text
    with _db(app) as conn:
        token_row = conn.execute("SELECT access_token, refresh_token FROM tokens").fetchone()
        plays = conn.execute("SELECT count(*) FROM plays WHERE source = 'api'").fetchone()[0]
        runs = conn.execute("SELECT outcome, plays_added FROM sync_runs").fetchall()
    stored = first_sync_plays(emulator)
    assert plays == stored and runs == [("ok", stored)]
    # Tokens never reach the browser: not in the page, not in the cookie.
    for secret in token_row:
        assert secret not in home.text
        assert all(secret not in c.value for c in client.cookies.jar)
    assert "new plays" in home.text


async def test_next_url_is_kept_through_sign_in(client: httpx.AsyncClient) -> None:
    first = await client.get("/settings")
    assert first.status_code == 303
    assert first.headers["location"] == "/signin?next=%2Fsettings"
    decided = await authorize(client, next_url="/settings")
    target = urlsplit(decided.headers["location"])
    done = await client.get(f"{target.path}?{target.query}")
    assert done.headers["location"] == "/settings"


async def test_open_redirects_are_refused(client: httpx.AsyncClient) -> None:
    decided = await authorize(client, next_url="//evil.example/")
    target = urlsplit(decided.headers["location"])
    done = await client.get(f"{target.path}?{target.query}")
    assert done.headers["location"] == "/"


async def test_state_mismatch_is_rejected(client: httpx.AsyncClient, app) -> None:
    decided = await authorize(client)
    query = parse_qs(urlsplit(decided.headers["location"]).query)
    forged = await client.get("/callback", params={"code": query["code"][0], "state": "forged"})
    assert forged.status_code == 400
    assert "not valid for this browser" in forged.text
    with _db(app) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0


async def test_state_from_another_browser_is_rejected(app) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as one, \
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as two:
        decided = await authorize(one)
        target = urlsplit(decided.headers["location"])
        await two.get("/signin")
        stolen = await two.get(f"{target.path}?{target.query}")
        assert stolen.status_code == 400
        # The attempt was consumed: replaying it in the right browser fails too.
        replay = await one.get(f"{target.path}?{target.query}")
        assert replay.status_code == 400


async def test_denied_consent(client: httpx.AsyncClient, app) -> None:
    decided = await authorize(client, decision="cancel")
    target = urlsplit(decided.headers["location"])
    assert parse_qs(target.query)["error"] == ["access_denied"]
    response = await client.get(f"{target.path}?{target.query}")
    assert response.status_code == 403
    assert "cancelled" in response.text
    with _db(app) as conn:
        assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 0
    assert (await client.get("/")).status_code == 303


async def test_spotify_down_during_exchange(client: httpx.AsyncClient, emulator) -> None:
    decided = await authorize(client)
    target = urlsplit(decided.headers["location"])
    emulator.fail("/accounts/api/token", 503, times=5)
    response = await client.get(f"{target.path}?{target.query}")
    assert response.status_code in (502, 503)
    assert "Spotify" in response.text
    assert (await client.get("/")).status_code == 303


async def test_invalid_grant_on_refresh_asks_to_reconnect_and_keeps_data(
        client: httpx.AsyncClient, app, emulator) -> None:
    await sign_in(client)
    services = app.state.services
    with _db(app) as conn:
        user_id, = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()
        before = conn.execute("SELECT count(*) FROM plays").fetchone()[0]
        conn.execute("UPDATE tokens SET expires_at = 0")
    emulator.expire_consent()
    run = await sync.sync_user(services.db, services.spotify, user_id, holder="t")
    assert run.outcome == "failed"
    assert "reconnect" in run.error.lower()
    with _db(app) as conn:
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == before
        assert conn.execute("SELECT count(*) FROM tokens").fetchone()[0] == 1
        assert conn.execute("SELECT reconnect_needed FROM users").fetchone()[0] == 1
    home = await client.get("/")
    assert "Spotify needs you to reconnect" in home.text
    assert "Last sync failed" in home.text
    # Reconnecting through the same flow clears the flag.
    emulator.reset_faults()
    await sign_in(client)
    user = await services.db.run(users.get_user, user_id)
    assert user is not None and not user.reconnect_needed


async def test_expired_access_token_is_refreshed_and_rotated(client: httpx.AsyncClient, app,
                                                             emulator) -> None:
    await sign_in(client)
    services = app.state.services
    with _db(app) as conn:
        user_id, old_refresh = conn.execute(
            "SELECT user_id, refresh_token FROM tokens").fetchone()
    emulator.expire_access_tokens()
    run = await sync.sync_user(services.db, services.spotify, user_id, holder="t")
    assert run.outcome == "ok"
    with _db(app) as conn:
        new_refresh, = conn.execute("SELECT refresh_token FROM tokens").fetchone()
    assert new_refresh != old_refresh


async def test_logout_needs_post_and_csrf(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    home = await client.get("/")
    assert (await client.get("/logout")).status_code == 405
    refused = await client.post("/logout")
    assert refused.status_code == 403
    assert (await client.get("/")).status_code == 200
    done = await client.post("/logout", data={"csrf_token": csrf_from(home.text)})
    assert done.status_code == 303 and done.headers["location"] == "/signin"
    assert (await client.get("/")).status_code == 303


async def test_logout_from_htmx_uses_header_token(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    home = await client.get("/")
    done = await client.post("/logout", headers={"HX-Request": "true",
                                                 "X-CSRFToken": csrf_from(home.text)})
    assert done.status_code == 200
    assert done.headers["HX-Redirect"] == "/signin"


async def test_signin_page_and_fragment(client: httpx.AsyncClient) -> None:
    page = await client.get("/signin")
    assert page.status_code == 200 and "<html" in page.text
    assert 'href="http://127.0.0.1:8000/login"' in page.text
    fragment = await client.get("/signin", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="signin"')
    assert "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]


async def test_signed_in_user_skips_signin_page(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.get("/signin")
    assert response.status_code == 303 and response.headers["location"] == "/"


async def test_every_queued_message_is_shown(client: httpx.AsyncClient, emulator) -> None:
    emulator.fail("/v1/me/player/recently-played", 503, times=5)
    await sign_in(client)
    home = (await client.get("/")).text
    assert "the first fetch of your plays failed" in home
    assert "Signed in. Welcome!" in home
    # Shown once: gone on the next page.
    again = (await client.get("/")).text
    assert "Signed in. Welcome!" not in again


async def test_sign_in_keeps_spotifys_account_id(client: httpx.AsyncClient, app) -> None:
    from mtm.spotify.emulator import USERS

    await sign_in(client)
    with _db(app) as conn:
        stored = conn.execute("SELECT spotify_id, account_id FROM users").fetchall()
    assert [tuple(r) for r in stored] == [("demo", USERS["demo"].account_id)]
    # Signing in again finds the same user by it.
    await client.post("/logout", data={"csrf_token": csrf_from((await client.get("/")).text)})
    await sign_in(client)
    with _db(app) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
