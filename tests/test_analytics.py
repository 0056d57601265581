"""Analytics over a small fixed history, checked against hand-computed figures."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import UTC, date, datetime
from html import unescape

import httpx
import pytest

from mtm import analytics, history
from mtm.periods import shortcut
from tests.conftest import make_play, sign_in

HX = {"HX-Request": "true"}
# 22:00 in Berlin on Sunday 5 April 2026 (summer time, UTC+2).
NOW = datetime(2026, 4, 5, 20, 0, tzinfo=UTC)


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def test_windows() -> None:
    today = date(2026, 11, 22)
    seven = shortcut("7d", today, None)
    assert (seven.first, seven.last, seven.bucket) == (date(2026, 11, 16), today, "day")
    before = seven.previous()
    assert (before.first, before.last) == (date(2026, 11, 9), date(2026, 11, 15))
    assert shortcut("30d", today, None).days == 30
    assert shortcut("90d", today, None).bucket == "week"
    six = shortcut("6m", today, None)
    assert six.first == date(2026, 5, 23) and six.bucket == "week"
    twelve = shortcut("12m", today, None)
    assert twelve.first == date(2025, 11, 23) and twelve.days == 365
    before = twelve.previous()
    assert (before.first, before.last) == (date(2024, 11, 23), date(2025, 11, 22))
    everything = shortcut("all", today, date(2019, 3, 2))
    assert (everything.first, everything.bucket, everything.previous()) == (
        date(2019, 3, 2), "month", None)
    # Six months before 31 August is the end of February.
    assert shortcut("6m", date(2026, 8, 31), None).first == date(2026, 3, 1)


@pytest.mark.parametrize("raw", [None, "", "5y", "12M", "all; drop table plays"])
def test_unknown_metric_falls_back_to_plays(raw: str | None) -> None:
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
    data = analytics.load(berlin, user_id, {"range": "7d"}, now=NOW)
    assert (data.period.first, data.period.last) == (date(2026, 3, 30), date(2026, 4, 5))
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
    data = analytics.load(berlin, user_id, {"range": "30d"}, now=NOW)
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
    data = analytics.load(berlin, user_id, {"range": "30d"}, now=NOW)
    cells = {(day, hour): value for day, row in data.heat_rows("plays")
             for hour, value, _ in row if value}
    assert cells == {("Saturday", 22): 1, ("Saturday", 23): 1, ("Sunday", 1): 1,
                     ("Wednesday", 10): 2, ("Sunday", 21): 1, ("Sunday", 22): 1}


def test_week_start_sunday_orders_the_heatmap(berlin: sqlite3.Connection, user_id: int) -> None:
    berlin.execute("UPDATE preferences SET week_start = 6")
    data = analytics.load(berlin, user_id, {"range": "90d"}, now=NOW)
    assert data.heatmap[0][0] == "Sunday"
    assert all(p.start.weekday() == 6 for p in data.series)


def test_all_time_and_discoveries(berlin: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"range": "all"}, now=NOW)
    assert data.period.first == date(2026, 3, 28) and data.previous is None
    assert data.totals.plays == 6  # the play on 6 April is not in a range ending today
    # Nine days of history: bucketed by day, as a month chart would be two bars.
    assert data.period.bucket == "day"
    assert [p.plays for p in data.series] == [1, 2, 0, 0, 2, 0, 0, 0, 1]
    assert data.new_artist_count == 2 and data.discovery_minutes_share is None
    seven = analytics.load(berlin, user_id, {"range": "7d"}, now=NOW)
    # Both artists were first heard before the week began.
    assert seven.new_artist_count == 0 and seven.discovery_minutes_share == 0


def test_gaps_are_zero_not_skipped(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(utc(2025, 1, 5, 12), 1),
                                      make_play(utc(2026, 3, 20, 12), 2)])
    data = analytics.load(conn, user_id, {"range": "all"}, now=datetime(2026, 3, 21, tzinfo=UTC))
    assert data.period.bucket == "month"
    assert [(p.label, p.plays) for p in data.series] == [
        ("Jan 2025", 1), *[(m + " 2025", 0) for m in ("Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                                      "Aug", "Sep", "Oct", "Nov", "Dec")],
        ("Jan 2026", 0), ("Feb 2026", 0), ("Mar 2026", 1)]


def test_cache_is_keyed_by_history_version(berlin: sqlite3.Connection, user_id: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    cache = analytics.Cache()
    first = analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=NOW)
    computed = []
    real_compute = analytics.compute
    monkeypatch.setattr(analytics, "compute", lambda *a: computed.append(a) or real_compute(*a))
    hit = analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=NOW)
    assert computed == [] and hit.series is first.series and hit.previous == first.previous
    history.add_plays(berlin, user_id, [make_play(utc(2026, 4, 5, 12), 40)])
    fresh = analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=NOW)
    assert len(computed) == 1 and fresh.totals.plays == first.totals.plays + 1


def test_a_cache_of_size_zero_keeps_nothing(berlin: sqlite3.Connection, user_id: int,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # What bench/run.py uses to time the computation itself.
    cache = analytics.Cache(size=0)
    computed = []
    real_compute = analytics.compute
    monkeypatch.setattr(analytics, "compute", lambda *a: computed.append(a) or real_compute(*a))
    for _ in range(3):
        analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=NOW)
    assert len(computed) == 3


def test_previous_period_stops_at_the_same_time_of_day(berlin: sqlite3.Connection,
                                                       user_id: int) -> None:
    # At 02:00 on Sunday 5 April two hours of today have passed; the week before is counted
    # to two hours into Sunday 29 March, 03:00 (the clocks went forward), so its 03:30 play
    # is left out and the 00:30 one is in.
    early = datetime(2026, 4, 5, 0, 0, tzinfo=UTC)  # 02:00 CEST
    data = analytics.load(berlin, user_id, {"range": "7d"}, now=early)
    assert (data.previous.plays, data.previous.minutes) == (2, 2)
    # The cached result moves its comparison on with the clock, the history unchanged.
    cache = analytics.Cache()
    analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=early)
    later = analytics.load(berlin, user_id, {"range": "7d"}, cache=cache, now=NOW)
    assert (later.previous.plays, later.previous.minutes) == (3, 4)


def test_incomplete_periods_are_marked(berlin: sqlite3.Connection, user_id: int) -> None:
    seven = analytics.load(berlin, user_id, {"range": "7d"}, now=NOW)
    assert [p.note for p in seven.series] == [""] * 6 + ["today so far"]
    spec = seven.chart_over_time()
    assert spec["partial"] == [{"index": 6, "note": "today so far"}]
    assert spec["partialLegend"] == "Today so far"
    # 90 days from Tuesday 6 January: that week began on Monday 5 January, and this one
    # (Monday 30 March) is not over.
    ninety = analytics.load(berlin, user_id, {"range": "90d"}, now=NOW)
    notes = [(p.label, p.note) for p in ninety.series if p.note]
    assert notes == [("w/c 05 Jan", "from 06 Jan only"), ("w/c 30 Mar", "this week so far")]
    assert ninety.chart_over_time()["partialLegend"] == "Part weeks (this week so far)"
    everything = analytics.load(berlin, user_id, {"range": "12m"}, now=NOW)
    assert everything.discovery_notes()[0] == "from 06 Apr only"
    assert everything.discovery_notes()[-1] == "this month so far"
    assert all(not note for note in everything.discovery_notes()[1:-1])
    assert everything.chart_discoveries()["partial"][-1] == {"index": 12,
                                                              "note": "this month so far"}


def test_every_axis_has_a_title(berlin: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"range": "90d"}, now=NOW)
    specs = [data.chart_over_time(), data.chart_artists("plays"), data.chart_discoveries()]
    titles = [{axis: scale["title"]["text"] for axis, scale in spec["options"]["scales"].items()
               if scale["title"]["display"]} for spec in specs]
    assert titles == [{"x": "Week starting", "y": "Minutes listened", "y1": "Plays"},
                      {"x": "Plays", "y": "Artist"},
                      {"x": "Month of first play", "y": "New artists"}]
    assert data.chart_artists("minutes")["options"]["scales"]["x"]["title"]["text"] == (
        "Minutes listened")
    assert data.chart_genres("plays")["other"] == "Other genres"


def test_an_empty_range_suggests_the_shortest_range_with_plays(conn: sqlite3.Connection,
                                                                user_id: int) -> None:
    # One play 100 days before NOW: 7, 30 and 90 days are empty, 6 months is the first
    # range that has it.
    history.add_plays(conn, user_id, [make_play(int(NOW.timestamp()) - 100 * 86400, 1)])
    for key in ("7d", "30d", "90d"):
        data = analytics.load(conn, user_id, {"range": key}, now=NOW)
        assert data.empty and data.has_history and data.suggestion.key == "6m", key
        assert data.last_play == date(2025, 12, 26)
    assert not analytics.load(conn, user_id, {"range": "6m"}, now=NOW).empty


def test_no_history_suggests_no_range(conn: sqlite3.Connection, user_id: int) -> None:
    for key in analytics.RANGES:
        data = analytics.load(conn, user_id, {"range": key}, now=NOW)
        assert data.empty and not data.has_history and data.suggestion is None, key
    # A play dated after today (a skewed clock) is history, but in no range ending today.
    history.add_plays(conn, user_id, [make_play(int(NOW.timestamp()) + 3 * 86400, 1)])
    data = analytics.load(conn, user_id, {"range": "all"}, now=NOW)
    assert data.empty and data.has_history and data.suggestion is None


def test_cache_forgets_the_least_recently_used() -> None:
    cache = analytics.Cache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_empty_range(conn: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(conn, user_id, {"range": "30d"}, now=NOW)
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


async def test_no_range_shows_12m_active(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for url in ("/analytics", "/analytics?range=12m&metric=bogus"):
        page = await client.get(url)
        assert page.status_code == 200
        active = re.findall(r'aria-current="true" class="chip chip-active">([^<]+)<', page.text)
        assert active == ["12 months", "By plays"], (url, active)


async def test_an_unknown_range_is_refused_in_words(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    for headers in ({}, HX):
        page = await client.get("/analytics?range=forever", headers=headers)
        assert page.status_code == 422
        assert "“forever” is not a range here: choose one of 7 days" in unescape(page.text)
        # The ranges are still offered, none of them chosen.
        assert re.search(r'<a href="[^"]*/analytics\?[^"]*range=7d', page.text)
        assert "chip-active" not in page.text


async def test_range_links_swap_in_place_and_push_the_url(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/analytics")).text
    link = re.search(r'<a href="([^"]*range=7d[^"]*)"\s+hx-get="([^"]+)"\s+hx-target="#analytics"'
                     r'\s+hx-swap="outerHTML"\s+hx-push-url="true"', page)
    assert link and link.group(1) == link.group(2)


async def _newcomer(client: httpx.AsyncClient, app) -> int:
    """Sign in as the emulator's account that has never played anything; its user id."""
    await sign_in(client, account="newcomer")
    return await app.state.services.db.run(lambda conn: conn.execute(
        "SELECT id FROM users WHERE spotify_id = 'newcomer'").fetchone()[0])


