"""Fetching a user's plays, top items and artist details from Spotify, and the sync log.

A sync never loses history: plays are written in one transaction with the run's count,
every poll asks for all the plays Spotify still lists (the play identity drops what is
stored), and a lease keeps two processes from syncing the same user at once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mtm import accounts, identity, leases, quota
from mtm.db import Database, transaction
from mtm.history import (
    AlbumIn,
    ArtistIn,
    PlayIn,
    TrackIn,
    add_plays,
    play_key,
    set_artist_genres,
    upsert_artist,
    upsert_track,
)
from mtm.spotify.client import ConsentExpired, RateLimited, SpotifyClient, SpotifyError

log = logging.getLogger("mtm.sync")

# The lease (mtm.leases) held by whatever writes a user's history: syncs, imports, clears.
LEASE = "sync"
LEASE_SECONDS = 600
TIME_RANGES = ("short_term", "medium_term", "long_term")
KINDS = ("tracks", "artists")
ARTIST_DETAILS_PER_RUN = 50
INTERRUPTED = "Interrupted before it finished; nothing from it was half-written."


@dataclass(frozen=True)
class SyncRun:
    """One attempt to fetch a user's data from Spotify."""

    id: int
    user_id: int
    started_at: int
    finished_at: int | None
    outcome: str
    plays_added: int
    error: str | None
    retry_at: int | None
    items_skipped: int = 0


# --- parsing Web API objects ---------------------------------------------------


# Images are shown at most 96 CSS px wide (the artist, album and track pages): twice that
# is sharp on a high-density screen, and Spotify's 640 px ones would only be heavier.
IMAGE_WIDTH = 192


def pick_image(images: list[dict[str, Any]] | None) -> str | None:
    """The URL of the smallest image at least IMAGE_WIDTH wide, else of the widest one."""
    usable = [i for i in images or [] if isinstance(i, dict) and i.get("url")]
    if not usable:
        return None

    def width(image: dict[str, Any]) -> int:
        # Spotify leaves the size of some images out (null): take them to be large.
        return image.get("width") or 10_000

    wide = [i for i in usable if width(i) >= IMAGE_WIDTH]
    return (min(wide, key=width) if wide else max(usable, key=width))["url"]


def parse_artist(obj: dict[str, Any]) -> ArtistIn:
    """A Web API artist; `genres` stays None when Spotify left the field out."""
    genres = obj.get("genres")
    return ArtistIn(obj.get("id"), obj.get("name") or "Unknown artist",
                    tuple(genres) if isinstance(genres, list) else None,
                    pick_image(obj.get("images")), obj.get("popularity"))


def parse_track(obj: dict[str, Any]) -> TrackIn:
    """A Web API track object as the history stores it."""
    album = obj.get("album") or None
    # Simplified artists inside a track never carry genres: leave them unknown.
    artists = tuple(ArtistIn(a.get("id"), a.get("name") or "Unknown artist")
                    for a in obj.get("artists") or [{"name": "Unknown artist"}])
    return TrackIn(
        spotify_id=obj.get("id"),
        name=obj.get("name") or "Unknown track",
        artists=artists,
        album=AlbumIn(album.get("id"), album.get("name") or "Unknown album",
                      album.get("release_date"), pick_image(album.get("images")))
        if album else None,
        duration_ms=obj.get("duration_ms"),
        explicit=obj.get("explicit"),
    )


def parse_recently_played(payload: dict[str, Any]) -> tuple[list[PlayIn], int]:
    """The plays of a recently-played response, and how many items were not music tracks.

    Local files are tracks without ids (kept by name); episodes and `track: null` (a track
    Spotify no longer has) are counted, not stored.
    """
    plays, skipped = [], 0
    for item in payload.get("items", []):
        track = item.get("track")
        if not track or track.get("type", "track") != "track" or not item.get("played_at"):
            skipped += 1
            continue
        context = item.get("context") or {}
        plays.append(PlayIn(play_key(item["played_at"]), parse_track(track),
                            track.get("duration_ms") or 0, "api", context.get("uri")))
    return plays, skipped


# --- the run log -------------------------------------------------------------------


def start_run(conn: sqlite3.Connection, user_id: int, now: int) -> int:
    """Log the start of a sync run; return its id."""
    with transaction(conn):
        return conn.execute(
            "INSERT INTO sync_runs (user_id, started_at) VALUES (?, ?) RETURNING id",
            (user_id, now)).fetchone()[0]


def finish_run(conn: sqlite3.Connection, run_id: int, outcome: str,
               error: str | None = None, retry_at: int | None = None) -> None:
    """Log how a sync run ended (its plays count was written with the plays)."""
    with transaction(conn):
        conn.execute(
            "UPDATE sync_runs SET finished_at = ?, outcome = ?, error = ?, retry_at = ? "
            "WHERE id = ?", (int(time.time()), outcome, error, retry_at, run_id))


