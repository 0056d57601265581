"""Running in production: request ids, the access log, JSON logs, allowed hosts and HSTS.

Outside production the app logs as it always has (readable lines on stderr, uvicorn's access
log); in production every log line is one JSON object on stdout, and the access log is the
app's own, so it can leave out what must never be written down (tokens, cookies, OAuth codes).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtm.config import Settings

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                         default=None)
# An incoming X-Request-ID is kept only when it is short and plain (a proxy's or a load
# balancer's id); anything else could forge log lines or carry a payload.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HSTS = "max-age=31536000; includeSubDomains"
# Query values never written to the log; any name holding "token" or "secret" neither.
REDACTED_PARAMS = frozenset({"code", "state", "password", "key", "session", "error_description"})
REDACTED = "[redacted]"
# Always answered, whatever Host it was asked for: a container's own health check asks
# for 127.0.0.1, which no allowed-host list names.
HOST_CHECK_EXEMPT = ("/healthz",)

access_log = logging.getLogger("mtm.access")


def _stamp_request_id(factory: Callable[..., logging.LogRecord]
                      ) -> Callable[..., logging.LogRecord]:
    """Every log record remembers the request it was written for, when it was written."""

    def make(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    make.stamps_request_id = True  # type: ignore[attr-defined]
    return make


if not getattr(logging.getLogRecordFactory(), "stamps_request_id", False):
    logging.setLogRecordFactory(_stamp_request_id(logging.getLogRecordFactory()))


def request_id(scope: Scope) -> str:
    """The request's id: a sane incoming X-Request-ID, else a new one."""
    incoming = Headers(scope=scope).get("x-request-id")
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def redact_query(query: str) -> str:
    """The query string with every secret-bearing value replaced."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if _secret(name) else value) for name, value in pairs],
                     safe="[]/:")


def _secret(name: str) -> bool:
    lowered = name.lower()
    return lowered in REDACTED_PARAMS or "token" in lowered or "secret" in lowered


class RequestMiddleware:
    """Gives each request an id (echoed as X-Request-ID), logs it, and adds HSTS over HTTPS.

    It wraps the whole app, outside Starlette's error handling, so the 500 page gets its
    headers too and the access log sees the status that was really sent.
    """

    def __init__(self, app: ASGIApp, *, access: bool, hsts: bool) -> None:
        self.app, self.access, self.hsts = app, access, hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
                if self.hsts and scope.get("scheme") == "https":
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access:
                self._log(scope, status, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _log(self, scope: Scope, status: int, seconds: float) -> None:
        query = redact_query(scope.get("query_string", b"").decode("latin-1"))
        client = scope.get("client")
        # Only these fields: never headers, so no cookie or Authorization ever reaches a log.
        access_log.info("%s %s %d", scope["method"], scope["path"], status, extra={"http": {
            "method": scope["method"], "path": scope["path"], "query": query, "status": status,
            "duration_ms": round(seconds * 1000, 1), "client": client[0] if client else None,
            "scheme": scope.get("scheme")}})


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """Whether a Host header names one of the allowed hosts ("*.example.org" for any
    subdomain; the port is not compared)."""
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    host = host.strip().lower().rstrip(".")
    for pattern in allowed:
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


class AllowedHostsMiddleware:
    """Refuses requests whose Host header names none of MTM_ALLOWED_HOSTS (400).

    Pages build absolute URLs (the Spotify redirect URI) from the host they were asked for,
    so an unchecked Host would let anyone point them elsewhere.
    """

    def __init__(self, app: ASGIApp, *, allowed: tuple[str, ...]) -> None:
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] not in ("http", "websocket") or not self.allowed
                or scope.get("path") in HOST_CHECK_EXEMPT
                or host_allowed(Headers(scope=scope).get("host", ""), self.allowed)):
            await self.app(scope, receive, send)
            return
        response = PlainTextResponse("This server does not answer for that host name.",
                                     status_code=400)
        await response(scope, receive, send)


def redirect_uri(settings: Settings, request: Request) -> str:
    """The Spotify redirect URI for a sign-in started by this request.

    SPOTIFY_REDIRECT_URI when set. Otherwise, in production, the host is one of the allowed
    hosts (the one asked for when it is named exactly, else the first), never the Host
    header as sent; outside production it is the URL the request came to, as before.
    """
    if settings.redirect_uri:
        return settings.redirect_uri
    callback = request.url_for("callback")
    if not settings.production:
        return str(callback)
    exact = [h for h in settings.allowed_hosts if "*" not in h]
    asked = (request.url.hostname or "").lower()
    host = asked if asked in exact else exact[0]
    port = request.url.port
    netloc = f"[{host}]" if ":" in host else host
    return f"{request.url.scheme}://{netloc}{f':{port}' if port else ''}{callback.path}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            entry["request_id"] = rid
        http = getattr(record, "http", None)
        if isinstance(http, dict):
            entry["http"] = http
        if record.exc_info:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _JsonHandler(logging.StreamHandler):
    """The production log handler (a class of its own, so it is replaced, not doubled)."""


def configure_logging(level: str = "info") -> None:
    """Send every log record to stdout as JSON, uvicorn's included."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # logging.basicConfig's plain handler and an earlier JSON one; test harness
        # handlers (subclasses) stay.
        if type(handler) in (logging.StreamHandler, _JsonHandler):
            root.removeHandler(handler)
    handler = _JsonHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # The app writes its own access log, with secrets left out.
    logging.getLogger("uvicorn.access").disabled = True
