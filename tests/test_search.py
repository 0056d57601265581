"""Search over the user's own history: accents and case folded, ranked, capped, validated."""

from __future__ import annotations

import re
import sqlite3
from html import unescape

import httpx

from mtm import history, identity, search, sync, users
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from tests.conftest import sign_in

HX = {"HX-Request": "true"}
T0 = 1_750_000_000


def _track(n: int, name: str, artist: str, album: str) -> TrackIn:
    return TrackIn(f"tr{n:020d}", name, (ArtistIn(f"ar-{artist}", artist),),
                   AlbumIn(f"al-{album}", album), 200_000)


def _history(conn: sqlite3.Connection, user_id: int) -> None:
    tracks = [_track(1, "Hoppípolla", "Sigur Rós", "Takk..."),
              _track(2, "Ace of Spades", "Motörhead", "Ace of Spades"),
              _track(3, "Rosanna", "Toto", "Toto IV"),
              _track(4, "Glósóli", "Sigur Rós", "Takk...")]
    # Plays: Hoppípolla 3, Ace of Spades 1, Rosanna 2, Glósóli 1 (each of 3 minutes).
    counts = {0: 3, 1: 1, 2: 2, 3: 1}
    plays = [PlayIn(T0 + 600 * (10 * i + j), tracks[i], 180_000, "api")
             for i, n in counts.items() for j in range(n)]
    history.add_plays(conn, user_id, plays)


def test_search_key_folds_accents_and_case() -> None:
    assert identity.search_key("Sigur Rós") == "sigur ros"
    assert identity.search_key("MOTÖRHEAD") == identity.search_key("Motörhead") == "motorhead"
    assert identity.search_key("  Straße  ") == "strasse"


def test_every_write_keeps_the_key(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    for table in ("artists", "albums", "tracks"):
        rows = conn.execute(f"SELECT name, search_key FROM {table}").fetchall()
        assert rows and all(key == identity.search_key(name) for name, key in rows), table
    artist = conn.execute("SELECT id FROM artists WHERE name = 'Toto'").fetchone()[0]
    sync.save_artist_details(conn, artist, {"id": "ar-Toto", "name": "TÓTÓ", "genres": []})
    assert conn.execute("SELECT search_key FROM artists WHERE id = ?",
                        (artist,)).fetchone()[0] == "toto"
    conn.execute("UPDATE tracks SET search_key = NULL")
    assert history.fill_search_keys(conn) == 4
    assert conn.execute("SELECT count(*) FROM tracks WHERE search_key IS NULL").fetchone()[0] == 0


def test_accents_and_case_ignored(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    found = search.search(conn, user_id, "sigur ros")
    artists, albums, tracks = found.groups
    assert [(a.kind, a.name, a.plays, a.minutes) for a in artists.items] == [
        ("artist", "Sigur Rós", 4, 12)]
    assert search.search(conn, user_id, "MOTORHEAD").groups[0].items[0].name == "Motörhead"
    assert [t.name for t in search.search(conn, user_id, "glosoli").groups[2].items] == ["Glósóli"]
    # Albums are summed from the user's tracks of them: 3 + 1 plays of Takk...
    takk = search.search(conn, user_id, "takk").groups[1].items
    assert [(a.name, a.plays, a.minutes, a.artist) for a in takk] == [
        ("Takk...", 4, 12, "Sigur Rós")]


def test_exact_and_prefix_first_then_plays(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    # "ros" is inside "Sigur Rós" (4 plays) and starts "Rosanna" (2 plays): the prefix wins.
    tracks = search.search(conn, user_id, "ros").groups[2].items
    assert [t.name for t in tracks] == ["Rosanna"]
    artists = search.search(conn, user_id, "ros").groups[0].items
    assert [a.name for a in artists] == ["Sigur Rós"]
    toto = search.search(conn, user_id, "toto")
    assert [a.name for a in toto.groups[1].items] == ["Toto IV"]
    assert toto.groups[0].items[0].id > 0 and toto.groups[0].items[0].kind == "artist"


def test_capped_with_a_count_of_the_rest(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    found = search.search(conn, user_id, "o", limit=1)
    tracks = found.groups[2]
    # One letter matches the start of a word: "Of" in Ace of Spades only.
    assert (tracks.total, len(tracks.items), tracks.more) == (1, 1, 0)
    many = search.search(conn, user_id, "s", limit=1).groups[0]
    assert (many.total, many.more, many.items[0].name) == (1, 0, "Sigur Rós")


def test_only_the_users_own_history(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    other = users.upsert_user(conn, "listener-2", "Listener Two")
    assert search.search(conn, other, "sigur").total == 0


def test_query_validation() -> None:
    assert search.parse_query("  sigur   ros ") == "sigur ros"
    assert search.parse_query(None) == ""
    assert search.parse_query("x" * 100) == "x" * 100
    try:
        search.parse_query("x" * 101)
    except search.QueryError as exc:
        assert "at most 100 characters" in str(exc)
    else:
        raise AssertionError("a 101-character search was accepted")


async def test_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/search")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'role="search"' in page.text and 'id="search-results"' in page.text
    empty = await client.get("/search", params={"q": "zzzzqqq"}, headers=HX)
    assert empty.status_code == 200
    assert empty.text.lstrip().startswith('<div id="search-results"')
    assert "Nothing in your history matches “zzzzqqq”" in unescape(empty.text)
    assert "HX-Request" in empty.headers["vary"]


async def test_search_finds_the_demo_history(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    track_id, name = await app.state.services.db.run(lambda conn: conn.execute(
        "SELECT t.id, t.name FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id "
        "ORDER BY ut.plays DESC LIMIT 1").fetchone())
    for headers in ({}, HX):
        page = await client.get("/search", params={"q": name.upper()}, headers=headers)
        assert page.status_code == 200
        assert 'data-kind="track"' in page.text and unescape(page.text).count(name) >= 1
        # A result opens its page.
        assert f'/tracks/{track_id}">' in page.text
        assert "/plays?q=" in page.text


async def test_too_long_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for headers in ({}, HX):
        page = await client.get("/search", params={"q": "a" * 101}, headers=headers)
        assert page.status_code == 422
        assert "Search for at most 100 characters (this search has 101)." in page.text


async def test_header_has_a_search_box(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    home = await client.get("/")
    assert re.search(r'<form class="nav-search" method="get" action="[^"]*/search"', home.text)
