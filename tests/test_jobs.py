"""Background jobs: one model for every long task, its progress, and jobs whose process died."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtm import db, jobs
from mtm.jobs import JobError, JobRunner


@pytest.fixture
def database(tmp_path: Path, conn: sqlite3.Connection) -> db.Database:
    pool = db.Database(tmp_path / "test.sqlite3")
    yield pool
    pool.close()


def test_a_job_goes_from_queued_to_done(conn: sqlite3.Connection, user_id: int) -> None:
    job = jobs.create(conn, user_id, "import", {"upload": "abc"}, now=100)
    assert (job.state, job.active, job.params, job.percent) == ("queued", True, {"upload": "abc"},
                                                                None)
    assert jobs.start(conn, job.id, "test:host:1:x", now=101)
    assert not jobs.start(conn, job.id, "another", now=102), "a job starts once"
    jobs.report(conn, job.id, "Reading", 25, 200, now=103)
    running = jobs.get(conn, user_id, job.id)
    assert (running.stage, running.done, running.total, running.percent) == ("Reading", 25, 200,
                                                                             12)
    jobs.finish(conn, job.id, "done", result={"n": 3}, now=104)
    done = jobs.get(conn, user_id, job.id)
    assert (done.state, done.result, done.finished_at, done.active) == ("done", {"n": 3}, 104,
                                                                        False)
    with pytest.raises(ValueError):
        jobs.finish(conn, job.id, "running")


def test_jobs_are_each_users_own(conn: sqlite3.Connection, user_id: int) -> None:
    from mtm import users

    other = users.upsert_user(conn, "someone-else", "Someone")
    job = jobs.create(conn, user_id, "sync")
    assert jobs.get(conn, other, job.id) is None
    assert jobs.active(conn, other, ("sync",)) is None
    assert jobs.active(conn, user_id, ("sync",)).id == job.id
    assert jobs.latest(conn, user_id, ("import",)) is None


def test_a_job_whose_process_died_is_interrupted(conn: sqlite3.Connection, user_id: int) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    gone = jobs.create(conn, user_id, "import", now=1000)
    jobs.start(conn, gone.id, f"jobs:{host}:{dead.pid}:abcd", now=1000)
    alive = jobs.create(conn, user_id, "sync", now=1000)
    jobs.start(conn, alive.id, jobs.make_holder("jobs"), now=1000)
    elsewhere = jobs.create(conn, user_id, "enrich", now=1000)
    jobs.start(conn, elsewhere.id, "jobs:another-machine:12:abcd", now=1000)
    # A dead process on this machine is recognised at once; elsewhere, by a stale heartbeat.
    closed = jobs.close_abandoned(conn, now=1010)
    assert [j.id for j in closed] == [gone.id]
    interrupted = jobs.get(conn, user_id, gone.id)
    assert interrupted.state == "interrupted" and "run it again" in interrupted.error
    assert [j.id for j in jobs.close_abandoned(conn, now=1000 + jobs.STALE_SECONDS + 1)] == [
        elsewhere.id]
    assert jobs.get(conn, user_id, alive.id).state == "running"


def test_holder_names_say_who_holds_what() -> None:
    holder = jobs.make_holder("import-3")
    kind, host, pid, _ = holder.split(":")
    assert (kind, host, int(pid)) == ("import-3", socket.gethostname(), os.getpid())
    assert jobs.holder_alive(holder) is True
    assert jobs.holder_alive("nonsense") is None


async def test_the_runner_records_every_ending(database: db.Database, user_id: int) -> None:
    async def ok(ctx: jobs.JobContext) -> dict:
        ctx.progress("Working", 1, 2, force=True)
        return {"answer": 42}

    async def refuse(ctx: jobs.JobContext) -> dict:
        raise JobError("That file is not an export.")

    async def crash(ctx: jobs.JobContext) -> dict:
        raise RuntimeError("a bug")

    async def slow(ctx: jobs.JobContext) -> dict:
        ctx.progress("Waiting", force=True)
        await asyncio.sleep(30)
        return {}

    runner = JobRunner(database, {"ok": ok, "refuse": refuse, "crash": crash, "slow": slow})
    outcomes = {}
    for kind in ("ok", "refuse", "crash"):
        job = await database.run(jobs.create, user_id, kind)
        outcomes[kind] = await runner.run(job)
    assert (outcomes["ok"].state, outcomes["ok"].result) == ("done", {"answer": 42})
    assert (outcomes["refuse"].state, outcomes["refuse"].error) == (
        "failed", "That file is not an export.")
    assert outcomes["crash"].state == "failed" and "nothing was changed" in outcomes[
        "crash"].error
    # A server stopping mid-job marks it interrupted.
    job = await database.run(jobs.create, user_id, "slow")
    runner.submit(job)
    for _ in range(100):
        if runner.freshen(await database.run(jobs.get_any, job.id)).stage == "Waiting":
            break
        await asyncio.sleep(0.01)
    await runner.stop()
    stopped = await database.run(jobs.get_any, job.id)
    assert stopped.state == "interrupted"


async def test_progress_never_waits_for_a_lock(database: db.Database, user_id: int,
                                               tmp_path: Path) -> None:
    job = await database.run(jobs.create, user_id, "import")
    await database.run(jobs.start, job.id, "x")
    progress = jobs.Progress(database, job.id)
    holder = db.connect(tmp_path / "test.sqlite3")
    holder.execute("BEGIN IMMEDIATE")  # an import's write transaction
    try:
        started = asyncio.get_running_loop().time()
        progress("Storing the new plays", 10, 20, force=True)
        assert asyncio.get_running_loop().time() - started < 1
        assert (progress.stage, progress.done) == ("Storing the new plays", 10)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    progress("Storing the new plays", 20, 20, force=True)
    row = await database.run(jobs.get_any, job.id)
    assert (row.stage, row.done) == ("Storing the new plays", 20)
    progress.close()


def test_old_finished_jobs_are_forgotten(conn: sqlite3.Connection, user_id: int) -> None:
    old = jobs.create(conn, user_id, "sync", now=100)
    jobs.finish(conn, old.id, "done", now=100)
    recent = jobs.create(conn, user_id, "sync", now=5000)
    jobs.finish(conn, recent.id, "done", now=5000)
    waiting = jobs.create(conn, user_id, "import", now=100)
    assert jobs.forget_finished(conn, before=1000) == 1
    assert jobs.get(conn, user_id, old.id) is None
    assert jobs.get(conn, user_id, recent.id) is not None
    assert jobs.get(conn, user_id, waiting.id) is not None
