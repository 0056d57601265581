"""Playlists made from the user's own plays: the sources, their queries, the preview, and
reading the records of what was made on Spotify.

Every source reads only the signed-in user's plays (or their rollups), returns each track at
most once and only tracks with a Spotify id, since only those can be added to a playlist.
Making a playlist on Spotify (reserving it, adding its tracks, retrying, renaming, deleting)
is in mtm.playlist_workflow; `playlist_tracks` keeps the chosen tracks in order and
`tracks_added` how many of them are on Spotify.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mtm import history, preferences
from mtm.cache import Cache
from mtm.identity import PLAY_MS
from mtm.periods import local_midnight, months_before

DEFAULT_COUNT = 50
MAX_COUNT = 200
NAME_MAX = 100
DEFAULT_SOURCE = "current_rotation"
# A forgotten gem was played at least this often, then not for this many months.
GEM_MIN_PLAYS = 3
GEM_QUIET_MONTHS = 6
DISCOVERY_DAYS = 30
ROTATION_DAYS = 28
HISTORY_LIMIT = 100
_KEY = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SQLITE_MAX = 2**63 - 1


@dataclass(frozen=True)
class Source:
    """A kind of playlist the app can make: how it is named and explained."""

    key: str
    label: str
    description: str
    empty_hint: str
    needs_year: bool = False


SOURCES: dict[str, Source] = {source.key: source for source in (
    Source("forgotten_gems", "Forgotten Gems",
           f"Tracks you played often that you have not played in the last "
           f"{GEM_QUIET_MONTHS} months.",
           f"A track becomes a forgotten gem once you have played it at least {GEM_MIN_PLAYS} "
           f"times and then not for {GEM_QUIET_MONTHS} months, so this needs a history that "
           f"reaches back further than that. Importing a Spotify privacy export brings in your "
           f"older listening."),
    Source("recent_discoveries", "Recent Discoveries",
           f"Tracks you played for the first time in the last {DISCOVERY_DAYS} days.",
           f"Nothing you played in the last {DISCOVERY_DAYS} days was new to you. Play something "
           f"new on Spotify and it shows up here after the next sync."),
    Source("current_rotation", "Current Rotation",
           "Your most-played tracks of the last 4 weeks.",
           "You have not played anything in the last 4 weeks. Play some music on Spotify and it "
           "shows up here after the next sync."),
    Source("on_this_day", "On This Day",
           "Tracks you played on today's date in earlier years.",
           "You have no plays on today's date in earlier years yet. Try again another day, or "
           "import your older listening from a Spotify privacy export."),
    Source("year_in_review", "Year in Review",
           "Your most-played tracks of a year you choose.",
           "There are no plays to review for that year yet.", needs_year=True),
)}


@dataclass(frozen=True)
class Candidate:
    """A track a source would put on a playlist, with why it was chosen."""

    track_id: int
    spotify_id: str
    name: str
    artist: str
    plays: int
    detail: str

    @property
    def uri(self) -> str:
        """The Spotify URI that adds this track to a playlist."""
        return f"spotify:track:{self.spotify_id}"


@dataclass(frozen=True)
class Choice:
    """A checked request for a playlist: source, year (year_in_review only), size, name."""

    source: str
    year: int | None = None
    count: int = DEFAULT_COUNT
    name: str = ""


@dataclass(frozen=True)
class Preview:
    """What a choice would create: its name and tracks."""

    source: Source
    year: int | None
    count: int
    name: str
    tracks: list[Candidate]


@dataclass(frozen=True)
class Playlist:
    """A playlist the app made (or is making) for the user."""

    id: int
    name: str
    source: str
    year: int | None
    spotify_id: str | None
    url: str | None
    track_count: int
    tracks_added: int
    last_error: str | None
    created_at: int
    created_on: date
    deleted: bool

    @property
    def source_label(self) -> str:
        """The source as the history list names it."""
        source = SOURCES.get(self.source)
        label = source.label if source else self.source.replace("_", " ").title()
        return f"{label} {self.year}" if self.year else label

    @property
    def created(self) -> bool:
        """True once Spotify has made the playlist."""
        return self.spotify_id is not None

    @property
    def complete(self) -> bool:
        """True once every chosen track is on the Spotify playlist."""
        return self.created and self.tracks_added >= self.track_count

    @property
    def missing(self) -> int:
        """How many chosen tracks are not on Spotify yet."""
        return max(0, self.track_count - self.tracks_added)


@dataclass(frozen=True)
class PlaylistTrack:
    """One chosen track of a playlist and whether it is on Spotify yet."""

    position: int
    name: str
    artist: str
    spotify_id: str
    added: bool


@dataclass(frozen=True)
class Overview:
    """Everything the Playlists page shows besides the form's own values."""

    years: list[int]
    preview: Preview | None
    playlists: list[Playlist]


