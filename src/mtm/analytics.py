"""Analytics over a date range, in the user's time zone: time series, genres, tops, heatmap.

Whole-history figures come from the rollups kept on write; a range reads the plays table
once per entity (artists, tracks) through its primary key. Results are cached under the
user's history version, so new plays are never hidden by the cache.
"""

from __future__ import annotations

import heapq
import sqlite3
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from zoneinfo import ZoneInfo

from mtm import history, users
from mtm.stats import local_midnight, local_today, months_before

RANGES = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "6m": "6 months",
          "12m": "12 months", "all": "All time"}
DEFAULT_RANGE = "12m"
METRICS = ("plays", "minutes")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TOP = 10
GENRES_SHOWN = 10
HEAT_LEVELS = 5
OTHER_GENRES = "Other genres"


def parse_range(raw: str | None) -> str:
    """A known range key, or the default for anything else."""
    return raw if raw in RANGES else DEFAULT_RANGE


def parse_metric(raw: str | None, default: str = "plays") -> str:
    """`plays` or `minutes`; anything else falls back to the default."""
    return raw if raw in METRICS else default


@dataclass(frozen=True)
class Window:
    """The local days a range covers (inclusive), how to bucket them, the period before."""

    key: str
    first: date
    last: date
    bucket: str
    previous: tuple[date, date] | None

    @property
    def label(self) -> str:
        """The range as the buttons name it."""
        return RANGES[self.key]

    @property
    def days(self) -> int:
        """Number of days covered."""
        return (self.last - self.first).days + 1


def make_window(key: str, today: date, first_play: date | None) -> Window:
    """The window of a range ending today; `all` starts at the first play."""
    if key == "all":
        first = min(first_play or today, today)
    elif key.endswith("d"):
        first = today - timedelta(days=int(key[:-1]) - 1)
    else:
        first = months_before(today, int(key[:-1])) + timedelta(days=1)
    length = (today - first).days + 1
    bucket = "day" if length <= 31 else "week" if length <= 400 else "month"
    previous = None
    if key != "all":
        previous = (first - timedelta(days=length), first - timedelta(days=1))
    return Window(key, first, today, bucket, previous)


def bucket_start(day: date, bucket: str, week_start: int) -> date:
    """The first day of the bucket a day falls in (weeks start on the user's week start)."""
    if bucket == "week":
        return day - timedelta(days=(day.weekday() - week_start) % 7)
    if bucket == "month":
        return day.replace(day=1)
    return day


