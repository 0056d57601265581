"""The demo listener's taste over time: favourite artists, discoveries, drift, rotations."""

from __future__ import annotations

import math
import random
import threading
from bisect import bisect_right
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TypeVar

from mtm.spotify.catalogue import Catalogue, spotify_id

DAY = 86_400
WEEK = 7 * DAY
YEAR = 365.25 * DAY
# Taste is a function of the moment, not of where a history starts, so the generated history
# and the live stream agree wherever they meet. 2006-01-01 (UTC): Spotify is no older.
ORIGIN = 1_136_073_600
# Each era (half a year) favours some genres; eras blend smoothly into each other.
ERA = YEAR / 2
# Artists not known from the start are found one by one over this span after ORIGIN.
DISCOVERY_SPAN = 30 * YEAR
# A newly found artist is played heavily for a few weeks before settling to its usual level.
HONEYMOON_BOOST = 15.0
HONEYMOON = 30 * DAY
# A four-week heavy rotation: the material of "current rotation".
ROTATION = 28 * DAY
ROTATION_SHARE = 0.3
ROTATION_SIZE = 40
# Old favourites come back now and then: the material of "forgotten gems".
COMEBACKS = 8
CONTEXT_PLAYLISTS = 6
# The listener's own files (recently played lists them as local files): the tracks of a few
# obscure artists, which the listener never plays from Spotify itself.
LOCAL_ARTISTS = 3
TOP_SAMPLES = {"short_term": (4, WEEK), "medium_term": (6, 30 * DAY),
               "long_term": (12, 30 * DAY)}
_CACHE_SIZE = 256
# A week's preferences hold every known artist: a big catalogue keeps fewer weeks at a time
# (a history visits them in order, so a few are plenty), capping the memory they take.
_CACHED_ARTIST_WEEKS = 102_400
V = TypeVar("V")


@dataclass(frozen=True)
class Preferences:
    """What the listener reaches for in one week: known artists by weight, the rotation."""

    artists: tuple[int, ...]
    cum: tuple[float, ...]
    rotation: tuple[int, ...]


