"""One play of the demo listener, what recently played makes of it, and plays in columns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mtm.spotify.catalogue import Catalogue, Track

# Recently played lists streams of 30 s or more only.
LISTED_MS = 30_000
# Shares of plays that recently played shows as something other than a catalogue track.
ODD_KINDS = (("local", 0.015), ("episode", 0.01), ("unavailable", 0.005))
# What the app keeps of a play: music, local files included (episodes and `track: null` not).
STORED_KINDS = frozenset({"track", "local"})
_M64 = (1 << 64) - 1


@dataclass(frozen=True)
class EmulatedPlay:
    """One play of the demo listener; `played_at_ms` is when it ended, like Spotify's played_at.

    `kind` is what recently played shows for it: a catalogue "track", a "local" file (no
    ids), an "episode", or "unavailable" (Spotify sends `track: null`).
    """

    played_at_ms: int
    track: Track
    ms_played: int
    skipped: bool
    context: tuple[str, str] | None
    kind: str = "track"

    @property
    def started_ms(self) -> int:
        """When the play began."""
        return self.played_at_ms - self.ms_played

    @property
    def listed(self) -> bool:
        """Recently played leaves out short skips."""
        return self.ms_played >= LISTED_MS

    @property
    def stored(self) -> bool:
        """A listed play the app keeps: music, local files included."""
        return self.listed and self.kind in STORED_KINDS


def odd_kind(seed: int, started_ms: int) -> str:
    """What recently played makes of a play: mostly a track; a few are something else.

    A hash of the moment, not a draw from the session's generator, so the kinds never shift
    the plays themselves.
    """
    roll = _mix((seed * 1_000_003) ^ started_ms) / 2 ** 64
    for kind, share in ODD_KINDS:
        if roll < share:
            return kind
        roll -= share
    return "track"


def _mix(value: int) -> int:
    """splitmix64: a fast, well-spread 64-bit hash."""
    value = (value + 0x9E3779B97F4A7C15) & _M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _M64
    return value ^ (value >> 31)


@dataclass
class Columns:
    """Plays in time order as parallel lists: half a million plays stay cheap this way."""

    ended_ms: list[int] = field(default_factory=list)
    track: list[int] = field(default_factory=list)
    ms_played: list[int] = field(default_factory=list)
    skipped: list[bool] = field(default_factory=list)
    context: list[tuple[str, str] | None] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ended_ms)

    def append(self, ended_ms: int, track: int, ms_played: int, skipped: bool,
               context: tuple[str, str] | None, kind: str) -> None:
        """Add one play after the others."""
        self.ended_ms.append(ended_ms)
        self.track.append(track)
        self.ms_played.append(ms_played)
        self.skipped.append(skipped)
        self.context.append(context)
        self.kind.append(kind)

    def extend(self, other: Columns, first: int = 0) -> None:
        """Add `other`'s plays from index `first` on."""
        for mine, theirs in zip(self._lists(), other._lists(), strict=True):
            mine.extend(theirs[first:])

    def plays(self, catalogue: Catalogue, first: int = 0,
              stop: int | None = None) -> Iterator[EmulatedPlay]:
        """The plays [first, stop) as EmulatedPlay objects."""
        tracks = catalogue.tracks
        for i in range(first, len(self) if stop is None else min(stop, len(self))):
            yield EmulatedPlay(self.ended_ms[i], tracks[self.track[i]], self.ms_played[i],
                               self.skipped[i], self.context[i], self.kind[i])

    def _lists(self) -> tuple[list, ...]:
        return (self.ended_ms, self.track, self.ms_played, self.skipped, self.context, self.kind)
