"""Making playlists on Spotify: create once, add the tracks 100 a call, retry, rename, delete.

The views parse the form, call one function here and show its Outcome, as mtm.sync does for
syncing. A request never makes two playlists:

- The form carries a one-time key. A playlist row is reserved under it, together with a lease
  (mtm.leases, `playlist:<id>`), before Spotify is called; the same form sent again finds that
  row instead of making a second playlist.
- The same request from a fresh form (Back and Create again, a double click landing after the
  first answer replaced the form) is recognised by what it asks for: the same source, year,
  size and name within REPEAT_SECONDS of a playlist made or being made.
- A repeat that arrives while the first request still talks to Spotify waits for it (up to
  WAIT_SECONDS), then answers with what it made.

Progress is recorded after every call that adds tracks, so "Retry adding tracks" adds exactly
the missing ones to the same playlist. A lease held by a crashed request lapses after
LEASE_SECONDS, and the same form (or Retry) can then finish the job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from mtm import accounts, connection, leases, playlists
from mtm.db import Database, transaction
from mtm.jobs import make_holder
from mtm.playlists import COLUMNS, Choice, Playlist, Preview
from mtm.spotify.client import ADD_ITEMS_CHUNK, Forbidden, NotFound, SpotifyClient, SpotifyError

log = logging.getLogger("mtm.playlists")

# How long a request may hold a playlist while it talks to Spotify; a crashed one lets go then.
LEASE_SECONDS = 120
# The same request sent again within this time gets the playlist the first one made.
REPEAT_SECONDS = 120
# How long a repeat waits for the request it repeats, and how often it looks.
WAIT_SECONDS = 20.0
WAIT_INTERVAL = 0.2
SPOTIFY_URL = "https://open.spotify.com/playlist/"


class Status(StrEnum):
    """What a create, retry, rename or delete came to."""

    CREATED = "created"          # made on Spotify with every track
    ADDED = "added"              # retry: the missing tracks are on it now
    INCOMPLETE = "incomplete"    # made, but adding tracks failed (`error`); retry adds the rest
    ALREADY = "already"          # the request was sent before: `playlist` is what it made
    COMPLETE = "complete"        # retry of a playlist that lacks nothing
    USED = "used"                # the form's key made `playlist`, since deleted
    BUSY = "busy"                # another request is still working on `playlist`
    NOT_CREATED = "not_created"  # Spotify made nothing (`error`); the same form can try again
    NO_TRACKS = "no_tracks"      # the source has nothing to add (`preview`)
    GONE = "gone"                # deleted (from another tab) while its tracks were being added
    NOT_FOUND = "not_found"      # no such playlist among the user's
    RENAMED = "renamed"
    DELETED = "deleted"
    RECONNECT = "reconnect"      # the sign-in lacks the permission Spotify needs for this
    FAILED = "failed"            # Spotify refused (`error`); nothing changed here


@dataclass(frozen=True)
class Outcome:
    """The result of one workflow step, for the page to show."""

    status: Status
    playlist: Playlist | None = None
    error: SpotifyError | None = None
    preview: Preview | None = None


@dataclass(frozen=True)
class Reservation:
    """The outcome of reserving: `reserved` (go ahead), `busy`, `exists`, `repeat`, `deleted`."""

    outcome: str
    playlist: Playlist


# --- records ----------------------------------------------------------------------------


def _now(now: int | float | None) -> int:
    return int(time.time()) if now is None else int(now)


def lease_name(playlist_id: int) -> str:
    """The lease a request holds while it creates the playlist or adds its tracks."""
    return f"playlist:{playlist_id}"


def request_of(choice: Choice, name: str) -> str:
    """What a create asks for, as stored to recognise the same request sent again."""
    return json.dumps([choice.source, choice.year, choice.count, name])


def spotify_url(created: Mapping, spotify_id: str) -> str:
    """The playlist's web address from Spotify's answer, or made from its id."""
    url = (created.get("external_urls") or {}).get("spotify")
    # Only Spotify's own https address is ever put in a link.
    if isinstance(url, str) and url.startswith(SPOTIFY_URL):
        return url
    return SPOTIFY_URL + spotify_id


def _leased(conn: sqlite3.Connection, user_id: int, playlist_id: int, now: int) -> bool:
    return leases.held_by(conn, user_id, lease_name(playlist_id), now) is not None


def recent_request(conn: sqlite3.Connection, user_id: int, request: str, now: int | None = None
                   ) -> Playlist | None:
    """The newest playlist made (or being made) for `request` in the last REPEAT_SECONDS."""
    now = _now(now)
    zone = playlists.user_zone(conn, user_id)
    for row in conn.execute(
            f"SELECT {COLUMNS} FROM playlists WHERE user_id = ? AND request = ? "
            "AND created_at >= ? AND deleted_at IS NULL ORDER BY created_at DESC, id DESC "
            "LIMIT 10", (user_id, request, now - REPEAT_SECONDS)):
        playlist = playlists.playlist_of(row, zone)
        # An attempt that failed before Spotify made anything is no reason to refuse.
        if playlist.created or _leased(conn, user_id, playlist.id, now):
            return playlist
    return None


def reserve(conn: sqlite3.Connection, user_id: int, key: str, *, holder: str, request: str,
            name: str, source: str, year: int | None, track_ids: list[int],
            now: int | None = None) -> Reservation:
    """Claim `key` before Spotify is called: one playlist per key and per repeated request."""
    now = _now(now)
    with transaction(conn):
        existing = playlists.find_by_key(conn, user_id, key)
        if existing is None:
            repeat = recent_request(conn, user_id, request, now)
            if repeat is not None:
                busy = _leased(conn, user_id, repeat.id, now)
                return Reservation("busy" if busy else "repeat", repeat)
            playlist_id = conn.execute(
                """INSERT INTO playlists (user_id, name, source, year, track_count,
                                          idempotency_key, request, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (user_id, name, source, year, len(track_ids), key, request, now, now)
            ).fetchone()[0]
        else:
            if existing.deleted:
                return Reservation("deleted", existing)
            if _leased(conn, user_id, existing.id, now):
                return Reservation("busy", existing)
            if existing.created:
                return Reservation("exists", existing)
            # An earlier attempt with this form failed before Spotify made anything: redo it.
            conn.execute(
                """UPDATE playlists SET name = ?, source = ?, year = ?, track_count = ?,
                       tracks_added = 0, request = ?, last_error = NULL, created_at = ?,
                       updated_at = ? WHERE id = ?""",
                (name, source, year, len(track_ids), request, now, now, existing.id))
            conn.execute("DELETE FROM playlist_tracks WHERE playlist_id = ?", (existing.id,))
            playlist_id = existing.id
        conn.executemany(
            "INSERT INTO playlist_tracks (playlist_id, position, track_id) VALUES (?, ?, ?)",
            [(playlist_id, position, track_id) for position, track_id in enumerate(track_ids)])
        taken = leases.acquire(conn, user_id, lease_name(playlist_id), holder,
                               ttl=LEASE_SECONDS, now=now)
        reserved = playlists.find_by_key(conn, user_id, key)
    assert reserved is not None
    # Only a lease left behind by a deleted row of the same id could be in the way; it lapses.
    return Reservation("reserved" if taken else "busy", reserved)


