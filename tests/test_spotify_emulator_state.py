"""The emulator's durable state: tokens and playlists shared by emulators on one SQLite file."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from mtm.spotify.emulator import IN_PROCESS_BASE, Emulator
from tests.conftest import Clock
from tests.test_spotify_emulator import START, access_token, bearer

Factory = Callable[..., Emulator]


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    """Where the emulators of one test keep their state (in a folder not yet made)."""
    return tmp_path / "data" / "emulator.sqlite3"


@pytest.fixture
def emulators(state_path: Path) -> Iterator[Factory]:
    """Open emulators on the test's state file; every one is closed at the end."""
    opened: list[Emulator] = []

    def make(**kwargs: object) -> Emulator:
        emulator = Emulator(state_path=state_path, **kwargs)  # type: ignore[arg-type]
        opened.append(emulator)
        return emulator

    yield make
    for emulator in opened:
        emulator.close()


@asynccontextmanager
async def on(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client reaching `emulator` in process."""
    async with httpx.AsyncClient(transport=emulator.transport(),
                                 base_url=IN_PROCESS_BASE) as http:
        yield http


async def refresh(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post("/accounts/api/token", data={
        "grant_type": "refresh_token", "refresh_token": token, "client_id": "mtm-demo"})


async def test_tokens_issued_by_one_emulator_work_on_another(emulators: Factory) -> None:
    clock = Clock(START)
    first, second = emulators(clock=clock), emulators(clock=clock)
    async with on(first) as http_one, on(second) as http_two:
        tokens = await access_token(first, http_one)
        me = await http_two.get("/v1/me", headers=bearer(tokens))
        assert me.status_code == 200 and me.json()["id"] == "demo"

        rotated = await refresh(http_two, tokens["refresh_token"])
        assert rotated.status_code == 200
        assert rotated.json()["scope"] == tokens["scope"]
        reused = await refresh(http_one, tokens["refresh_token"])
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        again = await refresh(http_two, tokens["refresh_token"])
        assert again.json()["error"] == "invalid_grant"

        # The rotated pair is as good on the first emulator as on the one that issued it.
        newest = rotated.json()
        assert (await http_one.get("/v1/me", headers=bearer(newest))).status_code == 200
        assert (await refresh(http_one, newest["refresh_token"])).status_code == 200


async def test_tokens_survive_a_restart(emulators: Factory) -> None:
    clock = Clock(START)
    before = emulators(clock=clock)
    async with on(before) as http:
        tokens = await access_token(before, http)
    before.close()
    clock.advance(3600)  # the restart took long enough for the access token to expire
    after = emulators(clock=clock)
    async with on(after) as http:
        expired = await http.get("/v1/me", headers=bearer(tokens))
        assert expired.json()["error"]["message"] == "The access token expired"
        rotated = await refresh(http, tokens["refresh_token"])
        assert rotated.status_code == 200
        assert (await http.get("/v1/me", headers=bearer(rotated.json()))).status_code == 200


async def test_without_a_state_path_each_emulator_keeps_its_own_state() -> None:
    first, second = Emulator(clock=Clock(START)), Emulator(clock=Clock(START))
    async with on(first) as http_one, on(second) as http_two:
        tokens = await access_token(first, http_one)
        assert (await http_one.get("/v1/me", headers=bearer(tokens))).status_code == 200
        unknown = await http_two.get("/v1/me", headers=bearer(tokens))
        assert unknown.json()["error"]["message"] == "Invalid access token"
        assert (await refresh(http_two, tokens["refresh_token"])).status_code == 400
    assert first.state_path is None and first.playlists == {} == second.playlists


async def test_expire_switches_persist(emulators: Factory) -> None:
    clock = Clock(START)
    first, second = emulators(clock=clock), emulators(clock=clock)
    async with on(first) as http_one, on(second) as http_two:
        tokens = await access_token(first, http_one)
        first.expire_access_tokens()
        expired = await http_two.get("/v1/me", headers=bearer(tokens))
        assert expired.status_code == 401

        first.expire_consent()
        refused = await refresh(http_two, tokens["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        # Only tokens issued before the switch are affected.
        fresh = await access_token(second, http_two)
        assert (await refresh(http_one, fresh["refresh_token"])).status_code == 200

    first.close()
    third = emulators(clock=clock)
    async with on(third) as http:
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400


async def test_playlists_survive_a_restart(emulators: Factory) -> None:
    clock = Clock(START)
    before = emulators(clock=clock)
    uris = [f"spotify:track:{t.spotify_id}" for t in before.catalogue.tracks[:150]]
    async with on(before) as http:
        tokens = await access_token(before, http)
        created = (await http.post("/v1/me/playlists", headers=bearer(tokens),
                                   json={"name": "Kept", "description": "d",
                                         "public": False})).json()
        items_url = f"/v1/playlists/{created['id']}/items"
        for chunk in (uris[:100], uris[100:]):
            added = await http.post(items_url, json={"uris": chunk}, headers=bearer(tokens))
            assert added.status_code == 201
        await http.put(f"/v1/playlists/{created['id']}", json={"name": "Kept, renamed"},
                       headers=bearer(tokens))
        dropped = (await http.post("/v1/me/playlists", headers=bearer(tokens),
                                   json={"name": "Dropped", "public": False})).json()
        await http.delete("/v1/me/library", params={"uris": f"spotify:playlist:{dropped['id']}"},
                          headers=bearer(tokens))
    snapshot = before.playlists
    before.close()

    after = emulators(clock=clock)
    assert after.playlists == snapshot
    kept = snapshot[created["id"]]
    assert kept["name"] == "Kept, renamed" and kept["public"] is False
    assert kept["items"] == uris and kept["version"] == 4 and kept["owner"] == "demo"
    assert snapshot[dropped["id"]]["followed"] is False
    async with on(after) as http:
        listed = (await http.get("/v1/me/playlists", headers=bearer(tokens))).json()
        assert [p["id"] for p in listed["items"]] == [created["id"]]
        page = (await http.get(f"/v1/playlists/{created['id']}/items",
                               params={"offset": 100, "limit": 100},
                               headers=bearer(tokens))).json()
        assert page["total"] == 150
        assert [e["item"]["uri"] for e in page["items"]] == uris[100:]
        # Ids continue from the stored playlists rather than starting over.
        another = (await http.post("/v1/me/playlists", headers=bearer(tokens),
                                   json={"name": "New", "public": False})).json()
        assert another["id"] not in snapshot
    assert list(after.playlists) == [created["id"], dropped["id"], another["id"]]


async def test_items_added_at_a_position_keep_their_order(emulators: Factory) -> None:
    emulator = emulators(clock=Clock(START))
    tracks = [f"spotify:track:{t.spotify_id}" for t in emulator.catalogue.tracks[:8]]
    async with on(emulator) as http:
        tokens = await access_token(emulator, http)
        playlist = (await http.post("/v1/me/playlists", headers=bearer(tokens),
                                    json={"name": "Order", "public": False})).json()
        url = f"/v1/playlists/{playlist['id']}/items"
        for body in ({"uris": tracks[:4]}, {"uris": tracks[4:6], "position": 1},
                     {"uris": tracks[6:7], "position": 0}, {"uris": tracks[7:], "position": 99}):
            assert (await http.post(url, json=body, headers=bearer(tokens))).status_code == 201
    expected = [tracks[6], tracks[0], tracks[4], tracks[5], tracks[1], tracks[2], tracks[3],
                tracks[7]]
    assert emulator.playlists[playlist["id"]]["items"] == expected


def race(racers: list[Emulator], token: str) -> list[int]:
    """Refresh `token` on every emulator at once, each in its own thread and event loop."""
    start = threading.Barrier(len(racers))
    statuses: list[int] = []

    def attempt(emulator: Emulator) -> None:
        async def main() -> int:
            async with on(emulator) as http:
                start.wait()
                return (await refresh(http, token)).status_code
        statuses.append(asyncio.run(main()))

    threads = [threading.Thread(target=attempt, args=(e,)) for e in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(statuses)


def test_concurrent_refreshes_of_one_token_let_exactly_one_through(
        emulators: Factory) -> None:
    clock = Clock(START)
    racers = [emulators(clock=clock) for _ in range(4)]

    async def issue() -> str:
        async with on(racers[0]) as http:
            return (await access_token(racers[0], http))["refresh_token"]

    for _ in range(10):
        assert race(racers, asyncio.run(issue())) == [200, 400, 400, 400]


RACER = textwrap.dedent("""
    import asyncio, json, sys
    import httpx
    from mtm.spotify.emulator import IN_PROCESS_BASE, Emulator

    async def main():
        emulator = Emulator(state_path=sys.argv[1])
        print("ready", flush=True)
        token = sys.stdin.readline().strip()
        async with httpx.AsyncClient(transport=emulator.transport(),
                                     base_url=IN_PROCESS_BASE) as http:
            answer = await http.post("/accounts/api/token", data={
                "grant_type": "refresh_token", "refresh_token": token,
                "client_id": "mtm-demo"})
        print(json.dumps({"status": answer.status_code, "body": answer.json()}), flush=True)

    asyncio.run(main())
""")


def test_processes_share_tokens_and_race_fairly(emulators: Factory) -> None:
    server = emulators()  # the real clock: the other processes use it too

    async def issue() -> dict:
        async with on(server) as http:
            return await access_token(server, http)

    tokens = asyncio.run(issue())
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(server.state_path)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1]) for _ in range(2)]
    try:
        for racer in racers:
            assert racer.stdout is not None
            assert racer.stdout.readline().strip() == "ready", racer.stderr
        for racer in racers:
            assert racer.stdin is not None
            racer.stdin.write(tokens["refresh_token"] + "\n")
            racer.stdin.flush()
        answers = []
        for racer in racers:
            out, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
            answers.append(json.loads(out))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
    answers.sort(key=lambda a: a["status"])
    assert [a["status"] for a in answers] == [200, 400]
    assert answers[1]["body"]["error"] == "invalid_grant"
    winner = answers[0]["body"]

    async def use_winner() -> None:
        async with on(server) as http:
            me = await http.get("/v1/me", headers=bearer(winner))
            assert me.status_code == 200
            assert (await refresh(http, tokens["refresh_token"])).status_code == 400
            assert (await refresh(http, winner["refresh_token"])).status_code == 200

    asyncio.run(use_winner())


def test_state_file_uses_wal_and_refuses_another_seed(emulators: Factory,
                                                       state_path: Path) -> None:
    emulators()
    conn = sqlite3.connect(state_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    with pytest.raises(ValueError, match="seed"):
        Emulator(state_path=state_path, seed=7)


async def test_tokens_nobody_can_use_are_pruned(emulators: Factory, state_path: Path) -> None:
    clock = Clock(START)
    emulator = emulators(clock=clock)
    async with on(emulator) as http:
        tokens = await access_token(emulator, http)
        rotated = (await refresh(http, tokens["refresh_token"])).json()
        clock.advance(2 * 86400)
        await access_token(emulator, http)
        # A pruned token is refused just as a used one is.
        assert (await refresh(http, tokens["refresh_token"])).status_code == 400
        assert (await refresh(http, rotated["refresh_token"])).status_code == 200
    conn = sqlite3.connect(state_path)
    try:
        stored = {row[0] for row in conn.execute("SELECT token FROM refresh_tokens")}
        access = {row[0] for row in conn.execute("SELECT token FROM access_tokens")}
    finally:
        conn.close()
    assert tokens["refresh_token"] not in stored and rotated["refresh_token"] in stored
    assert tokens["access_token"] not in access



def test_the_catalogue_size_recorded_in_the_file_is_the_emulators(state_path: Path) -> None:
    first = Emulator(state_path=state_path)
    assert first.artists == 400 and first.state.catalogue_artists() is None
    first.state.record_catalogue_artists(900)
    first.close()
    again = Emulator(state_path=state_path)
    # Given explicitly, the size wins over the file's.
    explicit = Emulator(state_path=state_path, artists=500)
    try:
        assert again.artists == 900 and len(again.catalogue.artists) == 900
        assert explicit.artists == 500
    finally:
        again.close()
        explicit.close()
