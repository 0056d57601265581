"""Hiding rules: plays left out of every figure, chart and playlist without deleting them.

A rule names a track, an album, an artist (plays credited to it first, as every figure
counts them) or a playing context (a playlist, an album or artist played as a whole), and
optionally only the plays between two local dates: one night a track played on repeat. The
plays a rule matches move from `plays` to `hidden_plays` and leave the rollups, so every
reader skips them without knowing that rules exist; a new play that matches is stored hidden
as it arrives (mtm.history). Removing the rule moves its plays back at once.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from mtm import history, periods, preferences, rezone
from mtm.db import breathe, transaction
from mtm.identity import PLAY_MS

KINDS = ("track", "album", "artist", "context")
# Contexts a play can come from; `collection` is the user's Liked Songs.
CONTEXT_KINDS = ("playlist", "album", "artist", "show")
# Spotify ids are 22 base-62 characters.
_URI = re.compile(r"spotify:(playlist|album|artist|show):([A-Za-z0-9]{22})")
_LINK = re.compile(r"https?://open\.spotify\.com/(?:intl-[a-z]{2}(?:-[a-z]{2})?/)?"
                   r"(playlist|album|artist|show)/([A-Za-z0-9]{22})(?:[/?#].*)?")
_COLLECTION = re.compile(r"spotify:user:[A-Za-z0-9._-]{1,64}:collection")
# How far back the page looks for the contexts played most (one year of plays, by time).
CONTEXT_DAYS = 365
TOP_CONTEXTS = 8
_FOREVER = 2**62


class HideError(ValueError):
    """A rule that cannot be added or removed; `message` is safe to show the user."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(frozen=True)
class RuleIn:
    """A rule as asked for: what to hide, and optionally which local days."""

    kind: str
    target_id: int | None = None
    context_uri: str | None = None
    first: date | None = None
    last: date | None = None


@dataclass(frozen=True)
class Rule:
    """A stored rule, what it names and how much it hides now."""

    id: int
    kind: str
    target_id: int | None
    context_uri: str | None
    starts_at: int | None
    ends_at: int | None
    created_at: int
    name: str
    detail: str
    streams: int
    plays: int
    ms: int

    @property
    def minutes(self) -> int:
        """Minutes of the hidden streams."""
        return self.ms // 60000

    def days(self, timezone: str) -> str | None:
        """The local days it is limited to ("3 Mar 2025 – 4 Mar 2025"), or None for all."""
        if self.starts_at is None and self.ends_at is None:
            return None
        zone = ZoneInfo(timezone)
        first = ("the start" if self.starts_at is None else
                 datetime.fromtimestamp(self.starts_at, zone).strftime("%-d %b %Y"))
        last = ("now" if self.ends_at is None else
                datetime.fromtimestamp(self.ends_at - 1, zone).strftime("%-d %b %Y"))
        return first if first == last else f"{first} – {last}"


@dataclass(frozen=True)
class Context:
    """A playing context of the user's recent plays, with how often they played from it."""

    uri: str
    name: str
    streams: int
    plays: int
    hidden: bool

    @property
    def kind(self) -> str:
        """playlist, album, artist, show or collection."""
        return "collection" if self.uri.endswith(":collection") else self.uri.split(":")[1]

    @property
    def spotify_id(self) -> str | None:
        """The id an "Open in Spotify" link needs (None for Liked Songs)."""
        return None if self.kind == "collection" else self.uri.split(":")[2]


@dataclass(frozen=True)
class Overview:
    """The hidden plays page: every rule, and the contexts played from most this year."""

    rules: list[Rule]
    contexts: list[Context]
    timezone: str

    @property
    def streams(self) -> int:
        """Streams hidden by all rules."""
        return sum(rule.streams for rule in self.rules)


@dataclass(frozen=True)
class Change:
    """A rule added or removed: which, what it names, and how many plays moved."""

    rule_id: int
    name: str
    streams: int
    # Of the streams, those of 30 s or more: plays, as every page counts them.
    plays: int = 0
    existed: bool = False

    @property
    def words(self) -> str:
        """How much moved, as the message after it says it: "208 plays and 25 short streams"."""
        short = self.streams - self.plays
        text = f"{self.plays:,} play{'s' if self.plays != 1 else ''}"
        return text + (f" and {short:,} short stream{'s' if short != 1 else ''}" if short else "")


# --- reading the form ------------------------------------------------------------------