def _ranking(html: str, section: str) -> list[str]:
    """The names in a ranked table, in order (the artists' chart table or the tracks table)."""
    body = html[html.index(f'id="{section}-title"'):]
    body = body[:body.index("</tbody>")]
    return re.findall(r'<th scope="row">(?:<span class="with-thumb">(?:<img [^>]*>|<span [^>]*>'
                      r'</span>)<span>)?(?:<span class="name">)?(?:<a [^>]*>)?([^<]+)<', body)


async def test_metric_switch_reorders(client: httpx.AsyncClient, app) -> None:
    user_id = await _newcomer(client, app)
    two_days_ago = int(time.time()) - 2 * 86400
    # Track 1 (Artist 0): three short plays, 2 minutes in all; track 20 (Artist 2): one play
    # of 10 minutes. Most played and most listened are different.
    plays = [make_play(two_days_ago + i * 60, 1, ms=40_000) for i in range(3)]
    plays.append(make_play(two_days_ago + 600, 20, ms=600_000))
    await app.state.services.db.run(history.add_plays, user_id, plays)
    pages = {metric: (await client.get(f"/analytics?range=all&metric={metric}", headers=HX)).text
             for metric in analytics.METRICS}
    assert _ranking(pages["plays"], "tracks") == ["Track 1", "Track 20"]
    assert _ranking(pages["minutes"], "tracks") == ["Track 20", "Track 1"]
    assert _ranking(pages["plays"], "artists") == ["Artist 0", "Artist 2"]
    assert _ranking(pages["minutes"], "artists") == ["Artist 2", "Artist 0"]
    # Every name leads to its page.
    assert re.search(r'<a class="name-link" href="[^"]*/tracks/\d+">Track 20</a>', pages["plays"])
    assert re.search(r'<a class="name-link" href="[^"]*/artists/\d+">Artist 2</a>', pages["plays"])
    assert re.search(r'<a class="name-link" href="[^"]*/albums/\d+">Album 2</a>', pages["plays"])
    # The chart draws the same order as the table.
    chart = re.search(r'id="chart-artists">([^<]+)<', pages["minutes"]).group(1)
    assert json.loads(unescape(chart))["labels"] == ["Artist 2", "Artist 0"]


