"""The plays list filtered by name and local days: counts, paging that keeps filters, 422s."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime
from html import unescape

import httpx
import pytest

from mtm import dashboard, history, listening, periods, search
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from tests.conftest import sign_in

HX = {"HX-Request": "true"}
NOW = datetime(2026, 4, 5, 20, 0, tzinfo=UTC)


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


SIGUR = TrackIn("tr-sigur", "Hoppípolla", (ArtistIn("ar-sigur", "Sigur Rós"),),
                AlbumIn("al-takk", "Takk..."), 200_000)
TOTO = TrackIn("tr-toto", "Africa", (ArtistIn("ar-toto", "Toto"),),
               AlbumIn("al-iv", "Toto IV"), 200_000)


@pytest.fixture
def berlin(conn: sqlite3.Connection, user_id: int) -> sqlite3.Connection:
    """Berlin: Sigur Rós on 29 March (once, 00:30 local) and 1 April (twice, one short);
    Toto on 1 April (25 times)."""
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    plays = [PlayIn(utc(2026, 3, 28, 23, 30), SIGUR, 180_000, "api"),
             PlayIn(utc(2026, 4, 1, 9, 0), SIGUR, 180_000, "api"),
             PlayIn(utc(2026, 4, 1, 9, 5), SIGUR, 10_000, "api")]
    plays += [PlayIn(utc(2026, 4, 1, 10, 0) + i * 240, TOTO, 200_000, "api") for i in range(25)]
    history.add_plays(conn, user_id, plays)
    return conn


def test_name_filter_folds_accents(berlin: sqlite3.Connection, user_id: int) -> None:
    for query in ("SIGUR ROS", "hoppipolla", "takk"):
        page = dashboard.history_page(berlin, user_id, None, {"q": query}, now=NOW)
        assert page.matched == (3, 2), query
        assert {p.track for p in page.plays} == {"Hoppípolla"}
        assert page.filters == {"q": query}


def test_day_is_local(berlin: sqlite3.Connection, user_id: int) -> None:
    page = dashboard.history_page(berlin, user_id, None, {"day": "2026-03-29"}, now=NOW)
    assert page.matched == (1, 1) and page.filters == {"day": "2026-03-29"}
    assert page.values["from"] == page.values["to"] == "2026-03-29"
    assert dashboard.history_page(berlin, user_id, None, {"day": "2026-03-28"},
                                  now=NOW).matched == (0, 0)


def test_range_and_name_with_paging(berlin: sqlite3.Connection, user_id: int) -> None:
    query = {"q": "toto", "from": "2026-04-01", "to": "2026-04-05"}
    first = dashboard.history_page(berlin, user_id, None, query, now=NOW)
    assert first.matched == (25, 25) and len(first.plays) == dashboard.RECENT_PAGE
    assert first.filters == query
    rest = dashboard.history_page(berlin, user_id, first.next_cursor, query, now=NOW)
    assert len(rest.plays) == 25 - dashboard.RECENT_PAGE and rest.next_cursor is None
    assert {p.track for p in first.plays + rest.plays} == {"Africa"}
    # One end alone: from a day to today.
    assert dashboard.history_page(berlin, user_id, None, {"from": "2026-03-30"},
                                  now=NOW).matched == (27, 26)


def test_sparse_and_dense_reads_agree(berlin: sqlite3.Connection, user_id: int,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    needle, form = search.matcher("sigur")
    where = listening.PlayFilter(needle=needle, form=form)
    dense = listening.filtered_plays(berlin, user_id, "UTC", where)
    monkeypatch.setattr(listening, "SPARSE", 1.0)
    sparse = listening.filtered_plays(berlin, user_id, "UTC", where)
    assert [p.row_id for p in dense[0]] == [p.row_id for p in sparse[0]]
    assert dense[2] == sparse[2] == (3, 2)


@pytest.mark.parametrize(("query", "words"), [
    ({"day": "2026-02-30"}, "is not a day that exists"),
    ({"from": "2026-04-03", "to": "2026-04-01"}, "is after the end date"),
    ({"to": "2026-05-01"}, "has not come yet"),
    ({"day": "2026-04-01", "from": "2026-04-01"}, "not both"),
    ({"q": "x" * 101}, "at most 100 characters"),
])
def test_impossible_filters(berlin: sqlite3.Connection, user_id: int, query: dict,
                            words: str) -> None:
    with pytest.raises((periods.PeriodError, search.QueryError), match=words):
        dashboard.history_page(berlin, user_id, None, query, now=NOW)


async def test_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/plays")
    assert page.status_code == 200 and 'aria-label="Filter plays"' in page.text
    assert "plays-matched" not in page.text
    row = re.search(r'<span class="track">(?:<a [^>]*>)?([^<]+)<', page.text)
    name = unescape(row.group(1))
    filtered = await client.get("/plays", params={"q": name.upper()})
    assert filtered.status_code == 200
    assert re.search(r'id="plays-matched">[\d,]+ plays?', filtered.text)
    fragment = await client.get("/plays", params={"q": name}, headers=HX)
    assert fragment.text.lstrip().startswith('<div id="plays-results"')
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]
    more = re.search(r'hx-get="([^"]*before=[^"]*)"', fragment.text)
    if more:
        assert "q=" in unescape(more.group(1))
        rows = await client.get(unescape(more.group(1)), headers=HX)
        assert rows.status_code == 200 and rows.text.lstrip().startswith(("{#", "<li"))


async def test_refusals_in_words(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for headers in ({}, HX):
        page = await client.get("/plays", params={"day": "2026-13-01"}, headers=headers)
        assert page.status_code == 422
        assert "“2026-13-01” is not a day that exists" in unescape(page.text)
        assert ('aria-label="Filter plays"' in page.text) == (headers == {})


async def test_dashboard_list_unchanged(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    home = (await client.get("/")).text
    assert 'id="recent-shown-to"' in home
    more = re.search(r'href="([^"]*/plays\?before=\d+&amp;key=-?\d+)"', home)
    assert more, "the dashboard's show-more link changed"
