"""Periods of listening and calendar arithmetic, in the user's time zone.

A period is a run of whole local days: one of the fixed ranges ending today (the shortcuts),
a calendar year, month, week or day, or any from–to range. The query string names it, so a
period's URL can be bookmarked; `parse` reads it back and refuses what cannot be a period.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

RANGES = {"7d": "7 days", "30d": "30 days", "90d": "90 days", "6m": "6 months",
          "12m": "12 months", "all": "All time"}
DEFAULT_RANGE = "12m"
UNITS = ("day", "week", "month", "year")
# Spotify began in 2006: nothing can have been played before, so earlier dates are typos.
EARLIEST = date(2006, 1, 1)
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_YEAR = re.compile(r"\d{4}")


# --- calendar arithmetic ----------------------------------------------------------------


def local_today(timezone: str, now: datetime | None = None) -> date:
    """Today's date where the user is."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()


def local_midnight(day: date, timezone: str) -> int:
    """UTC seconds of the start of a local day (correct across DST changes)."""
    return int(datetime.combine(day, time(0), ZoneInfo(timezone)).timestamp())


def add_months(day: date, months: int) -> date:
    """The same day `months` months later (earlier when negative), clamped to the month's end."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    # 31 August minus six months is the end of February, not an error.
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def months_before(day: date, months: int) -> date:
    """The same day `months` months earlier, or that month's last day when it is shorter."""
    return add_months(day, -months)


