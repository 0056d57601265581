"""Backups of one user's data: create, list, restore, delete, prune; and clearing all data.

A backup is a SQLite export (see mtm.exports) kept on the server under
`backups_dir/<user id>/`, indexed by the `backups` table. Destructive actions take an
automatic backup first and pause this user's syncs (through the sync lease) while they run.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mtm import db as database
from mtm import exports, history, identity, jobs, leases, preferences, sync, users
from mtm.db import transaction

KINDS = ("manual", "auto")
KEEP_AUTO = 5
LEASE_SECONDS = 900
REQUIRED_TABLES = frozenset({"users", "preferences", "plays", "artists", "albums", "tracks",
                             "track_artists", "genres", "artist_genres", "top_snapshots",
                             "sync_runs", "playlists"})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SQLITE_HEADER = b"SQLite format 3\x00"
# This user's rows that "clear all data" deletes (plays and rollups go through mtm.history;
# imports after the plays that point at them).
_CLEARED_TABLES = ("top_snapshots", "sync_runs", "playlists")
_CLEARED_AFTER_PLAYS = ("imports",)
# Why the automatic backups before the two actions that delete a whole history were taken.
CLEAR_REASON = "before clearing all data"
DISCONNECT_REASON = "before disconnecting and deleting the history"


class BackupError(Exception):
    """A backup action that could not be done; `message` is safe to show the user."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidBackup(BackupError):
    """The backup file is missing, damaged, or not this user's."""


class SyncInProgress(BackupError):
    """A sync of this user is running, so a destructive action must wait."""


@dataclass(frozen=True)
class Backup:
    """One backup file of a user."""

    id: int
    user_id: int
    kind: str
    reason: str | None
    file_name: str
    size_bytes: int
    plays: int
    created_at: int
    present: bool = True

    @property
    def size_label(self) -> str:
        """The file size for people (kB, MB, GB)."""
        size = float(self.size_bytes)
        for unit in ("bytes", "kB", "MB", "GB"):
            if size < 1000 or unit == "GB":
                return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
            size /= 1000
        return f"{size:,.1f} GB"

    @property
    def kind_label(self) -> str:
        """"Manual", or "Automatic, before …"."""
        if self.kind == "manual":
            return "Manual"
        return f"Automatic, {self.reason}" if self.reason else "Automatic"

    def created_label(self, timezone: str) -> str:
        """When it was made, on the user's clock."""
        return datetime.fromtimestamp(self.created_at, ZoneInfo(timezone)).strftime(
            "%d %b %Y, %H:%M")


@dataclass(frozen=True)
class DataCounts:
    """How much of a user's data there is (what clearing would delete)."""

    plays: int
    tracks: int
    artists: int
    days: int
    snapshots: int
    sync_runs: int
    playlists: int
    first_played: int | None
    last_played: int | None
    short_streams: int = 0
    imports: int = 0
    # Records of playlists the Playlists page no longer lists (deleted from Spotify here,
    # or never made there); `playlists` counts only the listed ones. Clearing removes both.
    unlisted_playlists: int = 0
    # Streams kept out of the figures by hiding rules, and the rules.
    hidden: int = 0
    hide_rules: int = 0

    @property
    def empty(self) -> bool:
        """True when there is nothing to delete."""
        return not (self.plays or self.short_streams or self.snapshots or self.sync_runs
                    or self.playlists or self.unlisted_playlists or self.imports
                    or self.hidden or self.hide_rules)

    def period(self, timezone: str) -> str:
        """The dates of the first and the last play, on the user's calendar."""
        if self.first_played is None or self.last_played is None:
            return ""
        zone = ZoneInfo(timezone)
        first, last = (datetime.fromtimestamp(ts, zone).strftime("%d %b %Y")
                       for ts in (self.first_played, self.last_played))
        return first if first == last else f"{first} to {last}"


@dataclass(frozen=True)
class BackupInfo:
    """What a validated backup file holds."""

    plays: int
    schema_version: int


@dataclass(frozen=True)
class RestoreResult:
    """A finished restore: which backup, how many plays, and the backup taken just before."""

    backup: Backup
    safety: Backup
    plays: int


# --- where files live ------------------------------------------------------------------


