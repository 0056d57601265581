"""The admin page: the instance's users, storage, scheduler and job queue (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from mtm import admin
from mtm.rendering import render
from mtm.session import current_user
from mtm.views.errors import error_response

# Seconds between the fragment's refreshes with JavaScript on.
REFRESH_SECONDS = 30


async def admin_stats(request: Request) -> Response:
    """Everything an admin needs at a glance; a 404 for everyone else, signed in or not."""
    user = await current_user(request)
    if user is None or not user.is_admin:
        # Not 403: the page does not exist for anyone but an admin.
        return error_response(request, 404)
    services = request.app.state.services
    settings = services.settings
    now = int(services.clock())
    stats = await services.db.run(admin.load, now=now, database=settings.database_path,
                                  backups_dir=settings.backups_dir,
                                  sync_interval=settings.sync_interval)
    return render(request, "admin_stats", "admin_stats",
                  {"stats": stats, "now": datetime.fromtimestamp(now, UTC),
                   "refresh_seconds": REFRESH_SECONDS, "size": admin.size_label},
                  headers={"Cache-Control": "no-store"})
