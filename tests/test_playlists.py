"""Playlist sources on fixed histories, choice checking, and how a playlist is shown."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mtm import history, playlists, users
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from mtm.playlists import Choice
from tests.conftest import make_play, make_track

# Sunday 22 November 2026, 12:00 UTC: every query below is asked "now" = this moment.
NOW = int(datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp())
DAY = 86400


def at(*parts: int, zone: str = "UTC") -> int:
    """Unix seconds of a wall-clock time in `zone`."""
    return int(datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp())


def no_id_track(n: int) -> TrackIn:
    """A track known only by name (as the account-data export gives them): cannot be added."""
    return TrackIn(None, f"Unlinked {n}", (ArtistIn(None, "Someone"),), AlbumIn(None, "Tape"))


def set_timezone(conn: sqlite3.Connection, user_id: int, zone: str) -> None:
    conn.execute("UPDATE preferences SET timezone = ? WHERE user_id = ?", (zone, user_id))


def track_id(conn: sqlite3.Connection, n: int) -> int:
    return conn.execute("SELECT id FROM tracks WHERE spotify_id = ?",
                        (make_track(n).spotify_id,)).fetchone()[0]


def numbers(conn: sqlite3.Connection, found: list[playlists.Candidate]) -> list[int]:
    """The make_track numbers of candidates, in order."""
    return [int(c.spotify_id.removeprefix("track")) for c in found]


def plays_of(n: int, *times: int) -> list[PlayIn]:
    return [make_play(ts, n) for ts in times]


@pytest.fixture
def other_user(conn: sqlite3.Connection) -> int:
    """A second listener whose plays must never show up in the first one's playlists."""
    return users.upsert_user(conn, "listener-2", "Listener Two")


# --- sources -------------------------------------------------------------------------------


def test_forgotten_gems(conn: sqlite3.Connection, user_id: int, other_user: int) -> None:
    long_ago = at(2025, 3, 1, 18)
    history.add_plays(conn, user_id, [
        *plays_of(1, *(long_ago + i * DAY for i in range(5))),          # 5 plays, then silence
        *plays_of(2, *(long_ago + 200 + i * DAY for i in range(10)), NOW - 60 * DAY),  # lately
        *plays_of(3, long_ago + 100, long_ago + DAY + 100),           # only twice: not "often"
        *plays_of(4, *(long_ago + 3000 + i * 3600 for i in range(3))),
        # The cutoff is local midnight six calendar months back (22 May 2026): one play just
        # before it keeps track 5 a gem, one just after it makes track 8 not one.
        *plays_of(5, *(long_ago + 300 + i * 60 for i in range(7)), at(2026, 5, 21, 23, 59)),
        *plays_of(8, *(long_ago + 7200 + i * 60 for i in range(9)), at(2026, 5, 22, 0, 1)),
        *(PlayIn(long_ago + 50_000 + i, no_id_track(1), 180_000, "export") for i in range(9)),
    ])
    history.add_plays(conn, other_user, plays_of(6, *(long_ago + i for i in range(20))))

    found = playlists.forgotten_gems(conn, user_id, now=NOW)
    assert numbers(conn, found) == [5, 1, 4]
    assert [c.plays for c in found] == [8, 5, 3]
    assert found[1].detail == "5 plays, last in Mar 2025"
    assert found[0].uri == f"spotify:track:{make_track(5).spotify_id}"
    assert numbers(conn, playlists.forgotten_gems(conn, user_id, now=NOW, limit=2)) == [5, 1]
    assert playlists.forgotten_gems(conn, other_user, now=NOW)[0].plays == 20


def test_recent_discoveries(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [
        *plays_of(10, NOW - 10 * DAY, NOW - 9 * DAY, NOW - DAY),
        *plays_of(11, NOW - 40 * DAY, NOW - DAY),       # an old friend played again
        *plays_of(12, NOW - 29 * DAY),
        *plays_of(13, NOW - 31 * DAY),
        *plays_of(14, NOW - 3 * DAY),
        PlayIn(NOW - 5 * DAY, no_id_track(2), 180_000, "export"),
        *plays_of(15, NOW + 3600),                       # after "now": not discovered yet
    ])
    found = playlists.recent_discoveries(conn, user_id, now=NOW)
    # Most played first; equal counts: the newer discovery first.
    assert numbers(conn, found) == [10, 14, 12]
    assert found[0].detail == "3 plays since 12 Nov" and found[2].detail == "1 play since 24 Oct"


