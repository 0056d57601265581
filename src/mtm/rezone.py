"""A time-zone change: the local-time rollups recounted in short chunks, then put in place.

Days, hours and weekdays are local, so a new zone moves every play's hour; done in one
transaction that held the write lock for 6-16 s at 500k plays. Here the plays are read a
chunk at a time (each chunk its own short transaction), in the order of their key, with the
position reached stored alongside, so a crash resumes where it stopped. Each chunk adds its
plays' new hours to rebuild_hours, and, for the few plays whose month is not the same in
both zones (those near a month's edge), how they change the monthly rollups. The monthly
rollups are as big as the plays (one row per track and month), so they are changed by those
differences, not rewritten. Until the last step the user's zone and rollups stay the old
ones, and pages read them consistently; the last step puts the new hours and the month
changes in place and stores the zone, in one transaction. A write to the plays meanwhile
(hiding a rule, a restore) bumps the history version, and the recount starts again rather
than put in place figures that miss it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from mtm import history, jobs, leases
from mtm.db import transaction

KIND = "timezone"
# sync.LEASE, the lease on the user's history (sync imports history, which imports this).
LEASE = "sync"
# Plays summed per transaction: well under 0.1 s of work, so another write waits no longer.
CHUNK = 5_000
LEASE_SECONDS = 600
# The page cache of the swap's connection, in KiB as PRAGMA cache_size takes it (negative).
SWAP_CACHE_KIB = -131_072
LEASE_WAIT_SECONDS = 60
# Where the recount begins: before every real play key.
_START = (-(2 ** 63), -(2 ** 63))
_SHADOW_TABLES = ("rebuild_hours", "rebuild_months", "rebuild_track_months",
                  "rebuild_artist_months")

Progress = Callable[..., None]


def pending(conn: sqlite3.Connection, user_id: int) -> str | None:
    """The zone the user's rollups are being recounted in, if a change is unfinished."""
    row = conn.execute("SELECT timezone FROM rollup_rebuilds WHERE user_id = ?",
                       (user_id,)).fetchone()
    return row[0] if row else None


def _reset(conn: sqlite3.Connection, user_id: int, timezone: str, now: int) -> None:
    for table in _SHADOW_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
    # The zone the rollups are in now; they stay in it until the swap.
    current = conn.execute("SELECT timezone FROM preferences WHERE user_id = ?",
                           (user_id,)).fetchone()
    conn.execute(
        """INSERT INTO rollup_rebuilds (user_id, timezone, from_timezone, after_at, after_key,
                                        history_version, started_at)
           VALUES (?, ?, ?, NULL, NULL, ?, ?)
           ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone,
               from_timezone = excluded.from_timezone, after_at = NULL, after_key = NULL,
               history_version = excluded.history_version, started_at = excluded.started_at""",
        (user_id, timezone, current[0] if current else "UTC",
         history.history_version(conn, user_id), now))


def begin(conn: sqlite3.Connection, user_id: int, timezone: str,
          now: int | None = None) -> bool:
    """Start recounting in `timezone`, or resume an unfinished recount in the same zone;
    True when it resumes."""
    with transaction(conn):
        row = conn.execute("SELECT timezone, history_version FROM rollup_rebuilds "
                           "WHERE user_id = ?", (user_id,)).fetchone()
        if row is not None and tuple(row) == (timezone, history.history_version(conn, user_id)):
            return True
        _reset(conn, user_id, timezone, int(now or time.time()))
        return False


def cancel(conn: sqlite3.Connection, user_id: int) -> None:
    """Drop an unfinished recount (the zone stays as it is)."""
    with transaction(conn):
        for table in _SHADOW_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        conn.execute("DELETE FROM rollup_rebuilds WHERE user_id = ?", (user_id,))


def _next_plays(conn: sqlite3.Connection, user_id: int, after: tuple[int, int],
                limit: int) -> list[tuple]:
    return conn.execute(
        """SELECT played_at, record_key, ms_played, counted, source, track_id, artist_id
           FROM plays WHERE user_id = ? AND (played_at, record_key) > (?, ?)
           ORDER BY played_at, record_key LIMIT ?""", (user_id, *after, limit)).fetchall()


