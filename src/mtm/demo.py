"""The demo account and its generated, realistic listening history."""

from __future__ import annotations

import io
import json
import math
import random
import sqlite3
import time
import zipfile
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate

from mtm import history
from mtm.db import transaction
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from mtm.spotify.catalogue import Catalogue, build_catalogue

DEMO_SPOTIFY_ID = "demo"
DEMO_DISPLAY_NAME = "Demo Listener"

DAY = 86_400
YEAR = 365.25 * DAY

# Plays handed to history.add_plays per call; every call re-upserts the tracks it sees,
# so fewer, larger batches are cheaper, while a cap keeps the row buffer in add_plays small.
BATCH = 500_000

# Relative chance that a session starts in each UTC hour (the demo user's zone is UTC):
# weekdays have a commute bump and an evening peak, weekends start late and run late.
_WEEKDAY_HOURS = (0.15, 0.06, 0.03, 0.02, 0.02, 0.05, 0.3, 0.9, 1.1, 0.8, 0.6, 0.6,
                  0.8, 0.7, 0.6, 0.6, 0.8, 1.1, 1.4, 1.6, 1.8, 1.7, 1.2, 0.6)
_WEEKEND_HOURS = (0.5, 0.3, 0.15, 0.06, 0.03, 0.02, 0.05, 0.15, 0.35, 0.7, 1.0, 1.2,
                  1.2, 1.1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.6, 1.3, 0.9)
# Monday first: a little more on Friday and over the weekend.
_WEEKDAY_VOLUME = (0.95, 0.95, 1.0, 1.0, 1.1, 1.25, 1.15)

# Session styles: (probability, chance that a play is skipped).
_MIX, _ARTIST, _ALBUM = 0, 1, 2
_MODES = ((0.5, 0.17), (0.25, 0.11), (0.25, 0.05))

# A newly found artist is played heavily for a few weeks before settling to its usual level.
_HONEYMOON_BOOST = 15.0
_HONEYMOON_DAYS = 30.0


def ensure_demo_user(conn: sqlite3.Connection) -> int:
    """Create the demo account's users row if missing and return its id."""
    with transaction(conn):
        conn.execute(
            """INSERT INTO users (spotify_id, display_name, created_at) VALUES (?, ?, ?)
               ON CONFLICT(spotify_id) DO NOTHING""",
            (DEMO_SPOTIFY_ID, DEMO_DISPLAY_NAME, int(time.time())))
        return conn.execute("SELECT id FROM users WHERE spotify_id = ?",
                            (DEMO_SPOTIFY_ID,)).fetchone()[0]


def ensure_demo_history(conn: sqlite3.Connection, user_id: int, *, plays: int = 60_000,
                        years: float = 3.0) -> bool:
    """Generate the default demo history when the user has no plays; True when it did."""
    if conn.execute("SELECT 1 FROM plays WHERE user_id = ? LIMIT 1", (user_id,)).fetchone():
        return False
    generate_history(conn, user_id, plays=plays, years=years)
    return True


def generate_history(conn: sqlite3.Connection, user_id: int, *, plays: int, years: float,
                     seed: int = 1, end: int | None = None, catalogue_seed: int = 2026) -> int:
    """Replace the user's history with `plays` generated plays over the `years` before `end`."""
    if plays < 0:
        raise ValueError("plays must not be negative")
    if years <= 0:
        raise ValueError("years must be positive")
    if end is None:
        # The emulator streams the last hours live; stopping short keeps the two apart.
        end = int(time.time()) - 12 * 3600
    start = end - int(years * YEAR)
    if plays > end - start + 1:
        raise ValueError("more plays than seconds in the period")
    catalogue = build_catalogue(catalogue_seed)
    generated = _generate(catalogue, plays, start, end, random.Random(seed)) if plays else None
    with transaction(conn):
        # One transaction: readers see the old history or the new one, never a mix.
        history.delete_history(conn, user_id)
        if generated is None:
            return 0
        added = 0
        for first in range(0, plays, BATCH):
            added += history.add_plays(conn, user_id,
                                       generated.plays(catalogue, first, first + BATCH))
    return added


