"""The `mtm` command: serve the app, generate demo data, manage vendored browser files."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from mtm import instance_backup
from mtm.config import DataDirError, describe, load_settings


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from mtm import deployment
    from mtm.app import FORCE_DEMO_ENV, LOG_LEVEL_ENV, create_app, prepare_database

    # Worker processes read their settings from the environment: say it there.
    if args.production:
        os.environ["MTM_ENV"] = "production"
    if args.workers is not None:
        os.environ["MTM_WORKERS"] = str(args.workers)
    if args.demo:
        os.environ[FORCE_DEMO_ENV] = "1"
    os.environ[LOG_LEVEL_ENV] = args.log_level
    settings = load_settings(force_demo=args.demo)
    # Held until the server stops (its workers hold it too): `mtm restore` refuses meanwhile.
    _lock = instance_backup.hold(settings.data_dir)
    if settings.production:
        deployment.configure_logging(args.log_level)
    mode = "demo mode (built-in Spotify emulator)" if settings.demo else "connected to Spotify"
    say = logging.getLogger("mtm").info if settings.production else print
    say(f"Music Time Machine, {mode}{', production' if settings.production else ''}: "
        f"http://{args.host}:{args.port}/ ({settings.workers} worker"
        f"{'s' if settings.workers != 1 else ''})")
    for line in describe(settings):
        say(line)
    sys.stdout.flush()
    # Uvicorn's own proxy handling stays off: the app applies MTM_TRUSTED_PROXIES itself.
    options = {"host": args.host, "port": args.port, "log_level": args.log_level,
               "proxy_headers": False, "server_header": False}
    if settings.production:
        # Logging is the app's (JSON on stdout, its own access log without secrets).
        options.update(log_config=None, access_log=False)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return 0
    # Once here, before the workers start: each then finds nothing left to do.
    prepare_database(settings)
    uvicorn.run("mtm.app:worker_app", factory=True, workers=settings.workers, **options)
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from mtm import db, demo
    from mtm.app import emulator_state_path
    from mtm.spotify.catalogue import catalogue_artists
    from mtm.spotify.emulator.state import State

    if args.plays < 0 or args.years <= 0:
        print("error: --plays must be at least 0 and --years more than 0", file=sys.stderr)
        return 2
    settings = load_settings()
    # Held until this command returns: `mtm restore` refuses meanwhile.
    _lock = instance_backup.hold(settings.data_dir)
    artists = catalogue_artists(args.plays)
    conn = db.connect(settings.database_path)
    try:
        db.migrate(conn)
        user_id = demo.ensure_demo_user(conn)
        started = time.perf_counter()
        count = demo.generate_history(conn, user_id, plays=args.plays, years=args.years,
                                      seed=args.seed, artists=artists)
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    # The emulator of `mtm serve` reads it there, so it knows every track of the history.
    state = State(emulator_state_path(settings), demo.EMULATOR_SEED)
    try:
        state.record_catalogue_artists(artists)
    finally:
        state.close()
    print(f"Wrote {count:,} plays over {args.years:g} years from a catalogue of {artists:,} "
          f"artists for the demo account in {elapsed:.1f} s ({settings.database_path}).")
    return 0


def _sync(args: argparse.Namespace) -> int:
    import asyncio

    from mtm import db, sync
    from mtm.app import connect_spotify, prepare_database
    from mtm.jobs import make_holder
    from mtm.scheduler import Scheduler

    settings = load_settings()
    # Held until this command returns: `mtm restore` refuses meanwhile.
    _lock = instance_backup.hold(settings.data_dir)
    prepare_database(settings)
    database = db.Database(settings.database_path)

    async def one_pass() -> list[tuple[int, sync.SyncRun | None]]:
        client, _, emulator = connect_spotify(settings)
        try:
            scheduler = Scheduler(database, client, interval=0, holder=make_holder("cli"))
            if args.user is None:
                return await scheduler.run_once()
            user_id = await database.run(sync.find_user, args.user)
            if user_id is None:
                raise LookupError(args.user)
            return await scheduler.run_once([user_id])
        finally:
            await client.aclose()
            if emulator is not None:
                emulator.close()

    try:
        results = asyncio.run(one_pass())
    except LookupError:
        print(f"error: no user {args.user!r} (give a Spotify user id or a numeric id)",
              file=sys.stderr)
        return 2
    finally:
        database.close()
    if not results:
        print("Nothing to sync: no connected user is due (signed out, rate limited, or "
              "waiting for a reconnect).")
        return 0
    failed = 0
    for user_id, run in results:
        if run is None:
            print(f"user {user_id}: skipped, another process is syncing this user right now")
        elif run.outcome == "ok":
            print(f"user {user_id}: ok, {run.plays_added} new play"
                  f"{'s' if run.plays_added != 1 else ''}")
        else:
            failed += 1
            print(f"user {user_id}: {run.outcome}, {run.plays_added} new plays kept: {run.error}")
    return 1 if failed else 0


def _import_user(conn, key: str | None, demo: bool) -> int:
    """The user an import is for: --user, else the only user, else the demo account."""
    from mtm import demo as demo_account
    from mtm import sync

    if key is not None:
        user_id = sync.find_user(conn, key)
        if user_id is None:
            raise LookupError(f"no user {key!r} (give a Spotify user id or a numeric id)")
        return user_id
    if demo:
        return demo_account.ensure_demo_user(conn)
    ids = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")]
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise LookupError("nobody has signed in yet: sign in once in the browser, then import")
    raise LookupError(f"there are {len(ids)} users: say whose history this is with --user "
                      "(a Spotify user id or a numeric id)")


class _Bar:
    """A progress bar on the terminal (one line per stage when output is not a terminal)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream, self.tty, self.stage = stream, stream.isatty(), None

    def __call__(self, stage: str | None = None, done: int | None = None,
                 total: int | None = None, **_: object) -> None:
        if not self.tty:
            if stage and stage != self.stage:
                print(f"{stage}…", file=self.stream, flush=True)
            self.stage = stage or self.stage
            return
        self.stage = stage or self.stage
        width = 30
        share = (done or 0) / total if total else 0.0
        filled = int(width * min(share, 1.0))
        percent = f"{share:4.0%}" if total else "    "
        print(f"\r{(self.stage or '')[:40]:<40} [{'#' * filled}{'.' * (width - filled)}] "
              f"{percent}", end="", file=self.stream, flush=True)

    def watch(self, progress) -> None:
        """As a job runner's watcher."""
        self(progress.stage, progress.done, progress.total)

    def end(self) -> None:
        if self.tty:
            print(file=self.stream)


