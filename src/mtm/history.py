"""Writing listening history: catalogue upserts, de-duplicated plays and their rollups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mtm import identity, preferences
from mtm.db import transaction
from mtm.identity import PLAY_MS

SOURCES = ("api", "export", "account", "demo")
# Where a user's plays are stored: counted, or hidden by one of their rules (mtm.hiding).
# A play in either is known, so syncs and imports never store it twice.
STORED = ("plays", "hidden_plays")
# Raise when a migration adds or changes a rollup: start-up rebuilds users behind it.
# 2: plays count streams of 30 s or more only, and listening_months joins the rollups.
# 3: artist_months and track_months (artist, album and track pages).  4: album_months.
ROLLUPS_VERSION = 4
ROLLUP_TABLES = ("user_tracks", "user_artists", "user_albums", "listening_days",
                 "listening_hours", "listening_weekhours", "listening_months", "artist_months",
                 "track_months", "album_months")


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
    """One play: when it ended (UTC seconds), what, for how long, and where it came from.

    `key` identifies the record it came from (mtm.identity); without one, the play is
    identified by its source, second and track.
    """

    played_at: int
    track: TrackIn
    ms_played: int
    source: str
    context_uri: str | None = None
    skipped: bool | None = None
    key: int | None = None

    @property
    def record_key(self) -> int:
        """The key stored with the play."""
        if self.key is not None:
            return self.key
        main = self.track.artists[0].name if self.track.artists else None
        return identity.default_key(self.source, self.played_at, self.track.spotify_id, main,
                                    self.track.name)


def play_key(when: str | int | float | datetime) -> int:
    """The whole UTC second a play ended, as it is stored.

    The API gives `2024-04-20T18:15:22.481Z`, exports give `2024-04-20T18:15:22Z`;
    sub-second parts are dropped (0 to 6 fractional digits are accepted).
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


def fill_local_times(conn: sqlite3.Connection, user_id: int, buckets: str,
                     params: tuple = ()) -> None:
    """temp.local_times: the user's local (day, hour, weekday) of each quarter hour (UTC
    seconds // 900) that the query `buckets` gives, so the rest is done in SQL."""
    local = LocalTime(preferences.load(conn, user_id).timezone)
    conn.execute("DROP TABLE IF EXISTS temp.local_times")
    conn.execute("CREATE TEMP TABLE local_times (bucket INTEGER PRIMARY KEY, day TEXT, "
                 "hour INTEGER, weekday INTEGER)")
    conn.executemany("INSERT INTO local_times VALUES (?, ?, ?, ?)", [
        (bucket, *local(bucket * 900)) for (bucket,) in conn.execute(buckets, params)])


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
        adopt_artist(conn, artist.spotify_id, artist.name)
        known = conn.execute("SELECT name FROM artists WHERE spotify_id = ?",
                             (artist.spotify_id,)).fetchone()
        row = conn.execute(
            """INSERT INTO artists (spotify_id, name, image_url, popularity, search_key)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   image_url = coalesce(excluded.image_url, artists.image_url),
                   popularity = coalesce(excluded.popularity, artists.popularity),
                   search_key = excluded.search_key
               RETURNING id""",
            (artist.spotify_id, artist.name, artist.image_url, artist.popularity,
             identity.search_key(artist.name))).fetchone()
        if known is not None and known[0] != artist.name:
            # Renamed by Spotify: every page naming it, for everyone who played it, changes.
            touch_artist_listeners(conn, row[0])
    else:
        row = conn.execute(
            "SELECT id FROM artists WHERE +spotify_id IS NULL AND name = ?", (artist.name,)
        ).fetchone() or conn.execute(
            "INSERT INTO artists (name, search_key) VALUES (?, ?) RETURNING id",
            (artist.name, identity.search_key(artist.name))).fetchone()
    artist_id = row[0]
    if artist.genres is not None:
        set_artist_genres(conn, artist_id, artist.genres)
    return artist_id