def _add_chunk(conn: sqlite3.Connection, user_id: int, old: history.LocalTime,
               new: history.LocalTime, plays: list[tuple]) -> None:
    hours: dict[tuple[str, int, int], list[int]] = {}
    # How the monthly figures change: + in the new zone's month, - in the old one's.
    months: dict[tuple[str, str], list[int]] = {}
    track_months: dict[tuple[int, str], list[int]] = {}
    artist_months: dict[tuple[int, str], list[int]] = {}
    for played_at, _, ms, counted, source, track_id, artist_id in plays:
        key = new(played_at)
        entry = hours.setdefault(key, [0, 0])
        entry[0] += counted
        entry[1] += ms
        month_name, was = key[0][:7], old(played_at)[0][:7]
        if month_name == was:
            continue
        for name, sign in ((month_name, 1), (was, -1)):
            month = months.setdefault((name, source), [0, 0, 0])
            month[0] += sign * counted
            month[1] += sign
            month[2] += sign * ms
            for totals, subject in ((track_months, track_id), (artist_months, artist_id)):
                entry = totals.setdefault((subject, name), [0, 0])
                entry[0] += sign * counted
                entry[1] += sign * ms
    # A chunk ends anywhere in a day or month: what the chunk before summed is added to.
    conn.executemany(
        """INSERT INTO rebuild_hours (user_id, day, hour, weekday, plays, ms_played)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               ms_played = ms_played + excluded.ms_played""",
        [(user_id, *key, n, ms) for key, (n, ms) in hours.items()])
    conn.executemany(
        """INSERT INTO rebuild_months (user_id, month, source, plays, streams, ms_played)
           VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
               streams = streams + excluded.streams,
               ms_played = ms_played + excluded.ms_played""",
        [(user_id, *key, *values) for key, values in months.items()])
    for table, column, totals in (("rebuild_track_months", "track_id", track_months),
                                  ("rebuild_artist_months", "artist_id", artist_months)):
        conn.executemany(
            f"""INSERT INTO {table} (user_id, {column}, month, plays, ms_played)
                VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET
                    plays = plays + excluded.plays,
                    ms_played = ms_played + excluded.ms_played""",
            [(user_id, *key, *values) for key, values in totals.items()])


def step(conn: sqlite3.Connection, user_id: int, limit: int | None = None,
         now: int | None = None) -> int | None:
    """Sum the next chunk of plays in the new zone, in one transaction; how many it summed
    (0 once every play is summed), None when there is no recount under way."""
    with transaction(conn):
        row = conn.execute("SELECT timezone, after_at, after_key, history_version, "
                           "from_timezone FROM rollup_rebuilds WHERE user_id = ?",
                           (user_id,)).fetchone()
        if row is None:
            return None
        timezone, after_at, after_key, version, from_timezone = row
        if version != history.history_version(conn, user_id):
            # The plays changed since the sums began: they would miss it, so begin again.
            _reset(conn, user_id, timezone, int(now or time.time()))
            after_at = None
            from_timezone = conn.execute("SELECT from_timezone FROM rollup_rebuilds "
                                         "WHERE user_id = ?", (user_id,)).fetchone()[0]
        after = _START if after_at is None else (after_at, after_key)
        plays = _next_plays(conn, user_id, after, limit or CHUNK)
        if not plays:
            return 0
        _add_chunk(conn, user_id, history.LocalTime(from_timezone),
                   history.LocalTime(timezone), plays)
        conn.execute("UPDATE rollup_rebuilds SET after_at = ?, after_key = ? WHERE user_id = ?",
                     (plays[-1][0], plays[-1][1], user_id))
        return len(plays)


def swap(conn: sqlite3.Connection, user_id: int) -> bool:
    """Put the recounted rollups and the new zone in place, in one transaction; False (and
    nothing swapped) when the plays changed since the sums began or some are not summed."""
    # The month changes touch rows all over three big tables: with room for their pages the
    # transaction, and so the lock it holds, is about half as long.
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {SWAP_CACHE_KIB}")
    try:
        return _swap(conn, user_id)
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")


