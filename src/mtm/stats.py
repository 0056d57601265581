"""Reading listening statistics for the dashboard, in the user's own time zone."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Headline:
    """Whole-history figures shown at the top of the dashboard."""

    plays: int
    hours: float
    artists: int
    tracks: int
    current_streak: int
    longest_streak: int


@dataclass(frozen=True)
class DayTotal:
    """Plays and minutes listened on one local day."""

    day: date
    plays: int
    minutes: int


@dataclass(frozen=True)
class Ranked:
    """An artist or track with its play count and minutes in a period."""

    name: str
    detail: str
    plays: int
    minutes: int
    spotify_id: str | None


@dataclass(frozen=True)
class RecentPlay:
    """One play for the recent-plays list."""

    played_at: datetime
    track: str
    artist: str
    album: str | None
    minutes: float
    skipped: bool
    source: str
    counted: bool = True
    record_key: int = 0

    @property
    def cursor(self) -> Cursor:
        """Where the play stands in the list: (second it ended, record key)."""
        return int(self.played_at.timestamp()), self.record_key

    @property
    def row_id(self) -> str:
        """A stable HTML id for the play's row, so a refreshed list keeps the rows it has."""
        return f"play-{self.cursor[0]}-{self.cursor[1]}"


# Where a page of plays ends: (second, record key) of its last play, as plays are ordered.
Cursor = tuple[int, int]


def local_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the user is."""
    now = now or datetime.now(ZoneInfo("UTC"))
    return now.astimezone(ZoneInfo(timezone)).date()


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier, or that month's last day when it is shorter."""
    month = day.month - 1 - months
    year, month = day.year + month // 12, month % 12 + 1
    # 31 August minus six months is the end of February, not an error.
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def local_midnight(day: date, timezone: str) -> int:
    """UTC seconds of the start of a local day (correct across DST changes)."""
    return int(datetime.combine(day, time(0), ZoneInfo(timezone)).timestamp())


def headline(conn: sqlite3.Connection, user_id: int, today: date) -> Headline:
    """Totals from the rollups, plus current and longest daily streaks."""
    plays, ms = conn.execute(
        "SELECT coalesce(sum(plays), 0), coalesce(sum(ms_played), 0) FROM listening_days "
        "WHERE user_id = ?", (user_id,)).fetchone()
    # Played means at least one stream of 30 s or more; a track only ever skipped is not.
    artists = conn.execute("SELECT count(*) FROM user_artists WHERE user_id = ? AND plays > 0",
                           (user_id,)).fetchone()[0]
    tracks = conn.execute("SELECT count(*) FROM user_tracks WHERE user_id = ? AND plays > 0",
                          (user_id,)).fetchone()[0]
    days = [date.fromisoformat(d) for (d,) in conn.execute(
        "SELECT day FROM listening_days WHERE user_id = ? AND plays > 0 ORDER BY day",
        (user_id,))]
    current, longest = streaks(days, today)
    return Headline(plays, round(ms / 3_600_000, 1), artists, tracks, current, longest)


def streaks(days: list[date], today: date) -> tuple[int, int]:
    """(current, longest) runs of consecutive days; today not yet listened keeps the run."""
    longest = run = 0
    previous: date | None = None
    for day in days:
        run = run + 1 if previous and day - previous == timedelta(days=1) else 1
        longest = max(longest, run)
        previous = day
    alive = previous is not None and today - previous <= timedelta(days=1)
    return (run if alive else 0), longest


def daily_totals(conn: sqlite3.Connection, user_id: int, last_day: date, days: int
                 ) -> list[DayTotal]:
    """One entry per day for `days` days ending on `last_day`, zero where nothing played."""
    first_day = last_day - timedelta(days=days - 1)
    found = {
        row["day"]: row for row in conn.execute(
            "SELECT day, plays, ms_played FROM listening_days "
            "WHERE user_id = ? AND day BETWEEN ? AND ?",
            (user_id, first_day.isoformat(), last_day.isoformat()))
    }
    series = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        row = found.get(day.isoformat())
        series.append(DayTotal(day, row["plays"] if row else 0,
                               round(row["ms_played"] / 60000) if row else 0))
    return series


def top_artists(conn: sqlite3.Connection, user_id: int, start: int, end: int, limit: int = 5
                ) -> list[Ranked]:
    """The most-played artists between two UTC instants."""
    rows = conn.execute(
        """SELECT a.name, a.spotify_id, t.plays, t.ms FROM (
               SELECT artist_id, sum(counted) AS plays, sum(ms_played) AS ms FROM plays
               WHERE user_id = ? AND played_at >= ? AND played_at < ?
               GROUP BY artist_id HAVING plays > 0 ORDER BY plays DESC, ms DESC LIMIT ?) AS t
           JOIN artists a ON a.id = t.artist_id ORDER BY t.plays DESC, t.ms DESC, a.name""",
        (user_id, start, end, limit))
    return [Ranked(r["name"], "", r["plays"], round(r["ms"] / 60000), r["spotify_id"])
            for r in rows]


def top_tracks(conn: sqlite3.Connection, user_id: int, start: int, end: int, limit: int = 5
               ) -> list[Ranked]:
    """The most-played tracks between two UTC instants."""
    rows = conn.execute(
        """SELECT tr.name, tr.spotify_id, a.name AS artist, t.plays, t.ms FROM (
               SELECT track_id, sum(counted) AS plays, sum(ms_played) AS ms FROM plays
               WHERE user_id = ? AND played_at >= ? AND played_at < ?
               GROUP BY track_id HAVING plays > 0 ORDER BY plays DESC, ms DESC LIMIT ?) AS t
           JOIN tracks tr ON tr.id = t.track_id JOIN artists a ON a.id = tr.artist_id
           ORDER BY t.plays DESC, t.ms DESC, tr.name""",
        (user_id, start, end, limit))
    return [Ranked(r["name"], r["artist"], r["plays"], round(r["ms"] / 60000), r["spotify_id"])
            for r in rows]


def recent_plays(conn: sqlite3.Connection, user_id: int, timezone: str,
                 before: Cursor | None = None, limit: int = 20
                 ) -> tuple[list[RecentPlay], Cursor | None]:
    """A page of plays, newest first, and the cursor of the next page (None at the end)."""
    rows = conn.execute(
        """SELECT p.played_at, p.record_key, p.ms_played, p.skipped, p.source, p.counted,
                  tr.name AS track, a.name AS artist, al.name AS album
           FROM plays p JOIN tracks tr ON tr.id = p.track_id
           JOIN artists a ON a.id = p.artist_id LEFT JOIN albums al ON al.id = tr.album_id
           WHERE p.user_id = ? AND (p.played_at, p.record_key) < (?, ?)
           ORDER BY p.played_at DESC, p.record_key DESC LIMIT ?""",
        (user_id, *(before or (2**62, 0)), limit + 1)).fetchall()
    zone = ZoneInfo(timezone)
    page = [RecentPlay(datetime.fromtimestamp(r["played_at"], zone), r["track"], r["artist"],
                       r["album"], round(r["ms_played"] / 60000, 1), bool(r["skipped"]),
                       r["source"], bool(r["counted"]), r["record_key"]) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return page, (last["played_at"], last["record_key"]) if last else None


def plays_down_to(conn: sqlite3.Connection, user_id: int, cursor: Cursor) -> int:
    """How many plays (short streams included) are at `cursor` or newer, as the list orders them."""
    return conn.execute("SELECT count(*) FROM plays WHERE user_id = ? "
                        "AND (played_at, record_key) >= (?, ?)", (user_id, *cursor)).fetchone()[0]