async def test_no_history_says_so_and_what_to_do(client: httpx.AsyncClient, app) -> None:
    await _newcomer(client, app)
    for url in ("/analytics?range=7d", "/analytics?range=all"):
        page = (await client.get(url)).text
        assert "No listening recorded yet" in page
        # Where to sync and where to import, both pages that exist; no range to try instead.
        assert 'href="http://127.0.0.1:8000/settings#connection"' in page
        assert 'href="http://127.0.0.1:8000/settings#import"' in page
        assert "All time</a>" not in page and 'aria-label="Date range"' not in page
    settings = await client.get("/settings")
    assert 'id="connection"' in settings.text and 'id="import"' in settings.text


async def test_an_empty_range_links_to_a_range_with_plays(client: httpx.AsyncClient,
                                                          app) -> None:
    user_id = await _newcomer(client, app)
    # 100 days ago: outside 90 days whatever the hour, inside 6 months.
    await app.state.services.db.run(history.add_plays, user_id,
                                    [make_play(int(time.time()) - 100 * 86400, 1)])
    page = (await client.get("/analytics?range=30d", headers=HX)).text
    empty = page[page.index('class="card empty-state"'):]
    assert "Nothing played in the last 30 days" in empty
    suggested = re.findall(r'href="[^"]*range=(\w+)[^"]*"', empty)
    assert suggested == ["6m"], suggested
    assert "see the last 6 months" in empty
    page = (await client.get("/analytics?range=6m", headers=HX)).text
    assert "empty-state" not in page.split('id="genres-title"')[0]


