"""Artist, album and track pages, and the older plays behind their "show more"."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import entities
from mtm.rendering import is_partial, render
from mtm.session import current_user, login_required
from mtm.views.errors import error_response, invalid_input
from mtm.views.home import parse_cursor

NOT_PLAYED = {
    "artist": "There is no artist with that number in your history.",
    "album": "There is no album with that number in your history.",
    "track": "There is no track with that number in your history.",
}


async def _page(request: Request, kind: str) -> Response:
    subject_id = request.path_params[f"{kind}_id"]
    user = await current_user(request)
    services = request.app.state.services
    data = await services.db.run(entities.load, user.id, kind, subject_id,
                                 cache=services.read_cache)
    if data is None:
        return error_response(request, 404, NOT_PLAYED[kind])
    if isinstance(data, entities.Hidden):
        return error_response(
            request, 404, f"All your plays of “{data.name}” are hidden: a hiding rule keeps "
            "them out of every page. Remove the rule to see them again.",
            link=(str(request.url_for("hidden")), "Go to Hidden plays"))
    return render(request, "entity", "entity", {"data": data, "kind": kind})


async def _plays(request: Request, kind: str) -> Response:
    subject_id = request.path_params[f"{kind}_id"]
    before = parse_cursor(request.query_params)
    if isinstance(before, str):
        return invalid_input(request, before)
    user = await current_user(request)
    found = await request.app.state.services.db.run(entities.plays_page, user.id, kind,
                                                    subject_id, before)
    if found is None:
        return error_response(request, 404, NOT_PLAYED[kind])
    items, cursor = found
    more = request.url_for(f"{kind}_plays", **{f"{kind}_id": subject_id})
    page_url = request.url_for(kind, **{f"{kind}_id": subject_id})
    return render(request, "entity_plays", "play_rows",
                  {"plays": items, "next_cursor": cursor, "before": before, "kind": kind,
                   "more_url": more, "page_url": page_url,
                   "focus_first": is_partial(request)})


def _view(kind: str, handler, what: str):
    """A signed-in view of one kind, for the route table."""
    @login_required
    async def view(request: Request) -> Response:
        return await handler(request, kind)

    view.__name__ = f"{kind}_{what}"
    view.__doc__ = f"The {kind}'s {what.replace('_', ' ')}, through the user's history."
    return view


artist_page = _view("artist", _page, "page")
album_page = _view("album", _page, "page")
track_page = _view("track", _page, "page")
artist_plays = _view("artist", _plays, "plays")
album_plays = _view("album", _plays, "plays")
track_plays = _view("track", _plays, "plays")