def parse_context(text: str) -> str | None:
    """A Spotify URI or open.spotify.com link of a playing context, as a URI; None if not one."""
    text = text.strip()
    if _COLLECTION.fullmatch(text):
        return text
    found = _URI.fullmatch(text) or _LINK.fullmatch(text)
    return f"spotify:{found[1]}:{found[2]}" if found else None


def parse_form(form: Mapping[str, str], today: date) -> RuleIn:
    """The rule a form asks for; HideError names the field that is wrong."""
    kind = form.get("kind", "")
    if kind not in KINDS:
        raise HideError("Choose a track, album, artist or playlist to hide.")
    first = _day(form.get("from", ""), "from", today)
    last = _day(form.get("to", ""), "to", today)
    if first and last and first > last:
        raise HideError("The first day comes after the last one.", field="to")
    if kind == "context":
        uri = parse_context(form.get("context", ""))
        if uri is None:
            raise HideError("Paste the Spotify link or URI of a playlist, album, artist or "
                            "podcast, like https://open.spotify.com/playlist/… .",
                            field="context")
        return RuleIn(kind, context_uri=uri, first=first, last=last)
    target = form.get("target", "")
    if not target.isdigit() or len(target) > 18:
        raise HideError(f"There is no {kind} with that number in your history.", 404)
    return RuleIn(kind, target_id=int(target), first=first, last=last)


def _day(raw: str, field: str, today: date) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise HideError(f"“{raw[:20]}” is not a date: use the form 2025-03-31.",
                        field=field) from None
    if not periods.EARLIEST <= day <= today:
        raise HideError(f"Choose a day from {periods.EARLIEST.year} to today.", field=field)
    return day


# --- which plays a rule matches --------------------------------------------------------


def _matching(rule_kind: str, target_id: int | None, uri: str | None, starts: int | None,
              ends: int | None) -> tuple[str, tuple]:
    """The WHERE clause (on plays or hidden_plays as `p`) of one rule, with its parameters.

    One condition per kind, so each reads its own index.
    """
    condition = {"track": "p.track_id = ?", "artist": "p.artist_id = ?",
                 "album": "p.track_id IN (SELECT id FROM tracks WHERE album_id = ?)",
                 "context": "p.context_uri = ?"}[rule_kind]
    window = "p.played_at >= ? AND p.played_at < ?"
    return (f"p.user_id = ? AND {condition} AND {window}",
            (target_id if uri is None else uri, starts or 0, ends or _FOREVER))


# Plays moved per transaction when a rule is added or removed, so another write never waits
# long behind a rule hiding a big share of the history.
CHUNK = 2_500


def _move_to_incoming(conn: sqlite3.Connection, user_id: int, table: str, where: str,
                      params: tuple, limit: int | None = None) -> int:
    """Copy the plays of `table` that `where` matches (at most `limit` of them) into
    incoming_plays; how many."""
    if limit is not None:
        # The chunk is chosen once, so the local times and the copy read the same plays.
        conn.execute("DROP TABLE IF EXISTS temp.chunk_plays")
        conn.execute(f"CREATE TEMP TABLE chunk_plays AS SELECT p.played_at, p.record_key "
                     f"FROM {table} p WHERE {where} LIMIT ?", (user_id, *params, limit))
        where = (f"{where} AND (p.played_at, p.record_key) IN "
                 "(SELECT played_at, record_key FROM temp.chunk_plays)")
    history.fill_local_times(conn, user_id, f"SELECT DISTINCT p.played_at / 900 FROM {table} p "
                             f"WHERE {where}", (user_id, *params))
    conn.execute(history.INCOMING)
    conn.execute("DELETE FROM incoming_plays")
    return conn.execute(
        f"""INSERT INTO incoming_plays ({history.INCOMING_COLUMNS}, import_id)
            SELECT p.played_at, p.record_key, p.track_id, p.artist_id, p.ms_played, p.source,
                   p.context_uri, p.skipped, lt.day, lt.hour, lt.weekday, p.import_id
            FROM {table} p JOIN temp.local_times lt ON lt.bucket = p.played_at / 900
            WHERE {where}""", (user_id, *params)).rowcount


def _incoming_plays(conn: sqlite3.Connection) -> int:
    """Of the streams in incoming_plays, how many count as plays."""
    return conn.execute("SELECT coalesce(sum(ms_played >= ?), 0) FROM incoming_plays",
                        (PLAY_MS,)).fetchone()[0]


