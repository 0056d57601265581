"""A "Sync now" that fails before its run is recorded still ends recorded, and Settings says so."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from mtm import jobs, leases
from tests.conftest import sign_in
from tests.test_views_settings import HX, services_of, token_of, user_id_of, wait_for_syncs


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "RETRY_PAUSE", 0, raising=False)


def _locked(*args, **kwargs):
    raise sqlite3.OperationalError("database is locked")


async def _sync_jobs(app, user: int) -> list[tuple[str, str | None]]:
    return await services_of(app).db.run(lambda c: [tuple(r) for r in c.execute(
        "SELECT state, error FROM jobs WHERE user_id = ? AND kind = 'sync' ORDER BY id",
        (user,))])


async def test_a_job_that_cannot_start_ends_failed_and_is_said(
        client: httpx.AsyncClient, app, monkeypatch: pytest.MonkeyPatch) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    # The database stays locked when the runner marks the job running.
    monkeypatch.setattr(jobs, "start", _locked)
    started = await client.post("/settings/sync", headers={**HX, "X-CSRFToken": token})
    assert started.status_code == 202
    await wait_for_syncs(app)
    assert await _sync_jobs(app, user) == [("failed", jobs.BUSY)]
    status = await client.get("/settings/sync", headers=HX)
    assert "hx-trigger" not in status.text.split(">")[0], "nothing runs any more"
    assert "did not run: The database was too busy" in status.text
    assert ">Sync now</button>" in status.text


async def test_a_sync_refused_a_lock_before_its_run_ends_failed(
        client: httpx.AsyncClient, app, monkeypatch: pytest.MonkeyPatch) -> None:
    await sign_in(client)
    token = await token_of(client)
    user = await user_id_of(app, "demo")
    runs_before = await services_of(app).db.run(
        lambda c: c.execute("SELECT count(*) FROM sync_runs").fetchone()[0])
    # Taking the sync lease meets a locked database: no run is ever recorded.
    monkeypatch.setattr(leases, "acquire", _locked)
    response = await client.post("/settings/sync", data={"csrf_token": token})
    assert response.status_code == 303
    assert await _sync_jobs(app, user) == [("failed", jobs.BUSY)]
    page = (await client.get("/settings")).text
    assert "The sync did not run: The database was too busy" in page
    assert await services_of(app).db.run(
        lambda c: c.execute("SELECT count(*) FROM sync_runs").fetchone()[0]) == runs_before
    # Once the database answers again, the next Sync now runs.
    monkeypatch.undo()
    again = await client.post("/settings/sync", data={"csrf_token": token})
    assert again.status_code == 303
    assert (await _sync_jobs(app, user))[-1][0] == "done"
    assert "did not run" not in (await client.get("/settings/sync", headers=HX)).text


async def test_a_sync_whose_process_died_stops_the_spinner(client: httpx.AsyncClient,
                                                            app) -> None:
    from tests.test_leases import _dead_holder

    await sign_in(client)
    user = await user_id_of(app, "demo")
    db = services_of(app).db
    job = await db.run(jobs.create, user, "sync")
    dead = _dead_holder("jobs")
    await db.run(jobs.start, job.id, dead)
    await db.run(leases.acquire, user, "sync", dead, ttl=900, purpose="sync")
    status = await client.get("/settings/sync", headers=HX)
    assert "hx-trigger" not in status.text.split(">")[0]
    assert "was interrupted" in status.text
    assert (await db.run(jobs.get, user, job.id)).state == "interrupted"
    # Nothing blocks the next one.
    token = await token_of(client)
    again = await client.post("/settings/sync", data={"csrf_token": token})
    assert again.status_code == 303
    assert (await _sync_jobs(app, user))[-1][0] == "done"


async def test_settings_says_a_restore_is_running(client: httpx.AsyncClient, app) -> None:
    await sign_in(client)
    user = await user_id_of(app, "demo")
    db = services_of(app).db
    await db.run(leases.acquire, user, "sync", jobs.make_holder("restore"), ttl=900,
                 purpose="restore")
    status = await client.get("/settings/sync", headers=HX)
    assert "A restore of your account from a backup is running" in status.text
    assert "A sync of your account is running" not in status.text
    assert 'hx-trigger="every 1s"' in status.text
