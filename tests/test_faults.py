"""SIGKILL in the middle of real work, then a restart: nothing lost, doubled or half-done.

Each case copies one prepared data directory (a demo account with a history, a backup and
an export file to import), runs tests/fault_driver.py on it in a subprocess (the code the
CLI or the server runs), waits until the driver says it reached its point (inside a write
transaction, or between two committed chunks), and kills it with SIGKILL. Then it "restarts"
(prepare_database, as the server and the CLI do first) and checks: PRAGMA integrity_check is
ok; the user's plays are exactly those before the action or those after it, never a mix;
the rollups equal a full rebuild; the interrupted job is marked interrupted and no lease is
left to block the work, which is then run again at once (the driver, unkilled) and ends as
it should.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import backups, db, demo, history, leases, preferences, rezone, sync
from mtm.app import prepare_database
from tests.fault_driver import settings_for

ROOT = Path(__file__).resolve().parent.parent
PLAYS = 3_000
EXPORTED = 1_200
AFTER_BACKUP = 39
# The driver waits this long at its point; the test kills it long before.
MARK_WAIT = 30


def _export(path: Path) -> None:
    """An extended streaming history of plays the account does not have yet."""
    start = int(datetime(2019, 5, 1, tzinfo=UTC).timestamp())
    entries = [{
        "ts": datetime.fromtimestamp(start + i * 3_333, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "platform": "android", "ms_played": 15_000 if i % 7 == 0 else 180_000,
        "conn_country": "SE", "ip_addr": "",
        "master_metadata_track_name": f"Fault Track {i % 90}",
        "master_metadata_album_artist_name": f"Fault Artist {i % 12}",
        "master_metadata_album_album_name": f"Fault Album {i % 30}",
        "spotify_track_uri": f"spotify:track:{'F' * 18}{i % 90:04d}",
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None,
        "audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None, "reason_start": "trackdone",
        "reason_end": "trackdone", "shuffle": False, "skipped": False, "offline": False,
        "offline_timestamp": None, "incognito_mode": False} for i in range(EXPORTED)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory: the demo account, its history, a backup, then some plays more."""
    base = tmp_path_factory.mktemp("faults") / "data"
    settings = settings_for(base)
    prepare_database(settings)
    conn = db.connect(settings.database_path)
    conn.row_factory = sqlite3.Row
    user_id = demo.ensure_demo_user(conn)
    assert demo.ensure_demo_history(conn, user_id, plays=PLAYS, years=1.0)
    preferences.save(conn, user_id, preferences.Preferences("Europe/Berlin"))
    # The newest plays come after the backup, so restoring it changes the history.
    with db.transaction(conn):
        newest = conn.execute("SELECT * FROM plays ORDER BY played_at DESC LIMIT ?",
                              (AFTER_BACKUP,)).fetchall()
        conn.execute("DELETE FROM plays WHERE played_at >= ?", (newest[-1]["played_at"],))
        history.rebuild_rollups(conn, user_id)
    backups.create_backup(conn, settings.backups_dir, user_id, "manual")
    with db.transaction(conn):
        columns = [c for c in newest[0].keys() if c != "counted"]  # noqa: SIM118 (a Row)
        conn.executemany(f"INSERT INTO plays ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' * len(columns))})",
                         [tuple(row[c] for c in columns) for row in newest])
        history.rebuild_rollups(conn, user_id)
    conn.close()
    _export(base / "export" / "Streaming_History_Audio_0.json")
    return base


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MTM_", "SPOTIFY_"))}
    env.update(MTM_ENV_FILE=str(data_dir / "no.env"), MTM_DATA_DIR=str(data_dir),
               MTM_SECRET_KEY="fault-secret-key", MTM_DEMO_PLAYS="0", MTM_SYNC_INTERVAL="0",
               PYTHONPATH=str(ROOT))
    return env