async def test_fragment_brings_the_title_and_headings(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = (await client.get("/analytics?range=30d")).text
    # The page has one <title>, in <head>.
    assert page.count("<title>") == 1
    assert "<title>Analytics · 30 days · Music Time Machine</title>" in page.split("</head>")[0]
    for key, label in analytics.RANGES.items():
        fragment = (await client.get(f"/analytics?range={key}", headers=HX)).text
        assert fragment.startswith('<div id="analytics"')
        # htmx 4 takes a <title> from the swapped fragment and sets document.title.
        assert re.findall(r"<title>([^<]*)</title>", fragment) == [
            f"Analytics · {label} · Music Time Machine"]
        assert f'<h1>Analytics <span class="muted">· {label}</span></h1>' in fragment


async def test_genres_empty_state(client: httpx.AsyncClient, emulator) -> None:
    # Signed in without genres anywhere: the first sync stores no artist details.
    await sign_in(client)
    page = (await client.get("/analytics?range=7d")).text
    assert "No genres to show" in page and 'data-chart="chart-genres"' not in page


async def test_analytics_needs_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/analytics?range=7d")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fanalytics%3Frange%3D7d"


# --- any period -------------------------------------------------------------------------


def test_a_past_month_against_hand_computed_figures(berlin: sqlite3.Connection,
                                                    user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"month": "2026-03"}, now=NOW)
    assert (data.period.first, data.period.last) == (date(2026, 3, 1), date(2026, 3, 31))
    # 23:59 CET on the 28th, 00:30 CET and 03:30 CEST on the 29th: all Berlin March.
    assert (data.totals.plays, data.totals.minutes, data.totals.active_days) == (3, 4, 2)
    assert data.title == "Analytics · March 2026"
    assert data.earlier.query == {"month": "2026-02"} and data.later.query == {"month": "2026-04"}
    # Compared with all of February, which had nothing: no percentage can be said.
    assert data.compared_label == "February 2026" and data.change("plays") is None
    assert [(p.label, p.plays) for p in data.series if p.plays] == [("28 Mar", 1), ("29 Mar", 2)]
    assert not any(p.note for p in data.series)
    assert [(a.name, a.plays) for a in data.top_albums["plays"]] == [("Album 0", 2),
                                                                     ("Album 1", 1)]


def test_a_custom_range_across_the_clock_change(berlin: sqlite3.Connection,
                                                user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"from": "2026-03-29", "to": "2026-04-01"}, now=NOW)
    assert [(p.label, p.plays, p.minutes) for p in data.series] == [
        ("29 Mar", 2, 3), ("30 Mar", 0, 0), ("31 Mar", 0, 0), ("01 Apr", 2, 7)]
    assert (data.totals.plays, data.artists, data.tracks, data.albums) == (4, 2, 3, 2)
    # The 29th has 23 hours: its two plays are there, and the 28th's 23:59 is not.
    assert [(t.name, t.plays) for t in data.top_tracks["plays"]] == [
        ("Track 12", 2), ("Track 13", 1), ("Track 1", 1)]
    assert data.compared_label == "the 4 days before"
    assert (data.compared.first, data.compared.last) == (date(2026, 3, 25), date(2026, 3, 28))
    assert data.previous.plays == 1 and data.change("plays") == 300


