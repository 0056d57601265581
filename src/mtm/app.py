"""The application factory: settings in, a Starlette app out; nothing runs at import."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.templating import Jinja2Templates
from starlette_wtf import CSRFProtectMiddleware

from mtm import backups, connection, demo, enrich, history, imports, jobs
from mtm import db as database
from mtm.cache import Cache
from mtm.config import SPOTIFY_ACCOUNTS_URL, SPOTIFY_API_URL, Settings, load_settings
from mtm.guards import MAX_BODY_BYTES, ErrorPageMiddleware, RequestGuardMiddleware
from mtm.rendering import make_templates
from mtm.routes import build_routes
from mtm.scheduler import Scheduler
from mtm.security import SecurityHeadersMiddleware
from mtm.spotify.catalogue import BASE_ARTISTS
from mtm.spotify.client import SpotifyClient
from mtm.spotify.emulator import Emulator
from mtm.spotify.emulator.state import State
from mtm.views.errors import exception_handlers

log = logging.getLogger("mtm")
EMULATOR_CLIENT_ID = "mtm-demo"
CALLBACK_PATH = "/callback"
DAY = 86400


@dataclass
class Services:
    """What handlers reach through `request.app.state.services`."""

    settings: Settings
    db: database.Database
    templates: Jinja2Templates
    spotify: SpotifyClient
    authorize_endpoint: str
    scheduler: Scheduler
    emulator: Emulator | None = None
    # Analytics and artist, album and track pages, computed once per history version.
    read_cache: Cache = field(default_factory=Cache)
    jobs: jobs.JobRunner | None = None
    # The wall clock of sessions and rate limits; tests put their own here.
    clock: Callable[[], float] = time.time


def job_handlers() -> dict[str, jobs.Handler]:
    """Every kind of background job and the function that runs it."""
    return {connection.SYNC: connection.sync_job, enrich.KIND: enrich.look_up,
            **imports.handlers()}


def emulator_state_path(settings: Settings) -> Path:
    """The demo emulator's state file: tokens, playlists and its catalogue's size."""
    return settings.data_dir / "emulator.sqlite3"


def demo_catalogue_artists(settings: Settings) -> int:
    """The size of the demo emulator's catalogue: what `mtm demo-data` recorded, else the
    small one."""
    path = emulator_state_path(settings)
    if not path.exists():
        return BASE_ARTISTS
    state = State(path, demo.EMULATOR_SEED)
    try:
        return state.catalogue_artists() or BASE_ARTISTS
    finally:
        state.close()


def prepare_database(settings: Settings) -> None:
    """Apply migrations, and in demo mode make sure the demo account has a history."""
    conn = database.connect(settings.database_path)
    try:
        applied = database.migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        rebuilt = history.refresh_stale_rollups(conn)
        if rebuilt:
            log.info("rebuilt listening rollups for %d user(s)", len(rebuilt))
        for leftover in backups.remove_leftovers(settings.backups_dir, settings.database_path):
            log.warning("removed %s, left half-written by a crash", leftover)
        for job in jobs.close_abandoned(conn):
            log.warning("job %s (%s) was interrupted by a restart", job.id, job.kind)
        jobs.forget_finished(conn, int(time.time()) - jobs.KEEP_FINISHED_SECONDS)
        if settings.demo:
            user_id = demo.ensure_demo_user(conn)
            if settings.demo_plays and demo.ensure_demo_history(
                    conn, user_id, plays=settings.demo_plays, years=3.0,
                    artists=demo_catalogue_artists(settings)):
                log.info("generated a demo history of %d plays", settings.demo_plays)
    finally:
        conn.close()


def connect_spotify(settings: Settings, emulator: Emulator | None = None
                    ) -> tuple[SpotifyClient, str, Emulator | None]:
    """The API client, the browser's authorize URL, and the emulator in demo mode."""
    if not settings.demo:
        client = SpotifyClient(client_id=settings.spotify_client_id or "",
                               client_secret=settings.spotify_client_secret,
                               accounts_url=SPOTIFY_ACCOUNTS_URL, api_url=SPOTIFY_API_URL)
        return client, f"{SPOTIFY_ACCOUNTS_URL}/authorize", None
    # Its tokens and playlists live next to the app's database, so they survive restarts
    # and `mtm sync` in another process can use them.
    emulator = emulator or Emulator(client_id=EMULATOR_CLIENT_ID,
                                    state_path=emulator_state_path(settings))
    # As a developer registers the app's callback in Spotify's dashboard: the demo serves the
    # emulator's pages itself, so its /callback on that same origin is the one it knows.
    emulator.register_own_origin(CALLBACK_PATH)
    if settings.redirect_uri:
        emulator.register_redirect_uri(settings.redirect_uri)
    client = SpotifyClient(client_id=EMULATOR_CLIENT_ID, client_secret=None,
                           accounts_url=Emulator.accounts_url, api_url=Emulator.api_url,
                           transport=emulator.transport())
    return client, "/emulator/accounts/authorize", emulator


def create_app(settings: Settings | None = None, *, emulator: Emulator | None = None
               ) -> Starlette:
    """Build the web app for these settings (read from the environment when not given)."""
    settings = settings or load_settings()
    spotify, authorize_endpoint, emulator = connect_spotify(settings, emulator)
    db = database.Database(settings.database_path)
    scheduler = Scheduler(db, spotify, interval=settings.sync_interval)
    services = Services(settings, db, make_templates(), spotify, authorize_endpoint, scheduler,
                        emulator)
    services.jobs = jobs.JobRunner(db, job_handlers(), services)
    scheduler.services = services

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        prepare_database(settings)
        scheduler.start()
        try:
            yield
        finally:
            await scheduler.stop()
            await services.jobs.stop()
            await spotify.aclose()
            if emulator is not None:
                emulator.close()
            db.close()

    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(ErrorPageMiddleware),
        Middleware(GZipMiddleware, minimum_size=1024),
        Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="mtm_session",
                   max_age=settings.session_max_days * DAY, same_site="lax", https_only=False),
        Middleware(CSRFProtectMiddleware, csrf_secret=settings.secret_key),
        # Uploads stop at their own limit as they stream to disk; this is the backstop.
        Middleware(RequestGuardMiddleware, limit=MAX_BODY_BYTES,
                   limits={"/settings/imports": settings.upload_limit + MAX_BODY_BYTES}),
    ]
    app = Starlette(routes=build_routes(settings, emulator), middleware=middleware,
                    exception_handlers=exception_handlers(), lifespan=lifespan)
    app.state.services = services
    return app
