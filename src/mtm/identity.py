"""What makes two records the same play, and what counts as a play.

Every stored play carries a record key: a 64-bit hash of the fields that identify the record
it came from. The key is part of the plays table's primary key, so the same record stored
twice is refused by the database itself, and re-importing a file adds nothing.

Keys are exact. The same play seen by two different sources (the API's recently played, an
extended-history export, account data) never has the same key, so those are matched by a
rule instead (see `compatible`): the same track, within MATCH_WINDOW seconds, one to one.

- Extended history: the key covers `ts`, the track, `ms_played`, the start and end reasons
  and `offline_timestamp` (in seconds, whatever unit the file used), so quick skips sharing
  a second, and the same track synced again from offline with another length or offline
  time, stay distinct; byte-identical records (exports overlap themselves) are one. Fields
  that older and newer exports spell differently (platform, IP address) are left out, so
  the same play in an `endsong` file and a `Streaming_History_Audio` file is one record.
- Account data: minute precision and four fields. Two identical records in one file are two
  plays (two quick skips of one track in one minute look identical); the same record in
  another file or another import is the same play. So the key counts occurrences within a
  file.
- The Web API: a play ends at most once a second per track, so (second, track) is its key.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Spotify counts a stream as a play from 30 seconds; shorter streams keep their minutes.
PLAY_MS = 30_000
# An export's `ts` and the API's `played_at` for one play differ by a few seconds. Two real
# plays of one track that the API lists (30 s or more each) end at least 30 s apart, so a
# window well under 30 s can never merge two of them.
MATCH_WINDOW = 15
# Account data rounds the end of playback down to the minute.
MINUTE = 60
# Sources whose `ms_played` is measured (the API reports none: it stores the duration).
MEASURED = frozenset({"export", "account", "demo"})
# How far apart two records of one play may put its length (Spotify's two logs agree to
# the millisecond; a second covers rounding in older files).
MS_TOLERANCE = 1_000

_SPACE = re.compile(r"\s+")


def normalize(text: str | None) -> str:
    """A name as matching compares it: Unicode-normalised, case-folded, single-spaced."""
    if not text:
        return ""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def search_key(text: str | None) -> str:
    """A name as search compares it: accents dropped, case-folded, single-spaced."""
    if not text:
        return ""
    # Folding first: some case foldings bring combining marks of their own (İ, ΐ).
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACE.sub(" ", bare).strip()


def match_key(artist: str | None, track: str | None) -> str:
    """How a track is recognised by name alone (account data has no URIs)."""
    return f"{normalize(artist)}\x1f{normalize(track)}"


def record_key(*parts: object) -> int:
    """A signed 64-bit hash of a record's identifying fields (SQLite's INTEGER range)."""
    return _hash("\x1e".join(["" if p is None else str(p) for p in parts]))


def _hash(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def default_key(source: str, played_at: int, spotify_id: str | None, artist: str | None,
                track: str | None) -> int:
    """The key of a play that carries no key of its own: (source, second, track)."""
    return record_key(source, played_at, spotify_id or match_key(artist, track))


def offline_seconds(value: int | None) -> int | None:
    """`offline_timestamp` in seconds: older exports give milliseconds, newer ones seconds."""
    if not value:
        return None
    return value // 1000 if value > 100_000_000_000 else value


def extended_key(played_at: int, uri: str | None, artist: str | None, track: str | None,
                 ms_played: int, reason_start: str | None, reason_end: str | None,
                 offline: int | None = None) -> int:
    """The key of an extended streaming history record (record_key of its fields).

    `offline` is offline_seconds(offline_timestamp): the same track ending in the same
    second with the same length but another offline time is another play.
    """
    # Written out because it runs once per record of an import: the same text as record_key.
    return _hash(f"export\x1e{played_at}\x1e{uri or match_key(artist, track)}\x1e{ms_played}"
                 f"\x1e{reason_start or ''}\x1e{reason_end or ''}\x1e{offline or ''}")


def account_key(minute: int, artist: str | None, track: str | None, ms_played: int,
                occurrence: int) -> int:
    """The key of an account-data record, the n-th identical one of its file."""
    return record_key("account", minute, match_key(artist, track), ms_played, occurrence)


def register(conn: sqlite3.Connection) -> None:
    """Make the key functions callable from SQL (migrations compute keys of stored rows)."""
    conn.create_function("mtm_default_key", 5, default_key, deterministic=True)
    conn.create_function("mtm_match_key", 2, match_key, deterministic=True)
    conn.create_function("mtm_search_key", 1, search_key, deterministic=True)


# --- matching across sources ------------------------------------------------------------


@dataclass(frozen=True)
class Moment:
    """When and how long, as one source saw a play."""

    source: str
    played_at: int
    ms_played: int

    @property
    def latest(self) -> int:
        """The last second the play may have ended in."""
        return self.played_at + (MINUTE - 1 if self.source == "account" else 0)


def compatible(a: Moment, b: Moment) -> bool:
    """True when two records of one track from two sources may be the same play."""
    if a.source == b.source:
        # Within a source, keys decide: equal keys are one play, different keys two.
        return False
    if a.played_at - MATCH_WINDOW > b.latest or b.played_at - MATCH_WINDOW > a.latest:
        return False
    if a.source in MEASURED and b.source in MEASURED:
        return abs(a.ms_played - b.ms_played) <= MS_TOLERANCE
    # The API lists only plays of 30 s or more: a shorter stream is never its twin.
    measured = a if a.source in MEASURED else b
    return measured.source not in MEASURED or measured.ms_played >= PLAY_MS


def distance(a: Moment, b: Moment) -> tuple[int, int]:
    """How good a match is: measured lengths that agree first, then the closer in time."""
    gap = max(0, a.played_at - b.latest, b.played_at - a.latest)
    both = a.source in MEASURED and b.source in MEASURED
    return (0 if both else 1, gap)


def assign(pairs: Iterable[tuple[object, object, Moment, Moment]]) -> dict[object, object]:
    """One-to-one matches from candidate pairs (new id, stored id, new, stored), best first.

    Each stored play is the twin of at most one new record, so two distinct records are
    never folded into one play.
    """
    ranked = sorted(((distance(a, b), new, old) for new, old, a, b in pairs if compatible(a, b)),
                    key=lambda item: item[0])
    matched: dict[object, object] = {}
    taken: set[object] = set()
    for _, new, old in ranked:
        if new not in matched and old not in taken:
            matched[new] = old
            taken.add(old)
    return matched