def _import(args: argparse.Namespace) -> int:
    import asyncio
    from pathlib import Path

    from mtm import db, importer, imports, preferences
    from mtm.app import prepare_database

    settings = load_settings()
    paths = [Path(p).expanduser() for p in args.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"error: no such file or folder: {', '.join(missing)}", file=sys.stderr)
        return 2
    # Held until this command returns: `mtm restore` refuses meanwhile.
    _lock = instance_backup.hold(settings.data_dir)
    prepare_database(settings)
    conn = db.connect(settings.database_path)
    try:
        user_id = _import_user(conn, args.user, settings.demo)
        timezone = preferences.load(conn, user_id).timezone
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        conn.close()
    bar = _Bar()
    started = time.perf_counter()
    try:
        if args.dry_run:
            report = importer.preview(settings.database_path, user_id, [p.resolve() for p in paths],
                                      display={p.resolve(): str(p) for p in paths}, progress=bar)
            failure = None
        else:
            report, failure = asyncio.run(_run_import(settings, user_id, paths, bar))
    except importer.ExportError as exc:
        bar.end()
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except imports.Busy as busy:
        bar.end()
        print(f"error: another import or undo of this user is under way (job {busy.job.id}); "
              "one runs at a time.", file=sys.stderr)
        return 1
    bar.end()
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    for line in report.lines(timezone, future=args.dry_run):
        print(line)
    print(("Nothing was changed (dry run). " if args.dry_run else "")
          + f"Took {elapsed:.1f} s.")
    return 0


async def _run_import(settings, user_id: int, paths, bar: _Bar):
    """Run the import as a job in the foreground: the same code the server runs."""
    from dataclasses import dataclass

    from mtm import db, imports, jobs
    from mtm.importer import Report

    @dataclass
    class Services:
        settings: object
        db: object
        jobs: object = None

    database = db.Database(settings.database_path)
    try:
        job = await database.run(imports.queue, user_id, imports.IMPORT,
                                 {"paths": [str(p.resolve()) for p in paths]})
        runner = jobs.JobRunner(database, {imports.IMPORT: imports.import_job},
                                Services(settings, database), holder=jobs.make_holder("cli"),
                                watch=bar.watch)
        finished = await runner.run(job)
    finally:
        database.close()
    if finished.state != "done":
        return None, finished.error
    return Report.from_json(finished.result["report"]), None


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.1f} MB"


