"""A year (or month) in review: the period's analytics, plus its records and discoveries.

The figures are the Analytics page's for the same period (one read side, one cache); this
module adds what only a review asks for: the biggest day, the longest run of days, the
artists first heard in it, and a shareable image holding only the parts the user picks.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from xml.sax.saxutils import escape

from mtm import analytics, history, listening, preferences
from mtm.analytics import Analytics, Refused
from mtm.cache import Cache
from mtm.listening import Ranked
from mtm.periods import local_today

TOP = 5
# What the shareable image may hold; the user ticks which. Nothing else about them is on it.
SHARE_PARTS = (("minutes", "Minutes listened"), ("artists", "Top artists"),
               ("tracks", "Top tracks"), ("albums", "Top albums"), ("genres", "Top genres"))
DEFAULT_SHARE = ("minutes", "artists")


@dataclass(frozen=True)
class Review:
    """Everything a review shows."""

    data: Analytics
    biggest_day: tuple[date, int, int] | None
    longest_streak: tuple[int, date | None, date | None]
    discoveries: list[Ranked]

    @property
    def title(self) -> str:
        """The tab's title (without the site name)."""
        return f"{self.data.period.label} in review"

    @property
    def previous_query(self) -> dict[str, str] | None:
        """The review of the period before, as its URL names it."""
        before = self.data.earlier
        return before.query if before else None

    @property
    def next_query(self) -> dict[str, str] | None:
        """The review of the period after, when it has begun."""
        after = self.data.later
        return after.query if after else None


def parse_share(raw: list[str] | None) -> tuple[str, ...]:
    """The parts the user chose for the image, in the image's order; unknown ones dropped."""
    chosen = set(raw or ())
    return tuple(key for key, _ in SHARE_PARTS if key in chosen)


def _period_query(query: Mapping[str, str]) -> dict[str, str]:
    """Only a year or a month can be reviewed; a year is the default."""
    if query.get("month"):
        return {"month": query["month"]}
    return {"year": query.get("year") or ""}


def biggest_day(conn: sqlite3.Connection, user_id: int, first: date, last: date
                ) -> tuple[date, int, int] | None:
    """(day, plays, minutes) of the day with the most listening time in the period."""
    row = conn.execute(
        "SELECT day, plays, ms_played FROM listening_days WHERE user_id = ? AND day BETWEEN ? "
        "AND ? AND plays > 0 ORDER BY ms_played DESC, day LIMIT 1",
        (user_id, first.isoformat(), last.isoformat())).fetchone()
    return (date.fromisoformat(row[0]), row[1], round(row[2] / 60000)) if row else None


def longest_run(days: list[date]) -> tuple[int, date | None, date | None]:
    """(length, first day, last day) of the longest run of consecutive days."""
    best: tuple[int, date | None, date | None] = (0, None, None)
    start: date | None = None
    previous: date | None = None
    for day in sorted(days):
        if previous is None or (day - previous).days != 1:
            start = day
        length = (day - start).days + 1
        if length > best[0]:
            best = (length, start, day)
        previous = day
    return best


def load(conn: sqlite3.Connection, user_id: int, query: Mapping[str, str], *,
         cache: Cache | None = None, now: datetime | None = None) -> Review | Refused:
    """The review of the year or month a query names (this year by default)."""
    wanted = _period_query(query)
    if not wanted.get("year") and "month" not in wanted:
        timezone = preferences.load(conn, user_id).timezone
        wanted = {"year": str(local_today(timezone, now).year)}
    data = analytics.load(conn, user_id, wanted, cache=cache, now=now)
    if isinstance(data, Refused):
        return data
    period = data.period
    # The analytics are cached already; the records and discoveries on top of them too.
    key = ("review", user_id, history.history_version(conn, user_id), data.timezone, period,
           data.today)
    if cache is not None and (hit := cache.get(key)) is not None:
        return replace(hit, data=data)
    days = listening.day_totals(conn, user_id, period.first, period.last)
    played = [day for day, (plays, _) in days.items() if plays]
    # The analytics summed the period already, with the artists first heard in it.
    found = Review(data, biggest_day(conn, user_id, period.first, period.last),
                   longest_run(played), data.top_new_artists[:TOP])
    if cache is not None:
        cache.put(key, found)
    return found


# --- the shareable image ---------------------------------------------------------------------


WIDTH, HEIGHT = 1080, 1350


def image(review: Review, parts: tuple[str, ...]) -> str:
    """An SVG card of the review holding only the chosen parts (and the period's name)."""
    data = review.data
    lines: list[str] = []
    y = 220

    def text(x: int, size: int, value: str, weight: int = 400, fill: str = "#f4f4f0") -> None:
        lines.append(f'<text x="{x}" y="{y}" font-size="{size}" font-weight="{weight}" '
                     f'fill="{fill}">{escape(value)}</text>')

    text(80, 88, data.period.label, 800)
    y += 70
    text(80, 40, "in review · Music Time Machine", 400, "#9fd9b4")
    y += 110
    for key in parts:
        if key == "minutes":
            text(80, 34, "Minutes listened", 600, "#9fd9b4")
            y += 80
            text(80, 80, f"{data.totals.minutes:,}", 800)
            y += 50
            text(80, 30, f"{data.totals.plays:,} plays on {data.totals.active_days} days")
            y += 90
            continue
        items = _share_items(data, key)
        if not items:
            continue
        text(80, 34, dict(SHARE_PARTS)[key], 600, "#9fd9b4")
        y += 56
        for number, (name, detail) in enumerate(items, start=1):
            text(80, 38, f"{number}. {_clip(name, 34)}", 600)
            if detail:
                text(700, 28, _clip(detail, 22), 400, "#c8c8c0")
            y += 50
        y += 40
        if y > HEIGHT - 120:
            break
    body = "\n".join(lines)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif">\n'
            f'<title>{escape(review.title)}</title>\n'
            f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#12261b"/>\n'
            f'<rect x="40" y="40" width="{WIDTH - 80}" height="{HEIGHT - 80}" rx="36" '
            f'fill="none" stroke="#2f7a4f" stroke-width="4"/>\n{body}\n</svg>\n')


def _share_items(data: Analytics, key: str) -> list[tuple[str, str]]:
    if key == "genres":
        return [(g.name, "") for g in data.genres[:TOP] if g.name != analytics.OTHER_GENRES]
    ranked = {"artists": data.top_artists, "tracks": data.top_tracks,
              "albums": data.top_albums}[key]["plays"][:TOP]
    return [(item.name, item.artist) for item in ranked]


def _clip(value: str, size: int) -> str:
    return value if len(value) <= size else value[:size - 1] + "…"
