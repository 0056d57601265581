"""A time-zone change: the local-time rollups recounted in short transactions.

Days, hours and weekdays are local, so a new zone moves every play's hour; done in one
transaction that held the write lock for 6-16 s at 500k plays. Here, in three phases:

1. The plays are read a chunk at a time (each chunk its own short transaction), in the order
   of their key, with the position reached stored alongside, so a crash resumes where it
   stopped. Each chunk adds its plays' new hours to rebuild_hours and, for the few plays
   whose month is not the same in both zones (those near a month's edge), how they change
   the monthly rollups. Pages read the old zone, whole, throughout.
2. The monthly rollups are as big as the plays (one row per track and month), so they are
   changed by those differences, one month per transaction. Meanwhile the readers of track,
   artist and album months (period_totals, entities) sum the plays instead (months_moving),
   so no page reads a month half moved; a crash here is finished at the next start.
3. One transaction puts the new hours and days, the month totals and the zone in place.

A write to the plays meanwhile (hiding a rule, a restore) bumps the history version: in
phase 1 the recount starts again; in phase 2 (where hiding waits) the rollups are rebuilt
whole, as before.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from mtm import db, history, jobs, leases
from mtm.db import transaction

KIND = "timezone"
# sync.LEASE, the lease on the user's history (sync imports history, which imports this).
LEASE = "sync"
# Plays summed per transaction: well under 0.1 s of work, so another write waits no longer.
CHUNK = 5_000
LEASE_SECONDS = 600
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
               months_after = NULL, history_version = excluded.history_version,
               started_at = excluded.started_at""",
        (user_id, timezone, current[0] if current else "UTC",
         history.history_version(conn, user_id), now))


def begin(conn: sqlite3.Connection, user_id: int, timezone: str,
          now: int | None = None) -> bool:
    """Start recounting in `timezone`, or resume an unfinished recount in the same zone;
    True when it resumes."""
    with transaction(conn):
        row = conn.execute("SELECT timezone, history_version, months_after FROM "
                           "rollup_rebuilds WHERE user_id = ?", (user_id,)).fetchone()
        if row is not None and tuple(row[:2]) == (timezone,
                                                  history.history_version(conn, user_id)):
            return True
        if row is not None and row[2] is not None:
            # Its months are half moved: finished first, then the zone asked for now.
            _finish(conn, user_id)
        _reset(conn, user_id, timezone, int(now or time.time()))
        return False


def cancel(conn: sqlite3.Connection, user_id: int) -> None:
    """Drop an unfinished recount (the zone stays as it is), or finish it once its months
    are moving (they are half in the new zone)."""
    if months_moving(conn, user_id):
        _finish(conn, user_id)
        return
    with transaction(conn):
        _forget(conn, user_id)


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
        if conn.execute("SELECT months_after IS NOT NULL FROM rollup_rebuilds "
                        "WHERE user_id = ?", (user_id,)).fetchone()[0]:
            return 0  # every play is summed; its months are moving
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


def months_moving(conn: sqlite3.Connection, user_id: int) -> bool:
    """True while the user's monthly rollups are being moved month by month (the last
    phase): readers of track, artist and album months sum the plays instead meanwhile."""
    return conn.execute("SELECT 1 FROM rollup_rebuilds WHERE user_id = ? AND months_after "
                        "IS NOT NULL", (user_id,)).fetchone() is not None


def _everything_again(conn: sqlite3.Connection, user_id: int, timezone: str) -> None:
    # The plays changed while months were moving (an artist merged by a lookup): the
    # rollups are a mix, so they are rebuilt whole, in one transaction, as before.
    conn.execute("INSERT INTO preferences (user_id, timezone) VALUES (?, ?) "
                 "ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone",
                 (user_id, timezone))
    history.rebuild_rollups(conn, user_id)
    _forget(conn, user_id)


def _forget(conn: sqlite3.Connection, user_id: int) -> None:
    for table in _SHADOW_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
    conn.execute("DELETE FROM rollup_rebuilds WHERE user_id = ?", (user_id,))


