"""Artist, album and track pages on a small fixed history, against hand-computed figures."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime

from mtm import entities, history, users
from tests.conftest import make_play


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def _ids(conn: sqlite3.Connection) -> dict[str, int]:
    ids = {f"artist {n}": i for i, n in conn.execute(
        "SELECT id, cast(substr(name, 8) AS int) FROM artists")}
    ids |= {f"track {n}": i for i, n in conn.execute(
        "SELECT id, cast(substr(name, 7) AS int) FROM tracks")}
    ids |= {f"album {n}": i for i, n in conn.execute(
        "SELECT id, cast(substr(name, 7) AS int) FROM albums")}
    return ids


def _history(conn: sqlite3.Connection, user_id: int) -> dict[str, int]:
    """Artist 0 (tracks 1, 2) against artist 1 (track 11) and artist 2 (track 21).

    January: artist 0 three plays, artist 1 five: ranks 2 and 1.
    February: nothing.  March: artist 0 two, artist 2 one: artist 0 ranks 1.
    """
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    plays = [make_play(utc(2026, 1, 10, 8, i), 1) for i in range(2)]
    plays += [make_play(utc(2026, 1, 11, 20, 0), 2)]
    plays += [make_play(utc(2026, 1, 12, 9, i), 11) for i in range(5)]
    # 23:30 UTC on 31 March is 01:30 on 1 April in Berlin: an April play.
    plays += [make_play(utc(2026, 3, 5, 7, 0), 1), make_play(utc(2026, 3, 31, 23, 30), 2)]
    plays += [make_play(utc(2026, 3, 6, 7, 0), 21), make_play(utc(2026, 3, 7, 7, 0), 21,
                                                              ms=20_000)]
    history.add_plays(conn, user_id, plays)
    return _ids(conn)


def test_an_artist_through_time(conn: sqlite3.Connection, user_id: int) -> None:
    ids = _history(conn, user_id)
    page = entities.load(conn, user_id, "artist", ids["artist 0"])
    assert page is not None and page.subject.name == "Artist 0"
    assert (page.plays, page.minutes) == (5, 15)
    assert page.first_played.date() == date(2026, 1, 10)
    assert page.last_played.date() == date(2026, 4, 1)  # local time
    assert [(m.label, m.plays, m.rank) for m in page.months] == [
        ("Jan 2026", 3, 2), ("Feb 2026", 0, None), ("Mar 2026", 1, 1), ("Apr 2026", 1, 1)]
    assert page.best_month.label == "Jan 2026" and page.played_months == 3
    assert [(t.name, t.plays) for t in page.tops["tracks"]] == [("Track 1", 3), ("Track 2", 2)]
    assert [(a.name, a.plays) for a in page.tops["albums"]] == [("Album 0", 5)]
    # Local hours: 09:00, 09:01 and 08:00 (CET), 21:00, 01:30 (CEST, 1 April).
    assert page.hours[9] == 2 and page.hours[8] == 1 and page.hours[21] == 1
    assert page.hours[1] == 1 and sum(page.hours) == 5
    assert dict(page.weekdays)["Saturday"] == 2  # 10 January 2026
    assert [p.track for p in page.recent] == ["Track 2", "Track 1", "Track 2", "Track 1",
                                              "Track 1"]


def test_a_rank_counts_only_more_played_rivals(conn: sqlite3.Connection, user_id: int) -> None:
    ids = _history(conn, user_id)
    # Artist 2's March: one play (the 20 s stream is not one), as many as artist 0's that
    # month: equals share a rank.
    page = entities.load(conn, user_id, "artist", ids["artist 2"])
    assert [(m.label, m.plays, m.rank) for m in page.months] == [("Mar 2026", 1, 1)]
    assert page.plays == 1 and page.minutes == 3
    track = entities.load(conn, user_id, "track", ids["track 11"])
    assert [(m.label, m.rank) for m in track.months] == [("Jan 2026", 1)]
    assert track.subject.artist == "Artist 1" and track.subject.album == "Album 1"
    assert track.tops == {}


def test_an_album_sums_its_tracks(conn: sqlite3.Connection, user_id: int) -> None:
    ids = _history(conn, user_id)
    page = entities.load(conn, user_id, "album", ids["album 0"])
    assert (page.plays, page.subject.artist) == (5, "Artist 0")
    # January: album 1 has five plays, album 0 three: second.
    assert [(m.label, m.plays, m.rank) for m in page.months][0] == ("Jan 2026", 3, 2)
    assert [t.name for t in page.tops["tracks"]] == ["Track 1", "Track 2"]
    assert page.chart_rank()["datasets"][0]["data"] == [2, None, 1, 1]


def test_spotify_ranks_are_the_months_last_snapshot(conn: sqlite3.Connection,
                                                    user_id: int) -> None:
    ids = _history(conn, user_id)
    rows = [("2026-01-05", "short_term", 7), ("2026-01-28", "short_term", 3),
            ("2026-01-28", "long_term", 40), ("2026-03-02", "short_term", 9)]
    conn.executemany("INSERT INTO top_snapshots (user_id, taken_on, kind, time_range, rank, "
                     "track_id) VALUES (?, ?, 'tracks', ?, ?, ?)",
                     [(user_id, day, rng, rank, ids["track 1"]) for day, rng, rank in rows])
    page = entities.load(conn, user_id, "track", ids["track 1"])
    assert [m.spotify for m in page.months] == [
        {"short_term": 3, "long_term": 40}, {}, {"short_term": 9}]
    chart = page.chart_rank()
    assert [d["label"] for d in chart["datasets"]] == [
        "Your rank (by plays that month)", "Spotify's top list (4 weeks)",
        "Spotify's top list (1 year)"]
    assert chart["options"]["scales"]["y"]["reverse"] is True
    assert page.snapshots_kept


def test_older_plays_page_on(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(utc(2026, 1, 1) + i * 600, 1)
                                      for i in range(45)])
    ids = _ids(conn)
    page = entities.load(conn, user_id, "track", ids["track 1"])
    seen = [p.played_at for p in page.recent]
    cursor = page.next_cursor
    while cursor:
        more, cursor = entities.plays_page(conn, user_id, "track", ids["track 1"], cursor)
        seen += [p.played_at for p in more]
    assert len(seen) == len(set(seen)) == 45 and seen == sorted(seen, reverse=True)


def test_only_what_the_user_played(conn: sqlite3.Connection, user_id: int) -> None:
    ids = _history(conn, user_id)
    other = users.upsert_user(conn, "listener-2", "Listener Two")
    assert entities.load(conn, other, "artist", ids["artist 0"]) is None
    assert entities.load(conn, user_id, "artist", 999_999) is None
    assert entities.load(conn, user_id, "album", 999_999) is None
    assert entities.plays_page(conn, user_id, "track", 999_999, None) is None


def test_monthly_rollups_follow_a_time_zone_change(conn: sqlite3.Connection,
                                                   user_id: int) -> None:
    ids = _history(conn, user_id)
    conn.execute("UPDATE preferences SET timezone = 'UTC'")
    history.rebuild_rollups(conn, user_id)
    page = entities.load(conn, user_id, "artist", ids["artist 0"])
    # In UTC the 23:30 play of 31 March stays in March.
    assert [(m.label, m.plays) for m in page.months] == [
        ("Jan 2026", 3), ("Feb 2026", 0), ("Mar 2026", 2)]


def test_pages_are_cached_until_the_history_changes(conn: sqlite3.Connection,
                                                    user_id: int) -> None:
    from mtm.cache import Cache

    ids = _history(conn, user_id)
    cache = Cache()
    first = entities.load(conn, user_id, "album", ids["album 0"], cache=cache)
    assert entities.load(conn, user_id, "album", ids["album 0"], cache=cache) is first
    history.add_plays(conn, user_id, [make_play(utc(2026, 3, 20, 12, 0), 1)])
    fresh = entities.load(conn, user_id, "album", ids["album 0"], cache=cache)
    assert fresh is not first and fresh.plays == first.plays + 1


def test_a_track_learning_its_album_takes_its_months_along(conn: sqlite3.Connection,
                                                           user_id: int) -> None:
    from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn

    artist = ArtistIn("artistlate0000000001", "Late Artist")
    named_only = TrackIn("tracklate00000000001", "Late Track", (artist,),
                         AlbumIn(None, "Late Album (by name)"), 200_000)
    history.add_plays(conn, user_id, [PlayIn(utc(2026, 2, 3, 12, i), named_only, 200_000,
                                             "export") for i in range(3)])
    old = conn.execute("SELECT album_id FROM tracks WHERE spotify_id = ?",
                       ("tracklate00000000001",)).fetchone()[0]
    # The API names the album with its id: a new album row, and the track moves to it.
    with_album = TrackIn("tracklate00000000001", "Late Track", (artist,),
                         AlbumIn("albumlate00000000001", "Late Album"), 200_000)
    history.add_plays(conn, user_id, [PlayIn(utc(2026, 2, 4, 12, 0), with_album, 200_000,
                                             "api")])
    new = conn.execute("SELECT album_id FROM tracks WHERE spotify_id = ?",
                       ("tracklate00000000001",)).fetchone()[0]
    assert new != old
    page = entities.load(conn, user_id, "album", new)
    assert [(m.label, m.plays, m.rank) for m in page.months] == [("Feb 2026", 4, 1)]
    months = conn.execute("SELECT album_id, plays FROM album_months WHERE plays > 0").fetchall()
    assert [tuple(m) for m in months] == [(new, 4)]
    # The whole-history total moves too: the old album is gone.
    totals = conn.execute("SELECT album_id, plays, ms_played FROM user_albums").fetchall()
    assert [tuple(t) for t in totals] == [(new, 4, 800_000)]
    # What the rollups keep on write is what a rebuild finds.
    before = conn.execute("SELECT * FROM album_months WHERE plays > 0 ORDER BY 2, 3").fetchall()
    history.rebuild_rollups(conn, user_id)
    after = conn.execute("SELECT * FROM album_months ORDER BY 2, 3").fetchall()
    assert [tuple(r) for r in after] == [tuple(r) for r in before]
    rebuilt = conn.execute("SELECT album_id, plays, ms_played FROM user_albums").fetchall()
    assert [tuple(t) for t in rebuilt] == [tuple(t) for t in totals]
