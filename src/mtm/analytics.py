"""Analytics of any period, in the user's time zone: time series, genres, tops, heatmap.

The figures are read through mtm.listening, the read side every page shares. Results are
cached under the user's history version, so new plays are never hidden by the cache.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from mtm import history, listening, period_totals, preferences
from mtm.cache import Cache
from mtm.listening import METRICS, Ranked
from mtm.periods import (
    RANGES,
    Period,
    PeriodError,
    local_midnight,
    local_today,
    month_end,
    month_starts,
    parse,
    shortcut,
    unit_period,
    week_of,
)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
GENRES_SHOWN = 10
HEAT_LEVELS = 5
OTHER_GENRES = "Other genres"


def parse_metric(raw: str | None, default: str = "plays") -> str:
    """`plays` or `minutes`; anything else falls back to the default."""
    return raw if raw in METRICS else default


def bucket_start(day: date, bucket: str, week_start: int) -> date:
    """The first day of the bucket a day falls in (weeks start on the user's week start)."""
    if bucket == "week":
        return week_of(day, week_start)
    if bucket == "month":
        return day.replace(day=1)
    return day


def bucket_end(start: date, bucket: str) -> date:
    """The last day of the bucket that starts on `start`."""
    if bucket == "month":
        return month_end(start)
    return start + timedelta(days=6 if bucket == "week" else 0)


def partial_note(start: date, bucket: str, period: Period, today: date) -> str:
    """Why a bucket is not a whole one ("this week so far", "from 3 Mar only"), or ""."""
    end = bucket_end(start, bucket)
    if start <= today <= end:
        # Today is never over, so the bucket holding it is always incomplete.
        return {"day": "today so far", "week": "this week so far",
                "month": "this month so far"}[bucket]
    if start < period.first:
        return "from " + period.first.strftime("%d %b") + " only"
    if end > period.last:
        return "to " + period.last.strftime("%d %b") + " only"
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
    """Everything the Analytics page shows for one period."""

    period: Period
    today: date
    timezone: str
    week_start: int
    totals: Totals
    # The period compared against, and its figures (None for all time).
    compared: Period | None
    previous: Totals | None
    series: list[Point]
    artists: int
    tracks: int
    albums: int
    top_artists: dict[str, list[Ranked]]
    top_albums: dict[str, list[Ranked]]
    top_tracks: dict[str, list[Ranked]]
    genres: list[Share]
    genre_coverage: float
    heatmap: list[tuple[str, list[HeatCell]]]
    new_artists: list[tuple[str, int]]
    new_artist_count: int
    discovery_minutes_share: float | None
    # The most played of the artists first heard in the period (the review lists them).
    top_new_artists: list[Ranked] = field(default_factory=list)
    # The calendar years the user has plays in, for the year switch.
    years: tuple[int, ...] = ()
    # Only looked up for an empty period: whether any play exists, and a period that has some.
    has_history: bool = True
    suggestion: Period | None = None
    last_play: date | None = None

    @property
    def form_values(self) -> dict[str, str]:
        """What the period forms start with: this period, as each form names it."""
        period = self.period
        if period.kind == "custom":
            return {"from": period.first.isoformat(), "to": period.last.isoformat()}
        if period.kind == "range":
            return {"unit": "month", "at": period.last.isoformat()}
        return {"unit": period.kind, "at": period.first.isoformat()}

    @property
    def empty(self) -> bool:
        """Nothing was played in the period."""
        return self.totals.plays == 0

    @property
    def title(self) -> str:
        """The page's title, as the tab shows it (without the site name)."""
        return "Analytics · " + self.period.label

    @property
    def earlier(self) -> Period | None:
        """The period before, for the "previous" link (None for the shortcut ranges)."""
        if self.period.kind == "range":
            return None
        return self.period.previous(self.week_start)

    @property
    def later(self) -> Period | None:
        """The period after, for the "next" link (None when it would start after today)."""
        return self.period.following(self.today, self.week_start)

    @property
    def compared_label(self) -> str:
        """What the change figures compare against, in words."""
        period = self.period
        before = period.previous(self.week_start)
        if self.compared is None or before is None:
            return ""
        if period.last == self.today and period.kind == "range":
            return f"the {period.days} days before, to this time of day"
        if period.last == self.today and not period.cut:
            return f"{before.label}, to this time of day"
        if period.last == self.today:
            days = "the first day" if period.days == 1 else f"the first {period.days} days"
            return f"{days} of {before.label}, to this time of day"
        if period.kind == "custom":
            return f"the {period.days} days before"
        return before.label

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
        return [partial_note(start, "month", self.period, self.today)
                for start in month_starts(self.period.first, self.period.last)]

    def discovery_rows(self) -> list[tuple[str, int, str]]:
        """(month, new artists, note) for the discoveries table."""
        return [(month, n, note) for (month, n), note in zip(self.new_artists,
                                                              self.discovery_notes(), strict=True)]

    def chart_over_time(self) -> dict:
        """Minutes and plays per bucket, for charts.js."""
        bucket = self.period.bucket
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


# --- assembling --------------------------------------------------------------------


def _series(period: Period, days: dict[date, tuple[int, int]], week_start: int, today: date
            ) -> list[Point]:
    # Every bucket exists, so days without listening show as zero, not as a gap.
    bucket = period.bucket
    buckets: dict[date, list[int]] = {}
    start = bucket_start(period.first, bucket, week_start)
    while start <= period.last:
        buckets[start] = [0, 0]
        start = bucket_end(start, bucket) + timedelta(days=1)
    for day, (plays, ms) in days.items():
        entry = buckets[bucket_start(day, bucket, week_start)]
        entry[0] += plays
        entry[1] += ms
    return [Point(start, bucket_label(start, bucket), plays, round(ms / 60000),
                  partial_note(start, bucket, period, today))
            for start, (plays, ms) in buckets.items()]


def _totals(days: dict[date, tuple[int, int]]) -> Totals:
    return Totals(sum(p for p, _ in days.values()),
                  round(sum(ms for _, ms in days.values()) / 60000),
                  sum(1 for p, _ in days.values() if p))


def _genres(weights: list[tuple[str, float, float]], covered: int, total: int
            ) -> tuple[list[Share], float]:
    shares = [Share(name, round(p, 1), round(m, 1)) for name, p, m in weights]
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


def compared_period(period: Period, today: date, week_start: int) -> Period | None:
    """What a period is compared with: the one before, as long as this one has run so far."""
    before = period.previous(week_start)
    if before is None or period.last != today:
        return before
    # A period still going on is compared with as many days of the one before, not all of it.
    return Period("custom", before.first, before.first + timedelta(days=period.days - 1))


def previous_totals(conn: sqlite3.Connection, user_id: int, compared: Period | None,
                    ongoing: bool, timezone: str, now: datetime) -> Totals | None:
    """The compared period's figures; cut at the time of day of now when ours is ongoing.

    A period ending today holds today so far, so a whole last day before it would compare a
    part day with a full one.
    """
    if compared is None:
        return None
    if not ongoing:
        return _totals(listening.day_totals(conn, user_id, compared.first, compared.last))
    last = compared.last
    days = listening.day_totals(conn, user_id, compared.first, last - timedelta(days=1))
    zone = ZoneInfo(timezone)
    cutoff = int(datetime.combine(last, now.astimezone(zone).time(), zone).timestamp())
    plays, ms = listening.plays_between(conn, user_id, local_midnight(last, timezone), cutoff)
    if plays or ms:
        days[last] = (plays, ms)
    return _totals(days)


def compute(conn: sqlite3.Connection, user_id: int, period: Period, now: datetime,
            timezone: str, week_start: int) -> Analytics:
    """Read and assemble the analytics of one period, as it stands at `now`."""
    today = local_today(timezone, now)
    whole = period.kind == "range" and period.key == "all"
    days = listening.day_totals(conn, user_id, period.first, period.last)
    totals = _totals(days)
    if not whole:
        period_totals.fill(conn, user_id, timezone, period.first, period.last)
    summed = period_totals.summed(conn, user_id, whole)
    genres, coverage = _genres(*period_totals.genre_weights(conn, user_id, whole))
    found = period_totals.discoveries(conn, user_id, whole, period.first, period.last,
                                      timezone)
    new_artists = [(day.strftime("%b %Y"), n) for day, n in
                   zip(month_starts(period.first, period.last), found.per_month, strict=True)]
    share = None if whole or not found.total_ms else found.new_ms / found.total_ms
    has_history, last_play, suggestion = True, None, None
    if totals.plays == 0:
        has_history, last_play = listening.last_play_day(conn, user_id, today)
        suggestion = suggest_period(period, today, listening.first_play_day(conn, user_id),
                                    last_play)
    compared = compared_period(period, today, week_start)
    return Analytics(
        period=period, today=today, timezone=timezone, week_start=week_start,
        totals=totals, compared=compared,
        previous=previous_totals(conn, user_id, compared, period.last == today, timezone, now),
        series=_series(period, days, week_start, today),
        # Played: at least one stream of 30 s or more (as the dashboard counts them).
        artists=summed.counts["artist"], tracks=summed.counts["track"],
        albums=summed.counts["album"], top_artists=summed.tops["artist"],
        top_albums=summed.tops["album"], top_tracks=summed.tops["track"],
        genres=genres, genre_coverage=coverage,
        heatmap=_heatmap(listening.weekday_hours(conn, user_id, None if whole else period.first,
                                                 period.last), week_start),
        new_artists=new_artists, new_artist_count=found.count, discovery_minutes_share=share,
        top_new_artists=found.top,
        has_history=has_history, suggestion=suggestion, last_play=last_play,
    )


def suggest_period(period: Period, today: date, first_play: date | None,
                   last_play: date | None) -> Period | None:
    """A period near this empty one that has plays, or None when no period has any.

    For a shortcut, the shortest other shortcut reaching the last play; otherwise the month
    of the nearest play (the first one for a period before the history began).
    """
    if last_play is None:
        return None
    if period.kind == "range":
        for key in RANGES:
            candidate = shortcut(key, today, first_play)
            if key != period.key and candidate.first <= last_play:
                return candidate
        return None
    nearest = first_play if first_play and period.last < first_play else last_play
    return unit_period("month", nearest, 0, today)


@dataclass(frozen=True)
class Refused:
    """A query that names no period: why, and what the period forms need to ask again."""

    message: str
    today: date
    years: tuple[int, ...]
    timezone: str
    values: dict[str, str]

    @property
    def title(self) -> str:
        """The page's title while the period is refused."""
        return "Analytics · choose a period"


def years_played(first_play: date | None, today: date) -> tuple[int, ...]:
    """Every calendar year from the first play's to this one (none without plays)."""
    return tuple(range(first_play.year, today.year + 1)) if first_play else ()


def load(conn: sqlite3.Connection, user_id: int, query: Mapping[str, str], *,
         cache: Cache | None = None, now: datetime | None = None) -> Analytics | Refused:
    """The analytics of the period a query names, from the cache when nothing changed.

    A query naming no possible period (from after to, no such date, before Spotify, after
    today) gets a Refused saying why.
    """
    prefs = preferences.load(conn, user_id)
    timezone, week_start = prefs.timezone, prefs.week_start
    now = now or datetime.now(UTC)
    today = local_today(timezone, now)
    first_play = listening.first_play_day(conn, user_id)
    try:
        period = parse(query, today, first_play, week_start)
    except PeriodError as refused:
        values = {key: str(query.get(key, ""))[:20] for key in ("from", "to", "at", "unit")}
        return Refused(str(refused), today, years_played(first_play, today), timezone, values)
    cache_key = (user_id, history.history_version(conn, user_id), timezone, week_start, period,
                 today)
    if cache is not None and (found := cache.get(cache_key)) is not None:
        if period.last != today:
            return found
        # The period compared against moves on with the time of day; it is two small reads.
        previous = previous_totals(conn, user_id, found.compared, True, timezone, now)
        return found if previous == found.previous else replace(found, previous=previous)
    result = replace(compute(conn, user_id, period, now, timezone, week_start),
                     years=years_played(first_play, today))
    if cache is not None:
        cache.put(cache_key, result)
    return result
