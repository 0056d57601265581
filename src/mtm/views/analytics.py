"""The Analytics page: charts over a chosen range, swapped in place by HTMX."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import analytics, dashboard, users
from mtm.rendering import render
from mtm.session import current_user, login_required


@login_required
async def analytics_page(request: Request) -> Response:
    """Listening over time, genres, top artists and tracks, heatmap, discoveries."""
    user = await current_user(request)
    services = request.app.state.services
    key = analytics.parse_range(request.query_params.get("range"))
    data = await services.db.run(analytics.load, user.id, key, cache=services.analytics_cache)
    default_metric = await services.db.run(users.chart_metric, user.id)
    metric = analytics.parse_metric(request.query_params.get("metric"), default_metric)
    # An empty history says what is true: never any plays, or cleared by the user.
    recording = None if data.has_history else await services.db.run(
        dashboard.recording, user.id, services.settings.sync_interval)
    return render(request, "analytics", "analytics",
                  {"data": data, "metric": metric, "ranges": analytics.RANGES,
                   "recording": recording})
