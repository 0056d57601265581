"""Importing privacy exports: preview what an import will do, then do exactly that.

Records are staged in temporary tables of a connection of their own, so a preview changes
nothing and the server's other connections never wait for it. Then, in order:

1. repeats within the files (the same record key twice) are set aside;
2. records already stored (same key) are "already there";
3. records whose twin from another source is stored, or staged from a richer file of this
   upload, are "already there" too (mtm.identity: same track, 15 s window, one to one);
4. what is left is new: tracks are found by Spotify id, or by normalised artist and name
   for account data, and everything is written in one transaction with its rollups and
   the import's record, so a failure at any point leaves the database as it was.
"""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mtm import db as database
from mtm import history, identity, readers
from mtm.db import transaction
from mtm.identity import PLAY_MS
from mtm.spotify_export import (
    ACCOUNT,
    MALFORMED_SHOWN,
    MTM,
    ExportError,
    FileReport,
    Malformed,
    SourceFile,
    find,
    read_for_import,
)

# Richer sources first: account data is then matched against extended history of the same
# upload, and stored as one play with it.
SOURCE_ORDER = ("export", "api", "demo", "account")
FILE_ORDER = {MTM: 0, "extended": 1, ACCOUNT: 2}

ProgressFn = Callable[..., None]


@dataclass
class Report:
    """What an import found and did; the counts add up to the records read."""

    files: list[FileReport] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    read: int = 0
    new: int = 0
    present: int = 0
    repeated: int = 0
    too_short: int = 0
    short_stored: int = 0
    not_music: int = 0
    malformed: int = 0
    problems: list[Malformed] = field(default_factory=list)
    first: int | None = None
    last: int | None = None
    by_name: int = 0
    name_only: int = 0
    new_by_source: dict[str, int] = field(default_factory=dict)

    @property
    def stored(self) -> int:
        """Rows the import writes: new plays and new short streams."""
        return self.new + self.short_stored

    @property
    def adds_up(self) -> bool:
        """Every record read is in exactly one of the report's groups."""
        return self.read == (self.new + self.present + self.too_short + self.not_music
                             + self.malformed)

    def lines(self, timezone: str, *, future: bool) -> list[str]:
        """The report as plain text, for the command line."""
        zone = ZoneInfo(timezone)
        will = "will be" if future else "were"

        def day(ts: int) -> str:
            return datetime.fromtimestamp(ts, zone).strftime("%d %b %Y")

        out = [f"Read {self.read:,} records in {len(self.files)} files"
               + (f", {day(self.first)} to {day(self.last)}:" if self.first else ":")]
        rows = (("New plays", self.new, f"{will} added"),
                ("Already here", self.present, "stored before, or the same record twice"
                 + (f" ({self.repeated:,} repeats)" if self.repeated else "")),
                ("Too short to count", self.too_short,
                 f"under 30 s; {self.short_stored:,} new ones {will} kept for their minutes"),
                ("Podcasts, audiobooks, video", self.not_music, "left out"),
                ("Could not be read", self.malformed, "left out" if self.malformed else ""))
        out += [f"  {name:<28} {count:>10,}  {note}".rstrip() for name, count, note in rows]
        if self.by_name or self.name_only:
            out.append(f"  Account data matched by artist and title: {self.by_name:,}; kept by "
                       f"name only: {self.name_only:,}")
        for problem in self.problems:
            out.append(f"  ! {problem.file}, record {problem.index:,}: {problem.reason}")
        if self.ignored:
            out.append(f"  Not listening history, left alone: {', '.join(self.ignored)}")
        return out

    def to_json(self) -> dict[str, Any]:
        """The report as stored with a job or an import."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Report:
        """A report read back from storage."""
        data = dict(data)
        data["files"] = [FileReport(**f) for f in data.get("files", [])]
        data["problems"] = [Malformed(**m) for m in data.get("problems", [])]
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


_STAGE = (
    # One row per distinct record read (a repeat is left out by its key), then its fate:
    # 'present' (stored already), 'twin' (stored from another source), or NULL: new.
    """CREATE TEMP TABLE staged (
        n INTEGER PRIMARY KEY, source TEXT NOT NULL, played_at INTEGER NOT NULL,
        ms INTEGER NOT NULL, key INTEGER NOT NULL, skipped INTEGER, context_uri TEXT,
        tref INTEGER NOT NULL, fate TEXT)""",
    # The distinct tracks of the upload, and the catalogue rows they are or become.
    """CREATE TEMP TABLE staged_tracks (
        tref INTEGER PRIMARY KEY, spotify_id TEXT, name TEXT NOT NULL, artist TEXT NOT NULL,
        album TEXT, artist_spotify_id TEXT, album_spotify_id TEXT, match_key TEXT NOT NULL,
        track_id INTEGER, artist_id INTEGER, album_id INTEGER)""",
)
_STAGE_ROW = ("INSERT INTO staged (source, played_at, ms, key, skipped, context_uri, tref) "
              "VALUES (?, ?, ?, ?, ?, ?, ?)")


class Stager:
    """Reads an upload into the temporary tables of one connection and decides each fate."""

    def __init__(self, conn: sqlite3.Connection, user_id: int, progress: ProgressFn) -> None:
        self.conn, self.user_id, self.progress = conn, user_id, progress
        self.report = Report()
        self._trefs: dict[str, int] = {}
        self._keys: set[int] = set()
        self._short_read = 0
        for statement in ("DROP TABLE IF EXISTS temp.staged",
                          "DROP TABLE IF EXISTS temp.staged_tracks", *_STAGE):
            conn.execute(statement)

    def read(self, paths: list[Path], display: dict[Path, str] | None = None,
             now: int | None = None) -> None:
        """Stage every music record of the upload; ExportError if any file is unusable."""
        now = int(now or time.time())
        found = find(paths, display)
        self.report.ignored = found.ignored
        files = sorted(found.files, key=lambda f: FILE_ORDER.get(f[1], 3))
        total = sum(f.size for f, _ in files)
        done = malformed = 0
        shown: list[Malformed] = []
        self.progress("Reading the files", 0, total)
        collecting = gc.isenabled()
        gc.disable()
        try:
            for (source, _), (file_report, records, bad, first_bad) in zip(
                    files, _read_files(files, now), strict=True):
                self.report.files.append(file_report)
                malformed += bad
                shown += first_bad[:MALFORMED_SHOWN - len(shown)]
                # One transaction a file, on temporary tables only: no lock on the database.
                self.conn.execute("BEGIN")
                try:
                    self._stage(records)
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
                done += source.size
                self.progress("Reading the files", done, total)
        finally:
            if collecting:
                gc.enable()
        self._keys.clear()
        report = self.report
        report.read = sum(f.records for f in report.files)
        report.not_music = sum(f.not_music for f in report.files)
        report.malformed = malformed
        report.problems = shown
        firsts = [f.first for f in report.files if f.first is not None]
        lasts = [f.last for f in report.files if f.last is not None]
        report.first, report.last = (min(firsts), max(lasts)) if firsts else (None, None)

    def _stage(self, records: list[tuple]) -> None:
        trefs, keys = self._trefs, self._keys
        tracks, rows = [], []
        short = 0
        # Unpacked rather than read by attribute: this loop runs once per record.
        for (source, played_at, ms, key, skipped, context, track_id, track, artist, album,
             artist_id, album_id, name_key) in records:
            if ms < PLAY_MS:
                short += 1
            if key in keys:
                # Read twice (exports overlap themselves): one record.
                continue
            keys.add(key)
            ident = track_id or name_key
            tref = trefs.get(ident)
            if tref is None:
                tref = trefs[ident] = len(trefs) + 1
                tracks.append((tref, track_id, track, artist, album, artist_id, album_id,
                               name_key or identity.match_key(artist, track)))
            rows.append((source, played_at, ms, key, skipped, context, tref))
        self._short_read += short
        self.conn.executemany(
            "INSERT INTO staged_tracks (tref, spotify_id, name, artist, album, "
            "artist_spotify_id, album_spotify_id, match_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            tracks)
        self.conn.executemany(_STAGE_ROW, rows)

    def decide(self) -> Report:
        """Mark each staged record as already stored, a twin, or new; count them."""
        conn, user_id = self.conn, self.user_id
        self.progress("Checking what is already stored", None, None)
        span = conn.execute("SELECT min(played_at), max(played_at) FROM staged").fetchone()
        reach = identity.MINUTE + identity.MATCH_WINDOW
        # Hidden plays are stored too: importing them again must not bring them back.
        self._stored = tuple(table for table in history.STORED if span[0] is not None
                             and conn.execute(
            f"SELECT 1 FROM main.{table} WHERE user_id = ? AND played_at BETWEEN ? AND ? LIMIT 1",
            (user_id, span[0] - reach, span[1] + reach)).fetchone() is not None)
        for table in self._stored:
            conn.execute(f"""UPDATE staged SET fate = 'present' WHERE EXISTS (
                                 SELECT 1 FROM main.{table} p WHERE p.user_id = ?
                                   AND p.played_at = staged.played_at
                                   AND p.record_key = staged.key)""", (user_id,))
        self.progress("Matching plays from other sources", None, None)
        conn.execute("CREATE INDEX temp.staged_time ON staged (played_at)")
        conn.execute("CREATE INDEX temp.staged_tracks_match ON staged_tracks (match_key)")
        spans = {source: (first, last) for source, first, last in conn.execute(
            "SELECT source, min(played_at), max(played_at) FROM staged WHERE fate IS NULL "
            "GROUP BY source")}
        richer: list[str] = []
        for source in SOURCE_ORDER:
            if source in spans:
                self._match(source, spans[source], richer)
                richer.append(source)
        self._resolve_tracks()
        self._count()
        return self.report

    def _match(self, source: str, span: tuple[int, int], richer: list[str]) -> None:
        """Twins of this source's undecided records among stored and richer staged plays.

        What is still undecided once every source is matched is new (fate NULL).
        """
        reach = identity.MINUTE + identity.MATCH_WINDOW
        conn = self.conn
        pairs = []
        for table in self._stored:
            stored = conn.execute(
                f"""SELECT s.n, p.played_at, p.record_key, s.played_at, s.ms, p.source,
                           p.ms_played
                    FROM main.{table} p JOIN main.tracks t ON t.id = p.track_id
                    JOIN staged s INDEXED BY staged_time
                      ON s.played_at BETWEEN p.played_at - ? AND p.played_at + ?
                    JOIN staged_tracks st ON st.tref = s.tref
                    WHERE p.user_id = ? AND p.played_at BETWEEN ? AND ? AND p.source <> ?
                      AND s.source = ? AND s.fate IS NULL AND st.match_key = t.match_key""",
                (reach, reach, self.user_id, span[0] - reach, span[1] + reach, source, source))
            for n, p_at, p_key, s_at, s_ms, p_source, p_ms in stored:
                pairs.append((n, ("stored", p_at, p_key), identity.Moment(source, s_at, s_ms),
                              identity.Moment(p_source, p_at, p_ms)))
        marks = ",".join("?" * len(richer))
        staged = () if not richer else conn.execute(
            # CROSS JOIN keeps this source's records outside: SQLite would otherwise look
            # each of them up by source, once per record of the other side.
            f"""SELECT s.n, o.n, s.played_at, s.ms, o.source, o.played_at, o.ms
                FROM staged s CROSS JOIN staged o INDEXED BY staged_time
                  ON o.played_at BETWEEN s.played_at - ? AND s.played_at + ?
                JOIN staged_tracks st ON st.tref = s.tref
                JOIN staged_tracks ot ON ot.tref = o.tref
                WHERE s.source = ? AND s.fate IS NULL AND o.fate IS NULL
                  AND o.source IN ({marks}) AND ot.match_key = st.match_key""",
            (reach, reach, source, *richer))
        for n, other, s_at, s_ms, o_source, o_at, o_ms in staged:
            pairs.append((n, ("staged", other), identity.Moment(source, s_at, s_ms),
                          identity.Moment(o_source, o_at, o_ms)))
        twins = identity.assign(pairs)
        conn.executemany("UPDATE staged SET fate = 'twin' WHERE n = ?", [(n,) for n in twins])

    def _resolve_tracks(self) -> None:
        """Find each staged track in the catalogue: by Spotify id, else by artist and name."""
        conn = self.conn
        conn.execute("""UPDATE staged_tracks SET track_id = (
                            SELECT id FROM main.tracks t
                            WHERE t.spotify_id = staged_tracks.spotify_id)
                        WHERE spotify_id IS NOT NULL""")
        # Account data names tracks only: the user's most played track of that name, one
        # with a Spotify id first (so it counts with the same track from other sources).
        conn.execute(
            """UPDATE staged_tracks SET track_id = (
                   SELECT t.id FROM main.tracks t
                   LEFT JOIN main.user_tracks ut ON ut.track_id = t.id AND ut.user_id = ?
                   WHERE t.match_key = staged_tracks.match_key
                   ORDER BY t.spotify_id IS NULL, coalesce(ut.plays, 0) DESC, t.id LIMIT 1)
               WHERE spotify_id IS NULL""", (self.user_id,))

    def _count(self) -> None:
        conn, report = self.conn, self.report
        staged_short = 0
        for fate, short, source, n in conn.execute(
                "SELECT fate, ms < ?, source, count(*) FROM staged GROUP BY 1, 2, 3", (PLAY_MS,)):
            if short:
                staged_short += n
                if fate is None:
                    report.short_stored += n
            elif fate is None:
                report.new += n
                report.new_by_source[source] = report.new_by_source.get(source, 0) + n
            else:
                report.present += n
        music = sum(f.music for f in report.files)
        staged = conn.execute("SELECT count(*) FROM staged").fetchone()[0]
        report.repeated = music - staged
        report.too_short = self._short_read
        # Repeats of plays of 30 s or more are "already there"; short repeats stay short.
        report.present += report.repeated - (self._short_read - staged_short)
        # Account records whose track was found by name: in the catalogue, or in this upload
        # with a Spotify id.
        by_name = conn.execute(
            """WITH account AS MATERIALIZED (
                   SELECT tref, count(*) AS n FROM staged WHERE source = 'account' GROUP BY tref)
               SELECT coalesce(sum(CASE WHEN st.track_id IS NOT NULL OR EXISTS (
                          SELECT 1 FROM staged_tracks o WHERE o.match_key = st.match_key
                            AND o.spotify_id IS NOT NULL) THEN a.n END), 0),
                      coalesce(sum(a.n), 0)
               FROM account a JOIN staged_tracks st ON st.tref = a.tref
               WHERE st.spotify_id IS NULL""").fetchone()
        report.by_name, report.name_only = by_name[0], by_name[1] - by_name[0]

    # --- writing ---------------------------------------------------------------------------

    def apply(self, import_id: int) -> int:
        """Store the new plays (the caller holds the transaction); return how many rows."""
        conn = self.conn
        self.progress("Adding new artists, albums and tracks", 0, self.report.stored)
        self._create_catalogue()
        self.progress("Storing the new plays", 0, self.report.stored)
        # Local days and hours per quarter hour the new plays end in (every time-zone offset
        # and daylight-saving change falls on one), so the rest is done in SQL.
        history.fill_local_times(
            conn, self.user_id, "SELECT DISTINCT played_at / 900 FROM staged WHERE fate IS NULL")
        conn.execute(history.INCOMING)
        conn.execute("DELETE FROM incoming_plays")
        stored = conn.execute(
            f"""INSERT INTO incoming_plays ({history.INCOMING_COLUMNS})
               SELECT s.played_at, s.key, st.track_id, t.artist_id, s.ms, s.source,
                      s.context_uri, s.skipped, lt.day, lt.hour, lt.weekday
               FROM staged s JOIN staged_tracks st ON st.tref = s.tref
               JOIN main.tracks t ON t.id = st.track_id
               JOIN local_times lt ON lt.bucket = s.played_at / 900
               WHERE s.fate IS NULL""").rowcount
        if stored != self.report.stored:
            raise RuntimeError(f"staged {self.report.stored} new plays, found {stored}")
        self.progress("Updating your totals", stored, self.report.stored)
        return history.apply_incoming(conn, self.user_id, import_id)

    def _create_catalogue(self) -> None:
        """Add the artists, albums and tracks the new plays need, set-based."""
        # Tracks first known by name (account data) get their ids, new plays or not.
        self._adopt("track_id IS NULL AND spotify_id IS NOT NULL")
        self.conn.execute("ALTER TABLE staged_tracks ADD COLUMN used INTEGER")
        self.conn.execute("UPDATE staged_tracks SET used = 1 WHERE tref IN "
                          "(SELECT tref FROM staged WHERE fate IS NULL)")
        used = "track_id IS NULL AND used"
        self._new_tracks(f"{used} AND spotify_id IS NOT NULL")
        # A track named by account data only is the same track as one of that artist and
        # name with a Spotify id in this upload, else one of its own known by name.
        self.conn.execute(
            f"""UPDATE staged_tracks SET track_id = (
                    SELECT min(t.id) FROM staged_tracks o JOIN main.tracks t
                    ON t.spotify_id = o.spotify_id WHERE o.match_key = staged_tracks.match_key)
                WHERE {used} AND spotify_id IS NULL""")
        self._new_tracks(f"{used} AND spotify_id IS NULL AND tref IN (SELECT min(tref) "
                         "FROM staged_tracks WHERE spotify_id IS NULL GROUP BY match_key)")
        self.conn.execute(
            f"""UPDATE staged_tracks SET track_id = (
                    SELECT min(t.id) FROM main.tracks t WHERE +t.spotify_id IS NULL
                    AND t.match_key = staged_tracks.match_key)
                WHERE {used} AND spotify_id IS NULL""")

    def adoptable(self) -> bool:
        """True when tracks known here by name only are named with ids in this upload."""
        return self.conn.execute(
            """SELECT 1 FROM staged_tracks st JOIN main.tracks t
               ON t.match_key = st.match_key AND +t.spotify_id IS NULL
               WHERE st.spotify_id IS NOT NULL AND st.track_id IS NULL LIMIT 1""").fetchone() \
            is not None

    def _adopt(self, which: str) -> None:
        """Give Spotify ids to tracks and artists known here by name only, when this upload
        names them with ids (account data imported first, extended history later)."""
        conn = self.conn
        taken: set[int] = set()
        for tref, spotify_id, track_id in conn.execute(
                f"""SELECT st.tref, st.spotify_id, min(t.id) FROM staged_tracks st
                    JOIN main.tracks t ON t.match_key = st.match_key AND +t.spotify_id IS NULL
                    WHERE st.tref IN (SELECT tref FROM staged_tracks WHERE {which})
                      AND st.spotify_id IS NOT NULL
                    GROUP BY st.tref ORDER BY st.tref""").fetchall():
            if track_id not in taken:
                taken.add(track_id)
                conn.execute("UPDATE main.tracks SET spotify_id = ? WHERE id = ?",
                             (spotify_id, track_id))
                conn.execute("UPDATE staged_tracks SET track_id = ? WHERE tref = ?",
                             (track_id, tref))
        for spotify_id, name in conn.execute(
                f"""SELECT DISTINCT artist_spotify_id, artist FROM staged_tracks
                    WHERE {which} AND artist_spotify_id IS NOT NULL""").fetchall():
            history.adopt_artist(conn, spotify_id, name)

    def _new_tracks(self, which: str) -> None:
        """Create the staged tracks matching `which`, with their artists and albums."""
        conn = self.conn
        # Artists: by Spotify id when this app's export gives one, else an artist of that
        # exact name (one Spotify knows first), else a new one known by name.
        conn.execute(
            f"""INSERT INTO main.artists (spotify_id, name)
                SELECT artist_spotify_id, min(artist) FROM staged_tracks
                WHERE {which} AND artist_spotify_id IS NOT NULL GROUP BY artist_spotify_id
                ON CONFLICT(spotify_id) DO NOTHING""")
        by_name = """(SELECT id FROM main.artists a WHERE a.name = staged_tracks.artist
                      ORDER BY a.spotify_id IS NULL, a.id LIMIT 1)"""
        conn.execute(
            f"""UPDATE staged_tracks SET artist_id = coalesce(
                    (SELECT id FROM main.artists a WHERE a.spotify_id = artist_spotify_id),
                    {by_name}) WHERE {which}""")
        conn.execute(f"""INSERT INTO main.artists (name) SELECT DISTINCT artist FROM staged_tracks
                         WHERE {which} AND artist_id IS NULL""")
        conn.execute(f"UPDATE staged_tracks SET artist_id = {by_name} "
                     f"WHERE {which} AND artist_id IS NULL")
        # Albums: by Spotify id, else by name and artist.
        conn.execute(
            f"""INSERT INTO main.albums (spotify_id, name, artist_id)
                SELECT album_spotify_id, min(album), min(artist_id) FROM staged_tracks
                WHERE {which} AND album_spotify_id IS NOT NULL AND album IS NOT NULL
                GROUP BY album_spotify_id ON CONFLICT(spotify_id) DO NOTHING""")
        conn.execute(
            f"""INSERT INTO main.albums (name, artist_id)
                SELECT DISTINCT album, artist_id FROM staged_tracks
                WHERE {which} AND album_spotify_id IS NULL AND album IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM main.albums al WHERE +al.spotify_id IS NULL
                                  AND al.name = staged_tracks.album
                                  AND al.artist_id = staged_tracks.artist_id)""")
        conn.execute(
            f"""UPDATE staged_tracks SET album_id = coalesce(
                    (SELECT id FROM main.albums al WHERE al.spotify_id = album_spotify_id),
                    (SELECT min(id) FROM main.albums al WHERE +al.spotify_id IS NULL
                     AND al.name = staged_tracks.album AND al.artist_id = staged_tracks.artist_id))
                WHERE {which} AND album IS NOT NULL""")
        created = conn.execute(
            f"""INSERT INTO main.tracks (spotify_id, name, album_id, artist_id, match_key)
                SELECT spotify_id, name, album_id, artist_id, match_key FROM staged_tracks
                WHERE {which} RETURNING id, artist_id""").fetchall()
        conn.executemany("INSERT OR IGNORE INTO main.track_artists VALUES (?, 0, ?)",
                         [tuple(row) for row in created])
        conn.execute(
            f"""UPDATE staged_tracks SET track_id = (
                    SELECT id FROM main.tracks t WHERE t.spotify_id = staged_tracks.spotify_id)
                WHERE {which} AND spotify_id IS NOT NULL""")
        history.fill_search_keys(conn)

    def close(self) -> None:
        """Drop the temporary tables (the connection may be reused)."""
        for name in ("staged", "staged_tracks", "local_times"):
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{name}")


# --- reading the files ----------------------------------------------------------------------

# Below this much JSON, starting a helper process costs more than it saves.
PARALLEL_BYTES = 20_000_000


def _read_files(files: list[tuple[SourceFile, str]], now: int) -> Iterator[tuple]:
    """Each file's (report, records, malformed count, malformed shown), in order.

    A big upload is read by a helper process (mtm.readers) on another core while this one
    stages what it has read.
    """
    if sum(f.size for f, _ in files) >= PARALLEL_BYTES and len(files) > 1 and (
            os.cpu_count() or 1) > 1:
        yield from readers.read_all(files, now)
        return
    for source, kind in files:
        yield read_for_import(source, kind, now)


# --- preview and import ------------------------------------------------------------------


def _connect(db_path: Path) -> sqlite3.Connection:
    conn = database.connect(db_path)
    # Staged rows spill to a temporary file rather than memory; a bigger cache keeps it quick.
    conn.execute("PRAGMA temp_store = FILE")
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def preview(db_path: Path, user_id: int, paths: list[Path], *,
            display: dict[Path, str] | None = None, progress: ProgressFn | None = None,
            now: int | None = None) -> Report:
    """What importing these files would do, changing nothing."""
    conn = _connect(db_path)
    try:
        stager = Stager(conn, user_id, progress or _quiet)
        stager.read(paths, display, now)
        # Deciding writes only to this connection's temporary tables.
        return stager.decide()
    finally:
        conn.close()


@dataclass(frozen=True)
class Outcome:
    """A finished import: its record (None when nothing was new) and its report."""

    import_id: int | None
    report: Report


def run(db_path: Path, user_id: int, paths: list[Path], *, display: dict[Path, str] | None = None,
        progress: ProgressFn | None = None, job_id: int | None = None,
        before_write: Callable[[Report], int | None] | None = None,
        now: int | None = None) -> Outcome:
    """Import the files: everything new is stored in one transaction, or nothing is.

    The caller holds the user's lease, so no sync writes between deciding and writing.
    `before_write` runs once the report is known and something is new (it takes the
    backup and returns its id).
    """
    progress = progress or _quiet
    conn = _connect(db_path)
    try:
        stager = Stager(conn, user_id, progress)
        stager.read(paths, display, now)
        report = stager.decide()
        backup_id = before_write(report) if before_write and report.stored else None
        with transaction(conn):
            import_id = _record(conn, user_id, report, job_id, backup_id, now)
            if report.stored or stager.adoptable():
                stored = stager.apply(import_id)
                conn.execute("UPDATE imports SET plays_added = ? WHERE id = ?",
                             (stored, import_id))
        stager.close()
        progress("Done", report.stored, report.stored, force=True)
        return Outcome(import_id, report)
    finally:
        conn.close()


def _record(conn: sqlite3.Connection, user_id: int, report: Report, job_id: int | None,
            backup_id: int | None, now: int | None) -> int:
    files = [{"name": f.name, "kind": f.kind, "records": f.records} for f in report.files]
    return conn.execute(
        """INSERT INTO imports (user_id, job_id, created_at, files, report, plays_added,
                                first_played, last_played, backup_id)
           VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id""",
        (user_id, job_id, int(now or time.time()), json.dumps(files),
         json.dumps(report.to_json()), report.first, report.last, backup_id)).fetchone()[0]


def _quiet(*_: object, **__: object) -> None:
    return None


__all__ = ["ExportError", "Outcome", "Report", "preview", "run"]
