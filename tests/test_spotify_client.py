"""The Spotify client against the emulator (in process) and a few hand-made answers."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mtm.config import SCOPES
from mtm.spotify import oauth
from mtm.spotify.client import (
    AuthorizationFailed,
    ConsentExpired,
    NotFound,
    QuotaExceeded,
    RateLimited,
    SpotifyClient,
    SpotifyError,
    SpotifyUnavailable,
    TokenSet,
    Unauthorized,
)
from mtm.spotify.emulator import Emulator
from tests.conftest import Clock

REDIRECT = "http://127.0.0.1:8000/callback"
START = 1_790_000_000.0


class Harness:
    """An emulator, a client wired to it, and the sleeps the client asked for."""

    def __init__(self) -> None:
        self.clock = Clock(START)
        self.emulator = Emulator(clock=self.clock)
        self.sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.client = SpotifyClient(
            client_id="mtm-demo", client_secret=None, accounts_url=Emulator.accounts_url,
            api_url=Emulator.api_url, transport=self.emulator.transport(), clock=self.clock,
            sleep=sleep)

    async def connect(self, user: str = "demo") -> TokenSet:
        """Go through the authorize page's decision and exchange the code."""
        verifier = oauth.make_verifier()
        async with httpx.AsyncClient(transport=self.emulator.transport(),
                                     base_url="http://emulator.invalid") as http:
            answer = await http.get("/accounts/authorize/decide", params={
                "client_id": "mtm-demo", "redirect_uri": REDIRECT, "state": "xyz",
                "code_challenge": oauth.challenge_for(verifier), "scope": " ".join(SCOPES),
                "user": user, "decision": "agree"})
        assert answer.status_code == 303
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["state"] == ["xyz"]
        return await self.client.exchange_code(query["code"][0], code_verifier=verifier,
                                               redirect_uri=REDIRECT)

    def requests_to(self, method: str, prefix: str) -> int:
        return sum(1 for m, p in self.emulator.requests if m == method and p.startswith(prefix))


def run(coro):
    return asyncio.run(coro)


def test_code_exchange_gives_tokens_that_work():
    async def main():
        h = Harness()
        tokens = await h.connect()
        assert tokens.access_token and tokens.refresh_token
        assert tokens.expires_at == int(START) + 3600
        assert set(tokens.scope.split()) == set(SCOPES)
        me = await h.client.me(tokens.access_token)
        assert (me["id"], me["display_name"]) == ("demo", "Demo Listener")
        # Development-mode apps see no country, email, product or followers since Feb 2026.
        assert not {"country", "email", "product", "followers"} & set(me) and me["account_id"]
        await h.client.aclose()
    run(main())


def test_wrong_verifier_wrong_redirect_and_reused_code_are_refused():
    async def main():
        h = Harness()
        verifier = oauth.make_verifier()
        challenge = oauth.challenge_for(verifier)
        code = h.emulator.grant_code(redirect_uri=REDIRECT, code_challenge=challenge)
        with pytest.raises(AuthorizationFailed) as wrong_verifier:
            await h.client.exchange_code(code, code_verifier=oauth.make_verifier(),
                                         redirect_uri=REDIRECT)
        assert wrong_verifier.value.status == 400
        assert "code_verifier" in wrong_verifier.value.detail

        code = h.emulator.grant_code(redirect_uri=REDIRECT, code_challenge=challenge)
        with pytest.raises(AuthorizationFailed) as wrong_redirect:
            await h.client.exchange_code(code, code_verifier=verifier,
                                         redirect_uri="http://127.0.0.1:9999/callback")
        assert "redirect" in wrong_redirect.value.detail.lower()

        code = h.emulator.grant_code(redirect_uri=REDIRECT, code_challenge=challenge)
        await h.client.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT)
        with pytest.raises(AuthorizationFailed):
            await h.client.exchange_code(code, code_verifier=verifier, redirect_uri=REDIRECT)
        await h.client.aclose()
    run(main())


