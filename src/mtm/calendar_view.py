"""A year of listening at a glance: every local day, shaded by its plays, month by month."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from mtm import listening, periods, preferences

LEVELS = 5
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class Day:
    """One local day: its plays, minutes and shade (0 for none, up to LEVELS)."""

    day: date
    plays: int
    minutes: int
    level: int


@dataclass(frozen=True)
class Month:
    """A month as weeks of seven cells (None outside the month)."""

    first: date
    weeks: list[list[Day | None]]

    @property
    def label(self) -> str:
        """The month's name."""
        return self.first.strftime("%B")


@dataclass(frozen=True)
class Year:
    """The calendar of one year, its totals and the years it links to."""

    year: int
    months: list[Month]
    plays: int
    minutes: int
    days_listened: int
    # Weekday names in column order (the user's week start first).
    weekdays: tuple[str, ...]
    previous: int | None
    following: int | None


def level(plays: int, peak: int) -> int:
    """The shade of a day: 0 without plays, else 1..LEVELS in proportion to the busiest day."""
    if plays <= 0 or peak <= 0:
        return 0
    return -(-plays * LEVELS // peak)


def month_weeks(first: date, days: dict[date, Day], week_start: int) -> list[list[Day | None]]:
    """The weeks of the month starting `first`, each seven cells from `week_start`."""
    last = periods.month_end(first)
    start = periods.week_of(first, week_start)
    weeks: list[list[Day | None]] = []
    while start <= last:
        weeks.append([days.get(start + timedelta(days=i))
                      if first <= start + timedelta(days=i) <= last else None for i in range(7)])
        start += timedelta(days=7)
    return weeks


def load(conn: sqlite3.Connection, user_id: int, raw_year: str | None,
         now: datetime | None = None) -> Year:
    """The calendar of a year ("" or None: this year where the user is).

    Raises periods.PeriodError with a sentence for a year that is not one or has not come.
    """
    prefs = preferences.load(conn, user_id)
    today = periods.local_today(prefs.timezone, now or datetime.now(UTC))
    raw = (raw_year or "").strip() or str(today.year)
    period = periods.parse({"year": raw}, today, None)
    year = period.first.year
    first, last = date(year, 1, 1), date(year, 12, 31)
    totals = listening.day_totals(conn, user_id, first, last)
    peak = max((plays for plays, _ in totals.values()), default=0)
    days = {}
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        plays, ms = totals.get(day, (0, 0))
        days[day] = Day(day, plays, round(ms / 60000), level(plays, peak))
    months = [Month(start, month_weeks(start, days, prefs.week_start))
              for start in periods.month_starts(first, last)]
    first_play = listening.first_play_day(conn, user_id)
    earliest = first_play.year if first_play else today.year
    weekdays = tuple(WEEKDAYS[(prefs.week_start + i) % 7] for i in range(7))
    return Year(year, months, sum(p for p, _ in totals.values()),
                round(sum(ms for _, ms in totals.values()) / 60000),
                sum(1 for p, _ in totals.values() if p > 0), weekdays,
                year - 1 if year - 1 >= earliest else None,
                year + 1 if year + 1 <= today.year else None)
