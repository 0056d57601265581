"""Server-side sign-in sessions: created on sign-in, ended on sign-out, idle and absolute expiry.

The browser's signed cookie carries only a random session id; the database keeps its
SHA-256, whose user it is, when it began and when it was last used.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass

from mtm import users
from mtm.db import transaction

DAY = 86400
# last_seen_at is rewritten at most this often per session: a write on every request would
# queue every page behind SQLite's single writer under load.
TOUCH_SECONDS = 300
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux"))


@dataclass(frozen=True)
class Policy:
    """How long a session lasts unused (idle) and at most after sign-in, in seconds."""

    idle_seconds: int = 14 * DAY
    max_seconds: int = 90 * DAY

    @classmethod
    def from_days(cls, idle_days: int, max_days: int) -> Policy:
        """The policy for settings given in days."""
        return cls(idle_days * DAY, max_days * DAY)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def summarize_agent(user_agent: str | None) -> str | None:
    """A short, harmless summary of a User-Agent header, such as "Firefox on Linux"."""
    if not user_agent:
        return None
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), None)
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), None)
    if browser and system:
        return f"{browser} on {system}"
    # Never store the raw header: it is long and may be anything the client chose.
    return browser or system or re.sub(r"[^A-Za-z0-9 ._-]", "", user_agent)[:40] or None


def start(conn: sqlite3.Connection, user_id: int, now: int, policy: Policy,
          user_agent: str | None = None) -> str:
    """Create a session for a user; return its id (for the cookie only, never stored).

    Sessions past their expiry are deleted on the way, so the table stays small.
    """
    session_id = secrets.token_urlsafe(32)
    with transaction(conn):
        purge_expired(conn, now, policy)
        conn.execute("INSERT INTO sessions (id, user_id, created_at, last_seen_at, user_agent) "
                     "VALUES (?, ?, ?, ?, ?)",
                     (_digest(session_id), user_id, now, now, summarize_agent(user_agent)))
    return session_id


def resume(conn: sqlite3.Connection, session_id: str, now: int, policy: Policy,
           admins: frozenset[str] = frozenset()) -> users.User | None:
    """The user a live session belongs to, else None (an expired session is deleted)."""
    digest = _digest(session_id)
    row = conn.execute("SELECT user_id, created_at, last_seen_at FROM sessions WHERE id = ?",
                       (digest,)).fetchone()
    if row is None:
        return None
    if (now - row["last_seen_at"] > policy.idle_seconds
            or now - row["created_at"] > policy.max_seconds):
        _delete(conn, digest)
        return None
    if now - row["last_seen_at"] >= TOUCH_SECONDS:
        _touch(conn, digest, now)
    return users.get_user(conn, row["user_id"], admins)


def _touch(conn: sqlite3.Connection, digest: str, now: int) -> None:
    with transaction(conn):
        conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (now, digest))


def _delete(conn: sqlite3.Connection, digest: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM sessions WHERE id = ?", (digest,))


def end(conn: sqlite3.Connection, session_id: str) -> None:
    """End one session (signing out)."""
    _delete(conn, _digest(session_id))


def end_all(conn: sqlite3.Connection, user_id: int) -> int:
    """End every session of a user (disconnecting); return how many there were."""
    with transaction(conn):
        return conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,)).rowcount


def purge_expired(conn: sqlite3.Connection, now: int, policy: Policy) -> int:
    """Delete the sessions past either expiry; return how many."""
    with transaction(conn):
        return conn.execute(
            "DELETE FROM sessions WHERE last_seen_at < ? OR created_at < ?",
            (now - policy.idle_seconds, now - policy.max_seconds)).rowcount


def count_for(conn: sqlite3.Connection, user_id: int) -> int:
    """How many sessions a user has (expired ones count until they are purged)."""
    return conn.execute("SELECT count(*) FROM sessions WHERE user_id = ?",
                        (user_id,)).fetchone()[0]
