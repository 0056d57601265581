"""An async client for Spotify's accounts service and Web API, with errors a person can read."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

MAX_RETRIES = 2
# Two short pauses (0.4 s in all): enough to ride out a blip, short enough for a page request.
BACKOFF_SECONDS = (0.1, 0.3)
ADD_ITEMS_CHUNK = 100
LIBRARY_CHUNK = 40
TIME_RANGES = ("short_term", "medium_term", "long_term")
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class SpotifyError(Exception):
    """A failed Spotify call: `message` is safe to show a user, `status` is what the app answers."""

    default_message = "Spotify could not handle the request; try again later."
    default_status = 502

    def __init__(self, message: str | None = None, *, status: int | None = None,
                 detail: str = "") -> None:
        self.message = message or self.default_message
        self.status = status or self.default_status
        # Spotify's own wording, for logs only: it may mention internals a user cannot act on.
        self.detail = detail
        super().__init__(self.message)


class ConsentExpired(SpotifyError):
    """The refresh token was refused (invalid_grant): the user must connect Spotify again."""

    default_message = "Your Spotify connection has expired; reconnect to keep recording."
    default_status = 401


class RateLimited(SpotifyError):
    """Spotify answered 429; `retry_after` is how many seconds it asked us to wait."""

    default_status = 503

    def __init__(self, retry_after: int = 60, message: str | None = None, *,
                 detail: str = "") -> None:
        self.retry_after = retry_after
        super().__init__(
            message or f"Spotify is limiting requests right now; try again in "
                       f"{_human_wait(retry_after)}.",
            detail=detail)


class QuotaExceeded(RateLimited):
    """Spotify answered 429 with reason QUOTA_EXCEEDED: the app's daily quota, not a burst.

    It holds for every user of this app until it resets: Retry-After when Spotify sends
    one, else the next midnight UTC (the quota is daily).
    """

    def __init__(self, retry_after: int, *, detail: str = "") -> None:
        super().__init__(
            retry_after, "This app has used up its daily allowance of Spotify requests; "
                         f"Spotify can be asked again in {_human_wait(retry_after)}.",
            detail=detail)


class SpotifyUnavailable(SpotifyError):
    """Spotify failed (5xx), did not answer in time, or could not be reached."""

    default_message = "Spotify is having trouble right now; try again in a few minutes."
    default_status = 502


class NotFound(SpotifyError):
    """The requested item does not exist on Spotify (any more)."""

    default_message = "Spotify could not find that item; it may have been removed."
    default_status = 404


class AuthorizationFailed(SpotifyError):
    """Spotify refused to exchange the authorization code (bad code, verifier or redirect)."""

    default_message = "Spotify did not accept this sign-in; please try connecting again."
    default_status = 400


class Unauthorized(SpotifyError):
    """An API call was refused with 401: the access token expired or was revoked."""

    default_message = "Spotify no longer accepts the saved sign-in; reconnect your account."
    default_status = 401


class Forbidden(SpotifyError):
    """An API call was refused with 403: missing scope, or the account is not allowed."""

    default_message = ("Spotify refused this request for your account. Reconnect to grant the "
                       "needed permissions; an app in development mode must also list your "
                       "account as a user.")
    default_status = 403


@dataclass(frozen=True)
class TokenSet:
    """Tokens from the accounts service; `expires_at` is the access token's end, unix seconds."""

    access_token: str
    refresh_token: str
    expires_at: int
    scope: str


