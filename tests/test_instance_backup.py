"""`mtm backup` and `mtm restore`: the whole instance, consistent while it runs, swapped safely."""

from __future__ import annotations

import io
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

from mtm import db, history, instance_backup, users
from mtm.cli import main
from mtm.config import load_settings
from tests.conftest import make_play

T0 = 1_700_000_000


def _instance(data_dir: Path, plays: int = 10, *, spotify_id: str = "listener-1") -> None:
    """A data directory as a server leaves it: database, key, emulator state, user backups."""
    load_settings(env_file=None, force_demo=True, overrides={"MTM_DATA_DIR": str(data_dir)})
    conn = db.connect(data_dir / "mtm.sqlite3")
    try:
        db.migrate(conn)
        user_id = users.upsert_user(conn, spotify_id, "Listener")
        history.add_plays(conn, user_id, [make_play(T0 + 600 * i, i) for i in range(plays)])
    finally:
        conn.close()
    with sqlite3.connect(data_dir / "emulator.sqlite3") as emulator:
        emulator.execute("CREATE TABLE IF NOT EXISTS tokens (token TEXT)")
        emulator.execute("INSERT INTO tokens VALUES (?)", (spotify_id,))
    emulator.close()
    folder = data_dir / "backups" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(folder / f"backup-{spotify_id}.sqlite3") as one:
        one.execute("CREATE TABLE IF NOT EXISTS t (x)")
    one.close()
    (folder / "backup-half.sqlite3.partial").write_bytes(b"half written")


