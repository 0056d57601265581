"""Pages whose features are planned but not built yet: they say so honestly."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm.rendering import render
from mtm.session import login_required

PLANNED = {
    "playlists": ("Playlists",
                  "Turn your history into Spotify playlists: forgotten gems, recent "
                  "discoveries, your current rotation, on this day, and your year in review."),
    "settings": ("Settings",
                 "Sync now, import a Spotify privacy export, export your data as SQLite, JSON "
                 "or CSV, backups and restore, preferences, disconnect and clear all data."),
}


def _upcoming(request: Request, key: str) -> Response:
    title, description = PLANNED[key]
    return render(request, "upcoming", "upcoming",
                  {"page_key": key, "title": title, "description": description})


@login_required
async def playlists(request: Request) -> Response:
    """Playlists (coming soon)."""
    return _upcoming(request, "playlists")


@login_required
async def settings(request: Request) -> Response:
    """Settings (coming soon)."""
    return _upcoming(request, "settings")
