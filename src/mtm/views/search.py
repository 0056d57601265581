"""The search page: the user's artists, albums and tracks by name, results swapped as they type."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import search
from mtm.rendering import render
from mtm.session import current_user, login_required


@login_required
async def search_page(request: Request) -> Response:
    """Results grouped Artists / Albums / Tracks; an empty query shows the empty page."""
    raw = request.query_params.get("q", "")
    try:
        query = search.parse_query(raw)
    except search.QueryError as exc:
        return render(request, "search", "search_results",
                      {"query": raw[:search.MAX_QUERY], "results": None, "error": str(exc)},
                      status_code=422)
    user = await current_user(request)
    results = await request.app.state.services.db.run(search.search, user.id, query)
    return render(request, "search", "search_results",
                  {"query": query, "results": results, "error": None})