def start_moving(conn: sqlite3.Connection, user_id: int) -> bool:
    """Once every play is summed, begin moving the monthly rollups; False (nothing begun)
    when the plays changed since the sums began or some are not summed yet."""
    with transaction(conn):
        row = conn.execute("SELECT after_at, after_key, history_version, months_after "
                           "FROM rollup_rebuilds WHERE user_id = ?", (user_id,)).fetchone()
        if row is None or row[2] != history.history_version(conn, user_id):
            return False
        if row[3] is not None:
            return True
        after = _START if row[0] is None else (row[0], row[1])
        if _next_plays(conn, user_id, after, 1):
            return False
        conn.execute("UPDATE rollup_rebuilds SET months_after = '' WHERE user_id = ?",
                     (user_id,))
        return True


# One month's changes to the track, artist and album months (the album's follow its
# tracks'), then the rows of that month left with nothing: only one that lost plays can be.
# (As with hiding, a row of 0-ms streams only is dropped where a rebuild keeps its zeros.)
_MONTH_CHANGES = (
    """INSERT INTO track_months (user_id, track_id, month, plays, ms_played)
       SELECT user_id, track_id, month, plays, ms_played FROM rebuild_track_months
       WHERE user_id = :user AND month = :month
       ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
           ms_played = ms_played + excluded.ms_played""",
    """INSERT INTO artist_months (user_id, artist_id, month, plays, ms_played)
       SELECT user_id, artist_id, month, plays, ms_played FROM rebuild_artist_months
       WHERE user_id = :user AND month = :month
       ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
           ms_played = ms_played + excluded.ms_played""",
    """INSERT INTO album_months (user_id, album_id, month, plays, ms_played)
       SELECT m.user_id, t.album_id, m.month, sum(m.plays), sum(m.ms_played)
       FROM rebuild_track_months m JOIN tracks t ON t.id = m.track_id
       WHERE m.user_id = :user AND m.month = :month AND t.album_id IS NOT NULL
       GROUP BY t.album_id
       ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
           ms_played = ms_played + excluded.ms_played""",
    """DELETE FROM track_months WHERE user_id = :user AND month = :month AND plays = 0
       AND ms_played = 0 AND track_id IN (SELECT track_id FROM rebuild_track_months
           WHERE user_id = :user AND month = :month AND ms_played < 0)""",
    """DELETE FROM artist_months WHERE user_id = :user AND month = :month AND plays = 0
       AND ms_played = 0 AND artist_id IN (SELECT artist_id FROM rebuild_artist_months
           WHERE user_id = :user AND month = :month AND ms_played < 0)""",
    """DELETE FROM album_months WHERE user_id = :user AND month = :month AND plays = 0
       AND ms_played = 0 AND album_id IN (SELECT t.album_id FROM rebuild_track_months m
           JOIN tracks t ON t.id = m.track_id WHERE m.user_id = :user AND m.month = :month
           AND m.ms_played < 0)""",
)


def move_month(conn: sqlite3.Connection, user_id: int) -> str | None:
    """Apply the next month's changes to the monthly rollups, in one transaction; the month,
    or None once every month is moved (or the recount is gone)."""
    with transaction(conn):
        row = conn.execute("SELECT timezone, history_version, months_after FROM "
                           "rollup_rebuilds WHERE user_id = ?", (user_id,)).fetchone()
        if row is None or row[2] is None:
            return None
        timezone, version, after = row
        if version != history.history_version(conn, user_id):
            _everything_again(conn, user_id, timezone)
            return None
        month = conn.execute(
            "SELECT min(month) FROM (SELECT min(month) AS month FROM rebuild_track_months "
            "WHERE user_id = ? AND month > ? UNION ALL SELECT min(month) FROM "
            "rebuild_artist_months WHERE user_id = ? AND month > ?)",
            (user_id, after, user_id, after)).fetchone()[0]
        if month is None:
            return None
        for statement in _MONTH_CHANGES:
            conn.execute(statement, {"user": user_id, "month": month})
        conn.execute("UPDATE rollup_rebuilds SET months_after = ? WHERE user_id = ?",
                     (month, user_id))
        return month


