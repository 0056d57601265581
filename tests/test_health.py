"""/healthz: the database file, reads, writes, migrations and the scheduler, each failing alone."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from mtm import db, instance
from mtm.config import Settings
from tests.conftest import BASE_URL, Clock

NOW = 1_790_000_000


@pytest.fixture
async def synced_app(settings: Settings, emulator) -> AsyncIterator:
    """The app with background syncing on (its scheduler stopped: the tests set its lease)."""
    from mtm.app import create_app

    application = create_app(dataclasses.replace(settings, sync_interval=300), emulator=emulator)
    async with application.router.lifespan_context(application):
        services = application.state.services
        await services.scheduler.stop()
        services.clock = Clock(NOW)
        yield application


@pytest.fixture
async def synced(synced_app) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=synced_app),
                                 base_url=BASE_URL) as http:
        yield http


def failing(response: httpx.Response) -> list[str]:
    assert response.status_code == 503, response.text
    assert response.json()["status"] == "failing"
    return response.json()["failed"]


async def test_every_check_passes(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert set(body["checks"]) == {"database", "migrations", "writable"}
    assert body["checks"]["writable"]["detail"] == "a write was committed"
    assert response.headers["cache-control"] == "no-store"


async def test_the_write_is_real(client: httpx.AsyncClient, settings: Settings, app) -> None:
    app.state.services.clock = Clock(NOW)
    assert (await client.get("/healthz")).status_code == 200
    with db.connect(settings.database_path) as conn:
        assert conn.execute("SELECT checked_at FROM instance_health").fetchone()[0] == NOW


async def test_a_deleted_database_file_fails(client: httpx.AsyncClient, settings: Settings
                                             ) -> None:
    assert (await client.get("/healthz")).status_code == 200
    for suffix in ("", "-wal", "-shm"):
        settings.database_path.with_name(settings.database_path.name + suffix).unlink(
            missing_ok=True)
    response = await client.get("/healthz")
    assert failing(response) == ["database"]
    assert "removed or replaced" in response.json()["checks"]["database"]["detail"]
    # Pages say the database is unavailable instead of "no such table", and no empty
    # database is created in its place.
    page = await client.get("/signin?next=/")
    assert (await client.get("/healthz")).status_code == 503
    assert page.status_code in (200, 503)
    assert not settings.database_path.exists()


async def test_a_replaced_database_file_fails(client: httpx.AsyncClient, settings: Settings
                                              ) -> None:
    assert (await client.get("/healthz")).status_code == 200
    copy = settings.database_path.with_name("copy.sqlite3")
    with db.connect(settings.database_path) as source, db.connect(copy) as target:
        source.backup(target)
    os.replace(copy, settings.database_path)
    response = await client.get("/healthz")
    assert failing(response) == ["database"]


async def test_a_schema_behind_the_app_fails(client: httpx.AsyncClient, settings: Settings
                                             ) -> None:
    with db.connect(settings.database_path) as conn:
        conn.execute("PRAGMA user_version = 15")
    response = await client.get("/healthz")
    assert failing(response) == ["migrations"]
    assert "15" in response.json()["checks"]["migrations"]["detail"]


async def test_a_database_that_refuses_writes_fails(client: httpx.AsyncClient, app,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Every connection of the pool, open or still to come, as a read-only file makes them.
    for conn in list(app.state.services.db._all):
        conn.execute("PRAGMA query_only = 1")
    opened = db.connect

    def read_only(*args, **kwargs) -> sqlite3.Connection:
        conn = opened(*args, **kwargs)
        conn.execute("PRAGMA query_only = 1")
        return conn

    monkeypatch.setattr(db, "connect", read_only)
    response = await client.get("/healthz")
    assert failing(response) == ["writable"]
    assert "readonly" in response.json()["checks"]["writable"]["detail"]


async def test_a_busy_writer_is_not_a_failure(client: httpx.AsyncClient, settings: Settings,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from mtm import health

    monkeypatch.setattr(health, "WRITE_WAIT_MS", 50)
    blocker = db.connect(settings.database_path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        response = await client.get("/healthz")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert response.status_code == 200, response.text
    assert "another write" in response.json()["checks"]["writable"]["detail"]


def set_lease(settings: Settings, holder: str, beat_at: int) -> None:
    with db.connect(settings.database_path) as conn:
        conn.execute("DELETE FROM instance_leases")
        if holder:
            instance.acquire(conn, instance.SCHEDULER, holder, ttl=30, now=beat_at)


async def test_a_live_scheduler_passes(synced: httpx.AsyncClient, settings: Settings) -> None:
    from mtm.jobs import make_holder

    set_lease(settings, make_holder(), NOW - 10)
    response = await synced.get("/healthz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["scheduler"]["ok"]
    # The answer is public: it names no host or process (the admin page does).
    assert ":" not in response.json()["checks"]["scheduler"]["detail"]


async def test_no_scheduler_fails(synced: httpx.AsyncClient, settings: Settings) -> None:
    set_lease(settings, "", NOW)
    assert failing(await synced.get("/healthz")) == ["scheduler"]


async def test_a_scheduler_that_stopped_beating_fails(synced: httpx.AsyncClient,
                                                      settings: Settings) -> None:
    from mtm.jobs import make_holder

    set_lease(settings, make_holder(), NOW - 120)
    response = await synced.get("/healthz")
    assert failing(response) == ["scheduler"]
    assert "120 s ago" in response.json()["checks"]["scheduler"]["detail"]


@pytest.fixture
def gone() -> str:
    """The holder name of a process on this machine that has ended."""
    return subprocess.run([sys.executable, "-c", "from mtm.jobs import make_holder; "
                           "print(make_holder())"], capture_output=True, text=True,
                          check=True).stdout.strip()


async def test_a_dead_scheduler_process_fails_at_once(synced: httpx.AsyncClient,
                                                      settings: Settings, gone: str) -> None:
    set_lease(settings, gone, NOW - 1)
    response = await synced.get("/healthz")
    assert failing(response) == ["scheduler"]
    assert "gone" in response.json()["checks"]["scheduler"]["detail"]


