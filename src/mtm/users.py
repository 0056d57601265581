"""Users, their server-side Spotify tokens and their preferences."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from mtm.db import transaction


@dataclass(frozen=True)
class User:
    """A signed-up listener."""

    id: int
    spotify_id: str
    display_name: str
    reconnect_needed: bool
    is_admin: bool = False


@dataclass(frozen=True)
class StoredTokens:
    """The tokens kept for a user; never sent to a browser."""

    access_token: str
    refresh_token: str
    expires_at: int
    scope: str
    consented_at: int


def get_user(conn: sqlite3.Connection, user_id: int, admins: frozenset[str] = frozenset()
             ) -> User | None:
    """Load a user by id."""
    row = conn.execute(
        "SELECT id, spotify_id, display_name, reconnect_needed FROM users WHERE id = ?",
        (user_id,)).fetchone()
    if row is None:
        return None
    return User(row["id"], row["spotify_id"], row["display_name"],
                bool(row["reconnect_needed"]), row["spotify_id"] in admins)


def upsert_user(conn: sqlite3.Connection, spotify_id: str, display_name: str,
                country: str | None = None, image_url: str | None = None,
                account_id: str | None = None) -> int:
    """Create or update a user from their Spotify profile; return the id.

    A returning user is found by `account_id` when Spotify sends one (it is stable even if
    the user id is not), else by user id; the match then learns the other.
    """
    now = int(time.time())
    with transaction(conn):
        user_id = _user_by_account(conn, account_id) if account_id else None
        if user_id is None:
            user_id = _user_by_spotify_id(conn, spotify_id)
        if user_id is None:
            user_id = conn.execute(
                """INSERT INTO users (spotify_id, account_id, display_name, country, image_url,
                                      created_at, last_login_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id""",
                (spotify_id, account_id, display_name, country, image_url, now, now)
            ).fetchone()[0]
        else:
            conn.execute(
                """UPDATE users SET spotify_id = ?, account_id = coalesce(?, account_id),
                       display_name = ?, country = coalesce(?, country),
                       image_url = coalesce(?, image_url), last_login_at = ?
                   WHERE id = ?""",
                (spotify_id, account_id, display_name, country, image_url, now, user_id))
        conn.execute("INSERT INTO preferences (user_id) VALUES (?) ON CONFLICT DO NOTHING",
                     (user_id,))
    return user_id


def _user_by_account(conn: sqlite3.Connection, account_id: str) -> int | None:
    row = conn.execute("SELECT id FROM users WHERE account_id = ?", (account_id,)).fetchone()
    return row[0] if row else None


def _user_by_spotify_id(conn: sqlite3.Connection, spotify_id: str) -> int | None:
    row = conn.execute("SELECT id FROM users WHERE spotify_id = ?", (spotify_id,)).fetchone()
    return row[0] if row else None


def save_tokens(conn: sqlite3.Connection, user_id: int, *, access_token: str,
                refresh_token: str, expires_at: int, scope: str,
                new_consent: bool = False) -> None:
    """Store a user's tokens; a new consent restarts the six-month refresh-token clock."""
    now = int(time.time())
    with transaction(conn):
        conn.execute(
            """INSERT INTO tokens (user_id, access_token, refresh_token, expires_at, scope,
                                   consented_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET access_token = excluded.access_token,
                   refresh_token = excluded.refresh_token, expires_at = excluded.expires_at,
                   scope = excluded.scope, updated_at = excluded.updated_at,
                   consented_at = CASE WHEN ? THEN excluded.consented_at
                                       ELSE tokens.consented_at END""",
            (user_id, access_token, refresh_token, expires_at, scope, now, now, new_consent))
        if new_consent:
            conn.execute("UPDATE users SET reconnect_needed = 0 WHERE id = ?", (user_id,))


def get_tokens(conn: sqlite3.Connection, user_id: int) -> StoredTokens | None:
    """The user's stored tokens, if connected."""
    row = conn.execute(
        """SELECT access_token, refresh_token, expires_at, scope, consented_at
           FROM tokens WHERE user_id = ?""", (user_id,)).fetchone()
    return StoredTokens(*row) if row else None


def mark_reconnect_needed(conn: sqlite3.Connection, user_id: int) -> None:
    """Flag that Spotify refused the refresh token; history and settings stay."""
    with transaction(conn):
        conn.execute("UPDATE users SET reconnect_needed = 1 WHERE id = ?", (user_id,))


def forget_tokens(conn: sqlite3.Connection, user_id: int) -> None:
    """Delete a user's tokens (disconnect)."""
    with transaction(conn):
        conn.execute("DELETE FROM tokens WHERE user_id = ?", (user_id,))
