"""A background job's page: its progress while it runs, then what it found or did.

The same URL is the page a browser without JavaScript reloads, and the fragment HTMX polls.
"""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette_wtf import csrf_protect

from mtm import imports
from mtm.rendering import flash, is_partial, redirect, render
from mtm.session import current_user, login_required
from mtm.views.errors import error_response

# Sent when a task has finished, so sections showing the history reload. Aimed at <body>:
# htmx fires it after the swap, when the polling card itself is gone.
HISTORY_CHANGED = '{"mtm:history-changed": {"target": "body"}}'


def _not_found(request: Request) -> Response:
    return error_response(request, 404, "There is no such task among yours.")


async def load_view(request: Request, job_id: int) -> imports.JobView | None:
    """The signed-in user's job as its card shows it, with progress as fresh as it gets."""
    user = await current_user(request)
    services = request.app.state.services
    view = await services.db.run(imports.job_view, user.id, job_id,
                                 services.settings.uploads_dir)
    if view is None:
        return None
    return dataclasses.replace(view, job=services.jobs.freshen(view.job))


async def _view(request: Request) -> imports.JobView | None:
    return await load_view(request, request.path_params["job_id"])


def render_job(request: Request, view: imports.JobView, *, status_code: int = 200) -> Response:
    """The job's page, or its card for HTMX."""
    headers = {}
    if view.job.state == "done" and view.job.kind in (imports.IMPORT, imports.UNDO):
        headers["HX-Trigger"] = HISTORY_CHANGED
    return render(request, "job", "job", {"view": view, "job": view.job,
                                          "timezone": view.timezone},
                  status_code=status_code, headers=headers)


@login_required
async def job_page(request: Request) -> Response:
    """Where a job has got, or how it ended."""
    view = await _view(request)
    if view is None:
        return _not_found(request)
    return render_job(request, view)


async def started(request: Request, job_id: int, message: str) -> Response:
    """After queueing a job: its card for HTMX (202), its page otherwise (303)."""
    if is_partial(request):
        return render_job(request, await load_view(request, job_id), status_code=202)
    flash(request, message, "info")
    return redirect(request, request.url_for("job", job_id=job_id).path)


async def queue(request: Request, kind: str, params: dict, message: str) -> Response:
    """Queue an import step, or answer 409 when another one is under way."""
    user = await current_user(request)
    services = request.app.state.services
    try:
        job = await services.db.run(imports.queue, user.id, kind, params)
    except imports.Busy as busy:
        return busy_response(request, busy)
    services.jobs.submit(job)
    return await started(request, job.id, message)


def busy_response(request: Request, busy: imports.Busy) -> Response:
    """409: one import step at a time, with where the running one is."""
    link = request.url_for("job", job_id=busy.job.id).path
    return error_response(request, 409, "Another import or undo of your data is under way; "
                          f"one runs at a time. Its progress is at {link}.")


@login_required
@csrf_protect
async def confirm_import(request: Request) -> Response:
    """Import what a finished preview showed."""
    view = await _view(request)
    if view is None:
        return _not_found(request)
    if not view.can_import:
        return error_response(request, 409, "This preview cannot be imported: it is not "
                              "finished, holds nothing new, or its files are gone. Upload "
                              "them again.")
    return await queue(request, imports.IMPORT, {"upload": view.job.params["upload"]},
                        "The import has started.")


@login_required
@csrf_protect
async def retry(request: Request) -> Response:
    """Run a failed or interrupted preview, import or undo again, as it was asked."""
    view = await _view(request)
    if view is None:
        return _not_found(request)
    if not view.can_retry:
        return error_response(request, 409, "This task cannot be run again: it did not fail, "
                              "or what it worked on is gone.")
    return await queue(request, view.job.kind, view.job.params, "Started again.")


@login_required
@csrf_protect
async def discard(request: Request) -> Response:
    """Throw away uploaded files that were previewed but not imported."""
    view = await _view(request)
    if view is None:
        return _not_found(request)
    if not view.can_discard:
        return error_response(request, 409, "There are no uploaded files waiting here.")
    user = await current_user(request)
    imports.discard_upload(request.app.state.services.settings.uploads_dir, user.id, view.job)
    flash(request, "The uploaded files were deleted; nothing was imported.", "success")
    return redirect(request, request.url_for("settings").path + "#import")
