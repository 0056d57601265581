"""What a period's pages rank and count, summed in SQLite rather than row by row in Python.

A period's per-track, per-artist and per-album totals are summed into temp tables of the
connection: its whole local months from the monthly rollups (track_months, artist_months,
album_months: an album's months follow its tracks, so albums count by the album each track
has now, as the album pages do), the days at its edges from the plays; a short period reads
only its plays, which is then quicker than scanning the monthly rollups. The whole history
reads the per-user rollups directly. Tops and counts are then small ordered reads.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta

from mtm import rezone
from mtm.listening import METRICS, TOP, Ranked, Totals, named, named_rankings
from mtm.periods import local_midnight, month_starts, next_month

# Below this many streams in its whole months, a period is summed from its plays alone:
# summing the monthly rollups scans all of the user's rows in them (about 40 ms for
# 500,000 rows), while plays cost by the stream (about 60,000 a second's 40 ms, measured).
MONTHS_FROM_STREAMS = 60_000
# Below this share of the user's streams, whole months are read by month: measured in-process
# at 2M plays, 13% of them (three years) 128 ms by month against 157 in key order, 40% 289
# against 233; at 500k, 34% (three years) 157 against 133.
BY_MONTH_BELOW = 0.25
_KINDS = ("track", "artist", "album")


@dataclass(frozen=True)
class Summed:
    """A period's totals: each kind's count and tops by each metric."""

    counts: dict[str, int]
    tops: dict[str, dict[str, list[Ranked]]]


def whole_months(first: date, last: date) -> tuple[date, date] | None:
    """(first day of the first, first day after the last) whole month in first..last."""
    start = first if first.day == 1 else next_month(first)
    after = last + timedelta(days=1)
    end = after if after.day == 1 else after.replace(day=1)
    return (start, end) if start < end else None


def month_key(day: date) -> str:
    """The month of a day as the monthly rollups name it, "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


def _create(conn: sqlite3.Connection) -> None:
    for kind in _KINDS:
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS period_{kind}s "
                     "(id INTEGER PRIMARY KEY, plays INTEGER NOT NULL, ms INTEGER NOT NULL)")
        conn.execute(f"DELETE FROM temp.period_{kind}s")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS edge_tracks (id INTEGER PRIMARY KEY, "
                 "artist_id INTEGER NOT NULL, plays INTEGER NOT NULL, ms INTEGER NOT NULL)")
    conn.execute("DELETE FROM temp.edge_tracks")


def streams_in_months(conn: sqlite3.Connection, user_id: int, first: str, end: str) -> int:
    """Streams (short ones too) in the local months from `first` up to `end` (keys)."""
    return conn.execute("SELECT coalesce(sum(streams), 0) FROM listening_months "
                        "WHERE user_id = ? AND month >= ? AND month < ?",
                        (user_id, first, end)).fetchone()[0]


def _months_into_temp(conn: sqlite3.Connection, user_id: int, first: str, end: str,
                      by_month: bool) -> None:
    # The primary keys are ordered by track and by artist: a long range is summed without
    # sorting. A range holding a small share of the history reads its own months through
    # the month indexes and sorts them instead (3 years of 20: 41 ms, not 55), its albums
    # too; a long range's albums are summed from its tracks (see fill).
    kinds = [("track_months", "track_id"), ("artist_months", "artist_id")]
    if by_month:
        kinds.append(("album_months", "album_id"))
    for table, column in kinds:
        index = f"INDEXED BY {table}_range" if by_month else ""
        conn.execute(f"""INSERT INTO temp.period_{column[:-3]}s
                         SELECT {column}, sum(plays), sum(ms_played) FROM {table} {index}
                         WHERE user_id = ? AND month >= ? AND month < ? GROUP BY {column}""",
                     (user_id, first, end))


def _plays_into_edges(conn: sqlite3.Connection, user_id: int, start: int, end: int) -> None:
    # A track's plays share its main artist, so one row per track holds it.
    conn.execute("""INSERT INTO temp.edge_tracks
                    SELECT track_id, artist_id, sum(counted), sum(ms_played) FROM plays
                    WHERE user_id = ? AND played_at >= ? AND played_at < ? GROUP BY track_id
                    ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                        ms = ms + excluded.ms""", (user_id, start, end))


