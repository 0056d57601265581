"""Background jobs: one model for every long task (sync now, import, undo, artist lookups).

A job is a row in `jobs`: what it was asked (params), where it is (stage, done of total),
and how it ended (result or error). Its page is /jobs/{id}, for the browser and for HTMX
polling alike. The runner executes jobs as tasks of the server's event loop; the CLI runs
the same handlers in the foreground. A job whose process died stops writing its heartbeat
and is marked interrupted, so it can be run again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mtm.db import Database, DatabaseUnavailable, transaction

log = logging.getLogger("mtm.jobs")

OPEN = ("queued", "running")
FINISHED = ("done", "failed", "interrupted")
HEARTBEAT_SECONDS = 5
# A running job that has not beaten for this long belongs to a process that is gone.
STALE_SECONDS = 60
# Progress is written at most this often: a busy import must not spend its time on it.
PROGRESS_INTERVAL = 0.25
# Finished jobs are kept this long for their pages; imports are listed from their own table.
KEEP_FINISHED_SECONDS = 90 * 86_400
# Writes recording a job are tried this often, the pauses growing by this much, when locked.
RETRIES = 5
RETRY_PAUSE = 0.5
BUSY = ("The database was too busy to do this just now, and nothing was changed. Please "
        "try again in a moment.")
FULL = "The server's disk is full, so nothing was changed. Free some space and try again."


class JobError(Exception):
    """A job failed for a reason the user can act on; `message` is shown as it is.

    `retryable` when running it again as it was may work (a busy moment), not when what
    it was given is at fault (a file that is not an export).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message, self.retryable = message, retryable


@dataclass(frozen=True)
class Job:
    """One background task of one user."""

    id: int
    user_id: int
    kind: str
    state: str
    params: dict[str, Any]
    created_at: int
    started_at: int | None
    finished_at: int | None
    heartbeat_at: int | None
    holder: str | None
    stage: str | None
    done: int
    total: int | None
    result: dict[str, Any] | None
    error: str | None

    @property
    def active(self) -> bool:
        """Queued or running."""
        return self.state in OPEN

    @property
    def retryable(self) -> bool:
        """Interrupted, or failed for a reason that running it again may not meet."""
        return self.state == "interrupted" or (
            self.state == "failed" and bool((self.result or {}).get("retryable")))

    @property
    def percent(self) -> int | None:
        """How far it has got, once it knows how far it has to go."""
        if not self.total:
            return None
        return max(0, min(100, round(100 * self.done / self.total)))


_COLUMNS = ("id, user_id, kind, state, params, created_at, started_at, finished_at, "
            "heartbeat_at, holder, stage, done, total, result, error")


def _job(row: sqlite3.Row | tuple | None) -> Job | None:
    if row is None:
        return None
    values = list(row)
    values[4] = json.loads(values[4] or "{}")
    values[13] = json.loads(values[13]) if values[13] else None
    return Job(*values)


# The nonces this process made: a holder with this pid but another nonce is a dead process's
# whose pid came round again (a container restarted: its server is pid 1 every time).
_NONCES: set[str] = set()


def make_holder(prefix: str = "app") -> str:
    """A holder name unique to this process, readable in the database: kind:host:pid:nonce."""
    nonce = uuid.uuid4().hex[:8]
    _NONCES.add(nonce)
    return f"{prefix}:{socket.gethostname()}:{os.getpid()}:{nonce}"


def holder_alive(holder: str | None) -> bool | None:
    """Whether the process named by a holder runs; None when it is on another machine."""
    parts = (holder or "").split(":")
    if len(parts) < 4 or not parts[-2].isdigit():
        return None
    if parts[-3] != socket.gethostname():
        return None
    pid = int(parts[-2])
    if pid == os.getpid():
        return parts[-1] in _NONCES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the model ---------------------------------------------------------------------------


def create(conn: sqlite3.Connection, user_id: int, kind: str, params: dict[str, Any] | None = None,
           *, now: int | None = None) -> Job:
    """Queue a job."""
    with transaction(conn):
        row = conn.execute(
            f"INSERT INTO jobs (user_id, kind, params, created_at) VALUES (?, ?, ?, ?) "
            f"RETURNING {_COLUMNS}",
            (user_id, kind, json.dumps(params or {}), int(now or time.time()))).fetchone()
    return _job(row)


def get(conn: sqlite3.Connection, user_id: int, job_id: int) -> Job | None:
    """One of the user's jobs; None for an unknown id or another user's job."""
    return _job(conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ? AND user_id = ?",
                             (job_id, user_id)).fetchone())


def get_any(conn: sqlite3.Connection, job_id: int) -> Job | None:
    """A job by id, whoever it belongs to (for the runner)."""
    return _job(conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone())