def _driver(action: str, data_dir: Path, mark: Path | None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fault_driver", action, str(data_dir),
         str(mark) if mark else "-"], cwd=ROOT, env=_env(data_dir),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _kill_at_mark(action: str, data_dir: Path) -> float:
    """Run the action and SIGKILL it at its point; seconds until the point was reached."""
    mark = data_dir.parent / f"{action}.mark"
    started = time.monotonic()
    process = _driver(action, data_dir, mark)
    try:
        while not mark.exists():
            if process.poll() is not None:
                raise AssertionError(f"{action} ended before its point: "
                                     f"{process.stdout.read().decode()}")
            assert time.monotonic() - started < MARK_WAIT, f"{action} never reached its point"
            time.sleep(0.02)
        reached = time.monotonic() - started
        assert int(mark.read_text()) == process.pid
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    return reached


def _rerun(action: str, data_dir: Path) -> None:
    process = _driver(action, data_dir, None)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out.decode()


def _keys(conn: sqlite3.Connection, user_id: int) -> list[tuple[int, int]]:
    """Every stored play of the user (counted or hidden), as its key, with repeats."""
    return sorted(tuple(r) for r in conn.execute(
        "SELECT played_at, record_key FROM plays WHERE user_id = ? UNION ALL "
        "SELECT played_at, record_key FROM hidden_plays WHERE user_id = ?", (user_id, user_id)))


