"""The emulator's app registration: redirect URIs and (development mode) registered users."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from mtm.config import SCOPES
from mtm.spotify import oauth
from mtm.spotify.emulator import IN_PROCESS_BASE, Emulator
from mtm.spotify.emulator.webapi import NOT_REGISTERED
from tests.conftest import Clock

REDIRECT = "http://127.0.0.1:8000/callback"
START = 1_790_000_000.0


def _params(redirect_uri: str = REDIRECT, **extra: str) -> dict[str, str]:
    return {"client_id": "mtm-demo", "response_type": "code", "redirect_uri": redirect_uri,
            "code_challenge_method": "S256", "state": "st",
            "code_challenge": oauth.challenge_for(oauth.make_verifier()),
            "scope": " ".join(SCOPES), **extra}


def _run(emulator: Emulator, body, base_url: str = IN_PROCESS_BASE, app=None) -> None:
    async def main() -> None:
        transport = (httpx.ASGITransport(app=app) if app is not None
                     else emulator.transport())
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            await body(http)
    asyncio.run(main())


# Well formed for Spotify's rules, but not what the app registered: a stranger's link.
@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/callback", "http://127.0.0.1:9999/callback",
    "http://127.0.0.1:8000/callback/", "http://127.0.0.1:8000/callback?x=1",
    "http://[::1]:8000/callback",
])
def test_an_unregistered_redirect_uri_gets_an_error_page_and_no_code(redirect_uri):
    emulator = Emulator(clock=Clock(START))

    async def body(http: httpx.AsyncClient) -> None:
        page = await http.get("/accounts/authorize", params=_params(redirect_uri))
        assert page.status_code == 400
        assert "INVALID_CLIENT: Invalid redirect URI" in page.text
        assert "<form" not in page.text and "location" not in page.headers
        # Skipping the page and going straight to the decision gives no code either.
        decided = await http.get("/accounts/authorize/decide", params=_params(
            redirect_uri, user="demo", decision="agree"))
        assert decided.status_code == 400 and "location" not in decided.headers
        assert "INVALID_CLIENT: Invalid redirect URI" in decided.text
    _run(emulator, body)


def test_a_registered_redirect_uri_gets_the_code():
    emulator = Emulator(clock=Clock(START), redirect_uris=["https://music.example/callback"])

    async def body(http: httpx.AsyncClient) -> None:
        decided = await http.get("/accounts/authorize/decide", params=_params(
            "https://music.example/callback", user="demo", decision="agree"))
        assert decided.status_code == 303
        assert decided.headers["location"].startswith("https://music.example/callback?")
        # Only the registered one: the default is not registered any more.
        refused = await http.get("/accounts/authorize", params=_params(REDIRECT))
        assert refused.status_code == 400
    _run(emulator, body)


@pytest.mark.parametrize(("origin", "accepted", "refused"), [
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123/callback",
     "http://127.0.0.1:8124/callback"),
    ("http://[::1]:5000", "http://[::1]:5000/callback", "http://[::1]:5000/other"),
])
def test_the_demo_app_registers_its_callback_on_the_port_it_serves(origin, accepted, refused):
    emulator = Emulator(clock=Clock(START))
    emulator.register_own_origin("/callback")
    outer = Starlette(routes=[Mount("/emulator", routes=emulator.browser_routes())])

    async def body(http: httpx.AsyncClient) -> None:
        ok = await http.get("/emulator/accounts/authorize/decide", params=_params(
            accepted, user="demo", decision="agree"))
        assert ok.status_code == 303 and ok.headers["location"].startswith(accepted + "?")
        no = await http.get("/emulator/accounts/authorize", params=_params(refused))
        assert no.status_code == 400 and "Invalid redirect URI" in no.text
    _run(emulator, body, base_url=origin, app=outer)


def test_the_token_endpoint_wants_the_redirect_uri_of_the_authorize_call():
    emulator = Emulator(clock=Clock(START), redirect_uris=[REDIRECT, "https://b.example/cb"])

    async def body(http: httpx.AsyncClient) -> None:
        verifier = oauth.make_verifier()
        decided = await http.get("/accounts/authorize/decide", params={
            **_params(REDIRECT, user="demo", decision="agree"),
            "code_challenge": oauth.challenge_for(verifier)})
        code = parse_qs(urlsplit(decided.headers["location"]).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
                "client_id": "mtm-demo"}
        # Another registered URI is still not the one the code was issued for.
        other = await http.post("/accounts/api/token",
                                data={**form, "redirect_uri": "https://b.example/cb"})
        assert other.status_code == 400
        assert other.json() == {"error": "invalid_grant",
                                "error_description": "Invalid redirect URI"}
    _run(emulator, body)


def test_a_development_mode_app_serves_only_its_registered_users():
    emulator = Emulator(clock=Clock(START), registered_users=["demo"])

    async def token_for(http: httpx.AsyncClient, user: str) -> str:
        verifier = oauth.make_verifier()
        code = emulator.grant_code(user, redirect_uri=REDIRECT,
                                   code_challenge=oauth.challenge_for(verifier),
                                   scope=" ".join(SCOPES))
        answer = await http.post("/accounts/api/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": "mtm-demo"})
        # Spotify issues the tokens; it is the API that refuses.
        assert answer.status_code == 200
        return answer.json()["access_token"]

    async def body(http: httpx.AsyncClient) -> None:
        demo = await token_for(http, "demo")
        newcomer = await token_for(http, "newcomer")
        assert (await http.get("/v1/me", headers={"Authorization": f"Bearer {demo}"})
                ).status_code == 200
        for path in ("/v1/me", "/v1/me/player/recently-played"):
            refused = await http.get(path, headers={"Authorization": f"Bearer {newcomer}"})
            assert refused.status_code == 403
            assert refused.json() == {"error": {"status": 403, "message": NOT_REGISTERED}}
        assert "may not be registered" in NOT_REGISTERED
    _run(emulator, body)
