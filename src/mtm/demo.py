"""The demo account and its generated, realistic listening history."""

from __future__ import annotations

import io
import json
import sqlite3
import time
import zipfile
from collections.abc import Callable, Iterator
from itertools import islice

from mtm import history
from mtm.db import transaction
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from mtm.spotify.catalogue import BASE_ARTISTS, Catalogue
from mtm.spotify.emulator.core import IN_PROCESS_BASE
from mtm.spotify.emulator.images import image_list
from mtm.spotify.listener import STORED_KINDS, Columns, listener
from mtm.sync import pick_image

DEMO_SPOTIFY_ID = "demo"
DEMO_DISPLAY_NAME = "Demo Listener"

DAY = 86_400
YEAR = 365.25 * DAY
# The emulator's seed: its catalogue and its listener, whose live stream the history joins.
EMULATOR_SEED = 2026

# Plays handed to history.add_plays per call; every call re-upserts the tracks it sees,
# so fewer, larger batches are cheaper, while a cap keeps the row buffer in add_plays small.
BATCH = 500_000

Clock = Callable[[], float]


def ensure_demo_user(conn: sqlite3.Connection, *, clock: Clock = time.time) -> int:
    """Create the demo account's users row if missing and return its id."""
    with transaction(conn):
        conn.execute(
            """INSERT INTO users (spotify_id, display_name, created_at) VALUES (?, ?, ?)
               ON CONFLICT(spotify_id) DO NOTHING""",
            (DEMO_SPOTIFY_ID, DEMO_DISPLAY_NAME, int(clock())))
        return conn.execute("SELECT id FROM users WHERE spotify_id = ?",
                            (DEMO_SPOTIFY_ID,)).fetchone()[0]


def ensure_demo_history(conn: sqlite3.Connection, user_id: int, *, plays: int = 60_000,
                        years: float = 3.0, artists: int = BASE_ARTISTS,
                        clock: Clock = time.time) -> bool:
    """Generate the default demo history when the user has no plays; True when it did.

    It keeps the emulator's catalogue (`artists`, the small one unless `mtm demo-data`
    recorded another), so the demo starts quickly.
    """
    # Plays all hidden are a history too: regenerating would replace them.
    if any(conn.execute(f"SELECT 1 FROM {table} WHERE user_id = ? LIMIT 1",
                        (user_id,)).fetchone() for table in history.STORED):
        return False
    generate_history(conn, user_id, plays=plays, years=years, artists=artists, clock=clock)
    return True


def generate_history(conn: sqlite3.Connection, user_id: int, *, plays: int, years: float,
                     seed: int = 1, end: int | None = None,
                     catalogue_seed: int = EMULATOR_SEED, artists: int = BASE_ARTISTS,
                     clock: Clock = time.time) -> int:
    """Replace the user's history with `plays` generated plays over the `years` before `end`.

    `end` is now (by `clock`) unless given. The last hours are the emulator's own live stream
    (the listener of `catalogue_seed` with `artists` artists: catalogue_artists(plays) makes
    it sound like a real history of that size), so the first sync adds only what is new and
    no play begins before the one before it ended; `seed` draws the sessions before them.
    An emulator with the same catalogue size knows every track.
    """
    if plays < 0:
        raise ValueError("plays must not be negative")
    if years <= 0:
        raise ValueError("years must be positive")
    if end is None:
        end = int(clock())
    start = end - int(years * YEAR)
    if plays > end - start + 1:
        raise ValueError("more plays than seconds in the period")
    demo = listener(catalogue_seed, artists)
    generated = demo.history(plays, start, end, seed) if plays else None
    with transaction(conn):
        # One transaction: readers see the old history or the new one, never a mix.
        history.delete_history(conn, user_id)
        if generated is None:
            return 0
        rows = _play_ins(demo.catalogue, generated)
        added = 0
        while batch := list(islice(rows, BATCH)):
            added += history.add_plays(conn, user_id, batch)
    return added


