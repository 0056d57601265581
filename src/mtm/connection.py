"""The Spotify connection as Settings shows it, and "sync now" as a background job."""

from __future__ import annotations

import calendar
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from mtm import jobs, leases, quota, sync, users
from mtm.db import transaction

log = logging.getLogger("mtm.connection")

# Spotify refresh tokens stop working six months after the user consented.
CONSENT_MONTHS = 6
WARN_DAYS = 14
DAY = 86_400
# What each permission lets this app do, in words.
SCOPE_LABELS = {
    "user-read-recently-played": "see the tracks you played recently",
    "user-top-read": "see your top artists and tracks",
    "playlist-modify-private": "create and change your private playlists",
    "playlist-modify-public": "create and change your public playlists",
    "playlist-read-private": "see your private playlists",
    "user-read-private": "see your account's country and subscription",
    "user-read-email": "see your email address",
    "user-library-modify": "remove items from your library (how playlists are deleted)",
}
# The feature each permission the app asks for serves, for Settings to say what is missing.
FEATURES = {
    "user-read-recently-played": "recording your plays",
    "user-top-read": "daily snapshots of your top tracks and artists",
    "playlist-modify-private": "making playlists and renaming them",
    "user-library-modify": "deleting playlists this app made",
}
LIBRARY_SCOPE = "user-library-modify"


def add_months(ts: int, months: int) -> int:
    """The same UTC wall-clock time `months` calendar months later (clamped to month end)."""
    moment = datetime.fromtimestamp(ts, UTC)
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


@dataclass(frozen=True)
class Connection:
    """The user's link to Spotify: account, scopes, and when their consent runs out."""

    spotify_id: str
    display_name: str
    connected: bool
    scopes: tuple[str, ...]
    consented_at: int | None
    consent_expires_at: int | None
    reconnect_needed: bool
    now: int
    # When the app's used-up daily Spotify quota resets; None while requests are allowed.
    quota_until: int | None = None

    @property
    def missing(self) -> list[tuple[str, str]]:
        """(scope, feature) of every permission the app uses that this sign-in lacks."""
        if not self.connected:
            return []
        return [(scope, feature) for scope, feature in FEATURES.items()
                if scope not in self.scopes]

    @property
    def seconds_left(self) -> int | None:
        """Seconds until the consent expires (negative once it has)."""
        return None if self.consent_expires_at is None else self.consent_expires_at - self.now

    @property
    def expired(self) -> bool:
        """True once Spotify will refuse the refresh token."""
        left = self.seconds_left
        return left is not None and left <= 0

    @property
    def expiring_soon(self) -> bool:
        """True in the last two weeks before the consent expires."""
        left = self.seconds_left
        return left is not None and 0 < left < WARN_DAYS * DAY

    @property
    def needs_reconnect(self) -> bool:
        """True when signing in with Spotify again would help (or is required)."""
        return (self.reconnect_needed or not self.connected or self.expired
                or self.expiring_soon or bool(self.missing))

    @property
    def time_left(self) -> str:
        """How long the consent has left, in words."""
        left = self.seconds_left
        if left is None:
            return ""
        if left <= 0:
            return "expired"
        days = left // DAY
        if days == 0:
            return "less than a day left"
        return f"{days} day{'s' if days != 1 else ''} left"

    def expires_label(self, timezone: str) -> str:
        """The expiry date on the user's calendar."""
        if self.consent_expires_at is None:
            return ""
        return datetime.fromtimestamp(self.consent_expires_at, ZoneInfo(timezone)).strftime(
            "%d %B %Y")


def load(conn: sqlite3.Connection, user_id: int, now: int | None = None) -> Connection:
    """The connection status of a user (tokens themselves never leave the server)."""
    now = int(now if now is not None else time.time())
    user = users.get_user(conn, user_id)
    if user is None:
        raise LookupError(user_id)
    tokens = users.get_tokens(conn, user_id)
    until = quota.exhausted_until(conn, now)
    if tokens is None:
        return Connection(user.spotify_id, user.display_name, False, (), None, None,
                          user.reconnect_needed, now, until)
    return Connection(user.spotify_id, user.display_name, True, tuple(tokens.scope.split()),
                      tokens.consented_at, add_months(tokens.consented_at, CONSENT_MONTHS),
                      user.reconnect_needed, now, until)


def sync_running(conn: sqlite3.Connection, user_id: int, now: int | None = None) -> bool:
    """True while a sync of this user is under way in any process (its run is open and leased)."""
    now = int(now if now is not None else time.time())
    run = sync.latest_run(conn, user_id)
    if run is None or run.outcome != "running":
        return False
    return leases.held_by(conn, user_id, sync.LEASE, now) is not None


