"""Artist, album and track pages: one thing followed through a user's whole history.

Totals come from the per-user rollups, listening over time and the monthly rank from the
per-month rollups (artist_months, album_months, track_months: a rank is a range count on
an index), and
Spotify's own top-list rank from the stored daily snapshots. Only the hour and weekday
profile reads the plays themselves, through the indexes by artist and by track.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mtm import hiding, history, listening, periods, preferences, rezone
from mtm.cache import Cache
from mtm.listening import Cursor, Ranked, RecentPlay
from mtm.periods import month_starts

KINDS = ("artist", "album", "track")
TIME_RANGES = (("short_term", "4 weeks"), ("medium_term", "6 months"), ("long_term", "1 year"))
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
PLAYS_PAGE = 20
TOP_SHOWN = 10


@dataclass(frozen=True)
class Subject:
    """What a page is about, as stored."""

    kind: str
    id: int
    name: str
    spotify_id: str | None
    image_url: str | None
    # A track's or album's main artist; a track's album.
    artist_id: int | None = None
    artist: str = ""
    album_id: int | None = None
    album: str = ""
    release_date: str | None = None
    genres: tuple[str, ...] = ()


@dataclass(frozen=True)
class Month:
    """One month of the subject's listening, and where it stood among everything played."""

    start: date
    plays: int
    minutes: int
    # 1 = the most played that month; None when not played in it.
    rank: int | None
    # Spotify's own top-list rank on the month's last snapshot, by time range.
    spotify: dict[str, int]

    @property
    def label(self) -> str:
        """The month as the tables name it."""
        return self.start.strftime("%b %Y")


@dataclass(frozen=True)
class Page:
    """Everything an artist, album or track page shows."""

    subject: Subject
    plays: int
    minutes: int
    first_played: datetime | None
    last_played: datetime | None
    months: list[Month]
    tops: dict[str, list[Ranked]]
    hours: list[int]
    weekdays: list[tuple[str, int]]
    snapshots_kept: bool
    recent: list[RecentPlay]
    next_cursor: Cursor | None
    timezone: str

    @property
    def title(self) -> str:
        """The tab's title (without the site name)."""
        return f"{self.subject.name} · {self.subject.kind.title()}"

    @property
    def played_months(self) -> int:
        """How many months the subject was played in."""
        return sum(1 for m in self.months if m.plays)

    @property
    def best_month(self) -> Month | None:
        """The month with the most plays (the earliest of equals)."""
        played = [m for m in self.months if m.plays]
        return max(played, key=lambda m: (m.plays, -m.start.toordinal())) if played else None

    def chart_over_time(self) -> dict:
        """Plays per month, for charts.js."""
        return {"type": "bar", "labels": [m.label for m in self.months],
                "datasets": [{"label": "Plays", "data": [m.plays for m in self.months]}],
                "options": {"scales": {"x": _axis("Month"), "y": _axis("Plays")}}}

    def chart_rank(self) -> dict:
        """Its monthly rank (1 at the top), and Spotify's, for charts.js."""
        datasets = [{"label": "Your rank (by plays that month)",
                     "data": [m.rank for m in self.months], "spanGaps": False}]
        if self.subject.kind != "album":
            for key, label in TIME_RANGES:
                values = [m.spotify.get(key) for m in self.months]
                if any(v is not None for v in values):
                    datasets.append({"label": f"Spotify's top list ({label})", "data": values})
        return {"type": "line", "labels": [m.label for m in self.months], "datasets": datasets,
                "options": {"scales": {"x": _axis("Month"),
                                       "y": {"reverse": True, "min": 1, **_axis("Rank")}}}}


def _axis(text: str) -> dict:
    return {"title": {"display": True, "text": text}}


# --- queries ------------------------------------------------------------------------------


