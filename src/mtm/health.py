"""What /healthz checks: the database file, reads, writes, migrations and the scheduler."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mtm import db, instance
from mtm.jobs import holder_alive
from mtm.scheduler import LEASE_SECONDS

# Writes wait at most this long in the check: a longer wait means another writer is busy,
# which proves the database takes writes, not that it fails.
WRITE_WAIT_MS = 1000


@dataclass(frozen=True)
class Check:
    """One check's outcome, and why in words."""

    name: str
    ok: bool
    detail: str


def newest_migration() -> int:
    """The number of the newest migration shipped with the app."""
    return max(number for number, _, _ in db.migrations())


def probe(conn: sqlite3.Connection, *, now: int, scheduler_on: bool) -> list[Check]:
    """Read, write and compare versions on this connection; then the scheduler's lease."""
    checks = [_readable(conn)]
    if not checks[0].ok:
        return checks
    checks.append(_migrations(conn))
    checks.append(_writable(conn, now))
    if scheduler_on:
        checks.append(_scheduler(conn, now))
    return checks


def _readable(conn: sqlite3.Connection) -> Check:
    try:
        tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                              ).fetchone()[0]
    except sqlite3.Error as exc:
        return Check("database", False, f"cannot read the database: {exc}")
    if not tables:
        return Check("database", False, "the database file is empty (no tables)")
    return Check("database", True, "readable")


def _migrations(conn: sqlite3.Connection) -> Check:
    version, newest = db.schema_version(conn), newest_migration()
    if version != newest:
        return Check("migrations", False,
                     f"schema is at migration {version}, the app ships {newest}")
    return Check("migrations", True, f"schema at migration {version}")


def _writable(conn: sqlite3.Connection, now: int) -> Check:
    conn.execute(f"PRAGMA busy_timeout = {WRITE_WAIT_MS:d}")
    try:
        with db.transaction(conn):
            conn.execute("INSERT INTO instance_health (id, checked_at) VALUES (1, ?) "
                         "ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                         (now,))
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return Check("writable", True, "another write holds the lock right now")
        return Check("writable", False, f"cannot write to the database: {exc}")
    except sqlite3.Error as exc:
        return Check("writable", False, f"cannot write to the database: {exc}")
    finally:
        conn.execute(f"PRAGMA busy_timeout = {db.BUSY_TIMEOUT_MS:d}")
    return Check("writable", True, "a write was committed")


def _scheduler(conn: sqlite3.Connection, now: int) -> Check:
    lease = instance.get(conn, instance.SCHEDULER)
    if lease is None:
        return Check("scheduler", False, "no worker runs the scheduler (no lease)")
    if holder_alive(lease.holder) is False:
        return Check("scheduler", False, "the scheduler's process is gone")
    if lease.beat_at < now - LEASE_SECONDS:
        return Check("scheduler", False,
                     f"the scheduler last beat {now - lease.beat_at} s ago")
    # /healthz is public: which host and process hold the lease is for the admin page.
    return Check("scheduler", True, f"a worker runs it, beat {now - lease.beat_at} s ago")


async def report(database: db.Database, *, now: int, scheduler_on: bool
                 ) -> tuple[bool, dict[str, dict[str, object]]]:
    """Run every check: (all passed, each check's outcome by name)."""
    try:
        checks = await database.run(probe, now=now, scheduler_on=scheduler_on)
    except db.DatabaseUnavailable as exc:
        checks = [Check("database", False, str(exc))]
    except sqlite3.Error as exc:
        checks = [Check("database", False, f"cannot read the database: {exc}")]
    return (all(c.ok for c in checks),
            {c.name: {"ok": c.ok, "detail": c.detail} for c in checks})
