"""A year or month in review: records, discoveries and the shareable image."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime

import httpx

from mtm import history, review
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from tests.conftest import make_play, sign_in

HX = {"HX-Request": "true"}
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def _history(conn: sqlite3.Connection, user_id: int) -> None:
    """2025: artist 0 from January, artist 1 first heard in 2025-03; a 3-day run in March."""
    plays = [make_play(utc(2024, 12, 30, 10), 1)]  # artist 0, before the year
    plays += [make_play(utc(2025, 1, 5, 10), 2)]
    plays += [make_play(utc(2025, 3, d, 10), 11) for d in (10, 11, 12)]
    plays += [make_play(utc(2025, 3, 11, 11, i), 12) for i in range(4)]   # biggest day
    plays += [make_play(utc(2025, 7, 1, 10), 3, ms=20_000)]               # a skip only
    odd = TrackIn("trackodd0000000000001", 'Tom & "Jerry" <3', (ArtistIn(
        "artistodd000000000001", "Sigur Rós & <b>"),), AlbumIn(None, "Ágætis"), 200_000)
    plays += [PlayIn(utc(2025, 8, 1, 10), odd, 200_000, "api")]
    history.add_plays(conn, user_id, plays)


def test_records_and_discoveries_of_a_year(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    found = review.load(conn, user_id, {"year": "2025"}, now=NOW)
    assert found.title == "2025 in review"
    assert found.data.totals.plays == 9
    assert found.biggest_day == (date(2025, 3, 11), 5, 15)
    assert found.longest_streak == (3, date(2025, 3, 10), date(2025, 3, 12))
    # Artist 0 was first heard in December 2024: not a discovery of 2025.
    assert [(a.name, a.plays) for a in found.discoveries] == [("Artist 1", 7),
                                                              ("Sigur Rós & <b>", 1)]
    assert found.previous_query == {"year": "2024"} and found.next_query == {"year": "2026"}


def test_a_month_and_the_default_year(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    march = review.load(conn, user_id, {"month": "2025-03"}, now=NOW)
    assert march.title == "March 2025 in review" and march.data.totals.plays == 7
    assert march.previous_query == {"month": "2025-02"}
    assert review.load(conn, user_id, {}, now=NOW).data.period.query == {"year": "2026"}
    refused = review.load(conn, user_id, {"year": "2031"}, now=NOW)
    assert refused.message.startswith("1 Jan 2031 has not come yet")


def test_longest_run() -> None:
    days = [date(2025, 1, d) for d in (1, 2, 5, 6, 7, 9)] + [date(2024, 12, 31)]
    assert review.longest_run(days) == (3, date(2024, 12, 31), date(2025, 1, 2))
    assert review.longest_run([]) == (0, None, None)


def test_the_image_holds_only_what_was_chosen(conn: sqlite3.Connection, user_id: int) -> None:
    _history(conn, user_id)
    found = review.load(conn, user_id, {"year": "2025"}, now=NOW)
    only_minutes = review.image(found, ("minutes",))
    assert "Minutes listened" in only_minutes and "Artist 1" not in only_minutes
    assert "Top artists" not in only_minutes
    artists = review.image(found, review.parse_share(["artists", "bogus", "tracks"]))
    assert "Minutes listened" not in artists and "1. Artist 1" in artists
    # Names are escaped: the SVG stays well-formed whatever the music is called.
    assert "Sigur Rós &amp; &lt;b&gt;" in artists and "<b>" not in artists
    assert 'Tom &amp; "Jerry" &lt;3' in artists
    assert artists.startswith("<svg") and artists.rstrip().endswith("</svg>")
    assert review.parse_share(["tracks", "minutes"]) == ("minutes", "tracks")


async def test_page_fragment_and_image_over_http(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    services = app.state.services
    user_id = await services.db.run(lambda conn: conn.execute(
        "SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])
    await services.db.run(_history, user_id)
    page = await client.get("/review?year=2025")
    assert page.status_code == 200
    assert "<title>2025 in review · Music Time Machine</title>" in page.text
    assert '<h1>2025 <span class="muted">in review</span></h1>' in page.text
    fragment = await client.get("/review?year=2025", headers=HX)
    assert fragment.text.startswith('<div id="review"')
    assert "<title>2025 in review · Music Time Machine</title>" in fragment.text
    assert "<dt>Biggest day</dt>" in page.text and "Discoveries: first heard in 2025" in page.text
    assert re.search(r'<a class="name-link" href="[^"]*/artists/\d+">Artist 1</a>', page.text)
    image_url = re.search(r'<img src="([^"]+)"', page.text).group(1)
    assert image_url.endswith("year=2025&amp;share=minutes&amp;share=artists")
    image = await client.get("/review/image.svg?year=2025&share=tracks")
    assert image.status_code == 200 and image.headers["content-type"] == "image/svg+xml"
    assert image.headers["content-security-policy"] == "default-src 'none'"
    assert "Top tracks" in image.text and "1. Track 12" in image.text
    assert "Minutes listened" not in image.text
    assert "2025-review.svg" in image.headers["content-disposition"]
    # Unticking everything is remembered as a choice, not the default.
    bare = await client.get("/review?year=2025&shared=1")
    assert 'value="artists" checked' not in bare.text


async def test_impossible_reviews_are_422(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for url in ("/review?year=20x5", "/review?month=2025-13", "/review?year=1999",
                "/review/image.svg?year=3000"):
        for headers in ({}, HX):
            response = await client.get(url, headers=headers)
            assert response.status_code == 422, url


async def test_analytics_of_a_year_links_to_its_review(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/analytics?year=2026")).text
    assert re.search(r'href="[^"]*/review\?year=2026">2026 in review</a>', page)


def test_a_review_is_cached_until_the_history_changes(conn: sqlite3.Connection,
                                                      user_id: int) -> None:
    from mtm.cache import Cache

    _history(conn, user_id)
    cache = Cache()
    first = review.load(conn, user_id, {"year": "2025"}, cache=cache, now=NOW)
    again = review.load(conn, user_id, {"year": "2025"}, cache=cache, now=NOW)
    assert again.discoveries is first.discoveries
    history.add_plays(conn, user_id, [make_play(utc(2025, 3, 11, 15, 0), 40)])
    fresh = review.load(conn, user_id, {"year": "2025"}, cache=cache, now=NOW)
    assert fresh.biggest_day == (date(2025, 3, 11), 6, 18)
    assert [a.name for a in fresh.discoveries][:1] == ["Artist 1"] and len(fresh.discoveries) == 3