def test_the_week_so_far_compares_with_as_much_of_the_week_before(
        berlin: sqlite3.Connection, user_id: int) -> None:
    # Sunday 5 April, 22:00 Berlin: the week (Monday start) is whole but for two hours.
    data = analytics.load(berlin, user_id, {"week": "2026-04-01"}, now=NOW)
    assert (data.period.first, data.period.last, data.later) == (
        date(2026, 3, 30), date(2026, 4, 5), None)
    assert data.compared_label == "Week of 23 Mar 2026, to this time of day"
    # The 23:59:59 play of the 5th is after 22:00, so not counted yet; the week before
    # is cut at 22:00 on its Sunday (29 March), which keeps its early plays.
    assert data.totals.plays == 3 and data.previous.plays == 3


def test_this_month_so_far_says_so(berlin: sqlite3.Connection, user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"month": "2026-04"}, now=NOW)
    assert (data.period.last, data.period.cut, data.later) == (date(2026, 4, 5), True, None)
    assert data.compared_label == "the first 5 days of March 2026, to this time of day"
    assert (data.compared.first, data.compared.last) == (date(2026, 3, 1), date(2026, 3, 5))
    assert data.series[-1].note == "today so far"


def test_a_year_before_the_history_suggests_its_first_month(berlin: sqlite3.Connection,
                                                            user_id: int) -> None:
    data = analytics.load(berlin, user_id, {"year": "2024"}, now=NOW)
    assert data.empty and data.has_history
    assert data.suggestion.query == {"month": "2026-03"}
    assert data.years == (2026,)


def test_a_refused_period_says_why(berlin: sqlite3.Connection, user_id: int) -> None:
    refused = analytics.load(berlin, user_id, {"from": "2026-04-02", "to": "2026-03-01"}, now=NOW)
    assert isinstance(refused, analytics.Refused)
    assert refused.message.startswith("The start date (2 Apr 2026) is after the end date")
    assert refused.values["from"] == "2026-04-02" and refused.today == date(2026, 4, 5)


async def test_a_month_page_and_fragment_step_through_time(client: httpx.AsyncClient) -> None:
    await sign_in(client)
    page = await client.get("/analytics?month=2025-03")
    assert page.status_code == 200
    assert "<title>Analytics · March 2025 · Music Time Machine</title>" in page.text
    assert '<h1>Analytics <span class="muted">· March 2025</span></h1>' in page.text
    for rel, month in (("prev", "2025-02"), ("next", "2025-04")):
        link = re.search(rf'<a href="([^"]+)" hx-get="([^"]+)"[^>]*\s+rel="{rel}"', page.text)
        assert link and link.group(1) == link.group(2) and f"month={month}" in link.group(1)
    fragment = await client.get("/analytics?month=2025-03", headers=HX)
    assert fragment.text.startswith('<div id="analytics"')
    assert "<title>Analytics · March 2025 · Music Time Machine</title>" in fragment.text
    # The forms start from the period shown, and work as plain GET forms.
    assert 'name="at" id="period-at" value="2025-03-01"' in fragment.text
    assert '<option value="month" selected>' in fragment.text
    jumped = await client.get("/analytics?unit=year&at=2025-03-09")
    assert '<h1>Analytics <span class="muted">· 2025</span></h1>' in jumped.text
    custom = await client.get("/analytics?from=2025-01-01&to=2025-06-30&metric=minutes")
    assert '<span class="muted">· 1 Jan 2025 – 30 Jun 2025</span>' in custom.text
    assert 'value="2025-01-01"' in custom.text and 'value="2025-06-30"' in custom.text


@pytest.mark.parametrize("query", ["from=2025-05-01&to=2025-04-01", "day=2025-02-30",
                                   "from=1990-01-01&to=2000-01-01", "year=3000",
                                   "month=2025-1", "at=&unit=month"])
async def test_impossible_periods_answer_422_in_both_shapes(client: httpx.AsyncClient,
                                                            query: str) -> None:
    await sign_in(client)
    for headers in ({}, HX):
        response = await client.get(f"/analytics?{query}", headers=headers)
        assert response.status_code == 422
        assert 'class="field-error" id="period-error" role="alert"' in response.text
        assert "<title>Analytics · choose a period · Music Time Machine</title>" in response.text
        assert ("<html" in response.text) is (headers == {})
