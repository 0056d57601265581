"""Preferences: validation of every field, storage, and rollups that follow the time zone."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from mtm import history, preferences
from mtm.preferences import Preferences
from tests.conftest import make_play

VALID = {"timezone": "Europe/Stockholm", "week_start": "6", "chart_metric": "minutes",
         "playlist_source": "forgotten_gems"}


def test_a_valid_form() -> None:
    prefs, errors = preferences.parse_form(VALID)
    assert errors == {}
    assert prefs == Preferences("Europe/Stockholm", 6, "minutes", "forgotten_gems")


@pytest.mark.parametrize("typed,stored", [("europe/stockholm", "Europe/Stockholm"),
                                          ("  Asia/Tokyo ", "Asia/Tokyo"), ("utc", "UTC"),
                                          ("AMERICA/ARGENTINA/BUENOS_AIRES",
                                           "America/Argentina/Buenos_Aires")])
def test_time_zone_names_are_normalised(typed: str, stored: str) -> None:
    prefs, errors = preferences.parse_form({**VALID, "timezone": typed})
    assert errors == {} and prefs.timezone == stored


@pytest.mark.parametrize("field,value", [
    ("timezone", "Mars/Olympus_Mons"), ("timezone", ""), ("timezone", "   "),
    ("timezone", "localtime"), ("timezone", "Europe/Stockholm" + "x" * 500),
    ("timezone", "../../etc/passwd"),
    ("week_start", "1"), ("week_start", ""), ("week_start", "monday"), ("week_start", "06"),
    ("chart_metric", "hours"), ("chart_metric", ""),
    ("playlist_source", "everything"), ("playlist_source", ""),
])
def test_each_invalid_field_gets_its_own_error(field: str, value: str) -> None:
    prefs, errors = preferences.parse_form({**VALID, field: value})
    assert prefs is None
    assert list(errors) == [field]
    assert errors[field]


def test_all_errors_at_once() -> None:
    prefs, errors = preferences.parse_form({})
    assert prefs is None
    assert set(errors) == {"timezone", "week_start", "chart_metric", "playlist_source"}


def test_zone_list_is_real_places() -> None:
    zones = preferences.timezones()
    assert "Europe/Stockholm" in zones and "UTC" in zones
    assert "localtime" not in zones and "Factory" not in zones
    suggested = preferences.suggested_timezones()
    assert "America/New_York" in suggested and "UTC" in suggested
    assert "US/Eastern" not in suggested and "Etc/GMT+5" not in suggested
    # Legacy names are still accepted when typed.
    assert preferences.normalize_timezone("US/Eastern") == "US/Eastern"


def test_playlist_sources_are_the_five_known_ones() -> None:
    assert [k for k, _ in preferences.playlist_sources()] == [
        "forgotten_gems", "recent_discoveries", "current_rotation", "on_this_day",
        "year_in_review"]


def test_defaults_then_saved_values(conn: sqlite3.Connection, user_id: int) -> None:
    assert preferences.load(conn, user_id) == Preferences()
    prefs = Preferences("Asia/Tokyo", 6, "minutes", "year_in_review")
    assert preferences.save(conn, user_id, prefs) is True
    assert preferences.load(conn, user_id) == prefs
    # Saving the same zone again is not a change.
    assert preferences.save(conn, user_id, Preferences("Asia/Tokyo", 0, "plays",
                                                       "on_this_day")) is False
    assert preferences.load(conn, user_id).week_start == 0


def _days(conn: sqlite3.Connection, user_id: int) -> dict[str, int]:
    return dict(conn.execute("SELECT day, plays FROM listening_days WHERE user_id = ?",
                             (user_id,)).fetchall())


def _hours(conn: sqlite3.Connection, user_id: int) -> dict[tuple[str, int], int]:
    return {(d, h): n for d, h, n in conn.execute(
        "SELECT day, hour, plays FROM listening_hours WHERE user_id = ?", (user_id,))}


def test_a_new_time_zone_moves_days_and_hours(conn: sqlite3.Connection, user_id: int) -> None:
    late = int(datetime(2026, 3, 6, 23, 30, tzinfo=UTC).timestamp())
    history.add_plays(conn, user_id, [make_play(late, 1), make_play(late - 7200, 2)])
    assert _days(conn, user_id) == {"2026-03-06": 2}
    version = history.history_version(conn, user_id)

    preferences.save(conn, user_id, Preferences("Asia/Tokyo", 0, "plays", "current_rotation"))
    # 23:30 UTC is 08:30 the next morning in Tokyo; 21:30 UTC is 06:30.
    assert _days(conn, user_id) == {"2026-03-07": 2}
    assert _hours(conn, user_id) == {("2026-03-07", 8): 1, ("2026-03-07", 6): 1}
    assert history.history_version(conn, user_id) > version

    preferences.save(conn, user_id, Preferences("America/Los_Angeles", 0, "plays",
                                                "current_rotation"))
    assert _days(conn, user_id) == {"2026-03-06": 2}
    assert _hours(conn, user_id) == {("2026-03-06", 15): 1, ("2026-03-06", 13): 1}


def test_other_preferences_do_not_rebuild(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(1_700_000_000)])
    version = history.history_version(conn, user_id)
    preferences.save(conn, user_id, Preferences("UTC", 6, "minutes", "on_this_day"))
    assert history.history_version(conn, user_id) == version
