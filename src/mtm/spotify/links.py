"""Links to Spotify's own pages: open.spotify.com, or the emulator's stand-ins in demo mode."""

from __future__ import annotations

from urllib.parse import quote

OPEN_SPOTIFY = "https://open.spotify.com"
# Where routes.py mounts the emulator's browser pages (see its pages.OpenPages).
EMULATOR_OPEN = "/emulator/open"
KINDS = frozenset({"playlist", "track", "album", "artist"})


def spotify_link(kind: str, ident: str, *, demo: bool) -> str:
    """The page of a playlist, track, album or artist, for an "Open in Spotify" link.

    With real credentials that is open.spotify.com; in demo mode the ids are the emulator's,
    which Spotify has never heard of, so the link opens the emulator's own page instead.
    """
    if kind not in KINDS:
        raise ValueError(f"no Spotify page for {kind!r}")
    return f"{EMULATOR_OPEN if demo else OPEN_SPOTIFY}/{kind}/{quote(ident, safe='')}"
