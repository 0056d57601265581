"""The household page: how the tastes of the members who joined it overlap.

Joining is per user and off by default; a user who has not joined is never read here. Every
figure comes from the artist rollups (user_artists for all time, artist_months for a month),
from which hidden plays are already subtracted, so the page reads no plays.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from mtm import history, periods, preferences
from mtm.cache import Cache
from mtm.db import transaction

# The shared artists are those in both people's top lists of this many artists, by plays.
TOP_LIST = 50
# How many shared artists a comparison lists (the count says how many there are in all).
SHOWN = 10
COMPATIBILITY = ("the share of listening time you have in common: for each artist, the smaller "
                 "of your two shares of your own listening time, added up over every artist "
                 "(100% is the same artists in the same proportions, 0% no artist in common)")

# (artist id, plays, ms played) of one person's top list, best first.
Top = list[tuple[int, int, int]]


@dataclass(frozen=True)
class SharedArtist:
    """An artist in both people's top lists, with each one's plays and minutes of it."""

    id: int
    name: str
    image_url: str | None
    my_plays: int
    my_minutes: int
    their_plays: int
    their_minutes: int


@dataclass(frozen=True)
class Overlap:
    """Two people's shared top artists and compatibility over one span (a month, all time)."""

    shared: list[SharedArtist]
    shared_count: int
    # Percent, 0-100; None when either of the two has no listening time in the span.
    compatibility: int | None
    i_listened: bool
    they_listened: bool


@dataclass(frozen=True)
class Comparison:
    """The viewer against one other member."""

    member_id: int
    name: str
    this_month: Overlap
    all_time: Overlap


@dataclass(frozen=True)
class Household:
    """What the household page shows its viewer."""

    member: bool
    # Whether anyone else has an account on this instance (joined or not).
    others_here: bool
    month: str
    month_label: str
    comparisons: list[Comparison]


# --- membership ---------------------------------------------------------------------------


def is_member(conn: sqlite3.Connection, user_id: int) -> bool:
    """Whether the user has joined the household page."""
    return conn.execute("SELECT 1 FROM household_members WHERE user_id = ?",
                        (user_id,)).fetchone() is not None


def join(conn: sqlite3.Connection, user_id: int, now: int) -> bool:
    """Share the user's listening with the other members; True if they were not in yet."""
    with transaction(conn):
        return conn.execute(
            "INSERT INTO household_members (user_id, joined_at) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING", (user_id, now)).rowcount == 1


def leave(conn: sqlite3.Connection, user_id: int) -> bool:
    """Stop sharing at once; True if the user was a member."""
    with transaction(conn):
        return conn.execute("DELETE FROM household_members WHERE user_id = ?",
                            (user_id,)).rowcount == 1


def _other_members(conn: sqlite3.Connection, user_id: int) -> list[tuple[int, str, int]]:
    """(id, display name, history version) of every member but this user, by name."""
    return [tuple(row) for row in conn.execute(
        """SELECT u.id, u.display_name, u.history_version FROM household_members m
           JOIN users u ON u.id = m.user_id WHERE m.user_id != ?
           ORDER BY u.display_name COLLATE NOCASE, u.id""", (user_id,))]


def _others_here(conn: sqlite3.Connection, user_id: int) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM users WHERE id != ?)",
                        (user_id,)).fetchone()[0] == 1


# --- the figures --------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One member's listening over a span: each artist's share of it, top list, total time."""

    shares: dict[int, float]
    top: Top
    total: int


# A top list's order: plays, then minutes, then the artist's id so ties always fall alike.
_RANKED = "plays DESC, ms_played DESC, artist_id"


def _tuples(conn: sqlite3.Connection, sql: str, params: tuple) -> list[tuple]:
    cursor = conn.cursor()
    # Plain tuples: making a sqlite3.Row of each of 20,000 artists costs more than the query.
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


def _times_all_time(conn: sqlite3.Connection, user_id: int) -> list[tuple[int, int]]:
    return _tuples(conn, "SELECT artist_id, ms_played FROM user_artists "
                   "WHERE user_id = ? AND ms_played > 0", (user_id,))


def _times_in_month(conn: sqlite3.Connection, user_id: int, month: str
                    ) -> list[tuple[int, int]]:
    return _tuples(conn, "SELECT artist_id, ms_played FROM artist_months "
                   "WHERE user_id = ? AND month = ? AND ms_played > 0", (user_id, month))


def _top_all_time(conn: sqlite3.Connection, user_id: int) -> Top:
    # Artists with short streams only (no plays) are in no top list.
    return _tuples(conn, "SELECT artist_id, plays, ms_played FROM user_artists "
                   f"WHERE user_id = ? AND plays > 0 ORDER BY {_RANKED} LIMIT ?",
                   (user_id, TOP_LIST))


def _top_in_month(conn: sqlite3.Connection, user_id: int, month: str) -> Top:
    return _tuples(conn, "SELECT artist_id, plays, ms_played FROM artist_months "
                   f"WHERE user_id = ? AND month = ? AND plays > 0 ORDER BY {_RANKED} LIMIT ?",
                   (user_id, month, TOP_LIST))


