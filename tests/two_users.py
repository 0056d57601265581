"""Two signed-in users with real data each, and a snapshot of everything one of them owns.

Each user gets plays (synced and stored), a hiding rule, a playlist made on the emulator, a
backup, an import with its jobs and a sync job; names are distinctive ("Aardvark …" for the
demo account, "Bison …" for the newcomer) so a test can tell whose data a page shows.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field

import httpx

from mtm import history
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from tests.conftest import BASE_URL, csrf_from, sign_in
from tests.test_importer import extended, track_id


@dataclass
class Person:
    """A signed-in user of the app and the ids of their rows, by path parameter name."""

    account: str
    prefix: str
    client: httpx.AsyncClient
    user_id: int = 0
    token: str = ""
    ids: dict[str, int] = field(default_factory=dict)
    marks: list[str] = field(default_factory=list)

    async def refresh_token(self) -> str:
        """Sign in again if the session ended; the page's CSRF token."""
        page = await self.client.get("/settings")
        if page.status_code != 200:
            await sign_in(self.client, self.account)
            page = await self.client.get("/settings")
        self.token = csrf_from(page.text)
        return self.token


def new_client(app) -> httpx.AsyncClient:
    """A browser-like client of the app (cookies kept, redirects not followed)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)


def one(conn: sqlite3.Connection, sql: str, *args: object) -> int:
    return conn.execute(sql, args).fetchone()[0]


async def wait_for_jobs(app) -> None:
    """Wait for every background job started so far, artist lookups included."""
    runner = app.state.services.jobs
    while pending := list(runner._tasks):
        for job_id in pending:
            await runner.wait(job_id)


def _tracks(prefix: str, base: int) -> list[TrackIn]:
    found = []
    for n in range(6):
        band = n // 3
        # Spotify ids are 22 base-62 characters: digits will do, apart from the import's.
        artist = ArtistIn(track_id(20 * base + band), f"{prefix} Band {band}")
        found.append(TrackIn(track_id(10 * base + n), f"{prefix} Song {n}", (artist,),
                             AlbumIn(track_id(30 * base + band), f"{prefix} Album {band}"),
                             200_000))
    return found


async def populate(app, person: Person, base: int) -> None:
    """Sign in and give the person every kind of data, through the app where it can."""
    db = app.state.services.db
    await sign_in(person.client, person.account)
    person.user_id = await db.run(lambda c: one(
        c, "SELECT id FROM users WHERE spotify_id = ?", person.account))
    # Plays just before the newest one the sign-in stored (or a fixed moment for none).
    newest = await db.run(lambda c: c.execute(
        "SELECT max(played_at) FROM plays").fetchone()[0]) or 1_780_000_000
    tracks = _tracks(person.prefix, base)
    plays = [PlayIn(newest - 3600 * (i + 1), tracks[i % len(tracks)], 200_000, "api")
             for i in range(24)]
    await db.run(history.add_plays, person.user_id, plays)
    token = await person.refresh_token()
    client = person.client

    person.ids["artist_id"] = await db.run(lambda c: one(
        c, "SELECT id FROM artists WHERE name = ?", f"{person.prefix} Band 0"))
    person.ids["album_id"] = await db.run(lambda c: one(
        c, "SELECT id FROM albums WHERE name = ?", f"{person.prefix} Album 0"))
    person.ids["track_id"] = await db.run(lambda c: one(
        c, "SELECT id FROM tracks WHERE name = ?", f"{person.prefix} Song 0"))
    hidden_artist = await db.run(lambda c: one(
        c, "SELECT id FROM artists WHERE name = ?", f"{person.prefix} Band 1"))
    hid = await client.post("/hidden", data={"csrf_token": token, "kind": "artist",
                                             "target": str(hidden_artist)})
    assert hid.status_code == 303, hid.text[:500]
    person.ids["rule_id"] = await db.run(lambda c: one(
        c, "SELECT id FROM hide_rules WHERE user_id = ?", person.user_id))

    # Stored as the app stores a made playlist: the emulator knows only its own catalogue.
    person.ids["playlist_id"] = await db.run(_add_playlist, person.user_id, person.prefix,
                                             newest, [t.spotify_id for t in tracks[:3]])

    backed = await client.post("/settings/backups", data={"csrf_token": token})
    assert backed.status_code == 303, backed.text[:500]
    person.ids["backup_id"] = await db.run(lambda c: one(
        c, "SELECT max(id) FROM backups WHERE user_id = ?", person.user_id))

    records = [extended(1_560_000_000 + i * 300, base + i,
                        master_metadata_track_name=f"{person.prefix} Imported {i}",
                        master_metadata_album_artist_name=f"{person.prefix} Importer",
                        master_metadata_album_album_name=f"{person.prefix} Import Album",
                        spotify_track_uri=f"spotify:track:{track_id(base + i)}")
               for i in range(5)]
    sent = await client.post("/settings/imports", data={"csrf_token": token}, files={
        "files": ("Streaming_History_Audio_2019_0.json", json.dumps(records).encode(),
                  "application/json")})
    assert sent.status_code == 303, sent.text[:500]
    preview_job = int(sent.headers["location"].rsplit("/", 1)[1])
    await wait_for_jobs(app)
    started = await client.post(f"/jobs/{preview_job}/import", data={"csrf_token": token})
    assert started.status_code == 303, started.text[:500]
    await wait_for_jobs(app)
    person.ids["job_id"] = preview_job
    person.ids["import_id"] = await db.run(lambda c: one(
        c, "SELECT id FROM imports WHERE user_id = ?", person.user_id))
    synced = await client.post("/settings/sync", data={"csrf_token": token})
    assert synced.status_code in (200, 303), synced.text[:500]
    await wait_for_jobs(app)
    file_name = await db.run(lambda c: c.execute(
        "SELECT file_name FROM backups WHERE id = ?", (person.ids["backup_id"],)).fetchone()[0])
    spotify_playlist = await db.run(lambda c: c.execute(
        "SELECT spotify_id FROM playlists WHERE id = ?",
        (person.ids["playlist_id"],)).fetchone()[0])
    person.marks = [person.prefix, file_name, spotify_playlist]


def _add_playlist(conn: sqlite3.Connection, user_id: int, prefix: str, now: int,
                  spotify_tracks: list[str]) -> int:
    spotify_id = track_id(user_id)[::-1]
    playlist_id = one(conn, """INSERT INTO playlists (user_id, spotify_id, name, source,
                                   track_count, tracks_added, url, idempotency_key, created_at,
                                   updated_at, request)
                               VALUES (?, ?, ?, 'current_rotation', 3, 3, ?, ?, ?, ?, '[]')
                               RETURNING id""",
                      user_id, spotify_id, f"{prefix} Mix",
                      f"https://open.spotify.com/playlist/{spotify_id}", f"{prefix}-key", now,
                      now)
    for position, spotify_track in enumerate(spotify_tracks):
        conn.execute("INSERT INTO playlist_tracks (playlist_id, position, track_id) "
                     "SELECT ?, ?, id FROM tracks WHERE spotify_id = ?",
                     (playlist_id, position, spotify_track))
    return playlist_id


def _user_tables(conn: sqlite3.Connection) -> list[str]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return [n for n in names
            if "user_id" in {r[1] for r in conn.execute(f'PRAGMA table_info("{n}")')}]


def rows_of(conn: sqlite3.Connection, user_id: int) -> dict[str, list[tuple]]:
    """Every row the user owns, in every table with a user_id (and their playlists' tracks)."""
    found = {table: sorted(tuple(r) for r in conn.execute(
        f'SELECT * FROM "{table}" WHERE user_id = ?', (user_id,)))
        for table in _user_tables(conn)}
    found["users"] = [tuple(r) for r in conn.execute("SELECT * FROM users WHERE id = ?",
                                                     (user_id,))]
    found["playlist_tracks"] = sorted(tuple(r) for r in conn.execute(
        "SELECT pt.* FROM playlist_tracks pt JOIN playlists p ON p.id = pt.playlist_id "
        "WHERE p.user_id = ?", (user_id,)))
    return found


def files_of(app, user_id: int) -> dict[str, str]:
    """The user's backup and upload files, with a hash of each."""
    settings = app.state.services.settings
    found = {}
    for root in (settings.backups_dir, settings.uploads_dir):
        folder = root / str(user_id)
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


async def everything_of(app, person: Person) -> tuple[dict, dict]:
    """The person's rows and files, once every background job has finished."""
    await wait_for_jobs(app)
    rows = await app.state.services.db.run(rows_of, person.user_id)
    return rows, files_of(app, person.user_id)
