"""The demo account as a visitor sees it: history and live stream are one listener's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtm import accounts, db, demo, sync
from mtm.config import SCOPES
from mtm.spotify import oauth
from mtm.spotify.client import SpotifyClient
from mtm.spotify.emulator import Emulator
from tests.conftest import Clock

REDIRECT = "http://127.0.0.1:8000/callback"
SYNC_INTERVAL = 300  # demo mode's
# Midnight at the turn of a month (UTC, the demo account's zone), and a quiet small hour.
MIDNIGHT = int(datetime(2026, 12, 1, 0, 0, tzinfo=UTC).timestamp())
SMALL_HOURS = int(datetime(2027, 3, 14, 3, 30, tzinfo=UTC).timestamp())


async def _no_sleep(seconds: float) -> None:
    return None


class Demo:
    """A database with the demo account, the emulator on a hand-moved clock, a client."""

    def __init__(self, path: Path, now: int) -> None:
        self.path = path
        self.clock = Clock(now)
        self.emulator = Emulator(client_id="mtm-demo", clock=self.clock)
        self.client = SpotifyClient(client_id="mtm-demo", client_secret=None,
                                    accounts_url=Emulator.accounts_url,
                                    api_url=Emulator.api_url,
                                    transport=self.emulator.transport(), clock=self.clock,
                                    sleep=_no_sleep)
        self.db = db.Database(path)

    def count(self, sql: str, *args: object) -> int:
        with db.connect(self.path) as conn:
            return conn.execute(sql, args).fetchone()[0]

    async def sign_in(self) -> int:
        verifier = oauth.make_verifier()
        code = self.emulator.grant_code("demo", redirect_uri=REDIRECT,
                                        code_challenge=oauth.challenge_for(verifier),
                                        scope=" ".join(SCOPES))
        return await accounts.complete_login(self.db, self.client, code,
                                             accounts.LoginAttempt(verifier, REDIRECT, None))

    async def sync(self, user: int) -> sync.SyncRun:
        run = await sync.sync_user(self.db, self.client, user, holder="test", plays_only=True,
                                   pacer=sync.Pacer(interval=0))
        assert run is not None and run.outcome == "ok", run
        return run


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Demo]:
    path = tmp_path / "demo.sqlite3"
    with db.connect(path) as conn:
        db.migrate(conn)
    world = Demo(path, getattr(request, "param", MIDNIGHT))
    yield world
    await world.client.aclose()
    world.db.close()
    world.emulator.close()


@pytest.mark.parametrize("world", [MIDNIGHT, SMALL_HOURS], indirect=True)
async def test_every_sync_finds_new_plays_at_any_hour(world: Demo) -> None:
    user = await world.sign_in()
    world.clock.now -= 3600
    await world.sync(user)
    added = []
    # Two hours of syncs every five minutes, across midnight and into a new month.
    for _ in range(24):
        world.clock.advance(SYNC_INTERVAL)
        added.append((await world.sync(user)).plays_added)
    assert all(n >= 1 for n in added), added
    # Still a person: a few plays in five minutes, not a flood.
    assert max(added) <= 6, added


@pytest.mark.parametrize("now", [MIDNIGHT, SMALL_HOURS, MIDNIGHT + 17 * 3600])
def test_a_play_of_music_ends_in_every_sync_interval(now: int) -> None:
    emulator = Emulator(clock=Clock(now))
    start_ms, end_ms = (now - 86_400) * 1000, (now + 86_400) * 1000
    ends = [p.played_at_ms for p in emulator.play_history("demo", start_ms, end_ms)
            if p.stored]
    gaps = [b - a for a, b in zip([start_ms, *ends], [*ends, end_ms], strict=True)]
    assert max(gaps) < SYNC_INTERVAL * 1000


async def test_the_first_sync_after_the_demo_history_adds_only_new_plays(world: Demo) -> None:
    with db.connect(world.path) as conn:
        user = demo.ensure_demo_user(conn, clock=world.clock)
        demo.generate_history(conn, user, plays=4_000, years=0.25, clock=world.clock)
    assert await world.sign_in() == user
    history_end = world.count("SELECT max(played_at) FROM plays")
    world.clock.advance(SYNC_INTERVAL)
    run = await world.sync(user)
    new = [p for p in world.emulator.recent_plays("demo")
           if p.stored and p.played_at_ms // 1000 > history_end]
    # The other polled plays are the history's own last plays, recognised as such.
    assert run.plays_added == len(new) >= 1
    assert world.count("SELECT count(*) FROM plays") == 4_000 + len(new)
    assert world.count("SELECT count(*) FROM plays WHERE source = 'api'") == len(new)
