"""The emulator's failure switches, its request log, and the in-process transport."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mtm.spotify.emulator.wire import QUOTA_EXCEEDED, reason, route_path

# A burst rate limit says when to come back; without a value of its own the emulator says 60 s.
DEFAULT_RETRY_AFTER = 60
QUOTA_MESSAGE = "Your application has exceeded its request quota; it resets tomorrow."
# Demo mode runs for months: the request log keeps only the latest requests.
_LOG_LIMIT, _LOG_TRIM = 20_000, 10_000


@dataclass
class Fault:
    """One armed switch: answer the next `remaining` requests under `prefix` with a failure."""

    prefix: str
    kind: str  # "status" or "timeout"
    status: int
    remaining: int
    retry_after: int | None = None
    reason: str | None = None

    def headers(self) -> dict[str, str]:
        """Retry-After for a burst limit (or when given); a spent quota carries none."""
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        if self.status == 429 and self.reason != QUOTA_EXCEEDED:
            return {"Retry-After": str(DEFAULT_RETRY_AFTER)}
        return {}

    def body(self, path: str) -> dict[str, Any]:
        """Spotify's body for this failure: the accounts service and the Web API differ."""
        if path.startswith("/accounts"):
            return {"error": "server_error" if self.status >= 500 else
                    "temporarily_unavailable", "error_description": "Emulated failure"}
        message = QUOTA_MESSAGE if self.reason == QUOTA_EXCEEDED else reason(self.status)
        error: dict[str, Any] = {"status": self.status, "message": message}
        if self.reason:
            error["reason"] = self.reason
        return {"error": error}


class Faults:
    """Armed switches and the log of requests seen, shared by the middleware and transport."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[Fault] = []
        self.requests: list[tuple[str, str]] = []

    def arm(self, fault: Fault) -> None:
        """Add a switch."""
        with self._lock:
            self._armed.append(fault)

    def reset(self) -> None:
        """Disarm every switch."""
        with self._lock:
            self._armed.clear()

    def take(self, path: str, kind: str) -> Fault | None:
        """Use up one answer of the first switch of `kind` armed for `path`."""
        with self._lock:
            for fault in self._armed:
                if fault.kind == kind and fault.remaining > 0 and path.startswith(fault.prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._armed.remove(fault)
                    return fault
        return None

    def record(self, method: str, path: str) -> None:
        """Log a request."""
        with self._lock:
            self.requests.append((method, path))
            if len(self.requests) > _LOG_LIMIT:
                del self.requests[:_LOG_TRIM]


class FaultMiddleware:
    """Records every request and answers with an injected failure when one is armed."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        self.faults.record(scope["method"], path)
        fault = self.faults.take(path, "status")
        if fault is None:
            await self.app(scope, receive, send)
            return
        answer = JSONResponse(fault.body(path), status_code=fault.status,
                              headers=fault.headers())
        await answer(scope, receive, send)


class EmulatorTransport(httpx.AsyncBaseTransport):
    """An in-process transport to the emulator that also applies its timeout switch."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self._faults = faults
        self._asgi = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Raise ReadTimeout when a timeout is armed for this path, else ask the emulator."""
        path = request.url.path
        if self._faults.take(path, "timeout") is not None:
            self._faults.record(request.method, path)
            raise httpx.ReadTimeout("emulated timeout", request=request)
        return await self._asgi.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the wrapped ASGI transport."""
        await self._asgi.aclose()
