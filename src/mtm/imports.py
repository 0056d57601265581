"""Imports as the user sees them: preview, import and undo jobs, the list, and coverage.

The work itself is in mtm.importer; this module runs it as background jobs (mtm.jobs) under
the user's lease, with an automatic backup before anything is written, and reads what
Settings shows: every import with its counts, and where the history has plays or none.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.concurrency import run_in_threadpool

from mtm import (
    backups,
    connection,
    enrich,
    history,
    importer,
    jobs,
    leases,
    preferences,
    sync,
    uploads,
)
from mtm.db import transaction
from mtm.importer import Report
from mtm.jobs import JobContext, JobError
from mtm.spotify_export import ExportError

PREVIEW, IMPORT, UNDO = "import_preview", "import", "undo_import"
KINDS = (PREVIEW, IMPORT, UNDO)
# How long an import waits for a running sync of the user to finish before giving up.
LEASE_WAIT_SECONDS = 60
LEASE_SECONDS = 3600
SOURCE_LABELS = {"export": "Extended streaming history", "account": "Account data",
                 "api": "Recorded from Spotify", "demo": "Demo data"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ImportRecord:
    """One import, as listed in Settings."""

    id: int
    user_id: int
    created_at: int
    files: list[dict[str, Any]]
    report: Report
    plays_added: int
    first_played: int | None
    last_played: int | None
    undone_at: int | None
    plays_removed: int | None

    @property
    def undoable(self) -> bool:
        """True while the plays it added are still there."""
        return self.undone_at is None and self.plays_added > 0

    def period(self, timezone: str) -> str:
        """The dates its files cover, on the user's calendar."""
        if self.first_played is None or self.last_played is None:
            return ""
        zone = ZoneInfo(timezone)
        first, last = (datetime.fromtimestamp(t, zone).strftime("%d %b %Y")
                       for t in (self.first_played, self.last_played))
        return first if first == last else f"{first} to {last}"

    def created_label(self, timezone: str) -> str:
        """When it ran, on the user's clock."""
        return datetime.fromtimestamp(self.created_at, ZoneInfo(timezone)).strftime(
            "%d %b %Y, %H:%M")


_COLUMNS = ("id, user_id, created_at, files, report, plays_added, first_played, last_played, "
            "undone_at, plays_removed")


def _record(row: sqlite3.Row | None) -> ImportRecord | None:
    if row is None:
        return None
    values = list(row)
    values[3] = json.loads(values[3])
    values[4] = Report.from_json(json.loads(values[4]))
    return ImportRecord(*values)


def list_imports(conn: sqlite3.Connection, user_id: int) -> list[ImportRecord]:
    """The user's imports, newest first."""
    return [_record(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM imports WHERE user_id = ? ORDER BY created_at DESC, id DESC",
        (user_id,))]


def get_import(conn: sqlite3.Connection, user_id: int, import_id: int) -> ImportRecord | None:
    """One of the user's imports; None for an unknown id or another user's."""
    return _record(conn.execute(f"SELECT {_COLUMNS} FROM imports WHERE id = ? AND user_id = ?",
                                (import_id, user_id)).fetchone())


def undo(conn: sqlite3.Connection, user_id: int, import_id: int, now: int | None = None) -> int:
    """Remove exactly the plays an import added, rebuild the rollups; return how many."""
    with transaction(conn):
        record = get_import(conn, user_id, import_id)
        if record is None:
            raise LookupError(import_id)
        if record.undone_at is not None:
            raise JobError("This import was undone already.")
        # Plays hidden since are the import's too.
        removed = sum(conn.execute(f"DELETE FROM {table} WHERE user_id = ? AND import_id = ?",
                                   (user_id, import_id)).rowcount for table in history.STORED)
        conn.execute("UPDATE imports SET undone_at = ?, plays_removed = ? WHERE id = ?",
                     (int(now or time.time()), removed, import_id))
        # Rebuilt, not subtracted: first and last plays of each track stay exact.
        history.rebuild_rollups(conn, user_id)
    return removed