def test_refresh_rotates_and_the_old_token_is_spent():
    async def main():
        h = Harness()
        first = await h.connect()
        h.clock.advance(600)
        second = await h.client.refresh(first.refresh_token)
        assert second.refresh_token != first.refresh_token
        assert second.access_token != first.access_token
        assert second.expires_at == int(START) + 600 + 3600
        with pytest.raises(ConsentExpired) as reused:
            await h.client.refresh(first.refresh_token)
        assert reused.value.status == 401
        assert reused.value.message == ("Your Spotify connection has expired; reconnect to "
                                        "keep recording.")
        third = await h.client.refresh(second.refresh_token)
        assert (await h.client.me(third.access_token))["id"] == "demo"
        await h.client.aclose()
    run(main())


def test_expire_consent_and_six_month_limit_give_consent_expired():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.expire_consent()
        with pytest.raises(ConsentExpired):
            await h.client.refresh(tokens.refresh_token)

        tokens = await h.connect()
        for _ in range(7):  # refreshing monthly does not extend the consent
            h.clock.advance(30 * 86400)
            try:
                tokens = await h.client.refresh(tokens.refresh_token)
            except ConsentExpired:
                break
        else:
            pytest.fail("consent never expired")
        assert h.clock.now - START > 180 * 86400
        await h.client.aclose()
    run(main())


def _mock_client(handler, **kwargs) -> SpotifyClient:
    async def no_sleep(seconds: float) -> None:
        return None

    options = {"client_id": "cid", "client_secret": None,
               "accounts_url": "https://accounts.test", "api_url": "https://api.test/v1",
               "transport": httpx.MockTransport(handler), "clock": lambda: 1000.0,
               "sleep": no_sleep, **kwargs}
    return SpotifyClient(**options)


def test_refresh_keeps_the_old_token_only_when_none_is_returned():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(parse_qs(request.content.decode()))
        return httpx.Response(200, json={"access_token": "new-access", "expires_in": 60,
                                         "scope": "user-top-read"})

    async def main():
        client = _mock_client(handler)
        tokens = await client.refresh("old-refresh")
        await client.aclose()
        return tokens

    tokens = run(main())
    assert tokens == TokenSet("new-access", "old-refresh", 1060, "user-top-read")
    assert seen[0]["client_id"] == ["cid"]
    assert seen[0]["grant_type"] == ["refresh_token"]


def test_client_secret_is_sent_with_http_basic_not_in_the_body():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"access_token": "a", "refresh_token": "r",
                                         "expires_in": 3600, "scope": ""})

    async def main():
        client = _mock_client(handler, client_secret="s3cret")
        await client.exchange_code("code", code_verifier="v" * 43, redirect_uri=REDIRECT)
        await client.aclose()

    run(main())
    request = seen[0]
    assert request.url == "https://accounts.test/api/token"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"cid:s3cret").decode()
    body = parse_qs(request.content.decode())
    assert "client_id" not in body
    assert body["code_verifier"] == ["v" * 43]


def test_rate_limit_raises_with_retry_after_and_never_sleeps():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.fail("/v1/me/player/recently-played", 429, retry_after=7200)
        with pytest.raises(RateLimited) as limited:
            await h.client.recently_played(tokens.access_token)
        assert limited.value.retry_after == 7200
        assert limited.value.status == 503
        assert "2 hours" in limited.value.message
        assert h.sleeps == []
        assert h.requests_to("GET", "/v1/me/player") == 1
        await h.client.aclose()
    run(main())


@pytest.mark.parametrize("header, expected", [(None, 60), ("soon", 60), ("-5", 60),
                                              ("30", 30)])
def test_retry_after_default_when_absent_or_garbled(header, expected):
    limited = refusal_of_me(429, {"error": {"status": 429}}, header)
    assert isinstance(limited, RateLimited) and limited.retry_after == expected


