"""Exports: the SQLite snapshot (only this user's rows, consistent while syncs write),
Spotify-format JSON and spreadsheet CSV, checked field by field."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import db, exports, history, sync, users
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from tests.conftest import make_play

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASE = int(datetime(2025, 3, 1, 12, tzinfo=UTC).timestamp())

EARTH = ArtistIn("0earthwindfriends00000", "Earth, Wind & Friends")
QUOTED = ArtistIn("0quotedband000000000000", 'The "Quoted" Band')
MIU = ArtistIn("0sakamotomiu0000000000", "坂本 美雨")
SIGUR = ArtistIn("0sigurros0000000000000", "Sigur Rós")
TRACKS = [
    TrackIn("1groove00000000000000", "Let's Groove, Again", (EARTH, QUOTED),
            AlbumIn("2funk000000000000000", "Funk, Vol. 2"), 240_000),
    TrackIn("1hi000000000000000000", 'Say "Hi"', (QUOTED,),
            AlbumIn("2quoted0000000000000", '"Live", at the Garage'), 150_000),
    TrackIn("1tori0000000000000000", "鳥の歌", (MIU,), AlbumIn("2miu00000000000000000", "雨と夢"),
            200_000),
    TrackIn("1hoppipolla000000000", "Hoppípolla", (SIGUR,),
            AlbumIn("2takk000000000000000", "Takk…"), 268_000),
    # A local file: no Spotify ids at all.
    TrackIn(None, "=SUM(A1:A9) demo", (ArtistIn(None, "-Local Artist"),), None, None),
]


@dataclass
class World:
    """Two users: `me` with every kind of row, `other` with plays of their own."""

    conn: sqlite3.Connection
    me: int
    other: int
    path: Path


def populate(conn: sqlite3.Connection) -> World:
    """A database with one user's plays, snapshots, runs, playlists, tokens, and another user."""
    me = users.upsert_user(conn, "listener-me", "Me")
    other = users.upsert_user(conn, "listener-other", "Other")
    users.save_tokens(conn, me, access_token="secret-access", refresh_token="secret-refresh",
                      expires_at=BASE + 3600, scope="user-read-recently-played",
                      new_consent=True)
    users.save_tokens(conn, other, access_token="other-access", refresh_token="other-refresh",
                      expires_at=BASE + 3600, scope="user-read-recently-played",
                      new_consent=True)
    conn.execute("UPDATE preferences SET timezone = 'Europe/Stockholm', week_start = 6, "
                 "chart_metric = 'minutes', playlist_source = 'on_this_day' WHERE user_id = ?",
                 (me,))
    conn.execute("INSERT INTO oauth_states VALUES ('state', 'verifier', 'b', 'r', NULL, 1)")
    plays = [
        PlayIn(BASE, TRACKS[0], 239_500, "api", "spotify:playlist:37i9dQZF1DX0", False),
        PlayIn(BASE + 300, TRACKS[1], 12_000, "export", None, True),
        PlayIn(BASE + 600, TRACKS[2], 200_000, "demo", None, None),
        PlayIn(BASE + 900, TRACKS[3], 268_000, "api", "spotify:album:2takk000000000000000",
               False),
        PlayIn(BASE + 1200, TRACKS[4], 61_000, "export", None, None),
        PlayIn(BASE + 86_400, TRACKS[0], 120_000, "api", None, True),
    ]
    history.add_plays(conn, me, plays)
    history.add_plays(conn, other, [make_play(BASE + 5, 900), make_play(BASE + 10, 901),
                                    PlayIn(BASE + 20, TRACKS[2], 1000, "api")])
    track_ids = dict(conn.execute("SELECT name, id FROM tracks").fetchall())
    artist_ids = dict(conn.execute("SELECT name, id FROM artists").fetchall())
    for user, track, artist in ((me, "Hoppípolla", "Sigur Rós"),
                                (other, "Track 900", "Artist 90")):
        conn.execute("INSERT INTO top_snapshots VALUES (?, '2025-03-01', 'tracks', 'short_term', "
                     "1, ?, NULL)", (user, track_ids[track]))
        conn.execute("INSERT INTO top_snapshots VALUES (?, '2025-03-01', 'artists', 'long_term', "
                     "1, NULL, ?)", (user, artist_ids[artist]))
    for user in (me, other):
        run = sync.start_run(conn, user, BASE)
        sync.finish_run(conn, run, "ok")
    sync.finish_run(conn, sync.start_run(conn, me, BASE + 60), "failed", "Spotify is down")
    for user, name in ((me, "My gems"), (other, "Their gems")):
        playlist = conn.execute(
            "INSERT INTO playlists (user_id, spotify_id, name, source, track_count, tracks_added, "
            "url, idempotency_key, created_at, updated_at) VALUES (?, ?, ?, 'forgotten_gems', "
            "2, 2, 'https://open.spotify.com/playlist/x', ?, ?, ?) RETURNING id",
            (user, f"pl-{user}", name, f"key-{user}", BASE, BASE)).fetchone()[0]
        conn.execute("INSERT INTO playlist_tracks VALUES (?, 0, ?), (?, 1, ?)",
                     (playlist, track_ids["鳥の歌"], playlist, track_ids["Say \"Hi\""]))
    return World(conn, me, other, exports.database_path(conn))