def _backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    settings = load_settings()
    started = time.perf_counter()
    try:
        if args.path == "-":
            summary = instance_backup.backup_to(settings.data_dir, sys.stdout.buffer)
        else:
            summary = instance_backup.backup(settings.data_dir, Path(args.path))
    except instance_backup.InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    # With `-` the archive is on stdout, so what happened goes to stderr.
    where = "standard output" if args.path == "-" else summary.path
    print(f"Backed up {settings.data_dir} to {where} ({_megabytes(summary.size_bytes)}, "
          f"{summary.users} user{'s' if summary.users != 1 else ''}, {summary.plays:,} plays, "
          f"schema {summary.schema}) in {time.perf_counter() - started:.1f} s.",
          file=sys.stderr if args.path == "-" else sys.stdout)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    settings = load_settings()
    started = time.perf_counter()
    try:
        summary = instance_backup.restore(settings.data_dir, sys.stdin.buffer if args.path == "-"
                                   else Path(args.path))
    except instance_backup.InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    where = "the archive from standard input" if args.path == "-" else summary.path
    print(f"Restored {where} into {settings.data_dir} ({summary.users} user"
          f"{'s' if summary.users != 1 else ''}, {summary.plays:,} plays, schema "
          f"{summary.schema}) in {time.perf_counter() - started:.1f} s. The database it "
          f"replaced, if any, is kept as {settings.data_dir / instance_backup.PREVIOUS}; start the "
          "server to bring the schema up to date.")
    return 0


def _vendor(args: argparse.Namespace) -> int:
    from mtm import vendor

    return vendor.main(["--check"] if args.check else [])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="mtm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true",
                       help="use the built-in Spotify emulator even if credentials are set")
    serve.add_argument("--production", action="store_true",
                       help="secure cookies, allowed hosts, JSON logs (as MTM_ENV=production)")
    serve.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the database (default MTM_WORKERS or 1)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(run=_serve)

    demo_data = commands.add_parser("demo-data",
                                    help="replace the demo account's history with a generated one")
    demo_data.add_argument("--plays", type=int, default=60_000)
    demo_data.add_argument("--years", type=float, default=3.0)
    demo_data.add_argument("--seed", type=int, default=1)
    demo_data.set_defaults(run=_demo_data)

    sync_cmd = commands.add_parser("sync", help="sync connected users once (for cron)")
    sync_cmd.add_argument("--user", help="only this user (Spotify user id or numeric id)")
    sync_cmd.set_defaults(run=_sync)

    import_cmd = commands.add_parser(
        "import", help="import a Spotify privacy export (zip, folder or JSON files)")
    import_cmd.add_argument("paths", nargs="+", metavar="PATH",
                            help="the zip Spotify sent, a folder, or JSON files")
    import_cmd.add_argument("--user", help="whose history it is (Spotify user id or numeric "
                            "id); needed when several people use this app")
    import_cmd.add_argument("--dry-run", action="store_true",
                            help="only say what the import would do; change nothing")
    import_cmd.set_defaults(run=_import)

    backup = commands.add_parser(
        "backup", help="write the whole instance to one archive (safe while the server runs)")
    backup.add_argument("path", metavar="PATH", help="the archive to write (.tar, or .tar.gz "
                        "to compress), a folder to write a dated .tar.gz in, or - for stdout")
    backup.set_defaults(run=_backup)

    restore = commands.add_parser(
        "restore", help="replace the instance with an archive made by mtm backup (server "
        "stopped)")
    restore.add_argument("path", metavar="PATH",
                         help="an archive made by mtm backup (- reads it from stdin), or a "
                         "copy of mtm.sqlite3")
    restore.set_defaults(run=_restore)

    vendor = commands.add_parser("vendor",
                                 help="re-fetch htmx and Chart.js from npm and check their sha256")
    vendor.add_argument("--check", action="store_true",
                        help="only check the files in static/vendor/")
    vendor.set_defaults(run=_vendor)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mtm` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DataDirError as exc:
        # A missing, read-only or foreign data directory: one sentence, never a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        # Configuration mistakes (e.g. a bad MTM_SYNC_INTERVAL) deserve a sentence, not a trace.
        print(f"error: {exc}", file=sys.stderr)
        return 2