def _delete_incoming_from(conn: sqlite3.Connection, user_id: int, table: str) -> None:
    conn.executemany(f"DELETE FROM {table} WHERE user_id = ? AND played_at = ? AND record_key = ?",
                     [(user_id, at, key) for at, key in conn.execute(
                         "SELECT played_at, record_key FROM incoming_plays")])


# --- adding and removing ---------------------------------------------------------------


def _known(conn: sqlite3.Connection, user_id: int, kind: str, target_id: int) -> str | None:
    """The name of a track, album or artist in the user's history (hidden or not), or None."""
    if kind == "track":
        sql = ("SELECT name FROM tracks WHERE id = ? AND (EXISTS (SELECT 1 FROM user_tracks "
               "WHERE user_id = ? AND track_id = tracks.id) OR EXISTS (SELECT 1 FROM "
               "hidden_plays WHERE user_id = ? AND track_id = tracks.id))")
    elif kind == "artist":
        sql = ("SELECT name FROM artists WHERE id = ? AND (EXISTS (SELECT 1 FROM user_artists "
               "WHERE user_id = ? AND artist_id = artists.id) OR EXISTS (SELECT 1 FROM "
               "hidden_plays WHERE user_id = ? AND artist_id = artists.id))")
    else:
        sql = ("SELECT name FROM albums WHERE id = ? AND EXISTS (SELECT 1 FROM tracks t "
               "WHERE t.album_id = albums.id AND (EXISTS (SELECT 1 FROM user_tracks WHERE "
               "user_id = ? AND track_id = t.id) OR EXISTS (SELECT 1 FROM hidden_plays "
               "WHERE user_id = ? AND track_id = t.id)))")
    row = conn.execute(sql, (target_id, user_id, user_id)).fetchone()
    return row[0] if row else None


def add_from_form(conn: sqlite3.Connection, user_id: int, form: Mapping[str, str],
                  now: int | None = None) -> Change:
    """Read a hide form (dates checked against the user's today) and add its rule."""
    timezone = preferences.load(conn, user_id).timezone
    moment = int(now if now is not None else time.time())
    today = datetime.fromtimestamp(moment, ZoneInfo(timezone)).date()
    return add(conn, user_id, parse_form(form, today), moment)


def _not_while_months_move(conn: sqlite3.Connection, user_id: int) -> None:
    if rezone.months_moving(conn, user_id):
        raise HideError("Your time zone is being changed right now; nothing was hidden or "
                        "shown. Try again in a few seconds.", 409)


def add(conn: sqlite3.Connection, user_id: int, wanted: RuleIn, now: int | None = None
        ) -> Change:
    """Store a rule, then hide the plays it matches a chunk at a time."""
    _not_while_months_move(conn, user_id)
    with transaction(conn):
        timezone = preferences.load(conn, user_id).timezone
        if wanted.kind == "context":
            name = context_name(conn, user_id, wanted.context_uri or "")
        else:
            assert wanted.target_id is not None
            found = _known(conn, user_id, wanted.kind, wanted.target_id)
            if found is None:
                raise HideError(f"There is no {wanted.kind} with that number in your history.",
                                404)
            name = found
        starts = None if wanted.first is None else periods.local_midnight(wanted.first,
                                                                           timezone)
        ends = None if wanted.last is None else periods.local_midnight(
            wanted.last + timedelta(days=1), timezone)
        row = conn.execute(
            """INSERT INTO hide_rules (user_id, kind, target_id, context_uri, starts_at,
                                       ends_at, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id""",
            (user_id, wanted.kind, wanted.target_id, wanted.context_uri, starts, ends,
             int(now if now is not None else time.time()))).fetchone()
        existed = row is None
        if existed:
            row = conn.execute(
                """SELECT id FROM hide_rules WHERE user_id = ? AND kind = ?
                   AND coalesce(target_id, context_uri) = ? AND coalesce(starts_at, -1) = ?
                   AND coalesce(ends_at, -1) = ?""",
                (user_id, wanted.kind, wanted.target_id or wanted.context_uri,
                 -1 if starts is None else starts, -1 if ends is None else ends)).fetchone()
        else:
            # The rule changes what every page shows, even before it hides anything.
            history.bump_version(conn, user_id)
    where, params = _matching(wanted.kind, wanted.target_id, wanted.context_uri, starts, ends)
    # An existing rule has nothing left to hide, unless a crash cut its hiding short.
    moved, counted = _hide_matching(conn, user_id, row[0], where, params)
    return Change(row[0], name, moved, counted, existed=existed)