@pytest.fixture
def world(conn: sqlite3.Connection) -> World:
    return populate(conn)


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


# --- SQLite ----------------------------------------------------------------------------


def test_snapshot_holds_exactly_this_users_rows(world: World, tmp_path: Path) -> None:
    summary = exports.write_snapshot(world.path, world.me, tmp_path / "out.sqlite3")
    # Six streams, one of 12 s: five plays.
    assert summary.plays == 5 and summary.size_bytes == summary.path.stat().st_size
    assert not (tmp_path / "out.sqlite3.partial").exists()
    out = _open(summary.path)
    assert out.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert out.execute("PRAGMA application_id").fetchone()[0] == exports.APPLICATION_ID
    assert out.execute("PRAGMA user_version").fetchone()[0] == db.migrations()[-1][0]
    assert out.execute("PRAGMA foreign_key_check").fetchall() == []
    assert [r[0] for r in out.execute("SELECT spotify_id FROM users")] == ["listener-me"]
    # Secrets and other people's rows never leave.
    for table in ("tokens", "oauth_states", "leases", "backups"):
        assert out.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
    for table in ("plays", "preferences", "user_tracks", "user_artists", "listening_days",
                  "listening_hours", "listening_weekhours", "top_snapshots", "sync_runs",
                  "playlists"):
        owners = {r[0] for r in out.execute(f"SELECT DISTINCT user_id FROM {table}")}
        assert owners == {world.me}, table
    assert out.execute("SELECT count(*) FROM sync_runs").fetchone()[0] == 2
    assert [r[0] for r in out.execute("SELECT name FROM playlists")] == ["My gems"]
    assert out.execute("SELECT count(*) FROM playlist_tracks").fetchone()[0] == 2
    prefs = out.execute("SELECT timezone, week_start, chart_metric, playlist_source "
                        "FROM preferences").fetchone()
    assert tuple(prefs) == ("Europe/Stockholm", 6, "minutes", "on_this_day")
    # Exactly the catalogue this user's rows point at.
    tracks = {r[0] for r in out.execute("SELECT name FROM tracks")}
    assert tracks == {t.name for t in TRACKS}
    artists = {r[0] for r in out.execute("SELECT name FROM artists")}
    assert artists == {"Earth, Wind & Friends", 'The "Quoted" Band', "坂本 美雨", "Sigur Rós",
                       "-Local Artist"}
    assert out.execute("SELECT count(*) FROM track_artists").fetchone()[0] == 6
    live = world.conn.execute("SELECT count(*) FROM plays WHERE user_id = ?",
                              (world.me,)).fetchone()[0]
    assert out.execute("SELECT count(*) FROM plays").fetchone()[0] == live


