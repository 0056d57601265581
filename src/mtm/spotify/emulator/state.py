"""The emulator's durable state: tokens and playlists in one SQLite file (or in memory)."""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtm import db as database

ACCESS_TOKEN_SECONDS = 3600
# Spotify ends a consent six months after it was given, whatever the refreshes in between.
CONSENT_SECONDS = 183 * 86400
# Tokens that can no longer be used are kept this long, then dropped so the state stays small.
PRUNE_AFTER_SECONDS = 86400
STATE_VERSION = 1
# Shared by every emulator on one file (so by every worker of `mtm serve --workers N`: a code
# issued by one worker's page is exchanged by whichever worker answers /callback). Fault
# switches and the request log stay in memory, since each belongs to one process.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS codes (code TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL, code_challenge TEXT NOT NULL, "
    "scope TEXT NOT NULL, expires_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access_tokens (token TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "scope TEXT NOT NULL, expires_at REAL NOT NULL)",
    # used_at is NULL until the token is exchanged; expired is set by expire_consent().
    "CREATE TABLE IF NOT EXISTS refresh_tokens (token TEXT PRIMARY KEY, user TEXT NOT NULL, "
    "scope TEXT NOT NULL, consented_at REAL NOT NULL, used_at REAL, "
    "expired INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS playlists (id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, "
    "owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL, "
    "public INTEGER NOT NULL, followed INTEGER NOT NULL, version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS playlist_items (playlist_id TEXT NOT NULL "
    "REFERENCES playlists (id), position INTEGER NOT NULL, uri TEXT NOT NULL, "
    "added_at_ms INTEGER NOT NULL, PRIMARY KEY (playlist_id, position)) WITHOUT ROWID",
)
_PLAYLIST_COLUMNS = ("SELECT p.id, p.owner, p.name, p.description, p.public, p.followed, "
                     "p.version, (SELECT COUNT(*) FROM playlist_items i "
                     "WHERE i.playlist_id = p.id) FROM playlists p ")


@dataclass(frozen=True)
class Consent:
    """What a user agreed to, and when (refreshes keep the moment of the first consent)."""

    user: str
    scope: str
    consented_at: float


@dataclass(frozen=True)
class Access:
    """A valid access token's user and scopes."""

    user: str
    scope: frozenset[str]
    expires_at: float


@dataclass(frozen=True)
class Playlist:
    """A playlist row with its item count."""

    id: str
    owner: str
    name: str
    description: str
    public: bool
    followed: bool
    version: int
    total: int


