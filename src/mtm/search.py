"""Search the signed-in user's own history: artists, albums and tracks by name.

Names are compared by their folded search keys (accents and case ignored), stored beside
them (migration 0010). Only what the user has streamed is searched: the rollups
user_artists and user_tracks, albums through their tracks.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from mtm.identity import search_key
from mtm.listening import Ranked
from mtm.listening import key_expression as _key

MAX_QUERY = 100
# Results listed per group; the rest are counted.
PER_GROUP = 20
GROUPS = (("artist", "Artists"), ("album", "Albums"), ("track", "Tracks"))


class QueryError(ValueError):
    """Search words that cannot be searched for; the message says what to change."""


@dataclass(frozen=True)
class Group:
    """The matches of one kind: the best `PER_GROUP` of them and how many there are."""

    kind: str
    label: str
    items: list[Ranked]
    total: int

    @property
    def more(self) -> int:
        """Matches found but not listed."""
        return self.total - len(self.items)


@dataclass(frozen=True)
class Results:
    """What a search found, group by group (empty groups included)."""

    query: str
    groups: tuple[Group, ...]

    @property
    def total(self) -> int:
        """Matches of every kind."""
        return sum(group.total for group in self.groups)


def parse_query(raw: str | None) -> str:
    """The search words, trimmed ("" for none); QueryError when they are too long."""
    query = " ".join((raw or "").split())
    if len(query) > MAX_QUERY:
        raise QueryError(f"Search for at most {MAX_QUERY} characters "
                         f"(this search has {len(query)}).")
    return query


def matcher(query: str) -> tuple[str, str] | None:
    """(needle, form) finding the query's folded words in search keys; None when there are none.

    SQL looks for the needle with instr in listening.key_expression(column, form). One
    letter matches the start of a word: anywhere, it would match nearly every name.
    """
    key = search_key(query)
    if not key:
        return None
    return (f" {key}", "word") if len(key) == 1 else (key, "any")


# Exact names first, then names starting with the words, then a word starting with them.
_RANK = """CASE WHEN {k} = :key THEN 0 WHEN instr({k}, :key) = 1 THEN 1
                WHEN instr({k}, ' ' || :key) > 0 THEN 2 ELSE 3 END"""


def _artists(form: str) -> str:
    return f"""
        SELECT a.id, a.name, NULL, '', ua.plays, ua.ms_played, count(*) OVER ()
        FROM user_artists ua JOIN artists a ON a.id = ua.artist_id
        WHERE ua.user_id = :user AND instr({_key("a.search_key", form)}, :needle)
        ORDER BY {_RANK.format(k="a.search_key")}, ua.plays DESC, ua.ms_played DESC,
                 a.name, a.id
        LIMIT :limit"""


def _tracks(form: str) -> str:
    # Counted apart: a window over tens of thousands of matches costs more than a second scan.
    return f"""
        SELECT t.id, t.name, t.artist_id, coalesce(a.name, ''), ut.plays, ut.ms_played,
               (SELECT count(*) FROM user_tracks cut JOIN tracks ct ON ct.id = cut.track_id
                WHERE cut.user_id = :user AND instr({_key("ct.search_key", form)}, :needle))
        FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
        LEFT JOIN artists a ON a.id = t.artist_id
        WHERE ut.user_id = :user AND instr({_key("t.search_key", form)}, :needle)
        ORDER BY {_RANK.format(k="t.search_key")}, ut.plays DESC, ut.ms_played DESC,
                 t.name, t.id
        LIMIT :limit"""


def _albums(form: str) -> str:
    # CROSS JOIN keeps this order: the matching albums first, then the user's tracks of them
    # (starting from the user's tracks would read every one of them).
    return f"""
        SELECT al.id, al.name, al.artist_id, coalesce(a.name, ''), sum(ut.plays) AS plays,
               sum(ut.ms_played) AS ms, count(*) OVER ()
        FROM albums al CROSS JOIN tracks t ON t.album_id = al.id
        CROSS JOIN user_tracks ut ON ut.user_id = :user AND ut.track_id = t.id
        LEFT JOIN artists a ON a.id = al.artist_id
        WHERE instr({_key("al.search_key", form)}, :needle)
        GROUP BY al.id
        ORDER BY {_RANK.format(k="al.search_key")}, plays DESC, ms DESC, al.name, al.id
        LIMIT :limit"""


_SQL = {"artist": _artists, "album": _albums, "track": _tracks}


def search(conn: sqlite3.Connection, user_id: int, query: str, limit: int = PER_GROUP
           ) -> Results:
    """The user's artists, albums and tracks whose names hold the query, best first."""
    match = matcher(query)
    if match is None:
        return Results(query, ())
    needle, form = match
    params = {"user": user_id, "needle": needle, "key": search_key(query), "limit": limit}
    groups = []
    for kind, label in GROUPS:
        rows = conn.execute(_SQL[kind](form), params).fetchall()
        items = [Ranked(kind, r[0], r[1], r[4], round(r[5] / 60000), r[2], r[3]) for r in rows]
        groups.append(Group(kind, label, items, rows[0][6] if rows else 0))
    return Results(query, tuple(groups))
