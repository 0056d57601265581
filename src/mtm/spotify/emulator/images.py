"""Album covers and artist pictures: generated SVGs standing in for i.scdn.co's images.

An image id is a size prefix (Spotify's own, so ids look like i.scdn.co's) followed by the
album's or artist's Spotify id; the picture is drawn from a hash of that id, so it is the
same on every run and machine, and nothing is fetched from anywhere.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from mtm.spotify.catalogue import Album, Artist
from mtm.spotify.emulator.wire import BASE62_ID

if TYPE_CHECKING:
    from mtm.spotify.emulator.core import Emulator

# Under the emulator's origin, as /image/{id} is under https://i.scdn.co.
IMAGE_PATH = "/image"
# (kind, width) by prefix, widest first as Spotify lists them: albums 640/300/64 and
# artists 640/320/160, Spotify's sizes in 2026.
PREFIXES: dict[str, tuple[str, int]] = {
    "ab67616d0000b273": ("album", 640),
    "ab67616d00001e02": ("album", 300),
    "ab67616d00004851": ("album", 64),
    "ab6761610000e5eb": ("artist", 640),
    "ab67616100005174": ("artist", 320),
    "ab6761610000f178": ("artist", 160),
}
PREFIX_LENGTH = 16
# Deterministic, so a browser may keep it; a day, not forever, in case the drawing changes.
CACHE_CONTROL = "public, max-age=86400"
# An SVG opened on its own is a document: it may not run script or load anything.
SVG_CSP = "default-src 'none'; sandbox"


def image_list(origin: str, kind: str, spotify_id: str) -> list[dict[str, Any]]:
    """The `images` of an album or artist: [{url, height, width}], widest first."""
    return [{"url": f"{origin}{IMAGE_PATH}/{prefix}{spotify_id}", "height": width,
             "width": width}
            for prefix, (of, width) in PREFIXES.items() if of == kind]


def parse_image_id(image_id: str) -> tuple[str, int, str] | None:
    """(kind, width, Spotify id) of an image id, or None when it is not one."""
    found = PREFIXES.get(image_id[:PREFIX_LENGTH])
    spotify_id = image_id[PREFIX_LENGTH:]
    if found is None or not BASE62_ID.match(spotify_id):
        return None
    return found[0], found[1], spotify_id


def initials(name: str) -> str:
    """Up to two capital letters of a name's first words ("Neon Harbour" is "NH")."""
    words = re.findall(r"\w+", name)
    return "".join(w[0] for w in words[:2]).upper() or "?"


def svg(kind: str, spotify_id: str, name: str, width: int) -> str:
    """The picture: a two-colour gradient, a pattern and the initials, all from the id."""
    digest = hashlib.sha256(f"{kind}:{spotify_id}".encode()).digest()
    hue, turn = digest[0] * 360 // 256, 40 + digest[1] % 140
    top, bottom = f"hsl({hue},65%,55%)", f"hsl({(hue + turn) % 360},60%,30%)"
    angle = digest[2] % 4
    x2, y2 = ((1, 0), (1, 1), (0, 1), (1, 1))[angle]
    # Rings like a record's grooves on albums, tilted blocks on artists: the kinds differ.
    if kind == "album":
        shapes = "".join(
            f'<circle cx="{20 + digest[3 + i] % 60}" cy="{20 + digest[7 + i] % 60}" '
            f'r="{8 + digest[11 + i] % 30}" fill="none" stroke="#fff" '
            f'stroke-opacity="0.{2 + i}" stroke-width="{2 + digest[15 + i] % 5}"/>'
            for i in range(4))
    else:
        shapes = "".join(
            f'<rect x="{digest[3 + i] % 80}" y="{digest[7 + i] % 80}" '
            f'width="{10 + digest[11 + i] % 30}" height="{10 + digest[15 + i] % 30}" '
            f'fill="#fff" fill-opacity="0.{1 + i}" transform="rotate({digest[19 + i] % 90} '
            f'50 50)"/>' for i in range(4))
    letters = html.escape(initials(name))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{width}" '
        f'viewBox="0 0 100 100" role="img"><title>{html.escape(name)}</title>'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="{x2}" y2="{y2}">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        f'</linearGradient></defs><rect width="100" height="100" fill="url(#g)"/>{shapes}'
        f'<text x="50" y="50" dy="0.35em" text-anchor="middle" font-family="sans-serif" '
        f'font-size="{34 if len(letters) > 1 else 44}" font-weight="700" fill="#fff" '
        f'fill-opacity="0.92">{letters}</text></svg>\n')


class Images:
    """GET /image/{id}: the SVG of a catalogue album or artist, 404 for anything else."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def routes(self) -> list[BaseRoute]:
        """The one image route (a browser loads it, so it is among the browser routes)."""
        return [Route(f"{IMAGE_PATH}/{{image_id}}", self.image, methods=["GET"],
                      name="emulator_image")]

    async def image(self, request: Request) -> Response:
        """One image, deterministic per id, with its own CSP and cache headers."""
        parsed = parse_image_id(request.path_params["image_id"])
        catalogue = self.emulator.catalogue
        found: Album | Artist | None = None
        if parsed is not None:
            kind, width, spotify_id = parsed
            table = catalogue.albums_by_id if kind == "album" else catalogue.artists_by_id
            found = table.get(spotify_id)
        if found is None:
            return PlainTextResponse("No such image", status_code=404,
                                     headers={"Cache-Control": "no-store"})
        return Response(svg(kind, spotify_id, found.name, width),
                        media_type="image/svg+xml",
                        headers={"Cache-Control": CACHE_CONTROL,
                                 "Content-Security-Policy": SVG_CSP})