# --- choosing ---------------------------------------------------------------------------


def known_source(key: str | None) -> str:
    """`key` when it names a source, else the default source."""
    return key if key in SOURCES else DEFAULT_SOURCE


def valid_key(key: str | None) -> bool:
    """True for an idempotency key as the form makes them (a UUID)."""
    return bool(key) and _KEY.match(key) is not None


def name_problem(name: str, *, required: bool = False) -> str | None:
    """Why a (stripped) playlist name cannot be used, or None when it can."""
    if not name:
        return "Enter a name." if required else None
    if len(name) > NAME_MAX:
        return f"Use at most {NAME_MAX} characters (this name has {len(name)})."
    if _CONTROL.search(name):
        return "A name cannot contain line breaks or other control characters."
    return None


def parse_choice(raw: Mapping[str, str], years: list[int]
                 ) -> tuple[Choice | None, dict[str, str], dict[str, str]]:
    """Check the form's fields: (choice or None, values to show again, errors by field)."""
    values = {field: str(raw.get(field) or "").strip() for field in ("source", "year", "count",
                                                                      "name")}
    errors: dict[str, str] = {}
    source = values["source"]
    if source not in SOURCES:
        errors["source"] = "Choose one of the sources listed."
    year = None
    if source in SOURCES and SOURCES[source].needs_year and years:
        # Without any plays there is no year to offer; the empty preview says so instead.
        if not values["year"]:
            errors["year"] = "Choose the year to review."
        elif not values["year"].isdigit() or int(values["year"]) not in years:
            errors["year"] = "Choose one of the years you have plays in."
        else:
            year = int(values["year"])
    count = DEFAULT_COUNT
    if not values["count"]:
        values["count"] = str(DEFAULT_COUNT)
    elif (not values["count"].isdigit() or len(values["count"]) > 3
            or not 1 <= int(values["count"]) <= MAX_COUNT):
        errors["count"] = f"Enter a whole number from 1 to {MAX_COUNT}."
    else:
        count = int(values["count"])
    problem = name_problem(values["name"])
    if problem:
        errors["name"] = problem
    if errors:
        return None, values, errors
    return Choice(source, year, count, values["name"]), values, errors


def initial_choice(conn: sqlite3.Connection, user_id: int, source: str | None = None,
                   year: int | None = None) -> Choice:
    """The form's starting point: the given or preferred source, the latest year with plays."""
    source = known_source(source or preferences.load(conn, user_id).playlist_source)
    if SOURCES[source].needs_year and year is None:
        years = years_with_plays(conn, user_id)
        year = years[0] if years else None
    return Choice(source, year if SOURCES[source].needs_year else None)


def values_of(choice: Choice) -> dict[str, str]:
    """A choice as the form's field values."""
    return {"source": choice.source, "year": "" if choice.year is None else str(choice.year),
            "count": str(choice.count), "name": choice.name}


def default_name(source: str, today: date, year: int | None = None) -> str:
    """The name a playlist gets when the form leaves it empty."""
    label = SOURCES[source].label
    if source == "year_in_review":
        return f"{label} - {year}" if year else label
    if source == "on_this_day":
        return f"{label} - {today.day} {today:%B}"
    return f"{label} - {today:%B %Y}"


def description(source: str) -> str:
    """The description the playlist gets on Spotify."""
    return f"{SOURCES[source].description} Made by Music Time Machine."


# --- sources ----------------------------------------------------------------------------


def _now(now: int | float | None) -> int:
    return int(time.time()) if now is None else int(now)


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_COUNT:
        raise ValueError(f"limit must be between 1 and {MAX_COUNT}")
    return limit


def _plays(n: int) -> str:
    return f"{n} play{'s' if n != 1 else ''}"


def _day(ts: int, zone: ZoneInfo) -> str:
    moment = datetime.fromtimestamp(ts, zone)
    return f"{moment.day} {moment:%b}"


