"""Expiring leases in the database: who may do one piece of work for a user right now.

A lease is one row keyed by (user, name) with its holder and the moment it runs out, so two
processes on one database (the app, `mtm sync`, a second worker) never do the same work at
once. Taking it works when nobody holds it, when its time has passed, when its holder is a
process of this machine that has died (holders are mtm.jobs.make_holder names, so a crash
lets go at once; a holder on another machine lets go at the expiry) or when the taker holds
it already (a renewal). Only the holder can give it back.

Names in use: `sync` (syncs, imports, undos and destructive Settings actions: whatever writes
a user's history) and `playlist:<id>` (the request creating a playlist or adding its tracks).
Each lease also says what holds it (`purpose`: one of PURPOSES), for pages to say so.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from mtm.db import transaction
from mtm.jobs import holder_alive

# What may hold a lease, and how a page says it is running.
PURPOSES = {
    "sync": "A sync of your account",
    "import": "An import of your history",
    "undo": "Undoing an import",
    "restore": "A restore of your account from a backup",
    "clear": "Clearing all your data",
    "disconnect": "Disconnecting your account",
    "timezone": "A change of your time zone",
    "backup": "A backup of your account",
    "token": "A renewal of your Spotify sign-in",
    "playlist": "A playlist change",
}


@dataclass(frozen=True)
class Lease:
    """Who holds a lease, until when, and for what."""

    holder: str
    expires_at: int
    purpose: str | None

    @property
    def kind(self) -> str:
        """One of PURPOSES: the stored purpose, else read from the holder's name."""
        # Leases taken before purposes were stored name it only in the holder (import-3:...).
        kind = self.purpose or self.holder.split(":")[0].split("-")[0]
        return kind if kind in PURPOSES else "sync"

    @property
    def running(self) -> str:
        """What holds it, as a sentence: "A restore of your account ... is running"."""
        return f"{PURPOSES[self.kind]} is running"


def _now(now: int | float | None) -> int:
    return int(time.time()) if now is None else int(now)


def acquire(conn: sqlite3.Connection, user_id: int, name: str, holder: str, *, ttl: int,
            now: int | float | None = None, purpose: str | None = None) -> bool:
    """Take (or renew) the user's lease `name` for `ttl` seconds unless someone else holds it."""
    now = _now(now)
    if purpose is not None and purpose not in PURPOSES:
        raise ValueError(f"unknown lease purpose {purpose!r}")
    with transaction(conn):
        _drop_if_dead(conn, user_id, name)
        conn.execute(
            """INSERT INTO leases (user_id, name, holder, expires_at, purpose)
               VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (user_id, name) DO UPDATE SET holder = excluded.holder,
                   expires_at = excluded.expires_at, purpose = excluded.purpose
               WHERE leases.expires_at <= ? OR leases.holder = excluded.holder""",
            (user_id, name, holder, now + ttl, purpose, now))
        row = conn.execute("SELECT holder FROM leases WHERE user_id = ? AND name = ?",
                           (user_id, name)).fetchone()
    return row is not None and row[0] == holder


def _drop_if_dead(conn: sqlite3.Connection, user_id: int, name: str) -> None:
    # A holder whose process is gone never renews nor releases: its lease is nobody's now.
    row = conn.execute("SELECT holder FROM leases WHERE user_id = ? AND name = ?",
                       (user_id, name)).fetchone()
    if row is not None and holder_alive(row[0]) is False:
        conn.execute("DELETE FROM leases WHERE user_id = ? AND name = ? AND holder = ?",
                     (user_id, name, row[0]))


def holding(conn: sqlite3.Connection, user_id: int, name: str,
            now: int | float | None = None) -> Lease | None:
    """The user's lease `name` if someone alive holds it now (expired or dead: nobody)."""
    row = conn.execute("SELECT holder, expires_at, purpose FROM leases WHERE user_id = ? "
                       "AND name = ? AND expires_at > ?",
                       (user_id, name, _now(now))).fetchone()
    if row is None or holder_alive(row[0]) is False:
        return None
    return Lease(*row)


def held_by(conn: sqlite3.Connection, user_id: int, name: str,
            now: int | float | None = None) -> str | None:
    """Who holds the user's lease `name` now, if anyone (an expired lease is nobody's)."""
    lease = holding(conn, user_id, name, now)
    return lease.holder if lease else None


def release(conn: sqlite3.Connection, user_id: int, name: str, holder: str) -> bool:
    """Give the lease back; False (and nothing changes) when it is not `holder`'s any more."""
    with transaction(conn):
        return conn.execute("DELETE FROM leases WHERE user_id = ? AND name = ? AND holder = ?",
                            (user_id, name, holder)).rowcount == 1
