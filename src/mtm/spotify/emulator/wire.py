"""How the emulator speaks: Spotify's error bodies, its time formats, request parsing."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import Scope

BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
_REASONS = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
            405: "Method not allowed", 410: "Gone", 429: "API rate limit exceeded",
            500: "Server error", 502: "Bad gateway", 503: "Service unavailable",
            504: "Gateway timeout"}


class ApiError(Exception):
    """A Web API refusal: answered as {"error": {"status", "message"[, "reason"]}}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """The JSON body Spotify sends with this status."""
        error: dict[str, Any] = {"status": self.status, "message": self.message}
        if self.reason:
            error["reason"] = self.reason
        return {"error": error}


class AccountsError(Exception):
    """An accounts-service refusal: answered as {"error", "error_description"}."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def reason(status: int) -> str:
    """Spotify's short wording for a status."""
    return _REASONS.get(status, "Error")


def route_path(scope: Scope) -> str:
    """The request path as seen from where the emulator is mounted."""
    path = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} when empty); 400 when it is not a JSON object."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "Error parsing JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "Error parsing JSON.")
    return body


def int_param(query: Any, name: str, default: int | None, low: int,
              high: int | None) -> Any:
    """An integer query parameter within [low, high], or `default` when absent."""
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}") from None
    if value < low or (high is not None and value > high):
        raise ApiError(400, f"Invalid {name}")
    return value


def lookup(index: dict[str, Any], ident: str) -> Any:
    """The catalogue item with this base62 id: 400 for a malformed id, 404 for an unknown one."""
    if not BASE62_ID.match(ident):
        raise ApiError(400, "Invalid base62 id")
    try:
        return index[ident]
    except KeyError:
        raise ApiError(404, "Resource not found") from None


def iso_ms(ms: int) -> str:
    """UTC with milliseconds and a Z, as Spotify writes most times."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def iso_seconds(ms: int) -> str:
    """UTC to the second with a Z, as playlist items' added_at is written."""
    return iso_ms(ms)[:-5] + "Z"


def played_at(ms: int) -> str:
    """played_at as Spotify writes it: 0 to 6 fractional digits, never losing a millisecond.

    Some clients trim trailing zeros (".12Z", or none at all on a whole second), some add
    microseconds (".123000Z"); most write milliseconds.
    """
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{millis:03d}"
    if seconds % 6 == 1:
        fraction += "000"
    elif seconds % 2 == 0:
        fraction = fraction.rstrip("0")
    return f"{stamp}.{fraction}Z" if fraction else f"{stamp}Z"


def snapshot(version: int) -> str:
    """A playlist's snapshot_id for its version."""
    return base64.urlsafe_b64encode(f"v{version}".encode()).decode().rstrip("=")


def basic_client_id(header: str | None) -> str | None:
    """The client id of an HTTP Basic authorization header, if it holds one."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]
