"""The demo account and its generated listening history."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import dashboard, db, demo, history
from mtm.spotify.catalogue import catalogue_artists
from mtm.spotify.emulator import Emulator
from tests.conftest import Clock

END = 1_780_000_000
YEAR = int(365.25 * 86_400)
# Just after midnight on the first of a month (UTC, the demo account's zone).
NEW_MONTH = int(datetime(2026, 12, 1, 0, 6, tzinfo=UTC).timestamp())


def _open(path: Path) -> sqlite3.Connection:
    conn = db.connect(path)
    db.migrate(conn)
    return conn


def _plays(conn: sqlite3.Connection, user_id: int) -> list[tuple]:
    return [tuple(row) for row in conn.execute(
        """SELECT played_at, t.spotify_id, ms_played, source, context_uri, skipped
           FROM plays p JOIN tracks t ON t.id = p.track_id
           WHERE user_id = ? ORDER BY played_at""", (user_id,))]


def _count(conn: sqlite3.Connection, user_id: int) -> int:
    return conn.execute("SELECT count(*) FROM plays WHERE user_id = ?", (user_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[sqlite3.Connection, int]:
    """One 20k-play, two-year history shared by the read-only checks."""
    conn = _open(tmp_path_factory.mktemp("demo") / "t.sqlite3")
    user_id = demo.ensure_demo_user(conn)
    assert demo.generate_history(conn, user_id, plays=20_000, years=2, end=END) == 20_000
    yield conn, user_id
    conn.close()


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    connection = _open(tmp_path / "t.sqlite3")
    yield connection
    connection.close()


def test_demo_user_is_created_once(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    assert demo.ensure_demo_user(conn) == user_id
    row = conn.execute("SELECT spotify_id, display_name, created_at FROM users").fetchall()
    assert [tuple(r[:2]) for r in row] == [("demo", "Demo Listener")]
    assert row[0]["created_at"] > 1_700_000_000


def test_same_seed_same_history_other_seed_other_history(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    demo.generate_history(conn, user_id, plays=5_000, years=1, seed=7, end=END)
    first = _plays(conn, user_id)
    demo.generate_history(conn, user_id, plays=5_000, years=1, seed=7, end=END)
    assert _plays(conn, user_id) == first
    demo.generate_history(conn, user_id, plays=5_000, years=1, seed=8, end=END)
    other = _plays(conn, user_id)
    assert len(other) == len(first)
    assert other != first
    assert len({p[0] for p in other} & {p[0] for p in first}) < len(first) // 10


def test_history_does_not_depend_on_string_hashing() -> None:
    # Set iteration order changes with PYTHONHASHSEED; the history must not.
    script = (
        "import hashlib\n"
        "from mtm import demo\n"
        "from mtm.spotify.listener import listener\n"
        f"end = {END}\n"
        "g = listener(2026).history(2000, end - int(demo.YEAR), end, 3)\n"
        "rows = list(zip(g.ended_ms, g.track, g.ms_played, g.skipped, g.context, g.kind))\n"
        "print(hashlib.sha256(repr(rows).encode()).hexdigest())\n")
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, check=True)
        digests.add(result.stdout.strip())
    assert len(digests) == 1


def test_exact_count_span_and_distinct_seconds(demo_db: tuple) -> None:
    conn, user_id = demo_db
    count, distinct, first, last = conn.execute(
        """SELECT count(*), count(DISTINCT played_at), min(played_at), max(played_at)
           FROM plays WHERE user_id = ?""", (user_id,)).fetchone()
    assert count == distinct == 20_000
    assert END - 2 * YEAR <= first < END - 2 * YEAR + 30 * 86_400
    assert END - 30 * 86_400 < last <= END
    sources = conn.execute("SELECT DISTINCT source FROM plays").fetchall()
    assert [s[0] for s in sources] == ["demo"]


def test_rollups_match_plays(demo_db: tuple) -> None:
    conn, user_id = demo_db
    # Rollups count streams of 30 s or more as plays and keep every stream's minutes.
    plays, ms = conn.execute("SELECT sum(counted), sum(ms_played) FROM plays WHERE user_id = ?",
                             (user_id,)).fetchone()
    for table in ("user_tracks", "user_artists", "listening_days"):
        totals = conn.execute(f"SELECT sum(plays), sum(ms_played) FROM {table} WHERE user_id = ?",
                              (user_id,)).fetchone()
        assert tuple(totals) == (plays, ms), table
    mismatched = conn.execute(
        """SELECT count(*) FROM user_artists ua JOIN (
               SELECT artist_id, sum(counted) n, min(played_at) f, max(played_at) l FROM plays
               WHERE user_id = ? GROUP BY artist_id) p ON p.artist_id = ua.artist_id
           WHERE ua.user_id = ? AND (ua.plays != p.n OR ua.first_played != p.f
                                     OR ua.last_played != p.l)""",
        (user_id, user_id)).fetchone()[0]
    assert mismatched == 0


def test_skips_are_short_and_about_one_in_eight(demo_db: tuple) -> None:
    conn, user_id = demo_db
    rate, short = conn.execute(
        """SELECT avg(skipped), avg(ms_played < 60000) FILTER (WHERE skipped)
           FROM plays WHERE user_id = ?""", (user_id,)).fetchone()
    assert 0.08 < rate < 0.17
    # Most skips come within seconds; now and then the listener moves on late in a track.
    assert short > 0.95


def test_daily_and_weekly_rhythm(demo_db: tuple) -> None:
    conn, user_id = demo_db
    hours = Counter(dict(conn.execute(
        "SELECT played_at / 3600 % 24, count(*) FROM plays WHERE user_id = ? GROUP BY 1",
        (user_id,)).fetchall()))
    evening = sum(hours[h] for h in range(18, 24))
    small_hours = sum(hours[h] for h in range(2, 6))
    assert evening > 5 * small_hours
    # 1970-01-01 was a Thursday, so (day + 3) % 7 counts from Monday.
    weekdays = Counter(dict(conn.execute(
        "SELECT (played_at / 86400 + 3) % 7, count(*) FROM plays WHERE user_id = ? GROUP BY 1",
        (user_id,)).fetchall()))
    assert (weekdays[5] + weekdays[6]) / 2 > sum(weekdays[d] for d in range(4)) / 4


def test_some_days_have_no_music(demo_db: tuple) -> None:
    conn, user_id = demo_db
    listened = conn.execute("SELECT count(*) FROM listening_days WHERE user_id = ?",
                            (user_id,)).fetchone()[0]
    assert 0.6 * 2 * 365 < listened < 0.97 * 2 * 365


def test_plays_come_in_sessions(demo_db: tuple) -> None:
    conn, user_id = demo_db
    rows = conn.execute("SELECT played_at, ms_played FROM plays WHERE user_id = ?"
                        " ORDER BY played_at", (user_id,)).fetchall()
    back_to_back = 0
    for (before, _), (after, ms) in zip(rows, rows[1:], strict=False):
        # A play cannot end sooner after the previous one than it lasted.
        assert after - before >= ms // 1000 - 1
        back_to_back += after - before <= ms / 1000 + 3
    assert back_to_back > 0.8 * len(rows)


def test_new_artists_keep_appearing(demo_db: tuple) -> None:
    conn, user_id = demo_db
    firsts = [r[0] for r in conn.execute(
        "SELECT first_played FROM user_artists WHERE user_id = ?", (user_id,))]
    quarters = Counter((END - first) // (YEAR // 4) for first in firsts)
    # Every quarter, the recent ones included, brings artists never heard before.
    assert all(quarters[q] > 0 for q in range(8)), quarters
    assert sum(first >= END - 90 * 86_400 for first in firsts) > 0


def test_taste_drifts(demo_db: tuple) -> None:
    conn, user_id = demo_db

    def top(since: int, until: int) -> list[int]:
        return [r[0] for r in conn.execute(
            """SELECT artist_id FROM plays WHERE user_id = ? AND played_at BETWEEN ? AND ?
               GROUP BY artist_id ORDER BY count(*) DESC LIMIT 10""", (user_id, since, until))]

    first_year, last_year = top(END - 2 * YEAR, END - YEAR), top(END - YEAR, END)
    assert len(set(first_year) & set(last_year)) < 8
    share = conn.execute(
        """SELECT max(plays) * 1.0 / sum(plays), count(*) FROM user_artists
           WHERE user_id = ?""", (user_id,)).fetchone()
    # A few favourites dominate a long tail.
    assert 0.03 < share[0] < 0.3
    assert share[1] > 100


def test_regenerating_replaces_the_history(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    demo.generate_history(conn, user_id, plays=6_000, years=1, end=END)
    assert demo.generate_history(conn, user_id, plays=2_500, years=0.5, seed=2, end=END) == 2_500
    assert _count(conn, user_id) == 2_500
    counted = conn.execute("SELECT sum(counted) FROM plays WHERE user_id = ?",
                           (user_id,)).fetchone()[0]
    assert 2_000 < counted < 2_500
    for table in ("user_tracks", "user_artists", "listening_days"):
        total = conn.execute(f"SELECT sum(plays) FROM {table} WHERE user_id = ?",
                             (user_id,)).fetchone()[0]
        assert total == counted, table
    assert demo.generate_history(conn, user_id, plays=0, years=1, end=END) == 0
    assert _count(conn, user_id) == 0


def test_more_music_than_time_is_refused(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    # 2,000 plays of about four minutes do not fit into a day without overlapping.
    with pytest.raises(ValueError):
        demo.generate_history(conn, user_id, plays=2_000, years=86_400 / demo.YEAR, end=END)
    with pytest.raises(ValueError):
        demo.generate_history(conn, user_id, plays=100, years=10 / demo.YEAR, end=END)
    # A day holds what its last hours of live stream hold, and a little more.
    assert demo.generate_history(conn, user_id, plays=150, years=86_400 / demo.YEAR,
                                 end=END) == 150
    first, last = conn.execute("SELECT min(played_at), max(played_at) FROM plays").fetchone()
    assert first >= END - 86_400 and END - 300 < last <= END


def test_ensure_demo_history_generates_only_once(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn, clock=Clock(END))
    assert demo.ensure_demo_history(conn, user_id, clock=Clock(END)) is True
    assert _count(conn, user_id) == 60_000
    newest = conn.execute("SELECT max(played_at) FROM plays").fetchone()[0]
    # The history ends now: the listener was playing a moment ago.
    assert END - 300 < newest <= END
    assert demo.ensure_demo_history(conn, user_id, clock=Clock(END + 86_400)) is False
    assert _count(conn, user_id) == 60_000


def test_ensure_demo_history_keeps_real_plays(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    track = history.TrackIn("t1", "Song", (history.ArtistIn("a1", "Someone"),),
                            duration_ms=200_000)
    history.add_plays(conn, user_id, [history.PlayIn(END, track, 200_000, "api")])
    assert demo.ensure_demo_history(conn, user_id, plays=1_000, years=1) is False
    assert _count(conn, user_id) == 1


def _stream_plays(conn: sqlite3.Connection, user_id: int) -> list[tuple[int, str, int]]:
    """(second, track name, ms) of the stored plays: local files have names only."""
    return [tuple(r) for r in conn.execute(
        """SELECT played_at, t.name, ms_played FROM plays p JOIN tracks t
           ON t.id = p.track_id WHERE user_id = ? ORDER BY played_at""", (user_id,))]


@pytest.mark.parametrize("now", [NEW_MONTH, NEW_MONTH - 6 * 60, END])
def test_history_ends_now_by_the_injected_clock(conn: sqlite3.Connection, now: int) -> None:
    user_id = demo.ensure_demo_user(conn)
    assert demo.generate_history(conn, user_id, plays=3_000, years=0.25, clock=Clock(now)) \
        == 3_000
    newest = conn.execute("SELECT max(played_at) FROM plays").fetchone()[0]
    assert now - 300 < newest <= now


def test_home_on_the_first_of_a_month_has_plays_this_month(conn: sqlite3.Connection) -> None:
    user_id = demo.ensure_demo_user(conn)
    demo.generate_history(conn, user_id, plays=3_000, years=0.25, clock=Clock(NEW_MONTH))
    board = dashboard.load(conn, user_id, datetime.fromtimestamp(NEW_MONTH, UTC))
    assert board.month_label.startswith("December")
    # Six minutes into the month the demo listener has already played something.
    assert board.top_artists and board.top_tracks


@pytest.mark.parametrize("gap", [0, 300, 2 * 3600])
def test_history_joins_the_live_stream_without_overlap(conn: sqlite3.Connection,
                                                       gap: int) -> None:
    user_id = demo.ensure_demo_user(conn)
    demo.generate_history(conn, user_id, plays=5_000, years=0.5, end=NEW_MONTH)
    stored = _stream_plays(conn, user_id)
    # The first sync, `gap` seconds later, lists the emulator's last 50 plays.
    emulator = Emulator(clock=Clock(NEW_MONTH + gap))
    polled = [p for p in emulator.recent_plays("demo") if p.stored]
    known = {(at, track) for at, track, _ in stored}
    before_end = [p for p in polled if p.played_at_ms // 1000 <= NEW_MONTH]
    # Every polled play the history could hold, it holds: same second, same track.
    assert all((p.played_at_ms // 1000, p.track.name) in known for p in before_end)
    assert gap or before_end
    merged = sorted(set(stored) | {(p.played_at_ms // 1000, p.track.name, p.ms_played)
                                   for p in polled})
    for (before, _, _), (after, _, ms) in zip(merged, merged[1:], strict=False):
        # No play begins before the one before it ended (whole seconds: one second of slack).
        assert after - ms // 1000 >= before - 1, (before, after, ms)


# --- a history with a catalogue grown for it --------------------------------------------

GROWN_PLAYS = 30_000


@pytest.fixture(scope="module")
def grown_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[sqlite3.Connection, int, int]:
    """A 30k-play, four-year history from a catalogue sized for it, and that size."""
    conn = _open(tmp_path_factory.mktemp("grown") / "t.sqlite3")
    user_id = demo.ensure_demo_user(conn)
    artists = catalogue_artists(GROWN_PLAYS)
    demo.generate_history(conn, user_id, plays=GROWN_PLAYS, years=4, end=END, artists=artists)
    return conn, user_id, artists


def test_a_grown_catalogue_gives_a_realistic_spread(grown_db) -> None:
    conn, user_id, artists = grown_db
    rows = conn.execute(
        """SELECT ta.artist_id, min(p.played_at), count(*) FROM plays p
           JOIN track_artists ta ON ta.track_id = p.track_id AND ta.position = 0
           WHERE p.user_id = ? GROUP BY ta.artist_id ORDER BY 3 DESC""", (user_id,)).fetchall()
    tracks = conn.execute("SELECT count(DISTINCT track_id) FROM plays WHERE user_id = ?",
                          (user_id,)).fetchone()[0]
    # A real history of 500,000 plays holds about 9,000 artists; this one proportionally fewer.
    expected = 9_000 * (GROWN_PLAYS / 500_000) ** 0.576
    assert artists > 400 and 0.7 * expected < len(rows) < 1.3 * expected
    assert 3 * len(rows) < tracks < 8 * len(rows)
    # Favourites and a long tail: the top ten artists hold a good share, many are heard once.
    assert sum(r[2] for r in rows[:10]) > 0.2 * GROWN_PLAYS
    assert sum(1 for r in rows if r[2] == 1) > 0.1 * len(rows)
    # New artists keep turning up: some heard first only in the last year.
    assert sum(1 for r in rows if r[1] > END - YEAR) > 0.08 * len(rows)


def test_the_emulator_of_a_grown_catalogue_knows_the_whole_history(grown_db) -> None:
    conn, user_id, artists = grown_db
    ids = {row[0] for row in conn.execute(
        "SELECT DISTINCT t.spotify_id FROM plays p JOIN tracks t ON t.id = p.track_id "
        "WHERE p.user_id = ? AND t.spotify_id IS NOT NULL", (user_id,))}
    emulator = Emulator(clock=Clock(END), artists=artists)
    try:
        assert ids <= emulator.catalogue.tracks_by_id.keys()
        assert not ids <= Emulator(clock=Clock(END)).catalogue.tracks_by_id.keys()
        known_artists = emulator.catalogue.artists_by_id.keys()
        assert {row[0] for row in conn.execute("SELECT spotify_id FROM artists WHERE "
                                               "spotify_id IS NOT NULL")} <= known_artists
        assert {row[0] for row in conn.execute("SELECT spotify_id FROM albums WHERE "
                                               "spotify_id IS NOT NULL")} \
            <= emulator.catalogue.albums_by_id.keys()
    finally:
        emulator.close()