def refusal_of_me(status: int, body: dict, retry_after: str | None) -> Exception:
    """What GET /me raises when Spotify answers `status` with `body` (and Retry-After)."""
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return httpx.Response(status, headers=headers, json=body)

    async def main():
        client = _mock_client(handler)
        try:
            await client.me("token")
        finally:
            await client.aclose()

    with pytest.raises(SpotifyError) as raised:
        run(main())
    return raised.value


QUOTA_BODY = {"error": {"status": 429, "message": "Quota exceeded",
                         "reason": "QUOTA_EXCEEDED"}}


@pytest.mark.parametrize("header, expected", [
    ("7200", 7200),
    # No Retry-After: the daily quota lasts until midnight UTC (the clock is at 00:16:40).
    (None, 86400 - 1000)])
def test_quota_exceeded_is_told_apart_from_a_burst_limit(header, expected):
    exhausted = refusal_of_me(429, QUOTA_BODY, header)
    assert isinstance(exhausted, QuotaExceeded) and exhausted.retry_after == expected
    assert "daily allowance" in exhausted.message


def test_a_burst_limit_is_not_the_quota():
    limited = refusal_of_me(429, {"error": {"status": 429, "message": "API rate limit"}}, "5")
    assert isinstance(limited, RateLimited) and not isinstance(limited, QuotaExceeded)
    assert limited.retry_after == 5


def test_server_errors_are_retried_twice_then_unavailable():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.fail("/v1/me", 500, times=5)
        with pytest.raises(SpotifyUnavailable) as failed:
            await h.client.me(tokens.access_token)
        assert failed.value.status == 502
        assert h.requests_to("GET", "/v1/me") == 3
        assert len(h.sleeps) == 2 and sum(h.sleeps) <= 0.5
        await h.client.aclose()
    run(main())


def test_success_after_one_server_error():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.fail("/v1/me/player", 503)
        played = await h.client.recently_played(tokens.access_token, limit=5)
        assert len(played["items"]) == 5
        assert h.requests_to("GET", "/v1/me/player") == 2
        assert len(h.sleeps) == 1
        await h.client.aclose()
    run(main())


def test_timeouts_are_retried_then_unavailable_with_503():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.timeout("/v1/me/top", times=3)
        with pytest.raises(SpotifyUnavailable) as failed:
            await h.client.top_items(tokens.access_token, "tracks", "short_term")
        assert failed.value.status == 503
        assert h.requests_to("GET", "/v1/me/top") == 3

        h.emulator.timeout("/v1/me/top", times=1)
        top = await h.client.top_items(tokens.access_token, "tracks", "short_term", limit=3)
        assert len(top["items"]) == 3
        await h.client.aclose()
    run(main())


def test_network_failure_is_unavailable_with_503():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route", request=request)

    async def main():
        client = _mock_client(handler)
        try:
            await client.me("token")
        finally:
            await client.aclose()

    with pytest.raises(SpotifyUnavailable) as failed:
        run(main())
    assert failed.value.status == 503


def test_a_playlist_post_is_not_retried_after_a_server_error():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.emulator.fail("/v1/me/playlists", 500, times=3)
        with pytest.raises(SpotifyUnavailable):
            await h.client.create_playlist(tokens.access_token, "Once")
        assert h.requests_to("POST", "/v1/me/playlists") == 1
        await h.client.aclose()
    run(main())


def test_expired_access_token_is_unauthorized_until_refreshed():
    async def main():
        h = Harness()
        tokens = await h.connect()
        h.clock.advance(3601)
        with pytest.raises(Unauthorized) as refused:
            await h.client.me(tokens.access_token)
        assert refused.value.status == 401
        fresh = await h.client.refresh(tokens.refresh_token)
        assert (await h.client.me(fresh.access_token))["id"] == "demo"
        await h.client.aclose()
    run(main())


