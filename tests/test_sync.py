"""Syncing against the emulator: every play once, through failures, under a lease."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import accounts, db, sync
from mtm.config import SCOPES
from mtm.scheduler import Scheduler
from mtm.spotify import oauth
from mtm.spotify.client import SpotifyClient
from mtm.spotify.emulator import Emulator
from tests.conftest import Clock

# An evening: the demo listener is playing, so every hour brings new plays.
EVENING = datetime(2026, 11, 20, 18, 30, tzinfo=UTC).timestamp()


@dataclass
class World:
    """A database with connected users, the emulator and a client that reaches it."""

    path: Path
    db: db.Database
    emulator: Emulator
    client: SpotifyClient
    clock: Clock

    def conn(self) -> sqlite3.Connection:
        return db.connect(self.path)

    def count(self, sql: str, *args) -> int:
        with self.conn() as conn:
            return conn.execute(sql, args).fetchone()[0]


async def connect_user(world: World, account: str) -> int:
    """Sign a user in the way /callback does, without the browser."""
    verifier = oauth.make_verifier()
    code = world.emulator.grant_code(account, redirect_uri="http://127.0.0.1:8000/callback",
                                     code_challenge=oauth.challenge_for(verifier),
                                     scope=" ".join(SCOPES))
    attempt = accounts.LoginAttempt(verifier, "http://127.0.0.1:8000/callback", None)
    return await accounts.complete_login(world.db, world.client, code, attempt)


@pytest.fixture
async def world(tmp_path: Path):
    path = tmp_path / "sync.sqlite3"
    conn = db.connect(path)
    db.migrate(conn)
    conn.close()
    clock = Clock(EVENING)
    emulator = Emulator(client_id="mtm-demo", clock=clock)
    client = SpotifyClient(client_id="mtm-demo", client_secret=None,
                           accounts_url=Emulator.accounts_url, api_url=Emulator.api_url,
                           transport=emulator.transport(), clock=clock, sleep=_no_sleep)
    database = db.Database(path)
    yield World(path, database, emulator, client, clock)
    await client.aclose()
    database.close()


async def _no_sleep(seconds: float) -> None:
    return None


def fast_pacer() -> sync.Pacer:
    return sync.Pacer(interval=0)


async def run(world: World, user_id: int, **kwargs) -> sync.SyncRun:
    result = await sync.sync_user(world.db, world.client, user_id, holder="test",
                                  pacer=fast_pacer(), **kwargs)
    assert result is not None
    return result


async def test_normal_sync_stores_plays_snapshot_and_artist_details(world: World) -> None:
    user = await connect_user(world, "demo")
    result = await run(world, user)
    assert (result.outcome, result.plays_added, result.error) == ("ok", 50, None)
    assert world.count("SELECT count(*) FROM plays WHERE source = 'api'") == 50
    # Six lists (two kinds x three ranges) for today, each ranked from 1.
    lists = world.count("SELECT count(DISTINCT kind || time_range) FROM top_snapshots")
    assert lists == 6
    assert world.count("SELECT min(rank) FROM top_snapshots") == 1
    # Artists seen in plays were looked up one by one; genres arrived.
    assert world.count("SELECT count(*) FROM artist_genres") > 0
    looked_up = {p for (_, p) in world.emulator.requests if p.startswith("/v1/artists/")}
    assert looked_up and all(p.count("/") == 3 for p in looked_up)
    assert not any("ids=" in p for _, p in world.emulator.requests)


async def test_repeated_sync_stores_nothing_twice(world: World) -> None:
    user = await connect_user(world, "demo")
    await run(world, user)
    snapshot_rows = world.count("SELECT count(*) FROM top_snapshots")
    again = await run(world, user)
    assert (again.outcome, again.plays_added) == ("ok", 0)
    assert world.count("SELECT count(*) FROM plays") == 50
    assert world.count("SELECT sum(plays) FROM user_tracks") == 50
    assert snapshot_rows > 0
    assert world.count("SELECT count(*) FROM top_snapshots") == snapshot_rows  # not re-taken
    calls = [p for _, p in world.emulator.requests if p.startswith("/v1/me/top/")]
    assert len(calls) == 6


async def test_polls_never_miss_a_play(world: World) -> None:
    user = await connect_user(world, "demo")
    await run(world, user)
    first_newest = world.count("SELECT max(played_at) FROM plays")
    # Every 20 minutes a few plays happen: each sync fetches exactly the new ones.
    added = []
    for _ in range(6):
        world.clock.now += 20 * 60
        added.append((await run(world, user)).plays_added)
    expected = [p for p in world.emulator.play_history("demo", (first_newest + 1) * 1000,
                                                       int(world.clock.now * 1000) + 1)
                if p.stored]
    stored = [r[0] for r in world.conn().execute(
        "SELECT played_at FROM plays WHERE played_at > ? ORDER BY played_at", (first_newest,))]
    assert stored == [p.played_at_ms // 1000 for p in expected]
    assert sum(added) == len(stored) > 0


async def test_a_late_play_is_recorded(world: World) -> None:
    user = await connect_user(world, "demo")
    await run(world, user)
    newest = world.count("SELECT max(played_at) FROM plays")
    # A phone that was offline reports, twenty minutes on, a play older than the newest stored.
    world.clock.now += 20 * 60
    late = world.emulator.deliver_late(
        "demo", ended_ms_ago=int(world.clock.now * 1000) - newest * 1000 + 90_000, index=3)
    assert late.played_at_ms // 1000 < newest
    result = await run(world, user)
    assert result.outcome == "ok" and result.plays_added >= 1
    stored = world.count("SELECT count(*) FROM plays WHERE played_at = ?",
                         late.played_at_ms // 1000)
    assert stored == 1
    # And only once, however often the list is polled again.
    assert (await run(world, user)).plays_added == 0


async def test_items_that_are_not_music_are_counted_not_stored(world: World) -> None:
    user = await connect_user(world, "demo")
    # Move on until the last 50 hold a local file and something that is not a track.
    while True:
        listed = world.emulator.recent_plays("demo")
        kinds = {p.kind for p in listed}
        if "local" in kinds and kinds & {"episode", "unavailable"}:
            break
        world.clock.now += 3 * 3600
    result = await run(world, user)
    odd = sum(p.kind in ("episode", "unavailable") for p in listed)
    assert result.plays_added == len(listed) - odd and result.items_skipped == odd
    assert sync.latest_run(world.conn(), user).items_skipped == odd
    local = next(p for p in listed if p.kind == "local")
    name, spotify_id = world.conn().execute(
        "SELECT t.name, t.spotify_id FROM plays p JOIN tracks t ON t.id = p.track_id "
        "WHERE p.played_at = ?", (local.played_at_ms // 1000,)).fetchone()
    assert name == local.track.name and spotify_id is None


async def test_quota_exceeded_defers_every_user_until_it_resets(world: World) -> None:
    first = await connect_user(world, "demo")
    second = await connect_user(world, "newcomer")
    world.emulator.fail("/v1/me/player/recently-played", 429, reason="QUOTA_EXCEEDED")
    scheduler = Scheduler(world.db, world.client, interval=0, pacer=fast_pacer())
    before = len(world.emulator.requests)
    results = dict(await scheduler.run_once())
    assert {results[first].outcome, results[second].outcome} == {"deferred"}
    assert "daily allowance" in results[first].error
    until = world.count("SELECT until FROM spotify_quota")
    assert until > time.time() and results[first].retry_at == until
    # Only the first call reached Spotify; the second user was not even tried there.
    assert len(world.emulator.requests) - before == 1
    # Until the quota resets, no user is due and nothing is sent.
    assert await scheduler.run_once() == []
    assert len(world.emulator.requests) - before == 1
    # The reset time comes (the runs were deferred to it too).
    with world.conn() as conn:
        conn.execute("UPDATE spotify_quota SET until = ?", (int(time.time()) - 1,))
        conn.execute("UPDATE sync_runs SET retry_at = ?", (int(time.time()) - 1,))
    resumed = dict(await scheduler.run_once())
    assert resumed[first].outcome == resumed[second].outcome == "ok"


async def test_rate_limit_defers_that_user_only(world: World) -> None:
    first = await connect_user(world, "demo")
    second = await connect_user(world, "newcomer")
    world.emulator.fail("/v1/me/player/recently-played", 429, times=1, retry_after=7200)
    scheduler = Scheduler(world.db, world.client, interval=0, pacer=fast_pacer())
    results = dict(await scheduler.run_once())
    assert results[first].outcome == "deferred"
    assert results[first].retry_at >= time.time() + 7100
    assert "limiting" in results[first].error.lower()
    assert results[second].outcome == "ok"
    # The next pass leaves the deferred user alone until Retry-After has passed.
    due = await world.db.run(sync.users_due, int(time.time()))
    assert first not in due and second in due
    later = await world.db.run(sync.users_due, int(time.time()) + 7300)
    assert first in later


async def test_rate_limit_during_artist_lookups_keeps_the_plays(world: World) -> None:
    user = await connect_user(world, "demo")
    world.emulator.fail("/v1/artists/", 429, times=1, retry_after=30)
    result = await run(world, user)
    assert result.outcome == "deferred" and result.plays_added == 50
    assert world.count("SELECT count(*) FROM plays") == 50
    # The lookups left are picked up by the next run.
    missing = world.count("SELECT count(*) FROM artists WHERE details_fetched_at IS NULL")
    assert missing > 0
    result = await run(world, user)
    assert result.outcome == "ok"
    assert world.count("SELECT count(*) FROM artists WHERE details_fetched_at IS NULL") < missing


@pytest.mark.parametrize("fault", ["500", "timeout"])
async def test_server_errors_and_timeouts_are_retried_then_recorded(world: World,
                                                                    fault: str) -> None:
    user = await connect_user(world, "demo")
    prefix = "/v1/me/player/recently-played"

    def inject(times: int) -> None:
        if fault == "timeout":
            world.emulator.timeout(prefix, times=times)
        else:
            world.emulator.fail(prefix, 500, times=times)

    inject(1)
    recovered = await run(world, user)
    assert (recovered.outcome, recovered.plays_added) == ("ok", 50)

    with world.conn() as conn:
        conn.execute("DELETE FROM plays")
        conn.execute("DELETE FROM user_tracks")
        conn.execute("DELETE FROM user_artists")
        conn.execute("DELETE FROM listening_days")
    world.emulator.requests.clear()
    inject(10)
    failed = await run(world, user)
    assert failed.outcome == "failed" and failed.plays_added == 0
    assert "Spotify" in failed.error
    assert len([p for _, p in world.emulator.requests if p.startswith(prefix)]) == 3
    assert world.count("SELECT count(*) FROM plays") == 0
    assert world.count("SELECT count(*) FROM listening_days") == 0


async def test_invalid_grant_flags_the_user_and_keeps_data(world: World) -> None:
    user = await connect_user(world, "demo")
    await run(world, user)
    world.emulator.expire_access_tokens()
    world.emulator.expire_consent()
    result = await run(world, user)
    assert result.outcome == "failed" and "reconnect" in result.error.lower()
    assert world.count("SELECT reconnect_needed FROM users WHERE id = ?", user) == 1
    assert world.count("SELECT count(*) FROM plays") == 50
    assert world.count("SELECT count(*) FROM tokens") == 1
    assert user not in await world.db.run(sync.users_due, int(time.time()))


async def test_artists_without_genres_are_normal(world: World) -> None:
    user = await connect_user(world, "demo")
    world.emulator.omit_artist_details = True
    result = await run(world, user)
    assert result.outcome == "ok"
    assert world.count("SELECT count(*) FROM artist_genres") == 0
    # Looked up once, answered without genres: not asked again (a local file's artist has
    # no id to look up).
    assert world.count("SELECT count(*) FROM artists a JOIN user_artists ua "
                       "ON ua.artist_id = a.id WHERE a.details_fetched_at IS NULL "
                       "AND a.spotify_id IS NOT NULL") == 0


async def test_two_schedulers_never_sync_a_user_twice(world: World) -> None:
    user = await connect_user(world, "demo")
    other_db = db.Database(world.path)
    try:
        one = Scheduler(world.db, world.client, interval=0, holder="process-1",
                        pacer=fast_pacer())
        two = Scheduler(other_db, world.client, interval=0, holder="process-2",
                        pacer=fast_pacer())
        first, second = await asyncio.gather(one.run_once([user]), two.run_once([user]))
    finally:
        other_db.close()
    runs = [r for (_, r) in first + second]
    assert sorted(r is None for r in runs) == [False, True]
    assert world.count("SELECT count(*) FROM sync_runs") == 1
    assert world.count("SELECT count(*) FROM plays") == 50


async def test_one_users_crash_does_not_stop_the_others(world: World, monkeypatch) -> None:
    first = await connect_user(world, "demo")
    second = await connect_user(world, "newcomer")
    real = sync.save_plays

    def explode_for_first(conn, user_id, run_id, plays, skipped=0):
        if user_id == first:
            raise RuntimeError("disk on fire")
        return real(conn, user_id, run_id, plays, skipped)

    monkeypatch.setattr(sync, "save_plays", explode_for_first)
    results = dict(await Scheduler(world.db, world.client, interval=0,
                                   pacer=fast_pacer()).run_once())
    assert results[first].outcome == "failed"
    assert "unexpected" in results[first].error.lower()
    assert results[second].outcome == "ok"
    assert world.count("SELECT count(*) FROM leases") == 0


REPO = Path(__file__).resolve().parents[1]
CRASH = textwrap.dedent("""
    import os, sys
    from mtm import db, history
    from tests.conftest import make_play

    conn = db.connect(sys.argv[1])

    def plays():
        for i in range(40):
            if i == 25:
                os._exit(9)  # the process dies inside the write transaction
            yield make_play(1_700_000_000 + i * 200, i)

    history.add_plays(conn, int(sys.argv[2]), plays())
