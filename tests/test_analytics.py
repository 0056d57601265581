"""Analytics over a small fixed history, checked against hand-computed figures."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, date, datetime

import httpx
import pytest

from mtm import analytics, history
from mtm.analytics import make_window
from tests.conftest import make_play, sign_in

HX = {"HX-Request": "true"}
# 22:00 in Berlin on Sunday 5 April 2026 (summer time, UTC+2).
NOW = datetime(2026, 4, 5, 20, 0, tzinfo=UTC)


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def test_windows() -> None:
    today = date(2026, 11, 22)
    seven = make_window("7d", today, None)
    assert (seven.first, seven.last, seven.bucket) == (date(2026, 11, 16), today, "day")
    assert seven.previous == (date(2026, 11, 9), date(2026, 11, 15))
    assert make_window("30d", today, None).days == 30
    assert make_window("90d", today, None).bucket == "week"
    six = make_window("6m", today, None)
    assert six.first == date(2026, 5, 23) and six.bucket == "week"
    twelve = make_window("12m", today, None)
    assert twelve.first == date(2025, 11, 23) and twelve.days == 365
    assert twelve.previous == (date(2024, 11, 23), date(2025, 11, 22))
    everything = make_window("all", today, date(2019, 3, 2))
    assert (everything.first, everything.bucket, everything.previous) == (
        date(2019, 3, 2), "month", None)
    # Six months before 31 August is the end of February.
    assert make_window("6m", date(2026, 8, 31), None).first == date(2026, 3, 1)


@pytest.mark.parametrize("raw", [None, "", "5y", "12M", "all; drop table plays"])
def test_unknown_range_falls_back_to_12m(raw: str | None) -> None:
    assert analytics.parse_range(raw) == "12m"
    assert analytics.parse_metric(raw) == "plays"


def test_week_buckets_follow_week_start() -> None:
    wednesday = date(2026, 4, 1)
    assert analytics.bucket_start(wednesday, "week", 0) == date(2026, 3, 30)  # Monday
    assert analytics.bucket_start(wednesday, "week", 6) == date(2026, 3, 29)  # Sunday
    assert analytics.bucket_start(wednesday, "month", 0) == date(2026, 4, 1)


@pytest.fixture
def berlin(conn: sqlite3.Connection, user_id: int) -> sqlite3.Connection:
    """A listener in Berlin with plays around the March 2026 clock change and midnights."""
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    plays = [
        make_play(utc(2026, 3, 28, 22, 59), 1, ms=60_000),   # Sat 28 Mar 23:59 CET
        make_play(utc(2026, 3, 28, 23, 30), 1, ms=60_000),   # Sun 29 Mar 00:30 CET
        make_play(utc(2026, 3, 29, 1, 30), 12, ms=120_000),  # Sun 29 Mar 03:30 CEST
        make_play(utc(2026, 4, 1, 10, 0), 12, ms=180_000),   # Wed 1 Apr 12:00 CEST
        make_play(utc(2026, 4, 1, 10, 5), 13, ms=240_000),   # Wed 1 Apr 12:05 CEST
        make_play(utc(2026, 4, 5, 21, 59, 59), 1, ms=30_000),  # Sun 5 Apr 23:59:59 CEST
        make_play(utc(2026, 4, 5, 22, 0), 1, ms=30_000),     # Mon 6 Apr 00:00: tomorrow
    ]
    history.add_plays(conn, user_id, plays)
    artist_0 = conn.execute("SELECT id FROM artists WHERE name = 'Artist 0'").fetchone()[0]
    history.set_artist_genres(conn, artist_0, ["rock", "pop"])
    return conn


def test_seven_days_against_hand_computed_figures(berlin: sqlite3.Connection,
                                                  user_id: int) -> None:
    data = analytics.load(berlin, user_id, "7d", now=NOW)
    assert (data.window.first, data.window.last) == (date(2026, 3, 30), date(2026, 4, 5))
    # In range: Wed 12:00, Wed 12:05 and Sunday 23:59:59; Monday 00:00 is tomorrow.
    assert (data.totals.plays, data.totals.minutes, data.totals.active_days) == (3, 8, 2)
    assert [(p.label, p.plays) for p in data.series] == [
        ("30 Mar", 0), ("31 Mar", 0), ("01 Apr", 2), ("02 Apr", 0), ("03 Apr", 0),
        ("04 Apr", 0), ("05 Apr", 1)]
    # The week before: Saturday 23:59, and the two Sunday plays either side of the change.
    assert (data.previous.plays, data.previous.minutes) == (3, 4)
    assert data.change("plays") == 0 and data.change("minutes") == 100
    assert [(a.name, a.plays, a.minutes) for a in data.top_artists["plays"]] == [
        ("Artist 1", 2, 7), ("Artist 0", 1, 0)]
    assert [(t.name, t.detail, t.plays) for t in data.top_tracks["minutes"]] == [
        ("Track 13", "Artist 1", 1), ("Track 12", "Artist 1", 1), ("Track 1", "Artist 0", 1)]
    # Artist 1 has no genres: only Artist 0's play counts, split between its two genres.
    assert [(g.name, g.plays) for g in data.genres] == [("pop", 0.5), ("rock", 0.5)]
    assert round(data.genre_coverage, 3) == round(1 / 3, 3)


def test_heatmap_in_local_time_across_the_clock_change(berlin: sqlite3.Connection,
                                                       user_id: int) -> None:
    data = analytics.load(berlin, user_id, "30d", now=NOW)
    cells = {(day, hour): value for day, row in data.heat_rows("plays")
             for hour, value, _ in row if value}
    assert cells == {("Saturday", 23): 1, ("Sunday", 0): 1, ("Sunday", 3): 1,
                     ("Wednesday", 12): 2, ("Sunday", 23): 1}
    levels = {hour: level for day, row in data.heat_rows("plays") if day == "Wednesday"
              for hour, _, level in row}
    assert levels[12] == analytics.HEAT_LEVELS and levels[11] == 0
    assert [day for day, _ in data.heatmap][0] == "Monday"


def test_heatmap_moves_with_the_time_zone(berlin: sqlite3.Connection, user_id: int) -> None:
    berlin.execute("UPDATE preferences SET timezone = 'UTC'")
    history.rebuild_rollups(berlin, user_id)
    data = analytics.load(berlin, user_id, "30d", now=NOW)
    cells = {(day, hour): value for day, row in data.heat_rows("plays")
             for hour, value, _ in row if value}
    assert cells == {("Saturday", 22): 1, ("Saturday", 23): 1, ("Sunday", 1): 1,
                     ("Wednesday", 10): 2, ("Sunday", 21): 1, ("Sunday", 22): 1}


def test_week_start_sunday_orders_the_heatmap(berlin: sqlite3.Connection, user_id: int) -> None:
    berlin.execute("UPDATE preferences SET week_start = 6")
    data = analytics.load(berlin, user_id, "90d", now=NOW)
    assert data.heatmap[0][0] == "Sunday"
    assert all(p.start.weekday() == 6 for p in data.series)


def test_all_time_and_discoveries(berlin: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(berlin, user_id, "all", now=NOW)
    assert data.window.first == date(2026, 3, 28) and data.previous is None
    assert data.totals.plays == 6  # the play on 6 April is not in a range ending today
    # Nine days of history: bucketed by day, as a month chart would be two bars.
    assert data.window.bucket == "day"
    assert [p.plays for p in data.series] == [1, 2, 0, 0, 2, 0, 0, 0, 1]
    assert data.new_artist_count == 2 and data.discovery_minutes_share is None
    seven = analytics.load(berlin, user_id, "7d", now=NOW)
    # Both artists were first heard before the week began.
    assert seven.new_artist_count == 0 and seven.discovery_minutes_share == 0


def test_gaps_are_zero_not_skipped(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(utc(2025, 1, 5, 12), 1),
                                      make_play(utc(2026, 3, 20, 12), 2)])
    data = analytics.load(conn, user_id, "all", now=datetime(2026, 3, 21, tzinfo=UTC))
    assert data.window.bucket == "month"
    assert [(p.label, p.plays) for p in data.series] == [
        ("Jan 2025", 1), *[(m + " 2025", 0) for m in ("Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                      "Aug", "Sep", "Oct", "Nov", "Dec")],
        ("Jan 2026", 0), ("Feb 2026", 0), ("Mar 2026", 1)]


def test_cache_is_keyed_by_history_version(berlin: sqlite3.Connection, user_id: int) -> None:
    cache = analytics.Cache()
    first = analytics.load(berlin, user_id, "7d", cache=cache, now=NOW)
    assert analytics.load(berlin, user_id, "7d", cache=cache, now=NOW) is first
    history.add_plays(berlin, user_id, [make_play(utc(2026, 4, 5, 12), 40)])
    fresh = analytics.load(berlin, user_id, "7d", cache=cache, now=NOW)
    assert fresh is not first and fresh.totals.plays == first.totals.plays + 1


def test_cache_forgets_the_least_recently_used() -> None:
    cache = analytics.Cache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_empty_range(conn: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(conn, user_id, "30d", now=NOW)
    assert data.empty and data.genres == [] and data.top_artists["plays"] == []


# --- the page ----------------------------------------------------------------------


async def test_page_and_fragment(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/analytics?range=30d")
    assert page.status_code == 200 and page.text.startswith("<!doctype html>")
    assert 'aria-current="page">Analytics' in page.text
    for chart in ("chart-over-time", "chart-artists"):
        assert f'data-chart="{chart}"' in page.text
    assert '<table class="heatmap">' in page.text
    fragment = await client.get("/analytics?range=30d", headers=HX)
    assert fragment.text.startswith('<div id="analytics"')
    assert "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]


async def test_unknown_range_shows_12m_active(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for url in ("/analytics", "/analytics?range=forever", "/analytics?range=12m&metric=bogus"):
        page = await client.get(url)
        assert page.status_code == 200
        active = re.findall(r'aria-current="true" class="chip chip-active">([^<]+)<', page.text)
        assert active == ["12 months", "By plays"], (url, active)


async def test_range_links_swap_in_place_and_push_the_url(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/analytics")).text
    link = re.search(r'<a href="([^"]*range=7d[^"]*)"\s+hx-get="([^"]+)"\s+hx-target="#analytics"'
                     r'\s+hx-swap="outerHTML"\s+hx-push-url="true"', page)
    assert link and link.group(1) == link.group(2)


async def test_metric_switch_reorders(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    by_minutes = (await client.get("/analytics?range=all&metric=minutes", headers=HX)).text
    assert "Top artists <small class=\"muted\">by minutes</small>" in by_minutes


async def test_genres_empty_state(client: httpx.AsyncClient, emulator) -> None:
    # Signed in without genres anywhere: the first sync stores no artist details.
    await sign_in(client)
    page = (await client.get("/analytics?range=7d")).text
    assert "No genres to show" in page and 'data-chart="chart-genres"' not in page


async def test_analytics_needs_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/analytics?range=7d")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fanalytics%3Frange%3D7d"