def _zone(conn: sqlite3.Connection, user_id: int) -> tuple[str, ZoneInfo]:
    timezone = preferences.load(conn, user_id).timezone
    return timezone, ZoneInfo(timezone)


def forgotten_gems(conn: sqlite3.Connection, user_id: int, *, limit: int = DEFAULT_COUNT,
                   now: int | None = None) -> list[Candidate]:
    """Tracks played at least GEM_MIN_PLAYS times and not at all in the last 6 months."""
    timezone, zone = _zone(conn, user_id)
    today = datetime.fromtimestamp(_now(now), zone).date()
    cutoff = local_midnight(months_before(today, GEM_QUIET_MONTHS), timezone)
    rows = conn.execute(
        """SELECT ut.track_id, t.spotify_id, t.name, a.name, ut.plays, ut.last_played
           FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
           JOIN artists a ON a.id = t.artist_id
           WHERE ut.user_id = ? AND ut.last_played < ? AND ut.plays >= ?
             AND t.spotify_id IS NOT NULL
           ORDER BY ut.plays DESC, ut.ms_played DESC, ut.track_id LIMIT ?""",
        (user_id, cutoff, GEM_MIN_PLAYS, _check_limit(limit))).fetchall()
    return [Candidate(tid, sid, name, artist, n,
                      f"{_plays(n)}, last in {datetime.fromtimestamp(last, zone):%b %Y}")
            for tid, sid, name, artist, n, last in rows]


def recent_discoveries(conn: sqlite3.Connection, user_id: int, *, limit: int = DEFAULT_COUNT,
                       now: int | None = None) -> list[Candidate]:
    """Tracks first played in the last 30 days, the most played first."""
    _, zone = _zone(conn, user_id)
    end = _now(now)
    rows = conn.execute(
        """SELECT ut.track_id, t.spotify_id, t.name, a.name, ut.plays, ut.first_played
           FROM user_tracks ut JOIN tracks t ON t.id = ut.track_id
           JOIN artists a ON a.id = t.artist_id
           WHERE ut.user_id = ? AND ut.first_played > ? AND ut.first_played <= ?
             AND ut.plays > 0 AND t.spotify_id IS NOT NULL
           ORDER BY ut.plays DESC, ut.first_played DESC, ut.track_id LIMIT ?""",
        (user_id, end - DISCOVERY_DAYS * 86400, end, _check_limit(limit))).fetchall()
    return [Candidate(tid, sid, name, artist, n, f"{_plays(n)} since {_day(first, zone)}")
            for tid, sid, name, artist, n, first in rows]


def _top_between(conn: sqlite3.Connection, user_id: int, start: int, end: int, limit: int
                 ) -> list[tuple[int, str, str, str, int]]:
    """(track, spotify id, name, artist, plays) of the most-played tracks in [start, end)."""
    # Only tracks whose rollup overlaps the range are counted, each through the
    # (user, track, time) index: a year of plays costs a few milliseconds, not a scan.
    # MATERIALIZED keeps SQLite from counting every track twice (filter and sort).
    return conn.execute(
        """WITH counted AS MATERIALIZED (
               SELECT ut.track_id, ut.ms_played,
                      (SELECT count(*) FROM plays p
                       WHERE p.user_id = ut.user_id AND p.track_id = ut.track_id
                         AND p.played_at >= ? AND p.played_at < ?
                         AND p.ms_played >= ?) AS n
               FROM user_tracks ut
               WHERE ut.user_id = ? AND ut.first_played < ? AND ut.last_played >= ?)
           SELECT c.track_id, t.spotify_id, t.name, a.name, c.n
           FROM counted c JOIN tracks t ON t.id = c.track_id JOIN artists a ON a.id = t.artist_id
           WHERE c.n > 0 AND t.spotify_id IS NOT NULL
           ORDER BY c.n DESC, c.ms_played DESC, c.track_id LIMIT ?""",
        (start, end, PLAY_MS, user_id, end, start, _check_limit(limit))).fetchall()


def current_rotation(conn: sqlite3.Connection, user_id: int, *, limit: int = DEFAULT_COUNT,
                     now: int | None = None) -> list[Candidate]:
    """The most-played tracks of the last 4 weeks."""
    end = _now(now) + 1
    rows = _top_between(conn, user_id, end - ROTATION_DAYS * 86400, end, limit)
    return [Candidate(tid, sid, name, artist, n, f"{_plays(n)} in the last 4 weeks")
            for tid, sid, name, artist, n in rows]