def _hide_matching(conn: sqlite3.Connection, user_id: int, rule_id: int, where: str,
                   params: tuple) -> tuple[int, int]:
    """Move the plays a rule matches to hidden_plays a chunk at a time, each chunk and its
    rollups in a transaction of its own; (streams, plays) moved."""
    # Which plays it matches is read once, outside any write transaction: a rule without an
    # index of its own (a playlist) scans the plays, and a scan per chunk held the lock.
    conn.execute("DROP TABLE IF EXISTS temp.rule_plays")
    conn.execute(f"CREATE TEMP TABLE rule_plays AS SELECT p.played_at, p.record_key "
                 f"FROM plays p WHERE {where}", (user_id, *params))
    next_chunk = ("p.user_id = ? AND (p.played_at, p.record_key) IN (SELECT played_at, "
                  f"record_key FROM temp.rule_plays ORDER BY rowid LIMIT {int(CHUNK)})")
    moved = counted = 0
    while True:
        started = time.monotonic()
        with transaction(conn):
            chunk = _move_to_incoming(conn, user_id, "plays", next_chunk, ())
            conn.execute("DELETE FROM temp.rule_plays WHERE rowid IN (SELECT rowid FROM "
                         "temp.rule_plays ORDER BY rowid LIMIT ?)", (CHUNK,))
            left = conn.execute("SELECT count(*) FROM temp.rule_plays").fetchone()[0]
            if chunk:
                counted += _incoming_plays(conn)
                conn.execute(
                    """INSERT INTO hidden_plays (user_id, played_at, record_key, track_id,
                            artist_id, ms_played, source, context_uri, skipped, import_id,
                            rule_id)
                        SELECT ?, played_at, record_key, track_id, artist_id, ms_played,
                               source, context_uri, skipped, import_id, ? FROM incoming_plays
                        ORDER BY played_at, record_key""", (user_id, rule_id))
                _delete_incoming_from(conn, user_id, "plays")
                history.roll_incoming(conn, user_id, -1)
                history.settle_removed(conn, user_id)
                conn.execute("DELETE FROM incoming_plays")
                history.bump_version(conn, user_id)
        moved += chunk
        if not left:
            conn.execute("DROP TABLE temp.rule_plays")
            return moved, counted
        breathe(time.monotonic() - started)


def remove(conn: sqlite3.Connection, user_id: int, rule_id: int) -> Change | None:
    """Delete a rule and count again the plays no other rule hides, a chunk at a time;
    None if not the user's."""
    _not_while_months_move(conn, user_id)
    with transaction(conn):
        owned = rules(conn, user_id)
        rule = next((r for r in owned if r.id == rule_id), None)
        if rule is None:
            return None
        # From now on it hides nothing new, so the plays moved back stay counted.
        conn.execute("UPDATE hide_rules SET removing = 1 WHERE id = ?", (rule_id,))
        if len(owned) > 1:
            # A play another rule matches stays hidden, by that rule.
            other = history.RULE_OF.format(
                p="hidden_plays", others="AND r.id <> ?",
                album="(SELECT album_id FROM tracks WHERE id = hidden_plays.track_id)")
            conn.execute(f"UPDATE hidden_plays SET rule_id = {other} "
                         f"WHERE rule_id = ? AND {other} IS NOT NULL",
                         (user_id, rule_id, rule_id, user_id, rule_id))
    moved = counted = 0
    while True:
        started = time.monotonic()
        with transaction(conn):
            chunk = _move_to_incoming(conn, user_id, "hidden_plays",
                                      "p.user_id = ? AND p.rule_id = ?", (rule_id,), CHUNK)
            counted += _incoming_plays(conn)
            _delete_incoming_from(conn, user_id, "hidden_plays")
            if chunk:
                history.apply_incoming(conn, user_id)
            if chunk < CHUNK:
                conn.execute("DELETE FROM hide_rules WHERE id = ?", (rule_id,))
            history.bump_version(conn, user_id)
        moved += chunk
        if chunk < CHUNK:
            return Change(rule_id, rule.name, moved, counted)
        breathe(time.monotonic() - started)


# --- reading ---------------------------------------------------------------------------


