"""Keeping a user's Spotify tokens fresh: one refresh at a time, in one process or several."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from mtm import accounts, db, users
from mtm.config import SCOPES
from mtm.spotify import oauth
from mtm.spotify.client import SpotifyClient
from mtm.spotify.emulator import Emulator

REPO = Path(__file__).resolve().parents[1]
REDIRECT = "http://127.0.0.1:8000/callback"


class SlowTokens(httpx.AsyncBaseTransport):
    """The emulator, with token requests taking a while, as over a real network."""

    def __init__(self, emulator: Emulator, delay: float) -> None:
        self.inner = emulator.transport()
        self.delay = delay

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/api/token"):
            await asyncio.sleep(self.delay)
        return await self.inner.handle_async_request(request)


def client_for(emulator: Emulator, delay: float = 0.3) -> SpotifyClient:
    return SpotifyClient(client_id="mtm-demo", client_secret=None,
                         accounts_url=Emulator.accounts_url, api_url=Emulator.api_url,
                         transport=SlowTokens(emulator, delay))


async def connected(tmp_path: Path) -> tuple[db.Database, Emulator, int]:
    """A signed-in demo user whose access token has just run out."""
    path = tmp_path / "mtm.sqlite3"
    conn = db.connect(path)
    db.migrate(conn)
    conn.close()
    emulator = Emulator(client_id="mtm-demo", state_path=tmp_path / "emulator.sqlite3")
    database = db.Database(path)
    verifier = oauth.make_verifier()
    code = emulator.grant_code("demo", redirect_uri=REDIRECT,
                               code_challenge=oauth.challenge_for(verifier),
                               scope=" ".join(SCOPES))
    client = client_for(emulator, 0)
    user = await accounts.complete_login(database, client, code,
                                         accounts.LoginAttempt(verifier, REDIRECT, None))
    await client.aclose()
    await database.run(lambda c: c.execute("UPDATE tokens SET expires_at = 0"))
    return database, emulator, user


def token_requests(emulator: Emulator) -> int:
    return sum(path.endswith("/api/token") for _, path in emulator.requests)


async def test_two_refreshes_at_once_spend_the_token_once(tmp_path: Path) -> None:
    database, emulator, user = await connected(tmp_path)
    before = token_requests(emulator)
    client = client_for(emulator)
    first, second = await asyncio.gather(accounts.access_token(database, client, user),
                                         accounts.access_token(database, client, user))
    assert first == second
    assert token_requests(emulator) - before == 1
    assert not (await database.run(users.get_user, user)).reconnect_needed
    # The new token works, and the stored refresh token is the one Spotify just issued.
    assert (await client.me(first))["id"] == "demo"
    stored = await database.run(users.get_tokens, user)
    assert stored.access_token == first and stored.expires_at > time.time()
    await client.aclose()
    database.close()


async def test_a_refused_token_is_replaced_once(tmp_path: Path) -> None:
    database, emulator, user = await connected(tmp_path)
    await database.run(lambda c: c.execute("UPDATE tokens SET expires_at = ?",
                                           (int(time.time()) + 3000,)))
    emulator.expire_access_tokens()
    client = client_for(emulator)
    before = token_requests(emulator)
    # Two API calls refused with 401 at the same time: one refresh serves both.
    profiles = await asyncio.gather(*(accounts.with_token(database, client, user, client.me)
                                      for _ in range(2)))
    assert [p["id"] for p in profiles] == ["demo", "demo"]
    assert token_requests(emulator) - before == 1
    await client.aclose()
    database.close()


TWIN = textwrap.dedent("""
    import asyncio, sys, time
    from mtm import accounts, db
    from tests.test_accounts import client_for
    from mtm.spotify.emulator import Emulator

    async def main():
        path, state, user, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        client = client_for(Emulator(client_id="mtm-demo", state_path=state))
        database = db.Database(path)
        while time.time() < start:
            await asyncio.sleep(0.002)
        try:
            print(await accounts.access_token(database, client, user))
        except Exception as exc:
            print("failed:", type(exc).__name__, exc)
        await client.aclose()

    asyncio.run(main())
""")


async def test_two_processes_refresh_once(tmp_path: Path) -> None:
    database, emulator, user = await connected(tmp_path)
    start = time.time() + 3
    twins = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", TWIN, str(tmp_path / "mtm.sqlite3"),
        str(tmp_path / "emulator.sqlite3"), str(user), str(start),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = await asyncio.wait_for(asyncio.gather(*(t.communicate() for t in twins)), 60)
    tokens = [out.decode().strip() for out, _ in outputs]
    assert all(t and not t.startswith("failed") for t in tokens), outputs
    assert tokens[0] == tokens[1]
    assert not (await database.run(users.get_user, user)).reconnect_needed
    stored = await database.run(users.get_tokens, user)
    assert stored.access_token == tokens[0]
    # The refresh token stored is the live one: the next refresh works.
    client = client_for(emulator, 0)
    await database.run(lambda c: c.execute("UPDATE tokens SET expires_at = 0"))
    assert await accounts.access_token(database, client, user) != tokens[0]
    await client.aclose()
    database.close()
