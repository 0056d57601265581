"""SQLite connections, transactions and numbered migrations."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from mtm import identity

T = TypeVar("T")
# The pause between two transactions of a long piece of work (breathe), in seconds.
BREATHE_MIN = 0.05
BREATHE_MAX = 0.25


class DatabaseUnavailable(RuntimeError):
    """The database could not be opened or is locked beyond the busy timeout."""


def connect(path: str | Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode with WAL, foreign keys and a busy timeout."""
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    if str(path) != ":memory:":
        _make_private(Path(path))
    conn.row_factory = sqlite3.Row
    identity.register(conn)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 10000")
    # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _make_private(path: Path) -> None:
    """The database holds Spotify tokens: readable by this user only.

    SQLite gives the -wal and -shm files the database file's permissions.
    """
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one write transaction: all of it is stored, or none of it."""
    if conn.in_transaction:
        # Nested use joins the outer transaction, so helpers compose.
        yield conn
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def breathe(held: float) -> None:
    """Pause after a transaction that held the write lock `held` seconds, before the next.

    Work done as a run of short transactions would otherwise take the lock again at once:
    a writer waiting in SQLite's busy handler, which sleeps up to 100 ms between tries,
    would rarely find it free. Pausing as long as the lock was held (50-250 ms) lets it in.
    """
    time.sleep(min(max(held, BREATHE_MIN), BREATHE_MAX))


def migrations() -> list[tuple[int, str, str]]:
    """The numbered migration scripts shipped with the package, in order."""
    found = []
    for entry in resources.files("mtm.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of the last migration applied."""
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration newer than the database, each in its own transaction."""
    applied = []
    # Migrations may compute record keys of stored plays in SQL.
    identity.register(conn)
    for number, name, script in migrations():
        if number <= schema_version(conn):
            continue
        # executescript would commit on its own; wrap the statements so a failing
        # migration leaves the database at the previous version.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number:d}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.append(name)
    return applied


def _statements(script: str) -> Iterator[str]:
    """Split a migration script into complete statements."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip() and not buffer.strip().startswith("--"):
        yield buffer


class Database:
    """A per-thread connection pool that runs domain functions off the event loop."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = connect(self.path)
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` on this thread's connection."""
        try:
            return fn(self.connection(), *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "unable to open" in str(exc) or "disk" in str(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` in the thread pool so queries never block the event loop."""
        return await run_in_threadpool(self.call, fn, *args, **kwargs)

    def close(self) -> None:
        """Close every connection this pool opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
