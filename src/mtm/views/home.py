"""The Home dashboard and the paged list of plays behind its "show more"."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from mtm import dashboard
from mtm.rendering import is_partial, render
from mtm.session import current_user, login_required
from mtm.views.errors import invalid_input

MAX_CURSOR = 2**53


@login_required
async def dashboard_page(request: Request) -> Response:
    """Headline figures, last 30 days, this month's tops, recent plays, sync status."""
    user = await current_user(request)
    db = request.app.state.services.db
    since = request.query_params.get("since")
    # The dashboard polls with the sync it shows; nothing new costs one small read.
    if (since is not None and is_partial(request)
            and since == await db.run(dashboard.current_sync_token, user.id)):
        return Response(status_code=204, headers={"Vary": "HX-Request"})
    data = await db.run(dashboard.load, user.id)
    return render(request, "home", "dashboard", {"dash": data})


def _cursor(params) -> tuple[int, int] | None | str:
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
    """Older plays: a page without JavaScript, rows appended in place with HTMX."""
    before = _cursor(request.query_params)
    if isinstance(before, str):
        return invalid_input(request, before)
    user = await current_user(request)
    items, cursor = await request.app.state.services.db.run(dashboard.history_page, user.id,
                                                            before)
    return render(request, "plays", "play_rows",
                  {"plays": items, "next_cursor": cursor, "before": before})
