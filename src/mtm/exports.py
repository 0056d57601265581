"""Exports of one user's data: a consistent SQLite snapshot, and plays as JSON or CSV.

The SQLite export is the app's own schema holding only this user's rows, copied inside one
read transaction while syncs keep writing; backups use the same format, so a restore reads
what an export writes. JSON and CSV are streamed page by page, so memory stays flat.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mtm import db as database

# PRAGMA application_id of every export and backup ("MTMX"): marks the file as ours.
APPLICATION_ID = 0x4D544D58
PAGE_SIZE = 5000
FORMATS = {
    "sqlite": ("application/vnd.sqlite3", "sqlite3"),
    "json": ("application/json", "json"),
    "csv": ("text/csv; charset=utf-8", "csv"),
}
# This user's rows of these tables are copied; never tokens, sign-in states, leases or the
# backup index (a restore must not resurrect files that no longer exist).
USER_TABLES = ("preferences", "imports", "plays", "user_tracks", "user_artists", "user_albums",
               "listening_days", "listening_hours", "listening_weekhours", "listening_months",
               "artist_months", "track_months", "album_months", "top_snapshots", "sync_runs",
               "playlists", "hide_rules", "hidden_plays")
# Rows hanging off this user's playlists, copied when the table exists.
PLAYLIST_CHILD_TABLES = ("playlist_tracks",)
SECRET_TABLES = ("tokens", "oauth_states")

# The keys of Spotify's extended streaming history, in Spotify's order.
SPOTIFY_KEYS = ("ts", "platform", "ms_played", "conn_country", "ip_addr",
                "master_metadata_track_name", "master_metadata_album_artist_name",
                "master_metadata_album_album_name", "spotify_track_uri", "episode_name",
                "episode_show_name", "spotify_episode_uri", "audiobook_title", "audiobook_uri",
                "audiobook_chapter_uri", "audiobook_chapter_title", "reason_start", "reason_end",
                "shuffle", "skipped", "offline", "offline_timestamp", "incognito_mode")
# What this app knows beyond Spotify's format, under names no Spotify key will take.
# mtm_key is the play's record key (mtm.identity), as a decimal string because JSON readers
# in browsers lose integers beyond 2**53: importing the file again then adds nothing.
# mtm_hidden marks a play a hiding rule keeps out of the figures (the rules themselves travel
# in the SQLite export and backups only).
MTM_KEYS = ("mtm_source", "mtm_key", "mtm_context_uri", "mtm_artist_uri", "mtm_album_uri",
            "mtm_hidden")

CSV_COLUMNS = ("Ended at (UTC)", "Local date", "Local time", "Time zone", "Track", "Artist",
               "All artists", "Album", "Minutes played", "Milliseconds played", "Skipped",
               "Source", "Spotify track URI", "Context URI", "Hidden")
SOURCE_LABELS = {"api": "Spotify recently played", "export": "Spotify extended streaming history",
                 "account": "Spotify account data", "demo": "Demo data"}
# Spreadsheets run a cell starting with these as a formula; a leading ' keeps it text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class SnapshotSummary:
    """What a SQLite export holds."""

    path: Path
    plays: int
    size_bytes: int


@dataclass(frozen=True)
class ExportPlay:
    """One play with the names and ids an export needs."""

    played_at: int
    record_key: int
    ms_played: int
    source: str
    context_uri: str | None
    skipped: int | None
    track: str
    track_id: str | None
    artist: str
    artist_id: str | None
    album: str | None
    album_id: str | None
    artists: str | None
    # Kept out of the figures by a hiding rule (mtm.hiding).
    hidden: bool = False


def file_name(fmt: str, today: date) -> str:
    """The download name of an export, dated."""
    return f"music-time-machine-{today.isoformat()}.{FORMATS[fmt][1]}"


# --- SQLite snapshot -------------------------------------------------------------------


def _tables(conn: sqlite3.Connection, schema: str) -> set[str]:
    return {r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%'")}


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA {schema}.table_info({table})")]


def _copy(conn: sqlite3.Connection, table: str, where: str, params: tuple = ()) -> None:
    """Copy rows of `table` from the live database into the export, by column name."""
    live = set(_columns(conn, "main", table))
    names = ", ".join(f'"{c}"' for c in _columns(conn, "export", table) if c in live)
    conn.execute(f"INSERT INTO export.{table} ({names}) "
                 f"SELECT {names} FROM main.{table} WHERE {where}", params)


def _copy_user(conn: sqlite3.Connection, user_id: int) -> None:
    both = _tables(conn, "main") & _tables(conn, "export")
    _copy(conn, "users", "id = ?", (user_id,))
    for table in USER_TABLES:
        if table in both:
            _copy(conn, table, "user_id = ?", (user_id,))
    for table in PLAYLIST_CHILD_TABLES:
        if table in both:
            columns = _columns(conn, "main", table)
            if "user_id" in columns:
                _copy(conn, table, "user_id = ?", (user_id,))
            elif "playlist_id" in columns:
                _copy(conn, table, "playlist_id IN (SELECT id FROM export.playlists)")
    copied = [t for t in (*USER_TABLES, *PLAYLIST_CHILD_TABLES) if t in both]
    # The catalogue rows this user's rows point at, and nothing else of the catalogue.
    # A hiding rule names its track, album or artist even when it hides no play now.
    named = "SELECT target_id FROM export.hide_rules WHERE kind = '{}'"
    track_sources = " UNION ".join(
        [f"SELECT track_id FROM export.{t}" for t in copied
         if "track_id" in _columns(conn, "export", t)] + [named.format("track")])
    _copy(conn, "tracks", f"id IN ({track_sources})")
    _copy(conn, "track_artists", "track_id IN (SELECT id FROM export.tracks)")
    _copy(conn, "albums",
          f"id IN (SELECT album_id FROM export.tracks UNION {named.format('album')})")
    artist_sources = " UNION ".join(
        [f"SELECT artist_id FROM export.{t}" for t in copied
         if "artist_id" in _columns(conn, "export", t)]
        + ["SELECT artist_id FROM export.tracks", "SELECT artist_id FROM export.track_artists",
           "SELECT artist_id FROM export.albums", named.format("artist")])
    _copy(conn, "artists", f"id IN ({artist_sources})")
    _copy(conn, "artist_genres", "artist_id IN (SELECT id FROM export.artists)")
    _copy(conn, "genres", "id IN (SELECT genre_id FROM export.artist_genres)")


def temporary_path(data_dir: Path, user_id: int) -> Path:
    """A fresh file name for a download being prepared; forgets stale ones left behind."""
    folder = Path(data_dir) / "tmp"
    if folder.is_dir():
        # A download the browser abandoned never ran its clean-up; an hour is plenty.
        cutoff = time.time() - 3600
        for stale in folder.glob("export-*.sqlite3*"):
            with contextlib.suppress(OSError):
                if stale.stat().st_mtime < cutoff:
                    stale.unlink()
    return folder / f"export-{int(user_id)}-{uuid.uuid4().hex}.sqlite3"


def database_path(conn: sqlite3.Connection) -> Path:
    """The file behind a connection's main database."""
    for row in conn.execute("PRAGMA database_list"):
        if row[1] == "main":
            return Path(row[2])
    raise RuntimeError("connection has no main database")


