"""Periods named by a query string, calendar arithmetic, and the refusals of impossible ones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mtm import periods
from mtm.periods import Period, PeriodError, parse

TODAY = date(2026, 4, 15)  # a Wednesday


def test_calendar_units_and_their_urls() -> None:
    year = parse({"year": "2024"}, TODAY, None)
    assert (year.first, year.last, year.days, year.bucket) == (
        date(2024, 1, 1), date(2024, 12, 31), 366, "week")
    assert (year.label, year.query, year.cut) == ("2024", {"year": "2024"}, False)
    month = parse({"month": "2024-02"}, TODAY, None)
    assert (month.first, month.last, month.label) == (date(2024, 2, 1), date(2024, 2, 29),
                                                      "February 2024")
    assert month.query == {"month": "2024-02"}
    # A week is named by any of its days and starts on the user's week start.
    monday = parse({"week": "2026-03-04"}, TODAY, None, week_start=0)
    sunday = parse({"week": "2026-03-04"}, TODAY, None, week_start=6)
    assert (monday.first, monday.last) == (date(2026, 3, 2), date(2026, 3, 8))
    assert (sunday.first, sunday.last) == (date(2026, 3, 1), date(2026, 3, 7))
    assert monday.query == {"week": "2026-03-02"}
    day = parse({"day": "2026-03-29"}, TODAY, None)
    assert (day.first, day.last, day.label, day.bucket) == (
        date(2026, 3, 29), date(2026, 3, 29), "Sunday 29 Mar 2026", "day")
    custom = parse({"from": "2023-06-01", "to": "2026-01-31"}, TODAY, None)
    assert (custom.kind, custom.days, custom.bucket) == ("custom", 976, "month")
    assert custom.query == {"from": "2023-06-01", "to": "2026-01-31"}
    assert custom.label == "1 Jun 2023 – 31 Jan 2026"


def test_a_unit_still_going_on_is_cut_at_today() -> None:
    month = parse({"month": "2026-04"}, TODAY, None)
    assert (month.first, month.last, month.unit_last, month.cut) == (
        date(2026, 4, 1), TODAY, date(2026, 4, 30), True)
    year = parse({"year": "2026"}, TODAY, None)
    assert (year.last, year.cut) == (TODAY, True)
    # Its next period has not begun; the one before is whole.
    assert month.following(TODAY) is None
    before = month.previous()
    assert (before.first, before.last, before.cut) == (date(2026, 3, 1), date(2026, 3, 31), False)


def test_jumping_to_a_date_opens_its_unit() -> None:
    assert parse({"at": "2025-07-19", "unit": "month"}, TODAY, None).query == {"month": "2025-07"}
    assert parse({"at": "2025-07-19", "unit": "year"}, TODAY, None).query == {"year": "2025"}
    assert parse({"at": "2025-07-19", "unit": "week"}, TODAY, None).first == date(2025, 7, 14)
    assert parse({"at": "2025-07-19"}, TODAY, None).query == {"day": "2025-07-19"}


def test_previous_and_next_cross_year_boundaries() -> None:
    december = parse({"month": "2025-12"}, TODAY, None)
    assert december.following(TODAY).query == {"month": "2026-01"}
    january = parse({"month": "2026-01"}, TODAY, None)
    assert january.previous().query == {"month": "2025-12"}
    new_year = parse({"day": "2026-01-01"}, TODAY, None)
    assert new_year.previous().query == {"day": "2025-12-31"}
    # A week spanning the new year steps by whole weeks.
    week = parse({"week": "2025-12-31"}, TODAY, None)
    assert (week.first, week.last) == (date(2025, 12, 29), date(2026, 1, 4))
    assert week.following(TODAY).first == date(2026, 1, 5)
    assert parse({"year": "2024"}, TODAY, None).following(TODAY).query == {"year": "2025"}


def test_custom_ranges_step_by_their_length_and_stop_at_today() -> None:
    custom = parse({"from": "2026-03-01", "to": "2026-03-10"}, TODAY, None)
    before = custom.previous()
    assert (before.first, before.last) == (date(2026, 2, 19), date(2026, 2, 28))
    after = custom.following(TODAY)
    assert (after.first, after.last) == (date(2026, 3, 11), date(2026, 3, 20))
    near = parse({"from": "2026-04-10", "to": "2026-04-14"}, TODAY, None)
    assert near.following(TODAY).last == TODAY


def test_shortcuts_are_the_default() -> None:
    assert parse({}, TODAY, None) == periods.shortcut("12m", TODAY, None)
    seven = parse({"range": "7d"}, TODAY, None)
    assert (seven.first, seven.last, seven.label) == (date(2026, 4, 9), TODAY, "7 days")
    everything = parse({"range": "all"}, TODAY, date(2019, 3, 2))
    assert everything.first == date(2019, 3, 2) and everything.previous() is None
    # Shortcuts end today: there is no "next", and what comes before is as many days.
    assert seven.following(TODAY) is None and seven.previous().days == 7


@pytest.mark.parametrize(("query", "message"), [
    ({"from": "2026-03-10", "to": "2026-03-01"},
     "The start date (10 Mar 2026) is after the end date (1 Mar 2026): swap them."),
    ({"from": "2026-02-30", "to": "2026-03-01"},
     "“2026-02-30” is not a start date that exists: write it like 2024-03-31."),
    ({"from": "2026-03-01", "to": ""}, "Enter the end date."),
    ({"from": "yesterday", "to": "2026-03-01"},
     "“yesterday” is not a start date that exists: write it like 2024-03-31."),
    ({"from": "1999-12-31", "to": "2026-03-01"},
     "31 Dec 1999 is before Spotify began: choose a date from 2006 on."),
    ({"from": "2026-04-01", "to": "2026-05-01"},
     "1 May 2026 has not come yet: end the range by today (15 Apr 2026)."),
    ({"year": "2027"}, "1 Jan 2027 has not come yet: choose a period that starts by today "
                       "(15 Apr 2026)."),
    ({"year": "0001"}, "1 Jan 0001 is before Spotify began: choose a date from 2006 on."),
    ({"year": "twenty"}, "“twenty” is not a year: write it like 2024."),
    ({"month": "2026-13"}, "“2026-13” is not a month: write it like 2024-03."),
    ({"day": "2026-04-31"}, "“2026-04-31” is not a day that exists: write it like 2024-03-31."),
    ({"day": "99999-01-01"}, "“99999-01-01” is not a day that exists: write it like 2024-03-31."),
    ({"at": "2026-04-01", "unit": "decade"}, "Choose a day, week, month or year to jump to."),
    ({"range": "5y"}, "“5y” is not a range here: choose one of 7 days, 30 days, 90 days, "
                      "6 months, 12 months, All time."),
])
def test_impossible_periods_are_refused_in_words(query: dict[str, str], message: str) -> None:
    with pytest.raises(PeriodError) as refused:
        parse(query, TODAY, None)
    assert str(refused.value) == message


def test_local_midnights_across_daylight_saving_changes() -> None:
    # Berlin: 29 March 2026 has 23 hours, 25 October 26.
    spring = [periods.local_midnight(date(2026, 3, d), "Europe/Berlin") for d in (29, 30)]
    autumn = [periods.local_midnight(date(2026, 10, d), "Europe/Berlin") for d in (25, 26)]
    assert spring[1] - spring[0] == 23 * 3600 and autumn[1] - autumn[0] == 25 * 3600
    start = datetime.fromtimestamp(spring[0], ZoneInfo("Europe/Berlin"))
    assert (start.hour, start.minute) == (0, 0)


def test_month_arithmetic() -> None:
    assert periods.add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert periods.add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert periods.add_months(date(2026, 11, 15), 3) == date(2027, 2, 15)
    assert periods.months_before(date(2026, 3, 31), 1) == date(2026, 2, 28)
    assert periods.month_end(date(2026, 12, 5)) == date(2026, 12, 31)
    assert periods.next_month(date(2026, 12, 5)) == date(2027, 1, 1)
    assert periods.month_starts(date(2025, 11, 20), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def test_every_day_of_a_leap_year_is_in_one_month_and_one_week() -> None:
    day = date(2024, 1, 1)
    while day.year == 2024:
        month = periods.unit_period("month", day, 0, None)
        week = periods.unit_period("week", day, 6, None)
        assert month.includes(day) and week.includes(day) and week.days == 7
        assert week.first.weekday() == 6
        day += timedelta(days=1)


def test_a_period_is_a_value() -> None:
    a = Period("month", date(2026, 3, 1), date(2026, 3, 31), "2026-03", date(2026, 3, 31))
    assert a == parse({"month": "2026-03"}, TODAY, None) and hash(a) == hash(
        parse({"at": "2026-03-09", "unit": "month"}, TODAY, None))


def test_utc_offsets_follow_each_change_of_the_zone() -> None:
    start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(2026, 12, 31, tzinfo=UTC).timestamp())
    spring = int(datetime(2026, 3, 29, 1, tzinfo=UTC).timestamp())
    autumn = int(datetime(2026, 10, 25, 1, tzinfo=UTC).timestamp())
    assert periods.utc_offsets(start, end, "Europe/Berlin") == [
        (start, 3600), (spring, 7200), (autumn, 3600)]
    # Lord Howe Island moves by half an hour, at 02:00 local (15:00 UTC the day before).
    howe = periods.utc_offsets(start, end, "Australia/Lord_Howe")
    assert [offset for _, offset in howe] == [39600, 37800, 39600]
    assert howe[1][0] == int(datetime(2026, 4, 4, 15, tzinfo=UTC).timestamp())
    assert periods.utc_offsets(start, end, "Asia/Kathmandu") == [(start, 20700)]
    assert periods.utc_offsets(spring + 60, spring + 120, "Europe/Berlin") == [
        (spring + 60, 7200)]
