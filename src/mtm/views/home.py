"""The Home dashboard and the paged list of plays behind its "show more"."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from mtm import dashboard, periods, preferences, search
from mtm.rendering import is_partial, render
from mtm.session import current_user, login_required
from mtm.views.errors import invalid_input

MAX_CURSOR = 2**53


@login_required
async def dashboard_page(request: Request) -> Response:
    """Headline figures, last 30 days, this month's tops, recent plays, sync status."""
    shown_to = _shown_to(request.query_params.get("shown_to"))
    if isinstance(shown_to, str):
        return invalid_input(request, shown_to)
    user = await current_user(request)
    services = request.app.state.services
    since = request.query_params.get("since")
    # The dashboard polls with the sync it shows; nothing new costs one small read.
    if (since is not None and is_partial(request)
            and since == await services.db.run(dashboard.current_sync_token, user.id)):
        return Response(status_code=204, headers={"Vary": "HX-Request"})
    data = await services.db.run(dashboard.load, user.id, shown_to=shown_to,
                                 sync_interval=services.settings.sync_interval)
    return render(request, "home", "dashboard", {"dash": data})


def _shown_to(raw: str | None) -> tuple[int, int] | None | str:
    """The oldest play a refreshed dashboard keeps listed ("second:key"), or what is wrong."""
    if raw is None or raw == "":
        return None
    match = re.fullmatch(r"(\d{1,16}):(-?\d{1,19})", raw)
    if not match or int(match.group(1)) > MAX_CURSOR or not -(2**63) <= int(match.group(2)) < 2**63:
        return "`shown_to` must be a second and a record key, as in 1700000000:42."
    return int(match.group(1)), int(match.group(2))


def parse_cursor(params) -> tuple[int, int] | None | str:
    """The (second, key) cursor of /plays, None for the newest page, or what is wrong."""
    raw, key = params.get("before"), params.get("key")
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > MAX_CURSOR:
        return "The `before` cursor must be a whole number of seconds."
    if key is None:
        # A cursor without a key (an older link) starts before that whole second.
        return int(raw), -(2**63)
    if not re.fullmatch(r"-?\d{1,19}", key) or not -(2**63) <= int(key) < 2**63:
        return "The `key` cursor must be a whole number."
    return int(raw), int(key)


@login_required
async def plays(request: Request) -> Response:
    """Plays, newest first, filtered by name and local days; "show more" appends with HTMX."""
    before = parse_cursor(request.query_params)
    if isinstance(before, str):
        return invalid_input(request, before)
    user = await current_user(request)
    services = request.app.state.services
    query = request.query_params
    # "Show more" appends rows to the list; the filter form replaces the whole result.
    fragment = "play_rows" if before is not None else "plays_results"
    context = {"before": before, "earliest": periods.EARLIEST, "focus_first": is_partial(request)}
    try:
        page = await services.db.run(dashboard.history_page, user.id, before, query)
    except (periods.PeriodError, search.QueryError) as exc:
        if before is not None:
            return invalid_input(request, str(exc))
        values = {name: (query.get(name) or "")[:search.MAX_QUERY] for name in ("q", "from", "to")}
        # The refused query may have named no valid day: the form offers days up to today.
        prefs = await services.db.run(preferences.load, user.id)
        today = periods.local_today(prefs.timezone)
        return render(request, "plays", fragment,
                      {**context, "error": str(exc), "values": values, "filters": {},
                       "today": today}, status_code=422)
    # Focus goes to the first row HTMX appends, not back to the top of the page.
    return render(request, "plays", fragment,
                  {**context, "page": page, "plays": page.plays, "next_cursor": page.next_cursor,
                   "filters": page.filters, "values": page.values, "error": None,
                   "today": page.today})
