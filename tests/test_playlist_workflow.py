"""Making playlists on Spotify: reservations, repeats, progress, leases, and the workflow's
outcomes against the emulator (the pages are in test_views_playlists)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest

from mtm import history, leases, playlists, users
from mtm import playlist_workflow as workflow
from mtm.db import Database
from mtm.playlist_workflow import Status
from mtm.playlists import Choice
from mtm.spotify.client import SpotifyClient
from tests.conftest import BASE_URL, make_play, make_track, sign_in

# Sunday 22 November 2026, 12:00 UTC: every reservation below is made "now" = this moment.
NOW = int(datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp())
KEY = "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2b"
OTHER_KEY = "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2c"
URL = workflow.SPOTIFY_URL


def track_id(conn: sqlite3.Connection, n: int) -> int:
    return conn.execute("SELECT id FROM tracks WHERE spotify_id = ?",
                        (make_track(n).spotify_id,)).fetchone()[0]


@pytest.fixture
def other_user(conn: sqlite3.Connection) -> int:
    return users.upsert_user(conn, "listener-2", "Listener Two")


@pytest.fixture
def tracks(conn: sqlite3.Connection, user_id: int) -> list[int]:
    """Five played tracks, as row ids."""
    history.add_plays(conn, user_id, [make_play(NOW - n * 60, n) for n in range(1, 6)])
    return [track_id(conn, n) for n in range(1, 6)]


def reserve(conn: sqlite3.Connection, user_id: int, track_ids: list[int], *, key: str = KEY,
            now: int = NOW, name: str = "Mix", holder: str = "first",
            request: str | None = None) -> workflow.Reservation:
    return workflow.reserve(conn, user_id, key, holder=holder,
                            request=request or f"request of {key}", name=name,
                            source="current_rotation", year=None, track_ids=track_ids, now=now)


# --- records ---------------------------------------------------------------------------------


def test_a_key_reserves_one_playlist(conn: sqlite3.Connection, user_id: int,
                                     tracks: list[int]) -> None:
    first = reserve(conn, user_id, tracks)
    assert first.outcome == "reserved"
    assert first.playlist.track_count == 5 and not first.playlist.created
    assert leases.held_by(conn, user_id, workflow.lease_name(first.playlist.id), NOW) == "first"
    # While the first request talks to Spotify, the same key is busy.
    assert reserve(conn, user_id, tracks, now=NOW + 10, holder="second").outcome == "busy"
    # Reserved but not created: invisible in the list and to get_playlist.
    assert playlists.list_playlists(conn, user_id) == []
    assert playlists.get_playlist(conn, user_id, first.playlist.id) is None
    workflow.mark_created(conn, first.playlist.id, "sp1", URL + "sp1")
    workflow.release(conn, user_id, first.playlist.id, "first")
    again = reserve(conn, user_id, tracks, now=NOW + 10, holder="second")
    assert again.outcome == "exists" and again.playlist.id == first.playlist.id
    assert conn.execute("SELECT count(*) FROM playlists").fetchone()[0] == 1


def test_the_same_request_from_a_fresh_form_is_a_repeat(conn: sqlite3.Connection,
                                                        user_id: int, tracks: list[int]) -> None:
    first = reserve(conn, user_id, tracks, request="gems|50|Mix")
    # Still at work: a repeat with another key waits for it.
    assert reserve(conn, user_id, tracks, key=OTHER_KEY, now=NOW + 1, holder="second",
                   request="gems|50|Mix").outcome == "busy"
    workflow.mark_created(conn, first.playlist.id, "sp1", URL + "sp1")
    workflow.release(conn, user_id, first.playlist.id, "first")
    repeat = reserve(conn, user_id, tracks, key=OTHER_KEY, now=NOW + 30, holder="second",
                     request="gems|50|Mix")
    assert repeat.outcome == "repeat" and repeat.playlist.id == first.playlist.id
    # Another request is not a repeat, and after REPEAT_SECONDS the same one is not either.
    assert reserve(conn, user_id, tracks, key=OTHER_KEY, now=NOW + 31, holder="second",
                   request="gems|50|Other").outcome == "reserved"
    later = NOW + workflow.REPEAT_SECONDS + 1
    third = "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2d"
    assert reserve(conn, user_id, tracks, key=third, now=later, holder="third",
                   request="gems|50|Mix").outcome == "reserved"
    assert conn.execute("SELECT count(*) FROM playlists").fetchone()[0] == 3


def test_a_failed_or_deleted_playlist_is_no_repeat(conn: sqlite3.Connection, user_id: int,
                                                   other_user: int, tracks: list[int]) -> None:
    failed = reserve(conn, user_id, tracks, request="r")
    workflow.release(conn, user_id, failed.playlist.id, "first", "Spotify is down")
    made = reserve(conn, user_id, tracks, key=OTHER_KEY, now=NOW + 1, holder="second",
                   request="r")
    assert made.outcome == "reserved" and made.playlist.id != failed.playlist.id
    workflow.mark_created(conn, made.playlist.id, "sp1", URL + "sp1")
    workflow.release(conn, user_id, made.playlist.id, "second")
    workflow.mark_deleted(conn, user_id, made.playlist.id)
    third = "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2d"
    assert reserve(conn, user_id, tracks, key=third, now=NOW + 2, holder="third",
                   request="r").outcome == "reserved"
    # Someone else's request is never mine.
    assert reserve(conn, other_user, tracks, key=KEY, now=NOW + 3, holder="fourth",
                   request="r").outcome == "reserved"


def test_a_failed_creation_can_be_retried_with_the_same_key(conn: sqlite3.Connection,
                                                            user_id: int,
                                                            tracks: list[int]) -> None:
    first = reserve(conn, user_id, tracks)
    workflow.release(conn, user_id, first.playlist.id, "first", "Spotify is down", now=NOW + 1)
    assert playlists.find_by_key(conn, user_id, KEY).last_error == "Spotify is down"
    second = reserve(conn, user_id, tracks[:2], now=NOW + 5, name="Mix 2", holder="second")
    assert second.outcome == "reserved" and second.playlist.id == first.playlist.id
    assert second.playlist.track_count == 2 and second.playlist.name == "Mix 2"
    assert second.playlist.last_error is None
    assert len(workflow.pending_uris(conn, second.playlist.id)) == 2


def test_an_abandoned_reservation_expires(conn: sqlite3.Connection, user_id: int,
                                          tracks: list[int]) -> None:
    reserve(conn, user_id, tracks)
    late = NOW + workflow.LEASE_SECONDS
    assert reserve(conn, user_id, tracks, now=late, holder="second").outcome == "reserved"


def test_keys_belong_to_one_user(conn: sqlite3.Connection, user_id: int, other_user: int,
                                 tracks: list[int]) -> None:
    assert reserve(conn, user_id, tracks).outcome == "reserved"
    assert reserve(conn, other_user, tracks).outcome == "reserved"
    assert conn.execute("SELECT count(*) FROM playlists").fetchone()[0] == 2


def test_progress_is_recorded_so_a_retry_adds_only_the_missing(conn: sqlite3.Connection,
                                                               user_id: int,
                                                               tracks: list[int]) -> None:
    playlist = reserve(conn, user_id, list(reversed(tracks))).playlist
    workflow.mark_created(conn, playlist.id, "sp1", URL + "sp1")
    expected = [f"spotify:track:{make_track(n).spotify_id}" for n in (5, 4, 3, 2, 1)]
    assert workflow.pending_uris(conn, playlist.id) == expected
    workflow.record_added(conn, playlist.id, 2)
    assert workflow.pending_uris(conn, playlist.id) == expected[2:]
    shown = playlists.get_playlist(conn, user_id, playlist.id)
    assert shown.tracks_added == 2 and shown.missing == 3 and not shown.complete
    listed = playlists.playlist_tracks(conn, user_id, playlist.id)
    assert [t.added for t in listed] == [True, True, False, False, False]
    assert [t.name for t in listed] == ["Track 5", "Track 4", "Track 3", "Track 2", "Track 1"]
    workflow.record_added(conn, playlist.id, 3)
    assert workflow.pending_uris(conn, playlist.id) == []
    assert playlists.get_playlist(conn, user_id, playlist.id).complete


def test_claim_lets_one_request_add_tracks_at_a_time(conn: sqlite3.Connection, user_id: int,
                                                     other_user: int, tracks: list[int]) -> None:
    playlist = reserve(conn, user_id, tracks).playlist
    workflow.mark_created(conn, playlist.id, "sp1", URL + "sp1")
    # The creating request still holds it.
    assert not workflow.claim(conn, user_id, playlist.id, "retry", now=NOW + 1)
    # Releasing with someone else's name gives back nothing.
    workflow.release(conn, user_id, playlist.id, "retry")
    assert not workflow.claim(conn, user_id, playlist.id, "retry", now=NOW + 1)
    workflow.release(conn, user_id, playlist.id, "first")
    assert not workflow.claim(conn, other_user, playlist.id, "thief", now=NOW + 1)
    assert workflow.claim(conn, user_id, playlist.id, "retry", now=NOW + 1)
    assert not workflow.claim(conn, user_id, playlist.id, "another", now=NOW + 2)


def test_list_rename_delete(conn: sqlite3.Connection, user_id: int, other_user: int,
                            tracks: list[int]) -> None:
    made = []
    for i, key in enumerate(("0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a20",
                             "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a21")):
        playlist = reserve(conn, user_id, tracks, key=key, now=NOW + i, name=f"Mix {i}").playlist
        workflow.mark_created(conn, playlist.id, f"sp{i}", f"{URL}sp{i}")
        made.append(playlist.id)
    listed = playlists.list_playlists(conn, user_id)
    assert [p.name for p in listed] == ["Mix 1", "Mix 0"]
    assert listed[0].created_on == date(2026, 11, 22)
    assert listed[0].source_label == "Current Rotation"
    assert playlists.get_playlist(conn, other_user, made[0]) is None
    assert playlists.get_playlist(conn, user_id, 2**70) is None

    workflow.store_name(conn, other_user, made[0], "Stolen")
    assert playlists.get_playlist(conn, user_id, made[0]).name == "Mix 0"
    assert workflow.store_name(conn, user_id, made[0], "Renamed").name == "Renamed"

    assert not workflow.mark_deleted(conn, other_user, made[0])
    assert workflow.mark_deleted(conn, user_id, made[0])
    assert [p.name for p in playlists.list_playlists(conn, user_id)] == ["Mix 1"]
    assert playlists.get_playlist(conn, user_id, made[0]) is None
    again = reserve(conn, user_id, tracks, key="0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a20")
    assert again.outcome == "deleted"


def test_spotify_url_only_trusts_spotify() -> None:
    good = {"external_urls": {"spotify": "https://open.spotify.com/playlist/abc"}}
    assert workflow.spotify_url(good, "abc") == "https://open.spotify.com/playlist/abc"
    for odd in ({}, {"external_urls": {"spotify": "javascript:alert(1)"}},
                {"external_urls": None}):
        assert workflow.spotify_url(odd, "abc") == "https://open.spotify.com/playlist/abc"


# --- the workflow against the emulator ------------------------------------------------------


class World:
    """A database with one signed-up demo listener, the emulator and a client that reaches it."""

    def __init__(self, db: Database, client: SpotifyClient, emulator, user_id: int) -> None:
        self.db, self.client, self.emulator, self.user_id = db, client, emulator, user_id

    def play_tracks(self, count: int) -> None:
        """Give the listener `count` catalogue tracks played in the last days."""
        catalogue = self.emulator.catalogue
        start = int(time.time()) - 2 * 86400
        plays = []
        for i, track in enumerate(catalogue.tracks[:count]):
            artist = catalogue.artists[track.artists[0]]
            track_in = history.TrackIn(track.spotify_id, track.name,
                                       (history.ArtistIn(artist.spotify_id, artist.name),))
            plays += [history.PlayIn(start - i * 1000 - k, track_in, 180_000, "api")
                      for k in range(count - i + 1)]
        self.db.call(history.add_plays, self.user_id, plays)


@pytest.fixture
async def world(app, emulator) -> AsyncIterator[World]:
    """The demo listener signed in through the app, with 12 tracks played lately."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url=BASE_URL) as http:
        await sign_in(http)
    services = app.state.services
    user_id = services.db.call(
        lambda conn: conn.execute("SELECT id FROM users WHERE spotify_id = 'demo'").fetchone()[0])
    world = World(services.db, services.spotify, emulator, user_id)
    world.play_tracks(12)
    yield world


