"""Rate limits on signing in, uploads and downloads, counted in SQLite for every worker at once.

Each limit counts hits per key (the client's address before sign-in, the user after it) in
fixed windows; one over the limit answers 429 with Retry-After until the window ends. The
counts live in the database rather than in each process, so four workers do not allow four
times the limit, and a restart does not reset them.
"""

from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request
from starlette.responses import Response

from mtm.db import transaction
from mtm.session import current_user
from mtm.views.errors import error_response

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Limit:
    """At most `hits` requests per `seconds` for one address or one user."""

    name: str
    hits: int
    seconds: int
    per: Literal["address", "user"]
    # What the refusal says was too much, completing "You have made too many ...".
    what: str


# Far above what a person does by hand: a household signing in on all its devices, a
# dozen exports to compare, an upload retried many times, still fit.
LOGIN = Limit("login", 20, 600, "address", "sign-in attempts from your network")
CALLBACK = Limit("callback", 20, 600, "address", "sign-in attempts from your network")
UPLOAD = Limit("upload", 30, 3600, "user", "uploads")
DOWNLOAD = Limit("download", 60, 3600, "user", "downloads (exports and backups)")
LONGEST_WINDOW = max(limit.seconds for limit in (LOGIN, CALLBACK, UPLOAD, DOWNLOAD))


def hit(conn: sqlite3.Connection, key: str, limit: Limit, now: int) -> int | None:
    """Count one request for `key`; None when allowed, else the seconds until it will be."""
    start = now - now % limit.seconds
    with transaction(conn):
        # Windows that have ended are of no use to any limit; this keeps the table small.
        conn.execute("DELETE FROM rate_limits WHERE window_start <= ?", (now - LONGEST_WINDOW,))
        hits = conn.execute(
            "INSERT INTO rate_limits (key, window_start, hits) VALUES (?, ?, 1) "
            "ON CONFLICT (key, window_start) DO UPDATE SET hits = hits + 1 RETURNING hits",
            (key, start)).fetchone()[0]
    if hits <= limit.hits:
        return None
    return max(1, start + limit.seconds - now)


def _wait_words(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "a minute" if minutes <= 1 else f"{minutes} minutes"


def refusal(limit: Limit, retry_after: int) -> str:
    """What a person is told when over the limit."""
    return (f"You have made too many {limit.what} in a short time. Nothing was done; please "
            f"wait {_wait_words(retry_after)} and try again.")


def rate_limited(limit: Limit) -> Callable[[Endpoint], Endpoint]:
    """Refuse requests over `limit` with 429 and Retry-After, before the endpoint runs.

    Per-user limits go inside @login_required, so the user is known.
    """

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def limited(request: Request) -> Response:
            services = request.app.state.services
            if not services.settings.rate_limits:
                return await endpoint(request)
            if limit.per == "user":
                user = await current_user(request)
                who = f"user:{user.id}" if user is not None else _address(request)
            else:
                who = _address(request)
            wait = await services.db.run(hit, f"{limit.name}:{who}", limit,
                                         int(services.clock()))
            if wait is None:
                return await endpoint(request)
            response = error_response(request, 429, refusal(limit, wait))
            response.headers["Retry-After"] = str(wait)
            return response

        return limited

    return decorate


def _address(request: Request) -> str:
    """The client's address (behind a trusted proxy, the one the proxy middleware put there)."""
    return f"addr:{request.client.host if request.client else 'unknown'}"