def _play_ins(catalogue: Catalogue, plays: Columns) -> Iterator[PlayIn]:
    """The plays the app would keep, as PlayIn objects sharing one TrackIn per track.

    A local file is kept by names only, exactly as a sync keeps the same play.
    """
    tracks = _track_ins(catalogue)
    local: dict[int, TrackIn] = {}
    uris: dict[tuple[str, str], str] = {}
    for i, kind in enumerate(plays.kind):
        if kind not in STORED_KINDS:
            continue
        context = plays.context[i]
        uri = None if context is None else uris.get(context)
        if context is not None and uri is None:
            uri = uris[context] = f"spotify:{context[0]}:{context[1]}"
        index = plays.track[i]
        track = tracks[index] if kind == "track" else local.get(index)
        if track is None:
            track = local[index] = _local_in(catalogue, index)
        yield PlayIn(plays.ended_ms[i] // 1000, track, plays.ms_played[i], "demo", uri,
                     plays.skipped[i])


_track_in_cache: dict[int, tuple[Catalogue, tuple[TrackIn, ...]]] = {}


def _track_ins(catalogue: Catalogue) -> tuple[TrackIn, ...]:
    """Each track as the catalogue has it, by index."""
    # add_plays upserts each distinct TrackIn once per call: sharing objects keeps that cheap.
    key = id(catalogue)
    cached = _track_in_cache.get(key)
    if cached is None or cached[0] is not catalogue:
        # The images the emulator's API gives them, as a sync would have stored them.
        artists = tuple(ArtistIn(a.spotify_id, a.name, a.genres, _image("artist", a.spotify_id),
                                 a.popularity) for a in catalogue.artists)
        albums = tuple(AlbumIn(a.spotify_id, a.name, a.release_date,
                               _image("album", a.spotify_id)) for a in catalogue.albums)
        tracks = tuple(
            TrackIn(t.spotify_id, t.name, tuple(artists[i] for i in t.artists), albums[t.album],
                    t.duration_ms, t.explicit)
            for t in catalogue.tracks)
        cached = _track_in_cache[key] = (catalogue, tracks)
    return cached[1]


def _image(kind: str, spotify_id: str) -> str | None:
    """The image URL a sync stores for this emulator album or artist."""
    return pick_image(image_list(IN_PROCESS_BASE, kind, spotify_id))


def _local_in(catalogue: Catalogue, index: int) -> TrackIn:
    """A track as a local file: names only, as a sync keeps it."""
    # Only a few artists' tracks are ever local files: made when first played, not for all.
    t = catalogue.tracks[index]
    return TrackIn(None, t.name, (ArtistIn(None, catalogue.artists[t.artists[0]].name),),
                   AlbumIn(None, catalogue.albums[t.album].name), t.duration_ms, t.explicit)


# --- a sample privacy export, for trying the import in demo mode --------------------------

SAMPLE_PLAYS = 15_000
SAMPLE_FOLDER = "Spotify Extended Streaming History"


def sample_export(conn: sqlite3.Connection, user_id: int, *, plays: int = SAMPLE_PLAYS,
                  seed: int = 11, clock: Clock = time.time) -> tuple[str, bytes]:
    """A zip like Spotify's, of a year of listening ending where the user's history begins.

    Its tracks are the emulator's, so the import links them to what the demo account knows.
    Returns (file name, zip bytes).
    """
    first = conn.execute("SELECT min(played_at) FROM plays WHERE user_id = ?",
                         (user_id,)).fetchone()[0]
    end = (first or int(clock())) - DAY
    start = end - int(YEAR)
    demo = listener(EMULATOR_SEED)
    generated = demo.sessions(plays, start, end, seed)
    catalogue = demo.catalogue
    tracks = _track_ins(catalogue)
    records = [_extended_record(PlayIn(generated.ended_ms[i] // 1000, tracks[generated.track[i]],
                                       generated.ms_played[i], "demo",
                                       _uri(generated.context[i]), generated.skipped[i]))
               for i, kind in enumerate(generated.kind) if kind == "track"]
    first_year = time.gmtime(start).tm_year
    last_year = time.gmtime(end).tm_year
    name = f"Streaming_History_Audio_{first_year}-{last_year}_0.json"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{SAMPLE_FOLDER}/{name}", json.dumps(records, ensure_ascii=False,
                                                               indent=2))
    return "my_spotify_data_sample.zip", buffer.getvalue()


def _uri(context: tuple[str, str] | None) -> str | None:
    return None if context is None else f"spotify:{context[0]}:{context[1]}"


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