def test_snapshot_rows_equal_the_live_rows(world: World, tmp_path: Path) -> None:
    out = _open(exports.write_snapshot(world.path, world.me, tmp_path / "o.sqlite3").path)
    query = """SELECT p.played_at, t.spotify_id, t.name, a.name, p.ms_played, p.source,
                      p.context_uri, p.skipped
               FROM plays p JOIN tracks t ON t.id = p.track_id JOIN artists a ON a.id = p.artist_id
               WHERE p.user_id = ? ORDER BY p.played_at"""
    assert ([tuple(r) for r in out.execute(query, (world.me,))]
            == [tuple(r) for r in world.conn.execute(query, (world.me,))])
    rollup = ("SELECT day, hour, plays, ms_played FROM listening_hours WHERE user_id = ? "
              "ORDER BY 1, 2")
    assert ([tuple(r) for r in out.execute(rollup, (world.me,))]
            == [tuple(r) for r in world.conn.execute(rollup, (world.me,))])


def test_snapshot_excludes_uncommitted_plays_and_includes_them_after_commit(
        world: World, tmp_path: Path) -> None:
    writer = db.connect(world.path)
    try:
        writer.execute("BEGIN IMMEDIATE")
        history.add_plays(writer, world.me, [make_play(BASE + 10_000 + i, 500 + i)
                                             for i in range(100)])
        # A sync is in the middle of writing 100 plays: the export sees none of them.
        during = exports.write_snapshot(world.path, world.me, tmp_path / "during.sqlite3")
        writer.execute("COMMIT")
    finally:
        writer.close()
    after = exports.write_snapshot(world.path, world.me, tmp_path / "after.sqlite3")
    assert during.plays == 5 and after.plays == 105
    conn = _open(during.path)
    assert conn.execute("SELECT count(*) FROM tracks WHERE name LIKE 'Track 5%'").fetchone()[0] == 0
    assert conn.execute("SELECT sum(plays) FROM user_tracks").fetchone()[0] == 5
    conn = _open(after.path)
    assert conn.execute("SELECT sum(plays) FROM user_tracks").fetchone()[0] == 105


def test_snapshots_taken_while_syncs_write_are_each_consistent(world: World,
                                                                tmp_path: Path) -> None:
    batches, size = 30, 200
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        writer = db.connect(world.path)
        try:
            for b in range(batches):
                history.add_plays(writer, world.me, [
                    make_play(BASE + 100_000 + b * 10_000 + i, 1000 + i) for i in range(size)])
        except BaseException as exc:
            errors.append(exc)
        finally:
            writer.close()
            stop.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen = set()
    n = 0
    while not stop.is_set():
        summary = exports.write_snapshot(world.path, world.me, tmp_path / f"s{n}.sqlite3")
        out = _open(summary.path)
        plays = out.execute("SELECT count(*) FROM plays").fetchone()[0]
        # Whole batches only, and rollups that agree with the plays in the same file.
        assert (plays - 6) % size == 0
        counted = out.execute("SELECT sum(counted) FROM plays").fetchone()[0]
        assert out.execute("SELECT sum(plays) FROM user_tracks").fetchone()[0] == counted
        assert out.execute("SELECT sum(plays) FROM listening_days").fetchone()[0] == counted
        missing = out.execute("SELECT count(*) FROM plays p WHERE NOT EXISTS "
                              "(SELECT 1 FROM tracks t WHERE t.id = p.track_id)").fetchone()[0]
        assert missing == 0
        out.close()
        summary.path.unlink()
        seen.add(plays)
        n += 1
    thread.join()
    assert not errors
    assert len(seen) >= 2, "no export ran while the writer was writing"
    final = exports.write_snapshot(world.path, world.me, tmp_path / "final.sqlite3")
    assert final.plays == 5 + batches * size