def snapshot(conn: sqlite3.Connection, user_id: int, dest: str | Path) -> SnapshotSummary:
    """Write the user's snapshot of the database behind `conn` (see write_snapshot)."""
    return write_snapshot(database_path(conn), user_id, dest)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Hold a lock on a file while this process writes it; a crash releases it by itself."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def being_written(path: Path) -> bool:
    """True while a live process (this one or another) holds `writing(path)`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def write_snapshot(db_path: str | Path, user_id: int, dest: str | Path) -> SnapshotSummary:
    """Write this user's rows, in the app's schema, to a new SQLite file at `dest`.

    A dedicated connection reads the live database inside one transaction, so the file
    holds exactly what was committed when the export started, whatever syncs write meanwhile.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    with writing(partial):
        return _write_snapshot(db_path, user_id, dest, partial)


def _write_snapshot(db_path: str | Path, user_id: int, dest: Path, partial: Path
                    ) -> SnapshotSummary:
    try:
        out = sqlite3.connect(partial, isolation_level=None)
        try:
            database.migrate(out)
            out.execute(f"PRAGMA application_id = {APPLICATION_ID:d}")
            # Indexes are built once the rows are in: far quicker than keeping them up to
            # date row by row for hundreds of thousands of plays.
            indexes = out.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                  "AND sql IS NOT NULL").fetchall()
            for name, _ in indexes:
                out.execute(f'DROP INDEX "{name}"')
        finally:
            out.close()
        # Not the pool's connection: ATTACH and a long read would get in the way of others.
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=10,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            conn.execute("ATTACH DATABASE ? AS export", (str(partial),))
            conn.execute("BEGIN")
            try:
                _copy_user(conn, user_id)
                plays = conn.execute(
                    "SELECT count(*) FROM export.plays WHERE counted").fetchone()[0]
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE export")
        finally:
            conn.close()
        out = sqlite3.connect(partial, isolation_level=None)
        try:
            for _, sql in indexes:
                out.execute(sql)
        finally:
            out.close()
        os.replace(partial, dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return SnapshotSummary(dest, plays, dest.stat().st_size)


# --- plays, page by page -------------------------------------------------------------


def plays_page(conn: sqlite3.Connection, user_id: int, after: tuple[int, int],
               limit: int = PAGE_SIZE, *, with_artists: bool = False) -> list[ExportPlay]:
    """Up to `limit` plays after the (second, record key) cursor `after`, oldest first.

    Hidden plays are the user's data too: they come in order among the others, marked.
    """
    artists = ("""(SELECT group_concat(name, '; ') FROM (
                       SELECT ar.name FROM track_artists ta JOIN artists ar ON ar.id = ta.artist_id
                       WHERE ta.track_id = p.track_id ORDER BY ta.position))"""
               if with_artists else "NULL")
    found = []
    for table, hidden in (("plays", 0), ("hidden_plays", 1)):
        found += [ExportPlay(*row) for row in conn.execute(
            f"""SELECT p.played_at, p.record_key, p.ms_played, p.source, p.context_uri,
                       p.skipped, t.name, t.spotify_id, a.name, a.spotify_id, al.name,
                       al.spotify_id, {artists}, {hidden}
                FROM {table} p JOIN tracks t ON t.id = p.track_id
                JOIN artists a ON a.id = p.artist_id LEFT JOIN albums al ON al.id = t.album_id
                WHERE p.user_id = ? AND (p.played_at, p.record_key) > (?, ?)
                ORDER BY p.played_at, p.record_key LIMIT ?""",
            (user_id, *after, limit))]
    found.sort(key=lambda play: (play.played_at, play.record_key))
    return found[:limit]


async def iter_pages(db: database.Database, user_id: int, *, with_artists: bool = False,
                     page_size: int = PAGE_SIZE) -> AsyncIterator[list[ExportPlay]]:
    """Every play of the user in pages, each read in the thread pool (keyset pagination)."""
    after = (-1, 0)
    while True:
        page = await db.run(plays_page, user_id, after, page_size, with_artists=with_artists)
        if not page:
            return
        yield page
        if len(page) < page_size:
            return
        after = (page[-1].played_at, page[-1].record_key)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uri(kind: str, spotify_id: str | None) -> str | None:
    return f"spotify:{kind}:{spotify_id}" if spotify_id else None


def spotify_record(play: ExportPlay) -> dict:
    """A play as one record of Spotify's extended streaming history, plus mtm_* fields."""
    record = dict.fromkeys(SPOTIFY_KEYS)
    record.update(
        ts=_iso(play.played_at),
        ms_played=play.ms_played,
        master_metadata_track_name=play.track,
        master_metadata_album_artist_name=play.artist,
        master_metadata_album_album_name=play.album,
        spotify_track_uri=_uri("track", play.track_id),
        skipped=None if play.skipped is None else bool(play.skipped),
    )
    record.update(mtm_source=play.source, mtm_key=str(play.record_key),
                  mtm_context_uri=play.context_uri,
                  mtm_artist_uri=_uri("artist", play.artist_id),
                  mtm_album_uri=_uri("album", play.album_id), mtm_hidden=bool(play.hidden))
    return record


async def stream_json(db: database.Database, user_id: int,
                      page_size: int = PAGE_SIZE) -> AsyncIterator[bytes]:
    """The plays as a JSON array in Spotify's extended streaming history format."""
    yield b"["
    first = True
    async for page in iter_pages(db, user_id, page_size=page_size):
        parts = []
        for play in page:
            parts.append(("\n" if first else ",\n")
                         + json.dumps(spotify_record(play), ensure_ascii=False))
            first = False
        yield "".join(parts).encode("utf-8")
    yield b"\n]\n"


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def csv_rows(plays: Iterable[ExportPlay], timezone: str) -> Iterable[tuple]:
    """Plays as readable spreadsheet rows (see CSV_COLUMNS)."""
    zone = ZoneInfo(timezone)
    for p in plays:
        local = datetime.fromtimestamp(p.played_at, zone)
        yield (_iso(p.played_at), local.strftime("%Y-%m-%d"), local.strftime("%H:%M:%S"),
               timezone, _text(p.track), _text(p.artist), _text(p.artists or p.artist),
               _text(p.album), f"{p.ms_played / 60000:.2f}", p.ms_played,
               "" if p.skipped is None else ("yes" if p.skipped else "no"),
               SOURCE_LABELS.get(p.source, p.source), _uri("track", p.track_id) or "",
               _text(p.context_uri), "yes" if p.hidden else "")


async def stream_csv(db: database.Database, user_id: int, timezone: str,
                     page_size: int = PAGE_SIZE) -> AsyncIterator[bytes]:
    """The plays as CSV, UTF-8 with a byte-order mark so spreadsheets read the names right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    async for page in iter_pages(db, user_id, with_artists=True, page_size=page_size):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(csv_rows(page, timezone))
        yield buffer.getvalue().encode("utf-8")
