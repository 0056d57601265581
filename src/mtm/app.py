"""The application factory: settings in, a Starlette app out; nothing runs at import."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp
from starlette_wtf import CSRFProtectMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from mtm import (
    backups,
    connection,
    demo,
    deployment,
    enrich,
    history,
    imports,
    instance_backup,
    jobs,
    rezone,
    sync,
)
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
# Set by `mtm serve --demo` for its worker processes, which read their settings from the
# environment (uvicorn starts each one from an import string).
FORCE_DEMO_ENV = "MTM_FORCE_DEMO"
LOG_LEVEL_ENV = "MTM_LOG_LEVEL"


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
    # The wall clock of sessions, rate limits and the household's and admin's "this month";
    # tests put their own here.
    clock: Callable[[], float] = time.time


def job_handlers() -> dict[str, jobs.Handler]:
    """Every kind of background job and the function that runs it."""
    return {connection.SYNC: connection.sync_job, enrich.KIND: enrich.look_up,
            rezone.KIND: rezone.rezone_job, **imports.handlers()}


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
    """Apply migrations, and in demo mode make sure the demo account has a history.

    Workers starting together take turns (a lock file in the data directory).
    """
    with database.process_lock(settings.data_dir / "prepare.lock"):
        _prepare_database(settings)


def _prepare_database(settings: Settings) -> None:
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
        for user_id in sync.close_abandoned_runs(conn):
            log.warning("a sync of user %s was interrupted by a restart", user_id)
        for user_id in rezone.finish_moving(conn):
            log.warning("finished the time-zone change of user %s a restart cut short",
                        user_id)
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


def precompile_templates(templates: Jinja2Templates) -> int:
    """Compile every page, partial and macro into the environment's cache; how many.

    Otherwise the first request for each page after a restart waits 20-90 ms for Jinja.
    """
    env = templates.env
    names = env.list_templates(filter_func=lambda name: name.startswith(
        ("pages/", "partials/", "macros/")) and name.endswith(".html"))
    # The cache must hold them all, or the first ones would be compiled again.
    env.cache = jinja2.utils.LRUCache(max(400, 2 * len(names)))
    for name in names:
        env.get_template(name)
    return len(names)


class App(Starlette):
    """Starlette with the request id, access log and proxy headers around everything,
    its error handling included (so a 500 page carries the request id too)."""

    def __init__(self, *args: object, settings: Settings, **kwargs: object) -> None:
        self.deployment_settings = settings
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        """The usual stack, wrapped in the deployment middleware."""
        settings = self.deployment_settings
        stack: ASGIApp = deployment.RequestMiddleware(
            super().build_middleware_stack(), access=settings.production,
            hsts=settings.production)
        if settings.trusted_proxies:
            # X-Forwarded-For/-Proto are believed from these addresses only (uvicorn's own
            # proxy handling stays off: it trusts 127.0.0.1 by default).
            stack = ProxyHeadersMiddleware(stack, trusted_hosts=list(settings.trusted_proxies))
        return stack


def worker_app() -> Starlette:
    """The app of one of several worker processes: settings and logging from the environment."""
    settings = load_settings(force_demo=os.environ.get(FORCE_DEMO_ENV) == "1")
    level = os.environ.get(LOG_LEVEL_ENV, "info")
    if settings.production:
        deployment.configure_logging(level)
    else:
        # The same readable lines as `mtm serve` with one worker.
        logging.basicConfig(level=level.upper(), format="%(levelname)s %(name)s: %(message)s")
    return create_app(settings)


def create_app(settings: Settings | None = None, *, emulator: Emulator | None = None
               ) -> Starlette:
    """Build the web app for these settings (read from the environment when not given)."""
    settings = settings or load_settings(force_demo=os.environ.get(FORCE_DEMO_ENV) == "1")
    spotify, authorize_endpoint, emulator = connect_spotify(settings, emulator)
    # The server never creates an empty database where the file has gone (see Database).
    db = database.Database(settings.database_path, create=False)
    scheduler = Scheduler(db, spotify, interval=settings.sync_interval)
    services = Services(settings, db, make_templates(), spotify, authorize_endpoint, scheduler,
                        emulator)
    services.jobs = jobs.JobRunner(db, job_handlers(), services)
    scheduler.services = services

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Held while the server runs: `mtm restore` refuses meanwhile.
        lock = instance_backup.hold(settings.data_dir)
        prepare_database(settings)
        precompile_templates(services.templates)
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
            lock.close()

    middleware = [
        Middleware(SecurityHeadersMiddleware),
        Middleware(ErrorPageMiddleware),
        Middleware(deployment.AllowedHostsMiddleware, allowed=settings.allowed_hosts),
        # Level 5 compresses pages nearly as well as 9 at half the CPU (static files come
        # compressed already, see mtm.static_files).
        Middleware(GZipMiddleware, minimum_size=1024, compresslevel=5),
        # Secure in production: the cookie never travels over plain HTTP.
        Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie="mtm_session",
                   max_age=settings.session_max_days * DAY, same_site="lax",
                   https_only=settings.production),
        Middleware(CSRFProtectMiddleware, csrf_secret=settings.secret_key),
        # Uploads stop at their own limit as they stream to disk; this is the backstop.
        Middleware(RequestGuardMiddleware, limit=MAX_BODY_BYTES,
                   limits={"/settings/imports": settings.upload_limit + MAX_BODY_BYTES}),
    ]
    app = App(routes=build_routes(settings, emulator), middleware=middleware,
              exception_handlers=exception_handlers(), lifespan=lifespan, settings=settings)
    app.state.services = services
    return app
