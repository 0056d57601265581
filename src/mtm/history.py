"""Writing listening history: catalogue upserts, de-duplicated plays and their rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mtm.db import transaction
from mtm.users import user_timezone

SOURCES = ("api", "export", "demo")
# Raise when a migration adds or changes a rollup: start-up rebuilds users behind it.
ROLLUPS_VERSION = 1
ROLLUP_TABLES = ("user_tracks", "user_artists", "listening_days", "listening_hours",
                 "listening_weekhours")


@dataclass(frozen=True)
class ArtistIn:
    """An artist as a source describes it; `genres` is None when the source did not say."""

    spotify_id: str | None
    name: str
    genres: tuple[str, ...] | None = None
    image_url: str | None = None
    popularity: int | None = None


@dataclass(frozen=True)
class AlbumIn:
    """An album as a source describes it."""

    spotify_id: str | None
    name: str
    release_date: str | None = None
    image_url: str | None = None


@dataclass(frozen=True)
class TrackIn:
    """A track as a source describes it; the first artist is the main one."""

    spotify_id: str | None
    name: str
    artists: tuple[ArtistIn, ...]
    album: AlbumIn | None = None
    duration_ms: int | None = None
    explicit: bool | None = None


@dataclass(frozen=True)
class PlayIn:
    """One play: when it ended (UTC seconds), what, for how long, and where it came from."""

    played_at: int
    track: TrackIn
    ms_played: int
    source: str
    context_uri: str | None = None
    skipped: bool | None = None


def play_key(when: str | int | float | datetime) -> int:
    """The de-duplication key of a play: the whole UTC second its playback ended.

    The API gives `2024-04-20T18:15:22.481Z`, exports give `2024-04-20T18:15:22Z`;
    both are the same play, so sub-second parts are dropped.
    """
    if isinstance(when, datetime):
        moment = when if when.tzinfo else when.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(when, int | float):
        return int(when)
    text = when.strip().replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


class LocalTime:
    """Maps UTC seconds to the local (day, hour, weekday), cached per quarter hour."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._cache: dict[int, tuple[str, int, int]] = {}

    def __call__(self, ts: int) -> tuple[str, int, int]:
        # Every time-zone offset and DST change in use falls on a quarter hour.
        bucket = ts // 900
        found = self._cache.get(bucket)
        if found is None:
            moment = datetime.fromtimestamp(bucket * 900, self.zone)
            found = (moment.date().isoformat(), moment.hour, moment.weekday())
            self._cache[bucket] = found
        return found


# --- catalogue ---------------------------------------------------------------


def _genre_ids(conn: sqlite3.Connection, names: Iterable[str]) -> list[int]:
    ids = []
    for name in names:
        conn.execute("INSERT INTO genres (name) VALUES (?) ON CONFLICT(name) DO NOTHING", (name,))
        ids.append(conn.execute("SELECT id FROM genres WHERE name = ?", (name,)).fetchone()[0])
    return ids


def upsert_artist(conn: sqlite3.Connection, artist: ArtistIn) -> int:
    """Store an artist (and its genres when known); return its row id."""
    if artist.spotify_id:
        row = conn.execute(
            """INSERT INTO artists (spotify_id, name, image_url, popularity) VALUES (?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   image_url = coalesce(excluded.image_url, artists.image_url),
                   popularity = coalesce(excluded.popularity, artists.popularity)
               RETURNING id""",
            (artist.spotify_id, artist.name, artist.image_url, artist.popularity)).fetchone()
    else:
        row = conn.execute(
            "SELECT id FROM artists WHERE spotify_id IS NULL AND name = ?", (artist.name,)
        ).fetchone() or conn.execute(
            "INSERT INTO artists (name) VALUES (?) RETURNING id", (artist.name,)).fetchone()
    artist_id = row[0]
    if artist.genres is not None:
        set_artist_genres(conn, artist_id, artist.genres)
    return artist_id


def set_artist_genres(conn: sqlite3.Connection, artist_id: int, genres: Iterable[str]) -> None:
    """Replace an artist's genres and mark its details as fetched."""
    conn.execute("DELETE FROM artist_genres WHERE artist_id = ?", (artist_id,))
    conn.executemany("INSERT INTO artist_genres (artist_id, genre_id) VALUES (?, ?)",
                     [(artist_id, g) for g in _genre_ids(conn, genres)])
    conn.execute("UPDATE artists SET details_fetched_at = unixepoch() WHERE id = ?", (artist_id,))