def latest(conn: sqlite3.Connection, user_id: int, kinds: tuple[str, ...]) -> Job | None:
    """The user's newest job of these kinds."""
    marks = ",".join("?" * len(kinds))
    return _job(conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE user_id = ? AND kind IN ({marks}) "
        "ORDER BY id DESC LIMIT 1", (user_id, *kinds)).fetchone())


def active(conn: sqlite3.Connection, user_id: int, kinds: tuple[str, ...]) -> Job | None:
    """The user's queued or running job of these kinds, if any."""
    marks = ",".join("?" * len(kinds))
    return _job(conn.execute(
        f"SELECT {_COLUMNS} FROM jobs WHERE user_id = ? AND kind IN ({marks}) "
        "AND state IN ('queued', 'running') ORDER BY id DESC LIMIT 1",
        (user_id, *kinds)).fetchone())


def start(conn: sqlite3.Connection, job_id: int, holder: str, now: int | None = None) -> bool:
    """Mark a queued job running under `holder`; False if it is not queued any more."""
    now = int(now or time.time())
    with transaction(conn):
        return conn.execute(
            "UPDATE jobs SET state = 'running', holder = ?, started_at = ?, heartbeat_at = ? "
            "WHERE id = ? AND state = 'queued'", (holder, now, now, job_id)).rowcount == 1


def report(conn: sqlite3.Connection, job_id: int, stage: str | None, done: int,
           total: int | None, now: int | None = None) -> None:
    """Record how far a running job has got (and that it is alive)."""
    with transaction(conn):
        conn.execute("UPDATE jobs SET stage = ?, done = ?, total = ?, heartbeat_at = ? "
                     "WHERE id = ? AND state = 'running'",
                     (stage, done, total, int(now or time.time()), job_id))


def beat(conn: sqlite3.Connection, job_id: int, now: int | None = None) -> None:
    """Say the job's process is still alive."""
    with transaction(conn):
        conn.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ? AND state = 'running'",
                     (int(now or time.time()), job_id))


def finish(conn: sqlite3.Connection, job_id: int, state: str, *,
           result: dict[str, Any] | None = None, error: str | None = None,
           now: int | None = None) -> None:
    """Record how a job ended."""
    if state not in FINISHED:
        raise ValueError(f"not a final state: {state!r}")
    with transaction(conn):
        conn.execute(
            "UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ? "
            "WHERE id = ? AND state IN ('queued', 'running')",
            (state, json.dumps(result) if result is not None else None, error,
             int(now or time.time()), job_id))


def forget_finished(conn: sqlite3.Connection, before: int) -> int:
    """Delete finished jobs older than `before` (imports keep their own record)."""
    with transaction(conn):
        return conn.execute("DELETE FROM jobs WHERE state NOT IN ('queued', 'running') "
                            "AND coalesce(finished_at, created_at) < ?", (before,)).rowcount


INTERRUPTED = ("Interrupted: the server stopped before this finished. Nothing from it was "
               "half-written; run it again.")


def close_abandoned(conn: sqlite3.Connection, now: int | None = None) -> list[Job]:
    """Mark jobs whose process is gone as interrupted; return them."""
    now = int(now or time.time())
    closed = []
    rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('queued', 'running')")
    for job in [_job(r) for r in rows.fetchall()]:
        alive = holder_alive(job.holder) if job.state == "running" else None
        beat_at = job.heartbeat_at or job.created_at
        if alive is False or (alive is None and beat_at < now - STALE_SECONDS):
            with transaction(conn):
                if conn.execute(
                        "UPDATE jobs SET state = 'interrupted', error = ?, finished_at = ? "
                        "WHERE id = ? AND state = ? AND coalesce(heartbeat_at, 0) = ?",
                        (INTERRUPTED, now, job.id, job.state,
                         job.heartbeat_at or 0)).rowcount:
                    closed.append(job)
    return closed


# --- running them ----------------------------------------------------------------------


