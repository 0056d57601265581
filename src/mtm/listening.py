"""The read side: every figure a page shows is read here, in the user's time zone.

Whole-history figures come from the rollups kept on write; a short span (the dashboard's
month) reads the plays table once, through its primary key, and sums artists and albums
from its tracks. Analytics and reviews sum their periods with mtm.period_totals. Rankings
and names live here too, so every page counts the same way; dates and periods are
mtm.periods.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import itemgetter
from zoneinfo import ZoneInfo

from mtm.identity import PLAY_MS

METRICS = ("plays", "minutes")
TOP = 10
# (track id, main artist id, album id or None, plays, ms): one row per track played.
TrackRow = tuple[int, int, int | None, int, int]
# (id, plays, ms): one row per artist, album or track, as rankings take them.
Totals = tuple[int, int, int]
# (name, main artist id, main artist name, image URL) of one ranked item.
Names = tuple[str, int | None, str, str | None]


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
    """An artist, album or track with its plays and minutes in a period; its id links its page."""

    kind: str
    id: int
    name: str
    plays: int
    minutes: int
    # A track's or album's main artist; None for an artist.
    artist_id: int | None = None
    artist: str = ""
    # Its picture (a track's is its album's cover), as stored; None when none is known.
    image_url: str | None = None

    @property
    def detail(self) -> str:
        """What is shown beside the name: the artist of a track or album."""
        return self.artist


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
    # Ids of the track, its main artist and its album (None when not known), for links.
    track_id: int = 0
    artist_id: int = 0
    album_id: int | None = None

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


@dataclass(frozen=True)
class PlayFilter:
    """Which plays a list holds: ended in [start, end) (UTC seconds), names holding a needle.

    The needle and its form come from mtm.search.matcher: the track's, its main artist's or
    its album's search key holds it.
    """

    start: int = 0
    end: int = 2**62
    needle: str | None = None
    form: str = "any"


def key_expression(column: str, form: str) -> str:
    """The SQL a search needle is looked for in: the key, or the key after a space ("word")."""
    return f"(' ' || {column})" if form == "word" else column


# Below this share of the user's plays, a filter's plays are read track by track through the
# (user, track, time) index and sorted; above it, walking the plays newest first finds a page
# of them sooner.
SPARSE = 0.02


def _fill_matches(conn: sqlite3.Connection, user_id: int, where: PlayFilter) -> None:
    """The user's tracks a filter's needle matches (by track, main artist or album), in temp."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS filter_tracks (id INTEGER PRIMARY KEY)")
    conn.execute("DELETE FROM temp.filter_tracks")
    key = key_expression("search_key", where.form)
    # The catalogue read in order, the artists and albums matched once each: quicker than
    # looking up the names of each of the user's tracks (at 2M plays, 44 ms, not 112).
    conn.execute(
        f"""INSERT INTO temp.filter_tracks
            SELECT t.id FROM tracks t
            WHERE (instr({key_expression("t.search_key", where.form)}, ?)
                   OR t.artist_id IN (SELECT id FROM artists WHERE instr({key}, ?))
                   OR t.album_id IN (SELECT id FROM albums WHERE instr({key}, ?)))
              AND EXISTS (SELECT 1 FROM user_tracks ut WHERE ut.user_id = ?
                          AND ut.track_id = t.id)""",
        (where.needle, where.needle, where.needle, user_id))


def filtered_plays(conn: sqlite3.Connection, user_id: int, timezone: str, where: PlayFilter,
                   before: Cursor | None = None, limit: int = 20
                   ) -> tuple[list[RecentPlay], Cursor | None, tuple[int, int]]:
    """A page of the plays a filter keeps, its next cursor, and (streams, plays) kept in all."""
    span = (where.start, where.end)
    if where.needle is None:
        streams, plays = conn.execute(
            "SELECT count(*), coalesce(sum(counted), 0) FROM plays WHERE user_id = ? "
            "AND played_at >= ? AND played_at < ?", (user_id, *span)).fetchone()
        return (*recent_plays(conn, user_id, timezone, before, limit, span), (streams, plays))
    _fill_matches(conn, user_id, where)
    streams, plays = conn.execute(
        """SELECT count(*), coalesce(sum(p.ms_played >= ?), 0)
           FROM temp.filter_tracks f CROSS JOIN plays p ON p.user_id = ? AND p.track_id = f.id
           WHERE p.played_at >= ? AND p.played_at < ?""",
        (PLAY_MS, user_id, *span)).fetchone()
    if streams == 0:
        return [], None, (0, 0)
    total = conn.execute("SELECT coalesce(sum(plays), 0) FROM listening_days WHERE user_id = ?",
                         (user_id,)).fetchone()[0]
    matches = "sparse" if streams < SPARSE * total else "dense"
    page, cursor = recent_plays(conn, user_id, timezone, before, limit, span, matches)
    return page, cursor, (streams, plays)


