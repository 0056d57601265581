"""The calendar page: a year of listening, day by day."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import calendar_view, periods
from mtm.rendering import render
from mtm.session import current_user, login_required
from mtm.views.errors import invalid_input


@login_required
async def calendar_page(request: Request) -> Response:
    """Twelve months of days shaded by plays, each day with plays linking to its plays."""
    user = await current_user(request)
    try:
        year = await request.app.state.services.db.run(
            calendar_view.load, user.id, request.query_params.get("year"))
    except periods.PeriodError as exc:
        return invalid_input(request, str(exc))
    return render(request, "calendar", "calendar", {"cal": year})
