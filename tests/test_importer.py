"""The importer: preview changes nothing, every play is stored once, undo removes exactly
what an import added, and a failure half-way leaves the database as it was."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import analytics, db, exports, history, importer, imports, sync, users
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn

BASE = int(datetime(2019, 6, 1, 12, tzinfo=UTC).timestamp())
NOW = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
KEYS = ("ts", "platform", "ms_played", "conn_country", "ip_addr", "master_metadata_track_name",
        "master_metadata_album_artist_name", "master_metadata_album_album_name",
        "spotify_track_uri", "episode_name", "episode_show_name", "spotify_episode_uri",
        "audiobook_title", "audiobook_uri", "audiobook_chapter_uri", "audiobook_chapter_title",
        "reason_start", "reason_end", "shuffle", "skipped", "offline", "offline_timestamp",
        "incognito_mode")


def track_id(n: int) -> str:
    """A 22-character Spotify-like id for track n."""
    return f"{n:022d}"


def extended(ts: int, n: int, ms: int = 200_000, **fields: object) -> dict:
    """An extended streaming history record of track n by artist n // 10."""
    record = dict.fromkeys(KEYS)
    record.update(ts=datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  platform="android", ms_played=ms, conn_country="SE", ip_addr="192.0.2.1",
                  master_metadata_track_name=f"Song {n}",
                  master_metadata_album_artist_name=f"Band {n // 10}",
                  master_metadata_album_album_name=f"Album {n // 10}",
                  spotify_track_uri=f"spotify:track:{track_id(n)}",
                  reason_start="trackdone", reason_end="trackdone" if ms >= 30_000 else "fwdbtn",
                  shuffle=False, skipped=ms < 30_000, offline=False, offline_timestamp=ts - 300,
                  incognito_mode=False)
    record.update(fields)
    return record


def account(ts: int, n: int, ms: int = 200_000) -> dict:
    """The account-data record of the same play (minute precision, names only)."""
    return {"endTime": datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M"),
            "artistName": f"Band {n // 10}", "trackName": f"Song {n}", "msPlayed": ms}