""")


async def test_a_crash_inside_the_transaction_leaves_a_consistent_database(
        world: World) -> None:
    user = await connect_user(world, "demo")
    with world.conn() as conn:
        run_id = sync.start_run(conn, user, int(time.time()))
    crashed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", CRASH, str(world.path), str(user)],
        cwd=REPO, capture_output=True, timeout=60)
    assert crashed.returncode == 9, crashed.stderr.decode()
    with world.conn() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM plays").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
    # The next run closes the interrupted one and completes the work.
    result = await run(world, user)
    assert (result.outcome, result.plays_added) == ("ok", 50)
    interrupted = await world.db.run(sync.get_run, run_id)
    assert interrupted.outcome == "failed" and interrupted.error == sync.INTERRUPTED
    assert world.count("SELECT sum(plays) FROM listening_days") == 50


async def test_pacer_spaces_requests() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = sync.Pacer(interval=0.5, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(3):
        await pacer.wait()
    assert slept == [0.5, 0.5]


async def test_scheduler_loop_runs_and_stops(world: World) -> None:
    user = await connect_user(world, "demo")
    scheduler = Scheduler(world.db, world.client, interval=3600, pacer=fast_pacer())
    scheduler.start()
    for _ in range(200):
        if world.count("SELECT count(*) FROM sync_runs WHERE outcome != 'running'"):
            break
        await asyncio.sleep(0.02)
    await scheduler.stop()
    assert world.count("SELECT count(*) FROM plays WHERE user_id = ?", user) == 50


async def test_a_sync_stores_album_covers_and_artist_pictures(world: World) -> None:
    user = await connect_user(world, "demo")
    await run(world, user)
    with world.conn() as conn:
        albums = conn.execute("SELECT spotify_id, image_url FROM albums "
                              "WHERE spotify_id IS NOT NULL").fetchall()
        artists = conn.execute("SELECT spotify_id, image_url FROM artists "
                               "WHERE details_fetched_at IS NOT NULL").fetchall()
    assert albums and artists
    # The 300 px cover and the 320 px picture: the smallest at least twice the 96 px shown.
    assert all(url == f"{Emulator.api_url[:-3]}/image/ab67616d00001e02{ident}"
               for ident, url in albums), albums[:3]
    assert all(url == f"{Emulator.api_url[:-3]}/image/ab67616100005174{ident}"
               for ident, url in artists), artists[:3]