def test_failed_snapshot_leaves_no_file(world: World, tmp_path: Path, monkeypatch) -> None:
    def broken(conn, user_id):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(exports, "_copy_user", broken)
    with pytest.raises(sqlite3.OperationalError):
        exports.write_snapshot(world.path, world.me, tmp_path / "x.sqlite3")
    assert list(tmp_path.glob("x.sqlite3*")) == []


# --- JSON --------------------------------------------------------------------------------


async def _collect(stream) -> bytes:
    return b"".join([chunk async for chunk in stream])


@pytest.fixture
def database(world: World):
    pool = db.Database(world.path)
    yield pool
    pool.close()


@pytest.mark.parametrize("page_size", [2, 5, 6, 5000])
async def test_json_is_spotify_extended_history(world: World, database, page_size: int) -> None:
    data = json.loads(await _collect(exports.stream_json(database, world.me, page_size)))
    assert isinstance(data, list) and len(data) == 6
    fixture_keys = set(json.loads(
        (FIXTURES / "Streaming_History_Audio_2023-2024_0.json").read_text())[0])
    for record in data:
        assert set(record) == fixture_keys | set(exports.MTM_KEYS)
        assert list(record)[:len(exports.SPOTIFY_KEYS)] == list(exports.SPOTIFY_KEYS)
    first = data[0]
    assert first["ts"] == "2025-03-01T12:00:00Z"
    assert first["ms_played"] == 239_500
    assert first["master_metadata_track_name"] == "Let's Groove, Again"
    assert first["master_metadata_album_artist_name"] == "Earth, Wind & Friends"
    assert first["master_metadata_album_album_name"] == "Funk, Vol. 2"
    assert first["spotify_track_uri"] == "spotify:track:1groove00000000000000"
    assert first["skipped"] is False
    for key in ("platform", "conn_country", "ip_addr", "episode_name", "episode_show_name",
                "spotify_episode_uri", "audiobook_title", "audiobook_uri",
                "audiobook_chapter_uri", "audiobook_chapter_title", "reason_start",
                "reason_end", "shuffle", "offline", "offline_timestamp", "incognito_mode"):
        assert first[key] is None, key
    assert first["mtm_source"] == "api"
    assert first["mtm_context_uri"] == "spotify:playlist:37i9dQZF1DX0"
    assert first["mtm_artist_uri"] == "spotify:artist:0earthwindfriends00000"
    assert first["mtm_album_uri"] == "spotify:album:2funk000000000000000"
    by_name = {r["master_metadata_track_name"]: r for r in data}
    assert by_name['Say "Hi"']["skipped"] is True
    assert by_name['Say "Hi"']["master_metadata_album_album_name"] == '"Live", at the Garage'
    assert by_name["鳥の歌"]["skipped"] is None
    assert by_name["鳥の歌"]["master_metadata_album_artist_name"] == "坂本 美雨"
    local = by_name["=SUM(A1:A9) demo"]
    assert local["spotify_track_uri"] is None and local["mtm_album_uri"] is None
    assert local["master_metadata_album_album_name"] is None


async def test_json_parses_back_into_the_stored_plays(world: World, database) -> None:
    """The import feature does not exist yet: parse the export the way it will."""
    data = json.loads(await _collect(exports.stream_json(database, world.me, 4)))
    parsed = [(history.play_key(r["ts"]),
               r["spotify_track_uri"].split(":")[-1] if r["spotify_track_uri"] else None,
               r["master_metadata_track_name"], r["master_metadata_album_artist_name"],
               r["ms_played"], r["mtm_source"], r["mtm_context_uri"],
               None if r["skipped"] is None else int(r["skipped"])) for r in data]
    stored = [tuple(r) for r in world.conn.execute(
        """SELECT p.played_at, t.spotify_id, t.name, a.name, p.ms_played, p.source,
                  p.context_uri, p.skipped
           FROM plays p JOIN tracks t ON t.id = p.track_id JOIN artists a ON a.id = p.artist_id
           WHERE p.user_id = ? ORDER BY p.played_at""", (world.me,))]
    assert parsed == stored