def subject(conn: sqlite3.Connection, kind: str, subject_id: int) -> Subject | None:
    """The artist, album or track with this id, or None."""
    if kind == "artist":
        row = conn.execute("SELECT id, name, spotify_id, image_url FROM artists WHERE id = ?",
                           (subject_id,)).fetchone()
        if row is None:
            return None
        genres = tuple(g for (g,) in conn.execute(
            "SELECT g.name FROM artist_genres ag JOIN genres g ON g.id = ag.genre_id "
            "WHERE ag.artist_id = ? ORDER BY g.name", (subject_id,)))
        return Subject("artist", row[0], row[1], row[2], row[3], genres=genres)
    if kind == "album":
        row = conn.execute(
            """SELECT al.id, al.name, al.spotify_id, al.image_url, al.artist_id, a.name,
                      al.release_date
               FROM albums al LEFT JOIN artists a ON a.id = al.artist_id WHERE al.id = ?""",
            (subject_id,)).fetchone()
        if row is None:
            return None
        return Subject("album", row[0], row[1], row[2], row[3], row[4], row[5] or "",
                       release_date=row[6])
    row = conn.execute(
        """SELECT t.id, t.name, t.spotify_id, al.image_url, t.artist_id, a.name, t.album_id,
                  al.name
           FROM tracks t JOIN artists a ON a.id = t.artist_id
           LEFT JOIN albums al ON al.id = t.album_id WHERE t.id = ?""", (subject_id,)).fetchone()
    if row is None:
        return None
    return Subject("track", row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                   row[7] or "")


def album_track_ids(conn: sqlite3.Connection, album_id: int) -> list[int]:
    """The tracks of an album."""
    return [t for (t,) in conn.execute("SELECT id FROM tracks WHERE album_id = ?", (album_id,))]


def totals(conn: sqlite3.Connection, user_id: int, kind: str, ids: list[int]
           ) -> tuple[int, int, int | None, int | None]:
    """(plays, ms, first played, last played) of the subject, from the rollups."""
    if kind == "artist":
        table, column = "user_artists", "artist_id"
    else:
        table, column = "user_tracks", "track_id"
    marks = ",".join("?" * len(ids))
    row = conn.execute(
        f"SELECT coalesce(sum(plays), 0), coalesce(sum(ms_played), 0), min(first_played), "
        f"max(last_played) FROM {table} WHERE user_id = ? AND {column} IN ({marks})",
        (user_id, *ids)).fetchone()
    return row[0], row[1], row[2], row[3]


def monthly(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int
            ) -> dict[str, tuple[int, int, int | None]]:
    """Per played month "YYYY-MM": (plays, ms, rank among everything of its kind that month)."""
    if rezone.months_moving(conn, user_id):
        return _monthly_from_plays(conn, user_id, kind, subject_id)
    table, column = {"artist": ("artist_months", "artist_id"),
                     "album": ("album_months", "album_id"),
                     "track": ("track_months", "track_id")}[kind]
    return {month: (plays, ms, rank if plays else None) for month, plays, ms, rank in
            conn.execute(
                f"""SELECT m.month, m.plays, m.ms_played,
                           (SELECT count(*) FROM {table} o WHERE o.user_id = m.user_id
                              AND o.month = m.month AND o.plays > m.plays) + 1
                    FROM {table} m WHERE m.user_id = ? AND m.{column} = ?""",
                (user_id, subject_id))}


def _monthly_from_plays(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int
                        ) -> dict[str, tuple[int, int, int | None]]:
    """monthly() summed from the plays, for the seconds a time-zone change moves the
    monthly rollups (mtm.rezone): the same figures, slower."""
    subject, join = {"artist": ("p.artist_id", ""), "track": ("p.track_id", ""),
                     "album": ("t.album_id", "JOIN tracks t ON t.id = p.track_id "
                               "AND t.album_id IS NOT NULL")}[kind]
    history.fill_local_times(conn, user_id, "SELECT DISTINCT played_at / 900 FROM plays "
                             "WHERE user_id = ?", (user_id,))
    conn.execute("DROP TABLE IF EXISTS temp.months_from_plays")
    conn.execute(f"""CREATE TEMP TABLE months_from_plays AS
                     SELECT substr(lt.day, 1, 7) AS month, {subject} AS subject,
                            sum(p.counted) AS plays, sum(p.ms_played) AS ms
                     FROM plays p JOIN temp.local_times lt ON lt.bucket = p.played_at / 900
                     {join} WHERE p.user_id = ? GROUP BY 1, 2""", (user_id,))
    found = {month: (plays, ms, rank if plays else None) for month, plays, ms, rank in
             conn.execute("""SELECT m.month, m.plays, m.ms,
                                    (SELECT count(*) FROM temp.months_from_plays o
                                     WHERE o.month = m.month AND o.plays > m.plays) + 1
                             FROM temp.months_from_plays m WHERE m.subject = ?""",
                          (subject_id,))}
    conn.execute("DROP TABLE temp.months_from_plays")
    return found