def _edges_into_temp(conn: sqlite3.Connection) -> None:
    conn.execute("""INSERT INTO temp.period_tracks SELECT id, plays, ms FROM temp.edge_tracks
                    WHERE true ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                        ms = ms + excluded.ms""")
    conn.execute("""INSERT INTO temp.period_artists
                    SELECT artist_id, sum(plays), sum(ms) FROM temp.edge_tracks
                    WHERE true GROUP BY artist_id
                    ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                        ms = ms + excluded.ms""")


def _albums_from(conn: sqlite3.Connection, tracks: str) -> None:
    """Add the per-track totals of the temp table `tracks` to their albums' totals."""
    conn.execute(f"""INSERT INTO temp.period_albums SELECT t.album_id, sum(e.plays), sum(e.ms)
                     FROM {tracks} e CROSS JOIN tracks t ON t.id = e.id
                     WHERE t.album_id IS NOT NULL GROUP BY t.album_id
                     ON CONFLICT DO UPDATE SET plays = plays + excluded.plays,
                         ms = ms + excluded.ms""")


def fill(conn: sqlite3.Connection, user_id: int, timezone: str, first: date, last: date
         ) -> None:
    """Sum the local days first..last per track, artist and album into the temp tables."""
    _create(conn)
    start = local_midnight(first, timezone)
    end = local_midnight(last + timedelta(days=1), timezone)
    months = whole_months(first, last)
    keys = (month_key(months[0]), month_key(months[1])) if months else ("", "")
    in_months = streams_in_months(conn, user_id, *keys) if months else 0
    by_month = True
    # While a time-zone change moves the monthly rollups, they are half in each zone.
    if months is None or in_months < MONTHS_FROM_STREAMS or rezone.months_moving(conn,
                                                                                   user_id):
        _plays_into_edges(conn, user_id, start, end)
    else:
        everything = streams_in_months(conn, user_id, "", "9999")
        by_month = in_months / max(everything, 1) < BY_MONTH_BELOW
        _months_into_temp(conn, user_id, *keys, by_month)
        for edge_start, edge_end in ((start, local_midnight(months[0], timezone)),
                                     (local_midnight(months[1], timezone), end)):
            if edge_start < edge_end:
                _plays_into_edges(conn, user_id, edge_start, edge_end)
    _edges_into_temp(conn)
    # By month, the whole months' albums are summed already: only the edges' are missing.
    _albums_from(conn, "temp.edge_tracks" if by_month else "temp.period_tracks")


# Where each kind's totals are read from, as table `a`: (table, id column, ms column,
# condition, whether the condition takes the user's id).
Source = tuple[str, str, str, str, bool]
_PERIOD: dict[str, Source] = {kind: (f"temp.period_{kind}s", "id", "ms", "true", False)
                              for kind in _KINDS}
_WHOLE: dict[str, Source] = {
    "track": ("user_tracks", "track_id", "ms_played", "a.user_id = ?", True),
    "artist": ("user_artists", "artist_id", "ms_played", "a.user_id = ?", True),
    "album": ("user_albums", "album_id", "ms_played", "a.user_id = ?", True)}


def _params(source: Source, user_id: int) -> tuple[int, ...]:
    return (user_id,) if source[4] else ()


def _top(conn: sqlite3.Connection, source: Source, user_id: int, metric: str, limit: int
         ) -> list[Totals]:
    table, key, ms, where, _ = source
    # As listening.ranked orders them: the metric, the other one, then the id; played only
    # (a stream of 30 s or more) when ranked by plays.
    order = f"plays DESC, {ms} DESC" if metric == "plays" else f"{ms} DESC, plays DESC"
    played = " AND plays > 0" if metric == "plays" else ""
    return [tuple(row) for row in conn.execute(
        f"SELECT {key}, plays, {ms} FROM {table} a WHERE {where}{played} "
        f"ORDER BY {order}, {key} LIMIT ?", (*_params(source, user_id), limit))]


def _count(conn: sqlite3.Connection, source: Source, user_id: int) -> int:
    table, _, _, where, _ = source
    return conn.execute(f"SELECT count(*) FROM {table} a WHERE {where} AND plays > 0",
                        _params(source, user_id)).fetchone()[0]


def _tuples(conn: sqlite3.Connection, sql: str, params: tuple) -> list[tuple]:
    cursor = conn.cursor()
    # Plain tuples: thousands of rows, and sqlite3.Row costs more to make.
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


