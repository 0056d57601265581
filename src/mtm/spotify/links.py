"""Links to Spotify's pages and images, or to the emulator's stand-ins in demo mode."""

from __future__ import annotations

from urllib.parse import quote

from mtm.spotify.emulator.core import IN_PROCESS_BASE
from mtm.spotify.emulator.images import IMAGE_PATH

OPEN_SPOTIFY = "https://open.spotify.com"
# Where routes.py mounts the emulator's browser pages (see its pages.OpenPages).
EMULATOR_OPEN = "/emulator/open"
# The only image host the CSP (mtm.security) allows besides the app itself.
SPOTIFY_IMAGES = "https://i.scdn.co/image/"
# The emulator's images as its API names them, and where the browser finds them in demo mode.
EMULATOR_IMAGE_URL = f"{IN_PROCESS_BASE}{IMAGE_PATH}/"
EMULATOR_IMAGES = f"/emulator{IMAGE_PATH}"
KINDS = frozenset({"playlist", "track", "album", "artist"})


def spotify_link(kind: str, ident: str, *, demo: bool) -> str:
    """The page of a playlist, track, album or artist, for an "Open in Spotify" link.

    With real credentials that is open.spotify.com; in demo mode the ids are the emulator's,
    which Spotify has never heard of, so the link opens the emulator's own page instead.
    """
    if kind not in KINDS:
        raise ValueError(f"no Spotify page for {kind!r}")
    return f"{EMULATOR_OPEN if demo else OPEN_SPOTIFY}/{kind}/{quote(ident, safe='')}"


def image_src(url: str | None, *, demo: bool) -> str | None:
    """Where the browser loads a stored album or artist image from, or None to show none.

    Spotify's images are on i.scdn.co, which the CSP allows. The emulator's are on its own
    origin, which no browser can reach: in demo mode they are loaded from where routes.py
    mounts it. Anything else would be refused by the CSP, a broken image: none is better.
    """
    if not url:
        return None
    if url.startswith(SPOTIFY_IMAGES):
        return url
    if demo and url.startswith(EMULATOR_IMAGE_URL):
        return f"{EMULATOR_IMAGES}/{url.removeprefix(EMULATOR_IMAGE_URL)}"
    return None