@dataclass
class Progress:
    """Reports a job's progress from any thread, writing it at most every PROGRESS_INTERVAL.

    Writes go through a connection of its own that never waits for a lock: while an import
    holds its write transaction, progress is kept in memory (the runner shows it from
    there) instead of stalling the import.
    """

    db: Database
    job_id: int
    stage: str | None = None
    done: int = 0
    total: int | None = None
    watch: Callable[[Progress], None] | None = None
    _written: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _conn: sqlite3.Connection | None = None

    def __call__(self, stage: str | None = None, done: int | None = None,
                 total: int | None = None, *, force: bool = False) -> None:
        """Move on: a new stage, a count, or both."""
        with self._lock:
            if stage is not None and stage != self.stage:
                self.stage, force = stage, True
            if done is not None:
                self.done = done
            if total is not None:
                self.total = total
            if not (force or time.monotonic() - self._written >= PROGRESS_INTERVAL):
                return
            self._written = time.monotonic()
            self._write(report, self.stage, self.done, self.total)
        if self.watch is not None:
            self.watch(self)

    def beat(self) -> None:
        """Say the job's process is alive (skipped, not waited for, when the lock is taken)."""
        with self._lock:
            self._write(beat)

    def _write(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            if self._conn is None:
                self._conn = sqlite3.connect(self.db.path, isolation_level=None, timeout=0,
                                             check_same_thread=False)
            fn(self._conn, self.job_id, *args)
        except sqlite3.OperationalError:
            log.debug("progress of job %s not written this time", self.job_id)

    def close(self) -> None:
        """Close its connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


@dataclass
class JobContext:
    """What a job handler gets: the job, the database, progress, and the app's services."""

    job: Job
    db: Database
    progress: Progress
    services: Any


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


class JobRunner:
    """Runs queued jobs as tasks of the event loop; keeps a reference to each until done."""

    def __init__(self, db: Database, handlers: dict[str, Handler], services: Any = None,
                 holder: str | None = None,
                 watch: Callable[[Progress], None] | None = None) -> None:
        self.db = db
        self.handlers = handlers
        self.services = services
        # Told of every progress report (the command line draws its progress bar with it).
        self.watch = watch
        self.holder = holder or make_holder("jobs")
        self._tasks: dict[int, asyncio.Task] = {}
        self._progress: dict[int, Progress] = {}

    def submit(self, job: Job) -> asyncio.Task:
        """Run a queued job in the background."""
        if job.kind not in self.handlers:
            raise ValueError(f"no handler for job kind {job.kind!r}")
        task = asyncio.create_task(self.run(job), name=f"mtm-job-{job.id}-{job.kind}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return task

    async def wait(self, job_id: int) -> None:
        """Wait until a job started here has finished (at once if it is not running here)."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.wait([task])

    async def run(self, job: Job) -> Job:
        """Run one job to its end and record how it ended; return it as finished."""
        try:
            started = await self._retry(start, job.id, self.holder)
            if started:
                job = await self._retry(get_any, job.id)
        except (DatabaseUnavailable, sqlite3.OperationalError):
            # Accepted but never started (the database stayed locked): it still ends recorded.
            log.exception("job %s (%s) could not start", job.id, job.kind)
            await self._finish(job.id, "failed", result={"retryable": True}, error=BUSY)
            return await self.db.run(get_any, job.id)
        if not started:
            return await self.db.run(get_any, job.id)
        progress = self._progress[job.id] = Progress(self.db, job.id, watch=self.watch)
        heart = asyncio.create_task(self._beat(progress))
        try:
            result = await self.handlers[job.kind](JobContext(job, self.db.patient(), progress,
                                                              self.services))
        except JobError as exc:
            await self._finish(job.id, "failed", error=exc.message,
                               result={"retryable": exc.retryable})
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(job.id, "interrupted", error=INTERRUPTED))
            raise
        except (DatabaseUnavailable, sqlite3.OperationalError) as exc:
            log.exception("job %s (%s) met a busy database", job.id, job.kind)
            await self._finish(job.id, "failed", result={"retryable": True},
                               error=FULL if "full" in str(exc) else BUSY)
        except Exception:
            log.exception("job %s (%s) crashed", job.id, job.kind)
            await self._finish(job.id, "failed", result={"retryable": True}, error=(
                "Something went wrong on our side, and nothing was changed. Please try again."))
        else:
            await self._finish(job.id, "done", result=result)
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heart
            self._progress.pop(job.id, None)
            progress.close()
        return await self.db.run(get_any, job.id)

    def freshen(self, job: Job) -> Job:
        """The job with its latest progress when it runs here (the row may lag behind)."""
        progress = self._progress.get(job.id)
        if progress is None or not job.active:
            return job
        return dataclasses.replace(job, stage=progress.stage, done=progress.done,
                                   total=progress.total)

    async def _retry(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # A busy database is retried, not given up on, for the writes that record a job.
        for attempt in range(RETRIES):
            try:
                return await self.db.run(fn, *args, **kwargs)
            except (DatabaseUnavailable, sqlite3.OperationalError):
                if attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(RETRY_PAUSE * (attempt + 1))

    async def _finish(self, job_id: int, state: str, **outcome: Any) -> None:
        # Every accepted job ends recorded.
        await self._retry(finish, job_id, state, **outcome)

    async def _beat(self, progress: Progress) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await asyncio.to_thread(progress.beat)

    async def stop(self) -> None:
        """Cancel running jobs (they are marked interrupted) and wait for them."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