async def test_create_adds_every_track_once(world: World) -> None:
    choice = Choice("current_rotation", count=12, name="Twelve")
    outcome = await workflow.create(world.db, world.client, world.user_id, KEY, choice)
    assert outcome.status is Status.CREATED and outcome.playlist.complete
    made = world.emulator.playlists[outcome.playlist.spotify_id]
    assert made["name"] == "Twelve" and len(made["items"]) == 12
    # Given back: the same key and a retry need no wait.
    assert world.db.call(leases.held_by, world.user_id,
                         workflow.lease_name(outcome.playlist.id)) is None
    again = await workflow.create(world.db, world.client, world.user_id, KEY, choice)
    assert again.status is Status.ALREADY and again.playlist.id == outcome.playlist.id
    fresh = await workflow.create(world.db, world.client, world.user_id, OTHER_KEY, choice)
    assert fresh.status is Status.ALREADY and fresh.playlist.id == outcome.playlist.id
    assert len(world.emulator.playlists) == 1


async def test_concurrent_creates_make_one_playlist(world: World) -> None:
    choice = Choice("current_rotation", count=5, name="Once")
    keys = [KEY, OTHER_KEY, "0b7f6b1e-6a55-4c1b-9d55-1f1b7c0f1a2d"]
    outcomes = await asyncio.gather(*(workflow.create(world.db, world.client, world.user_id,
                                                      key, choice) for key in keys))
    assert sorted(o.status for o in outcomes) == [Status.ALREADY, Status.ALREADY,
                                                  Status.CREATED]
    assert len({o.playlist.id for o in outcomes}) == 1
    assert len(world.emulator.playlists) == 1