class Taste:
    """Which artists the listener knows, how much they like each, and how that changes."""

    def __init__(self, catalogue: Catalogue, seed: int) -> None:
        self.catalogue = catalogue
        self.seed = seed
        self.durations = [t.duration_ms for t in catalogue.tracks]
        rng = random.Random(f"{seed}:taste")
        count = len(catalogue.artists)
        # Favourites lean towards popular artists, with plenty of personal taste mixed in.
        order = sorted(range(count), key=lambda a: (
            -catalogue.artists[a].popularity * rng.lognormvariate(0, 0.6), a))
        self.base = [0.0] * count
        self.found = [0.0] * count
        for rank, a in enumerate(order):
            self.base[a] = 1.0 / (rank + 1) ** 0.95
            known = rank < 10 or rng.random() < (0.55 if rank < 40 else 0.15)
            self.found[a] = ORIGIN if known else ORIGIN + rng.random() * DISCOVERY_SPAN
        self.local_artists = frozenset(order[-LOCAL_ARTISTS:])
        self.genres = sorted({g for a in catalogue.artists for g in a.genres})
        self._prepare_tracks(rng)
        self.local_tracks = tuple(t for a in sorted(self.local_artists) for t in self.tracks[a])
        self.playlists = tuple(spotify_id("context-playlist", i, seed)
                               for i in range(CONTEXT_PLAYLISTS))
        self._lock = threading.Lock()
        self._cache_size = max(16, min(_CACHE_SIZE, _CACHED_ARTIST_WEEKS // count))
        self._drifts: OrderedDict[int, tuple[float, ...]] = OrderedDict()
        self._weeks: OrderedDict[int, tuple[tuple[int, ...], tuple[float, ...]]] = OrderedDict()
        self._rotations: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._tops: dict[tuple[str, int], dict[int, float]] = {}

    def _prepare_tracks(self, rng: random.Random) -> None:
        """Within an artist a few tracks are the hits; albums are weighed by their tracks."""
        catalogue = self.catalogue
        self.tracks: list[list[int]] = [[] for _ in catalogue.artists]
        for track in catalogue.tracks:
            self.tracks[track.artists[0]].append(track.index)
        self.track_cum: list[list[float]] = []
        self.track_share: list[list[tuple[int, float]]] = []
        weight: dict[int, float] = {}
        for own in self.tracks:
            rng.shuffle(own)
            weights = [1.0 / (r + 1) ** 1.1 for r in range(len(own))]
            weight.update(zip(own, weights, strict=True))
            self.track_cum.append(list(accumulate(weights)))
            total = sum(weights)
            self.track_share.append([(t, w / total) for t, w in zip(own, weights, strict=True)])
        album_tracks: list[list[int]] = [[] for _ in catalogue.albums]
        for track in catalogue.tracks:
            album_tracks[track.album].append(track.index)
        self.album_tracks = album_tracks
        self.albums: list[list[list[int]]] = [[] for _ in catalogue.artists]
        for album in catalogue.albums:
            if album_tracks[album.index]:
                self.albums[album.artist].append(album_tracks[album.index])
        self.album_cum = [list(accumulate(sum(weight[t] for t in al) for al in own))
                          for own in self.albums]

    # Preferences at a moment

    def at(self, when: float) -> Preferences:
        """The preferences in force in the week holding `when` (unix seconds)."""
        week = int(when // WEEK)
        artists, cum = self._week(week)
        return Preferences(artists, cum, self.rotation(int(week * WEEK // ROTATION)))

    def _week(self, week: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
        cached = self._cached(self._weeks, week)
        if cached is not None:
            return cached
        moment = week * WEEK + WEEK / 2
        pos = (moment - ORIGIN) / ERA
        era = math.floor(pos)
        frac = pos - era
        before, after = self._drift(era), self._drift(era + 1)
        known, weights = [], []
        for a, found in enumerate(self.found):
            if found > moment or a in self.local_artists:
                continue
            drift = before[a] * (1 - frac) + after[a] * frac
            fresh = 1 + HONEYMOON_BOOST * math.exp(-(moment - found) / HONEYMOON)
            known.append(a)
            weights.append(self.base[a] * math.exp(drift) * fresh)
        if not known:
            # Never silent: the single favourite is always known.
            known = [max(range(len(self.base)), key=self.base.__getitem__)]
            weights = [1.0]
        return self._store(self._weeks, week, (tuple(known), tuple(accumulate(weights))))

    def _drift(self, era: int) -> tuple[float, ...]:
        """How far each artist's liking moves in one era: its genres' fortune and its own."""
        cached = self._cached(self._drifts, era)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:era:{era}")
        boosts = {g: rng.gauss(0, 0.8) for g in self.genres}
        drift = []
        for artist in self.catalogue.artists:
            own = rng.gauss(0, 1.2)
            if artist.genres:
                drift.append(own + sum(boosts[g] for g in artist.genres) / len(artist.genres))
            else:
                drift.append(own + rng.gauss(0, 0.8))
        return self._store(self._drifts, era, tuple(drift))

    def rotation(self, period: int) -> tuple[int, ...]:
        """The tracks in heavy rotation during one four-week period."""
        cached = self._cached(self._rotations, period)
        if cached is not None:
            return cached
        rng = random.Random(f"{self.seed}:rotation:{period}")
        middle = period * ROTATION + ROTATION / 2
        artists, cum = self._week(int(middle // WEEK))
        picks = {self.track(artists[pick(cum, rng)], rng) for _ in range(ROTATION_SIZE)}
        old = [a for a in range(len(self.base))
               if self.found[a] < middle - YEAR and a not in self.local_artists]
        if old:
            old_cum = list(accumulate(self.base[a] for a in old))
            for _ in range(COMEBACKS):
                picks.add(self.track(old[pick(old_cum, rng)], rng))
        return self._store(self._rotations, period, tuple(sorted(picks)))

    # Drawing from the preferences

    def artist(self, prefs: Preferences, rng: random.Random) -> int:
        """A known artist, drawn by current preference."""
        return prefs.artists[pick(prefs.cum, rng)]

    def track(self, artist: int, rng: random.Random) -> int:
        """One of the artist's tracks, drawn by preference."""
        return self.tracks[artist][pick(self.track_cum[artist], rng)]

    def album(self, artist: int, rng: random.Random) -> list[int]:
        """One of the artist's albums as its track list, drawn by preference."""
        return self.albums[artist][pick(self.album_cum[artist], rng)]

    def local_track(self, rng: random.Random) -> int:
        """One of the listener's own files."""
        return self.local_tracks[rng.randrange(len(self.local_tracks))]

    def any_track(self, prefs: Preferences, rng: random.Random) -> int:
        """A track from the rotation or from a known artist, as a shuffled mix plays them."""
        if prefs.rotation and rng.random() < ROTATION_SHARE:
            return prefs.rotation[rng.randrange(len(prefs.rotation))]
        return self.track(self.artist(prefs, rng), rng)

    # What Spotify's top items would say

    def top_tracks(self, time_range: str, now: float) -> dict[int, float]:
        """Expected share of plays per track over `time_range` up to the start of the UTC day
        of `now` (unix seconds).

        Spotify computes top items about once a day; so does this, once per range and day.
        """
        day = int(now // 86400)
        with self._lock:
            found = self._tops.get((time_range, day))
        if found is None:
            found = self._top_tracks(time_range, day * 86400.0)
            with self._lock:
                if len(self._tops) >= 6:
                    self._tops.clear()
                self._tops[(time_range, day)] = found
        return found

    def _top_tracks(self, time_range: str, now: float) -> dict[int, float]:
        samples, step = TOP_SAMPLES.get(time_range, TOP_SAMPLES["medium_term"])
        scores: dict[int, float] = defaultdict(float)
        for back in range(samples):
            prefs = self.at(now - back * step)
            total, previous = prefs.cum[-1], 0.0
            for artist, reached in zip(prefs.artists, prefs.cum, strict=True):
                share = (1 - ROTATION_SHARE) * (reached - previous) / total / samples
                previous = reached
                for track, own in self.track_share[artist]:
                    scores[track] += share * own
            for track in prefs.rotation:
                scores[track] += ROTATION_SHARE / len(prefs.rotation) / samples
        return scores

    def top_artists(self, time_range: str, now: float) -> dict[int, float]:
        """Expected share of plays per main artist over `time_range`."""
        scores: dict[int, float] = defaultdict(float)
        tracks = self.catalogue.tracks
        for track, score in self.top_tracks(time_range, now).items():
            scores[tracks[track].artists[0]] += score
        return scores

    # Small thread-safe caches (the emulator serves requests from several threads in tests)

    def _cached(self, cache: OrderedDict[int, V], key: int) -> V | None:
        with self._lock:
            value = cache.get(key)
            if value is not None:
                cache.move_to_end(key)
            return value

    def _store(self, cache: OrderedDict[int, V], key: int, value: V) -> V:
        with self._lock:
            cache[key] = value
            if len(cache) > self._cache_size:
                cache.popitem(last=False)
        return value


def pick(cum: Sequence[float], rng: random.Random) -> int:
    """An index drawn by the weights whose running totals are `cum`."""
    # Guarded because rounding can put the draw on the very end of the last interval.
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)
