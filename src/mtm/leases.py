"""Expiring leases in the database: who may do one piece of work for a user right now.

A lease is one row keyed by (user, name) with its holder and the moment it runs out, so two
processes on one database (the app, `mtm sync`, a second worker) never do the same work at
once. Taking it works when nobody holds it, when its time has passed (a crashed holder lets go
by itself) or when the taker holds it already (a renewal). Only the holder can give it back.

Names in use: `sync` (syncs, imports, undos and destructive Settings actions: whatever writes
a user's history) and `playlist:<id>` (the request creating a playlist or adding its tracks).
"""

from __future__ import annotations

import sqlite3
import time

from mtm.db import transaction


def _now(now: int | float | None) -> int:
    return int(time.time()) if now is None else int(now)


def acquire(conn: sqlite3.Connection, user_id: int, name: str, holder: str, *, ttl: int,
            now: int | float | None = None) -> bool:
    """Take (or renew) the user's lease `name` for `ttl` seconds unless someone else holds it."""
    now = _now(now)
    with transaction(conn):
        conn.execute(
            """INSERT INTO leases (user_id, name, holder, expires_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (user_id, name) DO UPDATE SET holder = excluded.holder,
                   expires_at = excluded.expires_at
               WHERE leases.expires_at <= ? OR leases.holder = excluded.holder""",
            (user_id, name, holder, now + ttl, now))
        row = conn.execute("SELECT holder FROM leases WHERE user_id = ? AND name = ?",
                           (user_id, name)).fetchone()
    return row is not None and row[0] == holder


def held_by(conn: sqlite3.Connection, user_id: int, name: str,
            now: int | float | None = None) -> str | None:
    """Who holds the user's lease `name` now, if anyone (an expired lease is nobody's)."""
    row = conn.execute("SELECT holder FROM leases WHERE user_id = ? AND name = ? "
                       "AND expires_at > ?", (user_id, name, _now(now))).fetchone()
    return row[0] if row else None


def release(conn: sqlite3.Connection, user_id: int, name: str, holder: str) -> bool:
    """Give the lease back; False (and nothing changes) when it is not `holder`'s any more."""
    with transaction(conn):
        return conn.execute("DELETE FROM leases WHERE user_id = ? AND name = ? AND holder = ?",
                            (user_id, name, holder)).rowcount == 1