# --- coverage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthCell:
    """One month of the history: plays by source (0 everywhere is a gap)."""

    month: date
    plays: int
    by_source: dict[str, int]

    @property
    def main_source(self) -> str | None:
        """The source most of the month's plays came from."""
        if not self.plays:
            return None
        return max(self.by_source, key=lambda s: (self.by_source[s], s))

    @property
    def label(self) -> str:
        """The month and its sources in words (for a table cell's title and screen readers)."""
        name = self.month.strftime("%B %Y")
        if not self.plays:
            return f"{name}: no plays"
        parts = ", ".join(f"{n:,} {SOURCE_LABELS.get(s, s).lower()}"
                          for s, n in sorted(self.by_source.items(), key=lambda i: -i[1]) if n)
        return f"{name}: {self.plays:,} plays ({parts})"


@dataclass(frozen=True)
class Coverage:
    """Month by month, where the plays came from, and the gaps."""

    years: list[tuple[int, list[MonthCell | None]]]
    sources: list[str]
    gaps: list[tuple[date, date]]

    @property
    def empty(self) -> bool:
        """No plays at all."""
        return not self.years


def coverage(conn: sqlite3.Connection, user_id: int, today: date) -> Coverage:
    """Every month from the first play to this one, with its plays by source."""
    counts: dict[str, dict[str, int]] = {}
    for month, source, plays in conn.execute(
            "SELECT month, source, plays FROM listening_months WHERE user_id = ? AND streams > 0",
            (user_id,)):
        counts.setdefault(month, {})[source] = plays
    if not counts:
        return Coverage([], [], [])
    first = date.fromisoformat(min(counts) + "-01")
    this_month = today.replace(day=1)
    last = max(date.fromisoformat(max(counts) + "-01"), this_month)
    years, gaps = [], []
    gap_start: date | None = None
    for year in range(first.year, last.year + 1):
        cells: list[MonthCell | None] = []
        for m in range(1, 13):
            month = date(year, m, 1)
            if month < first or month > last:
                cells.append(None)
                continue
            by_source = counts.get(month.strftime("%Y-%m"), {})
            cell = MonthCell(month, sum(by_source.values()), by_source)
            cells.append(cell)
            # This month may simply not have begun: only a month gone by can be a gap.
            if not cell.plays and gap_start is None and month < this_month:
                gap_start = month
            elif cell.plays and gap_start is not None:
                gaps.append((gap_start, _previous_month(month)))
                gap_start = None
        years.append((year, cells))
    if gap_start is not None:
        gaps.append((gap_start, _previous_month(this_month)))
    sources = sorted({s for by in counts.values() for s, n in by.items() if n},
                     key=lambda s: list(SOURCE_LABELS).index(s) if s in SOURCE_LABELS else 9)
    return Coverage(years, sources, gaps)


def _previous_month(month: date) -> date:
    return date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


# --- the jobs --------------------------------------------------------------------------------


class Busy(Exception):
    """Another import or undo of this user is queued or running."""

    def __init__(self, job: jobs.Job) -> None:
        super().__init__(job.id)
        self.job = job


def queue(conn: sqlite3.Connection, user_id: int, kind: str, params: dict[str, Any]) -> jobs.Job:
    """Queue a preview, import or undo, unless one of them is under way (Busy)."""
    with transaction(conn):
        running = jobs.active(conn, user_id, KINDS)
        if running is not None:
            raise Busy(running)
        return jobs.create(conn, user_id, kind, params)


@dataclass(frozen=True)
class Files:
    """What a job reads: an upload (removed once imported), or paths given on the command line."""

    paths: list[Path]
    display: dict[Path, str]
    upload: uploads.Upload | None = None


def _files(ctx: JobContext) -> Files:
    if "paths" in ctx.job.params:
        paths = [Path(p) for p in ctx.job.params["paths"]]
        return Files(paths, {p: str(p) for p in paths})
    upload = uploads.find(ctx.services.settings.uploads_dir, ctx.job.user_id,
                          ctx.job.params.get("upload", ""))
    if upload is None:
        raise JobError("The uploaded files are no longer on the server (uploads are kept for "
                       "a day). Upload them again.")
    return Files(upload.paths, upload.display, upload)