def user_dir(root: Path, user_id: int) -> Path:
    """The folder of one user's backups."""
    return Path(root) / str(int(user_id))


def path_of(root: Path, backup: Backup) -> Path:
    """The file of a backup; names come from our own index, checked anyway."""
    if not _SAFE_NAME.match(backup.file_name):
        raise InvalidBackup("This backup's file name is not valid.")
    return user_dir(root, backup.user_id) / backup.file_name


RESTORE_PREFIX = ".restore-"
PARTIAL_SUFFIX = ".partial"
JOURNAL_SUFFIXES = ("-journal", "-wal", "-shm")


def remove_leftovers(root: Path, live_database: Path) -> list[Path]:
    """Delete the half-written backups and stray journals a crash left under `root`.

    Half-written: `*.partial` snapshots and `.restore-*` copies, with their journals. A
    journal beside a finished backup is handed to SQLite, which rolls it back or folds it in
    and removes it. Files a live process is writing (see exports.writing) and the live
    database's own -wal and -shm are never touched. Returns what was removed.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    live = Path(live_database).resolve()
    removed = []
    for folder in (root, *(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())):
        for entry in sorted(folder.iterdir()):
            suffix = next((s for s in JOURNAL_SUFFIXES if entry.name.endswith(s)), "")
            owner = entry.with_name(entry.name[:len(entry.name) - len(suffix)])
            half = owner.name.endswith(PARTIAL_SUFFIX) or owner.name.startswith(RESTORE_PREFIX)
            if (not entry.is_file() or entry.is_symlink() or owner.resolve() == live
                    or not (half or suffix) or exports.being_written(owner)):
                continue
            if not half and owner.is_file():
                _recover(owner)
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            removed.append(entry)
    return removed


def _recover(path: Path) -> None:
    """Let SQLite settle a finished backup's journal (roll back or checkpoint) and remove it."""
    with contextlib.suppress(sqlite3.DatabaseError):
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()


# --- the index -------------------------------------------------------------------------


_COLUMNS = "id, user_id, kind, reason, file_name, size_bytes, plays, created_at"


def list_backups(conn: sqlite3.Connection, root: Path, user_id: int) -> list[Backup]:
    """The user's backups, newest first, each marked if its file has gone missing."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM backups WHERE user_id = ? "
                        "ORDER BY created_at DESC, id DESC", (user_id,)).fetchall()
    found = []
    for row in rows:
        backup = Backup(*row)
        present = bool(_SAFE_NAME.match(backup.file_name)) and path_of(root, backup).is_file()
        found.append(Backup(*row, present=present))
    return found


def get_backup(conn: sqlite3.Connection, user_id: int, backup_id: int) -> Backup | None:
    """One of the user's backups; None for an unknown id or another user's backup."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM backups WHERE id = ? AND user_id = ?",
                       (backup_id, user_id)).fetchone()
    return Backup(*row) if row else None


