"""Hiding and showing a big rule a chunk at a time: every chunk leaves the rollups equal to a
rebuild, and a hide or show a crash cut short finishes when asked again."""

from __future__ import annotations

import sqlite3

import pytest

from mtm import hiding, history
from mtm.history import PlayIn
from tests.test_hiding import NOW, assert_exact, ident, listened, rollups, stored

__all__ = ["listened"]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hiding, "CHUNK", 2, raising=False)


def _transactions(conn: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the history-version bumps: a hide bumps once in each of its transactions."""
    begun: list[int] = []
    real = history.bump_version

    def bump(c: sqlite3.Connection, user_id: int) -> None:
        real(c, user_id)
        begun.append(user_id)

    monkeypatch.setattr(history, "bump_version", bump)
    return begun


def test_a_rule_is_hidden_and_shown_in_chunks(conn: sqlite3.Connection, user_id: int,
                                              listened: list[PlayIn],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    before, plays_before = rollups(conn, user_id), stored(conn)
    begun = _transactions(conn, monkeypatch)
    artist = ident(conn, "artists", "Artist 0")
    change = hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW)
    assert (change.streams, change.plays) == (7, 6)
    # The rule, then four chunks of at most two plays, each its own transaction.
    assert len(begun) == 5
    assert_exact(conn, user_id)
    [rule] = hiding.rules(conn, user_id)
    back = hiding.remove(conn, user_id, rule.id)
    assert back.streams == 7
    assert rollups(conn, user_id) == before and stored(conn) == plays_before
    assert hiding.rules(conn, user_id) == []


def _crash_after(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    real = hiding._move_to_incoming
    calls = []

    def move(*args, **kwargs) -> int:
        calls.append(1)
        if len(calls) > chunks:
            raise KeyboardInterrupt("the process is killed here")
        return real(*args, **kwargs)

    monkeypatch.setattr(hiding, "_move_to_incoming", move)


def test_a_hide_cut_short_is_whole_at_each_step_and_finishes(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn],
        monkeypatch: pytest.MonkeyPatch) -> None:
    artist = ident(conn, "artists", "Artist 0")
    with monkeypatch.context() as patched:
        _crash_after(patched, 2)
        with pytest.raises(KeyboardInterrupt):
            hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW)
    assert not conn.in_transaction
    assert len(stored(conn, "hidden_plays")) == 4
    assert_exact(conn, user_id)
    # Asked again: the same rule, and the rest of its plays hidden.
    again = hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW)
    assert again.existed and again.streams == 3
    assert len(stored(conn, "hidden_plays")) == 7
    assert_exact(conn, user_id)


def test_a_show_cut_short_hides_nothing_new_and_finishes(
        conn: sqlite3.Connection, user_id: int, listened: list[PlayIn],
        monkeypatch: pytest.MonkeyPatch) -> None:
    before, plays_before = rollups(conn, user_id), stored(conn)
    artist = ident(conn, "artists", "Artist 0")
    rule = hiding.add(conn, user_id, hiding.RuleIn("artist", target_id=artist), NOW).rule_id
    with monkeypatch.context() as patched:
        _crash_after(patched, 1)
        with pytest.raises(KeyboardInterrupt):
            hiding.remove(conn, user_id, rule)
    assert len(stored(conn, "hidden_plays")) == 5
    assert_exact(conn, user_id)
    # A new play of the artist while the rule is half removed is counted, not hidden.
    track = conn.execute("SELECT track_id FROM hidden_plays LIMIT 1").fetchone()[0]
    hidden_before = len(stored(conn, "hidden_plays"))
    conn.execute("INSERT INTO temp.incoming_plays SELECT 1, 1, track_id, artist_id, 200000, "
                 "'api', NULL, NULL, '1970-01-01', 1, 3, NULL FROM hidden_plays "
                 "WHERE track_id = ? LIMIT 1", (track,))
    with history.transaction(conn):
        history.apply_incoming(conn, user_id)
    conn.execute("DELETE FROM temp.incoming_plays")
    assert len(stored(conn, "hidden_plays")) == hidden_before
    assert hiding.remove(conn, user_id, rule).streams == 5
    assert stored(conn, "hidden_plays") == [] and hiding.rules(conn, user_id) == []
    assert len(stored(conn)) == len(plays_before) + 1
    assert_exact(conn, user_id)
    assert rollups(conn, user_id) != before