async def test_a_repeat_gives_up_waiting_on_a_stuck_request(world: World,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(workflow, "WAIT_SECONDS", 0.3)
    choice = Choice("current_rotation", count=5, name="Stuck")
    plan = world.db.call(playlists.preview, world.user_id, choice)
    world.db.call(workflow.reserve, world.user_id, KEY, holder="crashed",
                  request=workflow.request_of(choice, plan.name), name=plan.name,
                  source=choice.source, year=None, track_ids=[t.track_id for t in plan.tracks])
    outcome = await workflow.create(world.db, world.client, world.user_id, OTHER_KEY, choice)
    assert outcome.status is Status.BUSY
    assert world.emulator.playlists == {}


async def test_a_failed_delete_keeps_the_playlist(world: World) -> None:
    made = await workflow.create(world.db, world.client, world.user_id, KEY,
                                 Choice("current_rotation", count=3, name="Stays"))
    world.emulator.fail("/v1/me/library", 503, times=3)
    outcome = await workflow.delete(world.db, world.client, world.user_id, made.playlist.id)
    assert outcome.status is Status.FAILED and outcome.error is not None
    assert world.db.call(playlists.get_playlist, world.user_id, made.playlist.id) is not None
    assert world.emulator.playlists[made.playlist.spotify_id]["followed"] is True
    world.emulator.fail("/v1/me/library", 403)
    refused = await workflow.delete(world.db, world.client, world.user_id, made.playlist.id)
    assert refused.status is Status.RECONNECT
    assert world.db.call(playlists.get_playlist, world.user_id, made.playlist.id) is not None
    deleted = await workflow.delete(world.db, world.client, world.user_id, made.playlist.id)
    assert deleted.status is Status.DELETED
    assert world.db.call(playlists.get_playlist, world.user_id, made.playlist.id) is None
    assert world.emulator.playlists[made.playlist.spotify_id]["followed"] is False


async def test_rename_and_the_other_users_playlist(world: World) -> None:
    made = await workflow.create(world.db, world.client, world.user_id, KEY,
                                 Choice("current_rotation", count=3, name="Old"))
    renamed = await workflow.rename(world.db, world.client, world.user_id, made.playlist.id, "New")
    assert renamed.status is Status.RENAMED and renamed.playlist.name == "New"
    assert world.emulator.playlists[made.playlist.spotify_id]["name"] == "New"
    stranger = world.db.call(users.upsert_user, "stranger", "Stranger")
    for outcome in (
            await workflow.rename(world.db, world.client, stranger, made.playlist.id, "Mine"),
            await workflow.delete(world.db, world.client, stranger, made.playlist.id),
            await workflow.retry(world.db, world.client, stranger, made.playlist.id)):
        assert outcome.status is Status.NOT_FOUND
    with pytest.raises(ValueError):
        await workflow.rename(world.db, world.client, world.user_id, made.playlist.id, "")