def mark_created(conn: sqlite3.Connection, playlist_id: int, spotify_id: str, url: str,
                 now: int | None = None) -> None:
    """Record the Spotify playlist made for a reservation."""
    with transaction(conn):
        conn.execute("UPDATE playlists SET spotify_id = ?, url = ?, last_error = NULL, "
                     "updated_at = ? WHERE id = ?", (spotify_id, url, _now(now), playlist_id))


def claim(conn: sqlite3.Connection, user_id: int, playlist_id: int, holder: str,
          now: int | None = None) -> bool:
    """Take a created playlist for adding tracks; False while another request holds it."""
    with transaction(conn):
        if playlists.get_playlist(conn, user_id, playlist_id) is None:
            return False
        return leases.acquire(conn, user_id, lease_name(playlist_id), holder,
                              ttl=LEASE_SECONDS, now=now)


def release(conn: sqlite3.Connection, user_id: int, playlist_id: int, holder: str,
            error: str | None = None, now: int | None = None) -> None:
    """Let go of a playlist; with `error`, remember why the attempt failed."""
    with transaction(conn):
        conn.execute("UPDATE playlists SET updated_at = ?, last_error = coalesce(?, last_error) "
                     "WHERE id = ? AND user_id = ?", (_now(now), error, playlist_id, user_id))
        leases.release(conn, user_id, lease_name(playlist_id), holder)


