"""Artwork: the emulator's generated images, which image is stored, and where it is shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from mtm import dashboard, demo, history, sync
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from mtm.security import SECURITY_HEADERS
from mtm.spotify.emulator import Emulator
from mtm.spotify.emulator.images import image_list, initials, parse_image_id
from mtm.spotify.links import image_src
from tests.conftest import sign_in

ALBUM_640, ALBUM_300, ALBUM_64 = "ab67616d0000b273", "ab67616d00001e02", "ab67616d00004851"
ARTIST_320 = "ab67616100005174"
SCDN = "https://i.scdn.co/image/ab67616d00001e02" + "0" * 24
# An evening the plays end on, so no test depends on today's date or hour.
EVENING = datetime(2026, 11, 20, 18, 30, tzinfo=UTC)
# A stored emulator image as its API names it, and the same image seen from the browser.
STORED = "http://emulator.invalid/image/"
SERVED = "/emulator/image/"


async def get(emulator: Emulator, path: str) -> httpx.Response:
    """A request to the emulator in process."""
    async with httpx.AsyncClient(transport=emulator.transport(),
                                 base_url="http://emulator.invalid") as http:
        return await http.get(path)


# --- the emulator -----------------------------------------------------------------


async def test_every_album_and_artist_has_a_deterministic_svg(emulator: Emulator) -> None:
    album, artist = emulator.catalogue.albums[5], emulator.catalogue.artists[7]
    first = await get(emulator, f"/image/{ALBUM_300}{album.spotify_id}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/svg+xml"
    assert "max-age=" in first.headers["cache-control"]
    assert first.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert first.text.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="300"')
    # The same id draws the same picture, in a fresh emulator too; another id another one.
    again = await get(Emulator(), f"/image/{ALBUM_300}{album.spotify_id}")
    assert again.content == first.content
    other = await get(emulator, f"/image/{ALBUM_300}{emulator.catalogue.albums[6].spotify_id}")
    assert other.status_code == 200 and other.content != first.content
    picture = await get(emulator, f"/image/{ARTIST_320}{artist.spotify_id}")
    assert picture.status_code == 200 and 'width="320"' in picture.text
    assert f">{initials(artist.name)}</text>" in picture.text


async def test_unknown_or_malformed_image_ids_are_404(emulator: Emulator) -> None:
    album, artist = emulator.catalogue.albums[0], emulator.catalogue.artists[0]
    for image_id in (f"{ALBUM_300}{'Z' * 22}",   # no such album
                     f"{ALBUM_300}{artist.spotify_id}",  # an artist's id with an album size
                     f"0000000000000000{album.spotify_id}",  # no such size
                     f"{ALBUM_300}{album.spotify_id[:-1]}", "x"):
        response = await get(emulator, f"/image/{image_id}")
        assert response.status_code == 404, image_id
        assert "image/svg" not in response.headers["content-type"]


async def test_names_are_escaped_in_the_svg(emulator: Emulator) -> None:
    artist = next(a for a in emulator.catalogue.artists if "<" in a.name)
    text = (await get(emulator, f"/image/{ARTIST_320}{artist.spotify_id}")).text
    assert "<script" not in text and "&lt;script&gt;" in text
    assert initials("坂本 美雨") == "坂美" and initials("Earth, Wind & Friends") == "EW"
    assert initials("!!!") == "?"


def test_objects_carry_images_in_spotifys_shape(emulator: Emulator) -> None:
    base = f"{Emulator.api_url}"
    track = emulator.objects.track_full(base, emulator.catalogue.tracks[0])
    album = emulator.catalogue.albums[emulator.catalogue.tracks[0].album]
    assert track["album"]["images"] == [
        {"url": f"{STORED}{prefix}{album.spotify_id}", "height": size, "width": size}
        for prefix, size in ((ALBUM_640, 640), (ALBUM_300, 300), (ALBUM_64, 64))]
    artist = emulator.objects.artist_full(base, emulator.catalogue.artists[0])
    assert [(i["width"], i["height"]) for i in artist["images"]] == [
        (640, 640), (320, 320), (160, 160)]
    # Simplified artists carry no images, as Spotify's do not.
    assert "images" not in track["artists"][0]
    assert parse_image_id(artist["images"][1]["url"].rsplit("/", 1)[1]) == (
        "artist", 320, emulator.catalogue.artists[0].spotify_id)


async def test_the_app_serves_the_emulators_images_in_demo_mode(
        client: httpx.AsyncClient, emulator: Emulator) -> None:
    album = emulator.catalogue.albums[0]
    response = await client.get(f"{SERVED}{ALBUM_64}{album.spotify_id}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/svg+xml"
    # Its own CSP, not the app's pages' one, and a cache header instead of no-store.
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert response.headers["cache-control"].startswith("public")
    assert (await client.get(f"{SERVED}{ALBUM_64}{'Z' * 22}")).status_code == 404


# --- which image is stored, and where the browser loads it ----------------------------


def test_the_stored_image_is_the_smallest_sharp_one() -> None:
    def sized(*widths: int | None) -> list[dict]:
        return [{"url": f"u{w}", "width": w, "height": w} for w in widths]

    assert sync.pick_image(sized(640, 300, 64)) == "u300"
    assert sync.pick_image(sized(640, 320, 160)) == "u320"
    assert sync.pick_image(sized(160, 64)) == "u160"
    # Spotify leaves some sizes out: such an image is taken to be large.
    assert sync.pick_image(sized(None)) == "uNone"
    assert sync.pick_image([]) is None and sync.pick_image(None) is None
    assert sync.pick_image([{"url": None, "width": 300}]) is None


def test_image_src_allows_only_what_the_csp_allows() -> None:
    emulated = f"{STORED}{ALBUM_300}{'A' * 22}"
    assert image_src(SCDN, demo=False) == SCDN
    assert image_src(SCDN, demo=True) == SCDN
    assert image_src(emulated, demo=True) == f"{SERVED}{ALBUM_300}{'A' * 22}"
    # Outside demo mode no emulator is mounted; other hosts would be refused by the CSP.
    assert image_src(emulated, demo=False) is None
    assert image_src("https://example.com/cover.jpg", demo=True) is None
    assert image_src("http://i.scdn.co/image/x", demo=False) is None
    assert image_src(None, demo=True) is None and image_src("", demo=True) is None


def test_the_csp_allows_images_from_the_app_and_spotify_only() -> None:
    directives = dict(d.split(" ", 1) for d in
                      SECURITY_HEADERS["Content-Security-Policy"].split("; "))
    assert directives["img-src"] == "'self' data: https://i.scdn.co"
    assert directives["default-src"] == "'self'"


def test_the_demo_history_has_the_images_a_sync_would_store(conn, user_id: int) -> None:
    demo.generate_history(conn, user_id, plays=200, years=0.1, end=1_700_000_000)
    albums = conn.execute("SELECT spotify_id, image_url FROM albums").fetchall()
    artists = conn.execute("SELECT spotify_id, image_url FROM artists "
                           "WHERE spotify_id IS NOT NULL").fetchall()
    assert albums and artists
    emulator = Emulator()
    by_id = {a.spotify_id: a for a in emulator.catalogue.albums}
    for ident, url in albums:
        if ident is None:
            continue  # a local file's album: names only
        assert url == sync.pick_image(image_list("http://emulator.invalid", "album", ident))
        assert ident in by_id
    assert all(url == f"{STORED}{ARTIST_320}{ident}" for ident, url in artists)


# --- the pages ------------------------------------------------------------------------


def _track(n: int, artist_image: str | None, album_image: str | None) -> TrackIn:
    return TrackIn(f"arttrack{n:014d}", f"Song {n}",
                   (ArtistIn(f"artartist{n:013d}", f"Singer {n}", None, artist_image),),
                   AlbumIn(f"artalbum{n:014d}", f"Record {n}", None, album_image), 200_000)


@pytest.fixture
async def pictured(client: httpx.AsyncClient, app, monkeypatch) -> dict[str, int]:
    """A signed-in newcomer who played four artists: Spotify's image, the emulator's, none,
    and one on a host the CSP refuses; Home is read as on EVENING."""
    load = dashboard.load
    monkeypatch.setattr(dashboard, "load", lambda conn, user_id, now=None, **kwargs: load(
        conn, user_id, EVENING, **kwargs))
    await sign_in(client, account="newcomer")
    services = app.state.services
    user = await services.db.run(lambda c: c.execute(
        "SELECT id FROM users WHERE spotify_id = 'newcomer'").fetchone()[0])
    emulated = f"{STORED}{ARTIST_320}{'B' * 22}"
    tracks = [_track(1, SCDN, SCDN), _track(2, emulated, f"{STORED}{ALBUM_300}{'C' * 22}"),
              _track(3, None, None), _track(4, "https://example.com/x.jpg", None)]
    start = int(EVENING.timestamp()) - 3600
    await services.db.run(history.add_plays, user, [
        PlayIn(start + i * 300, t, 200_000, "api") for i, t in enumerate(tracks)])
    return dict(await services.db.run(lambda c: c.execute(
        "SELECT name, id FROM artists UNION ALL SELECT name, id FROM albums "
        "UNION ALL SELECT name, id FROM tracks").fetchall()))


def _head_images(html: str) -> list[str]:
    head = html[html.index('<div class="page-head entity-head">'):]
    head = head[:head.index("</h1>")]
    return re.findall(r'<img class="entity-image[^"]*" src="([^"]+)"', head)


async def test_artist_album_and_track_pages_show_their_image(
        client: httpx.AsyncClient, pictured: dict[str, int]) -> None:
    assert _head_images((await client.get(f"/artists/{pictured['Singer 1']}")).text) == [SCDN]
    assert _head_images((await client.get(f"/albums/{pictured['Record 1']}")).text) == [SCDN]
    # A track shows its album's cover.
    assert _head_images((await client.get(f"/tracks/{pictured['Song 1']}")).text) == [SCDN]
    page = (await client.get(f"/artists/{pictured['Singer 2']}")).text
    assert _head_images(page) == [f"{SERVED}{ARTIST_320}{'B' * 22}"]
    assert 'class="entity-image entity-image-round"' in page
    assert _head_images((await client.get(f"/tracks/{pictured['Song 2']}")).text) == [
        f"{SERVED}{ALBUM_300}{'C' * 22}"]


async def test_pages_without_a_usable_image_have_no_img(
        client: httpx.AsyncClient, pictured: dict[str, int]) -> None:
    for url in (f"/artists/{pictured['Singer 3']}", f"/albums/{pictured['Record 3']}",
                f"/tracks/{pictured['Song 3']}", f"/artists/{pictured['Singer 4']}"):
        page = (await client.get(url)).text
        assert "<img" not in page, url
        assert "example.com" not in page


async def test_top_lists_show_thumbnails_or_a_placeholder(
        client: httpx.AsyncClient, pictured: dict[str, int]) -> None:
    for url in ("/", "/analytics?range=all"):
        page = (await client.get(url)).text
        thumbs = re.findall(r'<img class="thumb[^"]*" src="([^"]+)" alt="" width="40" '
                            r'height="40" loading="lazy"', page)
        assert SCDN in thumbs, url
        assert f"{SERVED}{ALBUM_300}{'C' * 22}" in thumbs, url
        assert '<span class="thumb thumb-none' in page, url
        assert "example.com" not in page
        # Every <img> of the page is one the CSP allows.
        for src in re.findall(r'<img [^>]*src="([^"]+)"', page):
            assert src.startswith((SERVED, "https://i.scdn.co/")), src
