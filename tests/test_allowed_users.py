"""Who may sign in: MTM_ALLOWED_USERS, and Spotify's own cap on a development-mode app."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mtm import accounts
from mtm.config import load_settings
from mtm.spotify.emulator import USERS, Emulator
from tests.conftest import BASE_URL, Clock, authorize

TABLES = ("tokens", "sync_runs", "sessions", "preferences", "plays")


async def _app_client(tmp_path: Path, emulator: Emulator, allowed: str | None
                      ) -> AsyncIterator[tuple]:
    from mtm.app import create_app

    overrides = {"MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "test-secret-key",
                 "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0"}
    if allowed is not None:
        overrides["MTM_ALLOWED_USERS"] = allowed
    settings = load_settings(env_file=None, force_demo=True, overrides=overrides)
    application = create_app(settings, emulator=emulator)
    async with (application.router.lifespan_context(application),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=application),
                                  base_url=BASE_URL) as http):
        yield application, http


def _stored(app, spotify_id: str) -> dict[str, int]:
    """Every row kept for this Spotify account, by table (and 'users')."""
    with sqlite3.connect(app.state.services.settings.database_path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM users WHERE spotify_id = ?",
                                          (spotify_id,))]
        counts = {"users": len(ids)}
        for table in TABLES:
            counts[table] = sum(conn.execute(f"SELECT count(*) FROM {table} WHERE user_id = ?",
                                             (i,)).fetchone()[0] for i in ids)
    return counts


async def _callback(http: httpx.AsyncClient, account: str) -> httpx.Response:
    decided = await authorize(http, account=account)
    target = urlsplit(decided.headers["location"])
    return await http.get(f"{target.path}?{target.query}")


@pytest.fixture
def still_emulator() -> Emulator:
    return Emulator(client_id="mtm-demo", clock=Clock(time.time()))


async def test_an_account_off_the_list_is_refused_and_nothing_is_stored(
        tmp_path: Path, still_emulator: Emulator) -> None:
    async for app, http in _app_client(tmp_path, still_emulator, "demo, someone-else"):
        refused = await _callback(http, "newcomer")
        assert refused.status_code == 403
        assert "is not among the accounts allowed to sign in" in refused.text
        assert "(id newcomer)" in refused.text and "MTM_ALLOWED_USERS" in refused.text
        assert "Sign in with Spotify" in refused.text
        assert set(_stored(app, "newcomer").values()) == {0}
        assert (await http.get("/settings")).status_code == 303
        # Nothing was asked of Spotify beyond the code exchange and the profile.
        assert not [p for _, p in still_emulator.requests if "recently-played" in p]
        welcome = await _callback(http, "demo")
        assert welcome.status_code == 303
        assert (await http.get("/settings")).status_code == 200


async def test_the_list_may_name_the_stable_account_id(
        tmp_path: Path, still_emulator: Emulator) -> None:
    async for app, http in _app_client(tmp_path, still_emulator, USERS["newcomer"].account_id):
        assert (await _callback(http, "newcomer")).status_code == 303
        assert _stored(app, "newcomer")["users"] == 1
        refused = await _callback(http, "demo")
        assert refused.status_code == 403


async def test_without_a_list_everyone_may_sign_in(
        tmp_path: Path, still_emulator: Emulator) -> None:
    async for app, http in _app_client(tmp_path, still_emulator, ""):
        assert app.state.services.settings.allowed_users is None
        assert (await _callback(http, "newcomer")).status_code == 303


async def test_spotify_refusing_an_unregistered_user_is_said_in_words(
        tmp_path: Path) -> None:
    capped = Emulator(client_id="mtm-demo", clock=Clock(time.time()),
                      registered_users=["demo"])
    async for app, http in _app_client(tmp_path, capped, None):
        refused = await _callback(http, "newcomer")
        assert refused.status_code == 403
        text = refused.text
        assert "developer dashboard" in text and "five at most" in text
        assert "Ask whoever runs this server to add your Spotify account" in text
        assert set(_stored(app, "newcomer").values()) == {0}
        assert (await _callback(http, "demo")).status_code == 303


def test_allowed_compares_both_ids() -> None:
    profile = {"id": "abc", "account_id": "XYZ"}
    assert accounts.allowed(profile, None)
    assert accounts.allowed(profile, frozenset({"abc"}))
    assert accounts.allowed(profile, frozenset({"XYZ"}))
    assert not accounts.allowed(profile, frozenset({"abcd", "xyz"}))
    assert not accounts.allowed({"id": "", "account_id": None}, frozenset({""}))


def test_the_allow_list_setting_is_a_comma_list(tmp_path: Path) -> None:
    settings = load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k",
        "MTM_ALLOWED_USERS": " alice ,bob,, "})
    assert settings.allowed_users == frozenset({"alice", "bob"})