# --- the model ---------------------------------------------------------------


@dataclass
class _Generated:
    """Plays in time order as parallel columns, turned into PlayIn objects on demand."""

    played_at: list[int]
    track: list[int]
    ms_played: list[int]
    skipped: list[bool]
    context: list[str | None]

    def plays(self, catalogue: Catalogue, first: int, stop: int) -> Iterator[PlayIn]:
        """PlayIn objects for plays [first, stop), sharing one TrackIn per track."""
        tracks = _track_ins(catalogue)
        for i in range(first, min(stop, len(self.played_at))):
            yield PlayIn(self.played_at[i], tracks[self.track[i]], self.ms_played[i], "demo",
                         self.context[i], self.skipped[i])


_track_in_cache: dict[int, tuple[Catalogue, tuple[TrackIn, ...]]] = {}


def _track_ins(catalogue: Catalogue) -> tuple[TrackIn, ...]:
    # add_plays upserts each distinct TrackIn once per call: sharing objects keeps that cheap.
    key = id(catalogue)
    cached = _track_in_cache.get(key)
    if cached is None or cached[0] is not catalogue:
        artists = tuple(ArtistIn(a.spotify_id, a.name, a.genres, None, a.popularity)
                        for a in catalogue.artists)
        albums = tuple(AlbumIn(a.spotify_id, a.name, a.release_date) for a in catalogue.albums)
        cached = _track_in_cache[key] = (catalogue, tuple(
            TrackIn(t.spotify_id, t.name, tuple(artists[i] for i in t.artists), albums[t.album],
                    t.duration_ms, t.explicit)
            for t in catalogue.tracks))
    return cached[1]


class _Taste:
    """Which artists the listener knows, how much they like each, and how that changes."""

    def __init__(self, catalogue: Catalogue, start: int, end: int, rng: random.Random) -> None:
        self.start, self.end = start, end
        count = len(catalogue.artists)
        # Favourites lean towards popular artists, with plenty of personal taste mixed in.
        order = sorted(range(count),
                       key=lambda a: -catalogue.artists[a].popularity * rng.lognormvariate(0, 0.6))
        self.base = [0.0] * count
        for rank, a in enumerate(order):
            self.base[a] = 1.0 / (rank + 1) ** 0.95
        # Some artists are known from the start (favourites more often); the rest are found
        # one by one over the whole period, so every stretch of time brings new names.
        self.found = [0.0] * count
        for rank, a in enumerate(order):
            known = rng.random() < (0.55 if rank < 40 else 0.15) or rank < 10
            self.found[a] = float(start) if known else rng.uniform(start, end)
        # Taste drifts: each era favours some genres; artists follow their genres, plus a
        # personal wobble, and eras blend smoothly into each other.
        eras = max(2, int((end - start) / YEAR * 1.5) + 1)
        genre_names = sorted({g for a in catalogue.artists for g in a.genres})
        boosts = [{g: rng.gauss(0, 0.8) for g in genre_names} for _ in range(eras)]
        self.drift = []
        for artist in catalogue.artists:
            row = []
            for era in boosts:
                own = rng.gauss(0, 1.0)
                if artist.genres:
                    row.append(own + sum(era[g] for g in artist.genres) / len(artist.genres))
                else:
                    row.append(own + rng.gauss(0, 0.8))
            self.drift.append(row)
        self.eras = eras

        # Within an artist a few tracks are the hits; albums are weighed by their tracks.
        self.tracks: list[list[int]] = [[] for _ in range(count)]
        for track in catalogue.tracks:
            self.tracks[track.artists[0]].append(track.index)
        self.track_cum: list[list[float]] = []
        track_weight: dict[int, float] = {}
        for own in self.tracks:
            rng.shuffle(own)
            weights = [1.0 / (r + 1) ** 1.1 for r in range(len(own))]
            track_weight.update(zip(own, weights, strict=True))
            self.track_cum.append(list(accumulate(weights)))
        album_tracks: list[list[int]] = [[] for _ in catalogue.albums]
        for track in catalogue.tracks:
            album_tracks[track.album].append(track.index)
        self.albums: list[list[list[int]]] = [[] for _ in range(count)]
        for album in catalogue.albums:
            if album_tracks[album.index]:
                self.albums[album.artist].append(album_tracks[album.index])
        self.album_cum = [list(accumulate(sum(track_weight[t] for t in al) for al in own))
                          for own in self.albums]
        self.known: list[int] = []
        self.known_cum: list[float] = []

    def at(self, moment: float) -> None:
        """Set the artist preferences in force at `moment`."""
        pos = (moment - self.start) / max(1, self.end - self.start) * (self.eras - 1)
        era = min(max(int(pos), 0), self.eras - 2)
        frac = min(max(pos - era, 0.0), 1.0)
        known, weights = [], []
        for a, found in enumerate(self.found):
            if found > moment:
                continue
            drift = self.drift[a][era] * (1 - frac) + self.drift[a][era + 1] * frac
            fresh = 1 + _HONEYMOON_BOOST * math.exp(-(moment - found) / (_HONEYMOON_DAYS * DAY))
            known.append(a)
            weights.append(self.base[a] * math.exp(drift) * fresh)
        if not known:
            # Never silent: the single favourite is always known.
            known = [max(range(len(self.base)), key=self.base.__getitem__)]
            weights = [1.0]
        self.known = known
        self.known_cum = list(accumulate(weights))

    def artist(self, rng: random.Random) -> int:
        """A known artist, drawn by current preference."""
        return self.known[_pick(self.known_cum, rng)]

    def track(self, artist: int, rng: random.Random) -> int:
        """One of the artist's tracks, drawn by preference."""
        return self.tracks[artist][_pick(self.track_cum[artist], rng)]

    def album(self, artist: int, rng: random.Random) -> list[int]:
        """One of the artist's albums as its track list, drawn by preference."""
        return self.albums[artist][_pick(self.album_cum[artist], rng)]


