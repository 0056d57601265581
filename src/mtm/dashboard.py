"""Everything the Home dashboard shows, gathered in one read."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mtm import stats, sync, users

RECENT_PAGE = 20
CHART_DAYS = 30


@dataclass(frozen=True)
class Dashboard:
    """The finished figures for the Home page."""

    timezone: str
    today: date
    headline: stats.Headline
    last_days: list[stats.DayTotal]
    month_label: str
    top_artists: list[stats.Ranked]
    top_tracks: list[stats.Ranked]
    recent: list[stats.RecentPlay]
    next_cursor: stats.Cursor | None
    last_sync: sync.SyncRun | None

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
            # No axis titles: the legend names both series and phones need the width.
            "options": {"scales": {"y": {"beginAtZero": True},
                                   "y1": {"position": "right", "beginAtZero": True,
                                          "grid": {"display": False}}}},
        }


def sync_token(run: sync.SyncRun | None) -> str:
    """A short string naming the latest sync run and whether it has finished."""
    if run is None:
        return "none"
    return f"{run.id}-{run.finished_at or 'running'}"


def current_sync_token(conn: sqlite3.Connection, user_id: int) -> str:
    """The token the dashboard would show now (one indexed read, for polling)."""
    return sync_token(sync.latest_run(conn, user_id))


def load(conn: sqlite3.Connection, user_id: int, now: datetime | None = None) -> Dashboard:
    """Read the dashboard for a user at a moment (now by default)."""
    timezone = users.user_timezone(conn, user_id)
    now = now or datetime.now(ZoneInfo("UTC"))
    today = stats.local_today(timezone, now)
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    start, end = stats.local_midnight(month_start, timezone), stats.local_midnight(next_month,
                                                                                    timezone)
    recent, cursor = stats.recent_plays(conn, user_id, timezone, limit=RECENT_PAGE)
    return Dashboard(
        timezone=timezone,
        today=today,
        headline=stats.headline(conn, user_id, today),
        last_days=stats.daily_totals(conn, user_id, today, CHART_DAYS),
        month_label=month_start.strftime("%B %Y"),
        top_artists=stats.top_artists(conn, user_id, start, end),
        top_tracks=stats.top_tracks(conn, user_id, start, end),
        recent=recent,
        next_cursor=cursor,
        last_sync=sync.latest_run(conn, user_id),
    )


def history_page(conn: sqlite3.Connection, user_id: int, before: stats.Cursor | None
                 ) -> tuple[list[stats.RecentPlay], stats.Cursor | None]:
    """One page of the play history, older than `before`."""
    timezone = users.user_timezone(conn, user_id)
    return stats.recent_plays(conn, user_id, timezone, before=before, limit=RECENT_PAGE)
