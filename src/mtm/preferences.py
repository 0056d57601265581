"""A user's preferences: validated input, storage, and rollups that follow the time zone."""

from __future__ import annotations

import functools
import sqlite3
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass

from mtm import playlists, rezone
from mtm.db import transaction

WEEK_STARTS: tuple[tuple[int, str], ...] = ((0, "Monday"), (6, "Sunday"))
CHART_METRICS: tuple[tuple[str, str], ...] = (("plays", "Plays"), ("minutes", "Minutes listened"))
# Names zoneinfo finds on some systems that are not places a person lives in.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})
MAX_INPUT = 100


@dataclass(frozen=True)
class Preferences:
    """How a user wants figures shown."""

    timezone: str = "UTC"
    week_start: int = 0
    chart_metric: str = "plays"
    playlist_source: str = "current_rotation"


def playlist_sources() -> tuple[tuple[str, str], ...]:
    """The playlist sources a user can pick as their default (Playlists offers them all)."""
    # Read when asked: playlists reads preferences too, so neither may need the other loaded.
    return tuple((key, source.label) for key, source in playlists.SOURCES.items())


@functools.cache
def timezones() -> tuple[str, ...]:
    """Every IANA time zone name this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones() - _NOT_ZONES))


@functools.cache
def _by_folded_name() -> dict[str, str]:
    return {name.casefold(): name for name in timezones()}


def suggested_timezones() -> tuple[str, ...]:
    """The names offered while typing: places (Area/City) and UTC, not legacy aliases."""
    return tuple(n for n in timezones() if "/" in n and not n.startswith(("Etc/", "SystemV/",
                                                                          "US/"))) + ("UTC",)


def normalize_timezone(raw: str) -> str | None:
    """The canonical spelling of a time zone name (any letter case), or None if unknown."""
    return _by_folded_name().get(raw.strip().casefold())


def parse_form(form: Mapping[str, str]) -> tuple[Preferences | None, dict[str, str]]:
    """Validate the preferences form: (preferences, {}) or (None, {field: error})."""
    errors: dict[str, str] = {}
    raw_zone = (form.get("timezone") or "")[:MAX_INPUT]
    timezone = normalize_timezone(raw_zone) if raw_zone.strip() else None
    if not raw_zone.strip():
        errors["timezone"] = "Choose a time zone, for example Europe/Stockholm."
    elif timezone is None:
        errors["timezone"] = (f"“{raw_zone.strip()}” is not a time zone this app knows. "
                              "Use a name like Europe/Stockholm or America/New_York.")
    raw_week = form.get("week_start") or ""
    week_start = int(raw_week) if raw_week in {str(k) for k, _ in WEEK_STARTS} else None
    if week_start is None:
        errors["week_start"] = "Choose Monday or Sunday."
    metric = form.get("chart_metric") or ""
    if metric not in dict(CHART_METRICS):
        errors["chart_metric"] = "Choose plays or minutes listened."
    source = form.get("playlist_source") or ""
    if source not in dict(playlist_sources()):
        errors["playlist_source"] = "Choose one of the playlist sources listed."
    if errors:
        return None, errors
    return Preferences(timezone, week_start, metric, source), {}


def load(conn: sqlite3.Connection, user_id: int) -> Preferences:
    """The user's stored preferences (the defaults when none are stored)."""
    row = conn.execute(
        "SELECT timezone, week_start, chart_metric, playlist_source FROM preferences "
        "WHERE user_id = ?", (user_id,)).fetchone()
    return Preferences(*row) if row else Preferences()


def save(conn: sqlite3.Connection, user_id: int, prefs: Preferences, *,
         recount: bool = True) -> bool:
    """Store preferences; True if the time zone changed.

    A new zone is stored only once the local-day rollups are recounted in it (mtm.rezone,
    in short transactions), so no page ever reads days of one zone labelled with another:
    at once here, or by a background job when `recount` is False.
    """
    with transaction(conn):
        before = load(conn, user_id)
        conn.execute(
            """INSERT INTO preferences (user_id, timezone, week_start, chart_metric,
                                        playlist_source) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT(user_id) DO UPDATE SET week_start = excluded.week_start,
                   chart_metric = excluded.chart_metric,
                   playlist_source = excluded.playlist_source""",
            (user_id, before.timezone, prefs.week_start, prefs.chart_metric,
             prefs.playlist_source))
    changed = before.timezone != prefs.timezone
    if not changed and rezone.pending(conn, user_id) not in (None, prefs.timezone):
        # Back to the zone in use: a change to another one, cut short, is given up.
        rezone.cancel(conn, user_id)
    if changed and recount:
        rezone.change(conn, user_id, prefs.timezone)
    return changed