def month_end(day: date) -> date:
    """The last day of the month holding `day`."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def next_month(day: date) -> date:
    """The first day of the month after the one holding `day`."""
    return month_end(day) + timedelta(days=1)


def month_starts(first: date, last: date) -> list[date]:
    """The first day of every month from the one holding `first` to the one holding `last`."""
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(day)
        day = next_month(day)
    return months


def week_of(day: date, week_start: int) -> date:
    """The first day of the week holding `day` (weeks start on weekday `week_start`)."""
    return day - timedelta(days=(day.weekday() - week_start) % 7)


def utc_offsets(start: int, end: int, timezone: str) -> list[tuple[int, int]]:
    """(from, offset) for each stretch of [start, end] (UTC seconds) with one UTC offset.

    Found day by day, then to the quarter hour: every offset change in use falls on one.
    """
    zone = ZoneInfo(timezone)

    def offset(ts: int) -> int:
        found = datetime.fromtimestamp(ts, zone).utcoffset()
        return int(found.total_seconds()) if found else 0

    stretches = [(start, offset(start))]
    day = start - start % 86400
    while day < end:
        following = min(day + 86400, end)
        if offset(following) != stretches[-1][1]:
            moment = day
            while offset(moment) == stretches[-1][1]:
                moment += 900
            stretches.append((max(moment, start), offset(moment)))
        day += 86400
    return stretches


# --- periods ----------------------------------------------------------------------------


class PeriodError(ValueError):
    """A query that does not name a period; the message says what to change."""


@dataclass(frozen=True)
class Period:
    """Whole local days from `first` to `last`, cut at today, and how the URL names them."""

    kind: str  # "range", "year", "month", "week", "day" or "custom"
    first: date
    last: date
    # Shortcut ranges: the range key; calendar kinds: the first day of the unit.
    key: str = ""
    # The last day of the whole unit, beyond `last` when the unit is still going on.
    unit_last: date | None = None

    @property
    def days(self) -> int:
        """Number of days covered."""
        return (self.last - self.first).days + 1

    @property
    def cut(self) -> bool:
        """True when the period is a unit still going on, shown up to today."""
        return self.unit_last is not None and self.unit_last > self.last

    @property
    def bucket(self) -> str:
        """How a chart of the period groups its days."""
        return "day" if self.days <= 31 else "week" if self.days <= 400 else "month"

    @property
    def query(self) -> dict[str, str]:
        """The query parameters naming this period."""
        if self.kind == "range":
            return {"range": self.key}
        if self.kind == "custom":
            return {"from": self.first.isoformat(), "to": self.last.isoformat()}
        return {self.kind: _unit_name(self.kind, self.first)}

    @property
    def label(self) -> str:
        """The period in words, as headings name it."""
        if self.kind == "range":
            return RANGES[self.key]
        if self.kind == "year":
            return str(self.first.year)
        if self.kind == "month":
            return self.first.strftime("%B %Y")
        if self.kind == "week":
            return "Week of " + _day_words(self.first)
        if self.kind == "day":
            return self.first.strftime("%A ") + _day_words(self.first)
        return f"{_day_words(self.first)} – {_day_words(self.last)}"

    @property
    def dates(self) -> str:
        """The first and last day, in words."""
        if self.first == self.last:
            return _day_words(self.first)
        return f"{_day_words(self.first)} – {_day_words(self.last)}"

    def previous(self, week_start: int = 0) -> Period | None:
        """The period just before: the unit before, or as many days before; None for all time."""
        if self.kind == "range" and self.key == "all":
            return None
        if self.kind in UNITS:
            return unit_period(self.kind, self.first - timedelta(days=1), week_start, None)
        last = self.first - timedelta(days=1)
        return Period("custom", last - timedelta(days=self.days - 1), last)

    def following(self, today: date, week_start: int = 0) -> Period | None:
        """The period just after, or None when it would start after today."""
        if self.kind == "range":
            return None
        if self.kind in UNITS:
            after = (self.unit_last or self.last) + timedelta(days=1)
            return unit_period(self.kind, after, week_start, today) if after <= today else None
        first = self.last + timedelta(days=1)
        if first > today:
            return None
        return Period("custom", first, min(first + timedelta(days=self.days - 1), today))

    def includes(self, day: date) -> bool:
        """Whether a day falls in the period."""
        return self.first <= day <= self.last


def _day_words(day: date) -> str:
    return f"{day.day} {day.strftime('%b')} {day.year:04d}"


def _unit_name(kind: str, first: date) -> str:
    if kind == "year":
        return str(first.year)
    if kind == "month":
        return first.strftime("%Y-%m")
    return first.isoformat()


def shortcut(key: str, today: date, first_play: date | None) -> Period:
    """A fixed range ending today; `all` starts at the first play."""
    if key == "all":
        first = min(first_play or today, today)
    elif key.endswith("d"):
        first = today - timedelta(days=int(key[:-1]) - 1)
    else:
        first = months_before(today, int(key[:-1])) + timedelta(days=1)
    return Period("range", first, today, key)


def unit_period(unit: str, day: date, week_start: int, today: date | None) -> Period:
    """The calendar day, week, month or year holding `day`, cut at `today` when given."""
    if unit == "year":
        first, last = day.replace(month=1, day=1), day.replace(month=12, day=31)
    elif unit == "month":
        first, last = day.replace(day=1), month_end(day)
    elif unit == "week":
        first = week_of(day, week_start)
        last = first + timedelta(days=6)
    else:
        first = last = day
    shown = min(last, today) if today is not None else last
    return Period(unit, first, shown, _unit_name(unit, first), last)


def parse(query: Mapping[str, str], today: date, first_play: date | None, week_start: int = 0,
          default: str = DEFAULT_RANGE) -> Period:
    """The period a query string names, or the default shortcut when it names none.

    Raises PeriodError with a sentence for the user when the query names an impossible one.
    """
    if "from" in query or "to" in query:
        first = _date(query.get("from"), "start date")
        last = _date(query.get("to"), "end date")
        if first > last:
            raise PeriodError(f"The start date ({_day_words(first)}) is after the end date "
                              f"({_day_words(last)}): swap them.")
        _check_span(first, last, today)
        return Period("custom", first, last)
    if "at" in query:
        unit = query.get("unit") or "day"
        if unit not in UNITS:
            raise PeriodError("Choose a day, week, month or year to jump to.")
        day = _date(query.get("at"), "date")
        return _unit(unit, day, week_start, today)
    for unit in ("year", "month", "week", "day"):
        raw = query.get(unit)
        if raw:
            return _unit(unit, _unit_start(unit, raw), week_start, today)
    key = query.get("range")
    if key is not None and key not in RANGES:
        raise PeriodError(f"“{key[:20]}” is not a range here: choose one of "
                          + ", ".join(RANGES.values()) + ".")
    return shortcut(key or default, today, first_play)


def _unit(unit: str, day: date, week_start: int, today: date) -> Period:
    period = unit_period(unit, day, week_start, today)
    _check_span(period.first, period.first, today)
    return period


def _unit_start(unit: str, raw: str) -> date:
    raw = raw.strip()
    if unit == "year":
        if not _YEAR.fullmatch(raw):
            raise PeriodError(f"“{raw[:20]}” is not a year: write it like 2024.")
        return date(int(raw), 1, 1)
    if unit == "month":
        match = _MONTH.fullmatch(raw)
        if not match or not 1 <= int(match[2]) <= 12:
            raise PeriodError(f"“{raw[:20]}” is not a month: write it like 2024-03.")
        return date(int(match[1]), int(match[2]), 1)
    return _date(raw, unit)


def _date(raw: str | None, what: str) -> date:
    raw = (raw or "").strip()
    if not raw:
        raise PeriodError(f"Enter the {what}.")
    try:
        return date.fromisoformat(raw) if len(raw) == 10 else _bad_date(raw, what)
    except ValueError:
        return _bad_date(raw, what)


def _bad_date(raw: str, what: str) -> date:
    raise PeriodError(f"“{raw[:20]}” is not a {what} that exists: write it like 2024-03-31.")


def _check_span(first: date, last: date, today: date) -> None:
    if first < EARLIEST:
        raise PeriodError(f"{_day_words(first)} is before Spotify began: choose a date from "
                          f"{EARLIEST.year} on.")
    if first > today:
        raise PeriodError(f"{_day_words(first)} has not come yet: choose a period that starts "
                          f"by today ({_day_words(today)}).")
    if last > today:
        raise PeriodError(f"{_day_words(last)} has not come yet: end the range by today "
                          f"({_day_words(today)}).")
