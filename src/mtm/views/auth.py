"""Sign-in page, Spotify OAuth redirect and callback, sign-out."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette_wtf import csrf_protect, csrf_token

from mtm import accounts, deployment, sync
from mtm.ratelimit import CALLBACK, LOGIN, rate_limited
from mtm.rendering import flash, redirect, render, safe_next
from mtm.session import current_user, sign_in, sign_out
from mtm.spotify import oauth
from mtm.spotify.client import SpotifyError

log = logging.getLogger("mtm.auth")
LOOPBACK = "127.0.0.1"


def _signin_page(request: Request, *, error: str | None = None, status_code: int = 200,
                 next_url: str | None = None) -> Response:
    return render(request, "signin", "signin", {"error": error, "next": next_url},
                  status_code=status_code)


async def signin(request: Request) -> Response:
    """The page anonymous visitors see: what the app does and a sign-in button."""
    next_url = safe_next(request.query_params.get("next"))
    if await current_user(request) is not None:
        return redirect(request, next_url or str(request.url_for("home").path))
    return _signin_page(request, next_url=next_url)


@rate_limited(LOGIN)
async def login(request: Request) -> Response:
    """Start the authorization-code + PKCE flow and send the browser to Spotify."""
    if request.url.hostname == "localhost":
        # Spotify accepts only loopback literals as redirect URIs; move the session there too.
        return RedirectResponse(str(request.url.replace(hostname=LOOPBACK)), status_code=307)
    services = request.app.state.services
    csrf_token(request)  # makes sure this browser session has a secret to bind the state to
    binding = accounts.binding_for(request.session["csrf_token"])
    redirect_uri = deployment.redirect_uri(services.settings, request)
    next_url = safe_next(request.query_params.get("next"))
    state, challenge = await services.db.run(accounts.begin_login, binding, redirect_uri,
                                             next_url)
    url = oauth.authorize_url(services.authorize_endpoint,
                              client_id=services.spotify.client_id, redirect_uri=redirect_uri,
                              state=state, code_challenge=challenge,
                              scopes=services.settings.scopes)
    return RedirectResponse(url, status_code=303)


@rate_limited(CALLBACK)
async def callback(request: Request) -> Response:
    """Finish sign-in: check state, exchange the code, fetch recent plays once."""
    services = request.app.state.services
    params = request.query_params
    secret = request.session.get("csrf_token")
    attempt = None
    if params.get("state") and secret:
        attempt = await services.db.run(accounts.take_login, params["state"],
                                        accounts.binding_for(secret))
    if attempt is None:
        return _signin_page(request, status_code=400, error=(
            "That sign-in link is not valid for this browser (it may have expired or been "
            "used already). Please sign in again."))
    if params.get("error"):
        message = ("You cancelled the Spotify authorization, so nothing was connected."
                   if params["error"] == "access_denied"
                   else f"Spotify refused the sign-in ({params['error']}).")
        return _signin_page(request, status_code=403, error=message)
    if not params.get("code"):
        return _signin_page(request, status_code=400,
                            error="Spotify's answer had no authorization code. Please try again.")
    try:
        user_id = await accounts.complete_login(services.db, services.spotify, params["code"],
                                                attempt, services.settings.allowed_users)
    except SpotifyError as exc:
        log.warning("sign-in failed: %s %s", exc, exc.detail)
        return _signin_page(request, status_code=exc.status, error=exc.message)
    await sign_in(request, user_id)
    if await services.db.run(sync.latest_run, user_id) is None:
        # The first sign-in fetches recent plays once so the dashboard is not empty.
        run = await sync.sync_user(services.db, services.spotify, user_id,
                                   holder=f"signin-{user_id}", plays_only=True)
        if run is not None and run.outcome != "ok":
            flash(request, f"Signed in, but the first fetch of your plays failed: {run.error}",
                  "warning")
    services.scheduler.nudge()
    flash(request, "Signed in. Welcome!", "success")
    # Checked again: a target stored before this version was checked less strictly.
    return RedirectResponse(safe_next(attempt.next_url) or request.url_for("home").path,
                            status_code=303)


@csrf_protect
async def logout(request: Request) -> Response:
    """Sign out (POST only, CSRF-checked): the session ends on the server too."""
    await sign_out(request)
    flash(request, "You are signed out.", "info")
    return redirect(request, request.url_for("signin").path)
