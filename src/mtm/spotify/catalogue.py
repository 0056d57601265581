"""A generated music catalogue shared by the Spotify emulator and the demo history."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

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


@dataclass(frozen=True)
class Artist:
    """An artist as the Web API describes one."""

    index: int
    spotify_id: str
    name: str
    genres: tuple[str, ...]
    popularity: int


@dataclass(frozen=True)
class Album:
    """An album with its main artist."""

    index: int
    spotify_id: str
    name: str
    artist: int
    release_date: str


@dataclass(frozen=True)
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

    @property
    def tracks_by_id(self) -> dict[str, Track]:
        """Tracks keyed by Spotify id."""
        return _index(self.tracks)

    @property
    def artists_by_id(self) -> dict[str, Artist]:
        """Artists keyed by Spotify id."""
        return _index(self.artists)

    @property
    def albums_by_id(self) -> dict[str, Album]:
        """Albums keyed by Spotify id."""
        return _index(self.albums)

    def artist_tracks(self, artist: int) -> list[Track]:
        """Tracks whose main artist is `artist`."""
        return [t for t in self.tracks if t.artists[0] == artist]


_indexes: dict[int, dict] = {}


def _index(items: tuple) -> dict:
    key = id(items)
    if key not in _indexes:
        _indexes[key] = {item.spotify_id: item for item in items}
    return _indexes[key]


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


@lru_cache(maxsize=4)
def build_catalogue(seed: int = 2026, artist_count: int = 400) -> Catalogue:
    """Generate the same catalogue for the same seed: artists with genres, albums, tracks."""
    rng = random.Random(seed)
    artists: list[Artist] = []
    names: set[str] = set()
    for i in range(artist_count):
        if i < len(FIXED_ARTISTS):
            name, genres = FIXED_ARTISTS[i]
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
            while name in names:
                name = f"{name} {rng.choice(('II', 'Collective', 'Trio', 'Band', 'Ensemble'))}"
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
                    guest = rng.randrange(artist_count)
                    if guest != artist.index:
                        credited += (guest,)
                tracks.append(Track(
                    len(tracks), spotify_id("track", len(tracks), seed),
                    _title(rng, rng.randint(1, 4)), album.index, credited,
                    rng.randint(95_000, 420_000), rng.random() < 0.1))
    return Catalogue(tuple(artists), tuple(albums), tuple(tracks))
