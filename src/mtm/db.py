"""SQLite connections, transactions and numbered migrations."""

from __future__ import annotations

import fcntl
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
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool

from mtm import identity

T = TypeVar("T")
# The pause between two transactions of a long piece of work (breathe), in seconds.
BREATHE_MIN = 0.05
BREATHE_MAX = 0.25


# How long a request waits for another writer before the user is told the database is busy.
BUSY_TIMEOUT_MS = 10_000
# Background work (jobs, scheduled syncs) has no one waiting on it: it waits out a long write,
# such as a big import's, instead of failing.
PATIENT_TIMEOUT_MS = 120_000


class DatabaseUnavailable(RuntimeError):
    """The database could not be opened or is locked beyond the busy timeout."""


def connect(path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """Open a connection in autocommit mode with WAL, foreign keys and a busy timeout.

    `create=False` refuses to make a new, empty database where the file has gone.
    """
    if create or str(path) == ":memory:":
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    else:
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=rw"
        conn = sqlite3.connect(uri, isolation_level=None, check_same_thread=False, timeout=10,
                               uri=True)
    if str(path) != ":memory:":
        _make_private(Path(path))
    conn.row_factory = sqlite3.Row
    identity.register(conn)
    # Before journal_mode: switching a new database to WAL takes a lock, and without a busy
    # timeout a second process starting at the same moment fails with "database is locked".
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
    retry_while_busy(lambda: conn.execute("PRAGMA journal_mode = WAL"))
    conn.execute("PRAGMA foreign_keys = ON")
    # NORMAL is durable across application crashes in WAL mode and much faster than FULL.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def retry_while_busy(step: Callable[[], T], seconds: float | None = None) -> T:
    """Run `step`, again while SQLite says the database is locked, for up to `seconds`.

    Switching a database to WAL while another process does the same can answer "database is
    locked" at once, without waiting in the busy handler, so it is retried here.
    """
    deadline = time.monotonic() + (BUSY_TIMEOUT_MS / 1000 if seconds is None else seconds)
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


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
    """Apply every migration newer than the database, each in its own transaction.

    Safe when several processes start at once: the version is read inside each migration's
    write transaction, so a migration another process applied meanwhile is skipped.
    """
    applied = []
    # Migrations may compute record keys of stored plays in SQL.
    identity.register(conn)
    for number, name, script in migrations():
        if number <= schema_version(conn):
            continue
        # executescript would commit on its own; wrap the statements so a failing
        # migration leaves the database at the previous version.
        conn.execute("BEGIN IMMEDIATE")
        if number <= schema_version(conn):
            conn.execute("ROLLBACK")
            continue
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


@contextmanager
def process_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) across processes on this machine.

    Several workers starting together prepare the database one after another: migrations,
    rollups and the demo history happen once, and the later ones find nothing to do.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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


def file_identity(path: str | Path) -> tuple[int, int] | None:
    """The (device, inode) of a file, None when it is gone: a replaced file has another."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino


class Database:
    """A per-thread connection pool that runs domain functions off the event loop.

    `create=False` (the server) never makes a new, empty database: when the file is deleted or
    replaced under the running app, calls raise DatabaseUnavailable instead of answering from
    an empty file ("no such table") or writing into a deleted one.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        self.create = create
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not self.create and \
                file_identity(self.path) != self._local.identity:
            raise DatabaseUnavailable(f"the database file {self.path} was removed or replaced "
                                      "while the app was running")
        if conn is None:
            try:
                conn = connect(self.path, create=self.create)
            except sqlite3.Error as exc:
                raise DatabaseUnavailable(str(exc)) from exc
            self._local.conn = conn
            self._local.identity = file_identity(self.path)
            with self._lock:
                self._all.append(conn)
        return conn

    def opened_identity(self) -> tuple[int, int] | None:
        """The (device, inode) of the file this thread's connection opened."""
        self.connection()
        return self._local.identity

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

    def call_patiently(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` waiting up to PATIENT_TIMEOUT_MS for the write lock."""
        conn = self.connection()
        conn.execute(f"PRAGMA busy_timeout = {PATIENT_TIMEOUT_MS:d}")
        try:
            return self.call(fn, *args, **kwargs)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")

    def patient(self) -> Patient:
        """This database as background work should use it: waiting out long writes."""
        return Patient(self)

    def close(self) -> None:
        """Close every connection this pool opened."""
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class Patient:
    """A Database whose calls wait up to PATIENT_TIMEOUT_MS for the write lock."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` on this thread's connection, patiently."""
        return self.db.call_patiently(fn, *args, **kwargs)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(conn, ...)` in the thread pool, patiently."""
        return await run_in_threadpool(self.db.call_patiently, fn, *args, **kwargs)

    def patient(self) -> Patient:
        """Already patient."""
        return self
