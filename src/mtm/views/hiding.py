"""The hidden plays page: the hiding rules, what each hides, and adding or removing one."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette_wtf import csrf_protect

from mtm import hiding
from mtm.rendering import (
    flash,
    redirect_after_post,
    refuse_form,
    render,
    take_refused_form,
)
from mtm.session import current_user, login_required
from mtm.views.errors import error_response

FIELDS = ("kind", "target", "context", "from", "to")
FORM = "hide"


async def _render(request: Request, user_id: int, *, values: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, problem: str | None = None,
                  status_code: int = 200) -> Response:
    view = await request.app.state.services.db.run(hiding.overview, user_id)
    context: dict[str, Any] = {"view": view, "values": values or {}, "errors": errors or {},
                               "problem": problem}
    return render(request, "hidden", "hidden", context, status_code=status_code)


@login_required
async def hidden_page(request: Request) -> Response:
    """Every rule with what it hides, the contexts played most, and a form to hide one."""
    user = await current_user(request)
    refused = take_refused_form(request, FORM)
    if refused is None:
        return await _render(request, user.id)
    return await _render(request, user.id, values=refused.values, errors=refused.errors,
                         problem=refused.problem, status_code=refused.status)


def _hidden_message(change: hiding.Change) -> str:
    if change.existed:
        return f"“{change.name}” was hidden already."
    if not change.streams:
        return (f"“{change.name}” is hidden. None of your stored plays match yet; new ones "
                "will be hidden as they arrive.")
    return (f"Hidden {change.words} of “{change.name}”: they are out of every figure, "
            "chart and playlist now.")


@login_required
@csrf_protect
async def hide(request: Request) -> Response:
    """Add a rule from the hide form (an artist, album or track page, or a context)."""
    user = await current_user(request)
    form = await request.form()
    submitted = {key: str(form.get(key, ""))[:300] for key in FIELDS}
    try:
        change = await request.app.state.services.db.run(hiding.add_from_form, user.id,
                                                         submitted)
    except hiding.HideError as exc:
        errors = {exc.field: exc.message} if exc.field else {}
        page = request.url_for("hidden").path
        if plain := refuse_form(request, page, FORM, values=submitted, errors=errors,
                                problem=exc.message, status_code=exc.status):
            return plain
        return await _render(request, user.id, values=submitted, errors=errors,
                             problem=exc.message, status_code=exc.status)
    message = _hidden_message(change)
    if plain := redirect_after_post(request, request.url_for("hidden").path, message):
        return plain
    flash(request, message, "success")
    return await _render(request, user.id)


@login_required
@csrf_protect
async def unhide(request: Request) -> Response:
    """Remove a rule: its plays count again at once (unless another rule hides them)."""
    user = await current_user(request)
    rule_id = request.path_params["rule_id"]
    change = await request.app.state.services.db.run(hiding.remove, user.id, rule_id)
    if change is None:
        return error_response(request, 404, "There is no hiding rule with that number. "
                              "It may have been removed already.",
                              link=(str(request.url_for("hidden")), "Go to Hidden plays"))
    message = (f"Showing {change.words} of “{change.name}” again." if change.streams else
               f"“{change.name}” is no longer hidden.")
    if plain := redirect_after_post(request, request.url_for("hidden").path, message):
        return plain
    flash(request, message, "success")
    return await _render(request, user.id)
