"""Export time and peak memory for a large history, in each format.

    python bench/exports.py [--plays 500000] [--years 10] [--compare 100000]

Builds the demo account's history with `mtm demo-data` in a temporary directory, then runs
each export in a fresh subprocess (so one export's memory never counts against another):
once plain, for the time and the process's peak RSS, and once under tracemalloc, for the
peak of Python allocations. JSON and CSV go through the same async generators the download
responses stream; SQLite writes the snapshot file the download serves. With --compare, a
smaller history is measured too, to show that memory does not grow with the history.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

FORMATS = ("sqlite", "json", "csv")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(db_path: Path, fmt: str, out: Path, trace: bool) -> dict:
    """Run one export of the demo user's data into `out`; return what it cost."""
    from mtm import db, exports
    from mtm.demo import DEMO_SPOTIFY_ID

    database = db.Database(db_path)
    user_id = database.call(lambda c: c.execute(
        "SELECT id FROM users WHERE spotify_id = ?", (DEMO_SPOTIFY_ID,)).fetchone()[0])
    plays = database.call(lambda c: c.execute(
        "SELECT count(*) FROM plays WHERE user_id = ?", (user_id,)).fetchone()[0])
    rss_before = _rss_mb()

    async def stream(chunks) -> int:
        written = 0
        with out.open("wb") as handle:
            async for chunk in chunks:
                handle.write(chunk)
                written += len(chunk)
        return written

    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    if fmt == "sqlite":
        size = exports.write_snapshot(db_path, user_id, out).size_bytes
    elif fmt == "json":
        size = asyncio.run(stream(exports.stream_json(database, user_id)))
    else:
        size = asyncio.run(stream(exports.stream_csv(database, user_id, "Europe/Stockholm")))
    elapsed = time.perf_counter() - started
    result = {"format": fmt, "plays": plays, "seconds": round(elapsed, 2),
              "bytes": size, "rss_before_mb": round(rss_before, 1),
              "rss_peak_mb": round(_rss_mb(), 1)}
    if trace:
        result["python_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 2)
        tracemalloc.stop()
    database.close()
    return result


def _child(db_path: Path, fmt: str, out: Path, trace: bool) -> dict:
    command = [sys.executable, __file__, "--child", fmt, "--db", str(db_path), "--out", str(out)]
    if trace:
        command.append("--trace")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    out.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _history(root: Path, plays: int, years: float) -> Path:
    data = root / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MTM_", "SPOTIFY_"))}
    env.update(MTM_DATA_DIR=str(data), MTM_SECRET_KEY="bench-not-a-secret-0123456789")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mtm", "demo-data", "--plays", str(plays),
                    "--years", str(years)], cwd=root, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"built {plays:,} plays over {years:g} years in {time.perf_counter() - started:.0f} s",
          flush=True)
    return data / "mtm.sqlite3"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plays", type=int, default=500_000)
    parser.add_argument("--years", type=float, default=10)
    parser.add_argument("--compare", type=int, default=0,
                        help="also measure a history of this many plays")
    parser.add_argument("--child", choices=FORMATS, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.db), args.child, Path(args.out), args.trace)))
        return

    sizes = [args.plays] + ([args.compare] if args.compare else [])
    print(f"{'format':<7} {'plays':>9} {'time':>8} {'file':>9} {'RSS before':>11} "
          f"{'RSS peak':>9} {'py peak':>8}")
    with tempfile.TemporaryDirectory(prefix="mtm-bench-exports-") as tmp:
        for n, plays in enumerate(sizes):
            root = Path(tmp) / f"h{n}"
            root.mkdir()
            db_path = _history(root, plays, args.years)
            for fmt in FORMATS:
                out = root / f"export.{fmt}"
                timed = _child(db_path, fmt, out, trace=False)
                traced = _child(db_path, fmt, out, trace=True)
                print(f"{fmt:<7} {timed['plays']:>9,} {timed['seconds']:>7.2f}s "
                      f"{timed['bytes'] / 2**20:>7.1f}MB {timed['rss_before_mb']:>9.1f}MB "
                      f"{timed['rss_peak_mb']:>7.1f}MB {traced['python_peak_mb']:>6.2f}MB",
                      flush=True)


if __name__ == "__main__":
    main()
