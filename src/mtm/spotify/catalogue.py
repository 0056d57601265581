"""A generated music catalogue shared by the Spotify emulator and the demo history."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from functools import cached_property, lru_cache

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# The built-in demo's catalogue, and the smallest any history gets: its artists are the same
# in every bigger catalogue, which only adds a long tail after them.
BASE_ARTISTS = 400
# A real history of 500,000 plays holds about 9,000 artists; one of 2,000,000 about 20,000.
# Catalogue growth is sublinear: a power law through those two points.
_HEARD_AT, _HEARD_PLAYS = 9_000, 500_000
_HEARD_EXPONENT = math.log(20_000 / 9_000) / math.log(4)
# Not every artist of the catalogue is heard: some are found only after the history ends
# and the rarest get no play at all (measured on 10- and 20-year histories).
_HEARD_SHARE = 0.67

GENRES = (
    "indie rock", "indie pop", "dream pop", "shoegaze", "post-punk", "synthpop", "electropop",
    "house", "deep house", "techno", "ambient", "downtempo", "trip hop", "drum and bass",
    "hip hop", "conscious hip hop", "r&b", "neo soul", "soul", "funk", "disco", "jazz",
    "nu jazz", "bossa nova", "folk", "indie folk", "singer-songwriter", "alt country",
    "classical", "modern classical", "metal", "post-rock", "punk", "garage rock", "k-pop",
    "j-pop", "afrobeats", "reggaeton", "latin pop", "chanson",
)

# A few fixed names exercise escaping, CSV quoting and non-Latin text everywhere they appear.
FIXED_ARTISTS = (
    ("Sigur Rós", ("post-rock", "ambient")),
    ("坂本 美雨", ("j-pop",)),
    ("Earth, Wind & Friends", ("funk", "disco", "soul")),
    ('The "Quoted" Band', ("garage rock",)),
    ("<script>alert(1)</script>", ()),
    ("Motörhead Revival", ("metal",)),
)

_FIRST = ("Velvet", "Neon", "Paper", "Silver", "Quiet", "Golden", "Electric", "Hollow",
          "Midnight", "Crystal", "Wild", "Lunar", "Static", "Amber", "Northern", "Glass",
          "Violet", "Iron", "Sunday", "Echo", "Copper", "Saltwater", "Distant", "Paper")
_SECOND = ("Harbour", "Wolves", "Gardens", "Signals", "Parade", "Machines", "Rivers",
           "Lanterns", "Tides", "Satellites", "Orchards", "Ghosts", "Atlas", "Motel",
           "Canyons", "Radio", "Choir", "Avenue", "Fever", "Orchestra", "Club", "Season")
_WORDS = ("love", "night", "summer", "light", "heart", "city", "dream", "fire", "rain",
          "home", "gold", "ocean", "stars", "run", "dance", "blue", "wave", "forever",
          "shadow", "mirror", "youth", "river", "road", "sky", "silence", "morning", "tonight",
          "paper", "glass", "echo", "velvet", "honey", "storm", "static", "bloom", "sugar")


@dataclass(frozen=True, slots=True)
class Artist:
    """An artist as the Web API describes one."""

    index: int
    spotify_id: str
    name: str
    genres: tuple[str, ...]
    popularity: int


@dataclass(frozen=True, slots=True)
class Album:
    """An album with its main artist."""

    index: int
    spotify_id: str
    name: str
    artist: int
    release_date: str


@dataclass(frozen=True, slots=True)
class Track:
    """A track with its album and credited artists (the first is the main one)."""

    index: int
    spotify_id: str
    name: str
    album: int
    artists: tuple[int, ...]
    duration_ms: int
    explicit: bool


@dataclass(frozen=True)
class Catalogue:
    """Artists, albums and tracks with lookups by Spotify id."""

    artists: tuple[Artist, ...]
    albums: tuple[Album, ...]
    tracks: tuple[Track, ...]

    # Built on first use and kept with the catalogue: a big one's maps cost tens of megabytes.
    @cached_property
    def tracks_by_id(self) -> dict[str, Track]:
        """Tracks keyed by Spotify id."""
        return {t.spotify_id: t for t in self.tracks}

    @cached_property
    def artists_by_id(self) -> dict[str, Artist]:
        """Artists keyed by Spotify id."""
        return {a.spotify_id: a for a in self.artists}

    @cached_property
    def albums_by_id(self) -> dict[str, Album]:
        """Albums keyed by Spotify id."""
        return {a.spotify_id: a for a in self.albums}

    def artist_tracks(self, artist: int) -> list[Track]:
        """Tracks whose main artist is `artist`."""
        return [t for t in self.tracks if t.artists[0] == artist]


def catalogue_artists(plays: int) -> int:
    """How many artists a catalogue needs for a history of `plays` plays to sound real."""
    heard = _HEARD_AT * (max(plays, 1) / _HEARD_PLAYS) ** _HEARD_EXPONENT
    return max(BASE_ARTISTS, round(heard / _HEARD_SHARE))


def spotify_id(kind: str, n: int, seed: int) -> str:
    """A stable 22-character base62 id, like Spotify's."""
    digest = int.from_bytes(hashlib.sha256(f"{seed}:{kind}:{n}".encode()).digest(), "big")
    chars = []
    for _ in range(22):
        digest, rem = divmod(digest, 62)
        chars.append(BASE62[rem])
    return "".join(chars)