def adopt_artist(conn: sqlite3.Connection, spotify_id: str, name: str) -> None:
    """Give a Spotify id to the artist known by this name only, when the id is new here.

    Exports name artists without ids; when Spotify later names the same artist with its id,
    both are one artist, so their plays count together.
    """
    if conn.execute("SELECT 1 FROM artists WHERE spotify_id = ?", (spotify_id,)).fetchone():
        return
    conn.execute("""UPDATE artists SET spotify_id = ? WHERE id = (
                        SELECT min(id) FROM artists WHERE +spotify_id IS NULL AND name = ?)""",
                 (spotify_id, name))


def adopt_track(conn: sqlite3.Connection, spotify_id: str, match_key: str) -> None:
    """Give a Spotify id to the track known by artist and name only (account data)."""
    if conn.execute("SELECT 1 FROM tracks WHERE spotify_id = ?", (spotify_id,)).fetchone():
        return
    conn.execute("""UPDATE tracks SET spotify_id = ? WHERE id = (
                        SELECT min(id) FROM tracks WHERE +spotify_id IS NULL AND match_key = ?)""",
                 (spotify_id, match_key))


def touch_track_listeners(conn: sqlite3.Connection, track_id: int) -> None:
    """Bump the history version of every user who played a track whose name changed."""
    conn.execute("UPDATE users SET history_version = history_version + 1 WHERE id IN "
                 "(SELECT user_id FROM user_tracks WHERE track_id = ?)", (track_id,))


def touch_artist_listeners(conn: sqlite3.Connection, artist_id: int) -> None:
    """Bump the history version of every user who played an artist whose details changed."""
    conn.execute("UPDATE users SET history_version = history_version + 1 WHERE id IN "
                 "(SELECT user_id FROM user_artists WHERE artist_id = ?)", (artist_id,))


def set_artist_genres(conn: sqlite3.Connection, artist_id: int, genres: Iterable[str]) -> None:
    """Replace an artist's genres and mark its details as fetched."""
    conn.execute("DELETE FROM artist_genres WHERE artist_id = ?", (artist_id,))
    conn.executemany("INSERT INTO artist_genres (artist_id, genre_id) VALUES (?, ?)",
                     [(artist_id, g) for g in _genre_ids(conn, genres)])
    conn.execute("UPDATE artists SET details_fetched_at = unixepoch() WHERE id = ?", (artist_id,))
    # Cached analytics show genres: everyone who played the artist sees the change at once.
    touch_artist_listeners(conn, artist_id)


def upsert_album(conn: sqlite3.Connection, album: AlbumIn, artist_id: int) -> int:
    """Store an album; return its row id."""
    if album.spotify_id:
        return conn.execute(
            """INSERT INTO albums (spotify_id, name, artist_id, release_date, image_url,
                                   search_key)
               VALUES (?, ?, ?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   release_date = coalesce(excluded.release_date, albums.release_date),
                   image_url = coalesce(excluded.image_url, albums.image_url),
                   search_key = excluded.search_key
               RETURNING id""",
            (album.spotify_id, album.name, artist_id, album.release_date, album.image_url,
             identity.search_key(album.name)),
        ).fetchone()[0]
    row = conn.execute(
        "SELECT id FROM albums WHERE +spotify_id IS NULL AND name = ? AND artist_id = ?",
        (album.name, artist_id)).fetchone()
    if row:
        return row[0]
    return conn.execute(
        "INSERT INTO albums (name, artist_id, search_key) VALUES (?, ?, ?) RETURNING id",
        (album.name, artist_id, identity.search_key(album.name))).fetchone()[0]


def fill_search_keys(conn: sqlite3.Connection) -> int:
    """Give a search key to every artist, album and track written without one; how many."""
    filled = 0
    # Bulk writes in SQL (imports, restores) cannot fold accents; their rows are keyed here.
    for table in ("artists", "albums", "tracks"):
        rows = conn.execute(f"SELECT id, name FROM {table} WHERE search_key IS NULL").fetchall()
        conn.executemany(f"UPDATE {table} SET search_key = ? WHERE id = ?",
                         [(identity.search_key(name), row_id) for row_id, name in rows])
        filled += len(rows)
    return filled


