"""Half-written backups and stray journals left by a crash are removed when the app starts."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from pathlib import Path

from mtm import backups, db, exports
from mtm.config import Settings
from tests.test_exports import World, populate


def crashed_writer(partial: str, started, done) -> None:
    """A process that dies (os._exit) in the middle of writing a snapshot."""
    with exports.writing(Path(partial)):
        out = sqlite3.connect(partial, isolation_level=None)
        out.execute("CREATE TABLE t (x)")
        out.execute("BEGIN")
        out.execute("INSERT INTO t VALUES (zeroblob(100000))")
        started.set()
        done.wait(10)
        os._exit(9)


def test_a_crashed_writers_files_are_removed_and_the_rest_kept(conn: sqlite3.Connection,
                                                               tmp_path: Path) -> None:
    world: World = populate(conn)
    root = tmp_path / "backups"
    finished = backups.create_backup(conn, root, world.me)
    folder = backups.user_dir(root, world.me)
    kept_file = backups.path_of(root, finished)
    # A process killed mid-write leaves its partial and its rollback journal.
    partial = folder / "backup-20260101-000000-auto-abcdef.sqlite3.partial"
    context = multiprocessing.get_context("fork")
    started, done = context.Event(), context.Event()
    writer = context.Process(target=crashed_writer, args=(str(partial), started, done))
    writer.start()
    assert started.wait(20)
    done.set()
    writer.join(20)
    assert writer.exitcode == 9
    assert partial.exists() and Path(f"{partial}-journal").exists()
    # An upgraded copy for a restore, a stray -wal and -shm beside a finished backup.
    restore_copy = folder / ".restore-1234abcd.sqlite3"
    restore_copy.write_bytes(b"half a copy")
    Path(f"{restore_copy}-journal").write_bytes(b"x")
    Path(f"{kept_file}-wal").write_bytes(b"")
    Path(f"{kept_file}-shm").write_bytes(b"")
    orphan = folder / "backup-gone.sqlite3-journal"
    orphan.write_bytes(b"x")
    # A snapshot another live process is writing right now is left alone.
    busy = folder / "backup-20260101-000001-manual-123456.sqlite3.partial"
    # The live database, with its own -wal and -shm while a connection holds it open.
    live_path = exports.database_path(conn)
    conn.execute("INSERT INTO genres (name) VALUES ('still here')")
    live_files = {p.name: p.read_bytes() for p in live_path.parent.glob(live_path.name + "*")}
    assert {live_path.name + "-wal", live_path.name + "-shm"} <= set(live_files)
    other = tmp_path / "unrelated.txt"
    other.write_text("mine")

    with exports.writing(busy):
        removed = backups.remove_leftovers(root, live_path)
        assert busy.exists()
    assert {p.name for p in removed} == {
        partial.name, f"{partial.name}-journal", restore_copy.name,
        f"{restore_copy.name}-journal", f"{kept_file.name}-wal", f"{kept_file.name}-shm",
        orphan.name}
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept_file.name, busy.name])
    assert backups.inspect(kept_file, "listener-me").plays == finished.plays
    # Not a byte of the live database's files changed, and it still reads.
    assert {p.name: p.read_bytes() for p in live_path.parent.glob(live_path.name + "*")
            } == live_files
    assert conn.execute("SELECT count(*) FROM genres WHERE name = 'still here'").fetchone()[0]
    assert other.read_text() == "mine"


def test_the_live_database_is_safe_even_inside_the_backups_folder(tmp_path: Path) -> None:
    live_path = tmp_path / "mtm.sqlite3"
    live = db.connect(live_path)
    db.migrate(live)
    live.execute("INSERT INTO genres (name) VALUES ('x')")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert "mtm.sqlite3-wal" in before
    assert backups.remove_leftovers(tmp_path, live_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    live.close()


def test_the_app_removes_leftovers_when_it_starts(settings: Settings) -> None:
    from mtm.app import prepare_database

    folder = settings.backups_dir / "1"
    folder.mkdir(parents=True)
    leftover = folder / "backup-x.sqlite3.partial"
    leftover.write_bytes(b"half")
    prepare_database(settings)
    assert not leftover.exists()