def pending_uris(conn: sqlite3.Connection, playlist_id: int) -> list[str]:
    """The chosen tracks not on Spotify yet, in playlist order."""
    return [row[0] for row in conn.execute(
        """SELECT 'spotify:track:' || t.spotify_id FROM playlists p
           JOIN playlist_tracks pt ON pt.playlist_id = p.id AND pt.position >= p.tracks_added
           JOIN tracks t ON t.id = pt.track_id
           WHERE p.id = ? ORDER BY pt.position""", (playlist_id,))]


def record_added(conn: sqlite3.Connection, playlist_id: int, count: int,
                 now: int | None = None) -> None:
    """Count `count` more tracks as added (right after Spotify accepted them)."""
    with transaction(conn):
        conn.execute("UPDATE playlists SET tracks_added = min(track_count, tracks_added + ?), "
                     "last_error = NULL, updated_at = ? WHERE id = ?",
                     (count, _now(now), playlist_id))


def store_name(conn: sqlite3.Connection, user_id: int, playlist_id: int, name: str,
               now: int | None = None) -> Playlist | None:
    """Store a playlist's new name (after Spotify renamed it)."""
    with transaction(conn):
        conn.execute("UPDATE playlists SET name = ?, updated_at = ? WHERE id = ? AND user_id = ?",
                     (name, _now(now), playlist_id, user_id))
    return playlists.get_playlist(conn, user_id, playlist_id)


def mark_deleted(conn: sqlite3.Connection, user_id: int, playlist_id: int,
                 now: int | None = None) -> bool:
    """Hide a playlist that was unfollowed on Spotify; its key stays used."""
    now = _now(now)
    with transaction(conn):
        return conn.execute(
            "UPDATE playlists SET deleted_at = ?, updated_at = ? "
            "WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
            (now, now, playlist_id, user_id)).rowcount == 1


# --- on Spotify -------------------------------------------------------------------------


async def create(db: Database, spotify: SpotifyClient, user_id: int, key: str,
                 choice: Choice) -> Outcome:
    """Create the chosen playlist on Spotify, once per form and per request, with its tracks."""
    earlier = await db.run(playlists.find_by_key, user_id, key)
    if earlier is not None and earlier.deleted:
        return Outcome(Status.USED, earlier)
    plan = await db.run(playlists.preview, user_id, choice)
    if not plan.tracks and (earlier is None or not earlier.created):
        return Outcome(Status.NO_TRACKS, preview=plan)
    holder = make_holder("playlist")
    reservation = await _reserve(db, user_id, key, holder, choice, plan)
    if reservation.outcome in ("exists", "repeat"):
        return Outcome(Status.ALREADY, reservation.playlist)
    if reservation.outcome == "deleted":
        return Outcome(Status.USED, reservation.playlist)
    if reservation.outcome == "busy":
        return Outcome(Status.BUSY, reservation.playlist)
    playlist = reservation.playlist
    try:
        made = await accounts.with_token(
            db, spotify, user_id, lambda token: spotify.create_playlist(
                token, plan.name, description=playlists.description(choice.source),
                public=False))
        spotify_id = made.get("id")
        if not isinstance(spotify_id, str) or not spotify_id:
            raise SpotifyError("Spotify sent an incomplete answer; try again.",
                               detail="create playlist answer without an id")
    except SpotifyError as exc:
        log.warning("creating playlist %s failed: %s %s", playlist.id, exc.message, exc.detail)
        await db.run(release, user_id, playlist.id, holder, exc.message)
        return Outcome(Status.NOT_CREATED, playlist, exc)
    await db.run(mark_created, playlist.id, spotify_id, spotify_url(made, spotify_id))
    return await _add_missing(db, spotify, user_id, playlist.id, spotify_id, holder,
                              Status.CREATED)


