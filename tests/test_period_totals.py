"""A period summed from the monthly rollups and its edge days equals its plays summed plainly."""

from __future__ import annotations

import random
import sqlite3
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mtm import history, listening, period_totals
from mtm.history import ArtistIn, PlayIn, TrackIn
from mtm.periods import local_midnight
from tests.conftest import make_play

RANGES = [
    (date(2024, 2, 10), date(2024, 4, 5)),     # cut months at both edges
    (date(2024, 3, 1), date(2024, 10, 31)),    # whole months, across both DST changes
    (date(2023, 12, 15), date(2025, 1, 20)),   # across two year boundaries
    (date(2024, 3, 5), date(2024, 3, 20)),     # no whole month: the plays alone
    (date(2024, 3, 1), date(2024, 3, 31)),     # one whole month, no edge
    (date(2023, 11, 1), date(2024, 3, 31)),    # whole months ending on a DST month
]


def _local(tz: str, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(tz)).timestamp())


def _history(conn: sqlite3.Connection, user_id: int, tz: str) -> None:
    conn.execute("UPDATE preferences SET timezone = ? WHERE user_id = ?", (tz, user_id))
    rng = random.Random(7)
    start = _local(tz, 2023, 10, 1)
    plays = [make_play(start + rng.randrange(500 * 86400), rng.randrange(40),
                       ms=rng.choice((10_000, 29_999, 30_000, 95_000, 240_000)))
             for _ in range(1500)]
    # Either side of local midnight where months meet, where UTC would put them elsewhere.
    for day in (date(2024, 3, 1), date(2024, 4, 1), date(2024, 11, 1), date(2025, 1, 1)):
        midnight = local_midnight(day, tz)
        plays += [make_play(midnight - 60, 41), make_play(midnight, 42),
                  make_play(midnight + 60, 43, ms=20_000)]
    # A track known without an album counts for its artist, not for any album.
    bare = TrackIn("trackwithoutalbum00001", "Loose", (ArtistIn("artist00000000000000001",
                                                                "Artist 1"),), None, 200_000)
    plays += [PlayIn(_local(tz, 2024, 5, 10, 12) + i, bare, 100_000, "api") for i in range(3)]
    history.add_plays(conn, user_id, plays)


def _plain(conn: sqlite3.Connection, user_id: int, start: int, end: int
           ) -> dict[str, list[tuple[int, int, int]]]:
    rows = listening.per_track(conn, user_id, start, end)
    return {"track": sorted(listening.track_totals(rows)),
            "artist": sorted(listening.artist_totals(rows)),
            "album": sorted(listening.album_totals(rows))}


def _summed(conn: sqlite3.Connection) -> dict[str, list[tuple[int, int, int]]]:
    return {kind: sorted(tuple(r) for r in conn.execute(
        f"SELECT id, plays, ms FROM temp.period_{kind}s")) for kind in ("track", "artist", "album")}


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Pacific/Auckland"])
@pytest.mark.parametrize(("months_from", "by_month_below"),
                         [(0, 0.0), (0, 1.1), (10**9, 0.0)],
                         ids=["monthly rollups in key order", "monthly rollups by month",
                              "plays only"])
def test_a_period_sums_as_its_plays_do(conn: sqlite3.Connection, user_id: int, tz: str,
                                       months_from: int, by_month_below: float,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _history(conn, user_id, tz)
    monkeypatch.setattr(period_totals, "MONTHS_FROM_STREAMS", months_from)
    monkeypatch.setattr(period_totals, "BY_MONTH_BELOW", by_month_below)
    for first, last in RANGES:
        period_totals.fill(conn, user_id, tz, first, last)
        start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
        plain = _plain(conn, user_id, start, end)
        assert plain["track"], (first, last)
        assert _summed(conn) == plain, (first, last)
        found = period_totals.summed(conn, user_id, whole=False)
        for kind, rows in plain.items():
            assert found.counts[kind] == sum(1 for row in rows if row[1])
            for metric, ranked in found.tops[kind].items():
                expected = listening.ranked(rows, metric)
                assert [(r.id, r.plays, r.minutes) for r in ranked] == \
                    [(i, p, round(ms / 60000)) for i, p, ms in expected], (kind, metric)


def test_the_edges_of_a_month_are_local_days(conn: sqlite3.Connection, user_id: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    tz = "Europe/Berlin"
    conn.execute("UPDATE preferences SET timezone = ? WHERE user_id = ?", (tz, user_id))
    # 31 March 23:59 and 1 April 00:00 in Berlin are both 31 March in UTC.
    history.add_plays(conn, user_id, [
        make_play(_local(tz, 2024, 3, 31, 23, 59), 1),
        make_play(_local(tz, 2024, 4, 1, 0, 0), 1),
        make_play(_local(tz, 2024, 4, 30, 23, 59), 2, ms=20_000),
        make_play(_local(tz, 2024, 5, 1, 0, 0), 2)])
    monkeypatch.setattr(period_totals, "MONTHS_FROM_STREAMS", 0)
    period_totals.fill(conn, user_id, tz, date(2024, 4, 1), date(2024, 4, 30))
    assert _summed(conn)["track"] == [(1, 1, 180_000), (2, 0, 20_000)]
    period_totals.fill(conn, user_id, tz, date(2024, 3, 31), date(2024, 4, 30))
    assert _summed(conn)["track"] == [(1, 2, 360_000), (2, 0, 20_000)]


def test_whole_months() -> None:
    assert period_totals.whole_months(date(2024, 2, 10), date(2024, 4, 5)) == \
        (date(2024, 3, 1), date(2024, 4, 1))
    assert period_totals.whole_months(date(2024, 3, 1), date(2024, 3, 31)) == \
        (date(2024, 3, 1), date(2024, 4, 1))
    assert period_totals.whole_months(date(2023, 12, 1), date(2024, 12, 31)) == \
        (date(2023, 12, 1), date(2025, 1, 1))
    assert period_totals.whole_months(date(2024, 3, 2), date(2024, 4, 30)) == \
        (date(2024, 4, 1), date(2024, 5, 1))
    assert period_totals.whole_months(date(2024, 3, 2), date(2024, 3, 31)) is None
    assert period_totals.whole_months(date(2024, 3, 2), date(2024, 4, 29)) is None


def test_the_whole_history_sums_as_its_plays_do(conn: sqlite3.Connection, user_id: int
                                                ) -> None:
    _history(conn, user_id, "Europe/Berlin")
    plain = _plain(conn, user_id, 0, 2**40)
    assert sorted(tuple(r) for r in conn.execute(
        "SELECT album_id, plays, ms_played FROM user_albums WHERE user_id = ?",
        (user_id,))) == plain["album"]
    found = period_totals.summed(conn, user_id, whole=True)
    for kind, rows in plain.items():
        assert found.counts[kind] == sum(1 for row in rows if row[1])
        for metric, ranked in found.tops[kind].items():
            assert [r.id for r in ranked] == [row[0] for row in listening.ranked(rows, metric)]