def _rollups(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    return {table: sorted(tuple(r) for r in conn.execute(
        f"SELECT * FROM {table} WHERE user_id = ?", (user_id,)))
        for table in history.ROLLUP_TABLES}


def _check(data_dir: Path) -> tuple[sqlite3.Connection, int]:
    """The restart, and what must hold after any kill: sound file, exact rollups, no lease."""
    prepare_database(settings_for(data_dir))
    conn = db.connect(data_dir / "mtm.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    user_id = conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0]
    keys = _keys(conn, user_id)
    assert len(keys) == len(set(keys)), "a play is stored twice"
    kept = _rollups(conn, user_id)
    conn.execute("SAVEPOINT rebuilt")
    history.rebuild_rollups(conn, user_id)
    assert _rollups(conn, user_id) == kept, "the rollups are not those of the plays"
    conn.execute("ROLLBACK TO rebuilt")
    conn.execute("RELEASE rebuilt")
    assert leases.holding(conn, user_id, "sync") is None, "a lease still blocks the work"
    return conn, user_id


def _job_states(conn: sqlite3.Connection, user_id: int, kind: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT state FROM jobs WHERE user_id = ? AND kind = ? "
                                       "ORDER BY id", (user_id, kind))]


@pytest.fixture
def data_dir(prepared: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(prepared, copy)
    return copy


FIGURES: list[str] = []


def _figure(action: str, reached: float, before: int, after_kill: int, after: int) -> None:
    FIGURES.append(f"{action}: killed {reached:.2f} s in; plays before {before:,}, after the "
                   f"kill {after_kill:,}, after the re-run {after:,}")
    print(FIGURES[-1])


def _before(data_dir: Path) -> list[tuple[int, int]]:
    conn = db.connect(data_dir / "mtm.sqlite3")
    try:
        return _keys(conn, 1)
    finally:
        conn.close()


def test_killed_import(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("import", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before, "half an import is stored"
    assert _job_states(conn, user_id, "import") == ["interrupted"]
    _rerun("import", data_dir)
    conn, user_id = _check(data_dir)
    after = _keys(conn, user_id)
    assert set(before) < set(after) and len(after) - len(before) == EXPORTED
    assert _job_states(conn, user_id, "import") == ["interrupted", "done"]
    _figure("import", reached, len(before), len(before), len(after))


def test_killed_sync(data_dir: Path) -> None:
    reached = _kill_at_mark("sync", data_dir)
    conn, user_id = _check(data_dir)
    # The sign-in's own sync went through; the killed one stored nothing of its own.
    after_kill = _keys(conn, user_id)
    runs = conn.execute("SELECT outcome, plays_added, error FROM sync_runs WHERE user_id = ? "
                        "ORDER BY id", (user_id,)).fetchall()
    assert [tuple(r) for r in runs][-1] == ("failed", 0, sync.INTERRUPTED)
    assert _job_states(conn, user_id, "sync") == ["interrupted"]
    _rerun("sync", data_dir)
    conn, user_id = _check(data_dir)
    after = _keys(conn, user_id)
    assert set(after_kill) < set(after)
    assert _job_states(conn, user_id, "sync")[-1] == "done"
    outcomes = [r[0] for r in conn.execute("SELECT outcome FROM sync_runs WHERE user_id = ? "
                                           "ORDER BY id", (user_id,))]
    assert "running" not in outcomes and outcomes[-1] == "ok"
    _figure("sync", reached, len(after_kill), len(after_kill), len(after))


def test_killed_restore(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("restore", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before, "half a restore is stored"
    _rerun("restore", data_dir)
    conn, user_id = _check(data_dir)
    after = _keys(conn, user_id)
    assert len(after) == len(before) - AFTER_BACKUP and set(after) < set(before)
    _figure("restore", reached, len(before), len(before), len(after))


def test_killed_clear(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("clear", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before, "half a clear is done"
    _rerun("clear", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == []
    # Its automatic backup (and the killed one's, taken before it was killed) holds
    # everything that was cleared.
    root = settings_for(data_dir).backups_dir
    autos = [b for b in backups.list_backups(conn, root, user_id) if b.kind == "auto"]
    assert len(autos) == 2
    for auto in autos:
        with sqlite3.connect(backups.path_of(root, auto)) as saved:
            assert _keys(saved, user_id) == before
    _figure("clear", reached, len(before), len(before), 0)


def test_killed_time_zone_change(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("timezone", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before
    # Pages still read the old zone, whole; the change is marked and resumes.
    assert preferences.load(conn, user_id).timezone == "Europe/Berlin"
    assert rezone.pending(conn, user_id) == "Pacific/Auckland"
    assert _job_states(conn, user_id, "timezone") == ["interrupted"]
    assert conn.execute("SELECT after_at FROM rollup_rebuilds").fetchone()[0] is not None
    _rerun("timezone", data_dir)
    conn, user_id = _check(data_dir)
    assert preferences.load(conn, user_id).timezone == "Pacific/Auckland"
    assert rezone.pending(conn, user_id) is None
    assert _keys(conn, user_id) == before
    assert _job_states(conn, user_id, "timezone") == ["interrupted", "done"]
    _figure("time-zone change", reached, len(before), len(before), len(before))


def test_killed_time_zone_change_moving_its_months(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("timezone-months", data_dir)
    # The restart finishes it: every play was summed, and its months were half moved.
    conn, user_id = _check(data_dir)
    assert rezone.pending(conn, user_id) is None
    assert preferences.load(conn, user_id).timezone == "Pacific/Auckland"
    assert _keys(conn, user_id) == before
    assert _job_states(conn, user_id, "timezone") == ["interrupted"]
    _figure("time-zone change, moving months", reached, len(before), len(before), len(before))


def test_killed_hide(data_dir: Path) -> None:
    before = _before(data_dir)
    reached = _kill_at_mark("hide", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before
    # One chunk committed, the second rolled back: the rule hides part of its plays.
    assert conn.execute("SELECT count(*) FROM hidden_plays").fetchone()[0] == 150
    _rerun("hide", data_dir)
    conn, user_id = _check(data_dir)
    assert _keys(conn, user_id) == before
    [(artist,)] = conn.execute("SELECT target_id FROM hide_rules").fetchall()
    assert conn.execute("SELECT count(*) FROM plays WHERE artist_id = ?",
                        (artist,)).fetchone()[0] == 0
    _figure("hide", reached, len(before), len(before), len(before))