def summed(conn: sqlite3.Connection, user_id: int, whole: bool, limit: int = TOP) -> Summed:
    """Counts and tops with names of what `fill` summed last.

    `whole`: of the whole history, from the per-user rollups (nothing to fill).
    """
    sources = _WHOLE if whole else _PERIOD
    tops, counts = {}, {}
    for kind in _KINDS:
        source = sources[kind]
        counts[kind] = _count(conn, source, user_id)
        tops[kind] = named_rankings(conn, kind, {
            metric: _top(conn, source, user_id, metric, limit) for metric in METRICS})
    return Summed(counts, tops)


def genre_weights(conn: sqlite3.Connection, user_id: int, whole: bool
                  ) -> tuple[list[tuple[str, float, float]], int, int]:
    """(genre, plays, minutes) of the summed totals, then plays of artists with genres, all.

    An artist with three genres gives each a third, so shares add up to the whole.
    """
    table, key, ms, where, _ = source = (_WHOLE if whole else _PERIOD)["artist"]
    params = _params(source, user_id)
    weights = _tuples(
        conn, f"""SELECT g.name, sum(a.plays * 1.0 / n.genres), sum(a.{ms} / 60000.0 / n.genres)
                  FROM {table} a JOIN artist_genres ag ON ag.artist_id = a.{key}
                  JOIN genres g ON g.id = ag.genre_id
                  JOIN (SELECT artist_id, count(*) AS genres FROM artist_genres
                        GROUP BY artist_id) n ON n.artist_id = a.{key}
                  WHERE {where} GROUP BY g.name""", params)
    covered, total = conn.execute(
        f"""SELECT coalesce(sum(a.plays * EXISTS (SELECT 1 FROM artist_genres ag
                                                  WHERE ag.artist_id = a.{key})), 0),
                   coalesce(sum(a.plays), 0) FROM {table} a WHERE {where}""",
        params).fetchone()
    return weights, covered, total


@dataclass(frozen=True)
class Discoveries:
    """Artists first heard in a period: how many a month, their time, the most played."""

    per_month: list[int]
    count: int
    new_ms: int
    total_ms: int
    top: list[Ranked]


def discoveries(conn: sqlite3.Connection, user_id: int, whole: bool, first: date, last: date,
                timezone: str, limit: int = TOP) -> Discoveries:
    """Artists of the summed totals first played in the days first..last, by local month.

    `per_month` follows the months of periods.month_starts(first, last).
    """
    table, key, ms, where, _ = source = (_WHOLE if whole else _PERIOD)["artist"]
    params = _params(source, user_id)
    total_ms = conn.execute(f"SELECT coalesce(sum({ms}), 0) FROM {table} a WHERE {where}",
                            params).fetchone()[0]
    months = month_starts(first, last)
    # Where each local month begins and ends: a first play finds its month by the index.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS discovery_months "
                 "(start INTEGER PRIMARY KEY, month INTEGER NOT NULL)")
    conn.execute("DELETE FROM temp.discovery_months")
    conn.executemany("INSERT INTO temp.discovery_months VALUES (?, ?)",
                     [(local_midnight(day, timezone), i) for i, day in enumerate(months)])
    start = local_midnight(first, timezone)
    end = local_midnight(last + timedelta(days=1), timezone)
    new = f"""FROM {table} a JOIN user_artists ua ON ua.user_id = ? AND ua.artist_id = a.{key}
              WHERE {where} AND ua.first_played >= ? AND ua.first_played < ?"""
    bounds = (user_id, *params, start, end)
    per_month = [0] * len(months)
    count = new_ms = 0
    for month, n, played_ms in conn.execute(
            f"""SELECT (SELECT m.month FROM temp.discovery_months m
                        WHERE m.start <= ua.first_played ORDER BY m.start DESC LIMIT 1) AS i,
                       count(*), sum(a.{ms}) {new} GROUP BY i""", bounds):
        per_month[month] += n
        count += n
        new_ms += played_ms
    # As listening.ranked orders them: plays, then minutes, then the id.
    top = _tuples(conn, f"SELECT a.{key}, a.plays, a.{ms} {new} AND a.plays > 0 "
                        f"ORDER BY a.plays DESC, a.{ms} DESC, a.{key} LIMIT ?", (*bounds, limit))
    return Discoveries(per_month, count, new_ms, total_ms, named(conn, "artist", top))
