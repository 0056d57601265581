"""CSRF on every unsafe route, security headers, and no inline script or style."""

from __future__ import annotations

import re

import httpx
from starlette.routing import BaseRoute, Mount, Route

from mtm.security import SECURITY_HEADERS
from tests.conftest import sign_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """Every (method, path) in the route table that changes state, mounts included."""
    found = []
    for route in routes:
        if isinstance(route, Mount):
            found += unsafe_routes(getattr(route, "routes", []) or [], prefix + route.path)
        elif isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "1", prefix + route.path)
            found += [(method, path) for method in sorted(route.methods or ()) if method in UNSAFE]
    return found


async def test_every_unsafe_route_refuses_a_request_without_csrf_token(
        client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    routes = unsafe_routes(app.routes)
    assert ("POST", "/logout") in routes
    for method, path in routes:
        for headers in ({}, {"HX-Request": "true"}):
            response = await client.request(method, path, headers=headers,
                                            data={"confirm": "DELETE"} if method != "DELETE"
                                            else None)
            assert response.status_code == 403, (method, path, response.status_code)
    # Still signed in: the refused logout changed nothing.
    assert (await client.get("/")).status_code == 200


async def test_a_forged_token_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.post("/logout", data={"csrf_token": "forged.token.value"})
    assert response.status_code == 403
    assert "reload the page" in response.text.lower()


async def test_security_headers_on_pages_errors_and_static(client: httpx.AsyncClient) -> None:
    for path in ("/signin", "/does-not-exist", "/static/css/app.css", "/healthz"):
        response = await client.get(path)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (path, name)
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


async def test_pages_are_not_cached(client: httpx.AsyncClient) -> None:
    assert (await client.get("/signin")).headers["cache-control"] == "no-store"


async def test_no_inline_script_style_or_handlers(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for path in ("/", "/plays", "/analytics", "/playlists", "/settings", "/nope",
                 "/emulator/accounts/authorize?client_id=mtm-demo"):
        html = (await client.get(path)).text
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\sstyle=", html), path
        assert not re.search(r"\son[a-z]+=", html), path


async def test_session_cookie_holds_no_spotify_token(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    cookie = client.cookies.get("mtm_session")
    assert cookie
    payload = cookie.split(".")[0]
    import base64
    import json

    data = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(data) <= {"sid", "csrf_token", "flash"}
    # A random server-side session id, not the user id.
    assert isinstance(data["sid"], str) and len(data["sid"]) >= 40