def spotify_ranks(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int
                  ) -> dict[str, dict[str, int]]:
    """Per month "YYYY-MM" and time range, the subject's rank on the month's last snapshot."""
    column, snapshot_kind = ("artist_id", "artists") if kind == "artist" else ("track_id",
                                                                               "tracks")
    ranks: dict[str, dict[str, int]] = {}
    for taken_on, time_range, rank in conn.execute(
            f"""SELECT s.taken_on, s.time_range, s.rank FROM top_snapshots s
                WHERE s.user_id = ? AND s.kind = ? AND s.{column} = ?
                  AND s.taken_on = (SELECT max(l.taken_on) FROM top_snapshots l
                                    WHERE l.user_id = s.user_id AND l.kind = s.kind
                                      AND substr(l.taken_on, 1, 7) = substr(s.taken_on, 1, 7))
                ORDER BY s.taken_on""", (user_id, snapshot_kind, subject_id)):
        ranks.setdefault(taken_on[:7], {})[time_range] = rank
    return ranks


def has_snapshots(conn: sqlite3.Connection, user_id: int) -> bool:
    """Whether any top-list snapshot of the user is stored."""
    return conn.execute("SELECT 1 FROM top_snapshots WHERE user_id = ? LIMIT 1",
                        (user_id,)).fetchone() is not None


def top_tracks_of(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int
                  ) -> list[listening.Totals]:
    """(track, plays, ms) of every track of an artist (as main artist) or an album played."""
    column = "artist_id" if kind == "artist" else "album_id"
    return conn.execute(
        # CROSS JOIN: the subject's tracks first, by their index, then the user's totals of
        # each (SQLite would otherwise walk all of the user's tracks).
        f"SELECT ut.track_id, ut.plays, ut.ms_played FROM tracks t CROSS JOIN user_tracks ut "
        f"ON ut.user_id = ? AND ut.track_id = t.id WHERE t.{column} = ?",
        (user_id, subject_id)).fetchall()


def top_albums_of(conn: sqlite3.Connection, user_id: int, artist_id: int
                  ) -> list[listening.Totals]:
    """(album, plays, ms) of the artist's albums played, summed from their tracks."""
    return conn.execute(
        """SELECT t.album_id, sum(ut.plays), sum(ut.ms_played) FROM tracks t
           CROSS JOIN user_tracks ut ON ut.user_id = ? AND ut.track_id = t.id
           WHERE t.artist_id = ? AND t.album_id IS NOT NULL
           GROUP BY t.album_id""", (user_id, artist_id)).fetchall()


def artist_track_ids(conn: sqlite3.Connection, user_id: int, artist_id: int) -> list[int]:
    """The user's played tracks whose main artist is this one."""
    return [t for (t,) in conn.execute(
        "SELECT ut.track_id FROM tracks t CROSS JOIN user_tracks ut "
        "ON ut.user_id = ? AND ut.track_id = t.id WHERE t.artist_id = ?", (user_id, artist_id))]


