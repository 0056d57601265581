"""Health check for process supervisors, load balancers and tests."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from mtm import health


async def healthz(request: Request) -> JSONResponse:
    """200 when every check passes; 503 naming the checks that failed."""
    services = request.app.state.services
    ok, checks = await health.report(services.db, now=int(services.clock()),
                                     scheduler_on=services.settings.sync_interval > 0)
    failed = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if ok else "failing", "failed": failed, "checks": checks,
            "demo": services.settings.demo}
    # Never cached: a supervisor must see the state of now.
    return JSONResponse(body, status_code=200 if ok else 503,
                        headers={"Cache-Control": "no-store"})