def upsert_track(conn: sqlite3.Connection, track: TrackIn) -> tuple[int, int]:
    """Store a track with its album and artists; return (track id, main artist id)."""
    artist_ids = [upsert_artist(conn, a) for a in track.artists]
    main = artist_ids[0]
    album_id = upsert_album(conn, track.album, main) if track.album else None
    key = identity.match_key(track.artists[0].name, track.name)
    if track.spotify_id:
        adopt_track(conn, track.spotify_id, key)
        known = conn.execute("SELECT name FROM tracks WHERE spotify_id = ?",
                             (track.spotify_id,)).fetchone()
        track_id = conn.execute(
            """INSERT INTO tracks (spotify_id, name, album_id, artist_id, duration_ms, explicit,
                                   match_key, search_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(spotify_id) DO UPDATE SET name = excluded.name,
                   album_id = coalesce(excluded.album_id, tracks.album_id),
                   duration_ms = coalesce(excluded.duration_ms, tracks.duration_ms),
                   explicit = coalesce(excluded.explicit, tracks.explicit),
                   match_key = excluded.match_key, search_key = excluded.search_key
               RETURNING id""",
            (track.spotify_id, track.name, album_id, main, track.duration_ms, track.explicit,
             key, identity.search_key(track.name)),
        ).fetchone()[0]
        if known is not None and known[0] != track.name:
            # Tracks are shared: a new name from anyone's sync or snapshot shows for all.
            touch_track_listeners(conn, track_id)
    else:
        row = conn.execute(
            "SELECT id FROM tracks WHERE +spotify_id IS NULL AND name = ? AND artist_id = ?",
            (track.name, main)).fetchone()
        track_id = row[0] if row else conn.execute(
            """INSERT INTO tracks (name, album_id, artist_id, duration_ms, match_key, search_key)
               VALUES (?, ?, ?, ?, ?, ?) RETURNING id""",
            (track.name, album_id, main, track.duration_ms, key,
             identity.search_key(track.name))).fetchone()[0]
    conn.executemany(
        """INSERT INTO track_artists (track_id, position, artist_id) VALUES (?, ?, ?)
           ON CONFLICT(track_id, position) DO UPDATE SET artist_id = excluded.artist_id""",
        [(track_id, pos, aid) for pos, aid in enumerate(artist_ids)])
    return track_id, main


# --- plays -------------------------------------------------------------------


# Plays about to be stored: filled by add_plays or the importer, applied by apply_incoming.
INCOMING = """CREATE TEMP TABLE IF NOT EXISTS incoming_plays (
    played_at INTEGER NOT NULL, record_key INTEGER NOT NULL, track_id INTEGER NOT NULL,
    artist_id INTEGER NOT NULL, ms_played INTEGER NOT NULL, source TEXT NOT NULL,
    context_uri TEXT, skipped INTEGER, day TEXT NOT NULL, hour INTEGER NOT NULL,
    weekday INTEGER NOT NULL, import_id INTEGER, PRIMARY KEY (played_at, record_key)
    ) WITHOUT ROWID"""
INCOMING_COLUMNS = ("played_at, record_key, track_id, artist_id, ms_played, source, "
                    "context_uri, skipped, day, hour, weekday")