def when_played(conn: sqlite3.Connection, user_id: int, track_ids: list[int], first: int,
                last: int, timezone: str) -> tuple[list[int], list[int]]:
    """Plays (30 s or more) of some tracks per local hour of day and per weekday (Monday
    first); `first` and `last` are their first and last plays (UTC seconds)."""
    # Counted in SQLite with the offset of each stretch between the zone's changes, so tens
    # of thousands of plays are never read into Python.
    stretches = periods.utc_offsets(first, last, timezone)
    local = "played_at + CASE " + " ".join(
        "WHEN played_at >= ? THEN ?" for _ in stretches) + " END"
    bounds = [value for since, offset in reversed(stretches) for value in (since, offset)]
    marks = ",".join("?" * len(track_ids))
    hours, weekdays = [0] * 24, [0] * 7
    # By track, whatever the page: that index holds the length, so no play row is read.
    for local_at, n in conn.execute(
            f"""SELECT local_at, count(*) FROM (
                    SELECT {local} AS local_at FROM plays WHERE user_id = ?
                    AND track_id IN ({marks}) AND ms_played >= 30000)
                GROUP BY local_at / 3600 % 24, (local_at / 86400 + 3) % 7""",
            (*bounds, user_id, *track_ids)):
        hours[local_at // 3600 % 24] += n
        # 1 January 1970 was a Thursday (weekday 3).
        weekdays[(local_at // 86400 + 3) % 7] += n
    return hours, weekdays


@dataclass(frozen=True)
class Hidden:
    """An artist, album or track whose plays a hiding rule keeps out of every page."""

    name: str


def load(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int, *,
         cache: Cache | None = None) -> Page | Hidden | None:
    """The page of an artist, album or track the user has played; Hidden when all its plays
    are hidden; None when the user never played it.

    Cached under the history version, like the analytics it sits beside.
    """
    prefs = preferences.load(conn, user_id)
    key = ("entity", user_id, history.history_version(conn, user_id), prefs.timezone,
           prefs.week_start, kind, subject_id)
    if cache is not None and (hit := cache.get(key)) is not None:
        return hit
    page = _compute(conn, user_id, kind, subject_id, prefs)
    if page is None:
        name = hiding.hidden_name(conn, user_id, kind, subject_id)
        return None if name is None else Hidden(name)
    if cache is not None:
        cache.put(key, page)
    return page


def _compute(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int,
             prefs: preferences.Preferences) -> Page | None:
    found = subject(conn, kind, subject_id)
    if found is None:
        return None
    ids = album_track_ids(conn, subject_id) if kind == "album" else [subject_id]
    if not ids:
        return None
    plays, ms, first, last = totals(conn, user_id, kind, ids)
    if first is None:
        # Never played by this user: another listener's, or nobody's.
        return None
    timezone = prefs.timezone
    zone = ZoneInfo(timezone)
    first_at, last_at = datetime.fromtimestamp(first, zone), datetime.fromtimestamp(last, zone)
    by_month = monthly(conn, user_id, kind, subject_id)
    spotify = {} if kind == "album" else spotify_ranks(conn, user_id, kind, subject_id)
    months = []
    for start in month_starts(first_at.date(), last_at.date()):
        key = start.strftime("%Y-%m")
        month_plays, month_ms, rank = by_month.get(key, (0, 0, None))
        months.append(Month(start, month_plays, round(month_ms / 60000), rank,
                            spotify.get(key, {})))
    tops: dict[str, list[Ranked]] = {}
    if kind in ("artist", "album"):
        tracks = top_tracks_of(conn, user_id, kind, subject_id)
        tops["tracks"] = listening.top(conn, "track", tracks, limit=TOP_SHOWN)
    if kind == "artist":
        tops["albums"] = listening.top(conn, "album", top_albums_of(conn, user_id, subject_id),
                                       limit=TOP_SHOWN)
    tracks_played = artist_track_ids(conn, user_id, subject_id) if kind == "artist" else ids
    hours, weekdays = when_played(conn, user_id, tracks_played, first, last, timezone)
    ordered = [(WEEKDAYS[(prefs.week_start + i) % 7], weekdays[(prefs.week_start + i) % 7])
               for i in range(7)]
    recent, cursor = listening.recent_plays(conn, user_id, timezone, limit=PLAYS_PAGE,
                                            scope=(kind, ids))
    return Page(found, plays, round(ms / 60000), first_at, last_at, months, tops, hours,
                ordered, has_snapshots(conn, user_id), recent, cursor, timezone)


def plays_page(conn: sqlite3.Connection, user_id: int, kind: str, subject_id: int,
               before: Cursor | None) -> tuple[list[RecentPlay], Cursor | None] | None:
    """One page of the subject's plays older than `before`; None unless the user played it."""
    if subject(conn, kind, subject_id) is None:
        return None
    ids = album_track_ids(conn, subject_id) if kind == "album" else [subject_id]
    # The catalogue is shared: an artist only someone else played is no page of yours.
    if not ids or totals(conn, user_id, kind, ids)[2] is None:
        return None
    timezone = preferences.load(conn, user_id).timezone
    return listening.recent_plays(conn, user_id, timezone, before=before, limit=PLAYS_PAGE,
                                  scope=(kind, ids))
