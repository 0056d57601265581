"""Play de-duplication and the rollups kept on write."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import history
from mtm.history import PlayIn, play_key
from tests.conftest import make_play, make_track


def test_play_key_is_the_same_for_api_and_export_timestamps() -> None:
    api = play_key("2024-04-20T18:15:22.481Z")
    export = play_key("2024-04-20T18:15:22Z")
    assert api == export == int(datetime(2024, 4, 20, 18, 15, 22, tzinfo=UTC).timestamp())
    assert play_key("2024-04-20T20:15:22+02:00") == api
    assert play_key(datetime(2024, 4, 20, 18, 15, 22)) == api
    assert play_key("2024-04-20T18:15:23Z") == api + 1


def test_same_play_from_two_sources_is_stored_once(conn: sqlite3.Connection, user_id: int) -> None:
    ts = play_key("2024-04-20T18:15:22.481Z")
    assert history.add_plays(conn, user_id, [make_play(ts, source="api")]) == 1
    export_copy = PlayIn(play_key("2024-04-20T18:15:22Z"), make_track(1), 180_000, "export")
    assert history.add_plays(conn, user_id, [export_copy]) == 0
    rows = conn.execute("SELECT source FROM plays WHERE user_id = ?", (user_id,)).fetchall()
    assert [r[0] for r in rows] == ["api"]


def test_duplicates_inside_one_batch_count_once(conn: sqlite3.Connection, user_id: int) -> None:
    added = history.add_plays(conn, user_id, [make_play(100), make_play(100), make_play(200)])
    assert added == 2


def test_rollups_follow_the_plays(conn: sqlite3.Connection, user_id: int) -> None:
    day = int(datetime(2024, 1, 1, 12, tzinfo=UTC).timestamp())
    history.add_plays(conn, user_id, [make_play(day, 1, ms=60_000), make_play(day + 300, 1),
                                      make_play(day + 86400, 2, ms=30_000)])
    history.add_plays(conn, user_id, [make_play(day + 600, 11), make_play(day, 1)])
    tracks = dict(conn.execute("SELECT t.name, u.plays FROM user_tracks u JOIN tracks t "
                               "ON t.id = u.track_id WHERE u.user_id = ?", (user_id,)).fetchall())
    assert tracks == {"Track 1": 2, "Track 2": 1, "Track 11": 1}
    artists = dict(conn.execute("SELECT a.name, u.plays FROM user_artists u JOIN artists a "
                                "ON a.id = u.artist_id", ()).fetchall())
    assert artists == {"Artist 0": 3, "Artist 1": 1}
    days = conn.execute("SELECT day, plays, ms_played FROM listening_days ORDER BY day").fetchall()
    assert [tuple(d) for d in days] == [("2024-01-01", 3, 60_000 + 180_000 * 2),
                                        ("2024-01-02", 1, 30_000)]
    first, last = conn.execute("SELECT first_played, last_played FROM user_tracks u JOIN tracks t "
                               "ON t.id = u.track_id WHERE t.name = 'Track 1'").fetchone()
    assert (first, last) == (day, day + 300)


def test_local_days_follow_the_time_zone(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE preferences SET timezone = 'America/New_York' WHERE user_id = ?",
                 (user_id,))
    # 03:30 UTC on 2 Jan is still 1 Jan in New York.
    ts = int(datetime(2024, 1, 2, 3, 30, tzinfo=UTC).timestamp())
    history.add_plays(conn, user_id, [make_play(ts)])
    assert conn.execute("SELECT day FROM listening_days").fetchone()[0] == "2024-01-01"


def test_rebuild_matches_incremental(conn: sqlite3.Connection, user_id: int) -> None:
    # Spread over months, so the monthly rollups have more than one row per track.
    plays = [make_play(1_700_000_000 + i * 7 * 86400, i % 7, ms=1000 * i) for i in range(50)]
    history.add_plays(conn, user_id, plays[:20])
    history.add_plays(conn, user_id, plays[10:])

    def snapshot() -> list:
        return [conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in history.ROLLUP_TABLES]

    incremental = [[tuple(r) for r in rows] for rows in snapshot()]
    history.rebuild_rollups(conn, user_id)
    assert [[tuple(r) for r in rows] for rows in snapshot()] == incremental


def test_failed_batch_stores_nothing(conn: sqlite3.Connection, user_id: int) -> None:
    bad = PlayIn(300, make_track(3), 1000, "not-a-source")
    with pytest.raises(ValueError):
        history.add_plays(conn, user_id, [make_play(100), bad])
    assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM user_tracks").fetchone()[0] == 0


def test_genres_unknown_versus_none(conn: sqlite3.Connection) -> None:
    unknown = history.upsert_artist(conn, history.ArtistIn("x" * 22, "No Genres Yet"))
    known = history.upsert_artist(conn, history.ArtistIn("y" * 22, "Tagged", ("jazz", "soul")))
    fetched = dict(conn.execute("SELECT id, details_fetched_at FROM artists").fetchall())
    assert fetched[unknown] is None and fetched[known] is not None
    genres = [r[0] for r in conn.execute(
        "SELECT g.name FROM artist_genres ag JOIN genres g ON g.id = ag.genre_id "
        "WHERE ag.artist_id = ? ORDER BY 1", (known,))]
    assert genres == ["jazz", "soul"]


def test_delete_history(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(100), make_play(200)])
    assert history.delete_history(conn, user_id) == 2
    for table in ("plays", "user_tracks", "user_artists", "listening_days"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_local_hours_across_daylight_saving(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    # Berlin skipped 02:00-03:00 on 29 March 2026: 00:30 UTC is 01:30, 01:30 UTC is 03:30.
    first = int(datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp())
    history.add_plays(conn, user_id, [make_play(first), make_play(first + 3600, 2)])
    hours = conn.execute("SELECT day, hour, weekday FROM listening_hours ORDER BY hour")
    assert [tuple(h) for h in hours] == [("2026-03-29", 1, 6), ("2026-03-29", 3, 6)]


def test_stale_rollups_are_rebuilt(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(1_700_000_000 + i * 900, i) for i in range(30)])
    before = conn.execute("SELECT * FROM listening_hours ORDER BY 1, 2, 3").fetchall()
    assert before
    conn.execute("DELETE FROM listening_hours")
    conn.execute("UPDATE users SET rollups_version = 0")
    assert history.refresh_stale_rollups(conn) == [user_id]
    assert conn.execute("SELECT * FROM listening_hours ORDER BY 1, 2, 3").fetchall() == before
    assert history.refresh_stale_rollups(conn) == []


def test_history_version_counts_writes_not_attempts(conn: sqlite3.Connection,
                                                    user_id: int) -> None:
    versions = [history.history_version(conn, user_id)]
    history.add_plays(conn, user_id, [make_play(100)])
    versions.append(history.history_version(conn, user_id))
    history.add_plays(conn, user_id, [make_play(100)])  # nothing new: same version
    versions.append(history.history_version(conn, user_id))
    history.rebuild_rollups(conn, user_id)
    versions.append(history.history_version(conn, user_id))
    history.delete_history(conn, user_id)
    versions.append(history.history_version(conn, user_id))
    assert versions == [0, 1, 1, 2, 3]


# --- every write that changes a page bumps the version the analytics cache is keyed on ---

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# A fixed "now" after every play below, so the test is the same on any day at any hour.
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)
BASE = 1_700_000_000  # November 2023


def _spotify_track(n: int, name: str, artist: int = 0) -> dict:
    """Track `n` of tests.conftest.make_track as the Web API describes it."""
    return {"id": f"track{n:018d}", "name": name, "duration_ms": 200_000,
            "artists": [{"id": f"artist{artist:017d}", "name": f"Artist {artist}"}],
            "album": {"id": f"album{artist:018d}", "name": f"Album {artist}"}}


def _artist_id(conn: sqlite3.Connection, n: int = 0) -> int:
    return conn.execute("SELECT id FROM artists WHERE spotify_id = ?",
                        (f"artist{n:017d}",)).fetchone()[0]


def _import(conn: sqlite3.Connection, user_id: int) -> int:
    from mtm import exports, importer

    return importer.run(exports.database_path(conn), user_id,
                        [FIXTURES / "Streaming_History_Audio_2023-2024_0.json"]).import_id


def _new_plays(conn, user_id, ctx) -> None:
    from mtm import sync

    run = sync.start_run(conn, user_id, BASE)
    sync.save_plays(conn, user_id, run, [make_play(BASE + 9_000, 4)])


def _undo(conn, user_id, ctx) -> None:
    from mtm import imports

    imports.undo(conn, user_id, ctx["import_id"])


def _clear(conn, user_id, ctx) -> None:
    from mtm import backups

    backups.clear_data(conn, user_id)


def _restore(conn, user_id, ctx) -> None:
    from mtm import backups

    backups.restore_backup(conn, ctx["root"], user_id, ctx["backup"].id)


def _time_zone(conn, user_id, ctx) -> None:
    from mtm import preferences

    preferences.save(conn, user_id, preferences.Preferences("Asia/Tokyo", 0, "plays",
                                                            "current_rotation"))


def _genres(conn, user_id, ctx) -> None:
    from mtm import sync

    sync.save_artist_details(conn, _artist_id(conn), {"id": "artist" + "0" * 17,
                                                      "name": "Artist 0", "genres": ["jazz"]})


def _artist_renamed(conn, user_id, ctx) -> None:
    from mtm import sync

    sync.save_artist_details(conn, _artist_id(conn), {"id": "artist" + "0" * 17,
                                                      "name": "Artist Zero"})


def _artists_merged(conn, user_id, ctx) -> None:
    from mtm import enrich
    from mtm.db import transaction

    with transaction(conn):
        enrich.merge_artist(conn, ctx["name_only"], _artist_id(conn))


def _snapshot_renames(conn, user_id, ctx) -> None:
    from mtm import sync

    # Spotify renamed the track; the daily top-list snapshot is what tells us.
    sync.save_snapshot(conn, user_id, "2026-06-15",
                       {("tracks", "short_term"): [_spotify_track(1, "Track One (Remastered)")]})


def _another_listener_renames(conn, user_id, ctx) -> None:
    from mtm import sync, users

    # Tracks are shared: another user's sync brings the track's new name.
    other = users.upsert_user(conn, "listener-2", "Listener Two")
    run = sync.start_run(conn, other, BASE)
    sync.save_plays(conn, other, run, [sync.parse_recently_played({"items": [{
        "played_at": "2023-11-14T23:00:00Z", "track": _spotify_track(1, "Track One (Live)")}]})
        [0][0]])


def _rebuild(conn, user_id, ctx) -> None:
    history.rebuild_rollups(conn, user_id)


def _delete(conn, user_id, ctx) -> None:
    history.delete_history(conn, user_id)


WRITES = {"new plays from a sync": _new_plays, "an import": lambda c, u, x: _import(c, u),
          "undoing an import": _undo, "clearing all data": _clear, "a restore": _restore,
          "a new time zone": _time_zone, "genres looked up": _genres,
          "an artist renamed": _artist_renamed, "artists merged": _artists_merged,
          "a track renamed by a snapshot": _snapshot_renames,
          "a track renamed by another listener": _another_listener_renames,
          "rollups rebuilt": _rebuild, "history deleted": _delete}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_that_changes_a_page_bumps_the_history_version(
        conn: sqlite3.Connection, user_id: int, tmp_path: Path, write) -> None:
    """The analytics cache is keyed on the history version: a write that changes what the
    pages show without bumping it would leave a cached page stale, which this catches."""
    from mtm import analytics, backups

    ctx = {"root": tmp_path / "backups"}
    history.add_plays(conn, user_id, [make_play(BASE + i * 3_600, i % 3) for i in range(6)])
    # An artist known by name only (account data), for the lookups to merge.
    history.add_plays(conn, user_id, [PlayIn(BASE + 50_000, history.TrackIn(
        None, "Name Only", (history.ArtistIn(None, "Artist 0"),)), 180_000, "account")])
    ctx["name_only"] = conn.execute("SELECT id FROM artists WHERE spotify_id IS NULL").fetchone()[0]
    ctx["backup"] = backups.create_backup(conn, ctx["root"], user_id)
    history.add_plays(conn, user_id, [make_play(BASE + 40_000, 2)])
    if write is _undo:
        ctx["import_id"] = _import(conn, user_id)

    cache = analytics.Cache()
    before = analytics.load(conn, user_id, {"range": "all"}, cache=cache, now=NOW)
    version = history.history_version(conn, user_id)
    write(conn, user_id, ctx)
    fresh = analytics.load(conn, user_id, {"range": "all"}, now=NOW)
    # Rebuilding gives the same figures; every other write here changes what the page shows.
    assert (fresh == before) is (write is _rebuild), "a write that changes nothing: no test"
    assert history.history_version(conn, user_id) > version
    assert analytics.load(conn, user_id, {"range": "all"}, cache=cache, now=NOW) == fresh


def test_whole_history_heatmap_matches_the_hours(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE preferences SET timezone = 'Asia/Kolkata'")
    history.add_plays(conn, user_id, [make_play(1_700_000_000 + i * 5000, i) for i in range(60)])
    history.add_plays(conn, user_id, [make_play(1_700_000_000 + i * 7000, i) for i in range(60)])

    def weekhours() -> list:
        return [tuple(r) for r in conn.execute(
            "SELECT weekday, hour, plays, ms_played FROM listening_weekhours ORDER BY 1, 2")]

    summed = [tuple(r) for r in conn.execute(
        "SELECT weekday, hour, sum(plays), sum(ms_played) FROM listening_hours "
        "GROUP BY weekday, hour ORDER BY 1, 2")]
    # 120 plays: nine pairs end in the same second, but only one pair (the first of each
    # batch) is the same track, so only that one is the same play.
    assert weekhours() == summed and sum(r[2] for r in summed) == 119
    history.rebuild_rollups(conn, user_id)
    assert weekhours() == summed
