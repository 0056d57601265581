"""Backups: create, list, prune, validate, restore (identical data back), clear, disconnect."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from mtm import backups, db, exports, history, leases, sync, users
from tests.conftest import make_play
from tests.test_exports import BASE, World, populate


@pytest.fixture
def world(conn: sqlite3.Connection) -> World:
    return populate(conn)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def snapshot_of(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    """Everything of a user, keyed by Spotify ids and names rather than row ids."""
    queries = {
        "plays": """SELECT p.played_at, t.spotify_id, t.name, a.spotify_id, a.name, al.name,
                           p.ms_played, p.source, p.context_uri, p.skipped
                    FROM plays p JOIN tracks t ON t.id = p.track_id
                    JOIN artists a ON a.id = p.artist_id LEFT JOIN albums al ON al.id = t.album_id
                    WHERE p.user_id = ? ORDER BY p.played_at""",
        "credits": """SELECT t.name, ta.position, a.name FROM plays p
                      JOIN track_artists ta ON ta.track_id = p.track_id
                      JOIN tracks t ON t.id = p.track_id JOIN artists a ON a.id = ta.artist_id
                      WHERE p.user_id = ? GROUP BY 1, 2, 3 ORDER BY 1, 2""",
        "user_tracks": """SELECT t.name, u.plays, u.ms_played, u.first_played, u.last_played
                          FROM user_tracks u JOIN tracks t ON t.id = u.track_id
                          WHERE u.user_id = ? ORDER BY 1""",
        "user_artists": """SELECT a.name, u.plays, u.ms_played, u.first_played, u.last_played
                           FROM user_artists u JOIN artists a ON a.id = u.artist_id
                           WHERE u.user_id = ? ORDER BY 1""",
        "days": "SELECT day, plays, ms_played FROM listening_days WHERE user_id = ? ORDER BY 1",
        "hours": """SELECT day, hour, weekday, plays, ms_played FROM listening_hours
                    WHERE user_id = ? ORDER BY 1, 2""",
        "weekhours": """SELECT weekday, hour, plays, ms_played FROM listening_weekhours
                        WHERE user_id = ? ORDER BY 1, 2""",
        "snapshots": """SELECT s.taken_on, s.kind, s.time_range, s.rank, t.name, a.name
                        FROM top_snapshots s LEFT JOIN tracks t ON t.id = s.track_id
                        LEFT JOIN artists a ON a.id = s.artist_id WHERE s.user_id = ?
                        ORDER BY 1, 2, 3, 4""",
        "runs": """SELECT kind, started_at, finished_at, outcome, plays_added, error, retry_at
                   FROM sync_runs WHERE user_id = ? ORDER BY started_at, id""",
        "playlists": """SELECT spotify_id, name, source, track_count, tracks_added, url,
                               idempotency_key, created_at, updated_at
                        FROM playlists WHERE user_id = ? ORDER BY id""",
        "playlist_tracks": """SELECT p.name, pt.position, t.name FROM playlist_tracks pt
                              JOIN playlists p ON p.id = pt.playlist_id
                              JOIN tracks t ON t.id = pt.track_id WHERE p.user_id = ?
                              ORDER BY 1, 2""",
        "preferences": """SELECT timezone, week_start, chart_metric, playlist_source
                          FROM preferences WHERE user_id = ?""",
    }
    return {name: [tuple(r) for r in conn.execute(sql, (user_id,))]
            for name, sql in queries.items()}


# --- create, list, delete, prune ---------------------------------------------------------


def test_create_list_and_delete(world: World, root: Path) -> None:
    made = backups.create_backup(world.conn, root, world.me)
    # Six streams, one of them 12 s: five plays.
    assert made.kind == "manual" and made.plays == 5
    path = backups.path_of(root, made)
    assert path.parent == root / str(world.me) and path.is_file()
    assert path.stat().st_size == made.size_bytes
    listed = backups.list_backups(world.conn, root, world.me)
    assert [b.id for b in listed] == [made.id] and listed[0].present
    assert backups.list_backups(world.conn, root, world.other) == []
    # Ids are not shared: another user's id is simply not there.
    assert backups.get_backup(world.conn, world.other, made.id) is None
    assert backups.delete_backup(world.conn, root, world.other, made.id) is None
    assert path.is_file()
    assert backups.delete_backup(world.conn, root, world.me, made.id).id == made.id
    assert not path.exists() and backups.list_backups(world.conn, root, world.me) == []


def test_a_missing_file_is_marked(world: World, root: Path) -> None:
    made = backups.create_backup(world.conn, root, world.me)
    backups.path_of(root, made).unlink()
    assert backups.list_backups(world.conn, root, world.me)[0].present is False
    with pytest.raises(backups.InvalidBackup, match="no longer"):
        backups.restore_backup(world.conn, root, world.me, made.id)


def test_labels(world: World, root: Path) -> None:
    made = backups.create_backup(world.conn, root, world.me, "auto", "before clearing all data")
    assert made.kind_label == "Automatic, before clearing all data"
    assert made.size_label.endswith(" kB")
    assert backups.Backup(1, 1, "manual", None, "x", 999, 0, 0).size_label == "999 bytes"
    assert backups.Backup(1, 1, "manual", None, "x", 12_345_678, 0, 0).size_label == "12.3 MB"
    assert backups.Backup(1, 1, "manual", None, "x", 0, 0, 86_400).created_label(
        "Asia/Tokyo") == "02 Jan 1970, 09:00"


def test_only_the_newest_automatic_backups_are_kept(world: World, root: Path) -> None:
    manual = backups.create_backup(world.conn, root, world.me)
    autos = [backups.create_backup(world.conn, root, world.me, "auto", "test")
             for _ in range(7)]
    other = backups.create_backup(world.conn, root, world.other, "auto", "test")
    removed = backups.prune(world.conn, root, world.me, protect={autos[0].id})
    assert {b.id for b in removed} == {autos[1].id}
    left = {b.id for b in backups.list_backups(world.conn, root, world.me)}
    assert left == {manual.id, autos[0].id, *[b.id for b in autos[2:]]}
    backups.prune(world.conn, root, world.me)
    left = {b.id for b in backups.list_backups(world.conn, root, world.me)}
    assert left == {manual.id, *[b.id for b in autos[2:]]}
    assert not backups.path_of(root, autos[0]).exists()
    assert backups.get_backup(world.conn, world.other, other.id) is not None


def test_unsafe_file_names_are_refused(root: Path) -> None:
    with pytest.raises(backups.InvalidBackup):
        backups.path_of(root, backups.Backup(1, 1, "manual", None, "../../mtm.sqlite3", 0, 0, 0))


# --- clear ---------------------------------------------------------------------------------


def test_clear_deletes_the_listening_data_and_keeps_the_account(world: World) -> None:
    before_other = snapshot_of(world.conn, world.other)
    counts = backups.data_counts(world.conn, world.me)
    assert (counts.plays, counts.snapshots, counts.sync_runs, counts.playlists) == (5, 1, 2, 1)
    assert counts.short_streams == 1
    assert counts.tracks == 5 and counts.artists == 5 and counts.days == 2
    assert counts.period("UTC") == "01 Mar 2025 to 02 Mar 2025"
    deleted = backups.clear_data(world.conn, world.me)
    assert deleted == counts
    after = backups.data_counts(world.conn, world.me)
    assert after.empty and after.plays == 0 and after.days == 0 and after.period("UTC") == ""
    data = snapshot_of(world.conn, world.me)
    assert all(not rows for name, rows in data.items() if name != "preferences")
    assert data["preferences"] == [("Europe/Stockholm", 6, "minutes", "on_this_day")]
    assert users.get_user(world.conn, world.me) is not None
    assert users.get_tokens(world.conn, world.me) is not None
    assert snapshot_of(world.conn, world.other) == before_other


def test_clear_waits_for_a_running_sync(world: World, root: Path) -> None:
    assert leases.acquire(world.conn, world.me, sync.LEASE, "scheduler", ttl=60)
    with pytest.raises(backups.SyncInProgress):
        backups.clear_with_backup(world.conn, root, world.me)
    assert backups.data_counts(world.conn, world.me).plays == 5
    assert backups.list_backups(world.conn, root, world.me) == []
    leases.release(world.conn, world.me, sync.LEASE, "scheduler")
    counts, backup = backups.clear_with_backup(world.conn, root, world.me)
    assert counts.plays == 5 and backup.plays == 5 and backup.kind == "auto"
    # The lease is given back for the next sync.
    assert leases.acquire(world.conn, world.me, sync.LEASE, "scheduler", ttl=60)


# --- restore -------------------------------------------------------------------------------


def test_clear_then_restore_gives_back_identical_data(world: World, root: Path) -> None:
    before = snapshot_of(world.conn, world.me)
    before_other = snapshot_of(world.conn, world.other)
    _, backup = backups.clear_with_backup(world.conn, root, world.me)
    assert snapshot_of(world.conn, world.me)["plays"] == []
    version = history.history_version(world.conn, world.me)
    result = backups.restore_backup(world.conn, root, world.me, backup.id)
    assert result.plays == 5 and result.backup.id == backup.id
    assert result.safety.kind == "auto" and result.safety.plays == 0
    assert snapshot_of(world.conn, world.me) == before
    assert snapshot_of(world.conn, world.other) == before_other
    assert history.history_version(world.conn, world.me) > version
    assert world.conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_restore_replaces_newer_data(world: World, root: Path) -> None:
    before = snapshot_of(world.conn, world.me)
    backup = backups.create_backup(world.conn, root, world.me)
    history.add_plays(world.conn, world.me, [make_play(BASE + 500_000, 3)])
    world.conn.execute("UPDATE preferences SET timezone = 'Asia/Tokyo' WHERE user_id = ?",
                       (world.me,))
    history.rebuild_rollups(world.conn, world.me)
    backups.restore_backup(world.conn, root, world.me, backup.id)
    assert snapshot_of(world.conn, world.me) == before
    # The data from just before the restore is in the automatic backup.
    safety = backups.list_backups(world.conn, root, world.me)[0]
    assert safety.kind == "auto" and safety.plays == 6


def test_restore_into_a_database_with_other_row_ids(world: World, root: Path,
                                                    tmp_path: Path) -> None:
    """Catalogue rows are matched by Spotify id, so a backup restores on a fresh install."""
    before = snapshot_of(world.conn, world.me)
    backup = backups.create_backup(world.conn, root, world.me)
    fresh = db.connect(tmp_path / "fresh.sqlite3")
    try:
        db.migrate(fresh)
        someone = users.upsert_user(fresh, "someone", "Someone")
        history.add_plays(fresh, someone, [make_play(BASE + i, i) for i in range(30)])
        me = users.upsert_user(fresh, "listener-me", "Me")
        plays = backups.restore_file(exports.database_path(fresh), me,
                                     backups.path_of(root, backup))
        assert plays == 5
        assert snapshot_of(fresh, me) == before
        assert snapshot_of(fresh, someone)["plays"][0][2] == "Track 0"
    finally:
        fresh.close()


def test_restore_is_all_or_nothing(world: World, root: Path, monkeypatch) -> None:
    backup = backups.create_backup(world.conn, root, world.me)
    history.add_plays(world.conn, world.me, [make_play(BASE + 500_000, 3)])
    before = snapshot_of(world.conn, world.me)

    def broken(conn, user_id):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(history, "rebuild_rollups", broken)
    with pytest.raises(sqlite3.OperationalError):
        backups.restore_backup(world.conn, root, world.me, backup.id)
    assert snapshot_of(world.conn, world.me) == before
    assert leases.acquire(world.conn, world.me, sync.LEASE, "next", ttl=60)


def test_restore_of_another_users_backup_is_refused(world: World, root: Path) -> None:
    theirs = backups.create_backup(world.conn, root, world.other)
    assert backups.restore_backup(world.conn, root, world.me, theirs.id) is None
    # Even their file placed under my id does not restore: it belongs to another account.
    mine = backups.create_backup(world.conn, root, world.me)
    backups.path_of(root, theirs).replace(backups.path_of(root, mine))
    with pytest.raises(backups.InvalidBackup, match="another account"):
        backups.restore_backup(world.conn, root, world.me, mine.id)
    assert backups.data_counts(world.conn, world.me).plays == 5


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(sql)
    finally:
        conn.close()


@pytest.mark.parametrize("change,message", [
    ("PRAGMA application_id = 0", "not a Music Time Machine backup"),
    ("PRAGMA user_version = 999", "newer version"),
    ("DROP TABLE top_snapshots", "incomplete"),
    ("UPDATE users SET spotify_id = 'intruder'", "another account"),
    ("INSERT INTO users (spotify_id, display_name, created_at) VALUES ('x', 'X', 0)",
     "another account"),
    ("UPDATE preferences SET timezone = 'Mars/Base'", "time zone"),
    ("INSERT INTO hidden_plays (user_id, played_at, record_key, track_id, artist_id, ms_played,"
     " source, rule_id) VALUES (999, 1, 1, 1, 1, 1000, 'api', 1)", "another account"),
])
def test_backups_are_validated_before_restoring(world: World, root: Path, change: str,
                                                message: str) -> None:
    backup = backups.create_backup(world.conn, root, world.me)
    _tamper(backups.path_of(root, backup), change)
    with pytest.raises(backups.InvalidBackup, match=message):
        backups.restore_backup(world.conn, root, world.me, backup.id)
    assert backups.data_counts(world.conn, world.me).plays == 5
    # Nothing was backed up for a restore that never started.
    assert len(backups.list_backups(world.conn, root, world.me)) == 1


def test_a_file_that_is_not_a_database_is_refused(world: World, root: Path) -> None:
    backup = backups.create_backup(world.conn, root, world.me)
    backups.path_of(root, backup).write_bytes(b"not a database at all" * 10)
    with pytest.raises(backups.InvalidBackup, match="not a SQLite database"):
        backups.inspect(backups.path_of(root, backup), "listener-me")
    path = backups.path_of(root, backup)
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(backups.InvalidBackup):
        backups.inspect(path, "listener-me")


def test_an_older_backup_is_upgraded_on_a_copy(world: World, root: Path, tmp_path: Path) -> None:
    """A backup made before the latest migrations still restores."""
    old = root / str(world.me) / "backup-old.sqlite3"
    old.parent.mkdir(parents=True)
    conn = sqlite3.connect(old, isolation_level=None)
    for number, _, script in db.migrations():
        if number <= 3:
            conn.executescript(script)
            conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(f"PRAGMA application_id = {exports.APPLICATION_ID}")
    conn.executescript("""
        INSERT INTO users (id, spotify_id, display_name, created_at)
            VALUES (9, 'listener-me', 'Me', 0);
        INSERT INTO preferences (user_id, timezone) VALUES (9, 'Asia/Tokyo');
        INSERT INTO artists (id, spotify_id, name) VALUES (4, 'old-artist', 'Old Artist');
        INSERT INTO tracks (id, spotify_id, name, artist_id) VALUES (5, 'old-track', 'Old Song', 4);
        INSERT INTO track_artists VALUES (5, 0, 4);
        INSERT INTO plays VALUES (9, 1000000000, 5, 4, 100000, 'export', NULL, NULL);
    """)
    conn.close()
    world.conn.execute(
        "INSERT INTO backups (user_id, kind, file_name, size_bytes, plays, created_at) "
        "VALUES (?, 'manual', 'backup-old.sqlite3', 1, 1, 1)", (world.me,))
    backup_id = world.conn.execute("SELECT max(id) FROM backups").fetchone()[0]
    result = backups.restore_backup(world.conn, root, world.me, backup_id)
    assert result.plays == 1
    data = snapshot_of(world.conn, world.me)
    assert [p[2] for p in data["plays"]] == ["Old Song"]
    assert data["preferences"][0][0] == "Asia/Tokyo"
    assert data["days"] == [("2001-09-09", 1, 100000)]
    # The original file is left as it was.
    check = sqlite3.connect(old)
    assert check.execute("PRAGMA user_version").fetchone()[0] == 3
    check.close()
    assert list(old.parent.glob(".restore-*")) == []


# --- disconnect ------------------------------------------------------------------------


def test_disconnect_keeping_the_history(world: World, root: Path) -> None:
    assert backups.disconnect(world.conn, root, world.me, delete_history=False) is None
    assert users.get_tokens(world.conn, world.me) is None
    assert backups.data_counts(world.conn, world.me).plays == 5
    assert users.get_tokens(world.conn, world.other) is not None
    assert world.me not in sync.users_due(world.conn, int(time.time()))


def test_disconnect_deleting_the_history(world: World, root: Path) -> None:
    before = snapshot_of(world.conn, world.me)
    backup = backups.disconnect(world.conn, root, world.me, delete_history=True)
    assert backup is not None and backup.plays == 5
    assert users.get_tokens(world.conn, world.me) is None
    assert backups.data_counts(world.conn, world.me).empty
    # Signing in again and restoring brings everything back.
    backups.restore_backup(world.conn, root, world.me, backup.id)
    assert snapshot_of(world.conn, world.me) == before