async def test_json_of_a_user_without_plays_is_an_empty_array(world: World, database) -> None:
    newcomer = users.upsert_user(world.conn, "nobody", "Nobody")
    assert json.loads(await _collect(exports.stream_json(database, newcomer))) == []


async def test_exports_read_one_page_at_a_time(world: World, database, monkeypatch) -> None:
    sizes = []
    real = exports.plays_page

    def spy(conn, user_id, after, limit=exports.PAGE_SIZE, **kwargs):
        page = real(conn, user_id, after, limit, **kwargs)
        sizes.append(len(page))
        return page

    monkeypatch.setattr(exports, "plays_page", spy)
    await _collect(exports.stream_json(database, world.me, 4))
    assert sizes == [4, 2]
    sizes.clear()
    await _collect(exports.stream_csv(database, world.me, "UTC", 3))
    assert sizes == [3, 3, 0]


# --- CSV ---------------------------------------------------------------------------------


async def test_csv_round_trips_tricky_names(world: World, database) -> None:
    raw = await _collect(exports.stream_csv(database, world.me, "Europe/Stockholm", 4))
    assert raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == exports.CSV_COLUMNS
    assert len(rows) == 6
    first = rows[0]
    assert first["Ended at (UTC)"] == "2025-03-01T12:00:00Z"
    assert (first["Local date"], first["Local time"]) == ("2025-03-01", "13:00:00")
    assert first["Time zone"] == "Europe/Stockholm"
    assert first["Track"] == "Let's Groove, Again"
    assert first["Artist"] == "Earth, Wind & Friends"
    assert first["All artists"] == 'Earth, Wind & Friends; The "Quoted" Band'
    assert first["Album"] == "Funk, Vol. 2"
    assert first["Minutes played"] == "3.99"
    assert first["Milliseconds played"] == "239500"
    assert first["Skipped"] == "no"
    assert first["Source"] == "Spotify recently played"
    assert first["Spotify track URI"] == "spotify:track:1groove00000000000000"
    assert first["Context URI"] == "spotify:playlist:37i9dQZF1DX0"
    names = [(r["Track"], r["Artist"], r["Album"], r["Skipped"], r["Source"]) for r in rows]
    assert names[1] == ('Say "Hi"', 'The "Quoted" Band', '"Live", at the Garage', "yes",
                        "Spotify extended streaming history")
    assert names[2] == ("鳥の歌", "坂本 美雨", "雨と夢", "", "Demo data")
    assert names[3][:3] == ("Hoppípolla", "Sigur Rós", "Takk…")
    # A cell a spreadsheet would run as a formula is kept as text.
    assert names[4][:3] == ("'=SUM(A1:A9) demo", "'-Local Artist", "")
    assert rows[5]["Local date"] == "2025-03-02"


async def test_csv_of_another_user_has_only_their_plays(world: World, database) -> None:
    text = (await _collect(exports.stream_csv(database, world.other, "UTC"))).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["Track"] for r in rows] == ["Track 900", "Track 901", "鳥の歌"]


def test_file_names_carry_the_date() -> None:
    day = datetime(2026, 11, 22).date()
    assert exports.file_name("csv", day) == "music-time-machine-2026-11-22.csv"
    assert exports.file_name("json", day) == "music-time-machine-2026-11-22.json"
    assert exports.file_name("sqlite", day) == "music-time-machine-2026-11-22.sqlite3"


def test_snapshot_speed_is_reasonable(conn: sqlite3.Connection, user_id: int,
                                      tmp_path: Path) -> None:
    history.add_plays(conn, user_id, [make_play(BASE + i * 200, i % 700) for i in range(20_000)])
    started = time.perf_counter()
    summary = exports.write_snapshot(exports.database_path(conn), user_id, tmp_path / "s.sqlite3")
    assert summary.plays == 20_000
    assert time.perf_counter() - started < 5
