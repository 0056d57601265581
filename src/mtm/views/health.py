"""Liveness check for process supervisors and tests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from mtm.db import schema_version


async def healthz(request: Request) -> JSONResponse:
    """Answer 200 when the database is reachable."""
    services = request.app.state.services
    version = await services.db.run(schema_version)
    return JSONResponse({"status": "ok", "schema": version, "demo": services.settings.demo})
