"""Web API objects as Spotify writes them for a development-mode app in 2026."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from starlette.requests import Request

from mtm.spotify.catalogue import Album, Artist, Catalogue, Track, spotify_id
from mtm.spotify.emulator.images import image_list
from mtm.spotify.emulator.state import Playlist
from mtm.spotify.emulator.users import EmulatedUser
from mtm.spotify.emulator.wire import iso_seconds, snapshot
from mtm.spotify.listener import EmulatedPlay

OPEN_SPOTIFY = "https://open.spotify.com"
# A playlist object carries the first page of its items.
FIRST_PAGE = 100


class Objects:
    """Builds the JSON of artists, albums, tracks, plays, users and playlists.

    Development-mode apps get no `popularity`, `followers` or `available_markets`, and no
    user `country`, `email` or `product` (February 2026).
    """

    def __init__(self, catalogue: Catalogue, seed: int) -> None:
        self.catalogue = catalogue
        self.seed = seed
        # Switched on to show an app what artists without genres look like.
        self.omit_artist_details = False
        self.album_tracks: list[list[int]] = [[] for _ in catalogue.albums]
        self.track_number: dict[int, int] = {}
        for track in catalogue.tracks:
            self.album_tracks[track.album].append(track.index)
            self.track_number[track.index] = len(self.album_tracks[track.album])

    def artist_simple(self, base: str, artist: Artist) -> dict[str, Any]:
        """A simplified artist, as inside a track or album."""
        ident = artist.spotify_id
        return {"external_urls": {"spotify": f"{OPEN_SPOTIFY}/artist/{ident}"},
                "href": f"{base}/artists/{ident}", "id": ident, "name": artist.name,
                "type": "artist", "uri": f"spotify:artist:{ident}"}

    def artist_full(self, base: str, artist: Artist) -> dict[str, Any]:
        """A full artist; genres may be missing in development mode."""
        data = self.artist_simple(base, artist)
        data["images"] = image_list(origin(base), "artist", artist.spotify_id)
        if not self.omit_artist_details:
            data["genres"] = list(artist.genres)
        return data

    def album_simple(self, base: str, album: Album) -> dict[str, Any]:
        """A simplified album, as inside a track."""
        total = len(self.album_tracks[album.index])
        artist = self.catalogue.artists[album.artist]
        ident = album.spotify_id
        return {"album_type": "single" if total <= 3 else "album", "total_tracks": total,
                "artists": [self.artist_simple(base, artist)],
                "external_urls": {"spotify": f"{OPEN_SPOTIFY}/album/{ident}"},
                "href": f"{base}/albums/{ident}", "id": ident,
                "images": image_list(origin(base), "album", ident), "name": album.name,
                "release_date": album.release_date, "release_date_precision": "day",
                "type": "album", "uri": f"spotify:album:{ident}"}

    def track_full(self, base: str, track: Track) -> dict[str, Any]:
        """A full track."""
        artists = self.catalogue.artists
        ident = track.spotify_id
        return {"album": self.album_simple(base, self.catalogue.albums[track.album]),
                "artists": [self.artist_simple(base, artists[i]) for i in track.artists],
                "disc_number": 1, "duration_ms": track.duration_ms, "explicit": track.explicit,
                "external_ids": {"isrc": f"QZEMU{self.seed % 100:02d}{track.index:05d}"},
                "external_urls": {"spotify": f"{OPEN_SPOTIFY}/track/{ident}"},
                "href": f"{base}/tracks/{ident}", "id": ident, "is_local": False,
                "is_playable": True, "name": track.name, "preview_url": None,
                "track_number": self.track_number[track.index], "type": "track",
                "uri": f"spotify:track:{ident}"}

    def played_item(self, base: str, play: EmulatedPlay) -> dict[str, Any] | None:
        """The `track` of a recently played item, which is not always a catalogue track."""
        track = play.track
        if play.kind == "unavailable":
            return None
        if play.kind == "episode":
            return self._episode(base, track)
        data = self.track_full(base, track)
        if play.kind == "local":
            # A file on the listener's own device: names only, no ids, links or album art.
            artist = self.catalogue.artists[track.artists[0]].name
            album = self.catalogue.albums[track.album].name
            data.update(id=None, href=None, external_urls={}, is_local=True,
                        uri=f"spotify:local:{quote_plus(artist)}:{quote_plus(album)}:"
                            f"{quote_plus(track.name)}:{track.duration_ms // 1000}",
                        artists=[{"id": None, "name": artist, "type": "artist", "uri": None,
                                  "href": None, "external_urls": {}}],
                        album={"id": None, "name": album, "type": "album", "uri": None,
                               "images": [], "artists": [], "href": None,
                               "album_type": None, "external_urls": {},
                               "release_date": None, "release_date_precision": None})
        return data

    def _episode(self, base: str, track: Track) -> dict[str, Any]:
        """A podcast episode made up from a track's names, with its show."""
        show = spotify_id("show", track.album, self.seed)
        episode = spotify_id("episode", track.index, self.seed)
        about = f"The {track.name} Show"
        release = self.catalogue.albums[track.album].release_date
        return {"type": "episode", "id": episode, "uri": f"spotify:episode:{episode}",
                "name": f"Episode {track.index}: {track.name}",
                "description": f"An episode of {about}.",
                "html_description": f"<p>An episode of {about}.</p>",
                "audio_preview_url": None, "duration_ms": track.duration_ms,
                "explicit": track.explicit, "href": f"{base}/episodes/{episode}",
                "external_urls": {"spotify": f"{OPEN_SPOTIFY}/episode/{episode}"},
                "images": [], "is_externally_hosted": False, "is_playable": True,
                "languages": ["en"], "release_date": release, "release_date_precision": "day",
                "show": {"type": "show", "id": show, "uri": f"spotify:show:{show}",
                         "name": about, "description": f"Talk about {track.name}.",
                         "html_description": f"<p>Talk about {track.name}.</p>",
                         "href": f"{base}/shows/{show}",
                         "external_urls": {"spotify": f"{OPEN_SPOTIFY}/show/{show}"},
                         "copyrights": [], "explicit": False, "images": [],
                         "is_externally_hosted": False, "languages": ["en"],
                         "media_type": "audio", "publisher": about, "total_episodes": 1}}

    def context(self, base: str, context: tuple[str, str] | None) -> dict[str, Any] | None:
        """Where a play was started from: an album, artist or playlist (or nothing)."""
        if context is None:
            return None
        kind, ident = context
        return {"type": kind, "href": f"{base}/{kind}s/{ident}",
                "external_urls": {"spotify": f"{OPEN_SPOTIFY}/{kind}/{ident}"},
                "uri": f"spotify:{kind}:{ident}"}

    def user(self, base: str, user: EmulatedUser) -> dict[str, Any]:
        """A public user, as a playlist's owner."""
        return {"display_name": user.display_name,
                "external_urls": {"spotify": f"{OPEN_SPOTIFY}/user/{user.id}"},
                "href": f"{base}/users/{user.id}", "id": user.id, "type": "user",
                "uri": f"spotify:user:{user.id}"}

    def me(self, base: str, user: EmulatedUser) -> dict[str, Any]:
        """The current user: the public profile plus the stable `account_id` (May 2026)."""
        return {**self.user(base, user), "account_id": user.account_id, "images": []}

    def playlist(self, base: str, playlist: Playlist, owner: EmulatedUser,
                 items: list[dict[str, Any]] | None) -> dict[str, Any]:
        """A playlist; `items` (its first page) only for the owner in development mode."""
        ident = playlist.id
        data: dict[str, Any] = {
            "collaborative": False, "description": playlist.description,
            "external_urls": {"spotify": f"{OPEN_SPOTIFY}/playlist/{ident}"},
            "href": f"{base}/playlists/{ident}", "id": ident, "images": [],
            "name": playlist.name, "owner": self.user(base, owner),
            "public": playlist.public, "snapshot_id": snapshot(playlist.version),
            "type": "playlist", "uri": f"spotify:playlist:{ident}",
        }
        if items is not None:
            data["items"] = {"href": f"{base}/playlists/{ident}/items", "items": items,
                             "limit": FIRST_PAGE, "offset": 0, "previous": None,
                             "next": None, "total": playlist.total}
        return data

    def playlist_entry(self, base: str, uri: str, added_ms: int,
                       owner: EmulatedUser) -> dict[str, Any]:
        """One item of a playlist: when it was added, by whom, and the track."""
        track = self.catalogue.tracks_by_id[uri.rsplit(":", 1)[1]]
        return {"added_at": iso_seconds(added_ms), "added_by": self.user(base, owner),
                "is_local": False, "item": self.track_full(base, track)}


def paging(request: Request, items: list, *, total: int, limit: int,
           offset: int) -> dict[str, Any]:
    """Spotify's paging object around `items`."""
    url = str(request.url.remove_query_params(["limit", "offset"]))
    sep = "&" if "?" in url else "?"
    return {"href": str(request.url), "items": items, "limit": limit, "offset": offset,
            "total": total,
            "next": f"{url}{sep}offset={offset + limit}&limit={limit}"
                    if offset + limit < total else None,
            "previous": f"{url}{sep}offset={max(0, offset - limit)}&limit={limit}"
                        if offset > 0 else None}


def api_base(request: Request) -> str:
    """The Web API's base URL as this request reached it."""
    return str(request.base_url).rstrip("/") + "/v1"


def origin(base: str) -> str:
    """The emulator's origin from the Web API's base URL: its images are served there."""
    return base.removesuffix("/v1")
