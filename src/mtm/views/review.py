"""Year (or month) in review: a printable page and a shareable image made here."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mtm import review
from mtm.analytics import Refused
from mtm.rendering import render
from mtm.session import current_user, login_required
from mtm.views.errors import invalid_input

# The image is served on its own: it may show nothing but itself.
IMAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'",
                 "Cache-Control": "private, no-cache"}


async def _load(request: Request) -> review.Review | Refused:
    user = await current_user(request)
    services = request.app.state.services
    return await services.db.run(review.load, user.id, request.query_params,
                                 cache=services.read_cache)


@login_required
async def review_page(request: Request) -> Response:
    """The review of a year or month, with the image the user may share."""
    found = await _load(request)
    if isinstance(found, Refused):
        return invalid_input(request, found.message)
    share = review.parse_share(request.query_params.getlist("share"))
    chosen = share if "shared" in request.query_params else review.DEFAULT_SHARE
    return render(request, "review", "review",
                  {"review": found, "data": found.data, "share": chosen,
                   "share_parts": review.SHARE_PARTS})


@login_required
async def review_image(request: Request) -> Response:
    """The shareable SVG card, holding only the parts named in `share`."""
    found = await _load(request)
    if isinstance(found, Refused):
        return invalid_input(request, found.message)
    parts = review.parse_share(request.query_params.getlist("share"))
    name = found.data.period.label.replace(" ", "-").lower()
    return Response(review.image(found, parts), media_type="image/svg+xml", headers={
        **IMAGE_HEADERS,
        "Content-Disposition": f'inline; filename="music-time-machine-{name}-review.svg"'})
