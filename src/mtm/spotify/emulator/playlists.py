"""The Web API's playlist endpoints: create, read, add items, change, remove from library."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mtm.spotify.catalogue import spotify_id
from mtm.spotify.emulator.objects import api_base, paging
from mtm.spotify.emulator.state import Access, Playlist
from mtm.spotify.emulator.users import USERS
from mtm.spotify.emulator.wire import ApiError, int_param, json_body, snapshot

if TYPE_CHECKING:
    from mtm.spotify.emulator.core import Emulator

ADD_ITEMS_LIMIT = 100
LIBRARY_LIMIT = 40
_TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
_LIBRARY_URI = re.compile(
    r"^spotify:(track|album|episode|show|audiobook|user|playlist):([0-9A-Za-z]{1,64})$")


class PlaylistApi:
    """Playlists of the emulated users, kept in the state file."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[BaseRoute]:
        """The playlist routes."""
        return [
            Route("/v1/me/playlists", self.mine, methods=["GET"]),
            Route("/v1/me/playlists", self.create, methods=["POST"]),
            Route("/v1/playlists/{playlist_id}", self.get, methods=["GET"]),
            Route("/v1/playlists/{playlist_id}", self.change, methods=["PUT"]),
            Route("/v1/playlists/{playlist_id}/items", self.items, methods=["GET"]),
            Route("/v1/playlists/{playlist_id}/items", self.add_items, methods=["POST"]),
            # Deleting a playlist since February 2026 (DELETE .../followers is gone).
            Route("/v1/me/library", self.remove_from_library, methods=["DELETE"]),
        ]

    def _object(self, base: str, playlist: Playlist, *, with_items: bool) -> dict[str, Any]:
        items = self._entries(base, playlist, 0, ADD_ITEMS_LIMIT) if with_items else None
        return self.emulator.objects.playlist(base, playlist, USERS[playlist.owner], items)

    def _entries(self, base: str, playlist: Playlist, offset: int, limit: int
                 ) -> list[dict[str, Any]]:
        state, owner = self.emulator.state, USERS[playlist.owner]
        with state.read() as db:
            rows = state.items(db, playlist.id, offset, limit)
        return [self.emulator.objects.playlist_entry(base, uri, added, owner)
                for uri, added in rows]

    def _load(self, playlist_id: str) -> Playlist:
        state = self.emulator.state
        with state.read() as db:
            playlist = state.playlist(db, playlist_id)
        if playlist is None:
            raise ApiError(404, "Resource not found")
        return playlist

    def _own(self, access: Access, playlist_id: str, verb: str) -> Playlist:
        playlist = self._load(playlist_id)
        if playlist.owner != access.user:
            raise ApiError(403, f"You cannot {verb} a playlist you do not own")
        needed = "playlist-modify-public" if playlist.public else "playlist-modify-private"
        if needed not in access.scope:
            raise ApiError(403, "Insufficient client scope")
        return playlist

    async def mine(self, request: Request) -> Response:
        """The user's playlists, oldest first."""
        access = self.emulator.api.authorized(request)
        limit = int_param(request.query_params, "limit", 20, 1, 50)
        offset = int_param(request.query_params, "offset", 0, 0, None)
        base, state = api_base(request), self.emulator.state
        with state.read() as db:
            mine = state.owned(db, access.user)
        items = [self._object(base, p, with_items=False) for p in mine[offset:offset + limit]]
        return JSONResponse(paging(request, items, total=len(mine), limit=limit,
                                   offset=offset))

    async def create(self, request: Request) -> Response:
        """A new playlist of the current user (POST /me/playlists)."""
        access = self.emulator.api.authorized(request, "playlist-modify-private",
                                              "playlist-modify-public")
        body = await json_body(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(400, "Missing required field: name")
        public = bool(body.get("public", True))
        needed = "playlist-modify-public" if public else "playlist-modify-private"
        if needed not in access.scope:
            raise ApiError(403, "Insufficient client scope")
        seed = self.emulator.seed
        playlist = self.emulator.state.create(
            access.user, name, str(body.get("description") or ""), public,
            lambda seq: spotify_id("emulated-playlist", seq, seed))
        return JSONResponse(self._object(api_base(request), playlist, with_items=True),
                            status_code=201)

    async def get(self, request: Request) -> Response:
        """One playlist; items only for its owner (development mode)."""
        access = self.emulator.api.authorized(request)
        playlist = self._load(request.path_params["playlist_id"])
        return JSONResponse(self._object(api_base(request), playlist,
                                         with_items=playlist.owner == access.user))

    async def items(self, request: Request) -> Response:
        """A page of a playlist's items, for its owner only."""
        access = self.emulator.api.authorized(request)
        limit = int_param(request.query_params, "limit", 100, 1, 100)
        offset = int_param(request.query_params, "offset", 0, 0, None)
        playlist = self._load(request.path_params["playlist_id"])
        if playlist.owner != access.user:
            raise ApiError(403, "Forbidden")
        items = self._entries(api_base(request), playlist, offset, limit)
        return JSONResponse(paging(request, items, total=playlist.total, limit=limit,
                                   offset=offset))

    async def add_items(self, request: Request) -> Response:
        """Insert up to 100 catalogue tracks, at the end or at `position`."""
        access = self.emulator.api.authorized(request)
        playlist_id = self._own(access, request.path_params["playlist_id"], "change").id
        body = await json_body(request) if request.headers.get("content-length", "0") != "0" \
            else {}
        uris = body.get("uris")
        if "uris" in request.query_params:
            # As Spotify documents: the query's uris win over the body's.
            uris = request.query_params["uris"].split(",")
        if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
            raise ApiError(400, "No uris provided")
        if len(uris) > ADD_ITEMS_LIMIT:
            raise ApiError(400, f"Too many items: at most {ADD_ITEMS_LIMIT} per request")
        for uri in uris:
            match = _TRACK_URI.match(uri)
            if match is None:
                raise ApiError(400, f"Invalid track uri: {uri}")
            if match.group(1) not in self.emulator.catalogue.tracks_by_id:
                raise ApiError(400, "Payload contains a non-existing ID")
        position = body.get("position")
        if "position" in request.query_params:
            position = int_param(request.query_params, "position", None, 0, None)
        version = self.emulator.state.insert_items(
            playlist_id, uris, position if isinstance(position, int) else None,
            int(self.emulator.clock() * 1000))
        return JSONResponse({"snapshot_id": snapshot(version)}, status_code=201)

    async def change(self, request: Request) -> Response:
        """Rename, re-describe, or make public or private."""
        access = self.emulator.api.authorized(request)
        playlist_id = self._own(access, request.path_params["playlist_id"], "change").id
        body = await json_body(request)
        if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
            raise ApiError(400, "Invalid playlist name")
        changes: dict[str, Any] = {key: str(body[key]) for key in ("name", "description")
                                   if key in body}
        if "public" in body:
            changes["public"] = int(bool(body["public"]))
        self.emulator.state.change(playlist_id, changes)
        return Response(status_code=200)

    async def remove_from_library(self, request: Request) -> Response:
        """Remove up to 40 URIs from the library; a playlist of one's own is deleted so."""
        access = self.emulator.api.authorized(request)
        if "user-library-modify" not in access.scope:
            raise ApiError(403, "Insufficient client scope")
        uris = [u for u in request.query_params.get("uris", "").split(",") if u]
        if not uris:
            raise ApiError(400, "Missing required parameter: uris")
        if len(uris) > LIBRARY_LIMIT:
            raise ApiError(400, f"Too many ids requested (at most {LIBRARY_LIMIT})")
        parsed = [_LIBRARY_URI.match(u) for u in uris]
        if not all(parsed):
            raise ApiError(400, "Invalid or unsupported URI")
        self.emulator.state.unfollow(access.user, [m.group(2) for m in parsed
                                                   if m and m.group(1) == "playlist"])
        return Response(status_code=200)
