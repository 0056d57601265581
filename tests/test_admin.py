"""The admin page's figures against plain counts, sizes on disk, the scheduler and the queue."""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mtm import admin, hiding, history, jobs, leases, preferences, sync, users
from tests.conftest import make_track

NOW = int(datetime(2026, 3, 20, 12, tzinfo=UTC).timestamp())
START = int(datetime(2025, 11, 1, tzinfo=UTC).timestamp())
SCHEDULER_TABLE = """CREATE TABLE IF NOT EXISTS instance_leases (
    name TEXT PRIMARY KEY, holder TEXT, expires_at INTEGER, beat_at INTEGER)"""


@pytest.fixture
def instance(conn: sqlite3.Connection, tmp_path: Path) -> dict[str, int]:
    """Three users: Ann (UTC, busy), Ben (Auckland, hides an artist), Cat (no plays)."""
    ids = {name: users.upsert_user(conn, name.lower(), name) for name in ("Ann", "Ben", "Cat")}
    preferences.save(conn, ids["Ben"], preferences.Preferences(timezone="Pacific/Auckland"))
    for name, count in (("Ann", 900), ("Ben", 400)):
        rng = random.Random(count)
        history.add_plays(conn, ids[name], [
            history.PlayIn(moment, make_track(rng.randrange(200)),
                           rng.choice((10_000, 200_000)), "api")
            for moment in rng.sample(range(START, NOW), count)])
    artist = conn.execute("SELECT artist_id FROM plays WHERE user_id = ? LIMIT 1",
                          (ids["Ben"],)).fetchone()[0]
    hiding.add(conn, ids["Ben"], hiding.RuleIn("artist", target_id=artist), NOW)
    return ids


def _load(conn: sqlite3.Connection, tmp_path: Path, *, interval: int = 1800,
          now: int = NOW) -> admin.Stats:
    return admin.load(conn, now=now, database=tmp_path / "test.sqlite3",
                      backups_dir=tmp_path / "backups", sync_interval=interval)


def test_plays_per_user_and_in_all_match_plain_counts(conn: sqlite3.Connection,
                                                      tmp_path: Path,
                                                      instance: dict[str, int]) -> None:
    stats = _load(conn, tmp_path)
    plain = {user_id: (plays, streams) for user_id, plays, streams in conn.execute(
        "SELECT user_id, sum(ms_played >= 30000), count(*) FROM plays GROUP BY user_id")}
    hidden = dict(conn.execute("SELECT user_id, count(*) FROM hidden_plays GROUP BY user_id"))
    by_id = {u.id: u for u in stats.users}
    assert [u.name for u in stats.users] == ["Ann", "Ben", "Cat"]
    for user_id, row in by_id.items():
        assert (row.plays, row.streams) == plain.get(user_id, (0, 0))
        assert row.hidden == hidden.get(user_id, 0)
    assert by_id[instance["Ben"]].hidden > 0
    assert stats.plays == sum(p for p, _ in plain.values())
    assert stats.streams == sum(s for _, s in plain.values())
    assert stats.hidden == sum(hidden.values())


def _month_plays(conn: sqlite3.Connection, user_id: int, timezone: str, month: str) -> int:
    zone = ZoneInfo(timezone)
    year, number = map(int, month.split("-"))
    start = int(datetime(year, number, 1, tzinfo=zone).timestamp())
    end = int(datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone).timestamp())
    return conn.execute("SELECT count(*) FROM plays WHERE user_id = ? AND played_at >= ? "
                        "AND played_at < ? AND ms_played >= 30000",
                        (user_id, start, end)).fetchone()[0]


def test_most_active_this_month_in_each_users_zone(conn: sqlite3.Connection, tmp_path: Path,
                                                   instance: dict[str, int]) -> None:
    # 31 March, 12:00 UTC: still March for Ann, already April in Auckland for Ben.
    late = int(datetime(2026, 3, 31, 12, tzinfo=UTC).timestamp())
    stats = _load(conn, tmp_path, now=late)
    by_id = {u.id: u for u in stats.users}
    ann, ben = by_id[instance["Ann"]], by_id[instance["Ben"]]
    assert (ann.month, ben.month) == ("2026-03", "2026-04")
    assert ann.month_plays == _month_plays(conn, ann.id, "UTC", "2026-03") > 0
    assert ben.month_plays == _month_plays(conn, ben.id, "Pacific/Auckland", "2026-04") == 0
    assert [u.name for u in stats.most_active] == ["Ann"]
    march = _load(conn, tmp_path)
    assert [u.name for u in march.most_active] == ["Ann", "Ben"]
    assert all(u.month_plays == _month_plays(conn, u.id, zone, "2026-03")
               for u, zone in zip(march.most_active, ("UTC", "Pacific/Auckland"), strict=True))


