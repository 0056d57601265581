"""The Analytics page: charts over any period, swapped in place by HTMX."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import analytics, dashboard, periods, preferences
from mtm.rendering import render
from mtm.session import current_user, login_required


@login_required
async def analytics_page(request: Request) -> Response:
    """Listening over time, genres, top artists, albums and tracks, heatmap, discoveries."""
    user = await current_user(request)
    services = request.app.state.services
    query = request.query_params
    data = await services.db.run(analytics.load, user.id, query, cache=services.read_cache)
    default_metric = (await services.db.run(preferences.load, user.id)).chart_metric
    metric = analytics.parse_metric(query.get("metric"), default_metric)
    context = {"metric": metric, "ranges": periods.RANGES, "earliest": periods.EARLIEST,
               "title": data.title, "today": data.today, "years": data.years}
    if isinstance(data, analytics.Refused):
        return render(request, "analytics", "analytics",
                      {**context, "data": None, "period_error": data.message,
                       "period_values": data.values}, status_code=422)
    # An empty history says what is true: never any plays, or cleared by the user.
    recording = None if data.has_history else await services.db.run(
        dashboard.recording, user.id, services.settings.sync_interval)
    # With plays, the part shows the (cached) data and the metric only: drawn once for both.
    return render(request, "analytics", "analytics",
                  {**context, "data": data, "recording": recording, "period_error": None,
                   "period_values": data.form_values},
                  cache=(data, ("analytics", metric)) if recording is None else None)