def recent_plays(conn: sqlite3.Connection, user_id: int, timezone: str,
                 before: Cursor | None = None, limit: int = 20,
                 span: tuple[int, int] | None = None, matches: str | None = None,
                 scope: tuple[str, list[int]] | None = None
                 ) -> tuple[list[RecentPlay], Cursor | None]:
    """A page of plays, newest first, and the cursor of the next page (None at the end).

    `span` keeps the plays that ended in [start, end); `matches` ("sparse" or "dense") those
    of the tracks in temp.filter_tracks, read the way that is quicker for that many; `scope`
    those of one artist ("artist", [id]) or of some tracks ("track" or "album", [track ids]).
    """
    source, condition = "plays p", ""
    upper = before or (2**62, 0)
    if span is not None:
        # The span's end as the cursor: the primary key is then read from there down only.
        upper = min(upper, (span[1], -(2**63)))
        condition = " AND p.played_at >= ?"
    params: tuple = (user_id, *upper, *([span[0]] if span is not None else []))
    if matches == "sparse":
        source = "temp.filter_tracks f CROSS JOIN plays p ON p.track_id = f.id"
    elif matches == "dense":
        condition += " AND p.track_id IN (SELECT id FROM temp.filter_tracks)"
    if scope is not None:
        kind, ids = scope
        column = "p.artist_id" if kind == "artist" else "p.track_id"
        condition += f" AND {column} IN ({','.join('?' * len(ids))})"
        params += tuple(ids)
    rows = conn.execute(
        f"""SELECT p.played_at, p.record_key, p.ms_played, p.skipped, p.source, p.counted,
                   p.track_id, p.artist_id, tr.album_id,
                   tr.name AS track, a.name AS artist, al.name AS album
            FROM {source} JOIN tracks tr ON tr.id = p.track_id
            JOIN artists a ON a.id = p.artist_id LEFT JOIN albums al ON al.id = tr.album_id
            WHERE p.user_id = ? AND (p.played_at, p.record_key) < (?, ?){condition}
            ORDER BY p.played_at DESC, p.record_key DESC LIMIT ?""",
        (*params, limit + 1)).fetchall()
    zone = ZoneInfo(timezone)
    page = [RecentPlay(datetime.fromtimestamp(r["played_at"], zone), r["track"], r["artist"],
                       r["album"], round(r["ms_played"] / 60000, 1), bool(r["skipped"]),
                       r["source"], bool(r["counted"]), r["record_key"], r["track_id"],
                       r["artist_id"], r["album_id"]) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return page, (last["played_at"], last["record_key"]) if last else None


def plays_down_to(conn: sqlite3.Connection, user_id: int, cursor: Cursor) -> int:
    """How many plays (short streams included) are at `cursor` or newer, as the list orders them."""
    return conn.execute("SELECT count(*) FROM plays WHERE user_id = ? "
                        "AND (played_at, record_key) >= (?, ?)", (user_id, *cursor)).fetchone()[0]


# --- periods -----------------------------------------------------------------------


def daily_series(days: dict[date, tuple[int, int]], first: date, last: date) -> list[DayTotal]:
    """One entry per day from `first` to `last`, zero where nothing played."""
    series = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        plays, ms = days.get(day, (0, 0))
        series.append(DayTotal(day, plays, round(ms / 60000)))
    return series


def first_play_day(conn: sqlite3.Connection, user_id: int) -> date | None:
    """The first local day with a play."""
    row = conn.execute("SELECT min(day) FROM listening_days WHERE user_id = ?",
                       (user_id,)).fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def day_totals(conn: sqlite3.Connection, user_id: int, first: date, last: date
               ) -> dict[date, tuple[int, int]]:
    """Plays and milliseconds per local day with listening."""
    return {date.fromisoformat(day): (plays, ms) for day, plays, ms in conn.execute(
        "SELECT day, plays, ms_played FROM listening_days WHERE user_id = ? "
        "AND day BETWEEN ? AND ?", (user_id, first.isoformat(), last.isoformat()))}


def plays_between(conn: sqlite3.Connection, user_id: int, start: int, end: int
                  ) -> tuple[int, int]:
    """Plays and milliseconds of the streams that ended in [start, end) (UTC seconds)."""
    plays, ms = conn.execute(
        "SELECT coalesce(sum(counted), 0), coalesce(sum(ms_played), 0) FROM plays "
        "WHERE user_id = ? AND played_at >= ? AND played_at < ?", (user_id, start, end)).fetchone()
    return plays, ms


def last_play_day(conn: sqlite3.Connection, user_id: int, today: date) -> tuple[bool, date | None]:
    """Whether the user has any play at all, and the last local day up to today with one."""
    count, last = conn.execute(
        "SELECT count(*), max(CASE WHEN day <= ? THEN day END) FROM listening_days "
        "WHERE user_id = ? AND plays > 0", (today.isoformat(), user_id)).fetchone()
    return count > 0, date.fromisoformat(last) if last else None


def weekday_hours(conn: sqlite3.Connection, user_id: int, first: date | None, last: date
                  ) -> dict[tuple[int, int], tuple[int, int]]:
    """Plays and milliseconds per (weekday Monday=0, local hour); `first` None: all time."""
    if first is None:
        rows = conn.execute("SELECT weekday, hour, plays, ms_played FROM listening_weekhours "
                            "WHERE user_id = ?", (user_id,))
        return {(wd, hour): (plays, ms) for wd, hour, plays, ms in rows}
    rows = conn.execute(
        """SELECT weekday, hour, sum(plays), sum(ms_played) FROM listening_hours
           WHERE user_id = ? AND day BETWEEN ? AND ? GROUP BY weekday, hour""",
        (user_id, first.isoformat(), last.isoformat()))
    return {(wd, hour): (plays, ms) for wd, hour, plays, ms in rows}


def per_track(conn: sqlite3.Connection, user_id: int, start: int | None, end: int
              ) -> list[TrackRow]:
    """(track, main artist, album, plays, ms) for every track played in [start, end)."""
    if start is None:
        return conn.execute(
            "SELECT ut.track_id, t.artist_id, t.album_id, ut.plays, ut.ms_played "
            "FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id WHERE ut.user_id = ?",
            (user_id,)).fetchall()
    # One pass over the range's plays; albums come from one lookup per track played.
    return conn.execute(
        """SELECT g.track_id, g.artist_id, t.album_id, g.plays, g.ms FROM (
               SELECT track_id, artist_id, sum(counted) AS plays, sum(ms_played) AS ms
               FROM plays WHERE user_id = ? AND played_at >= ? AND played_at < ?
               GROUP BY track_id) AS g JOIN tracks t ON t.id = g.track_id""",
        (user_id, start, end)).fetchall()


def first_heard(conn: sqlite3.Connection, user_id: int) -> dict[int, int]:
    """When each of the user's artists was first played (UTC seconds)."""
    return dict(conn.execute("SELECT artist_id, first_played FROM user_artists "
                             "WHERE user_id = ?", (user_id,)))


def track_totals(tracks: list[TrackRow]) -> list[Totals]:
    """(track, plays, ms) of per-track rows."""
    return [(t[0], t[3], t[4]) for t in tracks]


def artist_totals(tracks: list[TrackRow]) -> list[Totals]:
    """(artist, plays, ms) summed from per-track rows (each track counts for its main artist)."""
    return _summed(tracks, 1)


def album_totals(tracks: list[TrackRow]) -> list[Totals]:
    """(album, plays, ms) summed from per-track rows; tracks known without an album are left out."""
    return [row for row in _summed(tracks, 2) if row[0] is not None]


def _summed(tracks: list[TrackRow], column: int) -> list[Totals]:
    plays_of: defaultdict[int, int] = defaultdict(int)
    ms_of: defaultdict[int, int] = defaultdict(int)
    for row in tracks:
        key = row[column]
        plays_of[key] += row[3]
        ms_of[key] += row[4]
    return [(key, plays, ms_of[key]) for key, plays in plays_of.items()]


def artist_genres(conn: sqlite3.Connection, user_id: int) -> dict[int, list[str]]:
    """Genres of every artist the user has played."""
    genres: dict[int, list[str]] = {}
    for artist_id, name in conn.execute(
            """SELECT ag.artist_id, g.name FROM user_artists ua
               JOIN artist_genres ag ON ag.artist_id = ua.artist_id
               JOIN genres g ON g.id = ag.genre_id WHERE ua.user_id = ?""", (user_id,)):
        genres.setdefault(artist_id, []).append(name)
    return genres


# --- ranking -----------------------------------------------------------------------


def ranked(rows: list[Totals], metric: str, limit: int = TOP) -> list[Totals]:
    """The first `limit` rows by a metric, the other metric and then the id breaking ties."""
    first, second = (1, 2) if metric == "plays" else (2, 1)
    if len(rows) > limit:
        # Only rows reaching the limit-th best value can rank: found at C speed, they leave a
        # few dozen of tens of thousands for the full comparison.
        cutoff = heapq.nlargest(limit, map(itemgetter(first), rows))[-1]
        rows = [row for row in rows if row[first] >= cutoff]
    top = heapq.nsmallest(limit, rows, key=lambda r: (-r[first], -r[second], r[0]))
    # Played means at least one stream of 30 s or more.
    return [row for row in top if row[1] > 0] if metric == "plays" else top


def rankings(rows: list[Totals], limit: int = TOP) -> dict[str, list[Totals]]:
    """The top rows by each metric (ranking tens of thousands of tracks once per metric)."""
    return {metric: ranked(rows, metric, limit) for metric in METRICS}


def named(conn: sqlite3.Connection, kind: str, rows: list[Totals]) -> list[Ranked]:
    """Ranked rows of one kind ("artist", "album", "track") with their names."""
    return _items(kind, rows, names_of(conn, kind, [row[0] for row in rows]))


def named_rankings(conn: sqlite3.Connection, kind: str, ranks: dict[str, list[Totals]]
                   ) -> dict[str, list[Ranked]]:
    """Each metric's ranking with names, looked up once for all of them."""
    names = names_of(conn, kind, sorted({row[0] for rows in ranks.values() for row in rows}))
    return {metric: _items(kind, rows, names) for metric, rows in ranks.items()}


def _items(kind: str, rows: list[Totals], names: dict[int, Names]) -> list[Ranked]:
    return [Ranked(kind, row[0], names[row[0]][0], row[1], round(row[2] / 60000),
                   *names[row[0]][1:]) for row in rows]


def names_of(conn: sqlite3.Connection, kind: str, ids: list[int]) -> dict[int, Names]:
    """(name, main artist id, main artist name, image URL) of some artists, albums or tracks.

    A track's image is its album's cover.
    """
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    if kind == "artist":
        return {aid: (name, None, "", image) for aid, name, image in conn.execute(
            f"SELECT id, name, image_url FROM artists WHERE id IN ({marks})", ids)}
    table = {"album": "albums", "track": "tracks"}[kind]
    image = "o.image_url" if kind == "album" else \
        "(SELECT al.image_url FROM albums al WHERE al.id = o.album_id)"
    # An album imported by name alone may have no artist: it is shown without one.
    return {oid: (name, artist_id, artist or "", url)
            for oid, name, artist_id, artist, url in conn.execute(
                f"SELECT o.id, o.name, o.artist_id, a.name, {image} FROM {table} o "
                f"LEFT JOIN artists a ON a.id = o.artist_id WHERE o.id IN ({marks})", ids)}


def top(conn: sqlite3.Connection, kind: str, rows: list[Totals], metric: str = "plays",
        limit: int = TOP) -> list[Ranked]:
    """The top artists, albums or tracks of some totals by one metric, with their names."""
    return named(conn, kind, ranked(rows, metric, limit))
