""""Open in Spotify": open.spotify.com with real credentials, the emulator's page in demo mode."""

from __future__ import annotations

import dataclasses
import re
from html import unescape

import httpx
import pytest

from mtm.spotify.links import spotify_link
from tests.conftest import csrf_from, sign_in

HX = {"HX-Request": "true"}
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
OPEN_IN_SPOTIFY = re.compile(r'<a [^>]*href="([^"]+)"[^>]*>Open in Spotify</a>')


def test_the_link_names_the_real_page_or_the_emulators() -> None:
    assert spotify_link("playlist", "37i9dQZF1DXcBWIGoYBM5M", demo=False) == \
        "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M"
    assert spotify_link("playlist", "37i9dQZF1DXcBWIGoYBM5M", demo=True) == \
        "/emulator/open/playlist/37i9dQZF1DXcBWIGoYBM5M"
    assert spotify_link("track", "a/b?c", demo=True) == "/emulator/open/track/a%2Fb%3Fc"
    with pytest.raises(ValueError):
        spotify_link("show", "x", demo=False)


async def _create(client: httpx.AsyncClient, name: str, *, htmx: bool) -> httpx.Response:
    page = (await client.get("/playlists")).text
    data = {"csrf_token": csrf_from(page), "idempotency_key": unescape(KEY.search(page)[1]),
            "source": "current_rotation", "count": "5", "name": name}
    return await client.post("/playlists", data=data, headers=HX if htmx else {})


def _links(html: str) -> set[str]:
    return {unescape(href) for href in OPEN_IN_SPOTIFY.findall(html)}


@pytest.mark.parametrize("demo", [True, False])
async def test_page_and_fragment_link_to_the_right_place(client: httpx.AsyncClient, app,
                                                         emulator, demo: bool) -> None:
    services = app.state.services
    # The same app with real credentials would differ only in this flag.
    services.settings = dataclasses.replace(services.settings, demo=demo)
    await sign_in(client)
    fragment = await _create(client, "By HTMX", htmx=True)
    assert fragment.status_code == 201 and "<html" not in fragment.text
    first = next(iter(emulator.playlists))
    expected = (f"/emulator/open/playlist/{first}" if demo
                else f"https://open.spotify.com/playlist/{first}")
    assert _links(fragment.text) == {expected}
    made = await _create(client, "Plain", htmx=False)
    assert made.status_code == 303
    page = await client.get(made.headers["location"])
    second = list(emulator.playlists)[1]
    base = "/emulator/open/playlist/" if demo else "https://open.spotify.com/playlist/"
    assert _links(page.text) == {base + first, base + second}
    detail = await client.get("/playlists")
    match = re.search(r'class="playlist-name" href="[^"]*?(/playlists/\d+)"', detail.text)
    assert match is not None
    one = await client.get(match[1])
    assert one.status_code == 200 and "<!doctype html>" in one.text
    assert len(_links(one.text)) == 1 and _links(one.text) <= {base + first, base + second}


async def test_the_emulator_shows_the_playlist_it_links_to(client: httpx.AsyncClient,
                                                           emulator) -> None:
    await sign_in(client)
    await _create(client, 'Late <night> & "more"', htmx=True)
    playlist_id, made = next(iter(emulator.playlists.items()))
    page = await client.get(f"/emulator/open/playlist/{playlist_id}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<h1>Late &lt;night&gt; &amp; &quot;more&quot;</h1>" in text
    assert "A private playlist by Demo Listener · 5 tracks" in text
    listed = re.findall(r'<li data-track="([^"]+)">', text)
    assert [f"spotify:track:{t}" for t in listed] == made["items"]
    names = [emulator.catalogue.tracks_by_id[t].name for t in listed]
    assert all(name in text for name in names)
    assert "<script" not in text and "style=" not in text
    # Each track links to its own page, relative to wherever the emulator is mounted.
    track = await client.get(f"/emulator/open/track/{listed[0]}")
    assert track.status_code == 200 and names[0] in track.text
    assert (await client.get("/emulator/open/playlist/nope")).status_code == 404
    assert (await client.get("/emulator/open/playlist/" + "0" * 22)).status_code == 404
