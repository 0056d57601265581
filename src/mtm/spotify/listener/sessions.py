"""A listening session: the plays one sitting brings, in the style the listener chose."""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import accumulate

from mtm.spotify.listener.plays import LISTED_MS, STORED_KINDS, Columns, odd_kind
from mtm.spotify.listener.taste import Preferences, Taste, pick

MIX, ARTIST, ALBUM, PLAYLIST, BACKGROUND = range(5)
SKIP_CHANCE = (0.17, 0.11, 0.05, 0.12, 0.03)
# The styles of a session the listener sits down for, and how often each is chosen.
STYLES = (MIX, ARTIST, ALBUM, PLAYLIST)
_STYLE_CUM = tuple(accumulate((0.35, 0.2, 0.25, 0.2)))
PAUSE_MS = (500, 2_500)
# A skip usually comes within seconds; recently played never lists one under 30 s.
SKIP_MS, SKIP_SPREAD_MS = 2_500, 40_000
# A short skip in the live stream must leave this much room for a listed play after it.
_ROOM_AFTER_SKIP_MS = 120_000
# How often a session that ends stops part-way through its last track.
STOP_CHANCE = 0.3
_REDRAWS = 3
_PAUSE_SPREAD = PAUSE_MS[1] - PAUSE_MS[0]


@dataclass
class Room:
    """The live stream's limits: nothing ends after `until_ms`, and a listed play the app keeps
    ends at most `gap_ms` after the one before (`last_listed_ms`), so every poll finds one."""

    until_ms: int
    gap_ms: int
    last_listed_ms: int

    def space(self, start_ms: int) -> int:
        """How long a play starting at `start_ms` may last."""
        return min(self.until_ms, self.last_listed_ms + self.gap_ms) - start_ms


def choose_style(rng: random.Random) -> int:
    """The style of a session the listener sits down for."""
    return STYLES[pick(_STYLE_CUM, rng)]


class Chooser:
    """Picks the next track the way one session style does, and names its context."""

    def __init__(self, taste: Taste, prefs: Preferences, rng: random.Random, style: int,
                 playlist: str | None = None, shortest_ms: int = 0) -> None:
        self.taste, self.prefs, self.rng, self.style = taste, prefs, rng, style
        # A sleep playlist favours long, slow tracks.
        self.shortest_ms = shortest_ms
        self.context: tuple[str, str] | None = None
        if style in (PLAYLIST, BACKGROUND):
            self.context = ("playlist", playlist or rng.choice(taste.playlists))
        self._artist, self._run, self._previous = -1, 0, -1
        self._queue: list[int] = []

    @property
    def can_redraw(self) -> bool:
        """An album plays in order; every other style may pick another track instead."""
        return self.style != ALBUM

    def next(self) -> int:
        """The next track of this session."""
        taste, prefs, rng = self.taste, self.prefs, self.rng
        if self.style == ALBUM:
            track = self._album_track()
        elif self.style == ARTIST:
            if self._run <= 0:
                self._artist = taste.artist(prefs, rng)
                self.context = ("artist", taste.catalogue.artists[self._artist].spotify_id)
                self._run = 2 + int(rng.expovariate(1 / 5))
            self._run -= 1
            track = taste.track(self._artist, rng)
            if track == self._previous:
                track = taste.track(self._artist, rng)
        else:
            track = taste.any_track(prefs, rng)
            if track == self._previous:
                track = taste.any_track(prefs, rng)
        self._previous = track
        return track

    def _album_track(self) -> int:
        taste, rng = self.taste, self.rng
        if not self._queue:
            if self._artist < 0 or rng.random() < 0.4:
                self._artist = taste.artist(self.prefs, rng)
            queue = list(taste.album(self._artist, rng))
            if rng.random() < 0.2:
                # Jumping straight to a favourite track of the album.
                queue = queue[rng.randrange(len(queue)):]
            queue.reverse()
            self._queue = queue
            album = taste.catalogue.tracks[queue[-1]].album
            self.context = ("album", taste.catalogue.albums[album].spotify_id)
        return self._queue.pop()


def play_session(chooser: Chooser, start_ms: int, out: Columns, *, seed: int,
                 count: int | None = None, room: Room | None = None,
                 whole_seconds: bool = False) -> int:
    """Append a session's plays to `out` and return when its last play ended.

    A history session plays `count` plays the app keeps; a live one fills `room`.
    """
    rng = chooser.rng
    durations = chooser.taste.durations
    skip_chance = SKIP_CHANCE[chooser.style]
    stored, cursor, first = 0, start_ms, True
    while count is None or stored < count:
        start = cursor if first else cursor + PAUSE_MS[0] + int(rng.random() * _PAUSE_SPREAD)
        first = False
        space = None if room is None else room.space(start)
        if space is not None and space < LISTED_MS + 1_000:
            break
        # The kind comes first: a local file is one of the listener's own, not the session's.
        kind = odd_kind(seed, start)
        local = kind == "local"
        track = chooser.taste.local_track(rng) if local else chooser.next()
        if room is None:
            ms, skipped = _length(durations[track], skip_chance, rng,
                                  last=count is not None and stored == count - 1)
        else:
            to_end = room.until_ms - start
            track, ms, skipped = _fitting(chooser, track, durations, skip_chance, space,
                                          to_end, redraw=not local)
            if kind not in STORED_KINDS and min(space, to_end) - ms - PAUSE_MS[1] \
                    < _ROOM_AFTER_SKIP_MS:
                # No time for something the app does not keep: this one is music.
                kind = "track"
        end = start + ms
        if whole_seconds:
            # Some devices report whole seconds only.
            end = -(-end // 1000) * 1000
        out.append(end, track, ms, skipped, chooser.context, kind)
        cursor = end
        if room is not None and ms >= LISTED_MS and kind in STORED_KINDS:
            room.last_listed_ms = end
        if kind in STORED_KINDS:
            stored += 1
    return cursor


def _length(duration: int, skip_chance: float, rng: random.Random, *, last: bool
            ) -> tuple[int, bool]:
    """How long a history play lasts, and whether it was skipped."""
    if rng.random() < skip_chance:
        return SKIP_MS + int(SKIP_SPREAD_MS * rng.random() ** 2), True
    if last and rng.random() < STOP_CHANCE:
        # Sessions often end part-way through a track: stopped, not skipped.
        return int(duration * rng.uniform(0.1, 0.95)), False
    return duration, False


def _fitting(chooser: Chooser, track: int, durations: list[int], skip_chance: float,
             space: int, to_end: int, *, redraw: bool) -> tuple[int, int, bool]:
    """A live play that fits its room: a track short enough, else one skipped in time."""
    rng = chooser.rng
    if rng.random() < skip_chance:
        ms = SKIP_MS + int(SKIP_SPREAD_MS * rng.random() ** 2)
        if ms < LISTED_MS and min(space, to_end) - ms - PAUSE_MS[1] < _ROOM_AFTER_SKIP_MS:
            # No time for a quick skip: this one is skipped only after half a minute.
            ms = rng.randint(LISTED_MS, min(space, 60_000))
        return track, min(ms, space), True
    redraws = 0
    while redraw and chooser.can_redraw and redraws < _REDRAWS and not (
            chooser.shortest_ms <= durations[track] <= space):
        track = chooser.next()
        redraws += 1
    if durations[track] <= space:
        return track, durations[track], False
    # Moving on before the end of a long track.
    return track, space - rng.randrange(0, min(5_000, space - LISTED_MS) + 1), True