def year_in_review(conn: sqlite3.Connection, user_id: int, year: int, *,
                   limit: int = DEFAULT_COUNT) -> list[Candidate]:
    """The most-played tracks of a calendar year in the user's time zone."""
    timezone = preferences.load(conn, user_id).timezone
    if not 1 <= year < 9999:
        return []
    start = local_midnight(date(year, 1, 1), timezone)
    end = local_midnight(date(year + 1, 1, 1), timezone)
    rows = _top_between(conn, user_id, start, end, limit)
    return [Candidate(tid, sid, name, artist, n, f"{_plays(n)} in {year}")
            for tid, sid, name, artist, n in rows]


def on_this_day(conn: sqlite3.Connection, user_id: int, *, limit: int = DEFAULT_COUNT,
                now: int | None = None) -> list[Candidate]:
    """Tracks played on today's local date in earlier years, the most played first."""
    timezone, zone = _zone(conn, user_id)
    today = datetime.fromtimestamp(_now(now), zone).date()
    first = conn.execute("SELECT played_at FROM plays WHERE user_id = ? ORDER BY played_at "
                         "LIMIT 1", (user_id,)).fetchone()
    if first is None:
        return []
    days = []
    for year in range(datetime.fromtimestamp(first[0], zone).year, today.year):
        try:
            day = today.replace(year=year)
        except ValueError:
            continue  # 29 February has no match in other years
        days.append([year, local_midnight(day, timezone),
                     local_midnight(day + timedelta(days=1), timezone)])
    if not days:
        return []
    # The days drive the join (CROSS JOIN fixes the order): one primary-key range per year.
    rows = conn.execute(
        """WITH days AS MATERIALIZED (
               SELECT json_extract(value, '$[0]') AS year, json_extract(value, '$[1]') AS start,
                      json_extract(value, '$[2]') AS stop FROM json_each(?)),
           found AS MATERIALIZED (
               SELECT p.track_id, count(*) AS n, max(p.played_at) AS last,
                      group_concat(DISTINCT d.year) AS years
               FROM days d CROSS JOIN plays p
               ON p.user_id = ? AND p.played_at >= d.start AND p.played_at < d.stop
               WHERE p.counted GROUP BY p.track_id)
           SELECT f.track_id, t.spotify_id, t.name, a.name, f.n, f.years
           FROM found f JOIN tracks t ON t.id = f.track_id JOIN artists a ON a.id = t.artist_id
           WHERE t.spotify_id IS NOT NULL
           ORDER BY f.n DESC, f.last DESC, f.track_id LIMIT ?""",
        (json.dumps(days), user_id, _check_limit(limit))).fetchall()
    return [Candidate(tid, sid, name, artist, n,
                      f"{_plays(n)} on {today.day} {today:%b} in "
                      f"{', '.join(sorted(str(years).split(',')))}")
            for tid, sid, name, artist, n, years in rows]