def _title(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).title()


_SYLLABLES = ("ka", "lo", "mi", "ren", "sa", "tu", "vel", "no", "ra", "ly", "an", "ze",
              "bo", "fi", "mar", "ta", "el", "ki", "do", "su", "or", "ne", "vi", "ha")
_SUFFIXES = ("II", "Collective", "Trio", "Band", "Ensemble")


@lru_cache(maxsize=4)
def build_catalogue(seed: int = 2026, artist_count: int = BASE_ARTISTS) -> Catalogue:
    """Generate the same catalogue for the same seed and size: artists, albums, tracks.

    The first BASE_ARTISTS artists (and their albums and tracks) are the same at every size;
    a bigger catalogue adds a long tail of lesser-known artists with fewer releases.
    """
    rng = random.Random(seed)
    artists: list[Artist] = []
    names: set[str] = set()
    base = min(artist_count, BASE_ARTISTS)
    for i in range(base):
        if i < len(FIXED_ARTISTS):
            name, genres = FIXED_ARTISTS[i]
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
            while name in names:
                name = f"{name} {rng.choice(_SUFFIXES)}"
            # About one artist in seven has no genres: development-mode apps see that often.
            count = 0 if rng.random() < 0.15 else rng.randint(1, 3)
            genres = tuple(rng.sample(GENRES, count))
        names.add(name)
        popularity = max(1, min(100, int(rng.gauss(45, 20))))
        artists.append(Artist(i, spotify_id("artist", i, seed), name, genres, popularity))

    albums: list[Album] = []
    tracks: list[Track] = []
    for artist in artists:
        for _ in range(rng.randint(1, 4)):
            year = rng.randint(1975, 2026)
            album = Album(len(albums), spotify_id("album", len(albums), seed),
                          _title(rng, rng.randint(1, 3)), artist.index,
                          f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
            albums.append(album)
            for _ in range(rng.randint(4, 12)):
                credited = (artist.index,)
                if rng.random() < 0.12:
                    guest = rng.randrange(base)
                    if guest != artist.index:
                        credited += (guest,)
                tracks.append(Track(
                    len(tracks), spotify_id("track", len(tracks), seed),
                    _title(rng, rng.randint(1, 4)), album.index, credited,
                    rng.randint(95_000, 420_000), rng.random() < 0.1))
    for i in range(base, artist_count):
        _add_tail_artist(random.Random(f"{seed}:tail:{i}"), seed, i, names, artists, albums,
                         tracks)
    return Catalogue(tuple(artists), tuple(albums), tuple(tracks))


def _add_tail_artist(rng: random.Random, seed: int, i: int, names: set[str],
                     artists: list[Artist], albums: list[Album], tracks: list[Track]) -> None:
    """One artist of the long tail: a few singles, an EP or an album or two."""
    # Its own generator and guests from before it: a bigger catalogue keeps every artist.
    name = _tail_name(rng)
    while name in names:
        name = f"{name} {rng.choice(_SUFFIXES)}"
    names.add(name)
    count = 0 if rng.random() < 0.25 else rng.randint(1, 2)
    genres = tuple(rng.sample(GENRES, count))
    popularity = max(1, min(100, int(rng.gauss(28, 15))))
    artists.append(Artist(i, spotify_id("artist", i, seed), name, genres, popularity))
    for _ in range(1 if rng.random() < 0.6 else rng.randint(2, 3)):
        year = rng.randint(1990, 2026)
        size = rng.choice((1, 2, 4, 5, 6, 8, 10, 12, 14))
        album = Album(len(albums), spotify_id("album", len(albums), seed),
                      _title(rng, rng.randint(1, 3)), i,
                      f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        albums.append(album)
        for _ in range(size):
            credited = (i,)
            if rng.random() < 0.08:
                credited += (rng.randrange(i),)
            tracks.append(Track(
                len(tracks), spotify_id("track", len(tracks), seed),
                _title(rng, rng.randint(1, 4)), album.index, credited,
                rng.randint(95_000, 420_000), rng.random() < 0.1))


def _tail_name(rng: random.Random) -> str:
    """A name from a space big enough for tens of thousands of artists."""
    word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).title()
    roll = rng.random()
    if roll < 0.4:
        return word
    if roll < 0.7:
        return f"{rng.choice(_FIRST)} {word}"
    if roll < 0.85:
        return f"{word} & The {rng.choice(_SECOND)}"
    return f"The {word} {rng.choice(_SECOND)}"
