"""Fetching plays from Spotify into the history, and the log of sync runs."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from mtm import accounts
from mtm.db import Database, transaction
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn, add_plays, play_key
from mtm.spotify.client import RateLimited, SpotifyClient, SpotifyError


@dataclass(frozen=True)
class SyncRun:
    """One attempt to fetch a user's plays."""

    id: int
    started_at: int
    finished_at: int | None
    outcome: str
    plays_added: int
    error: str | None
    retry_at: int | None


def _image(images: list[dict[str, Any]] | None) -> str | None:
    return images[0].get("url") if images else None


def parse_track(obj: dict[str, Any]) -> TrackIn:
    """A Web API track object as the history stores it."""
    album = obj.get("album") or None
    return TrackIn(
        spotify_id=obj.get("id"),
        name=obj.get("name") or "Unknown track",
        artists=tuple(ArtistIn(a.get("id"), a.get("name") or "Unknown artist")
                      for a in obj.get("artists") or [{"name": "Unknown artist"}]),
        album=AlbumIn(album.get("id"), album.get("name") or "Unknown album",
                      album.get("release_date"), _image(album.get("images"))) if album else None,
        duration_ms=obj.get("duration_ms"),
        explicit=obj.get("explicit"),
    )


def parse_recently_played(payload: dict[str, Any]) -> list[PlayIn]:
    """Turn a recently-played response into plays; items that are not tracks are skipped."""
    plays = []
    for item in payload.get("items", []):
        track = item.get("track")
        if not track or track.get("type", "track") != "track" or not item.get("played_at"):
            continue
        context = item.get("context") or {}
        plays.append(PlayIn(play_key(item["played_at"]), parse_track(track),
                            track.get("duration_ms") or 0, "api", context.get("uri")))
    return plays


def start_run(conn: sqlite3.Connection, user_id: int, now: int) -> int:
    """Log the start of a sync run; return its id."""
    with transaction(conn):
        return conn.execute(
            "INSERT INTO sync_runs (user_id, started_at) VALUES (?, ?) RETURNING id",
            (user_id, now)).fetchone()[0]


def finish_run(conn: sqlite3.Connection, run_id: int, outcome: str, plays_added: int = 0,
               error: str | None = None, retry_at: int | None = None) -> None:
    """Log how a sync run ended."""
    with transaction(conn):
        conn.execute(
            """UPDATE sync_runs SET finished_at = ?, outcome = ?, plays_added = ?, error = ?,
                   retry_at = ? WHERE id = ?""",
            (int(time.time()), outcome, plays_added, error, retry_at, run_id))


def latest_run(conn: sqlite3.Connection, user_id: int) -> SyncRun | None:
    """The user's most recent sync run."""
    row = conn.execute(
        """SELECT id, started_at, finished_at, outcome, plays_added, error, retry_at
           FROM sync_runs WHERE user_id = ? ORDER BY started_at DESC, id DESC LIMIT 1""",
        (user_id,)).fetchone()
    return SyncRun(*row) if row else None


def api_cursor(conn: sqlite3.Connection, user_id: int) -> int | None:
    """Milliseconds of the newest play fetched from the API, for the `after` cursor."""
    row = conn.execute(
        "SELECT max(played_at) FROM plays WHERE user_id = ? AND source = 'api'",
        (user_id,)).fetchone()
    return row[0] * 1000 if row and row[0] is not None else None


def save_plays(conn: sqlite3.Connection, user_id: int, run_id: int, plays: list[PlayIn]) -> int:
    """Store fetched plays and close the run in one transaction, so both land or neither."""
    with transaction(conn):
        added = add_plays(conn, user_id, plays)
        conn.execute(
            """UPDATE sync_runs SET finished_at = ?, outcome = 'ok', plays_added = ?
               WHERE id = ?""", (int(time.time()), added, run_id))
    return added


async def sync_recent(db: Database, client: SpotifyClient, user_id: int) -> SyncRun:
    """Fetch the user's recent plays after the last stored one and log the run."""
    now = int(time.time())
    run_id = await db.run(start_run, user_id, now)
    try:
        cursor = await db.run(api_cursor, user_id)
        payload = await accounts.with_token(
            db, client, user_id,
            lambda token: client.recently_played(token, after=cursor, limit=50))
        await db.run(save_plays, user_id, run_id, parse_recently_played(payload))
    except RateLimited as exc:
        await db.run(finish_run, run_id, "deferred", 0, exc.message, now + exc.retry_after)
    except SpotifyError as exc:
        await db.run(finish_run, run_id, "failed", 0, exc.message)
    except BaseException:
        await db.run(finish_run, run_id, "failed", 0, "Unexpected error while syncing.")
        raise
    return await db.run(latest_run, user_id)