def context_name(conn: sqlite3.Connection, user_id: int, uri: str) -> str:
    """A context as the user knows it: the album's, artist's or their playlist's name."""
    if uri.endswith(":collection"):
        return "Your Liked Songs"
    kind, ident = uri.split(":")[1:3]
    table = {"album": "albums", "artist": "artists"}.get(kind)
    row = None
    if table:
        row = conn.execute(f"SELECT name FROM {table} WHERE spotify_id = ?", (ident,)).fetchone()
    elif kind == "playlist":
        row = conn.execute("SELECT name FROM playlists WHERE user_id = ? AND spotify_id = ?",
                           (user_id, ident)).fetchone()
    if row:
        return row[0]
    return f"{'Podcast' if kind == 'show' else kind.title()} {ident}"


def _names(conn: sqlite3.Connection, user_id: int, kind: str, target_id: int | None,
           uri: str | None) -> tuple[str, str]:
    if kind == "context":
        return context_name(conn, user_id, uri or ""), "Playing context"
    sql = {"track": "SELECT t.name, a.name FROM tracks t JOIN artists a ON a.id = t.artist_id "
                    "WHERE t.id = ?",
           "album": "SELECT al.name, coalesce(a.name, '') FROM albums al "
                    "LEFT JOIN artists a ON a.id = al.artist_id WHERE al.id = ?",
           "artist": "SELECT name, '' FROM artists WHERE id = ?"}[kind]
    row = conn.execute(sql, (target_id,)).fetchone()
    return (row[0], row[1]) if row else (f"{kind.title()} {target_id}", "")


def rules(conn: sqlite3.Connection, user_id: int) -> list[Rule]:
    """The user's rules, newest first, each with the streams, plays and ms it hides."""
    counts = {rule: (streams, plays, ms) for rule, streams, plays, ms in conn.execute(
        """SELECT rule_id, count(*), coalesce(sum(counted), 0),
                  coalesce(sum(ms_played), 0)
           FROM hidden_plays WHERE rule_id IN (SELECT id FROM hide_rules WHERE user_id = ?)
           GROUP BY rule_id""", (user_id,))}
    found = []
    for row in conn.execute(
            """SELECT id, kind, target_id, context_uri, starts_at, ends_at, created_at
               FROM hide_rules WHERE user_id = ? ORDER BY created_at DESC, id DESC""",
            (user_id,)).fetchall():
        name, detail = _names(conn, user_id, row[1], row[2], row[3])
        found.append(Rule(*row, name, detail, *counts.get(row[0], (0, 0, 0))))
    return found


def contexts(conn: sqlite3.Connection, user_id: int, since: int) -> list[Context]:
    """The contexts the user played from most since `since` (UTC seconds), hidden ones too."""
    hidden = {r[0] for r in conn.execute(
        "SELECT context_uri FROM hide_rules WHERE user_id = ? AND kind = 'context' "
        "AND starts_at IS NULL AND ends_at IS NULL", (user_id,))}
    rows = conn.execute(
        """SELECT context_uri, count(*), sum(counted) FROM plays
           WHERE user_id = ? AND played_at >= ? AND context_uri IS NOT NULL
           GROUP BY context_uri ORDER BY 3 DESC, 1 LIMIT ?""",
        (user_id, since, TOP_CONTEXTS)).fetchall()
    return [Context(uri, context_name(conn, user_id, uri), streams, plays, uri in hidden)
            for uri, streams, plays in rows]


def overview(conn: sqlite3.Connection, user_id: int, now: int | None = None) -> Overview:
    """Everything the hidden plays page shows."""
    moment = int(now if now is not None else time.time())
    return Overview(rules(conn, user_id), contexts(conn, user_id, moment - CONTEXT_DAYS * 86400),
                    preferences.load(conn, user_id).timezone)


def hidden_name(conn: sqlite3.Connection, user_id: int, kind: str, target_id: int
                ) -> str | None:
    """The name of a track, album or artist whose plays are all hidden; None otherwise."""
    column = {"track": "track_id", "artist": "artist_id"}.get(kind)
    if column:
        hit = conn.execute(f"SELECT 1 FROM hidden_plays WHERE user_id = ? AND {column} = ? "
                           "LIMIT 1", (user_id, target_id)).fetchone()
    else:
        hit = conn.execute("SELECT 1 FROM hidden_plays WHERE user_id = ? AND track_id IN "
                           "(SELECT id FROM tracks WHERE album_id = ?) LIMIT 1",
                           (user_id, target_id)).fetchone()
    return _names(conn, user_id, kind, target_id, None)[0] if hit else None
