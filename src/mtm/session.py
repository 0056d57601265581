"""Who is signed in: the signed cookie holds a server-side session id (and starlette-wtf's
CSRF secret); mtm.sessions says whose it is and whether it is still live."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from mtm import sessions, users
from mtm.rendering import redirect, safe_next

Endpoint = Callable[[Request], Awaitable[Response]]
SESSION_KEY = "sid"
_UNSET = object()

__all__ = ["current_user", "end_all_sessions", "login_required", "safe_next", "sign_in",
           "sign_out"]


def policy_of(request: Request) -> sessions.Policy:
    """The idle and absolute expiry the settings ask for."""
    settings = request.app.state.services.settings
    return sessions.Policy.from_days(settings.session_idle_days, settings.session_max_days)


def _now(request: Request) -> int:
    return int(request.app.state.services.clock())


async def current_user(request: Request) -> users.User | None:
    """The signed-in user, loaded once per request."""
    user = getattr(request.state, "user", _UNSET)
    if user is _UNSET:
        user = None
        # A cookie from before server-side sessions names a user id: it no longer signs in.
        request.session.pop("user_id", None)
        session_id = request.session.get(SESSION_KEY)
        if isinstance(session_id, str):
            services = request.app.state.services
            user = await services.db.run(sessions.resume, session_id, _now(request),
                                         policy_of(request), services.settings.admins)
            if user is None:
                # Ended, expired, or its account deleted: forget it.
                request.session.pop(SESSION_KEY, None)
        request.state.user = user
    return user


async def sign_in(request: Request, user_id: int) -> None:
    """Start a new server-side session, keeping nothing of the anonymous one but its flashes.

    The id is new on every sign-in, so an id planted before it (session fixation) is useless.
    """
    flashes = request.session.get("flash", [])
    old = request.session.get(SESSION_KEY)
    services = request.app.state.services
    if isinstance(old, str):
        await services.db.run(sessions.end, old)
    request.session.clear()
    request.session[SESSION_KEY] = await services.db.run(
        sessions.start, user_id, _now(request), policy_of(request),
        request.headers.get("user-agent"))
    if flashes:
        request.session["flash"] = flashes


async def sign_out(request: Request) -> None:
    """End the session on the server, so a copy of the cookie signs in no one."""
    session_id = request.session.get(SESSION_KEY)
    if isinstance(session_id, str):
        await request.app.state.services.db.run(sessions.end, session_id)
    request.session.clear()


async def end_all_sessions(request: Request, user_id: int) -> None:
    """End every session of a user, on every browser (disconnecting), this one included."""
    await request.app.state.services.db.run(sessions.end_all, user_id)
    request.session.clear()


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