async def preview_job(ctx: JobContext) -> dict[str, Any]:
    """Read the files and say what importing them would do."""
    files = _files(ctx)
    if files.upload is not None:
        # Uploads previewed and then left alone are not kept for ever.
        uploads.prune(ctx.services.settings.uploads_dir, ctx.job.user_id,
                      keep={files.upload.token})
    try:
        report = await run_in_threadpool(
            importer.preview, ctx.services.settings.database_path, ctx.job.user_id,
            files.paths, display=files.display, progress=ctx.progress)
    except ExportError as exc:
        raise JobError(exc.message) from None
    return {"report": report.to_json(), **ctx.job.params}


async def _take_lease(ctx: JobContext, holder: str, purpose: str) -> None:
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    while not await ctx.db.run(leases.acquire, ctx.job.user_id, sync.LEASE, holder,
                               ttl=LEASE_SECONDS, purpose=purpose):
        if time.monotonic() > deadline:
            raise JobError("A sync or another change to your data has been running for a "
                           "minute; nothing was imported. Try again in a moment.",
                           retryable=True)
        ctx.progress("Waiting for a sync of your account to finish", force=True)
        await asyncio.sleep(1)


async def import_job(ctx: JobContext) -> dict[str, Any]:
    """Import the files: back up, store what is new, record the import, queue lookups."""
    files = _files(ctx)
    settings, user_id = ctx.services.settings, ctx.job.user_id
    holder = jobs.make_holder(f"import-{ctx.job.id}")
    await _take_lease(ctx, holder, "import")

    def backup(report: Report) -> int:
        ctx.progress("Backing up your data first", force=True)
        made = ctx.db.call(backups.create_backup, settings.backups_dir, user_id, "auto",
                           "before an import")
        return made.id

    try:
        outcome = await run_in_threadpool(
            importer.run, settings.database_path, user_id, files.paths, display=files.display,
            progress=ctx.progress, job_id=ctx.job.id, before_write=backup)
        if outcome.report.stored:
            await ctx.db.run(backups.prune, settings.backups_dir, user_id)
    except ExportError as exc:
        raise JobError(exc.message) from None
    except sqlite3.OperationalError as exc:
        if "full" not in str(exc):
            raise
        raise JobError("The server's disk is full, so nothing was imported (everything was "
                       "left as it was). Free some space and run the import again.",
                       retryable=True) from None
    finally:
        await ctx.db.run(leases.release, user_id, sync.LEASE, holder)
    if files.upload is not None:
        files.upload.remove()
    if outcome.report.stored:
        # Exports carry names and URIs only: genres and images are looked up afterwards.
        await enrich.request(ctx.services, user_id)
    return {"report": outcome.report.to_json(), "import_id": outcome.import_id}


async def undo_job(ctx: JobContext) -> dict[str, Any]:
    """Undo an import: back up, remove the plays it added, rebuild the totals."""
    settings, user_id = ctx.services.settings, ctx.job.user_id
    import_id = int(ctx.job.params["import_id"])
    holder = jobs.make_holder(f"undo-{ctx.job.id}")
    await _take_lease(ctx, holder, "undo")
    try:
        ctx.progress("Backing up your data first", force=True)
        await ctx.db.run(backups.create_backup, settings.backups_dir, user_id, "auto",
                         "before undoing an import")
        ctx.progress("Removing the plays this import added", force=True)
        try:
            removed = await ctx.db.run(undo, user_id, import_id)
        except LookupError:
            raise JobError("There is no such import among yours.") from None
        await ctx.db.run(backups.prune, settings.backups_dir, user_id)
    finally:
        await ctx.db.run(leases.release, user_id, sync.LEASE, holder)
    return {"import_id": import_id, "removed": removed}


def handlers() -> dict[str, jobs.Handler]:
    """The job kinds this module runs."""
    return {PREVIEW: preview_job, IMPORT: import_job, UNDO: undo_job}


# --- what Settings and the job pages show ---------------------------------------------------


@dataclass(frozen=True)
class Overview:
    """The import section of Settings: a job to show, the imports, coverage, lookups."""

    job: JobView | None
    imports: list[ImportRecord]
    coverage: Coverage
    lookups: enrich.Status
    lookup_job: jobs.Job | None