def add_plays(conn: sqlite3.Connection, user_id: int, plays: Iterable[PlayIn]) -> int:
    """Store plays not seen before and update the rollups; return how many were new.

    A play is new unless its record is stored already (same key), or a record of the same
    play from another source is (mtm.identity.compatible). Runs in one transaction: a
    failure stores nothing, so a retried sync completes it.
    """
    with transaction(conn):
        local = LocalTime(preferences.load(conn, user_id).timezone)
        track_rows: dict[TrackIn, tuple[int, int]] = {}
        conn.execute(INCOMING)
        conn.execute("DELETE FROM incoming_plays")
        rows = []
        for play in plays:
            if play.source not in SOURCES:
                raise ValueError(f"unknown play source {play.source!r}")
            ids = track_rows.get(play.track)
            if ids is None:
                ids = track_rows[play.track] = upsert_track(conn, play.track)
            rows.append((play.played_at, play.record_key, ids[0], ids[1],
                         max(0, int(play.ms_played)), play.source, play.context_uri,
                         None if play.skipped is None else int(play.skipped),
                         *local(play.played_at)))
        # The first copy of a record within one batch wins, like a stored one does.
        conn.executemany(
            f"INSERT OR IGNORE INTO incoming_plays ({INCOMING_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        for table in STORED:
            conn.execute(f"""DELETE FROM incoming_plays WHERE EXISTS (SELECT 1 FROM {table} p
                             WHERE p.user_id = ? AND p.played_at = incoming_plays.played_at
                               AND p.record_key = incoming_plays.record_key)""", (user_id,))
            _drop_twins(conn, user_id, table)
        added = apply_incoming(conn, user_id)
    return added


_TWINS = """SELECT i.played_at, i.record_key, i.source, i.ms_played,
                   p.played_at, p.record_key, p.source, p.ms_played
            FROM incoming_plays i JOIN tracks ti ON ti.id = i.track_id
            JOIN {table} p ON p.user_id = ? AND p.played_at BETWEEN i.played_at - ?
                                                              AND i.played_at + ?
            JOIN tracks tp ON tp.id = p.track_id
            WHERE p.source <> i.source AND (tp.id = ti.id OR tp.match_key = ti.match_key)"""


def _drop_twins(conn: sqlite3.Connection, user_id: int, table: str) -> None:
    """Leave out incoming plays whose twin from another source is stored in `table`."""
    span = conn.execute("SELECT min(played_at), max(played_at) FROM incoming_plays").fetchone()
    reach = identity.MINUTE + identity.MATCH_WINDOW
    if span[0] is None or conn.execute(
            f"SELECT 1 FROM {table} WHERE user_id = ? AND played_at BETWEEN ? AND ? LIMIT 1",
            (user_id, span[0] - reach, span[1] + reach)).fetchone() is None:
        return
    pairs = [((r[0], r[1]), (r[4], r[5]), identity.Moment(r[2], r[0], r[3]),
              identity.Moment(r[6], r[4], r[7]))
             for r in conn.execute(_TWINS.format(table=table), (user_id, reach, reach))]
    twins = identity.assign(pairs)
    conn.executemany("DELETE FROM incoming_plays WHERE played_at = ? AND record_key = ?",
                     list(twins))


def apply_incoming(conn: sqlite3.Connection, user_id: int, import_id: int | None = None) -> int:
    """Store the plays in `incoming_plays` with their rollups; return how many there were.

    The caller holds the transaction and has left out plays that are stored already. Plays a
    hiding rule matches are stored hidden (mtm.hiding), outside every figure.
    """
    added = conn.execute("SELECT count(*) FROM incoming_plays").fetchone()[0]
    if not added:
        return 0
    # With no plays yet, rollups kept on write are complete: nothing to rebuild later.
    conn.execute("UPDATE users SET rollups_version = ? WHERE id = ? AND NOT EXISTS "
                 "(SELECT 1 FROM plays WHERE user_id = ?)", (ROLLUPS_VERSION, user_id, user_id))
    _hide_incoming(conn, user_id, import_id)
    conn.execute(
        """INSERT INTO plays (user_id, played_at, record_key, track_id, artist_id, ms_played,
                              source, context_uri, skipped, import_id)
           SELECT ?, played_at, record_key, track_id, artist_id, ms_played, source,
                  context_uri, skipped, coalesce(?, import_id)
           FROM incoming_plays ORDER BY played_at, record_key""", (user_id, import_id))
    roll_incoming(conn, user_id, 1)
    bump_version(conn, user_id)
    conn.execute("DELETE FROM incoming_plays")
    return added


# Which rule hides play p (whose album is the expression `album`): the oldest of the user's
# rules matching it (`others` may leave some out), or NULL. Per kind, a rule matches the
# play's track, main artist, album or playing context.
RULE_OF = """(SELECT min(r.id) FROM hide_rules r WHERE r.user_id = ? {others} AND r.removing = 0
              AND (r.starts_at IS NULL OR {p}.played_at >= r.starts_at)
              AND (r.ends_at IS NULL OR {p}.played_at < r.ends_at)
              AND CASE r.kind WHEN 'track' THEN {p}.track_id = r.target_id
                              WHEN 'artist' THEN {p}.artist_id = r.target_id
                              WHEN 'album' THEN {album} = r.target_id
                              ELSE {p}.context_uri = r.context_uri END)"""


def _hide_incoming(conn: sqlite3.Connection, user_id: int, import_id: int | None) -> None:
    """Move the incoming plays a hiding rule matches to hidden_plays, as they arrive."""
    if conn.execute("SELECT 1 FROM hide_rules WHERE user_id = ? LIMIT 1",
                    (user_id,)).fetchone() is None:
        return
    rule = RULE_OF.format(p="i", album="t.album_id", others="")
    conn.execute(
        f"""INSERT INTO hidden_plays (user_id, played_at, record_key, track_id, artist_id,
                                      ms_played, source, context_uri, skipped, import_id,
                                      rule_id)
            SELECT ?, played_at, record_key, track_id, artist_id, ms_played, source,
                   context_uri, skipped, coalesce(?, import_id), rule FROM (
                SELECT i.*, {rule} AS rule FROM incoming_plays i
                JOIN tracks t ON t.id = i.track_id) WHERE rule IS NOT NULL""",
        (user_id, import_id, user_id))
    conn.execute("""DELETE FROM incoming_plays WHERE EXISTS (
                        SELECT 1 FROM hidden_plays h WHERE h.user_id = ?
                          AND h.played_at = incoming_plays.played_at
                          AND h.record_key = incoming_plays.record_key)""", (user_id,))


def roll_incoming(conn: sqlite3.Connection, user_id: int, sign: int) -> None:
    """Add (sign 1) or subtract (sign -1) the plays in `incoming_plays` to the rollups.

    After a subtraction, `settle_removed` puts first and last plays right and drops the
    rows left empty.
    """
    # Two passes over the plays (per track, per local hour and source); every rollup is
    # summed from those, so a big import sorts its plays twice, not six times.
    for statement in (
            "DROP TABLE IF EXISTS temp.incoming_tracks",
            "DROP TABLE IF EXISTS temp.incoming_hours",
            "DROP TABLE IF EXISTS temp.incoming_months",
            """CREATE TEMP TABLE incoming_tracks AS
               SELECT track_id, artist_id, :sign * sum(ms_played >= :play) AS plays,
                      :sign * sum(ms_played) AS ms, min(played_at) AS first,
                      max(played_at) AS last
               FROM incoming_plays GROUP BY track_id, artist_id""",
            """CREATE TEMP TABLE incoming_hours AS
               SELECT day, hour, weekday, source, :sign * sum(ms_played >= :play) AS plays,
                      :sign * count(*) AS streams, :sign * sum(ms_played) AS ms
               FROM incoming_plays GROUP BY day, hour, weekday, source""",
            """CREATE TEMP TABLE incoming_months AS
               SELECT substr(day, 1, 7) AS month, track_id, artist_id,
                      :sign * sum(ms_played >= :play) AS plays, :sign * sum(ms_played) AS ms
               FROM incoming_plays GROUP BY substr(day, 1, 7), track_id, artist_id"""):
        conn.execute(statement, {"sign": sign, "play": PLAY_MS} if ":" in statement else {})
    rollups = (
        """INSERT INTO user_tracks (user_id, track_id, plays, ms_played, first_played,
                                    last_played)
           SELECT ?, track_id, sum(plays), sum(ms), min(first), max(last) FROM incoming_tracks
           WHERE true GROUP BY track_id
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played,
               first_played = min(first_played, excluded.first_played),
               last_played = max(last_played, excluded.last_played)""",
        """INSERT INTO user_artists (user_id, artist_id, plays, ms_played, first_played,
                                     last_played)
           SELECT ?, artist_id, sum(plays), sum(ms), min(first), max(last) FROM incoming_tracks
           WHERE true GROUP BY artist_id
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played,
               first_played = min(first_played, excluded.first_played),
               last_played = max(last_played, excluded.last_played)""",
        """INSERT INTO user_albums (user_id, album_id, plays, ms_played)
           SELECT ?, t.album_id, sum(i.plays), sum(i.ms) FROM incoming_tracks i
           JOIN tracks t ON t.id = i.track_id WHERE t.album_id IS NOT NULL GROUP BY t.album_id
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO listening_days (user_id, day, plays, ms_played)
           SELECT ?, day, sum(plays), sum(ms) FROM incoming_hours WHERE true GROUP BY day
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO listening_hours (user_id, day, hour, weekday, plays, ms_played)
           SELECT ?, day, hour, weekday, sum(plays), sum(ms) FROM incoming_hours
           WHERE true GROUP BY day, hour
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO listening_weekhours (user_id, weekday, hour, plays, ms_played)
           SELECT ?, weekday, hour, sum(plays), sum(ms) FROM incoming_hours
           WHERE true GROUP BY weekday, hour
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO listening_months (user_id, month, source, plays, streams, ms_played)
           SELECT ?, substr(day, 1, 7), source, sum(plays), sum(streams), sum(ms)
           FROM incoming_hours WHERE true GROUP BY substr(day, 1, 7), source
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               streams = streams + excluded.streams,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO track_months (user_id, track_id, month, plays, ms_played)
           SELECT ?, track_id, month, sum(plays), sum(ms) FROM incoming_months
           WHERE true GROUP BY track_id, month
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO artist_months (user_id, artist_id, month, plays, ms_played)
           SELECT ?, artist_id, month, sum(plays), sum(ms) FROM incoming_months
           WHERE true GROUP BY artist_id, month
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        """INSERT INTO album_months (user_id, album_id, month, plays, ms_played)
           SELECT ?, t.album_id, i.month, sum(i.plays), sum(i.ms) FROM incoming_months i
           JOIN tracks t ON t.id = i.track_id WHERE t.album_id IS NOT NULL
           GROUP BY t.album_id, i.month
           ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
    )
    for statement in rollups:
        conn.execute(statement, (user_id,))
    for temp in ("incoming_tracks", "incoming_hours", "incoming_months"):
        conn.execute(f"DROP TABLE temp.{temp}")


# After plays in `incoming_plays` left the plays table: (table, key, the keys they touched).
_EMPTIED = (
    ("listening_days", "day", "SELECT day FROM incoming_plays"),
    ("listening_hours", "(day, hour)", "SELECT day, hour FROM incoming_plays"),
    ("listening_weekhours", "(weekday, hour)", "SELECT weekday, hour FROM incoming_plays"),
    ("track_months", "(track_id, month)",
     "SELECT track_id, substr(day, 1, 7) FROM incoming_plays"),
    ("artist_months", "(artist_id, month)",
     "SELECT artist_id, substr(day, 1, 7) FROM incoming_plays"),
    ("album_months", "(album_id, month)",
     "SELECT t.album_id, substr(i.day, 1, 7) FROM incoming_plays i "
     "JOIN tracks t ON t.id = i.track_id"),
)


def settle_removed(conn: sqlite3.Connection, user_id: int) -> None:
    """Finish subtracting the plays in `incoming_plays`: exact first and last plays, no
    rows left for what no play remains of (as a rebuild would leave them)."""
    for table, column, index in (("user_tracks", "track_id", "plays_user_track"),
                                 ("user_artists", "artist_id", "plays_user_artist")):
        touched = f"{column} IN (SELECT {column} FROM incoming_plays)"
        conn.execute(f"""DELETE FROM {table} WHERE user_id = ? AND {touched} AND NOT EXISTS (
                             SELECT 1 FROM plays INDEXED BY {index} WHERE plays.user_id = ?
                               AND plays.{column} = {table}.{column})""", (user_id, user_id))
        conn.execute(f"""UPDATE {table} SET
                             first_played = (SELECT min(played_at) FROM plays INDEXED BY {index}
                                 WHERE plays.user_id = ? AND plays.{column} = {table}.{column}),
                             last_played = (SELECT max(played_at) FROM plays INDEXED BY {index}
                                 WHERE plays.user_id = ? AND plays.{column} = {table}.{column})
                         WHERE user_id = ? AND {touched}""", (user_id, user_id, user_id))
    conn.execute("""DELETE FROM user_albums WHERE user_id = ? AND album_id IN (
                        SELECT t.album_id FROM incoming_plays i JOIN tracks t ON t.id = i.track_id)
                    AND NOT EXISTS (SELECT 1 FROM tracks t CROSS JOIN user_tracks ut
                                    ON ut.user_id = user_albums.user_id AND ut.track_id = t.id
                                    WHERE t.album_id = user_albums.album_id)""", (user_id,))
    # A day, hour or month the plays emptied holds nothing now. (Streams of 0 ms leave no
    # trace here, so a rebuild may keep a row of zeros that this drops: no figure changes.)
    for table, key, touched in _EMPTIED:
        conn.execute(f"DELETE FROM {table} WHERE user_id = ? AND plays = 0 AND ms_played = 0 "
                     f"AND {key} IN ({touched})", (user_id,))
    conn.execute("DELETE FROM listening_months WHERE user_id = ? AND streams = 0", (user_id,))


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
                    SELECT user_id, {column}, sum(counted), sum(ms_played), min(played_at),
                           max(played_at)
                    FROM plays WHERE user_id = ? GROUP BY {column}""", (user_id,))
        conn.execute(
            """INSERT INTO user_albums (user_id, album_id, plays, ms_played)
               SELECT ut.user_id, t.album_id, sum(ut.plays), sum(ut.ms_played)
               FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
               WHERE ut.user_id = ? AND t.album_id IS NOT NULL GROUP BY t.album_id""",
            (user_id,))
        local = LocalTime(preferences.load(conn, user_id).timezone)
        hours: dict[tuple[str, int, int], list[int]] = {}
        months: dict[tuple[str, str], list[int]] = {}
        track_months: dict[tuple[int, str], list[int]] = {}
        artist_months: dict[tuple[int, str], list[int]] = {}
        for played_at, ms, counted, source, track_id, artist_id in conn.execute(
                "SELECT played_at, ms_played, counted, source, track_id, artist_id FROM plays "
                "WHERE user_id = ?", (user_id,)):
            key = local(played_at)
            entry = hours.setdefault(key, [0, 0])
            entry[0] += counted
            entry[1] += ms
            month_name = key[0][:7]
            month = months.setdefault((month_name, source), [0, 0, 0])
            month[0] += counted
            month[1] += 1
            month[2] += ms
            for totals, subject in ((track_months, track_id), (artist_months, artist_id)):
                entry = totals.setdefault((subject, month_name), [0, 0])
                entry[0] += counted
                entry[1] += ms
        conn.executemany(
            "INSERT INTO listening_hours (user_id, day, hour, weekday, plays, ms_played) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(user_id, *key, n, ms) for key, (n, ms) in hours.items()])
        conn.executemany(
            "INSERT INTO listening_months (user_id, month, source, plays, streams, ms_played) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(user_id, *key, *values) for key, values in months.items()])
        for table, column, totals in (("track_months", "track_id", track_months),
                                      ("artist_months", "artist_id", artist_months)):
            conn.executemany(
                f"INSERT INTO {table} (user_id, {column}, month, plays, ms_played) "
                "VALUES (?, ?, ?, ?, ?)",
                [(user_id, *key, *values) for key, values in totals.items()])
        conn.execute(
            """INSERT INTO album_months (user_id, album_id, month, plays, ms_played)
               SELECT m.user_id, t.album_id, m.month, sum(m.plays), sum(m.ms_played)
               FROM track_months m JOIN tracks t ON t.id = m.track_id
               WHERE m.user_id = ? AND t.album_id IS NOT NULL GROUP BY t.album_id, m.month""",
            (user_id,))
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
    """Delete a user's plays (hidden ones too), hiding rules and rollups; return how many
    plays were deleted."""
    with transaction(conn):
        for table in ROLLUP_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        deleted = sum(conn.execute(f"DELETE FROM {table} WHERE user_id = ?",
                                   (user_id,)).rowcount for table in STORED)
        conn.execute("DELETE FROM hide_rules WHERE user_id = ?", (user_id,))
        conn.execute("UPDATE users SET rollups_version = ? WHERE id = ?",
                     (ROLLUPS_VERSION, user_id))
        bump_version(conn, user_id)
        return deleted
