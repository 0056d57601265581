"""How long a small write waits while a big one runs: `python bench/writes.py --data DIR`.

DIR is a data directory holding a large history (a copy: the bench writes to it; copy
/work/benchdata/b500.orig with `cp -r`, never use the original). For each big write it runs
the same action twice, as the code did before (in one transaction, holding the write lock
throughout) and as it does now (in short chunks, each its own transaction), while a second
thread does a sync-sized write every 50 ms (one transaction inserting 50 rows into a scratch
table) and times each from asking for the lock to its commit. It reports, per action, how
long the action took and the longest and p95 wait of the small writer.

  time-zone change   the rollups recounted in another zone (mtm.rezone), then back
  hide / show        the most played artist and the most played playlist hidden
                     (mtm.hiding.add), then shown again (mtm.hiding.remove)

`--only timezone` or `--only hiding` runs one kind; `--now-only` leaves out the runs as
before (each takes the lock for tens of seconds at 500k plays). The data directory is left with the
zone and the rules it had (the scratch table is dropped).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mtm import db, hiding, history, preferences, rezone  # noqa: E402

INTERVAL = 0.05
ROWS = 50


class SmallWriter:
    """A thread writing a sync-sized transaction every 50 ms and timing each one's wait."""

    def __init__(self, path: Path) -> None:
        self.conn = db.connect(path)
        self.conn.execute("PRAGMA busy_timeout = 120000")
        self.conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (id INTEGER PRIMARY KEY, "
                          "at REAL, payload TEXT)")
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT INTO bench_probe (at, payload) VALUES (?, ?)",
                                  [(started, "x" * 200)] * ROWS)
            self.conn.execute("COMMIT")
            self.waits.append(time.perf_counter() - started)
            self._stop.wait(INTERVAL)

    @contextlib.contextmanager
    def running(self) -> Iterator[SmallWriter]:
        """Write while the block runs."""
        self.waits = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def close(self) -> None:
        """Drop the scratch table."""
        self.conn.execute("DROP TABLE IF EXISTS bench_probe")
        self.conn.close()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)]


def measure(writer: SmallWriter, label: str, action: Callable[[], object]) -> None:
    """Run `action` while the small writer writes; print its time and the waits."""
    time.sleep(0.3)
    with writer.running():
        time.sleep(0.2)
        started = time.perf_counter()
        action()
        took = time.perf_counter() - started
        time.sleep(0.2)
    waits = writer.waits
    print(f"| {label} | {took * 1000:,.0f} | {len(waits)} | {_p95(waits) * 1000:,.0f} | "
          f"{max(waits) * 1000:,.0f} |", flush=True)


def one_transaction(conn: sqlite3.Connection, fn: Callable[[], object]) -> Callable[[], None]:
    """The action as it was before: all of it inside one write transaction."""
    def run() -> None:
        with db.transaction(conn):
            fn()
    return run


def old_timezone_change(conn: sqlite3.Connection, user_id: int, zone: str) -> None:
    """What preferences.save did before: store the zone and rebuild, in one transaction."""
    with db.transaction(conn):
        conn.execute("INSERT INTO preferences (user_id, timezone) VALUES (?, ?) "
                     "ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone",
                     (user_id, zone))
        history.rebuild_rollups(conn, user_id)


def bench_timezone(conn: sqlite3.Connection, writer: SmallWriter, user_id: int,
                   before: bool) -> None:
    """A time-zone change there and back, each way as before and as now."""
    home = preferences.load(conn, user_id).timezone
    away = "Pacific/Auckland" if home != "Pacific/Auckland" else "Asia/Tokyo"
    if before:
        measure(writer, f"time-zone change to {away}, before (one transaction)",
                lambda: old_timezone_change(conn, user_id, away))
        measure(writer, f"time-zone change to {home}, now (chunked)",
                lambda: rezone.change(conn, user_id, home))
    measure(writer, f"time-zone change to {away}, now (chunked)",
            lambda: rezone.change(conn, user_id, away))
    if before:
        measure(writer, f"time-zone change to {home}, before (one transaction)",
                lambda: old_timezone_change(conn, user_id, home))
    else:
        measure(writer, f"time-zone change to {home}, now (chunked)",
                lambda: rezone.change(conn, user_id, home))


def bench_hiding(conn: sqlite3.Connection, writer: SmallWriter, user_id: int,
                 before: bool) -> None:
    """Hide and show the most played artist and playlist, as before and as now."""
    artist = conn.execute("SELECT artist_id, plays FROM user_artists WHERE user_id = ? "
                          "ORDER BY plays DESC LIMIT 1", (user_id,)).fetchone()
    context = conn.execute("SELECT context_uri, count(*) FROM plays WHERE user_id = ? AND "
                           "context_uri LIKE 'spotify:playlist:%' GROUP BY context_uri "
                           "ORDER BY count(*) DESC LIMIT 1", (user_id,)).fetchone()
    wanted = [(f"the top artist ({artist[1]:,} plays)", hiding.RuleIn("artist", artist[0]))]
    if context is not None:
        wanted.append((f"the top playlist ({context[1]:,} plays)",
                       hiding.RuleIn("context", context_uri=context[0])))
    for what, rule in wanted:
        ways = [("before (one transaction)", lambda f: one_transaction(conn, f))] * before
        for how, wrap in [*ways, ("now (chunked)", lambda f: f)]:
            made: list[hiding.Change] = []
            measure(writer, f"hide {what}, {how}",
                    wrap(lambda r=rule, m=made: m.append(hiding.add(conn, user_id, r))))
            measure(writer, f"show {what} again, {how}",
                    wrap(lambda m=made: hiding.remove(conn, user_id, m[0].rule_id)))


def main() -> int:
    """Run the benches on the data directory given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", metavar="DIR", type=Path, required=True,
                        help="a data directory with a large history (a copy: it is written)")
    parser.add_argument("--only", choices=("timezone", "hiding"))
    parser.add_argument("--now-only", action="store_true",
                        help="leave out the runs as before (one transaction each)")
    args = parser.parse_args()
    path = args.data / "mtm.sqlite3"
    if not path.is_file():
        parser.error(f"no database in {args.data}")
    conn = db.connect(path)
    db.migrate(conn)
    user_id, plays = conn.execute("SELECT user_id, count(*) FROM plays GROUP BY user_id "
                                  "ORDER BY count(*) DESC LIMIT 1").fetchone()
    print(f"{plays:,} plays of user {user_id}; a small writer every {INTERVAL * 1000:.0f} ms, "
          f"{ROWS} rows a transaction\n")
    print("| action | took (ms) | small writes | their p95 wait (ms) | longest wait (ms) |")
    print("|---|---:|---:|---:|---:|")
    writer = SmallWriter(path)
    try:
        if args.only in (None, "timezone"):
            bench_timezone(conn, writer, user_id, not args.now_only)
        if args.only in (None, "hiding"):
            bench_hiding(conn, writer, user_id, not args.now_only)
    finally:
        writer.close()
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
