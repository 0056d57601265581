"""Rate limits on sign-in, uploads and downloads: 429 with Retry-After, shared by workers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mtm import db, ratelimit
from tests.conftest import BASE_URL, Clock, sign_in

HX = {"HX-Request": "true"}


@pytest.fixture
def clock(app) -> Clock:
    """The app's clock, at the start of a ten-minute window so a test never straddles two."""
    now = time.time()
    moment = Clock(now - now % 3600 + 5)
    app.state.services.clock = moment
    return moment


def _client(app, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 4321)),
                             base_url=BASE_URL, follow_redirects=False)


@pytest.fixture
async def visitor(app) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app, "203.0.113.7") as http:
        yield http


def _assert_refused(response: httpx.Response, words: str) -> int:
    assert response.status_code == 429, response.text
    wait = int(response.headers["Retry-After"])
    assert wait > 0
    assert f"too many {words}" in response.text
    assert "please wait" in response.text
    return wait


async def test_sign_in_attempts_are_limited_per_address(app, visitor: httpx.AsyncClient,
                                                        clock: Clock) -> None:
    for _ in range(ratelimit.LOGIN.hits):
        assert (await visitor.get("/login")).status_code == 303
    refused = await visitor.get("/login")
    wait = _assert_refused(refused, "sign-in attempts")
    assert wait == 600 - 5
    assert "<html" in refused.text and "Too Many Requests" in refused.text
    fragment = await visitor.get("/login", headers=HX)
    _assert_refused(fragment, "sign-in attempts")
    assert "<html" not in fragment.text and 'role="alert"' in fragment.text
    # Another address is not held back by this one.
    async with _client(app, "198.51.100.9") as neighbour:
        assert (await neighbour.get("/login")).status_code == 303
    clock.advance(wait)
    assert (await visitor.get("/login")).status_code == 303


async def test_callbacks_are_limited_per_address(visitor: httpx.AsyncClient,
                                                 clock: Clock) -> None:
    for _ in range(ratelimit.CALLBACK.hits):
        # No state: refused as an invalid sign-in, and still counted.
        assert (await visitor.get("/callback?code=x&state=y")).status_code == 400
    _assert_refused(await visitor.get("/callback?code=x&state=y"), "sign-in attempts")


async def test_downloads_are_limited_per_user(app, client: httpx.AsyncClient,
                                              clock: Clock) -> None:
    await sign_in(client)
    # Exports and backup downloads share one allowance.
    for n in range(ratelimit.DOWNLOAD.hits):
        path = "/settings/export/none" if n % 2 else "/settings/backups/999/download"
        assert (await client.get(path)).status_code == 404
    refused = await client.get("/settings/export/csv")
    _assert_refused(refused, "downloads")
    _assert_refused(await client.get("/settings/backups/1/download"), "downloads")
    # The same address signed in as someone else has its own allowance.
    async with _client(app, "127.0.0.1") as housemate:
        await sign_in(housemate, "newcomer")
        assert (await housemate.get("/settings/export/csv")).status_code == 200
    clock.advance(3600)
    assert (await client.get("/settings/export/csv")).status_code == 200


async def test_uploads_are_limited_per_user(client: httpx.AsyncClient, clock: Clock) -> None:
    await sign_in(client)
    for _ in range(ratelimit.UPLOAD.hits):
        # Without a CSRF token: refused by the upload itself, and still counted.
        assert (await client.post("/settings/imports")).status_code == 403
    refused = await client.post("/settings/imports", headers=HX)
    _assert_refused(refused, "uploads")


async def test_a_normal_session_never_meets_a_limit(client: httpx.AsyncClient,
                                                    clock: Clock) -> None:
    # Signing in on a few devices, a few exports: far below every limit.
    for _ in range(3):
        await sign_in(client)
    for fmt in ("csv", "json", "sqlite", "csv"):
        assert (await client.get(f"/settings/export/{fmt}")).status_code == 200


def test_counts_are_shared_by_every_process(tmp_path: Path) -> None:
    path = tmp_path / "limits.sqlite3"
    first, second = db.connect(path), db.connect(path)
    try:
        db.migrate(first)
        limit = ratelimit.Limit("t", 3, 60, "address", "tries")
        now = 6000
        assert ratelimit.hit(first, "t:a", limit, now) is None
        assert ratelimit.hit(second, "t:a", limit, now + 1) is None
        assert ratelimit.hit(first, "t:a", limit, now + 2) is None
        # The fourth, whichever process sees it, is over the limit until the window ends.
        assert ratelimit.hit(second, "t:a", limit, now + 10) == 50
        assert ratelimit.hit(first, "t:b", limit, now + 10) is None
        assert ratelimit.hit(first, "t:a", limit, now + 60) is None
        # Ended windows are not kept.
        ratelimit.hit(first, "t:c", limit, now + 4000)
        rows = first.execute("SELECT count(*) FROM rate_limits WHERE window_start < ?",
                             (now + 4000 - ratelimit.LONGEST_WINDOW,)).fetchone()[0]
        assert rows == 0
    finally:
        first.close()
        second.close()


def test_the_refusal_says_how_long_to_wait() -> None:
    assert "wait a minute" in ratelimit.refusal(ratelimit.LOGIN, 20)
    assert "wait 10 minutes" in ratelimit.refusal(ratelimit.LOGIN, 595)


def test_limits_can_be_switched_off_and_the_switch_is_validated(tmp_path: Path) -> None:
    from mtm.config import load_settings

    def settings(value: str):
        return load_settings(env_file=None, force_demo=True, overrides={
            "MTM_DATA_DIR": str(tmp_path), "MTM_SECRET_KEY": "k", "MTM_RATE_LIMITS": value})

    assert settings("").rate_limits and settings("on").rate_limits
    assert not settings("off").rate_limits
    with pytest.raises(ValueError, match="MTM_RATE_LIMITS must be on or off"):
        settings("sometimes")


async def test_switched_off_nothing_is_limited(app, visitor: httpx.AsyncClient,
                                               clock: Clock) -> None:
    from dataclasses import replace

    services = app.state.services
    services.settings = replace(services.settings, rate_limits=False)
    for _ in range(ratelimit.LOGIN.hits + 5):
        assert (await visitor.get("/login")).status_code == 303
