"""The admin page's figures: the one place that reads across users (DESIGN.md).

Everything is read from rollups and small tables (listening_months for plays, the sync log,
imports, jobs, leases), never by counting the plays table, so the page stays fast with
millions of plays; sizes on disk come from the file system.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mtm import imports, instance, jobs, leases, sync

# The table of the instance-wide lease the scheduler holds (migration 0020, mtm.instance).
SCHEDULER_TABLE = "instance_leases"


@dataclass(frozen=True)
class UserStats:
    """One user of the instance, as the admin sees them."""

    id: int
    name: str
    spotify_id: str
    joined_at: int
    # "connected", "reconnect" (Spotify refused the refresh token) or "disconnected".
    connection: str
    plays: int
    # Every stored stream, short ones (under 30 s, not counted as plays) included.
    streams: int
    hidden: int
    month: str
    month_plays: int
    last_sync: sync.SyncRun | None
    syncing: bool
    imports: int
    last_import_at: int | None
    importing: bool
    backup_bytes: int
    backup_files: int


@dataclass(frozen=True)
class SchedulerState:
    """The scheduler's lease and the newest sync run."""

    # False until the lease table exists (an older schema): the state is then unknown.
    known: bool
    holder: str | None
    expires_at: int | None
    beat_at: int | None
    # Whether the holder's process runs: None when it is on another machine or unknown.
    holder_alive: bool | None
    interval: int
    last_run_at: int | None
    # When the lease was read: a lease whose expiry is before it has lapsed.
    checked_at: int

    @property
    def state(self) -> str:
        """"unknown", "off", "none" (nobody holds the lease), "held" or "lapsed"."""
        if not self.known:
            return "unknown"
        if self.holder is None:
            return "off" if self.interval == 0 else "none"
        return "held" if self.holder_alive is not False and not self.lapsed else "lapsed"

    @property
    def lapsed(self) -> bool:
        """The lease ran out without being renewed, or its process is gone."""
        return self.holder_alive is False or (self.expires_at or 0) <= self.checked_at


@dataclass(frozen=True)
class QueueRow:
    """Background jobs of one kind that are not finished."""

    kind: str
    queued: int
    running: int
    oldest_queued_at: int | None


@dataclass(frozen=True)
class Stats:
    """Everything /admin/stats shows."""

    now: int
    users: list[UserStats]
    database_bytes: int
    wal_bytes: int
    # Backups on disk per user id, and files under backups/ that belong to no known user.
    other_backup_bytes: int
    scheduler: SchedulerState
    queue: list[QueueRow]

    @property
    def plays(self) -> int:
        """Plays of every user."""
        return sum(u.plays for u in self.users)

    @property
    def streams(self) -> int:
        """Stored streams of every user."""
        return sum(u.streams for u in self.users)

    @property
    def hidden(self) -> int:
        """Hidden plays of every user."""
        return sum(u.hidden for u in self.users)

    @property
    def imports(self) -> int:
        """Imports of every user."""
        return sum(u.imports for u in self.users)

    @property
    def backup_bytes(self) -> int:
        """Every file under the backups folder."""
        return sum(u.backup_bytes for u in self.users) + self.other_backup_bytes

    @property
    def most_active(self) -> list[UserStats]:
        """Users with plays this month, most first."""
        return sorted((u for u in self.users if u.month_plays > 0),
                      key=lambda u: (-u.month_plays, u.name.casefold(), u.id))

    @property
    def oldest_waiting_at(self) -> int | None:
        """When the job waiting longest was queued."""
        times = [row.oldest_queued_at for row in self.queue if row.oldest_queued_at is not None]
        return min(times) if times else None


# --- SQL: one small read each -------------------------------------------------------------


def _users(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        """SELECT u.id, u.display_name, u.spotify_id, u.created_at, u.reconnect_needed,
                  EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = u.id) AS connected,
                  coalesce(p.timezone, 'UTC') AS timezone
           FROM users u LEFT JOIN preferences p ON p.user_id = u.id ORDER BY u.id""").fetchall()


def _plays(conn: sqlite3.Connection, user_id: int) -> tuple[int, int]:
    """(plays, streams) from the monthly rollup: a few hundred rows, not the plays."""
    return tuple(conn.execute(
        "SELECT coalesce(sum(plays), 0), coalesce(sum(streams), 0) FROM listening_months "
        "WHERE user_id = ?", (user_id,)).fetchone())


def _month_plays(conn: sqlite3.Connection, user_id: int, month: str) -> int:
    return conn.execute(
        "SELECT coalesce(sum(plays), 0) FROM listening_months WHERE user_id = ? AND month = ?",
        (user_id, month)).fetchone()[0]


def _hidden(conn: sqlite3.Connection, user_id: int) -> int:
    # Counted on hidden_plays' own (user, artist) index; no rollup keeps this figure.
    return conn.execute("SELECT count(*) FROM hidden_plays WHERE user_id = ?",
                        (user_id,)).fetchone()[0]


