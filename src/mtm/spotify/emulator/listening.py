"""The emulator's side of the listening model: whose stream, late plays, top items."""

from __future__ import annotations

import heapq
import threading

from mtm.spotify.catalogue import Track
from mtm.spotify.emulator.users import user
from mtm.spotify.listener import EmulatedPlay, Listener

RECENT_LIMIT = 50
TOP_TOTAL = 100


class Listening:
    """What each emulated account has played: the demo listener's stream, plus late plays."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._lock = threading.Lock()
        # Plays a device reported late: (play, when Spotify learnt of it), per account.
        self._late: dict[str, list[tuple[EmulatedPlay, int]]] = {}
        self._tops: dict[tuple[str, str, int], list[int]] = {}

    def history(self, account: str, start_ms: int, end_ms: int) -> list[EmulatedPlay]:
        """Every play of `account` ending in [start_ms, end_ms), oldest first."""
        if not user(account).listens or end_ms <= start_ms:
            return []
        plays = self.listener.stream.between(start_ms, end_ms)
        plays.extend(p for p, _ in self._late_of(account) if start_ms <= p.played_at_ms < end_ms)
        return sorted(plays, key=lambda p: p.played_at_ms)

    def recent(self, account: str, now_ms: int) -> list[EmulatedPlay]:
        """The last (at most 50) listed plays ended at or before `now_ms`, newest first."""
        if not user(account).listens:
            return []
        # Late plays Spotify knows of by now join the list in their place in time.
        late = [p for p, shown in self._late_of(account) if shown <= now_ms]
        return self.listener.stream.latest(now_ms, RECENT_LIMIT, late)

    def deliver_late(self, account: str, track: Track, ended_ms: int, now_ms: int
                     ) -> EmulatedPlay:
        """Record a play that ended at `ended_ms` but reaches Spotify only at `now_ms`."""
        play = EmulatedPlay(ended_ms, track, track.duration_ms, False, None)
        with self._lock:
            self._late.setdefault(account, []).append((play, now_ms))
        return play

    def top(self, account: str, kind: str, time_range: str, now_ms: int) -> list[int]:
        """Up to 100 track or artist indices, best first, as /me/top ranks them."""
        if not user(account).listens:
            return []
        # Worked out once a day, as Spotify's are (mtm.spotify.listener.taste).
        key = (kind, time_range, now_ms // 86_400_000)
        with self._lock:
            found = self._tops.get(key)
        if found is None:
            taste = self.listener.taste
            scores = (taste.top_artists if kind == "artists" else taste.top_tracks)(
                time_range, now_ms / 1000)
            found = heapq.nsmallest(TOP_TOTAL, scores, key=lambda i: (-scores[i], i))
            with self._lock:
                if len(self._tops) >= 6:
                    self._tops.clear()
                self._tops[key] = found
        return list(found)

    def _late_of(self, account: str) -> list[tuple[EmulatedPlay, int]]:
        with self._lock:
            return list(self._late.get(account, ()))