def test_connection_sync_and_imports(conn: sqlite3.Connection, tmp_path: Path,
                                     instance: dict[str, int]) -> None:
    ann, ben, cat = instance["Ann"], instance["Ben"], instance["Cat"]
    users.save_tokens(conn, ann, access_token="a", refresh_token="r", expires_at=NOW,
                      scope="s", new_consent=True)
    users.save_tokens(conn, ben, access_token="a", refresh_token="r", expires_at=NOW,
                      scope="s", new_consent=True)
    users.mark_reconnect_needed(conn, ben)
    conn.execute("INSERT INTO sync_runs (user_id, started_at, finished_at, outcome, plays_added) "
                 "VALUES (?, ?, ?, 'ok', 7), (?, ?, ?, 'failed', 0)",
                 (ann, NOW - 900, NOW - 890, ann, NOW - 300, NOW - 290))
    conn.execute("UPDATE sync_runs SET error = 'Spotify did not answer' WHERE outcome = 'failed'")
    conn.execute("INSERT INTO sync_runs (user_id, started_at, outcome) VALUES (?, ?, 'running')",
                 (cat, NOW - 10))
    leases.acquire(conn, cat, sync.LEASE, "app:h:1:x", ttl=600, now=NOW - 10)
    for when in (NOW - 86_400, NOW - 3_600):
        conn.execute("INSERT INTO imports (user_id, created_at, files, report, plays_added) "
                     "VALUES (?, ?, '[]', '{}', 1)", (ann, when))
    jobs.create(conn, ben, "import", {}, now=NOW - 5)
    stats = _load(conn, tmp_path)
    by_id = {u.id: u for u in stats.users}
    assert [by_id[i].connection for i in (ann, ben, cat)] == \
        ["connected", "reconnect", "disconnected"]
    # The newest run is the one shown: Ann's failure, not her older success.
    assert by_id[ann].last_sync.outcome == "failed" and not by_id[ann].syncing
    assert by_id[ann].last_sync.error == "Spotify did not answer"
    assert by_id[ben].last_sync is None
    assert by_id[cat].syncing
    assert (by_id[ann].imports, by_id[ann].last_import_at, by_id[ann].importing) == \
        (2, NOW - 3_600, False)
    assert (by_id[ben].imports, by_id[ben].importing) == (0, True)
    assert stats.imports == 2
    assert stats.scheduler.last_run_at == NOW - 10


def test_sizes_on_disk(conn: sqlite3.Connection, tmp_path: Path,
                       instance: dict[str, int]) -> None:
    root = tmp_path / "backups"
    for user_id, sizes in ((instance["Ann"], (1000, 2500)), (instance["Ben"], (300,))):
        folder = root / str(user_id)
        folder.mkdir(parents=True)
        for n, size in enumerate(sizes):
            (folder / f"backup-{n}.sqlite3").write_bytes(b"x" * size)
    # A half-written file counts (it takes the space); a folder of no user is counted apart.
    (root / str(instance["Ann"]) / "backup-9.sqlite3.partial").write_bytes(b"x" * 50)
    (root / "999").mkdir()
    (root / "999" / "old.sqlite3").write_bytes(b"x" * 70)
    stats = _load(conn, tmp_path)
    by_id = {u.id: u for u in stats.users}
    assert (by_id[instance["Ann"]].backup_bytes, by_id[instance["Ann"]].backup_files) == (3550, 3)
    assert (by_id[instance["Ben"]].backup_bytes, by_id[instance["Cat"]].backup_bytes) == (300, 0)
    assert stats.other_backup_bytes == 70 and stats.backup_bytes == 3920
    database = tmp_path / "test.sqlite3"
    assert stats.database_bytes == os.path.getsize(database) > 0
    assert stats.wal_bytes == os.path.getsize(f"{database}-wal")
    empty = admin.load(conn, now=NOW, database=tmp_path / "gone.sqlite3",
                       backups_dir=tmp_path / "none", sync_interval=0)
    assert (empty.database_bytes, empty.wal_bytes, empty.backup_bytes) == (0, 0, 0)
    assert admin.size_label(3920) == "3.9 kB" and admin.size_label(12) == "12 bytes"
    assert admin.size_label(5_200_000_000) == "5.2 GB"


def test_scheduler_state(conn: sqlite3.Connection, tmp_path: Path) -> None:
    conn.execute("DROP TABLE IF EXISTS instance_leases")
    assert _load(conn, tmp_path).scheduler.state == "unknown"
    conn.execute(SCHEDULER_TABLE)
    assert _load(conn, tmp_path).scheduler.state == "none"
    assert _load(conn, tmp_path, interval=0).scheduler.state == "off"
    mine = jobs.make_holder("scheduler")
    conn.execute("INSERT INTO instance_leases VALUES ('scheduler', ?, ?, ?)",
                 (mine, NOW + 60, NOW - 5))
    held = _load(conn, tmp_path).scheduler
    assert (held.state, held.holder, held.beat_at, held.holder_alive) == \
        ("held", mine, NOW - 5, True)
    assert _load(conn, tmp_path, now=NOW + 61).scheduler.state == "lapsed"
    # A holder on this machine whose process is gone has stopped, whatever its expiry says.
    host = mine.split(":")[1]
    conn.execute("UPDATE instance_leases SET holder = ?", (f"scheduler:{host}:999999999:x",))
    assert _load(conn, tmp_path).scheduler.state == "lapsed"


def test_job_queue(conn: sqlite3.Connection, tmp_path: Path, user_id: int) -> None:
    assert _load(conn, tmp_path).queue == []
    jobs.create(conn, user_id, "sync", {}, now=NOW - 30)
    jobs.create(conn, user_id, "sync", {}, now=NOW - 90)
    running = jobs.create(conn, user_id, "import", {}, now=NOW - 500)
    jobs.start(conn, running.id, "app:h:1:x", now=NOW - 400)
    done = jobs.create(conn, user_id, "enrich", {}, now=NOW - 1000)
    jobs.finish(conn, done.id, "done", now=NOW - 900)
    stats = _load(conn, tmp_path)
    assert stats.queue == [admin.QueueRow("import", 0, 1, None),
                           admin.QueueRow("sync", 2, 0, NOW - 90)]
    assert stats.oldest_waiting_at == NOW - 90
