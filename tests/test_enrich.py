"""Artist lookups after an import: ids from tracks, details, merges, rate limits, progress."""

from __future__ import annotations

import time

import httpx
import pytest

from mtm import enrich, history, jobs, sync
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn
from mtm.spotify.catalogue import build_catalogue
from tests.conftest import sign_in

CATALOGUE = build_catalogue(2026)


def services_of(app):
    return app.state.services


async def demo_user(app) -> int:
    return await services_of(app).db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])


def exported_play(ts: int, index: int) -> PlayIn:
    """A play of catalogue track `index` as an export gives it: the track's id, names only."""
    track = CATALOGUE.tracks[index]
    artist = CATALOGUE.artists[track.artists[0]]
    return PlayIn(ts, TrackIn(track.spotify_id, track.name, (ArtistIn(None, artist.name),),
                              AlbumIn(None, "Some album")), 200_000, "export", key=ts)


async def run_lookups(app, user: int) -> jobs.Job:
    services = services_of(app)
    services.scheduler.pacer = sync.Pacer(interval=0)
    job = await enrich.request(services, user)
    assert job is not None
    await services.jobs.wait(job.id)
    return await services.db.run(jobs.get, user, job.id)


@pytest.fixture
async def user(client: httpx.AsyncClient, app) -> int:
    await sign_in(client, account="newcomer")
    return await services_of(app).db.run(
        lambda c: c.execute("SELECT id FROM users WHERE spotify_id <> 'demo'").fetchone()[0])


async def test_name_only_artists_get_ids_then_details(app, user: int,
                                                      client: httpx.AsyncClient) -> None:
    db = services_of(app).db
    index = next(i for i, t in enumerate(CATALOGUE.tracks)
                 if CATALOGUE.artists[t.artists[0]].genres)
    await db.run(history.add_plays, user, [exported_play(1_600_000_000, index)])
    before = await db.run(enrich.status, user)
    assert before.missing == 1 and before.percent == 0
    settings = (await client.get("/settings")).text
    assert "Looking up genres and pictures of your artists" in settings and "0 of 1" in settings
    done = await run_lookups(app, user)
    assert done.state == "done" and done.result == {"looked_up": 1}
    artist = CATALOGUE.artists[CATALOGUE.tracks[index].artists[0]]
    row = await db.run(lambda c: c.execute(
        "SELECT a.spotify_id, a.details_fetched_at IS NOT NULL, count(ag.genre_id) FROM artists a "
        "LEFT JOIN artist_genres ag ON ag.artist_id = a.id WHERE a.name = ? GROUP BY a.id",
        (artist.name,)).fetchone())
    assert tuple(row) == (artist.spotify_id, 1, len(artist.genres))
    assert (await db.run(enrich.status, user)).missing == 0
    assert "have been looked up" in (await client.get("/settings")).text


async def test_an_artist_spotify_knows_already_is_merged(app, user: int) -> None:
    db = services_of(app).db
    track = CATALOGUE.tracks[10]
    artist = CATALOGUE.artists[track.artists[0]]
    other_track = next(t for t in CATALOGUE.tracks if t.artists[0] == track.artists[0]
                       and t.index != track.index)
    polled = PlayIn(1_600_000_500, TrackIn(other_track.spotify_id, other_track.name,
                                           (ArtistIn(artist.spotify_id, artist.name),)),
                    200_000, "api")
    await db.run(history.add_plays, user, [polled])
    # Exported under a name-only artist first, before the polled one adopted that name.
    await db.run(lambda c: c.execute(
        "INSERT INTO artists (name) VALUES (?)", (artist.name,)))
    name_only = await db.run(lambda c: c.execute(
        "SELECT id FROM artists WHERE spotify_id IS NULL AND name = ?",
        (artist.name,)).fetchone()[0])
    await db.run(lambda c: c.execute(
        "INSERT INTO tracks (spotify_id, name, artist_id, match_key) VALUES (?, ?, ?, 'x')",
        (track.spotify_id, track.name, name_only)))
    await db.run(history.add_plays, user, [PlayIn(1_600_000_000, TrackIn(
        track.spotify_id, track.name, (ArtistIn(None, artist.name),)), 180_000, "export",
        key=7)])
    await db.run(history.rebuild_rollups, user)
    assert (await db.run(lambda c: c.execute(
        "SELECT count(*) FROM user_artists WHERE user_id = ?", (user,)).fetchone()[0])) == 2
    await run_lookups(app, user)
    artists = await db.run(lambda c: c.execute(
        "SELECT a.spotify_id, ua.plays FROM user_artists ua JOIN artists a "
        "ON a.id = ua.artist_id WHERE ua.user_id = ?", (user,)).fetchall())
    assert [tuple(a) for a in artists] == [(artist.spotify_id, 2)]
    assert (await db.run(lambda c: c.execute(
        "SELECT count(*) FROM artists WHERE id = ?", (name_only,)).fetchone()[0])) == 0
    plays = await db.run(lambda c: c.execute(
        "SELECT DISTINCT a.spotify_id FROM plays p JOIN artists a ON a.id = p.artist_id "
        "WHERE p.user_id = ?", (user,)).fetchall())
    assert [p[0] for p in plays] == [artist.spotify_id]


async def test_unknown_tracks_and_artists_are_not_asked_again(app, user: int) -> None:
    db = services_of(app).db
    lost = PlayIn(1_600_000_000, TrackIn("0" * 22, "Gone", (ArtistIn(None, "Nobody Known"),)),
                  200_000, "export", key=1)
    local = PlayIn(1_600_000_400, TrackIn(None, "Home Demo", (ArtistIn(None, "Me"),)),
                   200_000, "export", key=2)
    await db.run(history.add_plays, user, [lost, local])
    done = await run_lookups(app, user)
    assert done.state == "done"
    assert (await db.run(enrich.status, user)).missing == 0
    assert await enrich.request(services_of(app), user) is None, "nothing left to look up"


async def test_a_long_rate_limit_defers_the_lookups(app, user: int, emulator) -> None:
    db = services_of(app).db
    await db.run(history.add_plays, user, [exported_play(1_600_000_000, 3)])
    emulator.fail("/v1/tracks", 429, times=1, retry_after=7200)
    done = await run_lookups(app, user)
    assert done.state == "done" and done.result["deferred_until"] > time.time() + 7000
    assert "2 hours" in done.result["message"]
    now = int(time.time())
    assert not await db.run(enrich.due, user, now)
    assert await db.run(enrich.due, user, now + 7300)
    assert (await db.run(enrich.status, user)).missing == 1


async def test_lookups_store_the_album_cover_and_the_artist_picture(app, user: int) -> None:
    db = services_of(app).db
    track = CATALOGUE.tracks[3]
    await db.run(history.add_plays, user, [exported_play(1_600_000_000, track.index)])
    await run_lookups(app, user)
    album_url, artist_url = await db.run(lambda c: c.execute(
        "SELECT al.image_url, a.image_url FROM tracks t JOIN albums al ON al.id = t.album_id "
        "JOIN artists a ON a.id = t.artist_id WHERE t.spotify_id = ?",
        (track.spotify_id,)).fetchone())
    album = CATALOGUE.albums[track.album]
    artist = CATALOGUE.artists[track.artists[0]]
    assert album_url == f"http://emulator.invalid/image/ab67616d00001e02{album.spotify_id}"
    assert artist_url == f"http://emulator.invalid/image/ab67616100005174{artist.spotify_id}"