# A failed preview or import stays on show this long, with its reason and a way to retry.
SHOW_FAILED_SECONDS = 86_400


def overview(conn: sqlite3.Connection, user_id: int, uploads_root: Path, now: int | None = None
             ) -> Overview:
    """Everything the import section of Settings shows."""
    now = int(now or time.time())
    job = jobs.latest(conn, user_id, KINDS)
    if job is not None and not (
            job.active or (job.kind == PREVIEW and job.state == "done")
            or (job.state in ("failed", "interrupted")
                and (job.finished_at or now) > now - SHOW_FAILED_SECONDS)):
        job = None
    timezone = preferences.load(conn, user_id).timezone
    today = datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    lookup_job = jobs.latest(conn, user_id, (enrich.KIND,))
    view = job_view(conn, user_id, job.id, uploads_root) if job is not None else None
    return Overview(view, list_imports(conn, user_id), coverage(conn, user_id, today),
                    enrich.status(conn, user_id),
                    lookup_job if lookup_job is not None and lookup_job.active else None)


TITLES = {PREVIEW: "Preview of your import", IMPORT: "Importing your history",
          UNDO: "Undoing an import", "sync": "Sync now", enrich.KIND: "Looking up artist details"}


@dataclass(frozen=True)
class JobView:
    """A job as its page shows it, with what it found or did."""

    job: jobs.Job
    timezone: str
    report: Report | None = None
    record: ImportRecord | None = None
    run: sync.SyncRun | None = None
    upload_names: list[str] | None = None

    @property
    def sync_message(self) -> tuple[str, str] | None:
        """How a sync job's run went: (category, message)."""
        return connection.sync_outcome(self.run, self.timezone) if self.run else None

    @property
    def title(self) -> str:
        """What the job is, in words."""
        return TITLES.get(self.job.kind, "Background task")

    @property
    def can_import(self) -> bool:
        """A finished preview whose files are still here, with something new in them."""
        return (self.job.kind == PREVIEW and self.job.state == "done"
                and self.upload_names is not None and self.report is not None
                and self.report.stored > 0)

    @property
    def can_retry(self) -> bool:
        """A failed or interrupted import step that can run again as it was asked."""
        if not self.job.retryable:
            return False
        if self.job.kind in (PREVIEW, IMPORT):
            return self.upload_names is not None
        return self.job.kind == UNDO and self.record is not None and self.record.undoable

    @property
    def can_discard(self) -> bool:
        """Uploaded files waiting for a decision can be thrown away."""
        return self.job.kind in (PREVIEW, IMPORT) and not self.job.active \
            and self.upload_names is not None


def job_view(conn: sqlite3.Connection, user_id: int, job_id: int, uploads_root: Path
             ) -> JobView | None:
    """One of the user's jobs with everything its page shows; None if there is no such job."""
    job = jobs.get(conn, user_id, job_id)
    if job is None:
        return None
    timezone = preferences.load(conn, user_id).timezone
    result = job.result or {}
    report = Report.from_json(result["report"]) if "report" in result else None
    import_id = result.get("import_id") or job.params.get("import_id")
    record = get_import(conn, user_id, int(import_id)) if import_id else None
    run = sync.get_run(conn, int(result["run_id"])) if result.get("run_id") else None
    upload = (uploads.find(uploads_root, user_id, job.params.get("upload", ""))
              if job.kind in (PREVIEW, IMPORT) else None)
    return JobView(job, timezone, report, record, run, upload.names if upload else None)


def retry(conn: sqlite3.Connection, user_id: int, job: jobs.Job) -> jobs.Job:
    """Queue the same preview, import or undo again (Busy if another one is under way)."""
    return queue(conn, user_id, job.kind, job.params)


def discard_upload(uploads_root: Path, user_id: int, job: jobs.Job) -> None:
    """Delete the files a preview read, when the user decides not to import them."""
    upload = uploads.find(uploads_root, user_id, job.params.get("upload", ""))
    if upload is not None:
        upload.remove()
