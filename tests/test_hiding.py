"""Hiding rules: matched plays leave every figure, stay stored, and come back exactly."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from mtm import (
    analytics,
    backups,
    demo,
    exports,
    hiding,
    history,
    importer,
    imports,
    listening,
    playlists,
)
from mtm.history import PlayIn
from tests.conftest import make_play, make_track
from tests.test_importer import api_play, extended, write

NOW = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())


def utc(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp())


def rollups(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    return {table: sorted(tuple(r) for r in conn.execute(
        f"SELECT * FROM {table} WHERE user_id = ?", (user_id,)))
        for table in history.ROLLUP_TABLES}


def stored(conn: sqlite3.Connection, table: str = "plays") -> list[tuple]:
    return sorted(tuple(r) for r in conn.execute(
        f"SELECT played_at, record_key, track_id, ms_played, import_id FROM {table}"))


def assert_exact(conn: sqlite3.Connection, user_id: int) -> None:
    """The rollups kept through hiding equal the ones rebuilt from the plays left."""
    kept = rollups(conn, user_id)
    history.rebuild_rollups(conn, user_id)
    assert rollups(conn, user_id) == kept


def ident(conn: sqlite3.Connection, table: str, name: str) -> int:
    return conn.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()[0]


@pytest.fixture
def listened(conn: sqlite3.Connection, user_id: int) -> list[PlayIn]:
    """Berlin time; three artists over a New Year and a DST change, one short stream."""
    conn.execute("UPDATE preferences SET timezone = 'Europe/Berlin'")
    plays = [make_play(utc(2025, 12, 31, 22, 50) + i * 240, n) for i, n in
             enumerate([1, 1, 2, 11, 11, 21, 1, 12])]
    plays += [make_play(utc(2026, 3, 29, 0, 30) + i * 900, n) for i, n in
              enumerate([1, 11, 11, 1])]
    plays += [make_play(utc(2026, 2, 10, 8, 0), 2, ms=12_000)]
    history.add_plays(conn, user_id, plays)
    return plays


def test_hiding_an_artist_takes_it_out_of_every_rollup_and_back(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn]) -> None:
    before, plays_before = rollups(conn, user_id), stored(conn)
    artist = ident(conn, "artists", "Artist 0")
    change = hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW)
    # Tracks 1 and 2 are Artist 0's: 5 + 1 plays of 30 s or more, and one short stream.
    assert (change.name, change.streams, change.plays, change.existed) == ("Artist 0", 7, 6, False)
    assert change.words == "6 plays and 1 short stream"
    assert len(stored(conn)) == len(plays_before) - 7
    assert len(stored(conn, "hidden_plays")) == 7
    assert_exact(conn, user_id)
    headline = listening.headline(conn, user_id, date(2026, 3, 29))
    assert (headline.plays, headline.artists, headline.tracks) == (6, 2, 3)
    assert not conn.execute("SELECT 1 FROM user_artists WHERE artist_id = ?", (artist,)).fetchone()
    [rule] = hiding.rules(conn, user_id)
    assert (rule.streams, rule.plays, rule.minutes) == (7, 6, 18)
    back = hiding.remove(conn, user_id, rule.id)
    assert back is not None and back.streams == 7
    assert rollups(conn, user_id) == before and stored(conn) == plays_before
    assert stored(conn, "hidden_plays") == [] and hiding.rules(conn, user_id) == []


def test_track_album_and_context_rules(conn: sqlite3.Connection, user_id: int,
                                       listened: list[PlayIn]) -> None:
    track = ident(conn, "tracks", "Track 11")
    assert hiding.add(conn, user_id, hiding.RuleIn("track", target_id=track), NOW).streams == 4
    album = ident(conn, "albums", "Album 2")
    assert hiding.add(conn, user_id, hiding.RuleIn("album", target_id=album), NOW).streams == 1
    assert_exact(conn, user_id)
    left = {r[0] for r in conn.execute("SELECT t.name FROM plays p JOIN tracks t "
                                       "ON t.id = p.track_id")}
    assert left == {"Track 1", "Track 2", "Track 12"}
    # A context rule: plays started from a playlist.
    uri = "spotify:playlist:" + "A" * 22
    conn.execute("UPDATE plays SET context_uri = ? WHERE track_id = ?",
                 (uri, ident(conn, "tracks", "Track 12")))
    change = hiding.add(conn, user_id, hiding.RuleIn("context", context_uri=uri), NOW)
    assert (change.name, change.streams) == ("Playlist " + "A" * 22, 1)
    assert_exact(conn, user_id)
    # The same rule twice is one rule.
    again = hiding.add(conn, user_id, hiding.RuleIn("track", target_id=track), NOW)
    assert again.existed and len(hiding.rules(conn, user_id)) == 3


def test_a_rule_for_some_days_hides_only_those(conn: sqlite3.Connection, user_id: int,
                                               listened: list[PlayIn]) -> None:
    track = ident(conn, "tracks", "Track 1")
    # 1 January in Berlin began at 23:00 UTC on 31 December: of track 1's New Year plays,
    # 22:50 and 22:54 UTC are on 31 December, 23:14 UTC on 1 January.
    rule = hiding.RuleIn("track", target_id=track, first=date(2026, 1, 1),
                         last=date(2026, 1, 1))
    assert hiding.add(conn, user_id, rule, NOW).streams == 1
    assert_exact(conn, user_id)
    days = dict(conn.execute("SELECT day, plays FROM listening_days WHERE user_id = ?",
                             (user_id,)).fetchall())
    assert days["2025-12-31"] == 3 and days["2026-01-01"] == 4
    [stored_rule] = hiding.rules(conn, user_id)
    assert stored_rule.days("Europe/Berlin") == "1 Jan 2026"
    # New plays outside the days count; inside them, they arrive hidden.
    assert history.add_plays(conn, user_id, [make_play(utc(2026, 1, 1, 12), 1),
                                             make_play(utc(2026, 1, 2, 12), 1)]) == 2
    assert hiding.rules(conn, user_id)[0].streams == 2
    assert_exact(conn, user_id)


def test_overlapping_rules_keep_a_play_hidden_until_both_go(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn]) -> None:
    before = rollups(conn, user_id)
    track = hiding.add(conn, user_id, hiding.RuleIn(
        "track", target_id=ident(conn, "tracks", "Track 1")), NOW)
    artist = hiding.add(conn, user_id, hiding.RuleIn(
        "artist", target_id=ident(conn, "artists", "Artist 0")), NOW)
    assert (track.streams, artist.streams) == (5, 2)
    hiding.remove(conn, user_id, track.rule_id)
    # Track 1 is Artist 0's: its plays stay hidden, now by the artist rule.
    assert [(r.name, r.streams) for r in hiding.rules(conn, user_id)] == [("Artist 0", 7)]
    assert_exact(conn, user_id)
    hiding.remove(conn, user_id, artist.rule_id)
    assert rollups(conn, user_id) == before


def test_a_hidden_play_synced_again_is_not_stored_twice(conn: sqlite3.Connection, user_id: int
                                                        ) -> None:
    plays = [api_play(utc(2026, 1, 5, 10) + i * 300, n) for i, n in enumerate([1, 2, 1])]
    history.add_plays(conn, user_id, plays)
    track = ident(conn, "tracks", "Song 1")
    hiding.add(conn, user_id, hiding.RuleIn("track", target_id=track), NOW)
    assert history.add_plays(conn, user_id, plays) == 0
    assert len(stored(conn)) == 1 and len(stored(conn, "hidden_plays")) == 2
    # A new play of the track is stored, hidden at once.
    assert history.add_plays(conn, user_id, [api_play(utc(2026, 1, 6, 10), 1)]) == 1
    assert len(stored(conn)) == 1 and len(stored(conn, "hidden_plays")) == 3
    assert_exact(conn, user_id)


def test_an_exported_twin_of_a_hidden_play_is_not_stored(conn: sqlite3.Connection, user_id: int,
                                                         tmp_path: Path) -> None:
    start = utc(2019, 6, 1, 12)
    history.add_plays(conn, user_id, [api_play(start + 3, 1), api_play(start + 600, 2)])
    # Hidden by its context, which Spotify's export does not carry.
    uri = "spotify:playlist:" + "B" * 22
    conn.execute("UPDATE plays SET context_uri = ?", (uri,))
    hiding.add(conn, user_id, hiding.RuleIn("context", context_uri=uri), NOW)
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                   [extended(start, 1, ms=199_000), extended(start + 605, 2),
                    extended(start + 1200, 3)])]
    report = importer.run(exports.database_path(conn), user_id, files, now=NOW).report
    assert (report.new, report.present) == (1, 2)
    assert len(stored(conn)) == 1 and len(stored(conn, "hidden_plays")) == 2
    # The same twins polled again: nothing.
    assert history.add_plays(conn, user_id, [api_play(start + 3, 1)]) == 0


def test_an_import_stores_matching_plays_hidden_and_undo_removes_them(
        conn: sqlite3.Connection, user_id: int, tmp_path: Path) -> None:
    start = utc(2019, 6, 1, 12)
    history.add_plays(conn, user_id, [api_play(start, 1)])
    hiding.add(conn, user_id, hiding.RuleIn(
        "artist", target_id=ident(conn, "artists", "Band 0")), NOW)
    files = [write(tmp_path, "Streaming_History_Audio_2019_0.json",
                   [extended(start + 600 * i, n) for i, n in enumerate([2, 3, 15, 4, 16], 1)])]
    result = importer.run(exports.database_path(conn), user_id, files, now=NOW)
    assert result.report.new == 5
    # Songs 2, 3 and 4 are Band 0's: stored hidden; 15 and 16 are Band 1's.
    assert len(stored(conn)) == 2 and len(stored(conn, "hidden_plays")) == 4
    assert_exact(conn, user_id)
    [record] = imports.list_imports(conn, user_id)
    assert imports.undo(conn, user_id, record.id, now=NOW) == 5
    assert len(stored(conn)) == 0 and len(stored(conn, "hidden_plays")) == 1


def test_every_figure_leaves_hidden_plays_out(conn: sqlite3.Connection, user_id: int,
                                              listened: list[PlayIn]) -> None:
    artist = ident(conn, "artists", "Artist 1")
    hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW)
    now = datetime(2026, 3, 30, 12, tzinfo=UTC)
    # Artist 1 had 5 plays (tracks 11 and 12); Artist 0 has 6 (3 in 2026, Berlin time) and
    # Artist 2 one left.
    for query, plays in (({"range": "all"}, 7), ({"year": "2026"}, 4),
                         ({"from": "2025-12-31", "to": "2026-03-30"}, 7)):
        page = analytics.load(conn, user_id, query, now=now)
        assert [(r.name, r.plays) for r in page.top_artists["plays"]] == [
            ("Artist 0", plays - 1), ("Artist 2", 1)]
        assert page.totals.plays == plays and page.artists == 2
        assert "Track 11" not in [r.name for r in page.top_tracks["plays"]]
    days = listening.day_totals(conn, user_id, date(2026, 3, 29), date(2026, 3, 29))
    assert days[date(2026, 3, 29)][0] == 2


def test_clear_backup_and_restore_keep_rules_with_their_plays(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn], tmp_path: Path) -> None:
    hiding.add(conn, user_id, hiding.RuleIn(
        "album", target_id=ident(conn, "albums", "Album 1")), NOW)
    hiding.add(conn, user_id, hiding.RuleIn(
        "track", target_id=ident(conn, "tracks", "Track 1"), first=date(2026, 3, 29)), NOW)
    rules = [(r.kind, r.name, r.streams, r.starts_at) for r in hiding.rules(conn, user_id)]
    figures = rollups(conn, user_id)
    path = tmp_path / "backup.sqlite3"
    exports.snapshot(conn, user_id, path)
    counts = backups.clear_data(conn, user_id)
    assert (counts.hidden, counts.hide_rules) == (7, 2)
    assert stored(conn, "hidden_plays") == [] and hiding.rules(conn, user_id) == []
    backups.restore_file(exports.database_path(conn), user_id, path)
    assert [(r.kind, r.name, r.streams, r.starts_at) for r in hiding.rules(conn, user_id)] == rules
    assert rollups(conn, user_id) == figures


def test_json_and_csv_exports_hold_hidden_plays_marked(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn]) -> None:
    hiding.add(conn, user_id, hiding.RuleIn(
        "track", target_id=ident(conn, "tracks", "Track 12")), NOW)
    page = exports.plays_page(conn, user_id, (-1, 0), 100)
    assert len(page) == len(listened)
    assert [p.played_at for p in page] == sorted(p.played_at for p in listened)
    assert [p.track for p in page if p.hidden] == ["Track 12"]
    records = [exports.spotify_record(p) for p in page]
    assert sum(r["mtm_hidden"] for r in records) == 1
    json.dumps(records)
    rows = list(exports.csv_rows(page, "UTC"))
    assert [r[-1] for r in rows].count("yes") == 1
    # Keyset pages of 3 still hold every play once, in order.
    after, seen = (-1, 0), []
    while chunk := exports.plays_page(conn, user_id, after, 3):
        seen += chunk
        after = (chunk[-1].played_at, chunk[-1].record_key)
    assert [(p.played_at, p.record_key) for p in seen] == [(p.played_at, p.record_key)
                                                          for p in page]


@pytest.mark.parametrize(("form", "problem"), [
    ({"kind": "mood"}, "Choose a track"),
    ({"kind": "track", "target": "x1"}, "no track with that number"),
    ({"kind": "artist", "target": "9" * 19}, "no artist with that number"),
    ({"kind": "context", "context": "https://example.com/playlist/x"}, "Paste the Spotify link"),
    ({"kind": "track", "target": "1", "from": "2026-02-30"}, "not a date"),
    ({"kind": "track", "target": "1", "from": "2026-02-10", "to": "2026-02-01"}, "comes after"),
    ({"kind": "track", "target": "1", "to": "2027-01-01"}, "to today"),
    ({"kind": "track", "target": "1", "from": "1999-01-01"}, "from 2006"),
])
def test_forms_are_checked(form: dict[str, str], problem: str) -> None:
    with pytest.raises(hiding.HideError) as refused:
        hiding.parse_form(form, date(2026, 3, 1))
    assert problem in refused.value.message


def test_contexts_are_read_from_links_and_uris() -> None:
    ident22 = "37i9dQZF1DXcBWIGoYBM5M"
    for text in (f"spotify:playlist:{ident22}", f"https://open.spotify.com/playlist/{ident22}",
                 f"https://open.spotify.com/intl-de/playlist/{ident22}?si=abc",
                 f" http://open.spotify.com/playlist/{ident22}/ "):
        assert hiding.parse_context(text) == f"spotify:playlist:{ident22}"
    assert hiding.parse_context("spotify:user:listener-1:collection") == \
        "spotify:user:listener-1:collection"
    assert hiding.parse_context(f"spotify:track:{ident22}") is None
    assert hiding.parse_context("spotify:playlist:short") is None


def test_a_target_outside_the_history_is_refused(conn: sqlite3.Connection, user_id: int) -> None:
    history.add_plays(conn, user_id, [make_play(utc(2026, 1, 1), 1)])
    other = history.upsert_track(conn, make_track(99))[0]
    with pytest.raises(hiding.HideError) as refused:
        hiding.add(conn, user_id, hiding.RuleIn("track", target_id=other), NOW)
    assert refused.value.status == 404
    assert hiding.rules(conn, user_id) == []


def test_no_playlist_source_picks_a_hidden_track(conn: sqlite3.Connection, user_id: int,
                                                 listened: list[PlayIn]) -> None:
    now = utc(2026, 3, 30, 12)
    sources = ("current_rotation", "recent_discoveries", "forgotten_gems", "on_this_day")
    picked = {s: [c.name for c in playlists.candidates(conn, user_id, s, now=now)]
              for s in sources}
    picked["year_in_review"] = [c.name for c in playlists.candidates(
        conn, user_id, "year_in_review", year=2026, now=now)]
    assert "Track 1" in picked["current_rotation"] + picked["year_in_review"]
    hiding.add(conn, user_id, hiding.RuleIn(
        "track", target_id=ident(conn, "tracks", "Track 1")), NOW)
    after = {s: [c.name for c in playlists.candidates(conn, user_id, s, now=now)]
             for s in sources}
    assert all("Track 1" not in names for names in after.values())
    assert after["current_rotation"] == [n for n in picked["current_rotation"] if n != "Track 1"]
    assert "Track 1" not in [c.name for c in playlists.candidates(
        conn, user_id, "year_in_review", year=2026, now=now)]


def test_a_demo_history_all_hidden_is_not_generated_again(conn: sqlite3.Connection,
                                                          user_id: int,
                                                          listened: list[PlayIn]) -> None:
    for artist in ("Artist 0", "Artist 1", "Artist 2"):
        hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=ident(conn, "artists",
                                                                          artist)), NOW)
    assert stored(conn) == []
    assert demo.ensure_demo_history(conn, user_id, plays=100, years=0.1) is False
    assert len(stored(conn, "hidden_plays")) == len(listened)
