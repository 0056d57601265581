"""The Emulator: Spotify's accounts service and Web API in process, and its switches."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from mtm.spotify.catalogue import BASE_ARTISTS, Catalogue
from mtm.spotify.emulator.accounts import Accounts
from mtm.spotify.emulator.faults import EmulatorTransport, Fault, FaultMiddleware, Faults
from mtm.spotify.emulator.images import Images
from mtm.spotify.emulator.listening import Listening
from mtm.spotify.emulator.objects import Objects
from mtm.spotify.emulator.pages import OpenPages
from mtm.spotify.emulator.playlists import PlaylistApi
from mtm.spotify.emulator.state import State
from mtm.spotify.emulator.webapi import WebApi, accounts_error, api_error, http_error
from mtm.spotify.emulator.wire import AccountsError, ApiError
from mtm.spotify.listener import EmulatedPlay, listener

IN_PROCESS_BASE = "http://emulator.invalid"
# What a developer registers first, and what the README tells them to.
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8000/callback"


class Emulator:
    """Spotify's accounts service and Web API, emulated in process with a generated catalogue.

    The demo account plays the stream of mtm.spotify.listener; tokens and playlists live in
    `state_path` (shared by emulators on one file) or in memory. The catalogue has `artists`
    artists, else as many as `mtm demo-data` recorded in the state file, else BASE_ARTISTS:
    the demo history and the emulator then share one catalogue and one listener.
    """

    accounts_url = f"{IN_PROCESS_BASE}/accounts"
    api_url = f"{IN_PROCESS_BASE}/v1"

    def __init__(self, *, seed: int = 2026, clock: Callable[[], float] = time.time,
                 client_id: str = "mtm-demo", state_path: str | Path | None = None,
                 artists: int | None = None,
                 redirect_uris: Iterable[str] = (DEFAULT_REDIRECT_URI,),
                 registered_users: Iterable[str] | None = None) -> None:
        self.seed = seed
        # The app's dashboard settings: its redirect URIs, and (development mode) the users
        # added to it; None serves every account, as an app with extended quota does.
        self.redirect_uris: set[str] = set(redirect_uris)
        self.registered_users: frozenset[str] | None = (
            None if registered_users is None else frozenset(registered_users))
        # The callback path registered on whatever origin the authorize page is served from
        # (the demo app serves both), as `register_own_origin` sets it.
        self.own_origin_callback: str | None = None
        self.clock = clock
        self.client_id = client_id
        self.state_path = Path(state_path) if state_path is not None else None
        self.state = State(self.state_path, seed)
        self.artists = artists or self.state.catalogue_artists() or BASE_ARTISTS
        demo = listener(seed, self.artists)
        self.catalogue: Catalogue = demo.catalogue
        self.listening = Listening(demo)
        self.objects = Objects(self.catalogue, seed)
        self.faults = Faults()
        self.accounts = Accounts(self)
        self.api = WebApi(self)
        self.playlist_api = PlaylistApi(self)
        self.open_pages = OpenPages(self)
        self.images = Images(self)
        self.app = Starlette(
            routes=[*self.browser_routes(), *self.accounts.api_routes(), *self.api.routes(),
                    *self.playlist_api.routes()],
            middleware=[Middleware(FaultMiddleware, faults=self.faults)],
            exception_handlers={ApiError: api_error, AccountsError: accounts_error,
                                HTTPException: http_error},
        )

    # Reaching it

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport reaching this emulator in process (never the network)."""
        return EmulatorTransport(self.app, self.faults)

    def browser_routes(self) -> list[BaseRoute]:
        """What a browser loads: authorize, its decision, /open/... pages and /image/... SVGs."""
        return [*self.accounts.browser_routes(), *self.open_pages.routes(),
                *self.images.routes()]

    def register_redirect_uri(self, uri: str) -> None:
        """Add a redirect URI to the app's registered ones, as in Spotify's dashboard."""
        self.redirect_uris.add(uri)

    def register_own_origin(self, callback_path: str) -> None:
        """Accept `callback_path` on the origin the authorize page is served from.

        The demo app serves the emulator's pages itself, on whatever loopback port it was
        started on: its callback there is the one registered URI nobody has to type.
        """
        self.own_origin_callback = callback_path

    def close(self) -> None:
        """Close the state database; the emulator cannot answer requests afterwards."""
        self.state.close()

    # Switches for tests and the demo

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request seen, oldest first (the latest 10,000 or more)."""
        return self.faults.requests

    @property
    def omit_artist_details(self) -> bool:
        """True to leave genres out of artists, as development mode often does."""
        return self.objects.omit_artist_details

    @omit_artist_details.setter
    def omit_artist_details(self, value: bool) -> None:
        self.objects.omit_artist_details = value

    def fail(self, path_prefix: str, status: int, *, times: int = 1,
             retry_after: int | None = None, reason: str | None = None) -> None:
        """Answer the next `times` requests under `path_prefix` with `status`.

        A 429 carries Retry-After (`retry_after`, else 60 s) unless `reason` is
        "QUOTA_EXCEEDED": the app's quota is spent, said in the body, with no time to wait.
        """
        self.faults.arm(Fault(path_prefix, "status", status, times, retry_after, reason))

    def timeout(self, path_prefix: str, *, times: int = 1) -> None:
        """Make the transport raise httpx.ReadTimeout for the next `times` matching requests."""
        self.faults.arm(Fault(path_prefix, "timeout", 0, times))

    def reset_faults(self) -> None:
        """Disarm every failure and timeout switch."""
        self.faults.reset()

    def expire_consent(self) -> None:
        """Make every refresh token issued so far answer invalid_grant."""
        self.state.expire_consent()

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far answer 401, as if an hour had passed."""
        self.state.expire_access_tokens(self.clock())

    def grant_code(self, user: str = "demo", *, redirect_uri: str, code_challenge: str,
                   scope: str = "") -> str:
        """Issue an authorization code directly, as if `user` had pressed Agree."""
        return self.accounts.grant_code(user, redirect_uri=redirect_uri,
                                        code_challenge=code_challenge, scope=scope)

    @property
    def playlists(self) -> dict[str, dict[str, Any]]:
        """A snapshot of every playlist by id, oldest first, with its items in order."""
        return self.state.snapshot()

    # What the demo account has played

    def play_history(self, user: str, start_ms: int, end_ms: int) -> list[EmulatedPlay]:
        """Every play of `user` ending in [start_ms, end_ms), oldest first."""
        return self.listening.history(user, start_ms, end_ms)

    def recent_plays(self, user: str, now_ms: int | None = None) -> list[EmulatedPlay]:
        """The last (at most 50) listed plays ended at or before `now_ms`, newest first."""
        if now_ms is None:
            now_ms = int(self.clock() * 1000)
        return self.listening.recent(user, now_ms)

    def deliver_late(self, user: str = "demo", *, ended_ms_ago: int = 20 * 60_000,
                     index: int = 0) -> EmulatedPlay:
        """Make a play that ended `ended_ms_ago` ago show up only now, as real late plays do
        (a device that was offline): older than plays recently played returned before."""
        now_ms = int(self.clock() * 1000)
        return self.listening.deliver_late(user, self.catalogue.tracks[index],
                                           now_ms - ended_ms_ago, now_ms)
