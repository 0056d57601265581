"""The household page's figures against plain sums over the plays, and who may be seen."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mtm import hiding, history, household, preferences, users
from mtm.cache import Cache
from tests.conftest import make_track

# 20 March 2026, 12:00 UTC: the injected now. The plays span January to March 2026.
NOW = int(datetime(2026, 3, 20, 12, tzinfo=UTC).timestamp())
START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


def _listen(conn: sqlite3.Connection, user_id: int, seed: int, favourites: range,
            plays: int = 1500) -> None:
    """Plays of 120 artists (ten tracks each), skewed towards `favourites`, short ones too."""
    rng = random.Random(seed)
    batch, moments = [], rng.sample(range(START, NOW), plays)
    for moment in moments:
        artist = rng.choice(favourites) if rng.random() < 0.6 else rng.randrange(120)
        track = make_track(artist * 10 + rng.randrange(10), artist)
        ms = rng.choice((12_000, 95_000, 180_000, 240_000))
        batch.append(history.PlayIn(moment, track, ms, "api"))
    history.add_plays(conn, user_id, batch)


@pytest.fixture
def house(conn: sqlite3.Connection) -> dict[str, int]:
    """Ann (UTC), Ben (Auckland: his month starts 13 hours earlier) and Cat, all listening."""
    ids = {name: users.upsert_user(conn, name.lower(), name) for name in ("Ann", "Ben", "Cat")}
    preferences.save(conn, ids["Ben"], preferences.Preferences(timezone="Pacific/Auckland"))
    _listen(conn, ids["Ann"], 1, range(0, 40))
    _listen(conn, ids["Ben"], 2, range(20, 70))
    _listen(conn, ids["Cat"], 3, range(60, 120))
    return ids


def _month_bounds(month: str, timezone: str) -> tuple[int, int]:
    year, number = map(int, month.split("-"))
    zone = ZoneInfo(timezone)
    after = (year + number // 12, number % 12 + 1)
    return (int(datetime(year, number, 1, tzinfo=zone).timestamp()),
            int(datetime(*after, 1, tzinfo=zone).timestamp()))


def _plain(conn: sqlite3.Connection, user_id: int, month: str | None) -> dict[int, tuple]:
    """(plays, ms) per main artist, by a plain GROUP BY over the plays (hidden ones are gone)."""
    start, end = 0, 2**62
    if month is not None:
        start, end = _month_bounds(month, preferences.load(conn, user_id).timezone)
    return {artist: (plays, ms) for artist, plays, ms in conn.execute(
        "SELECT artist_id, sum(ms_played >= 30000), sum(ms_played) FROM plays "
        "WHERE user_id = ? AND played_at >= ? AND played_at < ? GROUP BY artist_id",
        (user_id, start, end))}


def _expected(a: dict[int, tuple], b: dict[int, tuple]) -> tuple[list[int], int]:
    """The shared artists of two top 50s, best rank sum first, and the compatibility."""
    def top(totals: dict[int, tuple]) -> list[int]:
        ranked = sorted((k for k, v in totals.items() if v[0] > 0),
                        key=lambda k: (-totals[k][0], -totals[k][1], k))
        return ranked[:household.TOP_LIST]

    mine, theirs = top(a), top(b)
    shared = sorted(set(mine) & set(theirs),
                    key=lambda k: (mine.index(k) + theirs.index(k), -(a[k][0] + b[k][0]), k))
    ta, tb = sum(v[1] for v in a.values()), sum(v[1] for v in b.values())
    common = sum(min(a[k][1] / ta, b[k][1] / tb) for k in a.keys() & b.keys())
    return shared, round(common * 100)


def _check(conn: sqlite3.Connection, overlap: household.Overlap, a: dict, b: dict) -> None:
    shared, compatibility = _expected(a, b)
    assert overlap.shared_count == len(shared)
    assert [s.id for s in overlap.shared] == shared[:household.SHOWN]
    for artist in overlap.shared:
        assert (artist.my_plays, artist.their_plays) == (a[artist.id][0], b[artist.id][0])
        assert artist.my_minutes == round(a[artist.id][1] / 60000)
        assert artist.their_minutes == round(b[artist.id][1] / 60000)
    assert overlap.compatibility == compatibility


def test_shared_artists_and_compatibility_match_plain_sums(conn: sqlite3.Connection,
                                                           house: dict[str, int]) -> None:
    ann, ben = house["Ann"], house["Ben"]
    # Hiding plays takes them out of the figures here too.
    hiding.add(conn, ben, hiding.RuleIn("artist", target_id=_artist_id(conn, 25)), NOW)
    this_month, all_time = household.compare(conn, ann, ben, "2026-03")
    _check(conn, all_time, _plain(conn, ann, None), _plain(conn, ben, None))
    _check(conn, this_month, _plain(conn, ann, "2026-03"), _plain(conn, ben, "2026-03"))
    # The two favour artists 20-39 both: they share some, but not everything.
    assert 0 < all_time.compatibility < 100 and all_time.shared_count > household.SHOWN
    assert _artist_id(conn, 25) not in {s.id for s in all_time.shared}
    assert this_month.i_listened and this_month.they_listened


def _artist_id(conn: sqlite3.Connection, n: int) -> int:
    return conn.execute("SELECT id FROM artists WHERE spotify_id = ?",
                        (f"artist{n:017d}",)).fetchone()[0]


def test_compatibility_bounds(conn: sqlite3.Connection, house: dict[str, int]) -> None:
    ann, cat = house["Ann"], house["Cat"]
    twin = users.upsert_user(conn, "twin", "Twin")
    conn.execute("INSERT INTO plays (user_id, played_at, record_key, track_id, artist_id, "
                 "ms_played, source) SELECT ?, played_at, record_key, track_id, artist_id, "
                 "ms_played, source FROM plays WHERE user_id = ?", (twin, ann))
    history.rebuild_rollups(conn, twin)
    # The same listening is 100% compatible; the figure is symmetric.
    assert household.compare(conn, ann, twin, "2026-03")[1].compatibility == 100
    assert household.compare(conn, ann, cat, "2026-03")[1].compatibility == \
        household.compare(conn, cat, ann, "2026-03")[1].compatibility


def test_no_plays_this_month(conn: sqlite3.Connection, house: dict[str, int]) -> None:
    this_month, all_time = household.compare(conn, house["Ann"], house["Ben"], "2026-04")
    assert (this_month.compatibility, this_month.shared, this_month.i_listened,
            this_month.they_listened) == (None, [], False, False)
    assert all_time.compatibility is not None
    newcomer = users.upsert_user(conn, "new", "New")
    this_month, all_time = household.compare(conn, house["Ann"], newcomer, "2026-03")
    assert this_month.i_listened and not this_month.they_listened
    assert all_time.compatibility is None and all_time.shared == []


def test_only_members_see_and_are_seen(conn: sqlite3.Connection, house: dict[str, int]) -> None:
    ann, ben, cat = house["Ann"], house["Ben"], house["Cat"]
    cache = Cache()
    # Off by default: Ann sees only the way in, and nothing of anyone.
    view = household.overview(conn, ann, now=NOW, cache=cache)
    assert (view.member, view.comparisons, view.others_here) == (False, [], True)
    assert household.join(conn, ann, NOW) and not household.join(conn, ann, NOW)
    view = household.overview(conn, ann, now=NOW, cache=cache)
    assert view.member and view.comparisons == [] and view.month == "2026-03"
    household.join(conn, ben, NOW)
    view = household.overview(conn, ann, now=NOW, cache=cache)
    assert [c.name for c in view.comparisons] == ["Ben"]
    # Cat never joined: she is in nobody's page, and hers shows no one.
    assert household.overview(conn, cat, now=NOW).comparisons == []
    # Leaving hides Ben at once, even from a page computed (and cached) before.
    assert household.leave(conn, ben) and not household.leave(conn, ben)
    assert household.overview(conn, ann, now=NOW, cache=cache).comparisons == []
    assert household.overview(conn, ben, now=NOW, cache=cache).member is False


def test_new_plays_of_a_member_reach_a_cached_page(conn: sqlite3.Connection,
                                                   house: dict[str, int]) -> None:
    ann, ben = house["Ann"], house["Ben"]
    for user_id in (ann, ben):
        household.join(conn, user_id, NOW)
    cache = Cache()
    before = household.overview(conn, ann, now=NOW, cache=cache).comparisons[0]
    history.add_plays(conn, ben, [history.PlayIn(NOW - 60 * i, make_track(5, 0), 200_000, "api")
                                  for i in range(1, 400)])
    after = household.overview(conn, ann, now=NOW, cache=cache).comparisons[0]
    assert after.all_time != before.all_time
    _check(conn, after.all_time, _plain(conn, ann, None), _plain(conn, ben, None))


def test_the_month_is_the_viewers(conn: sqlite3.Connection, house: dict[str, int]) -> None:
    ben = house["Ben"]
    household.join(conn, ben, NOW)
    # 31 March, 12:00 UTC is already 1 April in Auckland.
    late = int(datetime(2026, 3, 31, 12, tzinfo=UTC).timestamp())
    view = household.overview(conn, ben, now=late)
    assert (view.month, view.month_label) == ("2026-04", "April 2026")


def test_alone_on_the_instance(tmp_path) -> None:
    from mtm import db

    conn = db.connect(tmp_path / "alone.sqlite3")
    db.migrate(conn)
    only = users.upsert_user(conn, "only", "Only")
    household.join(conn, only, NOW)
    view = household.overview(conn, only, now=NOW)
    assert view.member and not view.others_here and view.comparisons == []
    conn.close()