def test_current_rotation(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [
        *plays_of(20, *(NOW - i * DAY for i in range(1, 5))),
        *plays_of(21, *(NOW - 35 * DAY - i * 60 for i in range(4)),
                  NOW - 2 * DAY - 9, NOW - 3 * DAY - 9),
        *plays_of(22, NOW - 7 * DAY - 5, NOW - 8 * DAY - 5, NOW - 27 * DAY),
        *plays_of(23, NOW - 29 * DAY),
        *plays_of(24, NOW + 3600, NOW + 7200, NOW + 9000),
        *(PlayIn(NOW - i * 600, no_id_track(3), 180_000, "export") for i in range(1, 9)),
    ])
    found = playlists.current_rotation(conn, user_id, now=NOW)
    assert numbers(conn, found) == [20, 22, 21]
    # Only the plays inside the four weeks count.
    assert [c.plays for c in found] == [4, 3, 2]
    assert found[0].detail == "4 plays in the last 4 weeks"


def test_on_this_day_uses_the_local_date(conn: sqlite3.Connection, user_id: int) -> None:
    zone = "America/New_York"
    set_timezone(conn, user_id, zone)
    # NOW is 07:00 on 22 November in New York.
    history.add_plays(conn, user_id, [
        make_play(at(2024, 11, 22, 20, zone=zone), 30),   # 23 Nov in UTC, 22 Nov at home
        make_play(at(2024, 11, 22, 3), 31),                # 22 Nov in UTC, 21 Nov at home
        make_play(at(2023, 11, 22, 12, zone=zone), 32),
        make_play(at(2025, 11, 22, 12, zone=zone), 32),
        make_play(at(2026, 11, 22, 1, zone=zone), 33),     # today: not an earlier year
        make_play(at(2025, 11, 23, 12, zone=zone), 34),
        PlayIn(at(2025, 11, 22, 9, zone=zone), no_id_track(4), 180_000, "export"),
    ])
    found = playlists.on_this_day(conn, user_id, now=NOW)
    assert numbers(conn, found) == [32, 30]
    assert found[0].detail == "2 plays on 22 Nov in 2023, 2025"
    assert found[1].detail == "1 play on 22 Nov in 2024"


def test_on_this_day_on_29_february(conn: sqlite3.Connection, user_id: int) -> None:
    leap_day = at(2028, 2, 29, 12)
    history.add_plays(conn, user_id, [make_play(at(2024, 2, 29, 10), 1),
                                      make_play(at(2025, 2, 28, 10), 2),
                                      make_play(at(2025, 3, 1, 10), 3)])
    assert numbers(conn, playlists.on_this_day(conn, user_id, now=leap_day)) == [1]
    assert playlists.on_this_day(conn, user_id, now=at(2024, 2, 29, 23)) == []


def test_year_in_review_uses_local_years(conn: sqlite3.Connection, user_id: int) -> None:
    zone = "America/New_York"
    set_timezone(conn, user_id, zone)
    history.add_plays(conn, user_id, [
        *plays_of(40, at(2025, 3, 1), at(2025, 6, 1), at(2025, 9, 1)),
        make_play(at(2025, 1, 1, 2), 41),       # 31 Dec 2024 in New York
        make_play(at(2026, 1, 1, 3), 42),       # 31 Dec 2025 in New York
        *plays_of(43, at(2025, 4, 1), at(2025, 5, 1)),
        make_play(at(2026, 5, 1), 44),
    ])
    found = playlists.year_in_review(conn, user_id, 2025)
    assert numbers(conn, found) == [40, 43, 42]
    assert found[0].detail == "3 plays in 2025"
    assert numbers(conn, playlists.year_in_review(conn, user_id, 2024)) == [41]
    assert playlists.year_in_review(conn, user_id, 2019) == []
    assert playlists.years_with_plays(conn, user_id) == [2026, 2025, 2024]