class SpotifyClient:
    """Calls Spotify's accounts service and Web API over one pooled httpx client."""

    def __init__(self, *, client_id: str, client_secret: str | None, accounts_url: str,
                 api_url: str, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 10.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.accounts_url = accounts_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self._clock = clock
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout,
                                       headers={"Accept": "application/json"})

    @property
    def authorize_endpoint(self) -> str:
        """Where the browser goes to grant access."""
        return f"{self.accounts_url}/authorize"

    @property
    def token_endpoint(self) -> str:
        """Where codes and refresh tokens are exchanged for access tokens."""
        return f"{self.accounts_url}/api/token"

    async def __aenter__(self) -> SpotifyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def now(self) -> float:
        """The client's clock: token expiry times are on it."""
        return self._clock()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # Accounts service

    async def exchange_code(self, code: str, *, code_verifier: str,
                            redirect_uri: str) -> TokenSet:
        """Trade an authorization code (and its PKCE verifier) for tokens."""
        payload = await self._token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }, refreshing=False)
        return self._token_set(payload, previous_refresh_token="")

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Get a new access token; store the returned refresh token, the old one is spent."""
        payload = await self._token_request({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }, refreshing=True)
        return self._token_set(payload, previous_refresh_token=refresh_token)

    async def _token_request(self, form: dict[str, str], *, refreshing: bool) -> dict:
        auth = None
        if self._client_secret:
            auth = httpx.BasicAuth(self.client_id, self._client_secret)
        else:
            # PKCE without a secret: the client identifies itself in the body.
            form = {**form, "client_id": self.client_id}
        response = await self._send("POST", self.token_endpoint, data=form, auth=auth)
        if response.status_code < 400:
            return _json(response)
        if response.status_code == 429:
            raise RateLimited(_retry_after(response.headers.get("Retry-After")))
        error, description = _accounts_error(response)
        detail = f"{response.status_code} {error}: {description}".strip()
        if error == "invalid_client":
            raise SpotifyError("Spotify does not recognise this app's client id or secret; "
                               "check the Spotify settings of this server.", detail=detail)
        if refreshing:
            if error == "invalid_grant":
                raise ConsentExpired(detail=detail)
            raise SpotifyError(detail=detail)
        raise AuthorizationFailed(detail=detail)

    def _token_set(self, payload: dict, *, previous_refresh_token: str) -> TokenSet:
        access_token = payload.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise SpotifyUnavailable("Spotify sent an incomplete answer; try again.",
                                     detail="token response without access_token")
        try:
            expires_in = int(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600
        # Refresh tokens rotate: keep the old one only when Spotify did not send a new one.
        refresh_token = payload.get("refresh_token") or previous_refresh_token
        return TokenSet(access_token=access_token, refresh_token=refresh_token,
                        expires_at=int(self._clock()) + expires_in,
                        scope=str(payload.get("scope") or ""))

    # Web API

    async def me(self, access_token: str) -> dict:
        """The current user's profile."""
        return await self._api("GET", "/me", access_token)

    async def recently_played(self, access_token: str, *, after: int | None = None,
                              before: int | None = None, limit: int = 50) -> dict:
        """Up to `limit` (1-50) recent plays; `after`/`before` are unix milliseconds."""
        if after is not None and before is not None:
            raise ValueError("Spotify accepts either after or before, not both")
        params: dict[str, int] = {"limit": _check_limit(limit)}
        if after is not None:
            params["after"] = int(after)
        if before is not None:
            params["before"] = int(before)
        return await self._api("GET", "/me/player/recently-played", access_token, params=params)

    async def top_items(self, access_token: str, kind: Literal["tracks", "artists"],
                        time_range: str = "medium_term", limit: int = 50) -> dict:
        """The user's top tracks or artists over `time_range`."""
        if kind not in ("tracks", "artists"):
            raise ValueError(f"kind must be 'tracks' or 'artists', not {kind!r}")
        if time_range not in TIME_RANGES:
            raise ValueError(f"time_range must be one of {TIME_RANGES}, not {time_range!r}")
        return await self._api("GET", f"/me/top/{kind}", access_token,
                               params={"time_range": time_range, "limit": _check_limit(limit)})

    async def artist(self, access_token: str, artist_id: str) -> dict:
        """One artist; `genres` and `popularity` may be absent for development-mode apps."""
        return await self._api("GET", f"/artists/{_segment(artist_id)}", access_token)

    async def track(self, access_token: str, track_id: str) -> dict:
        """One track."""
        return await self._api("GET", f"/tracks/{_segment(track_id)}", access_token)

    async def create_playlist(self, access_token: str, name: str, *, description: str = "",
                              public: bool = False) -> dict:
        """Create a playlist owned by the current user and return it."""
        return await self._api("POST", "/me/playlists", access_token,
                               json={"name": name, "description": description,
                                     "public": public})

    async def add_items(self, access_token: str, playlist_id: str, uris: list[str]) -> None:
        """Append `uris` to a playlist, 100 a call, keeping their order."""
        path = f"/playlists/{_segment(playlist_id)}/items"
        for start in range(0, len(uris), ADD_ITEMS_CHUNK):
            await self._api("POST", path, access_token,
                            json={"uris": uris[start:start + ADD_ITEMS_CHUNK]})

    async def rename_playlist(self, access_token: str, playlist_id: str, name: str) -> None:
        """Change a playlist's name."""
        await self._api("PUT", f"/playlists/{_segment(playlist_id)}", access_token,
                        json={"name": name})

    async def remove_from_library(self, access_token: str, uris: list[str]) -> None:
        """Remove items from the user's library, 40 URIs a call (needs user-library-modify)."""
        for start in range(0, len(uris), LIBRARY_CHUNK):
            await self._api("DELETE", "/me/library", access_token,
                            params={"uris": ",".join(uris[start:start + LIBRARY_CHUNK])})

    async def unfollow_playlist(self, access_token: str, playlist_id: str) -> None:
        """Remove a playlist from the user's library: Spotify's way of deleting it since
        February 2026 (DELETE /playlists/{id}/followers is gone for development-mode apps)."""
        await self.remove_from_library(access_token, [f"spotify:playlist:{playlist_id}"])

    async def _api(self, method: str, path: str, access_token: str, **kwargs: Any) -> dict:
        response = await self._send(method, self.api_url + path,
                                    headers={"Authorization": f"Bearer {access_token}"},
                                    **kwargs)
        status = response.status_code
        if status < 300:
            return _json(response)
        detail = f"{status} {method} {path}: {_api_error_message(response)}"
        if status == 429:
            if _api_error_reason(response) == "QUOTA_EXCEEDED":
                raise QuotaExceeded(_quota_wait(response.headers.get("Retry-After"),
                                                self._clock()), detail=detail)
            raise RateLimited(_retry_after(response.headers.get("Retry-After")), detail=detail)
        if status == 401:
            raise Unauthorized(detail=detail)
        if status == 403:
            raise Forbidden(detail=detail)
        if status == 404:
            raise NotFound(detail=detail)
        raise SpotifyError("Spotify refused the request; try again later.", detail=detail)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with bounded retries for 5xx, timeouts and network failures."""
        # A POST is retried only when Spotify cannot have acted on it: otherwise a retry could
        # create a second playlist, add items twice or spend a single-use refresh token.
        idempotent = method in _IDEMPOTENT
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                error: SpotifyError = SpotifyUnavailable(
                    "Spotify did not answer in time; try again in a few minutes.",
                    status=503, detail=f"{type(exc).__name__} {method} {url}")
                retryable = idempotent or isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            except httpx.TransportError as exc:
                error = SpotifyUnavailable(
                    "Could not reach Spotify; check the network and try again.",
                    status=503, detail=f"{type(exc).__name__} {method} {url}: {exc}")
                retryable = idempotent or isinstance(exc, httpx.ConnectError)
            else:
                if response.status_code < 500:
                    return response
                error = SpotifyUnavailable(
                    detail=f"{response.status_code} {method} {url}: "
                           f"{_api_error_message(response)}")
                retryable = idempotent or response.status_code == 503
            if not retryable or attempt >= MAX_RETRIES:
                raise error
            await self._sleep(BACKOFF_SECONDS[attempt])
            attempt += 1


def _check_limit(limit: int) -> int:
    if not 1 <= int(limit) <= 50:
        raise ValueError("limit must be between 1 and 50")
    return int(limit)


def _segment(value: str) -> str:
    """Quote an id for use as one path segment, so it can never reach another endpoint."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> dict:
    if not response.content:
        return {}
    try:
        payload = response.json()
    except ValueError as exc:
        raise SpotifyUnavailable("Spotify sent an answer the app could not read; try again.",
                                 detail=f"{response.status_code} invalid JSON") from exc
    return payload if isinstance(payload, dict) else {"items": payload}


def _api_error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:200]
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or "")


def _api_error_reason(response: httpx.Response) -> str:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return ""
    return str(error.get("reason", "")) if isinstance(error, dict) else ""


def _quota_wait(retry_after: str | None, now: float) -> int:
    """Seconds until the daily quota resets: Retry-After if given, else midnight UTC."""
    seconds = _seconds(retry_after)
    if seconds is not None:
        return seconds
    return max(1, 86400 - int(now) % 86400)


def _accounts_error(response: httpx.Response) -> tuple[str, str]:
    try:
        payload = response.json()
        return str(payload.get("error", "")), str(payload.get("error_description", ""))
    except (ValueError, AttributeError):
        return "", response.text[:200]


def _retry_after(value: str | None) -> int:
    """Seconds from a Retry-After header; 60 when it is missing or unreadable."""
    seconds = _seconds(value)
    return 60 if seconds is None else seconds


def _seconds(value: str | None) -> int | None:
    """A Retry-After header in whole seconds; None when it is missing or unreadable."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return math.ceil(seconds)


def _human_wait(seconds: int) -> str:
    if seconds < 90:
        return "a minute"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes"
    hours = round(seconds / 3600)
    return "an hour" if hours == 1 else f"{hours} hours"