def bucket_end(start: date, bucket: str) -> date:
    """The last day of the bucket that starts on `start`."""
    if bucket == "month":
        return (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start + timedelta(days=6 if bucket == "week" else 0)


def partial_note(start: date, bucket: str, window_first: date, today: date) -> str:
    """Why a bucket is not a whole period ("this week so far"), or "" when it is."""
    if start <= today <= bucket_end(start, bucket):
        # Today is never over, so the bucket holding it is always incomplete.
        return {"day": "today so far", "week": "this week so far",
                "month": "this month so far"}[bucket]
    if start < window_first:
        return "from " + window_first.strftime("%d %b") + " only"
    return ""


def bucket_label(start: date, bucket: str) -> str:
    """How a bucket is named on the chart's axis."""
    if bucket == "month":
        return start.strftime("%b %Y")
    if bucket == "week":
        return "w/c " + start.strftime("%d %b")
    return start.strftime("%d %b")


@dataclass(frozen=True)
class Point:
    """One bucket of the listening-over-time series."""

    start: date
    label: str
    plays: int
    minutes: int
    # Set when the bucket is not a whole period: the current one, or one cut by the range.
    note: str = ""


@dataclass(frozen=True)
class Totals:
    """Headline numbers of a period."""

    plays: int
    minutes: int
    active_days: int


@dataclass(frozen=True)
class Item:
    """An artist or track with its plays and minutes in the range."""

    name: str
    detail: str
    plays: int
    minutes: int


@dataclass(frozen=True)
class Share:
    """A genre's part of the listening in the range."""

    name: str
    plays: float
    minutes: float


@dataclass(frozen=True)
class HeatCell:
    """One hour of one weekday."""

    hour: int
    plays: int
    minutes: int


@dataclass(frozen=True)
class Analytics:
    """Everything the Analytics page shows for one range."""

    window: Window
    timezone: str
    week_start: int
    totals: Totals
    previous: Totals | None
    series: list[Point]
    artists: int
    tracks: int
    top_artists: dict[str, list[Item]]
    top_tracks: dict[str, list[Item]]
    genres: list[Share]
    genre_coverage: float
    heatmap: list[tuple[str, list[HeatCell]]]
    new_artists: list[tuple[str, int]]
    new_artist_count: int
    discovery_minutes_share: float | None
    # Only looked up for an empty range: whether any play exists, and a range that has some.
    has_history: bool = True
    suggestion: str | None = None
    last_play: date | None = None

    @property
    def empty(self) -> bool:
        """Nothing was played in the range."""
        return self.totals.plays == 0

    @property
    def title(self) -> str:
        """The page's title, as the tab shows it (without the site name)."""
        return "Analytics · " + self.window.label

    def change(self, metric: str) -> int | None:
        """Percent change against the previous period, None when it cannot be said."""
        if self.previous is None:
            return None
        before = getattr(self.previous, metric)
        if before == 0:
            return None
        return round((getattr(self.totals, metric) - before) * 100 / before)

    def heat_rows(self, metric: str) -> list[tuple[str, list[tuple[int, int, int]]]]:
        """Heatmap rows as (weekday, [(hour, value, shade level 0-5)])."""
        values = [getattr(c, metric) for _, cells in self.heatmap for c in cells]
        peak = max(values, default=0) or 1
        return [(day, [(c.hour, getattr(c, metric),
                        -(-getattr(c, metric) * HEAT_LEVELS // peak)) for c in cells])
                for day, cells in self.heatmap]

    def discovery_notes(self) -> list[str]:
        """Per month of the discoveries chart, why it is not a whole month ("" when it is)."""
        first, today = self.window.first, self.window.last
        return [partial_note(start, "month", first, today)
                for start in _month_starts(first, today)]

    def discovery_rows(self) -> list[tuple[str, int, str]]:
        """(month, new artists, note) for the discoveries table."""
        return [(month, n, note) for (month, n), note in zip(self.new_artists,
                                                              self.discovery_notes(), strict=True)]

    def chart_over_time(self) -> dict:
        """Minutes and plays per bucket, for charts.js."""
        bucket = self.window.bucket
        # The axis title says "Week starting", so the labels can drop their "w/c".
        labels = [p.label.removeprefix("w/c ") for p in self.series]
        return {"type": "line", "labels": labels,
                "datasets": [{"label": "Minutes", "data": [p.minutes for p in self.series]},
                             {"label": "Plays", "data": [p.plays for p in self.series],
                              "yAxisID": "y1"}],
                **_partial_spec([p.note for p in self.series], bucket),
                "options": {"scales": {
                    "x": _axis_title({"day": "Day", "week": "Week starting",
                                      "month": "Month"}[bucket]),
                    "y": _axis_title("Minutes listened"),
                    "y1": {"position": "right", "beginAtZero": True, "grid": {"display": False},
                           **_axis_title("Plays")}}}}

    def chart_genres(self, metric: str) -> dict:
        """Genre shares as a doughnut; the "Other genres" slice is drawn in a neutral grey."""
        return {"type": "doughnut", "labels": [g.name for g in self.genres],
                "datasets": [{"label": metric.title(),
                              "data": [getattr(g, metric) for g in self.genres]}],
                "unit": metric, "other": OTHER_GENRES}

    def chart_artists(self, metric: str) -> dict:
        """Top artists as a horizontal bar chart."""
        items = self.top_artists[metric]
        values = [getattr(a, metric) for a in items]
        return {"type": "bar", "labels": [a.name for a in items],
                "datasets": [{"label": metric.title(), "data": values}],
                "options": {"indexAxis": "y", "scales": {
                    "x": _axis_title("Plays" if metric == "plays" else "Minutes listened"),
                    "y": _axis_title("Artist")}},
                "unit": metric}

    def chart_discoveries(self) -> dict:
        """New artists per month as bars."""
        return {"type": "bar", "labels": [m for m, _ in self.new_artists],
                "datasets": [{"label": "New artists", "data": [n for _, n in self.new_artists]}],
                **_partial_spec(self.discovery_notes(), "month"),
                "options": {"scales": {"x": _axis_title("Month of first play"),
                                       "y": _axis_title("New artists")}}}


def _axis_title(text: str) -> dict:
    return {"title": {"display": True, "text": text}}


def _partial_spec(notes: list[str], bucket: str) -> dict:
    """Which points of a series are incomplete periods, and the legend entry saying so."""
    partial = [{"index": i, "note": note} for i, note in enumerate(notes) if note]
    if not partial:
        return {}
    current = [p["note"] for p in partial if p["note"].endswith("so far")]
    if len(partial) == 1:
        legend = partial[0]["note"].capitalize()
    else:
        legend = f"Part {bucket}s" + (f" ({current[0]})" if current else "")
    return {"partial": partial, "partialLegend": legend}


def _month_starts(first: date, last: date) -> list[date]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = (day + timedelta(days=32)).replace(day=1)
    return months


# --- queries -----------------------------------------------------------------------


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
              ) -> list[tuple[int, int, int, int]]:
    """(track id, main artist id, plays, ms) for every track played in [start, end)."""
    if start is None:
        return conn.execute(
            "SELECT ut.track_id, t.artist_id, ut.plays, ut.ms_played FROM user_tracks ut "
            "JOIN tracks t ON t.id = ut.track_id WHERE ut.user_id = ?", (user_id,)).fetchall()
    # One pass over the range: artists are summed from their tracks in Python.
    return conn.execute(
        "SELECT track_id, artist_id, sum(counted), sum(ms_played) FROM plays WHERE user_id = ? "
        "AND played_at >= ? AND played_at < ? GROUP BY track_id", (user_id, start, end)).fetchall()


def first_heard(conn: sqlite3.Connection, user_id: int) -> dict[int, int]:
    """When each of the user's artists was first played (UTC seconds)."""
    return dict(conn.execute("SELECT artist_id, first_played FROM user_artists "
                             "WHERE user_id = ?", (user_id,)))


def per_artist(tracks: list[tuple[int, int, int, int]], first: dict[int, int]
               ) -> list[tuple[int, int, int, int]]:
    """(artist id, plays, ms, first played ever) summed from per-track rows."""
    plays_of: defaultdict[int, int] = defaultdict(int)
    ms_of: defaultdict[int, int] = defaultdict(int)
    for _, artist_id, plays, ms in tracks:
        plays_of[artist_id] += plays
        ms_of[artist_id] += ms
    return [(a, p, ms_of[a], first[a]) for a, p in plays_of.items()]


def artist_genres(conn: sqlite3.Connection, user_id: int) -> dict[int, list[str]]:
    """Genres of every artist the user has played."""
    genres: dict[int, list[str]] = {}
    for artist_id, name in conn.execute(
            """SELECT ag.artist_id, g.name FROM user_artists ua
               JOIN artist_genres ag ON ag.artist_id = ua.artist_id
               JOIN genres g ON g.id = ag.genre_id WHERE ua.user_id = ?""", (user_id,)):
        genres.setdefault(artist_id, []).append(name)
    return genres


def artist_names(conn: sqlite3.Connection, ids: list[int]) -> dict[int, str]:
    """Names of some artists."""
    marks = ",".join("?" * len(ids))
    return dict(conn.execute(f"SELECT id, name FROM artists WHERE id IN ({marks})", ids))


def track_names(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[str, str]]:
    """(name, main artist) of some tracks."""
    marks = ",".join("?" * len(ids))
    return {tid: (name, artist) for tid, name, artist in conn.execute(
        f"SELECT t.id, t.name, a.name FROM tracks t JOIN artists a ON a.id = t.artist_id "
        f"WHERE t.id IN ({marks})", ids)}


# --- assembling --------------------------------------------------------------------


def _series(window: Window, days: dict[date, tuple[int, int]], week_start: int) -> list[Point]:
    # Every bucket exists, so days without listening show as zero, not as a gap.
    buckets: dict[date, list[int]] = {}
    start = bucket_start(window.first, window.bucket, week_start)
    while start <= window.last:
        buckets[start] = [0, 0]
        start = bucket_start(start + timedelta(days=32 if window.bucket == "month" else
                                               7 if window.bucket == "week" else 1),
                             window.bucket, week_start)
    for day, (plays, ms) in days.items():
        entry = buckets[bucket_start(day, window.bucket, week_start)]
        entry[0] += plays
        entry[1] += ms
    return [Point(start, bucket_label(start, window.bucket), plays, round(ms / 60000),
                  partial_note(start, window.bucket, window.first, window.last))
            for start, (plays, ms) in buckets.items()]


def _totals(days: dict[date, tuple[int, int]]) -> Totals:
    return Totals(sum(p for p, _ in days.values()),
                  round(sum(ms for _, ms in days.values()) / 60000),
                  sum(1 for p, _ in days.values() if p))


def _ranked(rows: list[tuple[int, int, int]], metric: str) -> list[tuple[int, int, int]]:
    """The first TOP rows of (id, plays, ms) by a metric, the other metric breaking ties."""
    first, second = (1, 2) if metric == "plays" else (2, 1)
    if len(rows) > TOP:
        # Only rows reaching the TOP-th best value can rank: found at C speed, they leave a
        # few dozen of tens of thousands for the full comparison.
        cutoff = heapq.nlargest(TOP, map(itemgetter(first), rows))[-1]
        rows = [row for row in rows if row[first] >= cutoff]
    return heapq.nsmallest(TOP, rows, key=lambda r: (-r[first], -r[second], r[0]))


def _rankings(rows: list[tuple[int, int, int]]) -> dict[str, list[tuple[int, int, int]]]:
    """The top rows by each metric (ranking tens of thousands of tracks once per metric)."""
    return {metric: _ranked(rows, metric) for metric in METRICS}


def _top(ranked: dict[str, list[tuple[int, int, int]]], names: dict) -> dict[str, list[Item]]:
    tops = {}
    for metric in METRICS:
        items = []
        for row in ranked[metric]:
            name = names[row[0]]
            title, detail = name if isinstance(name, tuple) else (name, "")
            items.append(Item(title, detail, row[1], round(row[2] / 60000)))
        tops[metric] = items
    return tops


def _genres(artists: list[tuple[int, int, int, int]], genres: dict[int, list[str]]
            ) -> tuple[list[Share], float]:
    weights: dict[str, list[float]] = {}
    covered = total = 0
    for artist_id, plays, ms, _ in artists:
        total += plays
        names = genres.get(artist_id)
        if not names:
            continue
        covered += plays
        # An artist with three genres gives each a third, so shares add up to the whole.
        for name in names:
            entry = weights.setdefault(name, [0.0, 0.0])
            entry[0] += plays / len(names)
            entry[1] += ms / 60000 / len(names)
    shares = [Share(name, round(p, 1), round(m, 1)) for name, (p, m) in weights.items()]
    shares.sort(key=lambda s: (-s.plays, s.name))
    if len(shares) > GENRES_SHOWN:
        rest = shares[GENRES_SHOWN - 1:]
        other = Share(OTHER_GENRES, round(sum(s.plays for s in rest), 1),
                      round(sum(s.minutes for s in rest), 1))
        shares = [*shares[:GENRES_SHOWN - 1], other]
    return shares, (covered / total if total else 0.0)


def _heatmap(cells: dict[tuple[int, int], tuple[int, int]], week_start: int
             ) -> list[tuple[str, list[HeatCell]]]:
    rows = []
    for offset in range(7):
        weekday = (week_start + offset) % 7
        rows.append((WEEKDAYS[weekday], [
            HeatCell(hour, cells.get((weekday, hour), (0, 0))[0],
                     round(cells.get((weekday, hour), (0, 0))[1] / 60000))
            for hour in range(24)]))
    return rows


def _discoveries(artists: list[tuple[int, int, int, int]], start: int, end: int, timezone: str,
                 window: Window) -> tuple[list[tuple[str, int]], int, float | None]:
    zone = ZoneInfo(timezone)
    starts = _month_starts(window.first, window.last)
    months: OrderedDict[str, int] = OrderedDict((day.strftime("%b %Y"), 0) for day in starts)
    # Labels by (year, month): formatting a date for each of thousands of artists is slow.
    labels = {(day.year, day.month): day.strftime("%b %Y") for day in starts}
    new_ms = total_ms = new = 0
    for _, _, ms, first_played in artists:
        total_ms += ms
        if start <= first_played < end:
            new += 1
            new_ms += ms
            moment = datetime.fromtimestamp(first_played, zone)
            label = labels.get((moment.year, moment.month))
            if label is not None:
                months[label] += 1
    share = None if window.key == "all" or not total_ms else new_ms / total_ms
    return list(months.items()), new, share


def previous_totals(conn: sqlite3.Connection, user_id: int, window: Window, timezone: str,
                    now: datetime) -> Totals | None:
    """The period before the range, cut at the same time of day as now: equal lengths.

    The range ends with today so far, so a whole last day before it would compare a part
    day with a full one.
    """
    if window.previous is None:
        return None
    first, last = window.previous
    days = day_totals(conn, user_id, first, last - timedelta(days=1))
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    cutoff = int(datetime.combine(last, local.time(), zone).timestamp())
    plays, ms = plays_between(conn, user_id, local_midnight(last, timezone), cutoff)
    if plays or ms:
        days[last] = (plays, ms)
    return _totals(days)


def compute(conn: sqlite3.Connection, user_id: int, key: str, now: datetime, timezone: str,
            week_start: int) -> Analytics:
    """Read and assemble the analytics of one range, as it stands at `now`."""
    today = local_today(timezone, now)
    first_play = first_play_day(conn, user_id)
    window = make_window(key, today, first_play)
    start = local_midnight(window.first, timezone)
    end = local_midnight(window.last + timedelta(days=1), timezone)
    whole = window.key == "all"
    days = day_totals(conn, user_id, window.first, window.last)
    totals = _totals(days)
    track_rows = per_track(conn, user_id, None if whole else start, end)
    artists = per_artist(track_rows, first_heard(conn, user_id))
    artist_rows = [(a[0], a[1], a[2]) for a in artists]
    tracks = [(t[0], t[2], t[3]) for t in track_rows]
    artist_ranks, track_ranks = _rankings(artist_rows), _rankings(tracks)
    top_artist_ids, top_track_ids = _top_ids(artist_ranks), _top_ids(track_ranks)
    genres, coverage = _genres(artists, artist_genres(conn, user_id))
    new_artists, new_count, share = _discoveries(artists, start, end, timezone, window)
    has_history, last_play, suggestion = True, None, None
    if totals.plays == 0:
        has_history, last_play = last_play_day(conn, user_id, today)
        suggestion = suggest_range(key, today, first_play, last_play)
    return Analytics(
        window=window, timezone=timezone, week_start=week_start,
        totals=totals, previous=previous_totals(conn, user_id, window, timezone, now),
        series=_series(window, days, week_start),
        # Played: at least one stream of 30 s or more (as the dashboard counts them).
        artists=sum(1 for a in artists if a[1]), tracks=sum(1 for t in tracks if t[1]),
        top_artists=_top(artist_ranks,
                         artist_names(conn, top_artist_ids) if top_artist_ids else {}),
        top_tracks=_top(track_ranks,
                        track_names(conn, top_track_ids) if top_track_ids else {}),
        genres=genres, genre_coverage=coverage,
        heatmap=_heatmap(weekday_hours(conn, user_id, None if whole else window.first,
                                       window.last), week_start),
        new_artists=new_artists, new_artist_count=new_count, discovery_minutes_share=share,
        has_history=has_history, suggestion=suggestion, last_play=last_play,
    )


def suggest_range(key: str, today: date, first_play: date | None, last_play: date | None
                  ) -> str | None:
    """The shortest other range with a play in it, or None when no range has one."""
    if last_play is None:
        return None
    for candidate in RANGES:
        if candidate != key and make_window(candidate, today, first_play).first <= last_play:
            return candidate
    return None


def _top_ids(ranked: dict[str, list[tuple[int, int, int]]]) -> list[int]:
    return sorted({row[0] for rows in ranked.values() for row in rows})


class Cache:
    """A small LRU of computed analytics; keys carry the history version, so never stale.

    `Cache(size=0)` keeps nothing: every request computes (the bench measures that).
    """

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Analytics] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Analytics | None:
        """A cached result, freshened in the LRU order."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Hashable, value: Analytics) -> None:
        """Keep a result, dropping the least recently used beyond the size."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def load(conn: sqlite3.Connection, user_id: int, key: str, *, cache: Cache | None = None,
         now: datetime | None = None) -> Analytics:
    """The analytics of a range for a user, from the cache when the history is unchanged."""
    timezone = users.user_timezone(conn, user_id)
    week_start = users.week_start(conn, user_id)
    now = now or datetime.now(UTC)
    today = local_today(timezone, now)
    cache_key = (user_id, history.history_version(conn, user_id), timezone, week_start, key,
                 today)
    if cache is not None and (found := cache.get(cache_key)) is not None:
        # The period compared against moves on with the time of day; it is two small reads.
        previous = previous_totals(conn, user_id, found.window, timezone, now)
        return found if previous == found.previous else replace(found, previous=previous)
    result = compute(conn, user_id, key, now, timezone, week_start)
    if cache is not None:
        cache.put(cache_key, result)
    return result