def test_limits_and_no_duplicates(conn: sqlite3.Connection, user_id: int) -> None:
    # 250 tracks, each played several times in the last four weeks and in 2026.
    history.add_plays(conn, user_id, [make_play(NOW - DAY - n * 600 - k * 60, n)
                                      for n in range(250) for k in range(1 + n % 3)])
    for source in ("current_rotation", "recent_discoveries"):
        default = playlists.candidates(conn, user_id, source, now=NOW)
        assert len(default) == playlists.DEFAULT_COUNT
        most = playlists.candidates(conn, user_id, source, limit=200, now=NOW)
        assert len(most) == 200
        assert len({c.track_id for c in most}) == 200
    most = playlists.candidates(conn, user_id, "year_in_review", year=2026, limit=200)
    assert len(most) == len({c.spotify_id for c in most}) == 200
    for bad in (0, 201):
        with pytest.raises(ValueError):
            playlists.candidates(conn, user_id, "current_rotation", limit=bad, now=NOW)
    with pytest.raises(ValueError):
        playlists.candidates(conn, user_id, "top_secret", now=NOW)


def test_no_source_offers_a_track_the_user_never_played(conn: sqlite3.Connection, user_id: int,
                                                        other_user: int) -> None:
    history.add_plays(conn, other_user, [
        *plays_of(50, *(at(2024, 11, 22, 10) + i for i in range(5))),
        *plays_of(51, NOW - DAY, NOW - 2 * DAY)])
    history.add_plays(conn, user_id, [make_play(NOW - DAY, 52)])
    for source in playlists.SOURCES:
        found = playlists.candidates(conn, user_id, source, year=2026, now=NOW)
        assert set(numbers(conn, found)) <= {52}, source


def test_a_new_listener_gets_nothing(conn: sqlite3.Connection, user_id: int) -> None:
    for source in playlists.SOURCES:
        assert playlists.candidates(conn, user_id, source, year=2026, now=NOW) == []
    assert playlists.years_with_plays(conn, user_id) == []


# --- choosing --------------------------------------------------------------------------------


def test_parse_choice_accepts_a_good_form() -> None:
    choice, values, errors = playlists.parse_choice(
        {"source": "year_in_review", "year": "2025", "count": "120", "name": "  Best of  "},
        [2026, 2025])
    assert errors == {}
    assert choice == Choice("year_in_review", 2025, 120, "Best of")
    assert values["name"] == "Best of"
    # The year is ignored for sources that do not use it; an empty count means the default.
    choice, _, errors = playlists.parse_choice({"source": "on_this_day", "year": "nope",
                                                "count": ""}, [2026])
    assert errors == {} and choice == Choice("on_this_day", None, 50, "")


@pytest.mark.parametrize("form,field", [
    ({"source": "bogus"}, "source"),
    ({}, "source"),
    ({"source": "year_in_review"}, "year"),
    ({"source": "year_in_review", "year": "1999"}, "year"),
    ({"source": "year_in_review", "year": "20x5"}, "year"),
    ({"source": "current_rotation", "count": "0"}, "count"),
    ({"source": "current_rotation", "count": "201"}, "count"),
    ({"source": "current_rotation", "count": "1e2"}, "count"),
    ({"source": "current_rotation", "count": "-5"}, "count"),
    ({"source": "current_rotation", "name": "x" * 101}, "name"),
    ({"source": "current_rotation", "name": "two\nlines"}, "name"),
])
def test_parse_choice_refuses_bad_input(form: dict[str, str], field: str) -> None:
    choice, values, errors = playlists.parse_choice(form, [2026, 2025])
    assert choice is None
    assert list(errors) == [field]
    assert values["source"] == form.get("source", "")


def test_parse_choice_allows_a_100_character_name() -> None:
    choice, _, errors = playlists.parse_choice({"source": "forgotten_gems", "name": "é" * 100},
                                               [])
    assert errors == {} and choice is not None and len(choice.name) == 100


def test_year_in_review_without_any_plays_is_left_to_the_empty_preview() -> None:
    choice, _, errors = playlists.parse_choice({"source": "year_in_review"}, [])
    assert errors == {} and choice == Choice("year_in_review", None)