def close_abandoned_runs(conn: sqlite3.Connection) -> list[int]:
    """At start-up: close the open runs of users whose history lease no live process holds
    (a crash mid-sync), so Settings says the sync was interrupted; the users closed."""
    closed = []
    for (user_id,) in conn.execute("SELECT DISTINCT user_id FROM sync_runs "
                                   "WHERE outcome = 'running'").fetchall():
        if leases.holding(conn, user_id, LEASE) is None and close_interrupted_runs(conn,
                                                                                    user_id):
            closed.append(user_id)
    return closed


def close_interrupted_runs(conn: sqlite3.Connection, user_id: int) -> int:
    """Mark runs left 'running' by a crashed process as failed (called under the lease)."""
    with transaction(conn):
        return conn.execute(
            "UPDATE sync_runs SET outcome = 'failed', finished_at = ?, error = ? "
            "WHERE user_id = ? AND outcome = 'running'",
            (int(time.time()), INTERRUPTED, user_id)).rowcount


_RUN_COLUMNS = ("id, user_id, started_at, finished_at, outcome, plays_added, error, retry_at, "
                "items_skipped")


def latest_run(conn: sqlite3.Connection, user_id: int) -> SyncRun | None:
    """The user's most recent sync run."""
    row = conn.execute(
        f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE user_id = ? "
        "ORDER BY started_at DESC, id DESC LIMIT 1", (user_id,)).fetchone()
    return SyncRun(*row) if row else None


def get_run(conn: sqlite3.Connection, run_id: int) -> SyncRun | None:
    """A sync run by id."""
    row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM sync_runs WHERE id = ?",
                       (run_id,)).fetchone()
    return SyncRun(*row) if row else None


# --- who is due -------------------------------------------------------------------


def users_due(conn: sqlite3.Connection, now: int) -> list[int]:
    """Connected users who are not waiting for a reconnect or a rate-limit deadline."""
    if quota.exhausted_until(conn, now) is not None:
        # The app's daily quota is everyone's: nobody is due until it resets.
        return []
    rows = conn.execute(
        """SELECT u.id FROM users u JOIN tokens t ON t.user_id = u.id
           WHERE u.reconnect_needed = 0 AND NOT EXISTS (
               SELECT 1 FROM sync_runs r WHERE r.user_id = u.id AND r.outcome = 'deferred'
                 AND r.retry_at > ? AND r.id = (SELECT max(id) FROM sync_runs
                                                WHERE user_id = u.id))
           ORDER BY u.id""", (now,))
    return [r[0] for r in rows]


def find_user(conn: sqlite3.Connection, key: str) -> int | None:
    """A user id from a numeric id or a Spotify user id."""
    row = conn.execute("SELECT id FROM users WHERE spotify_id = ? OR CAST(id AS TEXT) = ?",
                       (key, key)).fetchone()
    return row[0] if row else None


# --- what a run stores -----------------------------------------------------------


def save_plays(conn: sqlite3.Connection, user_id: int, run_id: int, plays: list[PlayIn],
               skipped: int = 0) -> int:
    """Store fetched plays and the run's counts in one transaction: both land or neither."""
    with transaction(conn):
        added = add_plays(conn, user_id, plays)
        conn.execute("UPDATE sync_runs SET plays_added = ?, items_skipped = ? WHERE id = ?",
                     (added, skipped, run_id))
    return added


def snapshot_taken(conn: sqlite3.Connection, user_id: int, day: str) -> bool:
    """True when today's top-items snapshot is already stored."""
    return conn.execute("SELECT 1 FROM top_snapshots WHERE user_id = ? AND taken_on = ? LIMIT 1",
                        (user_id, day)).fetchone() is not None


def save_snapshot(conn: sqlite3.Connection, user_id: int, day: str,
                  lists: dict[tuple[str, str], list[dict[str, Any]]]) -> int:
    """Store one day's top tracks and artists for every time range; return rows stored."""
    stored = 0
    with transaction(conn):
        for (kind, time_range), items in lists.items():
            for rank, item in enumerate(items, start=1):
                if kind == "tracks":
                    track_id, _ = upsert_track(conn, parse_track(item))
                    artist_id = None
                else:
                    track_id, artist_id = None, upsert_artist(conn, parse_artist(item))
                conn.execute(
                    """INSERT INTO top_snapshots (user_id, taken_on, kind, time_range, rank,
                                                  track_id, artist_id)
                       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING""",
                    (user_id, day, kind, time_range, rank, track_id, artist_id))
                stored += 1
    return stored