def upsert_album(conn: sqlite3.Connection, album: AlbumIn, artist_id: int) -> int:
    """Store an album; return its row id."""
    if album.spotify_id:
        return conn.execute(
            """INSERT INTO albums (spotify_id, name, artist_id, release_date, image_url)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   release_date = coalesce(excluded.release_date, albums.release_date),
                   image_url = coalesce(excluded.image_url, albums.image_url)
               RETURNING id""",
            (album.spotify_id, album.name, artist_id, album.release_date, album.image_url),
        ).fetchone()[0]
    row = conn.execute(
        "SELECT id FROM albums WHERE spotify_id IS NULL AND name = ? AND artist_id = ?",
        (album.name, artist_id)).fetchone()
    if row:
        return row[0]
    return conn.execute("INSERT INTO albums (name, artist_id) VALUES (?, ?) RETURNING id",
                        (album.name, artist_id)).fetchone()[0]


def upsert_track(conn: sqlite3.Connection, track: TrackIn) -> tuple[int, int]:
    """Store a track with its album and artists; return (track id, main artist id)."""
    artist_ids = [upsert_artist(conn, a) for a in track.artists]
    main = artist_ids[0]
    album_id = upsert_album(conn, track.album, main) if track.album else None
    if track.spotify_id:
        track_id = conn.execute(
            """INSERT INTO tracks (spotify_id, name, album_id, artist_id, duration_ms, explicit)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   album_id = coalesce(excluded.album_id, tracks.album_id),
                   duration_ms = coalesce(excluded.duration_ms, tracks.duration_ms),
                   explicit = coalesce(excluded.explicit, tracks.explicit)
               RETURNING id""",
            (track.spotify_id, track.name, album_id, main, track.duration_ms, track.explicit),
        ).fetchone()[0]
    else:
        row = conn.execute(
            "SELECT id FROM tracks WHERE spotify_id IS NULL AND name = ? AND artist_id = ?",
            (track.name, main)).fetchone()
        track_id = row[0] if row else conn.execute(
            """INSERT INTO tracks (name, album_id, artist_id, duration_ms) VALUES (?, ?, ?, ?)
               RETURNING id""", (track.name, album_id, main, track.duration_ms)).fetchone()[0]
    conn.executemany(
        """INSERT INTO track_artists (track_id, position, artist_id) VALUES (?, ?, ?)
           ON CONFLICT(track_id, position) DO UPDATE SET artist_id = excluded.artist_id""",
        [(track_id, pos, aid) for pos, aid in enumerate(artist_ids)])
    return track_id, main


# --- plays -------------------------------------------------------------------


_INCOMING = """CREATE TEMP TABLE IF NOT EXISTS incoming_plays (
    played_at INTEGER PRIMARY KEY, track_id INTEGER NOT NULL, artist_id INTEGER NOT NULL,
    ms_played INTEGER NOT NULL, source TEXT NOT NULL, context_uri TEXT, skipped INTEGER,
    day TEXT NOT NULL, hour INTEGER NOT NULL, weekday INTEGER NOT NULL)"""