def history_lease(conn: sqlite3.Connection, user_id: int,
                  now: int | None = None) -> leases.Lease | None:
    """The lease on the user's history if a live process holds it: what is running."""
    return leases.holding(conn, user_id, sync.LEASE, now)


# --- sync now ---------------------------------------------------------------------------

SYNC = "sync"


def unrecorded_failure(conn: sqlite3.Connection, user_id: int) -> jobs.Job | None:
    """The user's last "sync now" if it ended failed or interrupted (so it recorded no
    finished run) and no run began after it ended: Settings says so, not only the old run."""
    job = jobs.latest(conn, user_id, (SYNC,))
    if job is None or job.state not in ("failed", "interrupted"):
        return None
    run = sync.latest_run(conn, user_id)
    if run is not None and run.started_at > (job.finished_at or job.created_at):
        return None
    return job


def active_sync_job(conn: sqlite3.Connection, user_id: int) -> jobs.Job | None:
    """The user's queued or running "sync now", unless the process running it is gone
    (then it is marked interrupted at once, not after the heartbeat goes stale)."""
    job = jobs.active(conn, user_id, (SYNC,))
    if job is not None and job.state == "running" and jobs.holder_alive(job.holder) is False:
        jobs.close_abandoned(conn)
        job = jobs.active(conn, user_id, (SYNC,))
    return job


class Busy(Exception):
    """A sync of this user is already queued or running."""


def queue_sync(conn: sqlite3.Connection, user_id: int) -> jobs.Job:
    """Queue a "sync now" job, unless a sync of the user is under way anywhere (Busy)."""
    with transaction(conn):
        if active_sync_job(conn, user_id) is not None or sync_running(conn, user_id):
            raise Busy(user_id)
        return jobs.create(conn, user_id, SYNC)


class JobPacer(sync.Pacer):
    """The shared pacer, counting the artist lookups of one sync into its job's progress."""

    def __init__(self, inner: sync.Pacer, ctx: jobs.JobContext) -> None:
        super().__init__(interval=0)
        self.inner, self.ctx = inner, ctx
        self.total: int | None = None

    async def wait(self) -> None:
        """Count the lookup, then wait for the shared pacer."""
        if self.total is None:
            # The first lookup: what is still missing now is what this sync will look up.
            missing = await self.ctx.db.run(sync.artists_missing_details, self.ctx.job.user_id,
                                            sync.ARTIST_DETAILS_PER_RUN)
            self.total = len(missing)
        await self.inner.wait()
        self.ctx.progress("Looking up artist details", self.ctx.progress.done + 1, self.total)


def sync_outcome(run: sync.SyncRun, timezone: str) -> tuple[str, str]:
    """How a finished sync went, in words: (category, message)."""
    if run.outcome == "ok":
        added = run.plays_added
        return "success", ("Sync finished: " + (
            f"{added:,} new play{'s' if added != 1 else ''}." if added else "no new plays."))
    if run.outcome == "deferred":
        when = datetime.fromtimestamp(run.retry_at or 0, ZoneInfo(timezone))
        return "warning", (f"Spotify asked us to wait: {run.error} The sync will be retried at "
                           f"{when:%H:%M}.")
    return "error", f"The sync failed: {run.error}"


async def sync_job(ctx: jobs.JobContext) -> dict[str, Any]:
    """Sync the user now: recent plays, today's top lists, new artists' details."""
    services = ctx.services
    ctx.progress("Fetching your recent plays from Spotify", force=True)
    run = await sync.sync_user(ctx.db, services.spotify, ctx.job.user_id,
                               holder=jobs.make_holder(f"sync-now-{ctx.job.id}"),
                               pacer=JobPacer(services.scheduler.pacer, ctx))
    if run is None:
        lease = await ctx.db.run(history_lease, ctx.job.user_id)
        if lease is not None and lease.kind != "sync":
            raise jobs.JobError(f"{lease.running}, and syncs wait for it. Sync again once it "
                                "has finished.", retryable=True)
        raise jobs.JobError("Another sync of your account started first; its result is shown "
                            "in Settings.")
    return {"run_id": run.id}


def has_scope(conn: sqlite3.Connection, user_id: int, scope: str) -> bool:
    """True when the user's sign-in granted `scope` (a sign-in from before it was asked for
    lacks it until the user reconnects)."""
    tokens = users.get_tokens(conn, user_id)
    return tokens is not None and scope in tokens.scope.split()