def _imports(conn: sqlite3.Connection, user_id: int) -> tuple[int, int | None]:
    return tuple(conn.execute(
        "SELECT count(*), max(created_at) FROM imports WHERE user_id = ?",
        (user_id,)).fetchone())


def _importing(conn: sqlite3.Connection, user_id: int) -> bool:
    marks = ",".join("?" * len(imports.KINDS))
    return conn.execute(
        f"SELECT EXISTS (SELECT 1 FROM jobs WHERE user_id = ? AND kind IN ({marks}) "
        "AND state IN ('queued', 'running'))", (user_id, *imports.KINDS)).fetchone()[0] == 1


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' "
                        "AND name = ?)", (name,)).fetchone()[0] == 1


def _queue(conn: sqlite3.Connection) -> list[QueueRow]:
    return [QueueRow(*row) for row in conn.execute(
        """SELECT kind, sum(state = 'queued'), sum(state = 'running'),
                  min(CASE WHEN state = 'queued' THEN created_at END)
           FROM jobs WHERE state IN ('queued', 'running') GROUP BY kind ORDER BY kind""")]


# --- the file system ----------------------------------------------------------------------


def file_size(path: Path) -> int:
    """Bytes of a file; 0 when it is not there."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _folder_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of everything under a folder."""
    total = files = 0
    for root, _, names in os.walk(path):
        for name in names:
            total += file_size(Path(root) / name)
            files += 1
    return total, files


def backup_sizes(root: Path) -> dict[int | None, tuple[int, int]]:
    """(bytes, files) on disk under backups/ per user id; None holds what is no user's."""
    found: dict[int | None, tuple[int, int]] = {}
    try:
        entries = list(os.scandir(root))
    except OSError:
        return found
    for entry in entries:
        key = int(entry.name) if entry.is_dir() and entry.name.isdigit() else None
        size = _folder_size(Path(entry.path)) if entry.is_dir() else \
            (file_size(Path(entry.path)), 1)
        before = found.get(key, (0, 0))
        found[key] = (before[0] + size[0], before[1] + size[1])
    return found


# --- the page -----------------------------------------------------------------------------


def _local_month(now: int, timezone: str) -> str:
    return f"{datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(timezone)):%Y-%m}"


def _user_stats(conn: sqlite3.Connection, row: sqlite3.Row, now: int,
                backups: dict[int | None, tuple[int, int]]) -> UserStats:
    user_id = row["id"]
    connection = ("reconnect" if row["reconnect_needed"] else "connected") \
        if row["connected"] else "disconnected"
    # Each user's month is their own calendar month, as their monthly rollup is kept.
    month = _local_month(now, row["timezone"])
    run = sync.latest_run(conn, user_id)
    syncing = run is not None and run.outcome == "running" and \
        leases.held_by(conn, user_id, sync.LEASE, now) is not None
    count, last_import = _imports(conn, user_id)
    return UserStats(user_id, row["display_name"], row["spotify_id"], row["created_at"],
                     connection, *_plays(conn, user_id), _hidden(conn, user_id), month,
                     _month_plays(conn, user_id, month), run, syncing, count, last_import,
                     _importing(conn, user_id), *backups.get(user_id, (0, 0)))


def scheduler_state(conn: sqlite3.Connection, now: int, interval: int,
                    last_run_at: int | None) -> SchedulerState:
    """The scheduler's lease (unknown on a schema before 0020) and the newest sync run."""
    if not _has_table(conn, SCHEDULER_TABLE):
        return SchedulerState(False, None, None, None, None, interval, last_run_at, now)
    lease = instance.get(conn, instance.SCHEDULER)
    if lease is None:
        return SchedulerState(True, None, None, None, None, interval, last_run_at, now)
    return SchedulerState(True, lease.holder, lease.expires_at, lease.beat_at,
                          jobs.holder_alive(lease.holder), interval, last_run_at, now)


def load(conn: sqlite3.Connection, *, now: int, database: Path, backups_dir: Path,
         sync_interval: int) -> Stats:
    """Every figure of the admin page, at `now`."""
    sizes = backup_sizes(backups_dir)
    users = [_user_stats(conn, row, now, sizes) for row in _users(conn)]
    known = {u.id for u in users}
    other = sum(size for key, (size, _) in sizes.items() if key not in known)
    runs = [u.last_sync.started_at for u in users if u.last_sync is not None]
    scheduler = scheduler_state(conn, now, sync_interval, max(runs) if runs else None)
    return Stats(now, users, file_size(database),
                 file_size(database.with_name(database.name + "-wal")), other, scheduler,
                 _queue(conn))


def size_label(size_bytes: int) -> str:
    """A size on disk for people (kB, MB, GB), as backups are listed in Settings."""
    size = float(size_bytes)
    for unit in ("bytes", "kB", "MB"):
        if size < 1000:
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} GB"
