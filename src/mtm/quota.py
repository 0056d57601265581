"""Spotify's daily request quota for this app: once used up, nobody calls Spotify until it
resets, and Settings says so."""

from __future__ import annotations

import sqlite3
import time

from mtm.db import transaction


def exhausted_until(conn: sqlite3.Connection, now: int | None = None) -> int | None:
    """When the used-up quota resets (unix seconds), or None while requests are allowed."""
    now = int(now if now is not None else time.time())
    row = conn.execute("SELECT until FROM spotify_quota WHERE id = 1 AND until > ?",
                       (now,)).fetchone()
    return row[0] if row else None


def record_exhausted(conn: sqlite3.Connection, until: int, now: int | None = None) -> None:
    """Note that Spotify refused for the quota until `until`; a later reset time wins."""
    now = int(now if now is not None else time.time())
    with transaction(conn):
        conn.execute(
            """INSERT INTO spotify_quota (id, until, noticed_at) VALUES (1, ?, ?)
               ON CONFLICT(id) DO UPDATE SET noticed_at = excluded.noticed_at,
                   until = CASE WHEN spotify_quota.until > excluded.noticed_at
                                THEN max(spotify_quota.until, excluded.until)
                                ELSE excluded.until END""",
            (until, now))