def add_plays(conn: sqlite3.Connection, user_id: int, plays: Iterable[PlayIn]) -> int:
    """Store plays not seen before and update the rollups; return how many were new.

    Runs in one transaction: a failure stores nothing, so a retried sync completes it.
    """
    with transaction(conn):
        # With no plays yet, rollups kept on write are complete: nothing to rebuild later.
        conn.execute("UPDATE users SET rollups_version = ? WHERE id = ? AND NOT EXISTS "
                     "(SELECT 1 FROM plays WHERE user_id = ?)", (ROLLUPS_VERSION, user_id, user_id))
        local = LocalTime(user_timezone(conn, user_id))
        track_rows: dict[TrackIn, tuple[int, int]] = {}
        conn.execute(_INCOMING)
        conn.execute("DELETE FROM incoming_plays")
        rows = []
        for play in plays:
            if play.source not in SOURCES:
                raise ValueError(f"unknown play source {play.source!r}")
            ids = track_rows.get(play.track)
            if ids is None:
                ids = track_rows[play.track] = upsert_track(conn, play.track)
            rows.append((play.played_at, ids[0], ids[1], max(0, int(play.ms_played)),
                         play.source, play.context_uri,
                         None if play.skipped is None else int(play.skipped),
                         *local(play.played_at)))
        # The first copy of a play within one batch wins, like a stored one does.
        conn.executemany(
            "INSERT OR IGNORE INTO incoming_plays VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("""DELETE FROM incoming_plays WHERE EXISTS (SELECT 1 FROM plays
                        WHERE user_id = ? AND plays.played_at = incoming_plays.played_at)""",
                     (user_id,))
        added = conn.execute("SELECT count(*) FROM incoming_plays").fetchone()[0]
        if added:
            _apply_incoming(conn, user_id)
        conn.execute("DELETE FROM incoming_plays")
    return added


def _apply_incoming(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute(
        """INSERT INTO plays (user_id, played_at, track_id, artist_id, ms_played, source,
                              context_uri, skipped)
           SELECT ?, played_at, track_id, artist_id, ms_played, source, context_uri, skipped
           FROM incoming_plays ORDER BY played_at""", (user_id,))
    for table, column in (("user_tracks", "track_id"), ("user_artists", "artist_id")):
        conn.execute(
            f"""INSERT INTO {table} (user_id, {column}, plays, ms_played, first_played,
                                     last_played)
                SELECT ?, {column}, count(*), sum(ms_played), min(played_at), max(played_at)
                FROM incoming_plays WHERE true GROUP BY {column}
                ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                    ms_played = ms_played + excluded.ms_played,
                    first_played = min(first_played, excluded.first_played),
                    last_played = max(last_played, excluded.last_played)""", (user_id,))
    conn.execute(
        """INSERT INTO listening_days (user_id, day, plays, ms_played)
           SELECT ?, day, count(*), sum(ms_played) FROM incoming_plays WHERE true GROUP BY day
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""", (user_id,))
    conn.execute(
        """INSERT INTO listening_hours (user_id, day, hour, weekday, plays, ms_played)
           SELECT ?, day, hour, weekday, count(*), sum(ms_played) FROM incoming_plays WHERE true
           GROUP BY day, hour
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""", (user_id,))
    conn.execute(
        """INSERT INTO listening_weekhours (user_id, weekday, hour, plays, ms_played)
           SELECT ?, weekday, hour, count(*), sum(ms_played) FROM incoming_plays WHERE true
           GROUP BY weekday, hour
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""", (user_id,))
    bump_version(conn, user_id)


def bump_version(conn: sqlite3.Connection, user_id: int) -> None:
    """Mark the user's history as changed, so cached figures are recomputed."""
    conn.execute("UPDATE users SET history_version = history_version + 1 WHERE id = ?",
                 (user_id,))


def history_version(conn: sqlite3.Connection, user_id: int) -> int:
    """The counter bumped by every write to the user's plays."""
    row = conn.execute("SELECT history_version FROM users WHERE id = ?", (user_id,)).fetchone()
    return row[0] if row else 0


def rebuild_rollups(conn: sqlite3.Connection, user_id: int) -> None:
    """Recompute a user's rollups from their plays (after a time-zone change or a restore)."""
    with transaction(conn):
        for table in ROLLUP_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        for table, column in (("user_tracks", "track_id"), ("user_artists", "artist_id")):
            conn.execute(
                f"""INSERT INTO {table} (user_id, {column}, plays, ms_played, first_played,
                                         last_played)
                    SELECT user_id, {column}, count(*), sum(ms_played), min(played_at),
                           max(played_at)
                    FROM plays WHERE user_id = ? GROUP BY {column}""", (user_id,))
        local = LocalTime(user_timezone(conn, user_id))
        hours: dict[tuple[str, int, int], list[int]] = {}
        for played_at, ms in conn.execute(
                "SELECT played_at, ms_played FROM plays WHERE user_id = ?", (user_id,)):
            entry = hours.setdefault(local(played_at), [0, 0])
            entry[0] += 1
            entry[1] += ms
        conn.executemany(
            "INSERT INTO listening_hours (user_id, day, hour, weekday, plays, ms_played) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(user_id, *key, n, ms) for key, (n, ms) in hours.items()])
        conn.execute(
            """INSERT INTO listening_days (user_id, day, plays, ms_played)
               SELECT user_id, day, sum(plays), sum(ms_played) FROM listening_hours
               WHERE user_id = ? GROUP BY day""", (user_id,))
        conn.execute(
            """INSERT INTO listening_weekhours (user_id, weekday, hour, plays, ms_played)
               SELECT user_id, weekday, hour, sum(plays), sum(ms_played) FROM listening_hours
               WHERE user_id = ? GROUP BY weekday, hour""", (user_id,))
        conn.execute("UPDATE users SET rollups_version = ? WHERE id = ?",
                     (ROLLUPS_VERSION, user_id))
        bump_version(conn, user_id)


def refresh_stale_rollups(conn: sqlite3.Connection) -> list[int]:
    """Rebuild the rollups of users whose rollups predate the current generation."""
    stale = [r[0] for r in conn.execute(
        "SELECT id FROM users WHERE rollups_version < ?", (ROLLUPS_VERSION,))]
    for user_id in stale:
        rebuild_rollups(conn, user_id)
    return stale


def delete_history(conn: sqlite3.Connection, user_id: int) -> int:
    """Delete a user's plays and rollups; return how many plays were deleted."""
    with transaction(conn):
        for table in ROLLUP_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        deleted = conn.execute("DELETE FROM plays WHERE user_id = ?", (user_id,)).rowcount
        conn.execute("UPDATE users SET rollups_version = ? WHERE id = ?",
                     (ROLLUPS_VERSION, user_id))
        bump_version(conn, user_id)
        return deleted
