"""The read side on a small fixed history."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime, timedelta

from mtm import dashboard, history, listening, periods
from tests.conftest import make_play

NOON = int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp())
DAY = 86400


def test_streaks() -> None:
    d = date(2026, 11, 20)
    run = [d - timedelta(days=i) for i in range(4)][::-1]  # 17..20
    older = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 4),
             date(2026, 10, 5)]
    assert listening.streaks(older + run, today=d) == (4, 5)
    # Not listened yet today: yesterday's run still counts.
    assert listening.streaks(older + run, today=d + timedelta(days=1)) == (4, 5)
    # A missed day ends it.
    assert listening.streaks(older + run, today=d + timedelta(days=2)) == (0, 5)
    assert listening.streaks([], today=d) == (0, 0)


def test_headline_and_daily_totals(conn: sqlite3.Connection, user_id: int) -> None:
    plays = [make_play(NOON + i * 600, i % 3, ms=120_000) for i in range(6)]  # 10 Nov
    plays += [make_play(NOON + DAY, 5, ms=60_000)]                           # 11 Nov
    plays += [make_play(NOON + 3 * DAY, 25, ms=30_000)]                      # 13 Nov
    history.add_plays(conn, user_id, plays)
    head = listening.headline(conn, user_id, today=date(2026, 11, 13))
    assert (head.plays, head.artists, head.tracks) == (8, 2, 5)
    assert head.hours == round((6 * 120_000 + 60_000 + 30_000) / 3_600_000, 1)
    assert (head.current_streak, head.longest_streak) == (1, 2)
    first, last = date(2026, 11, 9), date(2026, 11, 13)
    series = listening.daily_series(listening.day_totals(conn, user_id, first, last), first, last)
    assert [(d.day.day, d.plays, d.minutes) for d in series] == [
        (9, 0, 0), (10, 6, 12), (11, 1, 1), (12, 0, 0), (13, 1, 0)]


def test_top_lists_in_a_window(conn: sqlite3.Connection, user_id: int) -> None:
    plays = [make_play(NOON + i * 300, 1) for i in range(3)]
    plays += [make_play(NOON + 5000 + i * 300, 12) for i in range(2)]
    plays += [make_play(NOON - 40 * DAY + i, 30) for i in range(10)]  # outside the window
    history.add_plays(conn, user_id, plays)
    start, end = NOON - DAY, NOON + DAY
    month = listening.per_track(conn, user_id, start, end)
    artists = listening.top(conn, "artist", listening.artist_totals(month))
    assert [(a.name, a.plays) for a in artists] == [("Artist 0", 3), ("Artist 1", 2)]
    tracks = listening.top(conn, "track", listening.track_totals(month), limit=1)
    assert [(t.name, t.detail, t.plays) for t in tracks] == [("Track 1", "Artist 0", 3)]


def test_recent_plays_pages_without_gaps_or_repeats(conn: sqlite3.Connection,
                                                    user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(NOON + i * 200, i) for i in range(45)])
    seen: list[datetime] = []
    cursor = None
    pages = 0
    while True:
        page, cursor = listening.recent_plays(conn, user_id, "UTC", before=cursor, limit=20)
        seen += [p.played_at for p in page]
        pages += 1
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert seen == sorted(seen, reverse=True)


def test_recent_plays_show_local_time(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(NOON)])
    page, _ = listening.recent_plays(conn, user_id, "Asia/Kolkata")
    assert page[0].played_at.strftime("%H:%M") == "17:30"


def test_dashboard_month_follows_time_zone(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE preferences SET timezone = 'Pacific/Auckland'")
    # 31 Oct 12:30 UTC is already 1 Nov (01:30) in Auckland.
    ts = int(datetime(2026, 10, 31, 12, 30, tzinfo=UTC).timestamp())
    history.add_plays(conn, user_id, [make_play(ts, 3)])
    data = dashboard.load(conn, user_id, now=datetime(2026, 11, 2, tzinfo=UTC))
    assert data.month_label == "November 2026"
    assert [t.name for t in data.top_tracks] == ["Track 3"]
    assert data.last_days[-2].plays == 1 and data.last_days[-2].day == date(2026, 11, 1)
    assert not data.empty


def test_local_midnight_across_dst() -> None:
    # Europe/Berlin switched to summer time on 29 March 2026: that day has 23 hours.
    start = periods.local_midnight(date(2026, 3, 29), "Europe/Berlin")
    end = periods.local_midnight(date(2026, 3, 30), "Europe/Berlin")
    assert end - start == 23 * 3600


def test_months_before_clamps_to_the_end_of_shorter_months() -> None:
    assert periods.months_before(date(2026, 8, 31), 6) == date(2026, 2, 28)
    assert periods.months_before(date(2024, 8, 31), 6) == date(2024, 2, 29)
    assert periods.months_before(date(2026, 1, 15), 1) == date(2025, 12, 15)
    assert periods.months_before(date(2026, 11, 22), 12) == date(2025, 11, 22)


def test_whole_history_totals_match_the_plays(conn: sqlite3.Connection, user_id: int) -> None:
    plays = [make_play(NOON + i * 600, i % 23, ms=20_000 + i * 1000) for i in range(60)]
    history.add_plays(conn, user_id, plays)
    tracks, artists, albums = ([tuple(r) for r in conn.execute(
        f"SELECT {column}, plays, ms_played FROM {table} WHERE user_id = ?", (user_id,))]
        for table, column in (("user_tracks", "track_id"), ("user_artists", "artist_id"),
                              ("user_albums", "album_id")))
    rows = listening.per_track(conn, user_id, 0, 2**40)
    def same(a: list, b: list) -> bool:
        return sorted(map(tuple, a)) == sorted(map(tuple, b))

    assert same(tracks, listening.track_totals(rows))
    assert same(artists, listening.artist_totals(rows))
    assert same(albums, listening.album_totals(rows))