def profile(times: list[tuple[int, int]], top: Top) -> Profile:
    """A profile from (artist id, ms) rows and a top list."""
    total = sum(ms for _, ms in times)
    return Profile({aid: ms / total for aid, ms in times}, top, total)


def load_profile(conn: sqlite3.Connection, user_id: int, month: str | None, *,
                 version: int, cache: Cache | None = None) -> Profile:
    """A member's profile of one month, or of all time (None), from the cache when unchanged."""
    key = ("household-profile", user_id, version, month)
    if cache is not None and (found := cache.get(key)) is not None:
        return found
    if month is None:
        found = profile(_times_all_time(conn, user_id), _top_all_time(conn, user_id))
    else:
        found = profile(_times_in_month(conn, user_id, month),
                        _top_in_month(conn, user_id, month))
    if cache is not None:
        cache.put(key, found)
    return found


def compatibility(mine: Profile, theirs: Profile) -> int | None:
    """The percentage of listening time two people have in common (see COMPATIBILITY)."""
    if not mine.total or not theirs.total:
        return None
    # min() is symmetric: walk the smaller profile and look each artist up in the other.
    small, large = sorted((mine.shares, theirs.shares), key=len)
    common = sum(min(share, large[aid]) for aid, share in small.items() if aid in large)
    return round(common * 100)


def _artist_names(conn: sqlite3.Connection, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {aid: (name, image) for aid, name, image in conn.execute(
        f"SELECT id, name, image_url FROM artists WHERE id IN ({marks})", ids)}


def shared_top(mine: Top, theirs: Top) -> list[tuple[int, tuple[int, int], tuple[int, int]]]:
    """The artists in both top lists, (id, (my plays, ms), (their plays, ms)), best first.

    Best is the smallest sum of the two ranks: an artist both rank high comes before one only
    one of them plays a lot.
    """
    ranks = {row[0]: (rank, row) for rank, row in enumerate(theirs)}
    both = []
    for my_rank, mine_row in enumerate(mine):
        if mine_row[0] in ranks:
            their_rank, their_row = ranks[mine_row[0]]
            order = (my_rank + their_rank, -(mine_row[1] + their_row[1]), mine_row[0])
            both.append((order, mine_row, their_row))
    both.sort(key=lambda item: item[0])
    return [(a[0], (a[1], a[2]), (b[1], b[2])) for _, a, b in both]


def overlap(conn: sqlite3.Connection, mine: Profile, theirs: Profile) -> Overlap:
    """Two profiles of one span: shared top artists (named) and compatibility."""
    shared = shared_top(mine.top, theirs.top)
    names = _artist_names(conn, [aid for aid, _, _ in shared[:SHOWN]])
    return Overlap(
        [SharedArtist(aid, *names[aid], a[0], round(a[1] / 60000), b[0], round(b[1] / 60000))
         for aid, a, b in shared[:SHOWN]],
        len(shared), compatibility(mine, theirs), mine.total > 0, theirs.total > 0)


def compare(conn: sqlite3.Connection, me: int, them: int, month: str) -> tuple[Overlap, Overlap]:
    """(this month, all time) of two users: their shared top artists and compatibility."""
    spans = []
    for span in (month, None):
        mine = load_profile(conn, me, span, version=history.history_version(conn, me))
        theirs = load_profile(conn, them, span, version=history.history_version(conn, them))
        spans.append(overlap(conn, mine, theirs))
    return spans[0], spans[1]


def overview(conn: sqlite3.Connection, user_id: int, *, now: int | None = None,
             cache: Cache | None = None) -> Household:
    """The household page of one user: nothing of anyone else unless both have joined."""
    timezone = preferences.load(conn, user_id).timezone
    moment = datetime.fromtimestamp(now, UTC) if now is not None else None
    today = periods.local_today(timezone, moment)
    # "This month" is the viewer's calendar month, read from each member's own monthly
    # rollup (kept in their own time zone): the same month for both sides of a comparison.
    month = f"{today:%Y-%m}"
    label = f"{today:%B %Y}"
    others_here = _others_here(conn, user_id)
    if not is_member(conn, user_id):
        return Household(False, others_here, month, label, [])
    others = _other_members(conn, user_id)
    # Every member's history version is in the key, and who the members are: a new play of
    # anyone, a join or a leave computes the page again.
    version = history.history_version(conn, user_id)
    key = ("household", user_id, version, month, others_here, tuple(others))
    if cache is not None and (found := cache.get(key)) is not None:
        return found
    # Each member's profiles are cached on their own, so one member's new plays recompute
    # only theirs.
    mine = {span: load_profile(conn, user_id, span, version=version, cache=cache)
            for span in (month, None)}
    comparisons = []
    for other_id, name, other_version in others:
        theirs = {span: load_profile(conn, other_id, span, version=other_version, cache=cache)
                  for span in (month, None)}
        comparisons.append(Comparison(other_id, name, overlap(conn, mine[month], theirs[month]),
                                      overlap(conn, mine[None], theirs[None])))
    result = Household(True, others_here, month, label, comparisons)
    if cache is not None:
        cache.put(key, result)
    return result
