"""Everything the Home dashboard shows, gathered in one read."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mtm import backups, connection, jobs, listening, periods, preferences, search, sync, users
from mtm.periods import local_midnight, local_today, next_month

RECENT_PAGE = 20
CHART_DAYS = 30
# How many artists and tracks of this month Home lists.
TOP = 5
# A refresh keeps the plays the page has expanded to, up to this many rows.
KEEP_MAX = 1000


@dataclass(frozen=True)
class Recording:
    """What is true about recording a user's plays, for the words of empty states."""

    connected: bool
    syncing: bool
    last_sync: sync.SyncRun | None
    # When the whole history was last cleared (None: never, or its backup is gone).
    cleared_at: int | None
    # Seconds between background syncs; 0 when they are off.
    sync_interval: int

    @property
    def next_sync(self) -> str:
        """When recording carries on, in words ("" when it cannot)."""
        if not self.connected:
            return ""
        if self.sync_interval <= 0:
            return "Automatic syncs are off: use Sync now in Settings to fetch your plays."
        minutes = max(1, self.sync_interval // 60)
        return (f"The next sync runs within {minutes} minute{'s' if minutes != 1 else ''}, "
                "or use Sync now in Settings.")


def recording(conn: sqlite3.Connection, user_id: int, sync_interval: int) -> Recording:
    """Connected or not, a sync under way, the last sync and the last clear of a user."""
    run = sync.latest_run(conn, user_id)
    syncing = ((run is not None and run.outcome == "running")
               or jobs.active(conn, user_id, (connection.SYNC,)) is not None)
    return Recording(connected=users.get_tokens(conn, user_id) is not None, syncing=syncing,
                     last_sync=run, cleared_at=backups.last_cleared(conn, user_id),
                     sync_interval=sync_interval)


@dataclass(frozen=True)
class Dashboard:
    """The finished figures for the Home page."""

    timezone: str
    today: date
    headline: listening.Headline
    last_days: list[listening.DayTotal]
    month_label: str
    top_artists: list[listening.Ranked]
    top_tracks: list[listening.Ranked]
    recent: list[listening.RecentPlay]
    next_cursor: listening.Cursor | None
    recording: Recording

    @property
    def last_sync(self) -> sync.SyncRun | None:
        """The latest sync run, finished or not."""
        return self.recording.last_sync

    @property
    def sync_token(self) -> str:
        """Changes whenever a sync starts or ends; the page polls with it to see news."""
        return sync_token(self.last_sync)

    @property
    def empty(self) -> bool:
        """True when the user has no plays at all yet."""
        return self.headline.plays == 0

    def chart(self) -> dict:
        """The last-30-days chart as data for charts.js."""
        return {
            "type": "bar",
            "labels": [d.day.strftime("%d %b") for d in self.last_days],
            "datasets": [{"label": "Minutes listened", "data": [d.minutes for d in self.last_days]},
                         {"label": "Plays", "data": [d.plays for d in self.last_days],
                          "type": "line", "yAxisID": "y1"}],
            # The last day is today, which is not over: charts.js draws it as "so far".
            "partial": [{"index": len(self.last_days) - 1, "note": "today so far"}],
            "partialLegend": "Today so far",
            "options": {"scales": {"x": {"title": {"display": True, "text": "Day"}},
                                   "y": {"beginAtZero": True, "title": {
                                       "display": True, "text": "Minutes listened"}},
                                   "y1": {"position": "right", "beginAtZero": True,
                                          "grid": {"display": False},
                                          "title": {"display": True, "text": "Plays"}}}},
        }


def sync_token(run: sync.SyncRun | None) -> str:
    """A short string naming the latest sync run and whether it has finished."""
    if run is None:
        return "none"
    return f"{run.id}-{run.finished_at or 'running'}"


def current_sync_token(conn: sqlite3.Connection, user_id: int) -> str:
    """The token the dashboard would show now (one indexed read, for polling)."""
    return sync_token(sync.latest_run(conn, user_id))


def load(conn: sqlite3.Connection, user_id: int, now: datetime | None = None, *,
         shown_to: listening.Cursor | None = None, sync_interval: int = 0) -> Dashboard:
    """Read the dashboard for a user at a moment (now by default).

    `shown_to` is the oldest play the page lists already ("show more" pages included): a
    refresh lists every play down to it, new ones on top, so nothing expanded goes away.
    """
    timezone = preferences.load(conn, user_id).timezone
    now = now or datetime.now(ZoneInfo("UTC"))
    today = local_today(timezone, now)
    month_start = today.replace(day=1)
    month = listening.per_track(conn, user_id, local_midnight(month_start, timezone),
                                local_midnight(next_month(month_start), timezone))
    rows = RECENT_PAGE
    if shown_to is not None:
        rows = min(max(rows, listening.plays_down_to(conn, user_id, shown_to)), KEEP_MAX)
    recent, cursor = listening.recent_plays(conn, user_id, timezone, limit=rows)
    first_day = today - timedelta(days=CHART_DAYS - 1)
    return Dashboard(
        timezone=timezone,
        today=today,
        headline=listening.headline(conn, user_id, today),
        last_days=listening.daily_series(listening.day_totals(conn, user_id, first_day, today),
                                         first_day, today),
        month_label=month_start.strftime("%B %Y"),
        top_artists=listening.top(conn, "artist", listening.artist_totals(month), limit=TOP),
        top_tracks=listening.top(conn, "track", listening.track_totals(month), limit=TOP),
        recent=recent,
        next_cursor=cursor,
        recording=recording(conn, user_id, sync_interval),
    )


@dataclass(frozen=True)
class PlaysPage:
    """A page of /plays: its plays, the filters they obey and how many plays match them."""

    plays: list[listening.RecentPlay]
    next_cursor: listening.Cursor | None
    # The query naming the filters (carried by "Show more"), and the form's values.
    filters: dict[str, str]
    values: dict[str, str]
    # (streams, plays) matching, None when nothing is filtered.
    matched: tuple[int, int] | None = None
    # The filters in words, e.g. "“sigur ros”, 3 Mar 2024".
    label: str = ""
    # Today where the user is: the latest day the form offers.
    today: date | None = None


def history_page(conn: sqlite3.Connection, user_id: int, before: listening.Cursor | None,
                 query: Mapping[str, str] | None = None, now: datetime | None = None
                 ) -> PlaysPage:
    """One page of the play history older than `before`, filtered by a query's q/from/to/day.

    Raises search.QueryError or periods.PeriodError with a sentence for impossible filters.
    """
    prefs = preferences.load(conn, user_id)
    query = query or {}
    text = search.parse_query(query.get("q"))
    values = {"q": text, "from": "", "to": ""}
    filters = {"q": text} if text else {}
    where, words = listening.PlayFilter(), [f"“{text}”"] if text else []
    today = local_today(prefs.timezone, now)
    period = _play_period(query, today)
    if period is not None:
        filters.update({"day": period.first.isoformat()} if "day" in query and query["day"]
                       else {"from": period.first.isoformat(), "to": period.last.isoformat()})
        values.update({"from": period.first.isoformat(), "to": period.last.isoformat()})
        where = listening.PlayFilter(local_midnight(period.first, prefs.timezone),
                                     local_midnight(period.last + timedelta(days=1),
                                                    prefs.timezone))
        words.append(period.dates)
    match = search.matcher(text)
    if match is not None:
        where = listening.PlayFilter(where.start, where.end, *match)
    matched = None
    if filters:
        items, cursor, matched = listening.filtered_plays(conn, user_id, prefs.timezone, where,
                                                          before, RECENT_PAGE)
    else:
        items, cursor = listening.recent_plays(conn, user_id, prefs.timezone, before=before,
                                               limit=RECENT_PAGE)
    return PlaysPage(items, cursor, filters, values, matched, ", ".join(words), today)


def _play_period(query: Mapping[str, str], today: date) -> periods.Period | None:
    """The local days a plays query names (`day`, or `from`/`to`, either alone), or None."""
    day = (query.get("day") or "").strip()
    first = (query.get("from") or "").strip()
    last = (query.get("to") or "").strip()
    if day and (first or last):
        raise periods.PeriodError("Choose one day or a from–to range, not both.")
    if day:
        return periods.parse({"day": day}, today, None)
    if first or last:
        # One end alone is open: from a day until today, or everything up to a day.
        return periods.parse({"from": first or periods.EARLIEST.isoformat(),
                              "to": last or today.isoformat()}, today, None)
    return None
