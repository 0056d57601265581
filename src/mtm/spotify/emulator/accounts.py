"""The emulated accounts service: the authorize page, codes, tokens, rotation and consent."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mtm.spotify import oauth
from mtm.spotify.emulator import pages
from mtm.spotify.emulator.state import ACCESS_TOKEN_SECONDS, Consent
from mtm.spotify.emulator.users import USERS
from mtm.spotify.emulator.wire import AccountsError, basic_client_id

if TYPE_CHECKING:
    from mtm.spotify.emulator.core import Emulator

CODE_SECONDS = 600
KNOWN_SCOPES = frozenset({
    "ugc-image-upload", "user-read-playback-state", "user-modify-playback-state",
    "user-read-currently-playing", "app-remote-control", "streaming", "playlist-read-private",
    "playlist-read-collaborative", "playlist-modify-private", "playlist-modify-public",
    "user-follow-modify", "user-follow-read", "user-read-playback-position", "user-top-read",
    "user-read-recently-played", "user-library-modify", "user-library-read",
    "user-read-email", "user-read-private", "user-personalized",
})


@dataclass(frozen=True)
class Grant:
    """An authorization code's terms, until it is exchanged (once) or expires."""

    user: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    expires_at: float


class Accounts:
    """Spotify's accounts service: /accounts/authorize and /accounts/api/token."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def browser_routes(self) -> list[BaseRoute]:
        """The GET-only pages a browser visits while signing in."""
        return [
            Route("/accounts/authorize", self.authorize, methods=["GET"],
                  name="emulator_authorize"),
            Route("/accounts/authorize/decide", self.decide, methods=["GET"],
                  name="emulator_decide"),
        ]

    def api_routes(self) -> list[BaseRoute]:
        """The token endpoint the app's server calls."""
        return [Route("/accounts/api/token", self.token, methods=["POST"])]

    def grant_code(self, user: str, *, redirect_uri: str, code_challenge: str,
                   scope: str = "") -> str:
        """Issue an authorization code directly, as if `user` had pressed Agree."""
        if user not in USERS:
            raise ValueError(f"unknown emulated user {user!r}")
        code = secrets.token_urlsafe(32)
        emulator, now = self.emulator, self.emulator.clock()
        # In the state file, not in memory: another worker may answer the exchange.
        emulator.state.save_code(code, (user, emulator.client_id, redirect_uri, code_challenge,
                                        scope, now + CODE_SECONDS), now)
        return code

    # The authorize page

    def registered(self, uri: str, origin: str) -> bool:
        """Whether `uri` is one of the app's registered redirect URIs (compared exactly)."""
        emulator = self.emulator
        if uri in emulator.redirect_uris:
            return True
        return (emulator.own_origin_callback is not None
                and uri == origin + emulator.own_origin_callback)

    def problem(self, params: Any, *, check_request: bool, origin: str = "") -> str | None:
        """Why an authorize request is refused (Spotify's wording), or None when it is fine.

        `origin` is where the page was asked for (scheme://host:port), for an app that
        registered its callback on the emulator's own origin.
        """
        if params.get("client_id") != self.emulator.client_id:
            return "INVALID_CLIENT: Invalid client"
        if check_request:
            if params.get("response_type") != "code":
                return "unsupported_response_type: response_type must be code"
            if params.get("code_challenge_method") != "S256":
                return "INVALID_REQUEST: code_challenge_method must be S256"
        if not oauth.is_valid_challenge(params.get("code_challenge", "")):
            return "INVALID_REQUEST: a PKCE code_challenge is required"
        problem = redirect_problem(params.get("redirect_uri", ""))
        if problem:
            return problem
        # Spotify sends a code only to a URI registered in the app's dashboard: anywhere
        # else, an attacker's link would hand them the user's code.
        if not self.registered(params["redirect_uri"], origin):
            return "INVALID_CLIENT: Invalid redirect URI"
        unknown = [s for s in params.get("scope", "").split() if s not in KNOWN_SCOPES]
        if unknown:
            return f"INVALID_SCOPE: Invalid scope {' '.join(unknown)}"
        return None

    async def authorize(self, request: Request) -> Response:
        """The consent page, or why the request cannot be authorized (never a redirect)."""
        params = request.query_params
        problem = self.problem(params, check_request=True, origin=_origin(request))
        if problem:
            return pages.problem(problem)
        return pages.authorize(params)

    async def decide(self, request: Request) -> Response:
        """Agree or Cancel: back to the app with a code, or with access_denied."""
        params = request.query_params
        problem = self.problem(params, check_request=False, origin=_origin(request))
        if problem:
            return pages.problem(problem)
        decision = params.get("decision")
        user = params.get("user", "")
        if decision not in ("agree", "cancel") or (decision == "agree" and user not in USERS):
            return pages.problem("Choose an account, then Agree or Cancel.")
        answer = {}
        if decision == "agree":
            answer["code"] = self.grant_code(user, redirect_uri=params["redirect_uri"],
                                             code_challenge=params["code_challenge"],
                                             scope=params.get("scope", ""))
        else:
            answer["error"] = "access_denied"
        if "state" in params:
            answer["state"] = params["state"]
        uri = params["redirect_uri"]
        separator = "&" if urlsplit(uri).query else ("" if uri.endswith("?") else "?")
        return RedirectResponse(uri + separator + urlencode(answer), status_code=303)

    # The token endpoint

    async def token(self, request: Request) -> Response:
        """Exchange a code, or rotate a refresh token."""
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            raise AccountsError("invalid_request", "Body must be form encoded")
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                              keep_blank_values=True))
        client_id = basic_client_id(request.headers.get("authorization")) or \
            form.get("client_id")
        if client_id != self.emulator.client_id:
            raise AccountsError("invalid_client", "Invalid client")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            return self._rotate(form)
        raise AccountsError("unsupported_grant_type",
                            "grant_type must be authorization_code or refresh_token")

    def _exchange(self, form: dict[str, str]) -> Response:
        now = self.emulator.clock()
        # A code is single use, even when this attempt fails.
        terms = self.emulator.state.take_code(form.get("code", ""))
        grant = Grant(*terms) if terms else None
        if grant is None or grant.expires_at < now or grant.client_id != self.emulator.client_id:
            raise AccountsError("invalid_grant", "Invalid authorization code")
        if form.get("redirect_uri") != grant.redirect_uri:
            raise AccountsError("invalid_grant", "Invalid redirect URI")
        if not oauth.verify(form.get("code_verifier", ""), grant.code_challenge):
            raise AccountsError("invalid_grant", "code_verifier was incorrect")
        consent = Consent(grant.user, grant.scope, now)
        return _token_response(self.emulator.state.issue(consent, now), consent)

    def _rotate(self, form: dict[str, str]) -> Response:
        token = form.get("refresh_token", "")
        if not token:
            raise AccountsError("invalid_request", "refresh_token must be supplied")
        consent, tokens = self.emulator.state.rotate(token, self.emulator.clock())
        if consent is None:
            raise AccountsError("invalid_grant", "Invalid refresh token")
        if tokens is None:
            raise AccountsError("invalid_grant", "Refresh token expired")
        return _token_response(tokens, consent)


def _origin(request: Request) -> str:
    """scheme://host[:port] the browser asked for this page on."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _token_response(tokens: tuple[str, str], consent: Consent) -> Response:
    access, refresh = tokens
    return JSONResponse({"access_token": access, "token_type": "Bearer",
                         "expires_in": ACCESS_TOKEN_SECONDS, "refresh_token": refresh,
                         "scope": consent.scope})


def redirect_problem(uri: str) -> str | None:
    """Spotify's redirect URI rules: https, or http on a loopback literal with a port."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "INVALID_CLIENT: Invalid redirect URI"
    host = (parts.hostname or "").lower()
    if not host or parts.fragment:
        return "INVALID_CLIENT: Invalid redirect URI"
    if host == "localhost" or host.endswith(".localhost"):
        return ("INVALID_CLIENT: Insecure redirect URI. localhost is not allowed; use the "
                "loopback address, such as http://127.0.0.1:8000/callback")
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in ("127.0.0.1", "::1") and port is not None:
        return None
    return "INVALID_CLIENT: Insecure redirect URI"
