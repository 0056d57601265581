"""The emulator's HTML pages: the authorize page, and open.spotify.com's stand-ins."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from mtm.spotify.emulator.users import USERS, user
from mtm.spotify.emulator.wire import BASE62_ID

if TYPE_CHECKING:
    from mtm.spotify.emulator.core import Emulator

# What each scope lets the app do, in the authorize page's words.
SCOPE_TEXT = {
    "user-read-recently-played": "See the tracks you played recently",
    "user-top-read": "See your top artists and tracks",
    "playlist-modify-private": "Create and change your private playlists",
    "playlist-modify-public": "Create and change your public playlists",
    "playlist-read-private": "See your private playlists",
    "user-library-modify": "Add and remove items in your library",
    "user-read-private": "See your profile: name, country and subscription",
    "user-read-email": "See your email address",
}
OPEN_KINDS = ("playlist", "track", "album", "artist")


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    """A complete HTML page in the app's style: no inline script or style, CSP friendly."""
    document = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        '<link rel="stylesheet" href="/static/css/app.css">\n</head>\n'
        f'<body class="emulator">\n<main class="card">\n<h1>{html.escape(title)}</h1>\n'
        f"{body}\n</main>\n</body>\n</html>\n")
    return HTMLResponse(document, status_code=status)


def problem(message: str, status: int = 400) -> HTMLResponse:
    """A refusal page."""
    return page("Cannot authorize", f"<p>{html.escape(message)}</p>", status)


def authorize(params: Mapping[str, str]) -> HTMLResponse:
    """The consent form: who is asking, for what, and as which emulated account."""
    scopes = params.get("scope", "").split()
    scope_list = "".join(f"<li>{html.escape(SCOPE_TEXT.get(s, s))} <code>"
                         f"{html.escape(s)}</code></li>" for s in scopes)
    if not scope_list:
        scope_list = "<li>Nothing beyond your public profile</li>"
    accounts = "".join(
        f'<label><input type="radio" name="user" value="{html.escape(u.id)}"'
        f'{" checked" if i == 0 else ""}> {html.escape(u.display_name)} '
        f"<small>({html.escape(u.blurb)})</small></label>"
        for i, u in enumerate(USERS.values()))
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(params.get(name, ""))}">'
        for name in ("client_id", "redirect_uri", "state", "code_challenge", "scope"))
    target = urlsplit(params["redirect_uri"]).netloc
    body = (
        f"<p><strong>{html.escape(params['client_id'])}</strong> wants to connect to your "
        f"Spotify account. This is the local emulator: no real Spotify account is used.</p>"
        f"<h2>It will be able to</h2><ul>{scope_list}</ul>"
        # Relative action: the page works wherever the emulator is mounted.
        f'<form method="get" action="authorize/decide">'
        f"<fieldset><legend>Sign in as</legend>{accounts}</fieldset>{hidden}"
        f"<p>After you decide you will return to <code>{html.escape(target)}</code>.</p>"
        f'<p><button type="submit" name="decision" value="agree" class="button">Agree'
        f'</button> <button type="submit" name="decision" value="cancel" '
        f'class="button button-secondary">Cancel</button></p></form>')
    return page("Spotify emulator — authorize", body)


class OpenPages:
    """Stand-ins for open.spotify.com: what an "Open in Spotify" link shows in demo mode."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[BaseRoute]:
        """GET pages under /open/{kind}/{id}, like open.spotify.com's."""
        return [Route(f"/open/{kind}/{{ident}}", getattr(self, kind), methods=["GET"],
                      name=f"emulator_open_{kind}") for kind in OPEN_KINDS]

    async def playlist(self, request: Request) -> Response:
        """A playlist: its name, owner, description and tracks in order."""
        ident = request.path_params["ident"]
        state = self.emulator.state
        with state.read() as db:
            found = state.playlist(db, ident) if BASE62_ID.match(ident) else None
            items = state.items(db, ident, 0, found.total) if found else []
        if found is None:
            return _missing("playlist")
        owner = user(found.owner)
        tracks = self.emulator.catalogue.tracks_by_id
        rows = [tracks[uri.rsplit(":", 1)[1]] for uri, _ in items
                if uri.rsplit(":", 1)[1] in tracks]
        body = (f"<p>A {'public' if found.public else 'private'} playlist by "
                f"{html.escape(owner.display_name)} · {len(rows)} "
                f"track{'s' if len(rows) != 1 else ''}"
                f"{'' if found.followed else ' · removed from their library'}</p>"
                + (f"<p>{html.escape(found.description)}</p>" if found.description else "")
                + self._track_list(rows) + _note())
        return page(found.name, body)

    async def track(self, request: Request) -> Response:
        """A track: its artists and album."""
        found = self.emulator.catalogue.tracks_by_id.get(request.path_params["ident"])
        if found is None:
            return _missing("track")
        catalogue = self.emulator.catalogue
        album = catalogue.albums[found.album]
        artists = ", ".join(_link("artist", catalogue.artists[i].spotify_id,
                                  catalogue.artists[i].name) for i in found.artists)
        minutes, seconds = divmod(found.duration_ms // 1000, 60)
        body = (f"<p>By {artists} · on {_link('album', album.spotify_id, album.name)} · "
                f"{minutes}:{seconds:02d}</p>" + _note())
        return page(found.name, body)

    async def album(self, request: Request) -> Response:
        """An album: its artist, release date and tracks."""
        found = self.emulator.catalogue.albums_by_id.get(request.path_params["ident"])
        if found is None:
            return _missing("album")
        catalogue = self.emulator.catalogue
        artist = catalogue.artists[found.artist]
        tracks = [catalogue.tracks[i] for i in self.emulator.objects.album_tracks[found.index]]
        body = (f"<p>By {_link('artist', artist.spotify_id, artist.name)} · released "
                f"{html.escape(found.release_date)}</p>" + self._track_list(tracks) + _note())
        return page(found.name, body)

    async def artist(self, request: Request) -> Response:
        """An artist: genres and albums."""
        found = self.emulator.catalogue.artists_by_id.get(request.path_params["ident"])
        if found is None:
            return _missing("artist")
        albums = [a for a in self.emulator.catalogue.albums if a.artist == found.index]
        genres = ", ".join(found.genres) or "no genres listed"
        body = (f"<p>{html.escape(genres)}</p><h2>Albums</h2><ul>"
                + "".join(f"<li>{_link('album', a.spotify_id, a.name)}</li>" for a in albums)
                + "</ul>" + _note())
        return page(found.name, body)

    def _track_list(self, tracks: Iterable) -> str:
        artists = self.emulator.catalogue.artists
        rows = "".join(
            f'<li data-track="{t.spotify_id}">{_link("track", t.spotify_id, t.name)} '
            f'<span class="meta">{html.escape(artists[t.artists[0]].name)}</span></li>'
            for t in tracks)
        return f'<ol class="track-list">{rows}</ol>' if rows else "<p>No tracks yet.</p>"


def _link(kind: str, ident: str, text: str) -> str:
    # Relative to /open/{kind}/{id}: works wherever the emulator is mounted.
    return f'<a href="../{kind}/{html.escape(ident)}">{html.escape(text)}</a>'


def _note() -> str:
    return ("<p class=\"muted\">This is the local Spotify emulator of demo mode; with real "
            "Spotify credentials this link opens open.spotify.com.</p>")


def _missing(kind: str) -> HTMLResponse:
    return page(f"No such {kind}", f"<p>The emulator has no {kind} with this id.</p>", 404)