def years_with_plays(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """The local calendar years the user has plays in, newest first."""
    return [row[0] for row in conn.execute(
        "SELECT DISTINCT CAST(substr(day, 1, 4) AS INTEGER) FROM listening_days "
        "WHERE user_id = ? AND plays > 0 ORDER BY 1 DESC", (user_id,))]


def candidates(conn: sqlite3.Connection, user_id: int, source: str, *, year: int | None = None,
               limit: int = DEFAULT_COUNT, now: int | None = None) -> list[Candidate]:
    """The tracks `source` picks for the user (at most `limit`, each once, all addable)."""
    if source == "forgotten_gems":
        return forgotten_gems(conn, user_id, limit=limit, now=now)
    if source == "recent_discoveries":
        return recent_discoveries(conn, user_id, limit=limit, now=now)
    if source == "current_rotation":
        return current_rotation(conn, user_id, limit=limit, now=now)
    if source == "on_this_day":
        return on_this_day(conn, user_id, limit=limit, now=now)
    if source == "year_in_review":
        return [] if year is None else year_in_review(conn, user_id, year, limit=limit)
    raise ValueError(f"unknown playlist source {source!r}")


def preview(conn: sqlite3.Connection, user_id: int, choice: Choice, *, now: int | None = None,
            cache: Cache | None = None) -> Preview:
    """The name and tracks a choice would create; the tracks from the cache when no play
    changed."""
    timezone, zone = _zone(conn, user_id)
    moment = _now(now)
    today = datetime.fromtimestamp(moment, zone).date()
    # A new play bumps the version, so it shows at once; the minute bounds how long a
    # window's moving edge (the last 4 weeks, 6 months) may lag behind the clock.
    key = ("playlist preview", user_id, history.history_version(conn, user_id), timezone,
           choice.source, choice.year, choice.count, moment // 60)
    tracks = cache.get(key) if cache is not None else None
    if tracks is None:
        tracks = candidates(conn, user_id, choice.source, year=choice.year,
                            limit=choice.count, now=moment)
        if cache is not None:
            cache.put(key, tracks)
    name = choice.name or default_name(choice.source, today, choice.year)
    return Preview(SOURCES[choice.source], choice.year, choice.count, name, tracks)


def overview(conn: sqlite3.Connection, user_id: int, choice: Choice | None, *,
             years: list[int] | None = None, now: int | None = None,
             cache: Cache | None = None) -> Overview:
    """The years for the form, the preview of `choice` (when given) and the history list."""
    return Overview(years if years is not None else years_with_plays(conn, user_id),
                    preview(conn, user_id, choice, now=now, cache=cache) if choice else None,
                    list_playlists(conn, user_id))


# --- records ----------------------------------------------------------------------------

# The columns playlist_of reads, in its order.
COLUMNS = ("id, name, source, year, spotify_id, url, track_count, tracks_added, last_error, "
           "created_at, deleted_at")


def user_zone(conn: sqlite3.Connection, user_id: int) -> ZoneInfo:
    """The user's time zone, in which a playlist's date is shown."""
    return _zone(conn, user_id)[1]


def playlist_of(row: sqlite3.Row, zone: ZoneInfo) -> Playlist:
    """A playlists row (selected with COLUMNS) as a Playlist, its date in `zone`."""
    return Playlist(row["id"], row["name"], row["source"], row["year"], row["spotify_id"],
                    row["url"], row["track_count"], row["tracks_added"], row["last_error"],
                    row["created_at"], datetime.fromtimestamp(row["created_at"], zone).date(),
                    row["deleted_at"] is not None)


def find_by_key(conn: sqlite3.Connection, user_id: int, key: str) -> Playlist | None:
    """The playlist a form's idempotency key reserved, whatever its state."""
    row = conn.execute(f"SELECT {COLUMNS} FROM playlists WHERE user_id = ? "
                       "AND idempotency_key = ?", (user_id, key)).fetchone()
    return playlist_of(row, user_zone(conn, user_id)) if row else None


def get_playlist(conn: sqlite3.Connection, user_id: int, playlist_id: int) -> Playlist | None:
    """One of the user's playlists that exists on Spotify; None for anyone else's."""
    if not 0 < playlist_id <= _SQLITE_MAX:
        return None
    row = conn.execute(
        f"SELECT {COLUMNS} FROM playlists WHERE id = ? AND user_id = ? "
        "AND deleted_at IS NULL AND spotify_id IS NOT NULL", (playlist_id, user_id)).fetchone()
    return playlist_of(row, user_zone(conn, user_id)) if row else None


def list_playlists(conn: sqlite3.Connection, user_id: int, limit: int = HISTORY_LIMIT
                   ) -> list[Playlist]:
    """The user's playlists on Spotify, newest first."""
    zone = user_zone(conn, user_id)
    return [playlist_of(row, zone) for row in conn.execute(
        f"SELECT {COLUMNS} FROM playlists WHERE user_id = ? AND deleted_at IS NULL "
        "AND spotify_id IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT ?",
        (user_id, limit))]


def playlist_tracks(conn: sqlite3.Connection, user_id: int, playlist_id: int
                    ) -> list[PlaylistTrack]:
    """The chosen tracks of one of the user's playlists, in order."""
    return [PlaylistTrack(pos, name, artist, sid, bool(added)) for pos, name, artist, sid, added
            in conn.execute(
                """SELECT pt.position, t.name, a.name, t.spotify_id, pt.position < p.tracks_added
                   FROM playlists p JOIN playlist_tracks pt ON pt.playlist_id = p.id
                   JOIN tracks t ON t.id = pt.track_id JOIN artists a ON a.id = t.artist_id
                   WHERE p.id = ? AND p.user_id = ? ORDER BY pt.position""",
                (playlist_id, user_id))]