class State:
    """One connection to the state file, used under a lock: without a file it is the only copy."""

    def __init__(self, path: Path | None, seed: int) -> None:
        self.path = path
        # Reentrant so helpers can nest; no block under it awaits, so coroutines never interleave.
        self._lock = threading.RLock()
        self._db = _open(path, seed)

    def close(self) -> None:
        """Close the state database."""
        with self._lock:
            self._db.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The state database with one consistent snapshot for the reads of a request."""
        with self._lock:
            if self._db.in_transaction:
                yield self._db
                return
            self._db.execute("BEGIN")
            try:
                yield self._db
            finally:
                self._db.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A short write transaction, locked from its start so read-modify-write is atomic."""
        with self._lock, database.transaction(self._db) as db:
            yield db

    # The catalogue

    def catalogue_artists(self) -> int | None:
        """The catalogue size `mtm demo-data` recorded, None when it never did."""
        with self.read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'artists'").fetchone()
        return None if row is None else int(row[0])

    def record_catalogue_artists(self, artists: int) -> None:
        """Remember the catalogue size the demo history was generated from."""
        with self.write() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('artists', ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(artists),))

    # Authorization codes

    def save_code(self, code: str, terms: tuple[str, str, str, str, str, float],
                  now: float) -> None:
        """Keep a code's terms (user, client id, redirect URI, challenge, scope, expiry)."""
        with self.write() as db:
            db.execute("DELETE FROM codes WHERE expires_at < ?", (now,))
            db.execute("INSERT INTO codes (code, user, client_id, redirect_uri, code_challenge, "
                       "scope, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)", (code, *terms))

    def take_code(self, code: str) -> tuple[str, str, str, str, str, float] | None:
        """A code's terms, used up: a code is exchanged once, even when that fails."""
        with self.write() as db:
            row = db.execute("DELETE FROM codes WHERE code = ? RETURNING user, client_id, "
                             "redirect_uri, code_challenge, scope, expires_at",
                             (code,)).fetchone()
        return tuple(row) if row else None

    # Tokens

    def issue(self, consent: Consent, now: float) -> tuple[str, str]:
        """A new access and refresh token for `consent`."""
        with self.write() as db:
            return _issue(db, consent, now)

    def rotate(self, token: str, now: float) -> tuple[Consent | None, tuple[str, str] | None]:
        """Spend a refresh token: its consent, and new tokens while the consent lasts."""
        with self.write() as db:
            # A refresh token is single use, even when this attempt fails; the conditional
            # update lets exactly one of several emulators racing on the same token have it.
            row = db.execute("UPDATE refresh_tokens SET used_at = ? "
                             "WHERE token = ? AND used_at IS NULL "
                             "RETURNING user, scope, consented_at, expired",
                             (now, token)).fetchone()
            if row is None:
                return None, None
            consent = Consent(row[0], row[1], row[2])
            if row[3] or now > consent.consented_at + CONSENT_SECONDS:
                return consent, None
            return consent, _issue(db, consent, now)

    def access(self, token: str) -> Access | None:
        """The access token's grant, expired or not; None when it was never issued."""
        with self.read() as db:
            row = db.execute("SELECT user, scope, expires_at FROM access_tokens WHERE token = ?",
                             (token,)).fetchone()
        if row is None:
            return None
        return Access(row["user"], frozenset(row["scope"].split()), row["expires_at"])

    def expire_consent(self) -> None:
        """Make every refresh token issued so far answer invalid_grant."""
        with self.write() as db:
            db.execute("UPDATE refresh_tokens SET expired = 1")

    def expire_access_tokens(self, now: float) -> None:
        """Make every access token issued so far expire at `now`."""
        with self.write() as db:
            db.execute("UPDATE access_tokens SET expires_at = MIN(expires_at, ?)", (now,))

    # Playlists

    def playlists(self, db: sqlite3.Connection, where: str, params: tuple[Any, ...]
                  ) -> list[Playlist]:
        """Playlists matching a fixed WHERE clause written by this package, never a request."""
        rows = db.execute(_PLAYLIST_COLUMNS + where, params)
        return [Playlist(r[0], r[1], r[2], r[3], bool(r[4]), bool(r[5]), r[6], r[7])
                for r in rows]

    def playlist(self, db: sqlite3.Connection, playlist_id: str) -> Playlist | None:
        """One playlist, or None."""
        found = self.playlists(db, "WHERE p.id = ?", (playlist_id,))
        return found[0] if found else None

    def owned(self, db: sqlite3.Connection, owner: str) -> list[Playlist]:
        """The playlists `owner` still has in their library, oldest first."""
        return self.playlists(db, "WHERE p.owner = ? AND p.followed ORDER BY p.seq", (owner,))

    def items(self, db: sqlite3.Connection, playlist_id: str, offset: int, limit: int
              ) -> list[tuple[str, int]]:
        """A page of (uri, added_at_ms) in playlist order."""
        return [tuple(r) for r in db.execute(
            "SELECT uri, added_at_ms FROM playlist_items WHERE playlist_id = ? "
            "ORDER BY position LIMIT ? OFFSET ?", (playlist_id, limit, offset))]

    def create(self, owner: str, name: str, description: str, public: bool,
               make_id: Any) -> Playlist:
        """A new empty playlist; `make_id(seq)` names it from its number in the shared state."""
        with self.write() as db:
            # Numbered in the shared state, so emulators on one file never reuse an id.
            seq = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM playlists").fetchone()[0]
            playlist = Playlist(make_id(seq), owner, name, description, public, True, 1, 0)
            db.execute("INSERT INTO playlists (id, seq, owner, name, description, public, "
                       "followed, version) VALUES (?, ?, ?, ?, ?, ?, 1, 1)",
                       (playlist.id, seq, owner, name, description, int(public)))
        return playlist

    def insert_items(self, playlist_id: str, uris: list[str], position: int | None,
                     now_ms: int) -> int:
        """Insert `uris` at `position` (the end when None); the playlist's new version."""
        count = len(uris)
        with self.write() as db:
            total = db.execute("SELECT COUNT(*) FROM playlist_items WHERE playlist_id = ?",
                               (playlist_id,)).fetchone()[0]
            at = total if position is None else max(0, min(position, total))
            # SQLite checks the key row by row, so shift the tail through negative positions.
            db.execute("UPDATE playlist_items SET position = -position - 1 - ? "
                       "WHERE playlist_id = ? AND position >= ?", (count, playlist_id, at))
            db.execute("UPDATE playlist_items SET position = -position - 1 "
                       "WHERE playlist_id = ? AND position < 0", (playlist_id,))
            db.executemany("INSERT INTO playlist_items (playlist_id, position, uri, added_at_ms) "
                           "VALUES (?, ?, ?, ?)",
                           [(playlist_id, at + i, uri, now_ms) for i, uri in enumerate(uris)])
            return db.execute("UPDATE playlists SET version = version + 1 WHERE id = ? "
                              "RETURNING version", (playlist_id,)).fetchone()[0]

    def change(self, playlist_id: str, changes: dict[str, Any]) -> None:
        """Set name, description and public (only those keys) and bump the version."""
        # The column names come from this fixed set, never from the request.
        columns = [c for c in ("name", "description", "public") if c in changes]
        assignments = "".join(f"{column} = ?, " for column in columns)
        with self.write() as db:
            db.execute(f"UPDATE playlists SET {assignments}version = version + 1 WHERE id = ?",
                       (*(changes[c] for c in columns), playlist_id))

    def unfollow(self, owner: str, playlist_ids: list[str]) -> None:
        """Remove the owner's playlists from their library: Spotify's way to delete one."""
        with self.write() as db:
            db.executemany("UPDATE playlists SET followed = 0 WHERE id = ? AND owner = ?",
                           [(playlist_id, owner) for playlist_id in playlist_ids])

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every playlist by id, oldest first, with its items in order."""
        with self.read() as db:
            rows = db.execute("SELECT * FROM playlists ORDER BY seq").fetchall()
            entries = db.execute("SELECT playlist_id, uri, added_at_ms FROM playlist_items "
                                 "ORDER BY playlist_id, position").fetchall()
        found = {row["id"]: {
            "name": row["name"], "description": row["description"],
            "public": bool(row["public"]), "owner": row["owner"], "items": [], "added_at": [],
            "followed": bool(row["followed"]), "version": row["version"],
        } for row in rows}
        for playlist_id, uri, added_at_ms in entries:
            found[playlist_id]["items"].append(uri)
            found[playlist_id]["added_at"].append(added_at_ms)
        return found


def _open(path: Path | None, seed: int) -> sqlite3.Connection:
    """Open (creating when new) the state database, or an in-memory one without a path."""
    conn = database.connect(path if path is not None else ":memory:")
    try:
        with database.transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, STATE_VERSION):
                raise ValueError(f"{path} holds emulator state version {version}; this "
                                 f"emulator reads version {STATE_VERSION}")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {STATE_VERSION:d}")
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('seed', ?)",
                         (str(seed),))
            stored = conn.execute("SELECT value FROM meta WHERE key = 'seed'").fetchone()[0]
            # Playlists name tracks of one catalogue, and the seed decides the catalogue.
            if stored != str(seed):
                raise ValueError(f"{path} belongs to an emulator with seed {stored}, "
                                 f"not {seed}")
    except BaseException:
        conn.close()
        raise
    return conn


def _issue(db: sqlite3.Connection, consent: Consent, now: float) -> tuple[str, str]:
    """Store a new access and refresh token for `consent` in the open transaction."""
    access = "BQ" + secrets.token_urlsafe(40)
    refresh = "AQ" + secrets.token_urlsafe(48)
    db.execute("INSERT INTO access_tokens (token, user, scope, expires_at) VALUES (?, ?, ?, ?)",
               (access, consent.user, consent.scope, now + ACCESS_TOKEN_SECONDS))
    db.execute("INSERT INTO refresh_tokens (token, user, scope, consented_at) "
               "VALUES (?, ?, ?, ?)", (refresh, consent.user, consent.scope,
                                       consent.consented_at))
    # Demo mode runs for months and refreshes hourly: drop tokens nobody can use any more.
    stale = now - PRUNE_AFTER_SECONDS
    db.execute("DELETE FROM access_tokens WHERE expires_at < ?", (stale,))
    db.execute("DELETE FROM refresh_tokens WHERE used_at < ? OR consented_at < ?",
               (stale, stale - CONSENT_SECONDS))
    return access, refresh