async def _reserve(db: Database, user_id: int, key: str, holder: str, choice: Choice,
                   plan: Preview) -> Reservation:
    """Reserve, waiting while an earlier press of the same request is still at work."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        reservation = await db.run(
            reserve, user_id, key, holder=holder, request=request_of(choice, plan.name),
            name=plan.name, source=choice.source, year=choice.year,
            track_ids=[t.track_id for t in plan.tracks])
        if reservation.outcome != "busy" or time.monotonic() >= deadline:
            return reservation
        await asyncio.sleep(WAIT_INTERVAL)


async def retry(db: Database, spotify: SpotifyClient, user_id: int, playlist_id: int
                ) -> Outcome:
    """Add the tracks that did not reach Spotify to the same playlist."""
    playlist = await db.run(playlists.get_playlist, user_id, playlist_id)
    if playlist is None:
        return Outcome(Status.NOT_FOUND)
    if playlist.complete:
        return Outcome(Status.COMPLETE, playlist)
    holder = make_holder("playlist")
    if not await db.run(claim, user_id, playlist.id, holder):
        return Outcome(Status.BUSY, playlist)
    assert playlist.spotify_id is not None
    return await _add_missing(db, spotify, user_id, playlist.id, playlist.spotify_id, holder,
                              Status.ADDED)


async def _add_missing(db: Database, spotify: SpotifyClient, user_id: int, playlist_id: int,
                       spotify_id: str, holder: str, done: Status) -> Outcome:
    """Add the tracks not on Spotify yet, 100 a call, counting each call that succeeds."""
    error = None
    try:
        uris = await db.run(pending_uris, playlist_id)
        for start in range(0, len(uris), ADD_ITEMS_CHUNK):
            chunk = uris[start:start + ADD_ITEMS_CHUNK]
            await accounts.with_token(db, spotify, user_id,
                                      lambda token, chunk=chunk: spotify.add_items(
                                          token, spotify_id, chunk))
            await db.run(record_added, playlist_id, len(chunk))
    except SpotifyError as exc:
        log.warning("adding tracks to playlist %s failed: %s %s", playlist_id, exc.message,
                    exc.detail)
        error = exc
    finally:
        await db.run(release, user_id, playlist_id, holder, error.message if error else None)
    playlist = await db.run(playlists.get_playlist, user_id, playlist_id)
    if playlist is None:
        return Outcome(Status.GONE, error=error)
    if error is not None:
        return Outcome(Status.INCOMPLETE, playlist, error)
    return Outcome(done, playlist)


async def rename(db: Database, spotify: SpotifyClient, user_id: int, playlist_id: int,
                 name: str) -> Outcome:
    """Rename the playlist on Spotify, then here (a name checked with name_problem)."""
    if playlists.name_problem(name, required=True):
        raise ValueError(f"not a playlist name: {name!r}")
    playlist = await db.run(playlists.get_playlist, user_id, playlist_id)
    if playlist is None:
        return Outcome(Status.NOT_FOUND)
    if name == playlist.name:
        return Outcome(Status.RENAMED, playlist)
    try:
        await accounts.with_token(db, spotify, user_id,
                                  lambda token: spotify.rename_playlist(
                                      token, playlist.spotify_id, name))
    except SpotifyError as exc:
        log.warning("renaming playlist %s failed: %s %s", playlist.id, exc.message, exc.detail)
        return Outcome(Status.FAILED, playlist, exc)
    renamed = await db.run(store_name, user_id, playlist.id, name)
    # None when it was deleted from another tab meanwhile.
    return Outcome(Status.RENAMED, renamed) if renamed else Outcome(Status.NOT_FOUND)


async def delete(db: Database, spotify: SpotifyClient, user_id: int, playlist_id: int
                 ) -> Outcome:
    """Delete (unfollow) the playlist on Spotify; only then drop it from the list."""
    playlist = await db.run(playlists.get_playlist, user_id, playlist_id)
    if playlist is None:
        return Outcome(Status.NOT_FOUND)
    if not await db.run(connection.has_scope, user_id, connection.LIBRARY_SCOPE):
        return Outcome(Status.RECONNECT, playlist)
    try:
        await accounts.with_token(db, spotify, user_id,
                                  lambda token: spotify.unfollow_playlist(
                                      token, playlist.spotify_id))
    except NotFound:
        pass  # already gone from Spotify: forgetting it here is all that is left to do
    except Forbidden as exc:
        log.warning("deleting playlist %s refused: %s", playlist.id, exc.detail)
        return Outcome(Status.RECONNECT, playlist, exc)
    except SpotifyError as exc:
        # The record stays: a playlist still on Spotify never leaves the list silently.
        log.warning("deleting playlist %s failed: %s %s", playlist.id, exc.message, exc.detail)
        return Outcome(Status.FAILED, playlist, exc)
    await db.run(mark_deleted, user_id, playlist.id)
    return Outcome(Status.DELETED, playlist)
