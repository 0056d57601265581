"""Artist details after an import: Spotify ids, genres and images, looked up one at a time.

Exports name artists but give no ids, genres or images, and Spotify has no batch lookups any
more. So, paced, for each of the user's artists not looked up yet (most played first): an
artist known by name only gets its id from one of its tracks (`GET /tracks/{id}`), then any
artist with an id gets its details (`GET /artists/{id}`). What has been done is in the
database (artists.details_fetched_at), so the work resumes wherever it stopped, and its
progress is a count anyone can read.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from mtm import accounts, history, identity, jobs, sync
from mtm.db import transaction
from mtm.jobs import JobContext
from mtm.spotify.client import ConsentExpired, NotFound, RateLimited, SpotifyError

log = logging.getLogger("mtm.enrich")

KIND = "enrich"
# A wait Spotify asks for up to this long is waited out; a longer one ends the job, and the
# scheduler starts it again once the wait is over.
MAX_INLINE_WAIT = 60


@dataclass(frozen=True)
class Status:
    """How far the lookups of one user's artists have got."""

    looked_up: int
    total: int

    @property
    def missing(self) -> int:
        """Artists still to look up."""
        return self.total - self.looked_up

    @property
    def percent(self) -> int:
        """Share done."""
        return 100 if not self.total else round(100 * self.looked_up / self.total)


def status(conn: sqlite3.Connection, user_id: int) -> Status:
    """Artists of the user looked up so far, of all the user's artists."""
    done, total = conn.execute(
        """SELECT coalesce(sum(a.details_fetched_at IS NOT NULL), 0), count(*)
           FROM user_artists ua JOIN artists a ON a.id = ua.artist_id
           WHERE ua.user_id = ?""", (user_id,)).fetchone()
    return Status(done, total)


def next_artists(conn: sqlite3.Connection, user_id: int, limit: int = 100
                 ) -> list[tuple[int, str, str | None, str | None]]:
    """(artist id, name, Spotify id, one of its tracks' Spotify ids) still to look up."""
    return [tuple(r) for r in conn.execute(
        """SELECT a.id, a.name, a.spotify_id,
                  (SELECT t.spotify_id FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
                   WHERE ut.user_id = ua.user_id AND t.artist_id = a.id
                     AND t.spotify_id IS NOT NULL ORDER BY ut.plays DESC LIMIT 1)
           FROM user_artists ua JOIN artists a ON a.id = ua.artist_id
           WHERE ua.user_id = ? AND a.details_fetched_at IS NULL
           ORDER BY ua.plays DESC, a.id LIMIT ?""", (user_id, limit))]


def mark_done(conn: sqlite3.Connection, artist_id: int) -> None:
    """Nothing more can be learnt about this artist (no track with an id, or unknown)."""
    with transaction(conn):
        conn.execute("UPDATE artists SET details_fetched_at = unixepoch() WHERE id = ?",
                     (artist_id,))


def link_artist(conn: sqlite3.Connection, artist_id: int, track: dict[str, Any]) -> int | None:
    """Give a name-only artist the Spotify id a track of theirs names; the id it now has.

    When Spotify's artist is here already (from polling), the two are merged into it. None
    when the track does not credit an artist of that name.
    """
    name = conn.execute("SELECT name FROM artists WHERE id = ?", (artist_id,)).fetchone()[0]
    wanted = identity.normalize(name)
    credited = [a for a in track.get("artists") or []
                if a.get("id") and identity.normalize(a.get("name")) == wanted]
    if not credited:
        return None
    spotify_id = credited[0]["id"]
    with transaction(conn):
        album = track.get("album") or {}
        image = sync.pick_image(album.get("images"))
        if album.get("id") or image:
            # The lookup also tells the album's cover and date: keep them while we are here.
            conn.execute(
                """UPDATE albums SET image_url = coalesce(image_url, ?),
                       release_date = coalesce(release_date, ?)
                   WHERE id = (SELECT album_id FROM tracks WHERE spotify_id = ?)""",
                (image, album.get("release_date"), track.get("id")))
        existing = conn.execute("SELECT id FROM artists WHERE spotify_id = ?",
                                (spotify_id,)).fetchone()
        if existing is None:
            conn.execute("UPDATE artists SET spotify_id = ? WHERE id = ?", (spotify_id, artist_id))
            return artist_id
        merge_artist(conn, artist_id, existing[0])
        return existing[0]