def test_unknown_track_is_not_found_and_other_errors_are_spotify_errors():
    async def main():
        h = Harness()
        tokens = await h.connect()
        with pytest.raises(NotFound) as missing:
            await h.client.track(tokens.access_token, "0" * 22)
        assert missing.value.status == 404
        with pytest.raises(SpotifyError) as bad:
            await h.client.artist(tokens.access_token, "not-an-id")
        assert type(bad.value) is SpotifyError and bad.value.status == 502
        await h.client.aclose()
    run(main())


def test_recently_played_and_cursors_through_the_client():
    async def main():
        h = Harness()
        tokens = await h.connect()
        page = await h.client.recently_played(tokens.access_token)
        stamps = [int(c) for c in (page["cursors"]["after"], page["cursors"]["before"])]
        assert len(page["items"]) == 50
        older = await h.client.recently_played(tokens.access_token, before=stamps[0], limit=10)
        assert len(older["items"]) == 10
        assert older["items"][0]["played_at"] == page["items"][1]["played_at"]
        h.clock.advance(86400)
        tokens = await h.client.refresh(tokens.refresh_token)
        newer = await h.client.recently_played(tokens.access_token, after=stamps[0])
        assert newer["items"]
        assert all(item["played_at"] > page["items"][0]["played_at"]
                   for item in newer["items"])
        with pytest.raises(ValueError):
            await h.client.recently_played(tokens.access_token, after=1, before=2)
        await h.client.aclose()
    run(main())


def test_top_items_and_artist_details_switch():
    async def main():
        h = Harness()
        tokens = await h.connect()
        top = await h.client.top_items(tokens.access_token, "artists", "long_term", limit=10)
        assert len(top["items"]) == 10
        artist = await h.client.artist(tokens.access_token, top["items"][0]["id"])
        assert "genres" in artist and "popularity" not in artist and "followers" not in artist
        h.emulator.omit_artist_details = True
        artist = await h.client.artist(tokens.access_token, top["items"][0]["id"])
        assert "genres" not in artist
        with pytest.raises(ValueError):
            await h.client.top_items(tokens.access_token, "albums", "long_term")  # type: ignore[arg-type]

        newcomer = await h.connect("newcomer")
        empty = await h.client.top_items(newcomer.access_token, "tracks", "short_term")
        assert empty["items"] == [] and empty["total"] == 0
        played = await h.client.recently_played(newcomer.access_token)
        assert played["items"] == []
        await h.client.aclose()
    run(main())


def test_playlist_create_add_in_chunks_rename_and_unfollow():
    async def main():
        h = Harness()
        tokens = await h.connect()
        created = await h.client.create_playlist(tokens.access_token, "Forgotten gems",
                                                 description="From 2024")
        playlist_id = created["id"]
        assert h.emulator.playlists[playlist_id]["public"] is False
        uris = [f"spotify:track:{t.spotify_id}" for t in h.emulator.catalogue.tracks[:250]]
        uris.reverse()
        await h.client.add_items(tokens.access_token, playlist_id, uris)
        assert h.requests_to("POST", f"/v1/playlists/{playlist_id}/items") == 3
        assert h.emulator.playlists[playlist_id]["items"] == uris
        await h.client.add_items(tokens.access_token, playlist_id, [])
        assert h.requests_to("POST", f"/v1/playlists/{playlist_id}/items") == 3

        await h.client.rename_playlist(tokens.access_token, playlist_id, "Gems, renamed")
        assert h.emulator.playlists[playlist_id]["name"] == "Gems, renamed"
        await h.client.unfollow_playlist(tokens.access_token, playlist_id)
        assert h.emulator.playlists[playlist_id]["followed"] is False
        with pytest.raises(NotFound):
            await h.client.rename_playlist(tokens.access_token, "0" * 22, "nope")
        await h.client.aclose()
    run(main())