def write(folder: Path, name: str, records: list) -> Path:
    """Write a JSON file of records."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def api_play(ts: int, n: int) -> PlayIn:
    """A play as sync stores it from recently played (same track ids as the exports)."""
    return PlayIn(ts, TrackIn(track_id(n), f"Song {n}", (ArtistIn(f"a{n // 10:021d}",
                                                                   f"Band {n // 10}"),),
                              AlbumIn(f"b{n // 10:021d}", f"Album {n // 10}"), 200_000),
                  200_000, "api")


@pytest.fixture
def path(conn: sqlite3.Connection) -> Path:
    return exports.database_path(conn)


def preview(path: Path, user_id: int, files: list[Path]) -> importer.Report:
    return importer.preview(path, user_id, files, now=NOW)


def run(path: Path, user_id: int, files: list[Path]) -> importer.Report:
    return importer.run(path, user_id, files, now=NOW).report


def plays(conn: sqlite3.Connection, user_id: int) -> list[tuple]:
    return [tuple(r) for r in conn.execute(
        "SELECT p.played_at, t.name, p.ms_played, p.source FROM plays p "
        "JOIN tracks t ON t.id = p.track_id WHERE p.user_id = ? ORDER BY 1, 2, 3", (user_id,))]


def rollups(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in conn.execute(
        f"SELECT * FROM {table} WHERE user_id = ? ORDER BY 2, 3", (user_id,))]
        for table in history.ROLLUP_TABLES}


def assert_rollups_exact(conn: sqlite3.Connection, user_id: int) -> None:
    """Rollups kept on write equal rollups rebuilt from the plays."""
    kept = rollups(conn, user_id)
    history.rebuild_rollups(conn, user_id)
    assert rollups(conn, user_id) == kept


# --- preview and import --------------------------------------------------------------------


def test_preview_changes_nothing_and_the_import_does_what_it_said(
        conn: sqlite3.Connection, user_id: int, path: Path, tmp_path: Path) -> None:
    records = [extended(BASE + i * 300, i) for i in range(20)]
    records += [extended(BASE + 9000, 3, ms=4_000),  # a skip: its minutes count, not a play
                extended(BASE + 9300, 0, episode_name="Ep", spotify_episode_uri="spotify:ep:x",
                         master_metadata_track_name=None, spotify_track_uri=None),
                {"ts": "yesterday"}]
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json", records)]
    version = history.history_version(conn, user_id)
    report = preview(path, user_id, files)
    assert (report.read, report.new, report.too_short, report.not_music, report.malformed) == (
        23, 20, 1, 1, 1)
    assert report.adds_up and report.short_stored == 1 and report.present == 0
    assert report.problems[0].reason.startswith("“ts” is not a date")
    assert plays(conn, user_id) == [] and history.history_version(conn, user_id) == version
    assert conn.execute("SELECT count(*) FROM imports").fetchone()[0] == 0

    done = run(path, user_id, files)
    assert (done.new, done.short_stored, done.present) == (report.new, report.short_stored, 0)
    stored = plays(conn, user_id)
    assert len(stored) == 21 and {p[3] for p in stored} == {"export"}
    headline = conn.execute("SELECT sum(plays), sum(ms_played) FROM listening_days").fetchone()
    assert tuple(headline) == (20, 20 * 200_000 + 4_000)
    [record] = imports.list_imports(conn, user_id)
    assert record.plays_added == 21 and record.report.new == 20
    assert record.first_played == BASE and record.files[0]["records"] == 23
    assert_rollups_exact(conn, user_id)


def test_the_same_files_again_add_nothing(conn: sqlite3.Connection, user_id: int, path: Path,
                                          tmp_path: Path) -> None:
    files = [write(tmp_path, "endsong_0.json", [extended(BASE + i * 300, i) for i in range(30)])]
    run(path, user_id, files)
    before = plays(conn, user_id)
    again = run(path, user_id, files)
    assert (again.new, again.present, again.short_stored) == (0, 30, 0) and again.adds_up
    assert plays(conn, user_id) == before
    # Every import is recorded, the one that found everything already here too.
    assert [r.plays_added for r in imports.list_imports(conn, user_id)] == [0, 30]


def test_records_sharing_a_second_are_distinct_plays(conn: sqlite3.Connection, user_id: int,
                                                      path: Path, tmp_path: Path) -> None:
    records = [extended(BASE, 1, ms=2_000), extended(BASE, 2, ms=3_000),  # two quick skips
               extended(BASE + 60, 5, ms=200_000, offline_timestamp=BASE - 900),
               extended(BASE + 60, 5, ms=150_000, offline_timestamp=BASE - 400),
               # Same track, length and second, another offline time: synced twice, two plays.
               extended(BASE + 60, 5, ms=150_000, offline_timestamp=BASE - 100)]
    report = run(path, user_id, [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                                       records)])
    assert report.new == 3 and report.short_stored == 2 and report.repeated == 0
    assert len(plays(conn, user_id)) == 5


def test_overlapping_files_store_each_play_once(conn: sqlite3.Connection, user_id: int,
                                                path: Path, tmp_path: Path) -> None:
    first = [extended(BASE + i * 300, i) for i in range(10)]
    second = first[-3:] + [extended(BASE + (10 + i) * 300, 10 + i) for i in range(5)]
    report = run(path, user_id, [write(tmp_path, "Streaming_History_Audio_2019_0.json", first),
                                 write(tmp_path, "Streaming_History_Audio_2019_1.json", second)])
    assert (report.new, report.repeated, report.present) == (15, 3, 3) and report.adds_up
    assert len(plays(conn, user_id)) == 15


def test_the_old_and_new_extended_formats_are_the_same_records(
        conn: sqlite3.Connection, user_id: int, path: Path, tmp_path: Path) -> None:
    new = [extended(BASE + i * 300, i) for i in range(5)]
    old = []
    for record in new:
        legacy = {k: v for k, v in record.items() if not k.startswith("audiobook")}
        legacy.pop("ip_addr")
        legacy.update(username="someone", ip_addr_decrypted="192.0.2.1",
                      user_agent_decrypted="unknown", platform="Android OS 9 API 28",
                      offline_timestamp=record["offline_timestamp"] * 1000)
        old.append(legacy)
    run(path, user_id, [write(tmp_path / "2023", "Streaming_History_Audio_2019_0.json", new)])
    again = run(path, user_id, [write(tmp_path / "2021", "endsong_0.json", old)])
    assert (again.new, again.present) == (0, 5)


def test_account_data_records_sharing_a_minute_are_distinct(
        conn: sqlite3.Connection, user_id: int, path: Path, tmp_path: Path) -> None:
    minute = BASE - BASE % 60
    records = [account(minute, 1, 40_000), account(minute + 10, 2, 45_000),
               account(minute, 3, 0), account(minute, 3, 0)]  # two identical quick skips
    files = [write(tmp_path, "StreamingHistory_music_0.json", records)]
    report = run(path, user_id, files)
    assert (report.new, report.short_stored) == (2, 2)
    # The same file again is the same records, and another file holding them too.
    again = run(path, user_id, [*files, write(tmp_path / "later", "StreamingHistory0.json",
                                              records)])
    assert again.new == 0 and again.short_stored == 0 and again.adds_up
    assert len(plays(conn, user_id)) == 4


def test_account_data_and_extended_history_store_each_play_once(
        conn: sqlite3.Connection, user_id: int, path: Path, tmp_path: Path) -> None:
    times = [BASE + i * 250 for i in range(12)]
    ext = [extended(t, i) for i, t in enumerate(times)]
    acc = [account(t, i) for i, t in enumerate(times[4:], start=4)]
    acc.append(account(BASE + 99_000, 77))  # only in account data
    # In one upload: account data is matched against the extended history beside it.
    report = run(path, user_id, [write(tmp_path / "a", "StreamingHistory_music_0.json", acc),
                                 write(tmp_path / "b", "Streaming_History_Audio_2019_0.json",
                                       ext)])
    assert (report.new, report.present) == (13, 8) and report.adds_up
    assert report.by_name == 8 and report.name_only == 1
    stored = plays(conn, user_id)
    assert len(stored) == 13 and sum(1 for p in stored if p[3] == "account") == 1
    # Matched by name, the account-only play counts with the same track's other plays.
    assert conn.execute("SELECT count(*) FROM tracks WHERE spotify_id IS NULL").fetchone()[0] == 1


def test_account_data_first_then_extended_history(conn: sqlite3.Connection, user_id: int,
                                                  path: Path, tmp_path: Path) -> None:
    times = [BASE + i * 250 for i in range(6)]
    run(path, user_id, [write(tmp_path / "a", "StreamingHistory_music_0.json",
                              [account(t, i) for i, t in enumerate(times)])])
    assert conn.execute("SELECT count(*) FROM tracks WHERE spotify_id IS NULL").fetchone()[0] == 6
    later = [extended(t, i) for i, t in enumerate(times)] + [extended(BASE + 5000, 0)]
    report = run(path, user_id, [write(tmp_path / "b", "Streaming_History_Audio_2019_0.json",
                                       later)])
    assert (report.new, report.present) == (1, 6)
    # The tracks known by name now have their Spotify ids: one track, all its plays.
    assert conn.execute("SELECT count(*) FROM tracks WHERE spotify_id IS NULL").fetchone()[0] == 0
    assert conn.execute("SELECT plays FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id "
                        "WHERE t.name = 'Song 0'").fetchone()[0] == 2


def test_polled_plays_and_their_exported_twins(conn: sqlite3.Connection, user_id: int,
                                               path: Path, tmp_path: Path) -> None:
    # Polled first: the export's records of those plays end a few seconds apart.
    history.add_plays(conn, user_id, [api_play(BASE + 3, 1), api_play(BASE + 600, 2)])
    ext = [extended(BASE, 1, ms=199_000), extended(BASE + 605, 2, ms=200_000),
           extended(BASE + 610, 2, ms=5_000),  # a skip of the same track: its own stream
           extended(BASE + 1200, 3)]
    report = run(path, user_id, [write(tmp_path, "Streaming_History_Audio_2019_0.json", ext)])
    assert (report.new, report.present, report.short_stored) == (1, 2, 1)
    assert len(plays(conn, user_id)) == 4
    # Imported first: a poll of the same play adds nothing either.
    assert history.add_plays(conn, user_id, [api_play(BASE + 1203, 3)]) == 0
    assert_rollups_exact(conn, user_id)


def test_own_json_export_round_trip(conn: sqlite3.Connection, user_id: int, path: Path,
                                    tmp_path: Path) -> None:
    history.add_plays(conn, user_id, [api_play(BASE + i * 400, i) for i in range(5)])
    run(path, user_id, [write(tmp_path, "endsong_0.json",
                              [extended(BASE + 5000 + i * 400, i, ms=1000 * (i + 1) * 20)
                               for i in range(5)])])
    conn.execute("UPDATE plays SET context_uri = 'spotify:album:x' WHERE source = 'api'")
    database = db.Database(path)

    async def dump() -> bytes:
        return b"".join([part async for part in exports.stream_json(database, user_id)])

    import asyncio
    data = asyncio.run(dump())
    database.close()
    export_file = tmp_path / "music-time-machine-2026-01-01.json"
    export_file.write_bytes(data)
    # Into the same account: nothing new.
    again = run(path, user_id, [export_file])
    assert (again.new, again.short_stored) == (0, 0) and again.present + again.too_short == 10
    # Into another account: the same plays, sources and contexts come back.
    other = users.upsert_user(conn, "listener-2", "Listener Two")
    report = run(path, other, [export_file])
    assert report.new + report.short_stored == 10
    assert plays(conn, other) == plays(conn, user_id)
    assert [r[0] for r in conn.execute("SELECT context_uri FROM plays WHERE user_id = ? "
                                       "AND source = 'api' LIMIT 1", (other,))] == \
        ["spotify:album:x"]
    assert conn.execute("SELECT count(DISTINCT track_id) FROM plays").fetchone()[0] == 5


# --- undo ------------------------------------------------------------------------------------


def test_undo_removes_exactly_what_the_import_added(conn: sqlite3.Connection, user_id: int,
                                                    path: Path, tmp_path: Path) -> None:
    # Polled before: its exported twin is not the import's.
    history.add_plays(conn, user_id, [api_play(BASE + 303, 1)])
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                   [extended(BASE + i * 300, i) for i in range(8)])]
    run(path, user_id, files)
    # Later syncs keep recording.
    history.add_plays(conn, user_id, [api_play(BASE + 90_000, 9), api_play(BASE + 91_000, 8)])
    [record] = [r for r in imports.list_imports(conn, user_id) if r.plays_added]
    assert record.plays_added == 7 and record.undoable
    assert imports.undo(conn, user_id, record.id, now=NOW) == 7
    assert [p[3] for p in plays(conn, user_id)] == ["api", "api", "api"]
    undone = imports.get_import(conn, user_id, record.id)
    assert undone.undone_at == NOW and undone.plays_removed == 7 and not undone.undoable
    assert_rollups_exact(conn, user_id)
    with pytest.raises(imports.JobError, match="undone already"):
        imports.undo(conn, user_id, record.id)
    # Another user's import is not theirs to undo.
    other = users.upsert_user(conn, "listener-2", "Listener Two")
    with pytest.raises(LookupError):
        imports.undo(conn, other, record.id)


def test_coverage_shows_sources_and_gaps(conn: sqlite3.Connection, user_id: int, path: Path,
                                         tmp_path: Path) -> None:
    jan = int(datetime(2019, 1, 15, tzinfo=UTC).timestamp())
    apr = int(datetime(2019, 4, 15, tzinfo=UTC).timestamp())
    run(path, user_id, [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                              [extended(jan, 1), extended(jan + 400, 2)])])
    history.add_plays(conn, user_id, [api_play(apr, 3)])
    cov = imports.coverage(conn, user_id, datetime(2019, 5, 2).date())
    [(year, cells)] = cov.years
    assert year == 2019 and cells[0].plays == 2 and cells[0].main_source == "export"
    assert [c.plays for c in cells[1:3]] == [0, 0] and cells[3].by_source == {"api": 1}
    assert cells[5] is None  # after this month
    # May has just begun: it is shown, but not a gap yet.
    assert cov.gaps == [(datetime(2019, 2, 1).date(), datetime(2019, 3, 1).date())]
    assert cells[4].plays == 0
    later = imports.coverage(conn, user_id, datetime(2019, 8, 2).date())
    assert later.gaps[-1] == (datetime(2019, 5, 1).date(), datetime(2019, 7, 1).date())
    assert cov.sources == ["export", "api"]
    assert "January 2019: 2 plays" in cells[0].label


# --- failures --------------------------------------------------------------------------------


def test_a_bad_file_stops_the_import_and_changes_nothing(conn: sqlite3.Connection, user_id: int,
                                                         path: Path, tmp_path: Path) -> None:
    good = write(tmp_path, "Streaming_History_Audio_2019_0.json", [extended(BASE, 1)])
    bad = tmp_path / "Streaming_History_Audio_2019_1.json"
    bad.write_text('[{"ts": "2019-06-01T12:00:00Z", "ms_played": 1', encoding="utf-8")
    with pytest.raises(importer.ExportError, match="truncated"):
        run(path, user_id, [good, bad])
    assert plays(conn, user_id) == [] and imports.list_imports(conn, user_id) == []


def test_a_crash_half_way_leaves_the_database_as_it_was(conn: sqlite3.Connection, user_id: int,
                                                        path: Path, tmp_path: Path) -> None:
    history.add_plays(conn, user_id, [api_play(BASE - 5000, 1)])
    before_plays, before_rollups = plays(conn, user_id), rollups(conn, user_id)
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                   [extended(BASE + i * 300, i) for i in range(50)])]
    script = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from mtm import history, importer

        real = history.apply_incoming
        def crash(conn, user_id, import_id=None):
            conn.execute("INSERT INTO plays (user_id, played_at, record_key, track_id, "
                         "artist_id, ms_played, source) SELECT ?, played_at, record_key, "
                         "track_id, artist_id, ms_played, source FROM incoming_plays",
                         (user_id,))
            os._exit(3)  # the process dies inside the write transaction
        history.apply_incoming = crash
        importer.run(Path({str(path)!r}), {user_id}, [Path({str(files[0])!r})], now={NOW})
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 3, result.stderr
    assert plays(conn, user_id) == before_plays and rollups(conn, user_id) == before_rollups
    assert imports.list_imports(conn, user_id) == []
    # Run again, it completes.
    assert run(path, user_id, files).new == 50
    assert len(plays(conn, user_id)) == 51


# --- what comes after -------------------------------------------------------------------------


def test_new_genres_show_in_cached_analytics(conn: sqlite3.Connection, user_id: int,
                                             path: Path, tmp_path: Path) -> None:
    history.add_plays(conn, user_id, [api_play(NOW - 86_400 * 3 + i * 400, i) for i in range(3)])
    cache = analytics.Cache()
    now = datetime.fromtimestamp(NOW, UTC)
    first = analytics.load(conn, user_id, {"range": "30d"}, cache=cache, now=now)
    assert first.genres == [] and analytics.load(conn, user_id, {"range": "30d"}, cache=cache,
                                                 now=now) is first
    artist = conn.execute("SELECT id FROM artists LIMIT 1").fetchone()[0]
    sync.save_artist_details(conn, artist, {"id": "x", "name": "Band 0",
                                            "genres": ["shoegaze"]})
    after = analytics.load(conn, user_id, {"range": "30d"}, cache=cache, now=now)
    assert [g.name for g in after.genres] == ["shoegaze"]


def test_zip_as_spotify_sends_it(conn: sqlite3.Connection, user_id: int, path: Path,
                                 tmp_path: Path) -> None:
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Spotify Extended Streaming History/Streaming_History_Audio_2019_0.json",
                   json.dumps([extended(BASE + i * 300, i) for i in range(4)]))
        z.writestr("Spotify Extended Streaming History/Streaming_History_Video_2019.json",
                   json.dumps([extended(BASE, 1, spotify_episode_uri="spotify:episode:x")]))
        z.writestr("Spotify Extended Streaming History/ReadMeFirst_ExtendedStreamingHistory.pdf",
                   b"%PDF-1.4")
        z.writestr("MyData/StreamingHistory_music_0.json",
                   json.dumps([account(BASE + i * 300, i) for i in range(4)]))
        z.writestr("MyData/StreamingHistory_podcast_0.json",
                   json.dumps([{"endTime": "2019-06-01 12:00", "podcastName": "P",
                                "episodeName": "E", "msPlayed": 5}]))
        z.writestr("MyData/Userdata.json", json.dumps({"username": "someone"}))
    report = run(path, user_id, [archive])
    assert (report.read, report.new, report.present, report.not_music) == (10, 4, 4, 2)
    assert sorted(report.ignored) == [
        f"{archive.name}/MyData/Userdata.json",
        f"{archive.name}/Spotify Extended Streaming History/"
        "ReadMeFirst_ExtendedStreamingHistory.pdf"] and report.adds_up


def test_big_uploads_are_read_with_a_helper_process_with_the_same_result(
        conn: sqlite3.Connection, user_id: int, path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    files = [write(tmp_path, f"Streaming_History_Audio_2019_{n}.json",
                   [extended(BASE + (n * 40 + i) * 300, n * 40 + i) for i in range(40)]
                   + [{"ts": None}]) for n in range(3)]
    alone = preview(path, user_id, files)
    monkeypatch.setattr(importer, "PARALLEL_BYTES", 0)
    started = []
    real = importer.readers.Helper.__init__

    def counted(self: object) -> None:
        started.append(self)
        real(self)

    monkeypatch.setattr(importer.readers.Helper, "__init__", counted)
    helped = preview(path, user_id, files)
    assert len(started) == 1, "a helper process read some of the files"
    assert helped == alone and helped.new == 120 and helped.malformed == 3
    assert started[0].process.poll() == 0, "the helper has stopped"
    # A file a helper cannot read stops the import with its reason, as without helpers.
    broken = write(tmp_path, "Streaming_History_Audio_2019_9.json", [])
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(importer.ExportError, match="Streaming_History_Audio_2019_9.json"):
        run(path, user_id, [*files, broken])
    assert plays(conn, user_id) == []


def test_a_full_disk_leaves_the_database_as_it_was(conn: sqlite3.Connection, user_id: int,
                                                   path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    history.add_plays(conn, user_id, [api_play(BASE - 5000, 1)])
    before_plays, before_rollups = plays(conn, user_id), rollups(conn, user_id)
    real = importer._connect

    def nearly_full(db_path: Path) -> sqlite3.Connection:
        import_conn = real(db_path)
        pages = import_conn.execute("PRAGMA page_count").fetchone()[0]
        import_conn.execute(f"PRAGMA max_page_count = {pages + 2}")
        return import_conn

    monkeypatch.setattr(importer, "_connect", nearly_full)
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                   [extended(BASE + i * 300, i) for i in range(400)])]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        run(path, user_id, files)
    assert plays(conn, user_id) == before_plays and rollups(conn, user_id) == before_rollups
    assert imports.list_imports(conn, user_id) == []
    monkeypatch.setattr(importer, "_connect", real)
    assert run(path, user_id, files).new == 400
