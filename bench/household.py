"""The admin page and the household page at five users: `python bench/household.py`.

Both pages read only rollups, never the plays, so this builds the rollups a household of five
with `--plays` plays each over `--years` years would have (user_artists, artist_months,
listening_months, a sync run every 30 minutes for a year, some hidden plays), directly in
SQL in a temporary database, and times in-process, with no cache:

  admin.load          everything /admin/stats shows
  household.overview  one member's page against the four others (this month and all time);
                      then from the read cache, and after another member's history changed
                      (only that member's figures are read again)

Rollup sizes follow the demo catalogue's growth (about 9,000 artists heard at 500,000 plays,
20,000 at 2,000,000) and about 800 artists heard a month. Prints median and p95 (nearest
rank) of `--runs` runs each.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mtm import admin, db, household, users  # noqa: E402
from mtm.cache import Cache  # noqa: E402

MEMBERS = 5
NOW = 1_790_000_000


def artists_heard(plays: int) -> int:
    """Artists a listener with this many plays has heard, as the demo catalogue grows."""
    return max(400, int(9_000 * (plays / 500_000) ** 0.58))


def build(path: Path, plays: int, years: int, seed: int = 1) -> list[int]:
    """Five users with the rollups of `plays` plays each; return their ids."""
    conn = db.connect(path)
    db.migrate(conn)
    rng = random.Random(seed)
    heard = artists_heard(plays)
    catalogue = heard * 2
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO artists (id, name) VALUES (?, ?)",
                     [(i, f"Artist {i}") for i in range(1, catalogue + 1)])
    conn.execute("COMMIT")
    # The months up to NOW's own, so "this month" has listening as a real one would.
    last = datetime.fromtimestamp(NOW, UTC)
    index = last.year * 12 + last.month - 1
    months = [f"{i // 12}-{i % 12 + 1:02d}" for i in range(index - years * 12 + 1, index + 1)]
    ids = []
    for n in range(MEMBERS):
        user_id = users.upsert_user(conn, f"member{n}", f"Member {n}")
        household.join(conn, user_id, NOW)
        ids.append(user_id)
        mine = rng.sample(range(1, catalogue + 1), heard)
        # Zipf-like: a listener's first artists take most of the plays.
        weights = [1 / (rank + 1) for rank in range(heard)]
        scale = plays / sum(weights)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO user_artists VALUES (?, ?, ?, ?, ?, ?)",
            [(user_id, artist, max(1, int(w * scale)), int(w * scale) * 200_000, 0, NOW)
             for artist, w in zip(mine, weights, strict=True)])
        per_month = plays // len(months)
        rows = []
        for month in months:
            for rank, artist in enumerate(mine[:800]):
                count = max(1, int(per_month / (rank + 1) / 7.3))
                rows.append((user_id, artist, month, count, count * 200_000))
        conn.executemany("INSERT INTO artist_months VALUES (?, ?, ?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO listening_months VALUES (?, ?, ?, ?, ?, ?)",
            [(user_id, month, source, per_month // 3, per_month // 3 + 50,
              per_month // 3 * 200_000) for month in months for source in ("api", "export",
                                                                           "account")])
        conn.executemany(
            "INSERT INTO sync_runs (user_id, started_at, finished_at, outcome, plays_added) "
            "VALUES (?, ?, ?, 'ok', 3)",
            [(user_id, NOW - 1800 * k, NOW - 1800 * k + 5) for k in range(17_520)])
        conn.execute("COMMIT")
    conn.close()
    return ids


def timed(fn, runs: int) -> tuple[float, float]:
    """(median, p95) milliseconds of `runs` calls."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.95 * len(samples)))]


def main() -> int:
    """Build, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=1_000_000)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mtm-household-") as tmp:
        path = Path(tmp) / "mtm.sqlite3"
        started = time.perf_counter()
        ids = build(path, args.plays, args.years)
        print(f"built {MEMBERS} users' rollups ({artists_heard(args.plays):,} artists each) "
              f"in {time.perf_counter() - started:.1f} s")
        conn = db.connect(path)
        rows = [
            ("admin.load", timed(lambda: admin.load(
                conn, now=NOW, database=path, backups_dir=Path(tmp) / "backups",
                sync_interval=1800), args.runs)),
            ("household.overview", timed(lambda: household.overview(
                conn, ids[0], now=NOW), args.runs)),
        ]
        cache = Cache(size=256)
        household.overview(conn, ids[0], now=NOW, cache=cache)
        rows.append(("  same, cached", timed(lambda: household.overview(
            conn, ids[0], now=NOW, cache=cache), args.runs)))

        def after_a_sync() -> None:
            # Another member's history changed: only their two profiles are read again.
            conn.execute("UPDATE users SET history_version = history_version + 1 WHERE id = ?",
                         (ids[1],))
            household.overview(conn, ids[0], now=NOW, cache=cache)

        rows.append(("  after one's sync", timed(after_a_sync, args.runs)))
        conn.close()
    print(f"{'what':<20} {'median ms':>10} {'p95 ms':>8}   (load average {os.getloadavg()[0]:.1f})")
    for name, (median, p95) in rows:
        print(f"{name:<20} {median:>10.2f} {p95:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