def _plays(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM plays").fetchone()[0]
    finally:
        conn.close()


def _integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def test_backup_then_restore_brings_back_the_whole_instance(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _instance(data, plays=12)
    key = (data / "secret_key").read_text()
    summary = instance_backup.backup(data, tmp_path / "all.tar.gz", clock=lambda: T0)
    assert summary.path == tmp_path / "all.tar.gz" and (summary.users, summary.plays) == (1, 12)
    assert set(summary.files) == {"mtm.sqlite3", "emulator.sqlite3", "secret_key",
                                  "backups/1/backup-listener-1.sqlite3"}
    assert oct(summary.path.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*partial")), "no work files left beside the archive"

    # Everything changes afterwards...
    conn = db.connect(data / "mtm.sqlite3")
    conn.execute("DELETE FROM plays")
    conn.close()
    (data / "secret_key").write_text("another key")
    (data / "emulator.sqlite3").unlink()
    (data / "backups" / "1" / "backup-listener-1.sqlite3").unlink()
    # ...and the restore puts it back as it was.
    restored = instance_backup.restore(data, summary.path)
    assert (restored.users, restored.plays) == (1, 12)
    assert _plays(data / "mtm.sqlite3") == 12 and _integrity(data / "mtm.sqlite3") == "ok"
    assert (data / "secret_key").read_text() == key
    assert sqlite3.connect(data / "emulator.sqlite3").execute(
        "SELECT token FROM tokens").fetchall() == [("listener-1",)]
    assert (data / "backups" / "1" / "backup-listener-1.sqlite3").is_file()
    # The database it replaced is kept, and no unpacked files are left behind.
    assert _plays(data / instance_backup.PREVIOUS) == 0
    assert not list(data.glob(".restore-*"))
    assert oct((data / "mtm.sqlite3").stat().st_mode & 0o777) == "0o600"


def test_a_backup_taken_while_another_connection_writes_is_consistent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _instance(data, plays=2000)
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        conn = db.connect(data / "mtm.sqlite3")
        try:
            n = 10_000
            while not stop.is_set():
                # Each batch is one transaction: plays and their daily totals together.
                history.add_plays(conn, 1, [make_play(T0 + 60 * (n + i), n + i)
                                            for i in range(20)])
                n += 20
                written[0] += 20
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while written[0] < 200:
            time.sleep(0.01)
        before = written[0]
        summary = instance_backup.backup(data, tmp_path / "live.tar")
        after = written[0]
        while written[0] < after + 100:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    assert after > before, "the writer kept writing while the backup ran"
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    instance_backup.restore(fresh, summary.path)
    conn = sqlite3.connect(fresh / "mtm.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    plays = conn.execute("SELECT count(*) FROM plays").fetchone()[0]
    days = conn.execute("SELECT sum(plays) FROM listening_days").fetchone()[0]
    conn.close()
    # One moment of the database: no batch half in, totals matching the plays.
    assert plays == days and (plays - 2000) % 20 == 0
    assert 2000 + before <= plays <= 2000 + after < _plays(data / "mtm.sqlite3")


async def test_restore_is_refused_while_a_server_runs_on_the_data_directory(
        settings, emulator, tmp_path: Path, capsys) -> None:
    from mtm.app import create_app

    _instance(settings.data_dir, plays=3)
    archive = instance_backup.backup(settings.data_dir, tmp_path / "b.tar").path
    app = create_app(settings, emulator=emulator)
    async with app.router.lifespan_context(app):
        with pytest.raises(instance_backup.InstanceBusy, match="A server or another mtm command is "
                           f"using {settings.data_dir}: stop it"):
            instance_backup.restore(settings.data_dir, archive)
        os.environ["MTM_DATA_DIR"] = str(settings.data_dir)
        try:
            assert main(["restore", str(archive)]) == 1
        finally:
            del os.environ["MTM_DATA_DIR"]
        assert "error: A server or another mtm command is using" in capsys.readouterr().err
    assert instance_backup.restore(settings.data_dir, archive).plays == 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_killed_server_does_not_keep_the_restore_out(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _instance(data, plays=3)
    archive = instance_backup.backup(data, tmp_path / "b.tar").path
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env.update(MTM_DATA_DIR=str(data), MTM_DEMO_PLAYS="0", MTM_SYNC_INTERVAL="0")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mtm", "serve", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with pytest.raises(instance_backup.InstanceBusy):
            instance_backup.restore(data, archive)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    # The kernel dropped the dead server's lock: nothing to wait for or clean by hand.
    assert instance_backup.restore(data, archive).plays == 3


def _newer_schema(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {db.migrations()[-1][0] + 1}")
    conn.close()


@pytest.mark.parametrize(("spoil", "message"), [
    ("text", "is neither a backup made by mtm backup nor a database"),
    ("truncated", "is truncated or damaged"),
    ("flipped", r"The backup's mtm.sqlite3 is damaged \(its checksum does not match\)"),
    ("foreign tar", "is not a backup made by mtm backup"),
    ("other sqlite", "The backup's database is not a Music Time Machine database"),
    ("newer", "The backup's database was made by a newer version of Music Time Machine"),
    ("corrupt sqlite", "is damaged"),
])
def test_restore_checks_the_file_and_leaves_the_instance_alone(tmp_path: Path, spoil: str,
                                                               message: str) -> None:
    data = tmp_path / "data"
    _instance(data, plays=5)
    source = tmp_path / "backup"
    good = instance_backup.backup(data, tmp_path / "good.tar").path
    raw = good.read_bytes()
    if spoil == "text":
        source.write_text("hello")
    elif spoil == "truncated":
        source.write_bytes(raw[: len(raw) // 2])
    elif spoil == "flipped":
        with tarfile.open(good) as archive:
            offset = archive.getmember("mtm.sqlite3").offset_data
        spoiled = bytearray(raw)
        spoiled[offset + 5000] ^= 0xFF
        source.write_bytes(bytes(spoiled))
    elif spoil == "foreign tar":
        with tarfile.open(source, "w") as archive:
            info = tarfile.TarInfo("mtm.sqlite3")
            info.size = 3
            archive.addfile(info, io.BytesIO(b"abc"))
    elif spoil == "other sqlite":
        sqlite3.connect(source).execute("CREATE TABLE t (x)").connection.close()
    elif spoil == "newer":
        instance_backup._snapshot(data / "mtm.sqlite3", source)
        _newer_schema(source)
    elif spoil == "corrupt sqlite":
        instance_backup._snapshot(data / "mtm.sqlite3", source)
        spoiled = bytearray(source.read_bytes())
        for page in range(2, len(spoiled) // 4096):
            spoiled[page * 4096 + 100: page * 4096 + 200] = b"\xff" * 100
        source.write_bytes(bytes(spoiled))
    before = (data / "mtm.sqlite3").read_bytes()
    with pytest.raises(instance_backup.InstanceError, match=message):
        instance_backup.restore(data, source)
    assert (data / "mtm.sqlite3").read_bytes() == before
    assert not (data / instance_backup.PREVIOUS).exists() and not list(data.glob(".restore-*"))


def test_a_copy_of_the_database_alone_can_be_restored(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _instance(data, plays=7)
    copy = tmp_path / "copy.sqlite3"
    instance_backup._snapshot(data / "mtm.sqlite3", copy)
    conn = db.connect(data / "mtm.sqlite3")
    conn.execute("DELETE FROM plays")
    conn.close()
    assert instance_backup.restore(data, copy).plays == 7 and _plays(data / "mtm.sqlite3") == 7


def test_a_crash_mid_restore_leaves_a_whole_database(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    _instance(data, plays=4)
    archive = instance_backup.backup(data, tmp_path / "b.tar").path
    conn = db.connect(data / "mtm.sqlite3")
    conn.execute("DELETE FROM plays WHERE played_at > ?", (T0,))
    conn.close()
    real_replace = os.replace

    def crash_on(target_name: str):
        def replace(src, dst):
            if Path(dst).name == target_name:
                raise SystemExit("power cut")
            return real_replace(src, dst)
        return replace

    # Cut before the database is swapped: the old one is whole, and a new restore finishes.
    monkeypatch.setattr(instance_backup.os, "replace", crash_on("mtm.sqlite3"))
    with pytest.raises(SystemExit):
        instance_backup.restore(data, archive)
    assert _integrity(data / "mtm.sqlite3") == "ok" and _plays(data / "mtm.sqlite3") == 1
    # A crash leaves the unpacked files behind (no `finally` runs in a real one).
    (data / ".restore-deadbeef").mkdir()
    (data / ".restore-deadbeef" / "mtm.sqlite3").write_bytes(b"half")
    monkeypatch.setattr(instance_backup.os, "replace", real_replace)
    assert instance_backup.restore(data, archive).plays == 4
    assert _integrity(data / "mtm.sqlite3") == "ok" and not list(data.glob(".restore-*"))


def test_a_crashed_servers_write_ahead_log_is_not_replayed_into_the_restored_database(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    _instance(data, plays=6)
    archive = instance_backup.backup(data, tmp_path / "b.tar").path
    # A server killed mid-work: committed plays still only in the -wal, never checkpointed.
    script = textwrap.dedent(f"""
        import os, sqlite3
        conn = sqlite3.connect({str(data / 'mtm.sqlite3')!r}, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE scratch (x)")
        conn.executemany("INSERT INTO scratch VALUES (randomblob(100))",
                         [()] * 3000)
        conn.execute("COMMIT")
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    wal = Path(f"{data / 'mtm.sqlite3'}-wal")
    assert wal.stat().st_size > 100_000
    instance_backup.restore(data, archive)
    assert not wal.exists()
    assert _integrity(data / "mtm.sqlite3") == "ok" and _plays(data / "mtm.sqlite3") == 6
    assert _scratch(data / "mtm.sqlite3") is None
    # Nothing of the replaced database was lost: its log went into the copy kept of it.
    assert _scratch(data / instance_backup.PREVIOUS) == 3000


def _scratch(path: Path) -> int | None:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM scratch").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def test_the_cli_backs_up_into_a_folder_and_restores(tmp_path: Path, monkeypatch,
                                                     capsys) -> None:
    data = tmp_path / "data"
    _instance(data, plays=9)
    monkeypatch.setenv("MTM_DATA_DIR", str(data))
    out = tmp_path / "out"
    out.mkdir()
    assert main(["backup", str(out)]) == 0
    (archive,) = out.glob("mtm-backup-*.tar.gz")
    said = capsys.readouterr().out
    assert said.startswith(f"Backed up {data} to {archive} (") and "9 plays" in said
    assert main(["backup", str(data / "inside.tar")]) == 1
    assert "outside the data directory" in capsys.readouterr().err
    assert main(["restore", str(archive)]) == 0
    assert f"Restored {archive} into {data} (1 user, 9 plays" in capsys.readouterr().out
    assert main(["restore", str(tmp_path / "missing.tar")]) == 1
    assert capsys.readouterr().err == f"error: There is no file {tmp_path / 'missing.tar'}.\n"


def test_a_dated_archive_name_comes_from_the_clock(tmp_path: Path) -> None:
    dated = instance_backup.archive_path(tmp_path, T0)
    assert dated == tmp_path / "mtm-backup-20231114-221320.tar.gz"
    assert instance_backup.archive_path(tmp_path / "x.tar", T0) == tmp_path / "x.tar"


def test_backup_to_stdout_and_restore_from_stdin(tmp_path: Path) -> None:
    """What `docker compose exec -T mtm mtm backup - > file` and its restore rely on."""
    data = tmp_path / "data"
    _instance(data, plays=8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIFY_", "MTM_"))}
    env["MTM_DATA_DIR"] = str(data)
    archive = tmp_path / "piped.tar.gz"
    with archive.open("wb") as out:
        done = subprocess.run([sys.executable, "-m", "mtm", "backup", "-"], stdout=out,
                              stderr=subprocess.PIPE, text=False, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().startswith(f"Backed up {data} to standard output (")
    with tarfile.open(archive, "r:gz") as check:
        assert check.getnames()[0] == instance_backup.MANIFEST
    conn = db.connect(data / "mtm.sqlite3")
    conn.execute("DELETE FROM plays")
    conn.close()
    with archive.open("rb") as source:
        done = subprocess.run([sys.executable, "-m", "mtm", "restore", "-"], stdin=source,
                              capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Restored the archive from standard input into {data} "
                                  "(1 user, 8 plays")
    assert _plays(data / "mtm.sqlite3") == 8 and not list(data.glob(".restore-*"))
