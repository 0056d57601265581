"""The Web API endpoints of a profile, its listening and catalogue lookups."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mtm.spotify.emulator import pages
from mtm.spotify.emulator.listening import RECENT_LIMIT
from mtm.spotify.emulator.objects import api_base, paging
from mtm.spotify.emulator.state import Access
from mtm.spotify.emulator.users import USERS
from mtm.spotify.emulator.wire import (
    AccountsError,
    ApiError,
    int_param,
    lookup,
    played_at,
    reason,
    route_path,
)

if TYPE_CHECKING:
    from mtm.spotify.emulator.core import Emulator

NOT_REGISTERED = ("Check settings on developer.spotify.com/dashboard, the user may not be "
                  "registered.")
TIME_RANGES = ("short_term", "medium_term", "long_term")
# Removed for development-mode apps in February 2026; they answer 403.
GONE_METHODS = ["GET", "POST", "PUT", "DELETE"]
GONE_PATHS = ("/v1/artists", "/v1/tracks", "/v1/users/{user_id}",
              "/v1/users/{user_id}/playlists", "/v1/playlists/{playlist_id}/tracks",
              "/v1/playlists/{playlist_id}/followers")


class WebApi:
    """/v1/me, recently played, top items, one artist, one track, and the removed endpoints."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[BaseRoute]:
        """The routes, in matching order (a removed batch path before its one-id sibling)."""
        gone = [Route(path, self.gone, methods=GONE_METHODS) for path in GONE_PATHS]
        return [
            Route("/v1/me", self.me, methods=["GET"]),
            Route("/v1/me/player/recently-played", self.recently_played, methods=["GET"]),
            Route("/v1/me/top/{kind}", self.top, methods=["GET"]),
            *gone[:2],
            Route("/v1/artists/{artist_id}", self.artist, methods=["GET"]),
            Route("/v1/tracks/{track_id}", self.track, methods=["GET"]),
            *gone[2:],
        ]

    def authorized(self, request: Request, *scopes: str) -> Access:
        """The request's valid access token, holding one of `scopes` when any are named."""
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:].strip():
            raise ApiError(401, "No token provided")
        access = self.emulator.state.access(header[7:].strip())
        if access is None:
            raise ApiError(401, "Invalid access token")
        if access.expires_at <= self.emulator.clock():
            raise ApiError(401, "The access token expired")
        registered = self.emulator.registered_users
        if registered is not None and access.user not in registered:
            # A development-mode app serves only the users added in its dashboard (at most
            # five); Spotify issues them tokens, then refuses every API call.
            raise ApiError(403, NOT_REGISTERED)
        if scopes and not access.scope.intersection(scopes):
            raise ApiError(403, "Insufficient client scope")
        return access

    async def gone(self, request: Request) -> Response:
        """A removed endpoint: Spotify answers 403 with its usual body, not 410 Gone."""
        raise ApiError(403, "Forbidden: this endpoint is no longer available to "
                            "development mode apps")

    async def me(self, request: Request) -> Response:
        """The current user, with `account_id` and without country, email or product."""
        access = self.authorized(request)
        return JSONResponse(self.emulator.objects.me(api_base(request), USERS[access.user]))

    async def recently_played(self, request: Request) -> Response:
        """The last plays, newest first, paged by `before`/`after` cursors in milliseconds."""
        access = self.authorized(request, "user-read-recently-played")
        query = request.query_params
        limit = int_param(query, "limit", 20, 1, RECENT_LIMIT)
        after = int_param(query, "after", None, 0, None)
        before = int_param(query, "before", None, 0, None)
        if after is not None and before is not None:
            raise ApiError(400, "Only one of after or before can be given")
        plays = self.emulator.recent_plays(access.user)
        if after is not None:
            plays = [p for p in plays if p.played_at_ms > after]
            # Paging forward from `after` takes the plays right after it, so none are skipped.
            page, more = plays[-limit:], len(plays) > limit
        else:
            if before is not None:
                plays = [p for p in plays if p.played_at_ms < before]
            page, more = plays[:limit], len(plays) > limit
        base, objects = api_base(request), self.emulator.objects
        items = [{"track": objects.played_item(base, p), "played_at": played_at(p.played_at_ms),
                  "context": objects.context(base, p.context)} for p in page]
        cursors = next_url = None
        if page:
            cursors = {"after": str(page[0].played_at_ms), "before": str(page[-1].played_at_ms)}
            if more:
                name = "after" if after is not None else "before"
                next_url = (f"{base}/me/player/recently-played?"
                            f"{urlencode({name: cursors[name], 'limit': limit})}")
        return JSONResponse({"items": items, "next": next_url, "cursors": cursors,
                             "limit": limit, "href": str(request.url)})

    async def top(self, request: Request) -> Response:
        """Top tracks or artists over a time range, from the listener's taste."""
        access = self.authorized(request, "user-top-read")
        kind = request.path_params["kind"]
        if kind not in ("tracks", "artists"):
            raise ApiError(404, "Service not found")
        query = request.query_params
        time_range = query.get("time_range", "medium_term")
        if time_range not in TIME_RANGES:
            raise ApiError(400, "Invalid time range")
        limit = int_param(query, "limit", 20, 1, 50)
        offset = int_param(query, "offset", 0, 0, None)
        emulator = self.emulator
        ranked = emulator.listening.top(access.user, kind, time_range,
                                        int(emulator.clock() * 1000))
        base, catalogue = api_base(request), emulator.catalogue
        chosen = ranked[offset:offset + limit]
        if kind == "tracks":
            items = [emulator.objects.track_full(base, catalogue.tracks[i]) for i in chosen]
        else:
            items = [emulator.objects.artist_full(base, catalogue.artists[i]) for i in chosen]
        return JSONResponse(paging(request, items, total=len(ranked), limit=limit,
                                   offset=offset))

    async def artist(self, request: Request) -> Response:
        """One artist (batch lookups are gone)."""
        self.authorized(request)
        found = lookup(self.emulator.catalogue.artists_by_id, request.path_params["artist_id"])
        return JSONResponse(self.emulator.objects.artist_full(api_base(request), found))

    async def track(self, request: Request) -> Response:
        """One track (batch lookups are gone)."""
        self.authorized(request)
        found = lookup(self.emulator.catalogue.tracks_by_id, request.path_params["track_id"])
        return JSONResponse(self.emulator.objects.track_full(api_base(request), found))


async def api_error(request: Request, exc: Exception) -> Response:
    """A Web API refusal in Spotify's shape."""
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def accounts_error(request: Request, exc: Exception) -> Response:
    """An accounts-service refusal in its OAuth shape."""
    assert isinstance(exc, AccountsError)
    return JSONResponse({"error": exc.error, "error_description": exc.description},
                        status_code=exc.status)


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods, answered in the shape of the part of Spotify they are in."""
    assert isinstance(exc, HTTPException)
    path = route_path(request.scope)
    message = "Service not found" if exc.status_code == 404 else reason(exc.status_code)
    if path.startswith("/accounts/api"):
        return JSONResponse({"error": "invalid_request", "error_description": message},
                            status_code=exc.status_code, headers=exc.headers)
    if path.startswith("/accounts"):
        return pages.page(reason(exc.status_code), f"<p>{html.escape(message)}</p>",
                          exc.status_code)
    return JSONResponse({"error": {"status": exc.status_code, "message": message}},
                        status_code=exc.status_code, headers=exc.headers)
