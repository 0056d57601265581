"""Error pages and fragments with honest status codes."""

from __future__ import annotations

import logging
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mtm.db import DatabaseUnavailable
from mtm.rendering import render
from mtm.session import current_user
from mtm.spotify.client import SpotifyError

log = logging.getLogger("mtm.errors")

MESSAGES = {
    403: "That request was refused. If you submitted a form, reload the page and try again.",
    404: "There is nothing at this address.",
    405: "This address does not accept that kind of request.",
    500: "Something went wrong on our side. Nothing you stored was changed; please try again.",
}


def error_response(request: Request, status_code: int, message: str | None = None, *,
                   link: tuple[str, str] | None = None) -> Response:
    """Render the error page (or fragment for HTMX) with a clear message.

    `link` (URL, words) is where the message tells the user to go, beside the way Home.
    """
    title = HTTPStatus(status_code).phrase
    text = message or MESSAGES.get(status_code, title)
    return render(request, "error", "error",
                  {"status_code": status_code, "title": title, "message": text, "link": link},
                  status_code=status_code)


def invalid_input(request: Request, message: str) -> Response:
    """422 with the reason the input was refused."""
    return error_response(request, 422, message)


async def http_error(request: Request, exc: Exception) -> Response:
    """The error page for an HTTPException (also answers the request guards' refusals)."""
    assert isinstance(exc, HTTPException)
    # Unknown URLs never pass a login check; load the user so the page keeps its navigation.
    await current_user(request)
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    if exc.status_code == 403 and detail and "CSRF" in detail:
        detail = ("This form has expired or did not come from this app (" + detail.rstrip(".")
                  + "). Reload the page and try again.")
    return error_response(request, exc.status_code, detail)


async def _database_error(request: Request, exc: Exception) -> Response:
    log.error("database unavailable: %s", exc)
    return error_response(request, 503, "The database is busy or unavailable right now. "
                          "Nothing was lost; please try again in a moment.")


async def _spotify_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SpotifyError)
    return error_response(request, exc.status, exc.message)


def exception_handlers() -> dict:
    """The app's exception handlers, keyed as Starlette expects."""
    return {
        HTTPException: http_error,
        DatabaseUnavailable: _database_error,
        SpotifyError: _spotify_error,
        # Unhandled exceptions: mtm.guards.ErrorPageMiddleware, inside the security headers.
    }
