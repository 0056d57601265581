"""The calendar of a year: days shaded by plays, week start, links, years offered, 422s."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime
from html import unescape

import httpx
import pytest

from mtm import calendar_view, history, periods
from tests.conftest import make_play, sign_in

HX = {"HX-Request": "true"}
NOW = datetime(2026, 4, 5, 20, 0, tzinfo=UTC)


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


@pytest.fixture
def listened(conn: sqlite3.Connection, user_id: int) -> sqlite3.Connection:
    """Berlin: 4 plays on 1 April 2026 (10 min), 1 on 29 March, 1 on 31 December 2025."""
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    history.add_plays(conn, user_id, [
        make_play(utc(2025, 12, 31, 12, 0), 1, ms=60_000),
        make_play(utc(2026, 3, 28, 23, 30), 1, ms=120_000),  # 00:30 on Sunday 29 March
        *[make_play(utc(2026, 4, 1, 10, i), i + 1, ms=150_000) for i in range(4)]])
    return conn


def test_levels() -> None:
    assert [calendar_view.level(p, 4) for p in (0, 1, 2, 3, 4)] == [0, 2, 3, 4, 5]
    assert calendar_view.level(0, 0) == 0


def test_year_against_hand_computed_figures(listened: sqlite3.Connection, user_id: int) -> None:
    cal = calendar_view.load(listened, user_id, None, now=NOW)
    assert (cal.year, cal.plays, cal.minutes, cal.days_listened) == (2026, 5, 12, 2)
    assert (cal.previous, cal.following) == (2025, None)
    days = {d.day: d for m in cal.months for w in m.weeks for d in w if d}
    assert len(days) == 365 and len(cal.months) == 12
    assert (days[date(2026, 4, 1)].plays, days[date(2026, 4, 1)].minutes,
            days[date(2026, 4, 1)].level) == (4, 10, 5)
    # Local days: the play at 23:30 UTC on the 28th is on Sunday 29 March in Berlin.
    assert days[date(2026, 3, 29)].plays == 1 and days[date(2026, 3, 28)].plays == 0
    assert days[date(2026, 3, 29)].level == 2
    # Monday first by default: 1 April 2026 is a Wednesday, the third column.
    april = cal.months[3]
    assert cal.weekdays[0] == "Monday" and april.weeks[0][2].day == date(2026, 4, 1)
    assert april.weeks[0][:2] == [None, None]


def test_week_start_sunday(listened: sqlite3.Connection, user_id: int) -> None:
    listened.execute("UPDATE preferences SET week_start = 6")
    cal = calendar_view.load(listened, user_id, "2026", now=NOW)
    assert cal.weekdays[0] == "Sunday"
    assert cal.months[3].weeks[0][3].day == date(2026, 4, 1)


def test_earlier_year_and_its_links(listened: sqlite3.Connection, user_id: int) -> None:
    cal = calendar_view.load(listened, user_id, "2025", now=NOW)
    assert (cal.plays, cal.previous, cal.following) == (1, None, 2026)


@pytest.mark.parametrize(("raw", "words"), [
    ("2027", "has not come yet"), ("1999", "before Spotify began"), ("20x6", "is not a year")])
def test_impossible_years(listened: sqlite3.Connection, user_id: int, raw: str,
                          words: str) -> None:
    with pytest.raises(periods.PeriodError, match=words):
        calendar_view.load(listened, user_id, raw, now=NOW)


async def test_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/calendar")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Calendar' in page.text
    assert page.text.count('<table class="calendar-month">') == 12
    # The demo history has plays: some day links to its plays, and says its figures.
    link = re.search(r'<a href="([^"]*/plays\?day=(\d{4}-\d{2}-\d{2}))">\d+<span '
                     r'class="visually-hidden"> \w+: (\d+) plays?, \d+ min', page.text)
    assert link, "no day links to its plays"
    fragment = await client.get("/calendar", headers=HX)
    assert fragment.text.lstrip().startswith('<div id="calendar"')
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]
    day = await client.get(unescape(link.group(1)))
    assert day.status_code == 200 and "plays-matched" in day.text


async def test_future_year_is_refused(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for headers in ({}, HX):
        page = await client.get("/calendar?year=2999", headers=headers)
        assert page.status_code == 422 and "has not come yet" in page.text
