"""Shared fixtures: a real temporary SQLite file, the emulator, and the app on an ASGI client."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from mtm import db
from mtm.config import Settings, load_settings
from mtm.history import AlbumIn, ArtistIn, PlayIn, TrackIn

BASE_URL = "http://127.0.0.1:8000"


class Clock:
    """A clock the test moves by hand (for the emulator and the client)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


BROWSER_DIR = Path(__file__).resolve().parent / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API leaves an event loop running."""
    items.sort(key=lambda item: BROWSER_DIR in item.path.parents)


@pytest.fixture
def anyio_backend() -> str:
    """anyio runs async tests on asyncio."""
    return "asyncio"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A migrated database in a temporary file."""
    connection = db.connect(tmp_path / "test.sqlite3")
    db.migrate(connection)
    yield connection
    connection.close()


@pytest.fixture
def user_id(conn: sqlite3.Connection) -> int:
    """A user with default preferences."""
    from mtm import users

    return users.upsert_user(conn, "listener-1", "Listener One")


def make_track(n: int, artist: int | None = None, *, name: str | None = None) -> TrackIn:
    """A small made-up track; artist defaults to one artist per ten tracks."""
    a = artist if artist is not None else n // 10
    return TrackIn(f"track{n:018d}", name or f"Track {n}",
                   (ArtistIn(f"artist{a:017d}", f"Artist {a}"),),
                   AlbumIn(f"album{a:018d}", f"Album {a}"), 200_000)


def make_play(ts: int, n: int = 1, *, ms: int = 180_000, source: str = "api") -> PlayIn:
    """A play of track `n` that ended at `ts`."""
    return PlayIn(ts, make_track(n), ms, source)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Demo-mode settings in a temporary data directory, with no generated history."""
    return load_settings(env_file=None, force_demo=True, overrides={
        "MTM_DATA_DIR": str(tmp_path / "data"), "MTM_SECRET_KEY": "test-secret-key",
        "MTM_DEMO_PLAYS": "0", "MTM_SYNC_INTERVAL": "0"})


@pytest.fixture
def emulator():
    """A fresh Spotify emulator whose clock stands still at the moment the test began.

    The app keeps its own time; a still emulator lists the same plays all through a test,
    so `first_sync_plays` knows what a sync stored.
    """
    from mtm.spotify.emulator import Emulator

    return Emulator(client_id="mtm-demo", clock=Clock(time.time()))


def first_sync_plays(emulator, account: str = "demo") -> int:
    """How many plays a first sync stores: the music among the last 50 Spotify lists."""
    return sum(play.stored for play in emulator.recent_plays(account))


@pytest.fixture
async def app(settings: Settings, emulator) -> AsyncIterator:
    """The app with its lifespan running (migrations applied)."""
    from mtm.app import create_app

    application = create_app(settings, emulator=emulator)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    """An ASGI client on a loopback base URL, as Spotify requires for redirect URIs."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL,
                                 follow_redirects=False) as http:
        yield http


def csrf_from(html: str) -> str:
    """The CSRF token a page carries in its meta tag."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return unescape(match.group(1))


async def authorize(client: httpx.AsyncClient, *, account: str = "demo",
                    decision: str = "agree", next_url: str | None = None) -> httpx.Response:
    """Walk /login → emulator authorize page → decide; return the app's /callback URL response."""
    login = await client.get("/login", params={"next": next_url} if next_url else None)
    assert login.status_code == 303, login.text
    page = await client.get(login.headers["location"])
    assert page.status_code == 200, page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {k: unescape(v) for k, v in fields.items()}
    fields["user"] = account
    fields["decision"] = decision
    decided = await client.get(urljoin(str(page.url), unescape(action)), params=fields)
    assert decided.status_code in (302, 303, 307), decided.text
    return decided


async def sign_in(client: httpx.AsyncClient, account: str = "demo") -> httpx.Response:
    """Complete a sign-in through the emulator; return the callback's response."""
    decided = await authorize(client, account=account)
    target = urlsplit(decided.headers["location"])
    assert parse_qs(target.query).get("code"), decided.headers["location"]
    response = await client.get(f"{target.path}?{target.query}")
    assert response.status_code == 303, response.text
    return response
