"""ASGI guards around every route: a request body limit, no JSON bodies, and the 500 page.

The body limit refuses before anything buffers a body: a Content-Length over the limit is
answered at once without reading a byte, and a chunked body is counted as it arrives. JSON
bodies are refused before starlette-wtf's form parsing could try to read them as a form.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from python_multipart.multipart import parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette_wtf.util import validate_csrf
from wtforms import ValidationError

from mtm.uploads import size_label
from mtm.views.errors import error_response, http_error

log = logging.getLogger("mtm.errors")

# Every form of the app fits in a few kilobytes; uploads have their own, larger limit.
MAX_BODY_BYTES = 1_000_000
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What is sent when even the error page cannot be rendered (its template or database failed).
FALLBACK_500 = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Server error"
                "</title><h1>Something went wrong</h1><p>Something went wrong on our side. "
                "Nothing you stored was changed; please try again.</p></html>")


class BodyTooLarge(HTTPException):
    """A request body over the limit: 413 with the limit in words."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"This request is larger than {size_label(limit)}, the most this "
                         "address accepts. Nothing was read or kept.")


def _media_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return parse_options_header(value)[0].lower()
    return b""


def _is_json(media_type: bytes) -> bool:
    return media_type == b"application/json" or media_type.endswith(b"+json")


def _csrf_refusal(request: Request) -> HTTPException | None:
    """The 403 a JSON request gets without a valid token in a header (never read from it)."""
    config = request.state.csrf_config
    token = next((request.headers[h] for h in config["csrf_headers"] if request.headers.get(h)),
                 None)
    try:
        validate_csrf(request, token, secret_key=config["csrf_secret"],
                      field_name=config["csrf_field_name"], time_limit=config["csrf_time_limit"])
    except ValidationError as exc:
        return HTTPException(403, str(exc.args[0]))
    return None


class RequestGuardMiddleware:
    """Refuses oversized bodies (413) and JSON bodies on unsafe methods (403 or 415).

    It sits inside the session and CSRF middleware, so its refusals are the app's own error
    pages. `limits` names paths (uploads) that refuse a large Content-Length themselves, in
    their own words, before reading: here they get only a backstop on the bytes streamed.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES,
                 limits: Mapping[str, int] | None = None) -> None:
        self.app, self.limit, self.limits = app, limit, dict(limits or {})

    async def _refuse(self, scope: Scope, receive: Receive, send: Send,
                      exc: HTTPException) -> None:
        response = await http_error(Request(scope, receive), exc)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        own = scope["path"] in self.limits
        limit = self.limits.get(scope["path"], self.limit)
        length = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        if length is not None and not own and (not length.isdigit() or int(length) > limit):
            if not length.isdigit():
                exc = HTTPException(400, "The request's Content-Length is not a number.")
            else:
                exc = BodyTooLarge(limit)
            await self._refuse(scope, receive, send, exc)
            return
        if scope["method"] in UNSAFE_METHODS and _is_json(_media_type(scope)):
            refusal = _csrf_refusal(Request(scope, receive)) or HTTPException(
                415, "This address takes a form, not JSON. Use the page's own form.")
            await self._refuse(scope, receive, send, refusal)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the handler that reads the body: its error page answers.
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class ErrorPageMiddleware:
    """Answers an unhandled exception with the app's 500 page, and keeps the connection.

    Starlette's own last resort sits outside every middleware, so its page lacked the security
    headers, and it re-raised, which made uvicorn drop the keep-alive connection. This one sits
    inside the security headers and swallows the exception once it is logged and answered.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"),
                          exc_info=exc)
            if started:
                # Half a response is out: only closing the connection tells the client.
                raise
            await self._error_page(scope, receive)(scope, receive, send)

    @staticmethod
    def _error_page(scope: Scope, receive: Receive) -> Response:
        try:
            return error_response(Request(scope, receive), 500)
        except Exception:
            log.exception("the error page itself failed")
            return HTMLResponse(FALLBACK_500, 500)
