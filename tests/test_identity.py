"""A play's identity: record keys, matching across sources, and the migration to them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mtm import db, history, identity
from mtm.identity import Moment
from tests.conftest import make_play, make_track

BASE = 1_700_000_000


def test_names_are_matched_whatever_their_case_spacing_or_unicode_form() -> None:
    assert identity.match_key("Sigur Ro\u0301s", "  Hoppípolla ") == identity.match_key(
        "SIGUR RÓS", "hoppípolla")
    assert identity.match_key("A", "B C") != identity.match_key("A B", "C")


def test_keys_separate_what_differs_and_only_that() -> None:
    one = identity.extended_key(BASE, "spotify:track:x", "A", "T", 5000, "fwdbtn", "fwdbtn")
    assert one == identity.extended_key(BASE, "spotify:track:x", "A", "T", 5000, "fwdbtn",
                                        "fwdbtn")
    # Same second: another track, or the same track with another length, is another play.
    assert one != identity.extended_key(BASE, "spotify:track:y", "A", "T", 5000, "fwdbtn",
                                        "fwdbtn")
    assert one != identity.extended_key(BASE, "spotify:track:x", "A", "T", 5001, "fwdbtn",
                                        "fwdbtn")
    first = identity.account_key(BASE, "A", "T", 5000, 0)
    assert first != identity.account_key(BASE, "A", "T", 5000, 1)
    assert -(2**63) <= one < 2**63


@pytest.mark.parametrize(("a", "b", "same"), [
    # The API and an export a few seconds apart.
    (Moment("api", BASE, 200_000), Moment("export", BASE + 4, 199_000), True),
    (Moment("api", BASE, 200_000), Moment("export", BASE + 16, 199_000), False),
    # A skip is never the API's play: the API lists plays of 30 s or more.
    (Moment("api", BASE, 200_000), Moment("export", BASE + 2, 12_000), False),
    # Account data knows the minute: anywhere in it, with the same length.
    (Moment("account", BASE, 61_000), Moment("export", BASE + 59, 61_000), True),
    (Moment("account", BASE, 61_000), Moment("export", BASE + 59, 75_000), False),
    (Moment("account", BASE, 61_000), Moment("export", BASE + 90, 61_000), False),
    # Within one source only keys decide.
    (Moment("export", BASE, 61_000), Moment("export", BASE, 61_000), False),
])
def test_compatible(a: Moment, b: Moment, same: bool) -> None:
    assert identity.compatible(a, b) is same
    assert identity.compatible(b, a) is same


def test_assignment_is_one_to_one_and_prefers_agreeing_lengths() -> None:
    api = Moment("api", BASE, 180_000)
    exported = Moment("export", BASE + 30, 90_000)
    # Two account records in the minute of one stored API play and one stored export play.
    first, second = Moment("account", BASE, 90_000), Moment("account", BASE, 95_000)
    pairs = [("first", "api", first, api), ("first", "export", first, exported),
             ("second", "api", second, api), ("second", "export", second, exported)]
    assert identity.assign(pairs) == {"first": "export", "second": "api"}
    # One stored play is the twin of at most one new record.
    twins = identity.assign([("a", "api", first, api), ("b", "api", second, api)])
    assert len(twins) == 1


def test_the_same_second_holds_distinct_plays(conn: sqlite3.Connection, user_id: int) -> None:
    added = history.add_plays(conn, user_id, [make_play(BASE, 1), make_play(BASE, 2),
                                              make_play(BASE, 1)])
    assert added == 2
    assert history.add_plays(conn, user_id, [make_play(BASE, 2)]) == 0


def test_a_polled_play_and_its_exported_twin_are_stored_once(conn: sqlite3.Connection,
                                                             user_id: int) -> None:
    assert history.add_plays(conn, user_id, [make_play(BASE, 1, ms=200_000)]) == 1
    twin = history.PlayIn(BASE + 3, make_track(1), 199_500, "export", key=42)
    assert history.add_plays(conn, user_id, [twin]) == 0
    # A skip of the same track a second later is a stream of its own.
    skip = history.PlayIn(BASE + 4, make_track(1), 4_000, "export", key=43)
    assert history.add_plays(conn, user_id, [skip]) == 1
    rows = conn.execute("SELECT source, ms_played, counted FROM plays ORDER BY played_at")
    assert [tuple(r) for r in rows] == [("api", 200_000, 1), ("export", 4_000, 0)]
    totals = conn.execute("SELECT plays, ms_played FROM user_tracks").fetchone()
    assert tuple(totals) == (1, 204_000)


# --- the migration -------------------------------------------------------------------------


def _database_at(path: Path, version: int, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    conn = db.connect(path)
    every = db.migrations()
    monkeypatch.setattr(db, "migrations", lambda: [m for m in every if m[0] <= version])
    db.migrate(conn)
    monkeypatch.setattr(db, "migrations", lambda: every)
    return conn


def test_migration_keeps_every_polled_play_and_recognises_it_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = _database_at(tmp_path / "old.sqlite3", 5, monkeypatch)
    artist = make_track(1).artists[0].spotify_id
    conn.executescript(f"""
        INSERT INTO users (id, spotify_id, display_name, created_at) VALUES (1, 'u', 'U', 0);
        INSERT INTO preferences (user_id) VALUES (1);
        INSERT INTO artists (id, spotify_id, name) VALUES (1, '{artist}', 'Artist 0');
        INSERT INTO tracks (id, spotify_id, name, artist_id)
            VALUES (1, '{make_track(1).spotify_id}', 'Track 1', 1), (2, NULL, 'Local', 1);
        INSERT INTO plays VALUES (1, {BASE}, 1, 1, 200000, 'api', 'spotify:album:x', 0),
                                 (1, {BASE + 300}, 2, 1, 20000, 'api', NULL, 1),
                                 (1, {BASE + 600}, 1, 1, 200000, 'demo', NULL, NULL);
    """)
    before = [tuple(r) for r in conn.execute(
        "SELECT user_id, played_at, track_id, artist_id, ms_played, source, context_uri, skipped "
        "FROM plays ORDER BY played_at")]
    assert "plays" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    db.migrate(conn)
    after = [tuple(r) for r in conn.execute(
        "SELECT user_id, played_at, track_id, artist_id, ms_played, source, context_uri, skipped "
        "FROM plays ORDER BY played_at")]
    assert after == before
    keys = [r[0] for r in conn.execute("SELECT record_key FROM plays ORDER BY played_at")]
    assert keys == [identity.default_key("api", BASE, make_track(1).spotify_id, "Artist 0",
                                         "Track 1"),
                    identity.default_key("api", BASE + 300, None, "Artist 0", "Local"),
                    identity.default_key("demo", BASE + 600, make_track(1).spotify_id,
                                         "Artist 0", "Track 1")]
    assert conn.execute("SELECT match_key FROM tracks WHERE id = 2").fetchone()[0] == \
        identity.match_key("Artist 0", "Local")
    # Start-up rebuilds the rollups under the new rule: a 20 s stream is not a play.
    assert history.refresh_stale_rollups(conn) == [1]
    assert tuple(conn.execute("SELECT sum(plays), sum(ms_played) FROM listening_days")
                 .fetchone()) == (2, 420_000)
    # The play polled again after the upgrade is the same play.
    again = history.PlayIn(BASE, make_track(1), 200_000, "api")
    assert history.add_plays(conn, 1, [again]) == 0
    conn.close()
