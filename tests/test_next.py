"""`next` and every redirect: a local path only, checked once, the same for Location and
HX-Redirect."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx
import pytest

from mtm.rendering import safe_next
from tests.conftest import authorize, sign_in

# As the app receives them: query parameters already percent-decoded once.
HOSTILE = [
    "//evil.example/", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", "/\n/evil.example", "/\r\nSet-Cookie: x=1", "/\x00", "/\x7f",
    " /settings", "/settings ", "/\u3000/evil.example", "/x\u2028y",
    "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "evil.example",
    "settings", "", ".//evil.example",
    # Encoded once more: what a browser, proxy or htmx may decode on the way.
    "/%09/evil.example", "/%0a/evil.example", "/%0d%0aSet-Cookie:%20x=1", "/%2F/evil.example",
    "/%2f%2fevil.example", "/%5Cevil.example", "/%5c%5cevil.example", "/%2509/evil.example",
    "/%25252F/evil.example", "/%00",
    "/" + "a" * 2100,
]
SAFE = [
    ("/settings", "/settings"),
    ("/plays?q=two%20words&page=2", "/plays?q=two%20words&page=2"),
    ("/artists/12#top", "/artists/12#top"),
    ("/search?q=Bj%C3%B6rk", "/search?q=Bj%C3%B6rk"),
    # Left non-ASCII, percent-encoded so it is a valid header.
    ("/search?q=Björk", "/search?q=Bj%C3%B6rk"),
    ("/search?q=a+b", "/search?q=a+b"),
    ("/", "/"),
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_targets_are_refused(value: str) -> None:
    assert safe_next(value) is None


@pytest.mark.parametrize(("value", "expected"), SAFE)
def test_local_paths_are_kept(value: str, expected: str) -> None:
    assert safe_next(value) == expected


def test_only_strings_are_targets() -> None:
    for value in (None, 12, ["/settings"], {"a": "/"}):
        assert safe_next(value) is None


def _query(value: str) -> str:
    return "next=" + quote(value, safe="")


@pytest.mark.parametrize("value", HOSTILE)
async def test_htmx_sign_in_page_never_echoes_a_hostile_target(
        client: httpx.AsyncClient, value: str) -> None:
    await sign_in(client)
    response = await client.get(f"/signin?{_query(value)}", headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/"
    plain = await client.get(f"/signin?{_query(value)}")
    assert plain.status_code == 303 and plain.headers["location"] == "/"


async def test_the_reported_tab_target_goes_home(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    response = await client.get("/signin?next=/%09/evil.example",
                                headers={"HX-Request": "true"})
    assert response.headers["HX-Redirect"] == "/"
    newline = await client.get("/signin?next=/%0a/x", headers={"HX-Request": "true"})
    assert newline.status_code == 200 and newline.headers["HX-Redirect"] == "/"


@pytest.mark.parametrize("value", ["/%09/evil.example", "//evil.example", "/%5Cevil",
                                   "/%0d%0aSet-Cookie:x", "https://evil.example"])
async def test_sign_in_through_spotify_never_lands_off_site(client: httpx.AsyncClient,
                                                            value: str) -> None:
    decided = await authorize(client, next_url=value)
    target = urlsplit(decided.headers["location"])
    done = await client.get(f"{target.path}?{target.query}")
    assert done.status_code == 303 and done.headers["location"] == "/"


async def test_a_safe_target_survives_sign_in_and_htmx(client: httpx.AsyncClient) -> None:
    decided = await authorize(client, next_url="/search?q=Björk")
    target = urlsplit(decided.headers["location"])
    done = await client.get(f"{target.path}?{target.query}")
    assert done.headers["location"] == "/search?q=Bj%C3%B6rk"
    again = await client.get("/signin?next=/search%3Fq%3DBj%C3%B6rk",
                             headers={"HX-Request": "true"})
    assert again.headers["HX-Redirect"] == "/search?q=Bj%C3%B6rk"


async def test_login_required_sends_htmx_to_sign_in_with_an_encoded_target(
        client: httpx.AsyncClient) -> None:
    response = await client.get("/settings?tab=a%09b", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/signin?next=%2Fsettings%3Ftab%3Da%2509b"
