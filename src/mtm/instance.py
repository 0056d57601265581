"""Leases of the whole instance: which one of several workers on one database does a job.

The `scheduler` lease names the worker whose loop syncs everybody. Its holder renews it every
few seconds (`beat_at`); a holder that stops lets go when `expires_at` passes, and one that
died on this machine (mtm.jobs.holder_alive) is replaced at once. A nudge (a sign-in that
wants a pass soon) is the row `scheduler-nudge`, which the holder takes on its next beat.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mtm.db import transaction
from mtm.jobs import holder_alive

SCHEDULER = "scheduler"
NUDGE = "scheduler-nudge"
# A nudge older than this is forgotten: the pass it asked for has happened on its own.
NUDGE_SECONDS = 600


@dataclass(frozen=True)
class Lease:
    """Who holds an instance lease, until when, and when it last said it was alive."""

    name: str
    holder: str
    expires_at: int
    beat_at: int


def get(conn: sqlite3.Connection, name: str) -> Lease | None:
    """The lease row `name`, expired or not."""
    row = conn.execute("SELECT name, holder, expires_at, beat_at FROM instance_leases "
                       "WHERE name = ?", (name,)).fetchone()
    return Lease(*row) if row else None


def acquire(conn: sqlite3.Connection, name: str, holder: str, *, ttl: int, now: int) -> bool:
    """Take or renew the lease for `ttl` seconds; False while another live holder has it."""
    # Read first: the workers that wait (most beats of most workers) take no write lock.
    if _held_by_another(get(conn, name), holder, now):
        return False
    with transaction(conn):
        if _held_by_another(get(conn, name), holder, now):
            return False
        conn.execute(
            """INSERT INTO instance_leases (name, holder, expires_at, beat_at)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                   expires_at = excluded.expires_at, beat_at = excluded.beat_at""",
            (name, holder, now + ttl, now))
    return True


def _held_by_another(lease: Lease | None, holder: str, now: int) -> bool:
    return (lease is not None and lease.holder != holder and lease.expires_at > now
            and holder_alive(lease.holder) is not False)


def release(conn: sqlite3.Connection, name: str, holder: str) -> bool:
    """Give the lease back (only its holder can); True when it did."""
    with transaction(conn):
        return conn.execute("DELETE FROM instance_leases WHERE name = ? AND holder = ?",
                            (name, holder)).rowcount == 1


def nudge(conn: sqlite3.Connection, holder: str, now: int) -> None:
    """Ask the scheduler, whichever worker runs it, for a pass soon."""
    with transaction(conn):
        conn.execute(
            """INSERT INTO instance_leases (name, holder, expires_at, beat_at)
               VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
                   expires_at = excluded.expires_at, beat_at = excluded.beat_at""",
            (NUDGE, holder, now + NUDGE_SECONDS, now))


def take_nudge(conn: sqlite3.Connection, now: int) -> bool:
    """Whether a pass was asked for since the last call (the request is used up)."""
    if get(conn, NUDGE) is None:
        # Read first: most beats find no nudge, and need not wait for the write lock.
        return False
    with transaction(conn):
        row = conn.execute("DELETE FROM instance_leases WHERE name = ? RETURNING expires_at",
                           (NUDGE,)).fetchone()
    return row is not None and row[0] > now