def merge_artist(conn: sqlite3.Connection, old: int, new: int) -> None:
    """Fold one artist row into another: plays, tracks, credits and totals (in a transaction)."""
    listeners = [r[0] for r in conn.execute(
        "SELECT user_id FROM user_artists WHERE artist_id = ?", (old,))]
    for user_id in listeners:
        conn.execute("UPDATE plays SET artist_id = ? WHERE user_id = ? AND artist_id = ?",
                     (new, user_id, old))
        conn.execute(
            """INSERT INTO user_artists (user_id, artist_id, plays, ms_played, first_played,
                                         last_played)
               SELECT user_id, ?, plays, ms_played, first_played, last_played FROM user_artists
               WHERE user_id = ? AND artist_id = ? AND true
               ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                   ms_played = ms_played + excluded.ms_played,
                   first_played = min(first_played, excluded.first_played),
                   last_played = max(last_played, excluded.last_played)""",
            (new, user_id, old))
        conn.execute("DELETE FROM user_artists WHERE user_id = ? AND artist_id = ?",
                     (user_id, old))
        conn.execute(
            """INSERT INTO artist_months (user_id, artist_id, month, plays, ms_played)
               SELECT user_id, ?, month, plays, ms_played FROM artist_months
               WHERE user_id = ? AND artist_id = ? AND true
               ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                   ms_played = ms_played + excluded.ms_played""", (new, user_id, old))
        conn.execute("DELETE FROM artist_months WHERE user_id = ? AND artist_id = ?",
                     (user_id, old))
        history.bump_version(conn, user_id)
    conn.execute("UPDATE tracks SET artist_id = ? WHERE artist_id = ?", (new, old))
    conn.execute("UPDATE OR IGNORE track_artists SET artist_id = ? WHERE artist_id = ?",
                 (new, old))
    conn.execute("UPDATE albums SET artist_id = ? WHERE artist_id = ?", (new, old))
    conn.execute("UPDATE top_snapshots SET artist_id = ? WHERE artist_id = ?", (new, old))
    conn.execute("DELETE FROM artist_genres WHERE artist_id = ?", (old,))
    conn.execute("DELETE FROM track_artists WHERE artist_id = ?", (old,))
    conn.execute("DELETE FROM artists WHERE id = ?", (old,))


async def look_up(ctx: JobContext) -> dict[str, Any]:
    """Look up the user's artists until none is left, paced; resumable at any point."""
    services, user_id = ctx.services, ctx.job.user_id
    client, pacer = services.spotify, services.scheduler.pacer
    start = await ctx.db.run(status, user_id)
    ctx.progress("Looking up artist details", 0, start.missing, force=True)
    done = 0
    while batch := await ctx.db.run(next_artists, user_id):
        for artist_id, _, spotify_id, track_id in batch:
            try:
                if spotify_id is None:
                    if track_id is None:
                        await ctx.db.run(mark_done, artist_id)
                    else:
                        await pacer.wait()
                        track = await accounts.with_token(
                            ctx.db, client, user_id, lambda t, i=track_id: client.track(t, i))
                        if await ctx.db.run(link_artist, artist_id, track) is None:
                            await ctx.db.run(mark_done, artist_id)
                        # Linked, its details are looked up when the next batch is read.
                else:
                    await pacer.wait()
                    obj = await accounts.with_token(
                        ctx.db, client, user_id, lambda t, i=spotify_id: client.artist(t, i))
                    await ctx.db.run(sync.save_artist_details, artist_id, obj)
            except NotFound:
                await ctx.db.run(mark_done, artist_id)
            except RateLimited as exc:
                if exc.retry_after > MAX_INLINE_WAIT:
                    return {"looked_up": done, "deferred_until": int(time.time()) +
                            exc.retry_after, "message": exc.message}
                ctx.progress(f"Spotify asked us to wait {exc.retry_after} s", force=True)
                await asyncio.sleep(exc.retry_after)
            except ConsentExpired as exc:
                raise jobs.JobError(exc.message) from None
            except SpotifyError as exc:
                # One artist Spotify cannot describe right now must not stop the others.
                log.warning("artist %s lookup failed: %s", artist_id, exc)
                await ctx.db.run(mark_done, artist_id)
            # Counted from the database: a merge can finish two artists at once.
            done = start.missing - (await ctx.db.run(status, user_id)).missing
            ctx.progress("Looking up artist details", done, start.missing)
    return {"looked_up": done}


async def request(services: Any, user_id: int) -> jobs.Job | None:
    """Start the lookups of a user's artists unless they run already or nothing is missing.

    Only a server runs them (the command line leaves them to its scheduler).
    """
    db = services.db
    if services.jobs is None or (await db.run(status, user_id)).missing == 0:
        return None

    def create(conn: sqlite3.Connection) -> jobs.Job | None:
        with transaction(conn):
            if jobs.active(conn, user_id, (KIND,)) is not None:
                return None
            return jobs.create(conn, user_id, KIND)

    job = await db.run(create)
    if job is not None:
        services.jobs.submit(job)
    return job


def due(conn: sqlite3.Connection, user_id: int, now: int) -> bool:
    """True when lookups should start again (missing ones, no job running, no wait pending)."""
    last = jobs.latest(conn, user_id, (KIND,))
    if last is not None and last.active:
        return False
    if last is not None and last.result and last.result.get("deferred_until", 0) > now:
        return False
    return status(conn, user_id).missing > 0
