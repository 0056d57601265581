"""The household page, and joining or leaving it (from the page or from Settings)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette_wtf import csrf_protect

from mtm import household
from mtm.rendering import flash, redirect_after_post, render
from mtm.session import current_user, login_required
from mtm.views.errors import invalid_input

CHOICES = ("join", "leave")
# Where the form was sent from, and so where the answer goes: the page, or Settings.
FROM = {"household": ("household", ""), "settings": ("settings", "#household-sharing")}
MESSAGES = {
    ("join", True): "You joined the household page: the other members who joined see how "
                    "your listening overlaps with theirs, and you see theirs.",
    ("join", False): "You were in the household page already.",
    ("leave", True): "You left the household page: nobody sees your listening there any more.",
    ("leave", False): "You were not in the household page.",
}


async def _page(request: Request, user_id: int) -> Response:
    services = request.app.state.services
    data = await services.db.run(household.overview, user_id, now=int(services.clock()),
                                 cache=services.read_cache)
    return render(request, "household", "household",
                  {"house": data, "compatibility": household.COMPATIBILITY,
                   "top_list": household.TOP_LIST})


@login_required
async def household_page(request: Request) -> Response:
    """Shared top artists and compatibility with every other member, once you have joined."""
    user = await current_user(request)
    return await _page(request, user.id)


@login_required
@csrf_protect
async def membership(request: Request) -> Response:
    """Join or leave the household page; the answer is the page or Settings it came from."""
    user = await current_user(request)
    form = await request.form()
    choice = str(form.get("choice", ""))
    origin = str(form.get("from", ""))
    if choice not in CHOICES:
        return invalid_input(request, "Choose whether to join or to leave the household page.")
    if origin not in FROM:
        return invalid_input(request, "The form must come from the household page or Settings.")
    services = request.app.state.services
    if choice == "join":
        changed = await services.db.run(household.join, user.id, int(services.clock()))
    else:
        changed = await services.db.run(household.leave, user.id)
    message = MESSAGES[choice, changed]
    name, anchor = FROM[origin]
    if plain := redirect_after_post(request, request.url_for(name).path + anchor, message):
        return plain
    flash(request, message, "success")
    if origin == "settings":
        return render(request, "settings", "settings_household",
                      {"household_member": choice == "join"})
    return await _page(request, user.id)
