"""The Spotify connection as Settings shows it, and syncs started by hand from there."""

from __future__ import annotations

import asyncio
import calendar
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mtm import sync, users
from mtm.db import Database
from mtm.scheduler import make_holder
from mtm.spotify.client import SpotifyClient

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
}


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
                or self.expiring_soon)

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
    if tokens is None:
        return Connection(user.spotify_id, user.display_name, False, (), None, None,
                          user.reconnect_needed, now)
    return Connection(user.spotify_id, user.display_name, True, tuple(tokens.scope.split()),
                      tokens.consented_at, add_months(tokens.consented_at, CONSENT_MONTHS),
                      user.reconnect_needed, now)


def sync_running(conn: sqlite3.Connection, user_id: int, now: int | None = None) -> bool:
    """True while a sync of this user is under way in any process (its run is open and leased)."""
    now = int(now if now is not None else time.time())
    run = sync.latest_run(conn, user_id)
    if run is None or run.outcome != "running":
        return False
    return conn.execute("SELECT 1 FROM sync_leases WHERE user_id = ? AND expires_at > ?",
                        (user_id, now)).fetchone() is not None


# --- sync now ---------------------------------------------------------------------------


@dataclass
class Progress:
    """How far a sync started from Settings has got."""

    started_at: float
    lookups_done: int = 0
    lookups_total: int | None = None

    @property
    def percent(self) -> int | None:
        """Share of artist lookups done, once they have started."""
        if not self.lookups_total:
            return None
        return min(100, round(100 * self.lookups_done / self.lookups_total))


class ProgressPacer(sync.Pacer):
    """The shared pacer, counting the artist lookups of one sync as they go out."""

    def __init__(self, inner: sync.Pacer, progress: Progress, db: Database, user_id: int
                 ) -> None:
        super().__init__(interval=0)
        self.inner, self.progress, self.db, self.user_id = inner, progress, db, user_id

    async def wait(self) -> None:
        """Count the lookup, then wait for the shared pacer."""
        if self.progress.lookups_total is None:
            # The first lookup: what is still missing now is what this sync will look up.
            missing = await self.db.run(sync.artists_missing_details, self.user_id,
                                        sync.ARTIST_DETAILS_PER_RUN)
            self.progress.lookups_total = len(missing)
        await self.inner.wait()
        self.progress.lookups_done += 1


@dataclass
class SyncNow:
    """Syncs started from Settings: one per user in this process, referenced until done."""

    _tasks: dict[int, asyncio.Task] = field(default_factory=dict)
    _progress: dict[int, Progress] = field(default_factory=dict)

    def progress(self, user_id: int) -> Progress | None:
        """The progress of this user's sync, while one runs."""
        task = self._tasks.get(user_id)
        return self._progress.get(user_id) if task is not None and not task.done() else None

    def start(self, db: Database, client: SpotifyClient, user_id: int,
              pacer: sync.Pacer | None = None) -> asyncio.Task | None:
        """Start a sync in the background; None if one is already running for the user."""
        if self.progress(user_id) is not None:
            return None
        progress = Progress(time.time())
        paced = ProgressPacer(pacer or sync.Pacer(), progress, db, user_id)
        task = asyncio.create_task(
            sync.sync_user(db, client, user_id, holder=make_holder(f"settings-{user_id}"),
                           pacer=paced), name=f"mtm-sync-now-{user_id}")
        self._tasks[user_id], self._progress[user_id] = task, progress
        task.add_done_callback(lambda done: self._finished(user_id, done))
        return task

    def _finished(self, user_id: int, task: asyncio.Task) -> None:
        if self._tasks.get(user_id) is task:
            del self._tasks[user_id]
            self._progress.pop(user_id, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("sync of user %s started from Settings failed", user_id,
                      exc_info=task.exception())

    async def wait(self, user_id: int) -> None:
        """Wait until this user's sync (if any) has finished."""
        task = self._tasks.get(user_id)
        if task is not None:
            await asyncio.wait([task])