def _pick(cum: Sequence[float], rng: random.Random) -> int:
    # Guarded because rounding can put the draw on the very end of the last interval.
    return min(bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _day_counts(plays: int, start: int, end: int, rng: random.Random) -> dict[int, int]:
    """How many plays fall on each UTC day: weekly rhythm, slow trends, days off."""
    first_day, last_day = start // DAY, end // DAY
    days = list(range(first_day, last_day + 1))
    span_years = max((end - start) / YEAR, 1e-9)
    # Slow swings in how much the listener listens (busy months, quiet months).
    waves = [(rng.uniform(0.4, 3.0) * YEAR, rng.uniform(0, 2 * math.pi), rng.uniform(0.1, 0.3))
             for _ in range(3)]
    off = {d for d in days if rng.random() < 0.07}
    for _ in range(round(span_years * 1.5)):
        # Holidays and busy spells: a run of days without music.
        first = rng.choice(days)
        off.update(range(first, first + rng.randint(3, 10)))
    if all(d in off for d in days):
        off = set()
    weights, cover = [], []
    for d in days:
        covered = (min((d + 1) * DAY, end + 1) - max(d * DAY, start)) / DAY
        cover.append(covered)
        if d in off:
            weights.append(0.0)
            continue
        mid = d * DAY + DAY / 2
        trend = sum(a * math.sin(2 * math.pi * mid / period + phase)
                    for period, phase, a in waves)
        weights.append(covered * _WEEKDAY_VOLUME[(d + 3) % 7] * math.exp(trend)
                       * rng.lognormvariate(0, 0.45))
    total = sum(weights)
    active_cover = sum(c for c, w in zip(cover, weights, strict=True) if w > 0)
    mean = plays / active_cover
    # A day holds at most about 18 hours of music, unless the volume asked for needs more.
    cap = max(math.ceil(1.25 * mean) + 1, min(int(3 * mean) + 1, 280))
    caps = [max(1, math.ceil(cap * c)) if w > 0 else 0
            for c, w in zip(cover, weights, strict=True)]
    counts = [min(int(plays * w / total + rng.random()), c)
              for w, c in zip(weights, caps, strict=True)]
    cum = list(accumulate(weights))
    missing = plays - sum(counts)
    misses = 0
    while missing > 0 and misses < 10_000:
        i = _pick(cum, rng)
        if counts[i] < caps[i]:
            counts[i] += 1
            missing -= 1
        else:
            misses += 1
    for i in range(len(days)):
        # Only reached when nearly every day is full: fill the rest in order.
        if missing <= 0:
            break
        more = min(caps[i] - counts[i], missing)
        counts[i] += more
        missing -= more
    while missing < 0:
        i = _pick(cum, rng)
        if counts[i]:
            counts[i] -= 1
            missing += 1
    return {d: n for d, n in zip(days, counts, strict=True) if n}


def _generate(catalogue: Catalogue, plays: int, start: int, end: int,
              rng: random.Random) -> _Generated:
    taste = _Taste(catalogue, start, end, rng)
    durations = [t.duration_ms for t in catalogue.tracks]
    album_uri = [f"spotify:album:{a.spotify_id}" for a in catalogue.albums]
    artist_uri = [f"spotify:artist:{a.spotify_id}" for a in catalogue.artists]
    track_album = [t.album for t in catalogue.tracks]
    weekday_cum = list(accumulate(_WEEKDAY_HOURS))
    weekend_cum = list(accumulate(_WEEKEND_HOURS))
    mode_cum = list(accumulate(p for p, _ in _MODES))

    out = _Generated([], [], [], [], [])
    played_at, track_col, ms_col = out.played_at, out.track, out.ms_played
    skipped_col, context_col = out.skipped, out.context
    random_ = rng.random
    cursor = start * 1000  # milliseconds: when the player is next free
    week = None
    for day, count in sorted(_day_counts(plays, start, end, rng).items()):
        if (day - start // DAY) // 7 != week:
            week = (day - start // DAY) // 7
            taste.at(min(day * DAY + 3.5 * DAY, end))
        lo, hi = max(day * DAY, start), min((day + 1) * DAY, end + 1)
        hours = weekend_cum if (day + 3) % 7 >= 5 else weekday_cum
        # Light days are one or two sessions; heavy days are fewer, longer sessions.
        length = min(max(count / 4, 6), 25) * rng.lognormvariate(0, 0.25)
        sessions = max(1, min(count, round(count / length)))
        cuts = [0, *sorted(rng.sample(range(1, count), sessions - 1)), count]
        starts = []
        for _ in range(sessions):
            for _attempt in range(6):
                moment = day * DAY + _pick(hours, rng) * 3600 + rng.randrange(3600)
                if lo <= moment < hi:
                    break
            else:
                moment = rng.randrange(lo, hi)
            starts.append(moment)
        starts.sort()
        for s, moment in enumerate(starts):
            size = cuts[s + 1] - cuts[s]
            # A session that would overlap the last one starts right after it instead.
            cursor = max(cursor + rng.randrange(5_000, 120_000), moment * 1000)
            mode = _pick(mode_cum, rng)
            skip_p = _MODES[mode][1]
            artist, queue, context, previous = -1, [], None, -1
            run = 0
            for n in range(size):
                if mode == _MIX:
                    track = taste.track(taste.artist(rng), rng)
                    if track == previous:
                        track = taste.track(taste.artist(rng), rng)
                elif mode == _ARTIST:
                    if run <= 0:
                        artist = taste.artist(rng)
                        context = artist_uri[artist]
                        run = 2 + int(rng.expovariate(1 / 5))
                    run -= 1
                    track = taste.track(artist, rng)
                    if track == previous:
                        track = taste.track(artist, rng)
                else:
                    if not queue:
                        if artist < 0 or random_() < 0.4:
                            artist = taste.artist(rng)
                        queue = list(taste.album(artist, rng))
                        if random_() < 0.2:
                            # Jumping straight to a favourite track of the album.
                            queue = queue[rng.randrange(len(queue)):]
                        queue.reverse()
                        context = album_uri[track_album[queue[-1]]]
                    track = queue.pop()
                previous = track
                duration = durations[track]
                if random_() < skip_p:
                    skip = True
                    ms = 2_500 + int(40_000 * random_() ** 2)
                else:
                    skip = False
                    ms = duration
                    if n == size - 1 and random_() < 0.3:
                        # Sessions often end part-way through a track.
                        ms = int(duration * rng.uniform(0.1, 0.95))
                cursor += ms
                played_at.append(cursor // 1000)
                track_col.append(track)
                ms_col.append(ms)
                skipped_col.append(skip)
                context_col.append(context)
                cursor += rng.randrange(0, 1_500)
    _fit(played_at, ms_col, start, end)
    return out


def _fit(times: list[int], ms: list[int], start: int, end: int) -> None:
    """Pull the last sessions back inside [start, end], keeping every second distinct."""
    n = len(times)
    if not n or times[-1] <= end:
        return
    times[-1] = end
    for i in range(n - 2, -1, -1):
        # Keep the gap the next play needs to be heard; stop where there was room already.
        limit = times[i + 1] - max(1, ms[i + 1] // 1000)
        if times[i] <= limit:
            break
        times[i] = limit
    if times[0] >= start:
        return
    # The music asked for is longer than the period: keep the order and distinct seconds.
    times[0] = start
    for i in range(1, n):
        times[i] = max(times[i], times[i - 1] + 1)
    if times[-1] > end:
        times[-1] = end
        for i in range(n - 2, -1, -1):
            if times[i] < times[i + 1]:
                break
            times[i] = times[i + 1] - 1


# --- a sample privacy export, for trying the import in demo mode --------------------------

SAMPLE_PLAYS = 15_000
SAMPLE_FOLDER = "Spotify Extended Streaming History"


def sample_export(conn: sqlite3.Connection, user_id: int, *, plays: int = SAMPLE_PLAYS,
                  seed: int = 11) -> tuple[str, bytes]:
    """A zip like Spotify's, of a year of listening ending where the user's history begins.

    Its tracks are the emulator's, so the import links them to what the demo account knows.
    Returns (file name, zip bytes).
    """
    first = conn.execute("SELECT min(played_at) FROM plays WHERE user_id = ?",
                         (user_id,)).fetchone()[0]
    end = (first or int(time.time())) - DAY
    start = end - int(YEAR)
    catalogue = build_catalogue(2026)
    generated = _generate(catalogue, plays, start, end, random.Random(seed))
    records = [_extended_record(play) for play in generated.plays(catalogue, 0, plays)]
    first_year = time.gmtime(start).tm_year
    last_year = time.gmtime(end).tm_year
    name = f"Streaming_History_Audio_{first_year}-{last_year}_0.json"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{SAMPLE_FOLDER}/{name}", json.dumps(records, ensure_ascii=False,
                                                               indent=2))
    return "my_spotify_data_sample.zip", buffer.getvalue()


def _extended_record(play: PlayIn) -> dict:
    """A generated play as Spotify's extended streaming history writes one."""
    track = play.track
    skipped = bool(play.skipped)
    return {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(play.played_at)),
        "platform": "android", "ms_played": play.ms_played, "conn_country": "SE",
        "ip_addr": "192.0.2.1",
        "master_metadata_track_name": track.name,
        "master_metadata_album_artist_name": track.artists[0].name,
        "master_metadata_album_album_name": track.album.name if track.album else None,
        "spotify_track_uri": f"spotify:track:{track.spotify_id}",
        "episode_name": None, "episode_show_name": None, "spotify_episode_uri": None,
        "audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None,
        "audiobook_chapter_title": None,
        "reason_start": "clickrow" if play.context_uri is None else "trackdone",
        "reason_end": "fwdbtn" if skipped else "trackdone",
        "shuffle": play.context_uri is None, "skipped": skipped, "offline": False,
        "offline_timestamp": None, "incognito_mode": False,
    }
