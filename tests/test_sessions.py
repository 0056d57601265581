"""Server-side sessions: sign-out and Disconnect end them, fixation, idle and absolute expiry."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from collections.abc import AsyncIterator

import httpx
import itsdangerous
import pytest

from mtm import sessions, users
from mtm.config import load_settings
from tests.conftest import BASE_URL, Clock, csrf_from, sign_in

DAY = 86400
COOKIE = "mtm_session"


def _db(app) -> sqlite3.Connection:
    return sqlite3.connect(app.state.services.settings.database_path)


def _rows(app) -> list[tuple]:
    with _db(app) as conn:
        return conn.execute("SELECT user_id, created_at, last_seen_at, user_agent "
                            "FROM sessions ORDER BY created_at").fetchall()


def _cookie_data(value: str) -> dict:
    payload = value.split(".")[0]
    return json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture
def clock(app) -> Clock:
    """The app's clock for sessions and limits, standing still until a test moves it."""
    moment = Clock(time.time())
    app.state.services.clock = moment
    return moment


@pytest.fixture
async def other(app) -> AsyncIterator[httpx.AsyncClient]:
    """A second browser on the same app."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as http:
        yield http


def _plant(client: httpx.AsyncClient, value: str) -> None:
    """Give a browser this cookie, as a copy or an attacker would."""
    client.cookies.clear()
    client.cookies.set(COOKIE, value, domain="127.0.0.1")


async def _signed_in(client: httpx.AsyncClient) -> bool:
    response = await client.get("/settings")
    assert response.status_code in (200, 303), response.text
    return response.status_code == 200


async def test_a_cookie_copied_before_sign_out_no_longer_signs_in(
        client: httpx.AsyncClient, other: httpx.AsyncClient, clock: Clock) -> None:
    await sign_in(client)
    copied = client.cookies.get(COOKIE)
    _plant(other, copied)
    assert await _signed_in(other), "the copy works while the session lives"
    home = await client.get("/")
    done = await client.post("/logout", data={"csrf_token": csrf_from(home.text)})
    assert done.status_code == 303
    # The copy is still validly signed and within its 30-day Max-Age, yet it signs in no one.
    _plant(other, copied)
    response = await other.get("/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fsettings"
    # A day later too: nothing brings it back.
    clock.advance(DAY)
    _plant(other, copied)
    assert not await _signed_in(other)


async def test_disconnect_ends_every_session_of_the_user(
        client: httpx.AsyncClient, other: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    await sign_in(other)
    token = csrf_from((await client.get("/settings")).text)
    response = await client.post("/settings/disconnect", data={
        "csrf_token": token, "confirm": "yes", "history": "keep"})
    assert response.status_code == 303
    assert not await _signed_in(other), "the other browser is signed out too"
    assert not await _signed_in(client)
    assert _rows(app) == []
    # Signing in again afterwards works as ever.
    await sign_in(other)
    assert await _signed_in(other)


async def test_every_sign_in_starts_a_new_session(
        client: httpx.AsyncClient, other: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    first = client.cookies.get(COOKIE)
    await sign_in(client)
    second = client.cookies.get(COOKIE)
    assert _cookie_data(first)["sid"] != _cookie_data(second)["sid"]
    # The session the browser had before is ended, not left alive beside the new one.
    _plant(other, first)
    assert not await _signed_in(other)
    assert len(_rows(app)) == 1


async def test_a_planted_session_id_is_replaced_on_sign_in(
        client: httpx.AsyncClient, other: httpx.AsyncClient, app, clock: Clock) -> None:
    # Session fixation: the attacker gets an anonymous cookie and plants it in a victim's
    # browser; after the victim signs in, the attacker's copy must not be signed in.
    await other.get("/login")
    planted = other.cookies.get(COOKIE)
    _plant(client, planted)
    await sign_in(client)
    attacker = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
    async with attacker:
        _plant(attacker, planted)
        assert (await attacker.get("/settings")).status_code == 303
    assert _cookie_data(client.cookies.get(COOKIE))["sid"]


async def test_an_idle_session_expires(client: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    clock.advance(14 * DAY - 60)
    assert await _signed_in(client), "used within 14 days: still signed in"
    clock.advance(14 * DAY + 1)
    assert not await _signed_in(client)
    assert _rows(app) == [], "the expired session is deleted"


async def test_a_session_ends_90_days_after_sign_in_however_much_it_is_used(
        client: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    for _ in range(9):
        clock.advance(10 * DAY)
        assert await _signed_in(client)
    clock.advance(DAY)
    assert not await _signed_in(client), "91 days after sign-in"


async def test_use_is_written_at_most_every_five_minutes(
        client: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    [(_, created, seen, _)] = _rows(app)
    assert created == seen == int(clock.now)
    for _ in range(5):
        clock.advance(59)
        assert await _signed_in(client)
    # Under five minutes of use, nothing about the session was written.
    assert _rows(app)[0][2] == seen
    clock.advance(6)
    assert await _signed_in(client)
    assert _rows(app)[0][2] == int(clock.now)


async def test_a_cookie_from_before_server_side_sessions_asks_to_sign_in_again(
        client: httpx.AsyncClient, app, clock: Clock) -> None:
    await sign_in(client)
    with _db(app) as conn:
        user_id = conn.execute("SELECT id FROM users").fetchone()[0]
    # What the previous version put in the cookie: the user id, signed with the same key.
    signer = itsdangerous.TimestampSigner(app.state.services.settings.secret_key)
    legacy = signer.sign(base64.b64encode(json.dumps({"user_id": user_id}).encode())).decode()
    _plant(client, legacy)
    response = await client.get("/settings")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


async def test_sessions_record_a_summary_of_the_browser(app, clock: Clock) -> None:
    agent = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 "
             "<script>")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 headers={"User-Agent": agent}) as http:
        await sign_in(http)
    assert _rows(app)[0][3] == "Firefox on Linux"


def test_agent_summaries_never_store_the_raw_header() -> None:
    assert sessions.summarize_agent(None) is None
    assert sessions.summarize_agent("curl/8.5.0") == "curl8.5.0"
    assert sessions.summarize_agent("x" * 500 + "<>") == "x" * 40
    assert sessions.summarize_agent(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "Version/17.0 Mobile/15E148 Safari/604.1") == "Safari on iOS"


def test_deleting_an_account_ends_its_sessions(conn: sqlite3.Connection) -> None:
    user_id = users.upsert_user(conn, "listener-1", "Listener One")
    policy = sessions.Policy()
    sid = sessions.start(conn, user_id, 1_000_000, policy)
    assert sessions.resume(conn, sid, 1_000_001, policy).id == user_id
    conn.execute("DELETE FROM preferences WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
    assert sessions.count_for(conn, user_id) == 0
    assert sessions.resume(conn, sid, 1_000_002, policy) is None


def test_the_database_keeps_no_usable_session_id(conn: sqlite3.Connection) -> None:
    user_id = users.upsert_user(conn, "listener-1", "Listener One")
    sid = sessions.start(conn, user_id, 1_000_000, sessions.Policy())
    stored = conn.execute("SELECT id FROM sessions").fetchone()[0]
    assert sid not in stored and len(stored) == 64


def test_expired_sessions_are_purged_when_another_begins(conn: sqlite3.Connection) -> None:
    user_id = users.upsert_user(conn, "listener-1", "Listener One")
    policy = sessions.Policy(idle_seconds=100, max_seconds=1000)
    sessions.start(conn, user_id, 0, policy)
    sessions.start(conn, user_id, 101, policy)
    assert sessions.count_for(conn, user_id) == 1


@pytest.mark.parametrize(("idle", "most", "problem"), [
    ("0", "", "MTM_SESSION_IDLE_DAYS must be between 1 and 400"),
    ("", "401", "MTM_SESSION_MAX_DAYS must be between 1 and 400"),
    ("two", "", "MTM_SESSION_IDLE_DAYS must be a whole number of days"),
    ("30", "20", "cannot be longer than MTM_SESSION_MAX_DAYS"),
])
def test_session_lengths_are_validated(tmp_path, idle: str, most: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        load_settings(env_file=None, force_demo=True, overrides={
            "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k",
            "MTM_SESSION_IDLE_DAYS": idle, "MTM_SESSION_MAX_DAYS": most})


def test_session_lengths_default_to_two_weeks_idle_and_ninety_days(tmp_path) -> None:
    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k"})
    assert (settings.session_idle_days, settings.session_max_days) == (14, 90)
    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k", "MTM_SESSION_IDLE_DAYS": "3",
        "MTM_SESSION_MAX_DAYS": "7"})
    assert (settings.session_idle_days, settings.session_max_days) == (3, 7)
