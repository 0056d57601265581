"""Files browsers ask for by convention."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse


async def favicon(request: Request) -> RedirectResponse:
    """Browsers ask for /favicon.ico on pages without an icon link (the emulator's)."""
    return RedirectResponse(request.url_for("static", path="favicon.svg").path, status_code=301)