def _swap(conn: sqlite3.Connection, user_id: int) -> bool:
    with transaction(conn):
        row = conn.execute("SELECT timezone, after_at, after_key, history_version "
                           "FROM rollup_rebuilds WHERE user_id = ?", (user_id,)).fetchone()
        if row is None or row[3] != history.history_version(conn, user_id):
            return False
        timezone, after_at, after_key, _ = row
        after = _START if after_at is None else (after_at, after_key)
        if _next_plays(conn, user_id, after, 1):
            return False
        for table in ("listening_days", "listening_hours", "listening_weekhours"):
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        for statement in (
                """INSERT INTO listening_hours (user_id, day, hour, weekday, plays, ms_played)
                   SELECT user_id, day, hour, weekday, plays, ms_played FROM rebuild_hours
                   WHERE user_id = ?""",
                """INSERT INTO listening_days (user_id, day, plays, ms_played)
                   SELECT user_id, day, sum(plays), sum(ms_played) FROM rebuild_hours
                   WHERE user_id = ? GROUP BY day""",
                """INSERT INTO listening_weekhours (user_id, weekday, hour, plays, ms_played)
                   SELECT user_id, weekday, hour, sum(plays), sum(ms_played) FROM rebuild_hours
                   WHERE user_id = ? GROUP BY weekday, hour""",
                # The months: only what the plays near their edges change.
                """INSERT INTO listening_months (user_id, month, source, plays, streams,
                                                 ms_played)
                   SELECT user_id, month, source, plays, streams, ms_played FROM rebuild_months
                   WHERE user_id = ? AND true
                   ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                       streams = streams + excluded.streams,
                       ms_played = ms_played + excluded.ms_played""",
                """INSERT INTO track_months (user_id, track_id, month, plays, ms_played)
                   SELECT user_id, track_id, month, plays, ms_played FROM rebuild_track_months
                   WHERE user_id = ? AND true
                   ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                       ms_played = ms_played + excluded.ms_played""",
                """INSERT INTO artist_months (user_id, artist_id, month, plays, ms_played)
                   SELECT user_id, artist_id, month, plays, ms_played FROM rebuild_artist_months
                   WHERE user_id = ? AND true
                   ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                       ms_played = ms_played + excluded.ms_played""",
                """INSERT INTO album_months (user_id, album_id, month, plays, ms_played)
                   SELECT m.user_id, t.album_id, m.month, sum(m.plays), sum(m.ms_played)
                   FROM rebuild_track_months m JOIN tracks t ON t.id = m.track_id
                   WHERE m.user_id = ? AND t.album_id IS NOT NULL GROUP BY t.album_id, m.month
                   ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                       ms_played = ms_played + excluded.ms_played""",
                "DELETE FROM listening_months WHERE user_id = ? AND streams = 0"):
            conn.execute(statement, (user_id,))
        # A month a track, artist or album no longer has plays in holds nothing now: only
        # a month that lost plays can be one. (As with hiding, a row of 0-ms streams only
        # is dropped where a rebuild keeps its zeros.)
        for table, key, lost in (
                ("track_months", "user_id, track_id, month",
                 "SELECT user_id, track_id, month FROM rebuild_track_months "
                 "WHERE user_id = ? AND ms_played < 0"),
                ("artist_months", "user_id, artist_id, month",
                 "SELECT user_id, artist_id, month FROM rebuild_artist_months "
                 "WHERE user_id = ? AND ms_played < 0"),
                ("album_months", "user_id, album_id, month",
                 "SELECT m.user_id, t.album_id, m.month FROM rebuild_track_months m "
                 "JOIN tracks t ON t.id = m.track_id WHERE m.user_id = ? "
                 "GROUP BY t.album_id, m.month HAVING sum(m.ms_played) < 0")):
            conn.execute(f"DELETE FROM {table} WHERE ({key}) IN ({lost}) AND plays = 0 "
                         "AND ms_played = 0", (user_id,))
        conn.execute("INSERT INTO preferences (user_id, timezone) VALUES (?, ?) "
                     "ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone",
                     (user_id, timezone))
        for table in _SHADOW_TABLES:
            conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
        conn.execute("DELETE FROM rollup_rebuilds WHERE user_id = ?", (user_id,))
        history.bump_version(conn, user_id)
        return True


def change(conn: sqlite3.Connection, user_id: int, timezone: str, *,
           chunk: int | None = None, progress: Progress | None = None) -> None:
    """Recount the user's rollups in `timezone` chunk by chunk, then swap them in (the
    caller has stored the other preferences; the zone is stored by the swap)."""
    begin(conn, user_id, timezone)
    total = conn.execute("SELECT count(*) FROM plays WHERE user_id = ?",
                         (user_id,)).fetchone()[0]
    done = 0
    while True:
        summed = step(conn, user_id, chunk)
        if summed is None:
            return
        done += summed
        if progress is not None:
            progress("Counting your days and hours in the new time zone", min(done, total),
                     total)
        if summed == 0:
            if swap(conn, user_id):
                return
            # Plays changed under the last step: step starts again from the first play.
            done = 0


# --- as a background job --------------------------------------------------------------


def queue(conn: sqlite3.Connection, user_id: int, timezone: str) -> jobs.Job | None:
    """Queue a time-zone change; None when one is queued or running already."""
    with transaction(conn):
        if jobs.active(conn, user_id, (KIND,)) is not None:
            return None
        return jobs.create(conn, user_id, KIND, {"timezone": timezone})


async def rezone_job(ctx: jobs.JobContext) -> dict[str, Any]:
    """Recount the rollups in the new zone under the history lease (syncs wait for it)."""
    user_id, timezone = ctx.job.user_id, str(ctx.job.params["timezone"])
    holder = jobs.make_holder(f"timezone-{ctx.job.id}")
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while not await ctx.db.run(leases.acquire, user_id, LEASE, holder,
                               ttl=LEASE_SECONDS, purpose=KIND):
        if time.monotonic() > deadline:
            lease = await ctx.db.run(leases.holding, user_id, LEASE)
            running = lease.running if lease else "A sync of your account is running"
            raise jobs.JobError(f"{running}, so your time zone was not changed yet. Save your "
                                "preferences again in a moment.", retryable=True)
        ctx.progress("Waiting for a sync of your account to finish", force=True)
        await asyncio.sleep(1)
    try:
        await run_in_threadpool(ctx.db.call, change, user_id, timezone,
                                progress=ctx.progress)
    finally:
        await ctx.db.run(leases.release, user_id, LEASE, holder)
    return {"timezone": timezone}