def swap(conn: sqlite3.Connection, user_id: int) -> bool:
    """Once the months are moved: put the new hours and days, the month totals and the new
    zone in place, in one transaction; False when the months are not moved yet."""
    with transaction(conn):
        row = conn.execute("SELECT timezone, history_version, months_after FROM "
                           "rollup_rebuilds WHERE user_id = ?", (user_id,)).fetchone()
        if row is None or row[2] is None:
            return False
        timezone, version, after = row
        if version != history.history_version(conn, user_id):
            _everything_again(conn, user_id, timezone)
            return True
        if conn.execute("SELECT 1 FROM rebuild_track_months WHERE user_id = ? AND month > ? "
                        "UNION ALL SELECT 1 FROM rebuild_artist_months WHERE user_id = ? "
                        "AND month > ?", (user_id, after, user_id, after)).fetchone():
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
                # A few rows per month: changed here, with the days they must agree with.
                """INSERT INTO listening_months (user_id, month, source, plays, streams,
                                                 ms_played)
                   SELECT user_id, month, source, plays, streams, ms_played FROM rebuild_months
                   WHERE user_id = ? AND true
                   ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                       streams = streams + excluded.streams,
                       ms_played = ms_played + excluded.ms_played""",
                "DELETE FROM listening_months WHERE user_id = ? AND streams = 0"):
            conn.execute(statement, (user_id,))
        conn.execute("INSERT INTO preferences (user_id, timezone) VALUES (?, ?) "
                     "ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone",
                     (user_id, timezone))
        conn.execute("DELETE FROM rollup_rebuilds WHERE user_id = ?", (user_id,))
        history.bump_version(conn, user_id)
    # The rows built are nobody's now: deleted after, not in the transaction that swaps.
    with transaction(conn):
        if pending(conn, user_id) is None:
            for table in _SHADOW_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (user_id,))
    return True


def finish_moving(conn: sqlite3.Connection) -> list[int]:
    """At start-up: finish the changes a crash cut short while their months were moving
    (the plays are all summed; pages read slower sums until it is done); the users."""
    users = [r[0] for r in conn.execute("SELECT user_id FROM rollup_rebuilds "
                                        "WHERE months_after IS NOT NULL").fetchall()]
    finished = []
    for user_id in users:
        # A worker started beside a live one must not move the months its job is moving.
        holder = jobs.make_holder("start")
        if not leases.acquire(conn, user_id, LEASE, holder, ttl=LEASE_SECONDS,
                              purpose=KIND):
            continue
        try:
            _finish(conn, user_id)
            finished.append(user_id)
        finally:
            leases.release(conn, user_id, LEASE, holder)
    return finished


def _finish(conn: sqlite3.Connection, user_id: int) -> None:
    while True:
        started = time.monotonic()
        if move_month(conn, user_id) is None:
            break
        db.breathe(time.monotonic() - started)
    swap(conn, user_id)


def change(conn: sqlite3.Connection, user_id: int, timezone: str, *,
           chunk: int | None = None, progress: Progress | None = None) -> None:
    """Recount the user's rollups in `timezone` chunk by chunk, move the months, then put
    it all in place (the caller has stored the other preferences; the swap stores the
    zone)."""
    begin(conn, user_id, timezone)
    total = conn.execute("SELECT count(*) FROM plays WHERE user_id = ?",
                         (user_id,)).fetchone()[0]
    done = 0
    while True:
        started = time.monotonic()
        summed = step(conn, user_id, chunk)
        db.breathe(time.monotonic() - started)
        if summed is None:
            return
        done += summed
        if progress is not None:
            progress("Counting your days and hours in the new time zone", min(done, total),
                     total)
        if summed == 0:
            if start_moving(conn, user_id):
                break
            # Plays changed under the last step: step starts again from the first play.
            done = 0
    if progress is not None:
        progress("Moving your monthly figures to the new time zone", done, total)
    _finish(conn, user_id)


# --- as a background job --------------------------------------------------------------


def queue(conn: sqlite3.Connection, user_id: int, timezone: str) -> jobs.Job | None:
    """Queue a time-zone change; None when one is queued or running already."""
    with transaction(conn):
        running = jobs.active(conn, user_id, (KIND,))
        if running is not None and jobs.holder_alive(running.holder) is False:
            # Its process died (another worker's crash): marked interrupted, not waited for.
            jobs.close_abandoned(conn)
            running = jobs.active(conn, user_id, (KIND,))
        if running is not None:
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
