"""Who is signed in: the session holds only the user id (and starlette-wtf's CSRF secret)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from mtm import users
from mtm.rendering import redirect

Endpoint = Callable[[Request], Awaitable[Response]]
_UNSET = object()


async def current_user(request: Request) -> users.User | None:
    """The signed-in user, loaded once per request."""
    user = getattr(request.state, "user", _UNSET)
    if user is _UNSET:
        user = None
        user_id = request.session.get("user_id")
        if isinstance(user_id, int):
            services = request.app.state.services
            user = await services.db.run(users.get_user, user_id, services.settings.admins)
            if user is None:
                # The account was deleted: forget the stale session.
                request.session.pop("user_id", None)
        request.state.user = user
    return user


def sign_in(request: Request, user_id: int) -> None:
    """Start a session for a user, keeping nothing from the anonymous one but its flashes."""
    flashes = request.session.get("flash", [])
    request.session.clear()
    request.session["user_id"] = user_id
    if flashes:
        request.session["flash"] = flashes


def sign_out(request: Request) -> None:
    """End the session."""
    request.session.clear()


def safe_next(url: str | None) -> str | None:
    """Accept only a local path for post-sign-in redirects (no open redirects)."""
    if url and url.startswith("/") and not url.startswith("//") and "\\" not in url:
        return url
    return None


def login_required(endpoint: Endpoint) -> Endpoint:
    """Send anonymous visitors to the sign-in page (HX-Redirect for HTMX requests)."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if await current_user(request) is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            location = f"{request.url_for('signin').path}?{urlencode({'next': target})}"
            return redirect(request, location, status_code=303, hx_status=401)
        return await endpoint(request)

    return guarded
