"""The live stream: what the demo listener plays, hour by hour, as a pure function of time."""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Iterable

from mtm.spotify.listener.plays import Columns, EmulatedPlay
from mtm.spotify.listener.sessions import BACKGROUND, Chooser, Room, choose_style, play_session
from mtm.spotify.listener.taste import Taste

SLOT_MS = 3_600_000
# Demo mode syncs every 300 s: a listed play of music ends at least this often, at any hour,
# so every sync finds something new. The margin covers devices that round to whole seconds.
GAP_MS = 285_000
# A slot's last listed play ends at most this long before the slot does (see play_session:
# a slot stops only when less than 31 s is left, after a listed play, plus one pause).
SLOT_TAIL_MS = 34_000
# Chance that the listener sits down for a session in each UTC hour (0-23): a commute, a
# quieter working day, long evenings; otherwise something calm plays in the background (a
# sleep playlist at night, focus music by day). The demo account's zone is UTC.
ACTIVE_WEEKDAY = (0.06, 0.03, 0.02, 0.01, 0.01, 0.02, 0.10, 0.40, 0.45, 0.25, 0.20, 0.22,
                  0.30, 0.22, 0.20, 0.25, 0.35, 0.55, 0.60, 0.70, 0.75, 0.70, 0.50, 0.20)
ACTIVE_WEEKEND = (0.15, 0.10, 0.05, 0.02, 0.01, 0.01, 0.02, 0.05, 0.12, 0.25, 0.40, 0.45,
                  0.40, 0.40, 0.45, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.65, 0.55, 0.35)
NIGHT_HOURS = range(0, 7)
SLEEP_SHORTEST_MS = 200_000
# How far back `latest` looks for plays (50 listed plays take about four hours).
MAX_LOOKBACK_SLOTS = 48
_SLOT_CACHE_SIZE = 4096


class Stream:
    """The demo listener's plays, one UTC hour at a time; each hour depends on nothing else."""

    def __init__(self, taste: Taste, seed: int) -> None:
        self.taste = taste
        self.seed = seed
        self._lock = threading.Lock()
        self._slots: OrderedDict[int, tuple[EmulatedPlay, ...]] = OrderedDict()

    def slot(self, slot: int) -> tuple[EmulatedPlay, ...]:
        """The plays of one UTC hour, all starting and ending inside it, oldest first."""
        with self._lock:
            cached = self._slots.get(slot)
        if cached is not None:
            return cached
        plays = tuple(self._columns(slot).plays(self.taste.catalogue))
        with self._lock:
            self._slots[slot] = plays
            if len(self._slots) > _SLOT_CACHE_SIZE:
                self._slots.popitem(last=False)
        return plays

    def between(self, start_ms: int, end_ms: int) -> list[EmulatedPlay]:
        """The plays ending in [start_ms, end_ms), oldest first."""
        plays: list[EmulatedPlay] = []
        for slot in range(start_ms // SLOT_MS, (end_ms - 1) // SLOT_MS + 1):
            plays.extend(p for p in self.slot(slot) if start_ms <= p.played_at_ms < end_ms)
        return plays

    def latest(self, now_ms: int, limit: int, late: Iterable[EmulatedPlay] = ()
               ) -> list[EmulatedPlay]:
        """The last `limit` listed plays ended at or before `now_ms`, newest first.

        `late` are plays that reached Spotify late: they join the list in their place in time.
        """
        pending = sorted(late, key=lambda p: -p.played_at_ms)
        window: list[EmulatedPlay] = []
        slot = now_ms // SLOT_MS
        for _ in range(MAX_LOOKBACK_SLOTS):
            for play in reversed(self.slot(slot)):
                while pending and pending[0].played_at_ms > play.played_at_ms:
                    window.append(pending.pop(0))
                if play.played_at_ms <= now_ms and play.listed:
                    window.append(play)
                if len(window) >= limit:
                    return window[:limit]
            slot -= 1
        return (window + pending)[:limit]

    def _columns(self, slot: int) -> Columns:
        """Generate one hour: a session the listener sits down for, or background music."""
        rng = random.Random(f"{self.seed}:slot:{slot}")
        start = slot * SLOT_MS
        hour, weekday = slot % 24, (slot // 24 + 3) % 7
        chances = ACTIVE_WEEKEND if weekday >= 5 else ACTIVE_WEEKDAY
        prefs = self.taste.at(start / 1000)
        # Some devices report whole seconds only; drawn apart so the stream stays the same.
        whole = random.Random(f"{self.seed}:whole:{slot}").random() < 0.1
        # The last hour's music ended at most SLOT_TAIL_MS before this one began.
        room = Room(start + SLOT_MS - 1_000, GAP_MS, start - SLOT_TAIL_MS)
        out = Columns()
        cursor = start + rng.randrange(500, 2_500)
        if rng.random() < chances[hour]:
            # Half the sessions give way to background music part-way through the hour.
            until = start + rng.randrange(20, 60) * 60_000 if rng.random() < 0.5 else None
            session = Chooser(self.taste, prefs, rng, choose_style(rng))
            if until is not None:
                room.until_ms = until
            cursor = play_session(session, cursor, out, seed=self.seed, room=room,
                                  whole_seconds=whole)
            room.until_ms = start + SLOT_MS - 1_000
            cursor += rng.randrange(500, 2_500)
        night = hour in NIGHT_HOURS
        calm = Chooser(self.taste, prefs, rng, BACKGROUND, self.taste.playlists[0] if night
                       else None, shortest_ms=SLEEP_SHORTEST_MS if night else 0)
        play_session(calm, cursor, out, seed=self.seed, room=room, whole_seconds=whole)
        return out