def create_backup(conn: sqlite3.Connection, root: Path, user_id: int, kind: str = "manual",
                  reason: str | None = None) -> Backup:
    """Write a consistent snapshot of the user's data to a new file and index it."""
    if kind not in KINDS:
        raise ValueError(f"unknown backup kind {kind!r}")
    now = time.time()
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    name = f"backup-{stamp}-{kind}-{secrets.token_hex(3)}.sqlite3"
    summary = exports.write_snapshot(exports.database_path(conn), user_id,
                                     user_dir(root, user_id) / name)
    try:
        with transaction(conn):
            backup_id = conn.execute(
                """INSERT INTO backups (user_id, kind, reason, file_name, size_bytes, plays,
                                        created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (user_id, kind, reason, name, summary.size_bytes, summary.plays, int(now)),
            ).fetchone()[0]
    except BaseException:
        summary.path.unlink(missing_ok=True)
        raise
    return Backup(backup_id, user_id, kind, reason, name, summary.size_bytes, summary.plays,
                  int(now))


def delete_backup(conn: sqlite3.Connection, root: Path, user_id: int, backup_id: int
                  ) -> Backup | None:
    """Delete one of the user's backups (index row and file); None if there is no such one."""
    backup = get_backup(conn, user_id, backup_id)
    if backup is None:
        return None
    with transaction(conn):
        conn.execute("DELETE FROM backups WHERE id = ? AND user_id = ?", (backup_id, user_id))
    if _SAFE_NAME.match(backup.file_name):
        path_of(root, backup).unlink(missing_ok=True)
    return backup


def prune(conn: sqlite3.Connection, root: Path, user_id: int, keep: int = KEEP_AUTO,
          protect: Iterable[int] = ()) -> list[Backup]:
    """Delete automatic backups beyond the newest `keep`; manual ones are never pruned."""
    protected = set(protect)
    autos = conn.execute(
        "SELECT id FROM backups WHERE user_id = ? AND kind = 'auto' "
        "ORDER BY created_at DESC, id DESC", (user_id,)).fetchall()
    removed = []
    for (backup_id,) in autos[keep:]:
        if backup_id not in protected:
            gone = delete_backup(conn, root, user_id, backup_id)
            if gone is not None:
                removed.append(gone)
    return removed


# --- counting and clearing -------------------------------------------------------------


def data_counts(conn: sqlite3.Connection, user_id: int) -> DataCounts:
    """How many plays, tracks, snapshots… the user has."""

    def one(sql: str) -> int:
        return conn.execute(sql, (user_id,)).fetchone()[0]

    first, last, streams, plays = conn.execute(
        "SELECT min(played_at), max(played_at), count(*), coalesce(sum(counted), 0) FROM plays "
        "WHERE user_id = ?", (user_id,)).fetchone()
    return DataCounts(
        plays=plays,
        tracks=one("SELECT count(*) FROM user_tracks WHERE user_id = ?"),
        artists=one("SELECT count(*) FROM user_artists WHERE user_id = ?"),
        days=one("SELECT count(*) FROM listening_days WHERE user_id = ?"),
        snapshots=one("SELECT count(DISTINCT taken_on) FROM top_snapshots WHERE user_id = ?"),
        sync_runs=one("SELECT count(*) FROM sync_runs WHERE user_id = ?"),
        # Listed as mtm.playlists.list_playlists lists them: made on Spotify, not deleted.
        playlists=one("SELECT count(*) FROM playlists WHERE user_id = ? "
                      "AND deleted_at IS NULL AND spotify_id IS NOT NULL"),
        unlisted_playlists=one("SELECT count(*) FROM playlists WHERE user_id = ? "
                               "AND (deleted_at IS NOT NULL OR spotify_id IS NULL)"),
        first_played=first, last_played=last, short_streams=streams - plays,
        imports=one("SELECT count(*) FROM imports WHERE user_id = ?"),
        hidden=one("SELECT count(*) FROM hidden_plays WHERE user_id = ?"),
        hide_rules=one("SELECT count(*) FROM hide_rules WHERE user_id = ?"))


def last_cleared(conn: sqlite3.Connection, user_id: int) -> int | None:
    """When the user last cleared (or deleted on disconnecting) their whole history, if ever.

    Read from the automatic backup each of those takes first; None once that is deleted.
    """
    return conn.execute("SELECT max(created_at) FROM backups WHERE user_id = ? AND kind = 'auto' "
                        "AND reason IN (?, ?)",
                        (user_id, CLEAR_REASON, DISCONNECT_REASON)).fetchone()[0]


def _tables(conn: sqlite3.Connection, schema: str = "main") -> set[str]:
    return {r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table'")}


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _delete_user_data(conn: sqlite3.Connection, user_id: int) -> None:
    tables = _tables(conn)
    for child in exports.PLAYLIST_CHILD_TABLES:
        if child in tables:
            column = "user_id" if "user_id" in _columns(conn, "main", child) else None
            if column:
                conn.execute(f"DELETE FROM main.{child} WHERE user_id = ?", (user_id,))
            else:
                conn.execute(f"DELETE FROM main.{child} WHERE playlist_id IN "
                             "(SELECT id FROM main.playlists WHERE user_id = ?)", (user_id,))
    for table in _CLEARED_TABLES:
        conn.execute(f"DELETE FROM main.{table} WHERE user_id = ?", (user_id,))
    history.delete_history(conn, user_id)
    for table in _CLEARED_AFTER_PLAYS:
        if table in tables:
            conn.execute(f"DELETE FROM main.{table} WHERE user_id = ?", (user_id,))


def clear_data(conn: sqlite3.Connection, user_id: int) -> DataCounts:
    """Delete the user's plays, rollups, snapshots, sync runs and playlist records at once.

    The account, its tokens and preferences stay, so the user remains signed in.
    """
    with transaction(conn):
        counts = data_counts(conn, user_id)
        _delete_user_data(conn, user_id)
    return counts


@contextlib.contextmanager
def syncs_paused(conn: sqlite3.Connection, user_id: int, purpose: str) -> Iterator[None]:
    """Hold the user's sync lease, so no sync writes while a destructive action runs."""
    # A holder of this process's name: a crash mid-way lets go at once, not at the expiry.
    holder = jobs.make_holder(purpose)
    if not leases.acquire(conn, user_id, sync.LEASE, holder, ttl=LEASE_SECONDS,
                          purpose=purpose):
        lease = leases.holding(conn, user_id, sync.LEASE)
        running = lease.running if lease else leases.PURPOSES["sync"] + " is running"
        raise SyncInProgress(f"{running} right now. Nothing was changed; please try again "
                             "once it has finished.")
    try:
        yield
    finally:
        leases.release(conn, user_id, sync.LEASE, holder)


def clear_with_backup(conn: sqlite3.Connection, root: Path, user_id: int
                      ) -> tuple[DataCounts, Backup]:
    """Take an automatic backup, then clear all data; (what was deleted, the backup)."""
    with syncs_paused(conn, user_id, "clear"):
        backup = create_backup(conn, root, user_id, "auto", CLEAR_REASON)
        counts = clear_data(conn, user_id)
        prune(conn, root, user_id, protect={backup.id})
    return counts, backup


def disconnect(conn: sqlite3.Connection, root: Path, user_id: int, *, delete_history: bool
               ) -> Backup | None:
    """Forget the user's Spotify tokens; with `delete_history`, back up and clear first."""
    backup = None
    if delete_history:
        with syncs_paused(conn, user_id, "disconnect"):
            backup = create_backup(conn, root, user_id, "auto", DISCONNECT_REASON)
            clear_data(conn, user_id)
            users.forget_tokens(conn, user_id)
            prune(conn, root, user_id, protect={backup.id})
    else:
        users.forget_tokens(conn, user_id)
    return backup


# --- validating and restoring ----------------------------------------------------------


def inspect(path: Path, spotify_id: str) -> BackupInfo:
    """Check a backup file before restoring it: ours, intact, complete, this user's."""
    if not path.is_file():
        raise InvalidBackup("The backup file is no longer on the server.")
    with path.open("rb") as handle:
        if handle.read(16) != _SQLITE_HEADER:
            raise InvalidBackup("The backup file is not a SQLite database.")
    try:
        conn = sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)
        try:
            return _inspect(conn, spotify_id)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidBackup(f"The backup file could not be read ({exc}).") from exc


def _inspect(conn: sqlite3.Connection, spotify_id: str) -> BackupInfo:
    if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
        raise InvalidBackup("The backup file is damaged.")
    if conn.execute("PRAGMA application_id").fetchone()[0] != exports.APPLICATION_ID:
        raise InvalidBackup("The file is not a Music Time Machine backup.")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    current = database.migrations()[-1][0]
    if version > current:
        raise InvalidBackup("This backup was made by a newer version of the app.")
    missing = REQUIRED_TABLES - _tables(conn)
    if missing:
        raise InvalidBackup("The backup is incomplete (no " + ", ".join(sorted(missing)) + ").")
    owners = conn.execute("SELECT id, spotify_id FROM users").fetchall()
    if len(owners) != 1 or owners[0][1] != spotify_id:
        raise InvalidBackup("This backup belongs to another account.")
    owner = owners[0][0]
    for table in ("plays", "hidden_plays") if "hidden_plays" in _tables(conn) else ("plays",):
        if conn.execute(f"SELECT count(*) FROM {table} WHERE user_id != ?",
                        (owner,)).fetchone()[0]:
            raise InvalidBackup("The backup holds plays of another account.")
    zone = conn.execute("SELECT timezone FROM preferences WHERE user_id = ?",
                        (owner,)).fetchone()
    if zone is not None and preferences.normalize_timezone(zone[0]) != zone[0]:
        raise InvalidBackup("The backup's time zone is not one this app knows.")
    # Streams of 30 s or more, as every page counts plays (older backups lack `counted`).
    plays = conn.execute("SELECT count(*) FROM plays WHERE ms_played >= ?",
                         (identity.PLAY_MS,)).fetchone()[0]
    return BackupInfo(plays, version)


def _map_table(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
    conn.execute(f"CREATE TEMP TABLE {name} (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")


def _map_catalogue(conn: sqlite3.Connection) -> None:
    """Upsert the backup's catalogue by Spotify id; record backup id → live id maps."""
    for name in ("map_artists", "map_genres", "map_albums", "map_tracks"):
        _map_table(conn, name)
    # Live catalogue rows win: they are shared with other users and at least as fresh.
    conn.execute(
        """INSERT INTO main.artists (spotify_id, name, image_url, popularity, details_fetched_at)
           SELECT spotify_id, name, image_url, popularity, details_fetched_at
           FROM backup.artists WHERE spotify_id IS NOT NULL
           ON CONFLICT(spotify_id) DO UPDATE SET
               image_url = coalesce(artists.image_url, excluded.image_url),
               popularity = coalesce(artists.popularity, excluded.popularity),
               details_fetched_at = coalesce(artists.details_fetched_at,
                                             excluded.details_fetched_at)""")
    conn.execute("""INSERT INTO temp.map_artists SELECT b.id, a.id FROM backup.artists b
                    JOIN main.artists a ON a.spotify_id = b.spotify_id""")
    for old, name in conn.execute(
            "SELECT id, name FROM backup.artists WHERE spotify_id IS NULL").fetchall():
        row = conn.execute("SELECT id FROM main.artists WHERE +spotify_id IS NULL AND name = ?",
                           (name,)).fetchone() or conn.execute(
            "INSERT INTO main.artists (name) VALUES (?) RETURNING id", (name,)).fetchone()
        conn.execute("INSERT INTO temp.map_artists VALUES (?, ?)", (old, row[0]))

    conn.execute("""INSERT INTO main.genres (name) SELECT name FROM backup.genres WHERE true
                    ON CONFLICT(name) DO NOTHING""")
    conn.execute("""INSERT INTO temp.map_genres SELECT b.id, g.id FROM backup.genres b
                    JOIN main.genres g ON g.name = b.name""")
    conn.execute("""INSERT OR IGNORE INTO main.artist_genres (artist_id, genre_id)
                    SELECT ma.new, mg.new FROM backup.artist_genres ag
                    JOIN temp.map_artists ma ON ma.old = ag.artist_id
                    JOIN temp.map_genres mg ON mg.old = ag.genre_id""")

    conn.execute(
        """INSERT INTO main.albums (spotify_id, name, artist_id, release_date, image_url)
           SELECT b.spotify_id, b.name, ma.new, b.release_date, b.image_url FROM backup.albums b
           LEFT JOIN temp.map_artists ma ON ma.old = b.artist_id WHERE b.spotify_id IS NOT NULL
           ON CONFLICT(spotify_id) DO NOTHING""")
    conn.execute("""INSERT INTO temp.map_albums SELECT b.id, a.id FROM backup.albums b
                    JOIN main.albums a ON a.spotify_id = b.spotify_id""")
    for old, name, artist in conn.execute(
            """SELECT b.id, b.name, ma.new FROM backup.albums b
               LEFT JOIN temp.map_artists ma ON ma.old = b.artist_id
               WHERE b.spotify_id IS NULL""").fetchall():
        row = conn.execute("SELECT id FROM main.albums WHERE +spotify_id IS NULL AND name = ? "
                           "AND artist_id IS ?", (name, artist)).fetchone() or conn.execute(
            "INSERT INTO main.albums (name, artist_id) VALUES (?, ?) RETURNING id",
            (name, artist)).fetchone()
        conn.execute("INSERT INTO temp.map_albums VALUES (?, ?)", (old, row[0]))

    conn.execute(
        """INSERT INTO main.tracks (spotify_id, name, album_id, artist_id, duration_ms, explicit,
                                   match_key)
           SELECT b.spotify_id, b.name, mal.new, ma.new, b.duration_ms, b.explicit, b.match_key
           FROM backup.tracks b JOIN temp.map_artists ma ON ma.old = b.artist_id
           LEFT JOIN temp.map_albums mal ON mal.old = b.album_id
           WHERE b.spotify_id IS NOT NULL
           ON CONFLICT(spotify_id) DO NOTHING""")
    conn.execute("""INSERT INTO temp.map_tracks SELECT b.id, t.id FROM backup.tracks b
                    JOIN main.tracks t ON t.spotify_id = b.spotify_id""")
    for old, name, album, artist, duration, key in conn.execute(
            """SELECT b.id, b.name, mal.new, ma.new, b.duration_ms, b.match_key
               FROM backup.tracks b
               JOIN temp.map_artists ma ON ma.old = b.artist_id
               LEFT JOIN temp.map_albums mal ON mal.old = b.album_id
               WHERE b.spotify_id IS NULL""").fetchall():
        row = conn.execute("SELECT id FROM main.tracks WHERE +spotify_id IS NULL AND name = ? "
                           "AND artist_id = ?", (name, artist)).fetchone() or conn.execute(
            "INSERT INTO main.tracks (name, album_id, artist_id, duration_ms, match_key) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id", (name, album, artist, duration, key)).fetchone()
        conn.execute("INSERT INTO temp.map_tracks VALUES (?, ?)", (old, row[0]))
    conn.execute("""INSERT OR IGNORE INTO main.track_artists (track_id, position, artist_id)
                    SELECT mt.new, ta.position, ma.new FROM backup.track_artists ta
                    JOIN temp.map_tracks mt ON mt.old = ta.track_id
                    JOIN temp.map_artists ma ON ma.old = ta.artist_id""")


def _restore_playlists(conn: sqlite3.Connection, user_id: int, owner: int) -> None:
    _map_table(conn, "map_playlists")
    live = set(_columns(conn, "main", "playlists"))
    columns = [c for c in _columns(conn, "backup", "playlists")
               if c in live and c not in ("id", "user_id")]
    names = ", ".join(f'"{c}"' for c in columns)
    for row in conn.execute(f"SELECT id, {names} FROM backup.playlists WHERE user_id = ? "
                            "ORDER BY id", (owner,)).fetchall():
        new = conn.execute(
            f"INSERT INTO main.playlists (user_id, {names}) VALUES (?{', ?' * len(columns)}) "
            "RETURNING id", (user_id, *row[1:])).fetchone()[0]
        conn.execute("INSERT INTO temp.map_playlists VALUES (?, ?)", (row[0], new))
    backup_tables = _tables(conn, "backup")
    for child in exports.PLAYLIST_CHILD_TABLES:
        if child not in backup_tables or child not in _tables(conn):
            continue
        live_columns = set(_columns(conn, "main", child))
        select, joins, names = [], [], []
        for column in _columns(conn, "backup", child):
            if column not in live_columns or column == "id":
                continue
            names.append(f'"{column}"')
            if column == "user_id":
                select.append("?")
            elif column == "playlist_id":
                select.append("mp.new")
                joins.append("JOIN temp.map_playlists mp ON mp.old = c.playlist_id")
            elif column == "track_id":
                select.append("mt.new")
                joins.append("LEFT JOIN temp.map_tracks mt ON mt.old = c.track_id")
            else:
                select.append(f'c."{column}"')
        params = (user_id,) if "?" in select else ()
        conn.execute(f"INSERT INTO main.{child} ({', '.join(names)}) SELECT {', '.join(select)} "
                     f"FROM backup.{child} c {' '.join(joins)}", params)


def _restore_imports(conn: sqlite3.Connection, user_id: int, owner: int) -> None:
    """Copy the backup's import records under new ids (their backups and jobs stay behind)."""
    _map_table(conn, "map_imports")
    for row in conn.execute(
            """SELECT id, created_at, files, report, plays_added, first_played, last_played,
                      undone_at, plays_removed FROM backup.imports WHERE user_id = ?
               ORDER BY id""", (owner,)).fetchall():
        new = conn.execute(
            """INSERT INTO main.imports (user_id, created_at, files, report, plays_added,
                                         first_played, last_played, undone_at, plays_removed)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""", (user_id, *row[1:])).fetchone()
        conn.execute("INSERT INTO temp.map_imports VALUES (?, ?)", (row[0], new[0]))


def _restore_hiding(conn: sqlite3.Connection, user_id: int, owner: int) -> None:
    """Copy the backup's hiding rules and the plays they hide (older backups have neither)."""
    if not {"hide_rules", "hidden_plays"} <= _tables(conn, "backup"):
        return
    _map_table(conn, "map_rules")
    maps = {"track": "map_tracks", "album": "map_albums", "artist": "map_artists"}
    for old, kind, target, uri, starts, ends, created in conn.execute(
            """SELECT id, kind, target_id, context_uri, starts_at, ends_at, created_at
               FROM backup.hide_rules WHERE user_id = ? ORDER BY id""", (owner,)).fetchall():
        if kind in maps:
            mapped = conn.execute(f"SELECT new FROM temp.{maps[kind]} WHERE old = ?",
                                  (target,)).fetchone()
            if mapped is None:
                raise InvalidBackup("The backup's hiding rules name music it does not contain.")
            target = mapped[0]
        new = conn.execute(
            """INSERT INTO main.hide_rules (user_id, kind, target_id, context_uri, starts_at,
                                            ends_at, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
            (user_id, kind, target, uri, starts, ends, created)).fetchone()[0]
        conn.execute("INSERT INTO temp.map_rules VALUES (?, ?)", (old, new))
    hidden = conn.execute(
        """INSERT INTO main.hidden_plays (user_id, played_at, record_key, track_id, artist_id,
                                          ms_played, source, context_uri, skipped, import_id,
                                          rule_id)
           SELECT ?, h.played_at, h.record_key, mt.new, ma.new, h.ms_played, h.source,
                  h.context_uri, h.skipped, mi.new, mr.new
           FROM backup.hidden_plays h JOIN temp.map_tracks mt ON mt.old = h.track_id
           JOIN temp.map_artists ma ON ma.old = h.artist_id
           JOIN temp.map_rules mr ON mr.old = h.rule_id
           LEFT JOIN temp.map_imports mi ON mi.old = h.import_id WHERE h.user_id = ?""",
        (user_id, owner)).rowcount
    if hidden != conn.execute("SELECT count(*) FROM backup.hidden_plays").fetchone()[0]:
        raise InvalidBackup("The backup's hidden plays point at music it does not contain.")


def _restore_rows(conn: sqlite3.Connection, user_id: int) -> int:
    """Replace the user's rows with the attached backup's; return the plays restored
    (streams of 30 s or more, as every page counts them)."""
    owner = conn.execute("SELECT id FROM backup.users").fetchone()[0]
    _delete_user_data(conn, user_id)
    _map_catalogue(conn)
    history.fill_search_keys(conn)
    _restore_imports(conn, user_id, owner)
    restored = conn.execute(
        """INSERT INTO main.plays (user_id, played_at, record_key, track_id, artist_id,
                                   ms_played, source, context_uri, skipped, import_id)
           SELECT ?, p.played_at, p.record_key, mt.new, ma.new, p.ms_played, p.source,
                  p.context_uri, p.skipped, mi.new
           FROM backup.plays p JOIN temp.map_tracks mt ON mt.old = p.track_id
           JOIN temp.map_artists ma ON ma.old = p.artist_id
           LEFT JOIN temp.map_imports mi ON mi.old = p.import_id WHERE p.user_id = ?""",
        (user_id, owner)).rowcount
    expected = conn.execute("SELECT count(*) FROM backup.plays").fetchone()[0]
    if restored != expected:
        raise InvalidBackup("The backup's plays point at tracks it does not contain.")
    _restore_hiding(conn, user_id, owner)
    conn.execute(
        """INSERT INTO main.top_snapshots (user_id, taken_on, kind, time_range, rank, track_id,
                                           artist_id)
           SELECT ?, s.taken_on, s.kind, s.time_range, s.rank, mt.new, ma.new
           FROM backup.top_snapshots s LEFT JOIN temp.map_tracks mt ON mt.old = s.track_id
           LEFT JOIN temp.map_artists ma ON ma.old = s.artist_id WHERE s.user_id = ?""",
        (user_id, owner))
    # A run that was in progress when the backup was taken never finished in this history.
    conn.execute(
        """INSERT INTO main.sync_runs (user_id, kind, started_at, finished_at, outcome,
                                       plays_added, error, retry_at, items_skipped)
           SELECT ?, kind, started_at, coalesce(finished_at, started_at),
                  CASE outcome WHEN 'running' THEN 'failed' ELSE outcome END, plays_added,
                  CASE outcome WHEN 'running' THEN ? ELSE error END, retry_at, items_skipped
           FROM backup.sync_runs WHERE user_id = ? ORDER BY started_at, id""",
        (user_id, sync.INTERRUPTED, owner))
    _restore_playlists(conn, user_id, owner)
    live = set(_columns(conn, "main", "preferences"))
    columns = [c for c in _columns(conn, "backup", "preferences") if c in live and c != "user_id"]
    if columns and conn.execute("SELECT 1 FROM backup.preferences WHERE user_id = ?",
                                (owner,)).fetchone():
        names = ", ".join(f'"{c}"' for c in columns)
        conn.execute("INSERT INTO main.preferences (user_id) VALUES (?) ON CONFLICT DO NOTHING",
                     (user_id,))
        conn.execute(f"UPDATE main.preferences SET ({names}) = (SELECT {names} FROM "
                     "backup.preferences WHERE user_id = ?) WHERE user_id = ?", (owner, user_id))
    # Rollups are derived: rebuilt from the restored plays in the restored time zone.
    history.rebuild_rollups(conn, user_id)
    return conn.execute("SELECT coalesce(sum(counted), 0) FROM plays WHERE user_id = ?",
                        (user_id,)).fetchone()[0]


def restore_file(db_path: Path, user_id: int, source: Path) -> int:
    """Replace the user's data with a backup file's, in one transaction; return plays restored."""
    conn = database.connect(db_path)
    try:
        conn.execute("ATTACH DATABASE ? AS backup", (str(source),))
        try:
            with transaction(conn):
                return _restore_rows(conn, user_id)
        finally:
            for name in ("map_artists", "map_genres", "map_albums", "map_tracks",
                         "map_playlists", "map_imports"):
                conn.execute(f"DROP TABLE IF EXISTS temp.{name}")
            conn.execute("DETACH DATABASE backup")
    finally:
        conn.close()


def restore_backup(conn: sqlite3.Connection, root: Path, user_id: int, backup_id: int
                   ) -> RestoreResult | None:
    """Validate a backup, back up the current data, then restore; None for an unknown id."""
    backup = get_backup(conn, user_id, backup_id)
    if backup is None:
        return None
    spotify_id = conn.execute("SELECT spotify_id FROM users WHERE id = ?",
                              (user_id,)).fetchone()[0]
    path = path_of(root, backup)
    info = inspect(path, spotify_id)
    with syncs_paused(conn, user_id, "restore"):
        safety = create_backup(conn, root, user_id, "auto", "before restoring a backup")
        source = path
        with contextlib.ExitStack() as held:
            if info.schema_version < database.migrations()[-1][0]:
                # An older backup is brought up to date on a copy; the original stays as it
                # was. The lock tells a starting process the copy is not a crash's leftover.
                source = path.with_name(f"{RESTORE_PREFIX}{uuid.uuid4().hex[:8]}.sqlite3")
                held.enter_context(exports.writing(source))
                shutil.copyfile(path, source)
                upgrade = sqlite3.connect(source, isolation_level=None)
                try:
                    database.migrate(upgrade)
                finally:
                    upgrade.close()
            try:
                plays = restore_file(exports.database_path(conn), user_id, source)
            finally:
                if source != path:
                    source.unlink(missing_ok=True)
        prune(conn, root, user_id, protect={backup.id, safety.id})
    return RestoreResult(backup, safety, plays)