def test_default_names() -> None:
    today = date(2026, 11, 22)
    assert playlists.default_name("forgotten_gems", today) == "Forgotten Gems - November 2026"
    assert playlists.default_name("recent_discoveries", today) == \
        "Recent Discoveries - November 2026"
    assert playlists.default_name("current_rotation", today) == "Current Rotation - November 2026"
    assert playlists.default_name("on_this_day", today) == "On This Day - 22 November"
    assert playlists.default_name("year_in_review", today, 2024) == "Year in Review - 2024"


def test_preview_names_the_playlist_in_the_users_zone(conn: sqlite3.Connection,
                                                      user_id: int) -> None:
    set_timezone(conn, user_id, "Pacific/Kiritimati")  # UTC+14: already 1 December there
    history.add_plays(conn, user_id, [make_play(NOW - DAY, 1)])
    late = at(2026, 11, 30, 12)
    shown = playlists.preview(conn, user_id, Choice("current_rotation"), now=late)
    assert shown.name == "Current Rotation - December 2026"
    assert [c.spotify_id for c in shown.tracks] == [make_track(1).spotify_id]
    named = playlists.preview(conn, user_id, Choice("current_rotation", name="Mine"), now=late)
    assert named.name == "Mine"


def test_initial_choice_follows_the_preference(conn: sqlite3.Connection, user_id: int) -> None:
    assert playlists.initial_choice(conn, user_id) == Choice("current_rotation")
    conn.execute("UPDATE preferences SET playlist_source = 'forgotten_gems' WHERE user_id = ?",
                 (user_id,))
    assert playlists.initial_choice(conn, user_id).source == "forgotten_gems"
    conn.execute("UPDATE preferences SET playlist_source = 'retired_source' WHERE user_id = ?",
                 (user_id,))
    assert playlists.initial_choice(conn, user_id).source == "current_rotation"
    history.add_plays(conn, user_id, [make_play(at(2024, 5, 1), 1), make_play(at(2025, 5, 1), 2)])
    assert playlists.initial_choice(conn, user_id, "year_in_review") == \
        Choice("year_in_review", 2025)


def test_valid_key() -> None:
    assert playlists.valid_key("0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2b")
    for bad in ("", None, "0B7F6B1E-6A55-4C1B-9D55-1F1B7C0F1A2B", "abc", "x" * 36):
        assert not playlists.valid_key(bad)


def test_source_labels() -> None:
    made = playlists.Playlist(1, "x", "year_in_review", 2024, "s", None, 1, 1, None, NOW,
                              date(2026, 11, 22), False)
    assert made.source_label == "Year in Review 2024"
    assert list(playlists.SOURCES) == ["forgotten_gems", "recent_discoveries",
                                       "current_rotation", "on_this_day", "year_in_review"]


def test_preview_answers_from_the_cache_until_a_play_changes(
        conn: sqlite3.Connection, user_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from mtm.cache import Cache

    history.add_plays(conn, user_id, [make_play(NOW - DAY, 1)])
    cache = Cache()
    computed = []
    real = playlists.candidates
    monkeypatch.setattr(playlists, "candidates",
                        lambda *a, **k: computed.append(a) or real(*a, **k))
    choice = Choice("current_rotation")
    first = playlists.preview(conn, user_id, choice, now=NOW, cache=cache)
    again = playlists.preview(conn, user_id, choice, now=NOW + 30, cache=cache)
    assert again.tracks == first.tracks and len(computed) == 1
    # Another count is its own entry.
    playlists.preview(conn, user_id, Choice("current_rotation", count=10), now=NOW, cache=cache)
    assert len(computed) == 2
    # A new play is shown at once, cache or not.
    history.add_plays(conn, user_id, [make_play(NOW - DAY + 600, 2)])
    fresh = playlists.preview(conn, user_id, choice, now=NOW + 30, cache=cache)
    assert len(computed) == 3
    assert {c.spotify_id for c in fresh.tracks} == {make_track(1).spotify_id,
                                                     make_track(2).spotify_id}
    # The window's edge moves with the clock: a minute on, it is worked out again.
    playlists.preview(conn, user_id, choice, now=NOW + 90, cache=cache)
    assert len(computed) == 4