def artists_missing_details(conn: sqlite3.Connection, user_id: int, limit: int
                            ) -> list[tuple[int, str]]:
    """This user's artists never looked up (most played first), as (row id, Spotify id)."""
    return [(r[0], r[1]) for r in conn.execute(
        """SELECT a.id, a.spotify_id FROM user_artists ua JOIN artists a ON a.id = ua.artist_id
           WHERE ua.user_id = ? AND a.details_fetched_at IS NULL AND a.spotify_id IS NOT NULL
           ORDER BY ua.plays DESC LIMIT ?""", (user_id, limit))]


def save_artist_details(conn: sqlite3.Connection, artist_id: int, obj: dict[str, Any]) -> None:
    """Store what Spotify said about an artist; no genres is an answer too."""
    details = parse_artist(obj)
    with transaction(conn):
        conn.execute(
            "UPDATE artists SET name = ?, search_key = ?, image_url = coalesce(?, image_url), "
            "popularity = coalesce(?, popularity) WHERE id = ?",
            (details.name, identity.search_key(details.name), details.image_url,
             details.popularity, artist_id))
        set_artist_genres(conn, artist_id, details.genres or ())


# --- one sync ----------------------------------------------------------------------


class Pacer:
    """Spaces out requests made one id at a time, so lookups stay under the rate limit."""

    def __init__(self, interval: float = 0.1, clock=time.monotonic, sleep=asyncio.sleep) -> None:
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return once the next request may go out."""
        async with self._lock:
            delay = self._next - self._clock()
            if delay > 0:
                await self._sleep(delay)
            self._next = self._clock() + self.interval


def _day(now: int) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


async def _fetch_snapshot(db: Database, client: SpotifyClient, user_id: int, day: str) -> None:
    if await db.run(snapshot_taken, user_id, day):
        return
    lists = {}
    for kind in KINDS:
        for time_range in TIME_RANGES:
            payload = await accounts.with_token(
                db, client, user_id,
                lambda token, k=kind, r=time_range: client.top_items(token, k, r, limit=50))
            lists[(kind, time_range)] = payload.get("items", [])
    # All six lists or none: a partial snapshot would compare badly with later ones.
    await db.run(save_snapshot, user_id, day, lists)


async def _fetch_artist_details(db: Database, client: SpotifyClient, user_id: int,
                                pacer: Pacer) -> None:
    for artist_id, spotify_id in await db.run(artists_missing_details, user_id,
                                              ARTIST_DETAILS_PER_RUN):
        await pacer.wait()
        obj = await accounts.with_token(db, client, user_id,
                                        lambda token, a=spotify_id: client.artist(token, a))
        await db.run(save_artist_details, artist_id, obj)


async def sync_user(db: Database, client: SpotifyClient, user_id: int, *, holder: str,
                    pacer: Pacer | None = None, now: int | None = None,
                    plays_only: bool = False) -> SyncRun | None:
    """One sync of a user; None when another process holds the user's lease.

    `plays_only` skips the top-items snapshot and artist lookups (sign-in stays quick;
    the scheduler's next pass does the rest).
    """
    now = int(now or time.time())
    if not await db.run(leases.acquire, user_id, LEASE, holder, ttl=LEASE_SECONDS, now=now,
                        purpose="sync"):
        return None
    try:
        await db.run(close_interrupted_runs, user_id)
        run_id = await db.run(start_run, user_id, now)
        try:
            # No `after` cursor: Spotify can add a play older than the newest it listed
            # before (a device that was offline), and a cursor at the newest stored play would
            # never see it. Recently played holds only the last 50 anyway, so every poll asks
            # for all of them and the play identity leaves out what is stored already.
            payload = await accounts.with_token(
                db, client, user_id,
                lambda token: client.recently_played(token, limit=50))
            await db.run(save_plays, user_id, run_id, *parse_recently_played(payload))
            if not plays_only:
                await _fetch_snapshot(db, client, user_id, _day(now))
                await _fetch_artist_details(db, client, user_id, pacer or Pacer())
        except RateLimited as exc:
            retry_at = int(time.time()) + exc.retry_after
            await db.run(finish_run, run_id, "deferred", exc.message, retry_at)
        except ConsentExpired as exc:
            # accounts.access_token has flagged the user; their history stays.
            await db.run(finish_run, run_id, "failed", exc.message)
        except SpotifyError as exc:
            await db.run(finish_run, run_id, "failed", exc.message)
        except Exception:
            log.exception("sync of user %s crashed", user_id)
            await db.run(finish_run, run_id, "failed",
                         "An unexpected error stopped the sync; it will be retried.")
        else:
            await db.run(finish_run, run_id, "ok")
        return await db.run(get_run, run_id)
    finally:
        await db.run(leases.release, user_id, LEASE, holder)
