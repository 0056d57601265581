"""The `mtm` command: serve the app, generate demo data, manage vendored browser files."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from mtm.config import load_settings


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from mtm.app import create_app

    settings = load_settings(force_demo=args.demo)
    mode = "demo mode (built-in Spotify emulator)" if settings.demo else "connected to Spotify"
    print(f"Music Time Machine, {mode}: http://{args.host}:{args.port}/", flush=True)
    print(f"Data directory: {settings.data_dir}", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level,
                proxy_headers=False)
    return 0


def _demo_data(args: argparse.Namespace) -> int:
    from mtm import db, demo

    if args.plays < 0 or args.years <= 0:
        print("error: --plays must be at least 0 and --years more than 0", file=sys.stderr)
        return 2
    settings = load_settings()
    conn = db.connect(settings.database_path)
    try:
        db.migrate(conn)
        user_id = demo.ensure_demo_user(conn)
        started = time.perf_counter()
        count = demo.generate_history(conn, user_id, plays=args.plays, years=args.years,
                                      seed=args.seed)
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    print(f"Wrote {count:,} plays over {args.years:g} years for the demo account "
          f"in {elapsed:.1f} s ({settings.database_path}).")
    return 0


def _sync(args: argparse.Namespace) -> int:
    import asyncio

    from mtm import db, sync
    from mtm.app import connect_spotify, prepare_database
    from mtm.jobs import make_holder
    from mtm.scheduler import Scheduler

    settings = load_settings()
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
    except ValueError as exc:
        # Configuration mistakes (e.g. a bad MTM_SYNC_INTERVAL) deserve a sentence, not a trace.
        print(f"error: {exc}", file=sys.stderr)
        return 2
