"""The one lease mechanism: expiring, held by one holder per (user, name), and its migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtm import db, leases, users


@pytest.fixture
def other_user(conn: sqlite3.Connection) -> int:
    return users.upsert_user(conn, "listener-2", "Listener Two")


def test_lease_expires(conn: sqlite3.Connection, user_id: int) -> None:
    assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1000)
    assert not leases.acquire(conn, user_id, "sync", "b", ttl=60, now=1059)
    assert leases.held_by(conn, user_id, "sync", now=1059) == "a"
    # A crashed holder never gives it back: at its expiry anyone may take it.
    assert leases.held_by(conn, user_id, "sync", now=1060) is None
    assert leases.acquire(conn, user_id, "sync", "b", ttl=60, now=1060)
    assert not leases.release(conn, user_id, "sync", "a")  # not a's any more: nothing happens
    assert leases.held_by(conn, user_id, "sync", now=1061) == "b"
    assert not leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1061)
    assert leases.release(conn, user_id, "sync", "b")
    assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1062)


def test_the_holder_renews(conn: sqlite3.Connection, user_id: int) -> None:
    assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1000)
    assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1050)
    assert leases.held_by(conn, user_id, "sync", now=1100) == "a"
    assert leases.held_by(conn, user_id, "sync", now=1110) is None


def test_leases_are_per_user_and_name(conn: sqlite3.Connection, user_id: int,
                                      other_user: int) -> None:
    assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1000)
    assert leases.acquire(conn, other_user, "sync", "b", ttl=60, now=1000)
    assert leases.acquire(conn, user_id, "playlist:1", "c", ttl=60, now=1000)
    assert leases.held_by(conn, user_id, "sync", now=1000) == "a"
    assert leases.held_by(conn, other_user, "sync", now=1000) == "b"
    assert leases.held_by(conn, user_id, "playlist:1", now=1000) == "c"
    assert leases.held_by(conn, user_id, "playlist:2", now=1000) is None
    # Releasing with the wrong user or name gives back nothing.
    assert not leases.release(conn, other_user, "sync", "a")
    assert not leases.release(conn, user_id, "playlist:1", "a")
    assert leases.held_by(conn, user_id, "sync", now=1000) == "a"


def test_acquire_joins_an_outer_transaction(conn: sqlite3.Connection, user_id: int) -> None:
    with pytest.raises(RuntimeError), db.transaction(conn):
        assert leases.acquire(conn, user_id, "sync", "a", ttl=60, now=1000)
        raise RuntimeError("the rest of the work failed")
    # Rolled back with the work it was taken for.
    assert leases.held_by(conn, user_id, "sync", now=1000) is None


def test_the_migration_moves_the_old_leases(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    everything = db.migrations()
    conn = db.connect(tmp_path / "old.sqlite3")
    monkeypatch.setattr(db, "migrations", lambda: [m for m in everything if m[0] < 9])
    db.migrate(conn)
    assert db.schema_version(conn) < 9
    me = users.upsert_user(conn, "listener-1", "One")
    conn.execute("INSERT INTO sync_leases (user_id, holder, expires_at) VALUES (?, 'sync:h:1:x', "
                 "5000)", (me,))
    for key, lease_until, deleted in (("k1", 4000, None), ("k2", 0, None), ("k3", 4000, 10)):
        conn.execute("INSERT INTO playlists (user_id, name, source, idempotency_key, lease_until, "
                     "deleted_at, created_at, updated_at) VALUES (?, ?, 'current_rotation', ?, "
                     "?, ?, 1, 1)", (me, key, key, lease_until, deleted))
    monkeypatch.setattr(db, "migrations", lambda: everything)
    assert "0009_leases.sql" in db.migrate(conn)
    assert leases.held_by(conn, me, "sync", now=4999) == "sync:h:1:x"
    first = conn.execute("SELECT id FROM playlists WHERE idempotency_key = 'k1'").fetchone()[0]
    rows = conn.execute("SELECT name, expires_at FROM leases WHERE name LIKE 'playlist:%'"
                        ).fetchall()
    assert [tuple(r) for r in rows] == [(f"playlist:{first}", 4000)]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "sync_leases" not in tables
    columns = {r[1] for r in conn.execute("PRAGMA table_info(playlists)")}
    assert "lease_until" not in columns and "request" in columns
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    conn.close()


def _dead_holder(kind: str) -> str:
    """A holder name of a process of this machine that has exited."""
    import socket
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return f"{kind}:{socket.gethostname()}:{int(child.stdout)}:0badc0de"


def test_a_dead_holder_lets_go_at_once(conn: sqlite3.Connection, user_id: int) -> None:
    from mtm import jobs

    dead = _dead_holder("restore")
    assert leases.acquire(conn, user_id, "sync", dead, ttl=900, now=1000, purpose="restore")
    # Long before the expiry: the process is gone, so the lease is nobody's.
    assert leases.held_by(conn, user_id, "sync", now=1001) is None
    assert leases.holding(conn, user_id, "sync", now=1001) is None
    mine = jobs.make_holder("sync")
    assert leases.acquire(conn, user_id, "sync", mine, ttl=900, now=1001, purpose="sync")
    assert leases.held_by(conn, user_id, "sync", now=1002) == mine


def test_a_holder_of_another_machine_keeps_its_lease_until_the_expiry(
        conn: sqlite3.Connection, user_id: int) -> None:
    elsewhere = "restore:another-host.example:1:0badc0de"
    assert leases.acquire(conn, user_id, "sync", elsewhere, ttl=900, now=1000)
    assert not leases.acquire(conn, user_id, "sync", "b", ttl=60, now=1899)
    assert leases.acquire(conn, user_id, "sync", "b", ttl=60, now=1900)


def test_this_pid_with_a_nonce_it_never_made_is_a_dead_process(
        conn: sqlite3.Connection, user_id: int) -> None:
    import os
    import socket

    from mtm import jobs

    # A container's server is pid 1 after every restart: the old one's holder is not ours.
    before_restart = f"sync:{socket.gethostname()}:{os.getpid()}:feedf00d"
    assert jobs.holder_alive(before_restart) is False
    assert jobs.holder_alive(jobs.make_holder("sync")) is True


def test_each_lease_says_what_holds_it(conn: sqlite3.Connection, user_id: int) -> None:
    from mtm import jobs

    assert leases.acquire(conn, user_id, "sync", jobs.make_holder("restore"), ttl=60,
                          purpose="restore")
    lease = leases.holding(conn, user_id, "sync")
    assert lease.kind == "restore"
    assert lease.running == "A restore of your account from a backup is running"
    with pytest.raises(ValueError):
        leases.acquire(conn, user_id, "other", "x", ttl=60, purpose="nonsense")
    # A lease taken before purposes were stored is read from its holder's name.
    assert leases.Lease("import-3:host:1:ab", 0, None).kind == "import"
    assert leases.Lease("scheduler", 0, None).running == "A sync of your account is running"


def test_a_restore_blocked_by_a_time_zone_change_says_so(conn: sqlite3.Connection,
                                                         user_id: int, tmp_path: Path) -> None:
    from mtm import backups, jobs

    assert leases.acquire(conn, user_id, "sync", jobs.make_holder("timezone"), ttl=60,
                          purpose="timezone")
    with pytest.raises(backups.SyncInProgress) as refused:
        backups.clear_with_backup(conn, tmp_path / "backups", user_id)
    assert refused.value.message.startswith("A change of your time zone is running right now.")


def test_a_crashed_restore_no_longer_blocks_clearing(conn: sqlite3.Connection, user_id: int,
                                                     tmp_path: Path) -> None:
    from mtm import backups

    assert leases.acquire(conn, user_id, "sync", _dead_holder("restore"), ttl=900,
                          purpose="restore")
    counts, _ = backups.clear_with_backup(conn, tmp_path / "backups", user_id)
    assert counts.plays == 0
    assert leases.holding(conn, user_id, "sync") is None
