"""Connections and numbered migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtm import db


def test_migrations_on_empty_database(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "new.sqlite3")
    applied = db.migrate(conn)
    assert applied == [name for _, name, _ in db.migrations()]
    assert db.schema_version(conn) == db.migrations()[-1][0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "tokens", "plays", "tracks", "artists", "albums", "genres", "sync_runs",
            "playlists", "preferences", "user_tracks", "listening_days"} <= tables


def test_migrations_on_existing_database_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = db.connect(path)
    db.migrate(conn)
    conn.execute("INSERT INTO users (spotify_id, display_name, created_at) VALUES ('a', 'A', 1)")
    conn.close()
    again = db.connect(path)
    assert db.migrate(again) == []
    assert again.execute("SELECT display_name FROM users").fetchone()[0] == "A"


def test_failed_migration_leaves_previous_version(tmp_path: Path, monkeypatch) -> None:
    conn = db.connect(tmp_path / "x.sqlite3")
    good = db.migrations()
    broken = (good[-1][0] + 1, "9999_broken.sql", "CREATE TABLE ok (x);\nNOT SQL AT ALL;")
    monkeypatch.setattr(db, "migrations", lambda: [*good, broken])
    with pytest.raises(sqlite3.OperationalError):
        db.migrate(conn)
    assert db.schema_version(conn) == good[-1][0]
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ok'").fetchone()[0] == 0


def test_connection_settings(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "p.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000


def test_transaction_rolls_back_on_error(conn: sqlite3.Connection) -> None:
    with pytest.raises(RuntimeError), db.transaction(conn):
        conn.execute("INSERT INTO users (spotify_id, display_name, created_at) "
                     "VALUES ('b', 'B', 1)")
        raise RuntimeError("boom")
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 0


async def test_database_runs_in_thread_pool(tmp_path: Path) -> None:
    database = db.Database(tmp_path / "pool.sqlite3")
    version = await database.run(lambda c: (db.migrate(c), db.schema_version(c))[1])
    assert version == db.migrations()[-1][0]
    database.close()


def test_background_work_waits_out_a_long_write_that_a_request_would_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's writes outlast another writer holding the lock past the requests' patience."""
    import threading
    import time as clock

    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(db, "PATIENT_TIMEOUT_MS", 5_000)
    path = tmp_path / "busy.sqlite3"
    setup = db.connect(path)
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    pool = db.Database(path)
    holder = db.connect(path)
    holder.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.6, lambda: holder.execute("COMMIT"))

    def write(conn: sqlite3.Connection) -> None:
        with db.transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")

    try:
        with pytest.raises(db.DatabaseUnavailable):
            pool.call(write)
        released.start()
        started = clock.monotonic()
        pool.patient().call(write)
        assert clock.monotonic() - started >= 0.3
        # The connection is back to the requests' patience afterwards.
        assert pool.call(lambda c: c.execute("PRAGMA busy_timeout").fetchone()[0]) == 100
        assert pool.call(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 1
    finally:
        released.join()
        holder.close()
        pool.close()


def test_a_step_sqlite_refuses_as_locked_is_tried_again() -> None:
    """Two processes switching one new file to WAL: the loser is told "locked" at once."""
    answers = [sqlite3.OperationalError("database is locked")] * 2 + ["wal"]

    def step() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert db.retry_while_busy(step, seconds=5) == "wal"
    assert answers == []


def test_other_errors_and_a_lock_past_the_deadline_are_not_hidden() -> None:
    def broken() -> None:
        raise sqlite3.OperationalError("no such table: t")

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.retry_while_busy(broken, seconds=5)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        db.retry_while_busy(locked, seconds=0.05)
